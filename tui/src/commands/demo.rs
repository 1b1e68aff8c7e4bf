//! `splitdial demo`: the household in a box (docs/dialer.md, "Demo").
//!
//! Starts [`HouseholdSpec::demo`] on a private simulated LAN (network
//! namespaces only: the user's own network never sees a packet or an mDNS
//! advertisement), then runs this same executable as the dialer, logged in as
//! alice, inside the LAN's `dialer` host with the terminal inherited. When the
//! dialer exits, or the demo gets SIGINT, SIGTERM or SIGHUP, everything is
//! torn down: processes ended by PID, namespaces removed, the scratch
//! directory (with alice's token) deleted.

use crate::cli::{Exit, ExitCode};
use household::{Household, HouseholdSpec, Placement};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::signal::unix::{Signal as SignalStream, SignalKind, signal};

/// The user the dialer logs in as.
const USER: &str = "alice";
/// What a non-root user is told (one line; exit code 2).
pub const NEEDS_ROOT: &str = "demo needs root to create its private network namespaces \
(your own network is never touched): run `sudo splitdial demo` (or `sudo scripts/demo` in the source tree)";
/// How long the dialer may take to quit after SIGTERM before it is killed.
const DIALER_STOP_GRACE: Duration = Duration::from_secs(5);

/// The demo's options (`splitdial demo --help`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DemoOptions {
    /// Start the household only, print how to reach it, wait for a signal.
    pub no_tui: bool,
    /// Print stage timings, PIDs, namespaces and the scratch directory.
    pub timings: bool,
}

/// Runs the demo until the dialer exits (or, with `--no-tui`, until a signal).
pub async fn run(options: DemoOptions) -> Result<(), Exit> {
    if !testbed::is_root() {
        return Err(Exit::new(ExitCode::Usage, NEEDS_ROOT));
    }
    let exe = std::env::current_exe()
        .map_err(|e| failure(format!("cannot find the splitdial executable: {e}")))?;
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
            return Err(failure("interrupted during start-up; everything was torn down"));
        }
    };
    let home = joined
        .map_err(|e| failure(format!("start-up failed: {e}")))?
        .map_err(|e| failure(format!("could not start the household: {e}")))?;
    let dialer_config = write_dialer_config(&home)?;
    eprintln!(
        "splitdial demo: household up in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    if options.timings {
        print_details(&home);
    }
    let outcome = if options.no_tui {
        print_how_to_dial(&home, &exe, &dialer_config);
        signals.recv().await;
        Ok(())
    } else {
        eprintln!(
            "splitdial demo: opening the dialer as {USER} on the LAN's `dialer` host (q quits and tears everything down)"
        );
        run_dialer(&home, &exe, &dialer_config, &mut signals, options.timings).await
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
        .ok_or_else(|| failure(format!("the household has no token for {USER}")))?;
    let dir = home.dir().join("dialer");
    std::fs::create_dir_all(dir.join("state")).map_err(io_failure)?;
    let token_path = dir.join("token");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&token_path)
        .map_err(io_failure)?;
    file.write_all(token.as_bytes()).map_err(io_failure)?;
    let mut config = toml::Table::new();
    config.insert("matcher_url".into(), home.matcher_url().into());
    config.insert("token_file".into(), "token".into());
    config.insert("interfaces".into(), home.dialer_interface().into());
    let path = dir.join("config.toml");
    std::fs::write(&path, config.to_string()).map_err(io_failure)?;
    Ok(path)
}

/// Runs the dialer inside the `dialer` host with the terminal inherited and
/// waits for it; a signal to the demo ends it (SIGTERM, then SIGKILL).
async fn run_dialer(
    home: &Household,
    exe: &Path,
    config: &Path,
    signals: &mut Signals,
    timings: bool,
) -> Result<(), Exit> {
    let mut command = home.dialer_command(exe);
    command
        .arg("--config")
        .arg(config)
        // The demo's own settings win over the user's environment, and the
        // dialer's state (the last call) stays in the scratch directory.
        .env_remove("SPLITDIAL_MATCHER_URL")
        .env_remove("SPLITDIAL_TOKEN")
        .env_remove("SPLITDIAL_INTERFACES")
        .env("XDG_STATE_HOME", config.with_file_name("state"));
    let mut child = tokio::process::Command::from(command)
        .spawn()
        .map_err(|e| failure(format!("cannot start the dialer: {e}")))?;
    let pid = child.id();
    if timings && let Some(pid) = pid {
        eprintln!("splitdial demo: pid {pid} dialer");
    }
    let status = tokio::select! {
        status = child.wait() => status,
        () = signals.recv() => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            match tokio::time::timeout(DIALER_STOP_GRACE, child.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            }
        }
    }
    .map_err(|e| failure(format!("lost the dialer: {e}")))?;
    if status.signal().is_some() {
        // It could not put the terminal back itself.
        crate::terminal::restore();
    }
    if status.success() {
        Ok(())
    } else {
        Err(failure(format!("the dialer exited with {status}")))
    }
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
fn print_how_to_dial(home: &Household, exe: &Path, config: &Path) {
    let netns = home.dialer_netns().unwrap_or("?");
    eprintln!("splitdial demo: matcher {}", home.matcher_url());
    eprintln!(
        "splitdial demo: {USER}'s token file {}",
        config.with_file_name("token").display()
    );
    eprintln!(
        "splitdial demo: run the dialer as {USER}: sudo ip netns exec {netns} {} --config {}",
        exe.display(),
        config.display()
    );
    eprintln!("splitdial demo: Ctrl-C stops everything");
}

/// SIGINT, SIGTERM and SIGHUP, whichever comes first.
struct Signals {
    interrupt: SignalStream,
    terminate: SignalStream,
    hangup: SignalStream,
}

impl Signals {
    fn install() -> Result<Self, Exit> {
        let install = |kind| signal(kind).map_err(io_failure);
        Ok(Self {
            interrupt: install(SignalKind::interrupt())?,
            terminate: install(SignalKind::terminate())?,
            hangup: install(SignalKind::hangup())?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
            _ = self.hangup.recv() => {}
        }
    }
}

fn failure(message: impl Into<String>) -> Exit {
    Exit::new(ExitCode::Failure, message)
}

#[allow(clippy::needless_pass_by_value)] // Shaped for `map_err`.
fn io_failure(e: std::io::Error) -> Exit {
    failure(format!("demo: {e}"))
}
