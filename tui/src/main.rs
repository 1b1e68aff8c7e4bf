//! `splitdial`: the terminal dialer, and its scriptable subcommands.
//!
//! Without a subcommand the full-screen dialer starts; see `splitdial --help`
//! and docs/dialer.md. Exit codes: `splitdial_tui::cli::ExitCode`.

use clap::Parser;
use splitdial_tui::cli::{Cli, Command, ExitCode};
use splitdial_tui::config::{Config, process_env};
use tracing_subscriber::EnvFilter;

fn exit(code: ExitCode) -> std::process::ExitCode {
    std::process::ExitCode::from(code as u8)
}

/// Logs go to stderr, filtered by `RUST_LOG`. In the full-screen dialer they
/// would tear the screen, so there the default is silence (set `RUST_LOG` and
/// redirect stderr to a file to see them).
fn init_tracing(full_screen: bool) {
    let default = if full_screen { "off" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .try_init();
}

fn main() -> std::process::ExitCode {
    splitdial_tls::install_provider();
    let cli = Cli::parse();
    // These need no configuration, so a broken config file cannot stop them.
    match &cli.command {
        Some(Command::Completions { shell }) => {
            splitdial_tui::commands::completions::run(*shell);
            return exit(ExitCode::Ok);
        }
        Some(Command::Man) => {
            return match splitdial_tui::commands::man::run() {
                Ok(()) => exit(ExitCode::Ok),
                Err(e) => {
                    eprintln!("splitdial: {e}");
                    exit(e.code)
                }
            };
        }
        // The demo brings its own configuration: the user's (maybe broken,
        // maybe pointing elsewhere) must not stop it. It replaces this
        // process; coming back means it could not.
        Some(Command::Demo { no_tui, timings }) => {
            let e =
                splitdial_tui::commands::demo::exec(splitdial_tui::commands::demo::DemoOptions {
                    no_tui: *no_tui,
                    timings: *timings,
                });
            eprintln!("splitdial: {e}");
            return exit(e.code);
        }
        _ => {}
    }
    init_tracing(cli.command.is_none());
    let loaded = match Config::load(&cli.global.overrides(), &process_env) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("splitdial: {e}");
            return exit(ExitCode::Usage);
        }
    };
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    match cli.command {
        None => match runtime.block_on(run_dialer(loaded.config)) {
            Ok(()) => exit(ExitCode::Ok),
            Err(e) => {
                eprintln!("splitdial: {e:#}");
                exit(ExitCode::Failure)
            }
        },
        Some(command) => match runtime.block_on(splitdial_tui::commands::run(command, loaded)) {
            Ok(()) => exit(ExitCode::Ok),
            Err(e) => {
                eprintln!("splitdial: {e}");
                exit(e.code)
            }
        },
    }
}

/// The async runtime, or the exit code after saying why there is none.
fn runtime() -> Result<tokio::runtime::Runtime, std::process::ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("splitdial: cannot start the async runtime: {e}");
            exit(ExitCode::Failure)
        })
}

async fn run_dialer(config: Config) -> anyhow::Result<()> {
    splitdial_tui::runtime::run(config).await
}
