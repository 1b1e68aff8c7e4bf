//! The demo's course: start the household on a private LAN, hand it to the
//! dialer (or, with `--no-tui`, to the user), tear it all down. Its stderr
//! lines (`splitdial demo: ...`) are a contract: `scripts/demo`,
//! `scripts/bench-demo-start` and the dialer's demo test read them.

use crate::dialer;
use crate::exit::Exit;
use crate::signals::Signals;
use household::{Household, HouseholdSpec, Placement};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The user the dialer logs in as.
pub const USER: &str = "alice";
/// What a non-root user is told (one line; exit code 2).
pub const NEEDS_ROOT: &str = "demo needs root to create its private network namespaces \
(your own network is never touched): run `sudo splitdial demo` (or `sudo scripts/demo` in the source tree)";

/// The demo's options (`splitdial demo --help`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Start the household only, print how to reach it, wait for a signal.
    pub no_tui: bool,
    /// Print stage timings, PIDs, namespaces and the scratch directory.
    pub timings: bool,
}

/// Runs the demo until the dialer exits (or, with `--no-tui`, until a signal).
pub async fn run(options: Options) -> Result<(), Exit> {
    if !testbed::is_root() {
        return Err(Exit::usage(NEEDS_ROOT));
    }
    // Before three seconds of start-up, not after: the dialer must be there.
    let splitdial = dialer::locate()?;
    let mut signals = Signals::install()?;
    let spec = HouseholdSpec::demo();
    eprintln!(
        "splitdial demo: starting a household on a private simulated LAN: SIP servers {}, a matcher, {} talker agents (test tones and patterns)...",
        spec.servers
            .iter()
            .map(|s| s.domain.as_str())
            .collect::<Vec<_>>()
            .join(" and "),
        spec.talkers.len(),
    );
    let began = Instant::now();
    let mut starting = tokio::task::spawn_blocking(move || Household::start(spec, Placement::Lan));
    let joined = tokio::select! {
        joined = &mut starting => joined,
        () = signals.recv() => {
            // A start-up step cannot be cut short: let it end, then tear down
            // (dropping the household ends whatever did start).
            eprintln!("splitdial demo: interrupted; stopping what was started");
            drop(starting.await);
            return Err(Exit::failure("interrupted during start-up; everything was torn down"));
        }
    };
    let home = joined
        .map_err(|e| Exit::failure(format!("start-up failed: {e}")))?
        .map_err(|e| Exit::failure(format!("could not start the household: {e}")))?;
    let dialer_config = write_dialer_config(&home)?;
    eprintln!(
        "splitdial demo: household up in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    if options.timings {
        print_details(&home);
    }
    let outcome = if options.no_tui {
        print_how_to_dial(&home, &splitdial, &dialer_config);
        signals.recv().await;
        Ok(())
    } else {
        eprintln!(
            "splitdial demo: opening the dialer as {USER} on the LAN's `dialer` host (q quits and tears everything down)"
        );
        dialer::run(
            &home,
            &splitdial,
            &dialer_config,
            &mut signals,
            options.timings,
        )
        .await
    };
    let stopping = Instant::now();
    home.shutdown();
    eprintln!(
        "splitdial demo: stopped every process and removed the LAN in {:.1} s",
        stopping.elapsed().as_secs_f64()
    );
    outcome
}

/// Writes alice's token (0600) and a dialer configuration that points at the
/// household into its scratch directory (deleted with the household); returns
/// the configuration's path. The token never appears on a command line.
fn write_dialer_config(home: &Household) -> Result<PathBuf, Exit> {
    let token = home
        .token(USER)
        .ok_or_else(|| Exit::failure(format!("the household has no token for {USER}")))?;
    let dir = home.dir().join("dialer");
    std::fs::create_dir_all(dir.join("state")).map_err(Exit::io)?;
    let token_path = dir.join("token");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&token_path)
        .map_err(Exit::io)?;
    file.write_all(token.as_bytes()).map_err(Exit::io)?;
    let mut config = toml::Table::new();
    config.insert("matcher_url".into(), home.matcher_url().into());
    // The household's own CA signed the matcher's certificate (the demo's matcher is HTTPS).
    if let Some(ca) = home.matcher_ca() {
        config.insert("matcher_ca".into(), ca.display().to_string().into());
    }
    config.insert("token_file".into(), "token".into());
    config.insert("interfaces".into(), home.dialer_interface().into());
    let path = dir.join("config.toml");
    std::fs::write(&path, config.to_string()).map_err(Exit::io)?;
    Ok(path)
}

/// `--timings`: stage timings, then what a check for leftovers needs.
fn print_details(home: &Household) {
    for (stage, took) in home.timings() {
        eprintln!("splitdial demo: timing {stage} {:.2} s", took.as_secs_f64());
    }
    for (label, process) in home.processes() {
        eprintln!("splitdial demo: pid {} {label}", process.pid());
    }
    if let Some(lan) = home.lan() {
        let names: Vec<&str> = lan
            .hosts()
            .iter()
            .map(testbed::LanHost::netns)
            .chain([lan.bridge_netns()])
            .collect();
        eprintln!("splitdial demo: namespaces {}", names.join(" "));
    }
    eprintln!("splitdial demo: scratch dir {}", home.dir().display());
}

/// `--no-tui`: how a technician reaches the household.
fn print_how_to_dial(home: &Household, splitdial: &Path, config: &Path) {
    let netns = home.dialer_netns().unwrap_or("?");
    eprintln!("splitdial demo: matcher {}", home.matcher_url());
    eprintln!(
        "splitdial demo: {USER}'s token file {}",
        config.with_file_name("token").display()
    );
    eprintln!(
        "splitdial demo: run the dialer as {USER}: sudo ip netns exec {netns} {} --config {}",
        splitdial.display(),
        config.display()
    );
    eprintln!("splitdial demo: Ctrl-C stops everything");
}
