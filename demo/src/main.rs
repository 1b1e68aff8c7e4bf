//! `splitdial-demo`: the household in a box (docs/dialer.md, "Demo").
//!
//! `splitdial demo` runs this program from its own directory in its place
//! (Unix `exec`: same PID, terminal and signals), so the shipped dialer links
//! none of the household, the test rig or the namespace code. It starts
//! [`household::HouseholdSpec::demo`] on a private simulated LAN (network
//! namespaces only: the user's own network never sees a packet or an mDNS
//! advertisement), then runs the `splitdial` next to it as the dialer, logged
//! in as alice, inside the LAN's `dialer` host with the terminal inherited.
//! When the dialer exits, or the demo gets SIGINT, SIGTERM or SIGHUP,
//! everything is torn down: processes ended by PID, namespaces removed, the
//! scratch directory (with alice's token) deleted.
//!
//! - [`demo`]: the demo's course, from start-up to teardown, and what it
//!   prints on stderr (scripts and tests read those lines);
//! - [`dialer`]: the `splitdial` next to this program, run on the LAN's
//!   `dialer` host;
//! - [`signals`]: the signals that end the demo;
//! - [`exit`]: exit codes and one-line reasons, as `splitdial`'s.

mod demo;
mod dialer;
mod exit;
mod signals;

use clap::Parser;
use exit::Exit;
use tracing_subscriber::EnvFilter;

/// Start a whole demo household on a private simulated LAN (needs root),
/// then the dialer as alice inside it; quitting tears it all down.
/// `splitdial demo` runs this program.
#[derive(Debug, Parser)]
#[command(name = "splitdial-demo", version)]
struct Args {
    /// Start the household only, print how to reach it, wait for Ctrl-C.
    #[arg(long)]
    no_tui: bool,
    /// Print start-up stage timings, PIDs, namespaces and the scratch
    /// directory on stderr.
    #[arg(long)]
    timings: bool,
}

/// Logs go to stderr, filtered by `RUST_LOG` (warnings by default), as the
/// dialer's subcommands log.
fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .try_init();
}

fn main() -> std::process::ExitCode {
    splitdial_tls::install_provider();
    let args = Args::parse();
    init_tracing();
    let options = demo::Options {
        no_tui: args.no_tui,
        timings: args.timings,
    };
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Exit::failure(format!("cannot start the async runtime: {e}")))
        .and_then(|runtime| runtime.block_on(demo::run(options)));
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(exit) => {
            // The user typed `splitdial demo`: the lines read as the dialer's.
            eprintln!("splitdial: {}", exit.message);
            exit.code.into()
        }
    }
}
