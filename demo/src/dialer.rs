//! The dialer inside the demo: the `splitdial` built next to this program,
//! run on the LAN's `dialer` host with the terminal inherited.

use crate::exit::Exit;
use crate::signals::Signals;
use household::Household;
use nix::sys::signal::{Signal, kill};
use nix::sys::termios::{SetArg, Termios, tcgetattr, tcsetattr};
use nix::unistd::Pid;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The dialer's program name.
const PROGRAM: &str = "splitdial";
/// How long the dialer may take to quit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The `splitdial` next to this program, or why there is none (naming the
/// command that builds it).
pub fn locate() -> Result<PathBuf, Exit> {
    let exe = std::env::current_exe()
        .map_err(|e| Exit::failure(format!("cannot find the splitdial-demo executable: {e}")))?;
    in_dir(exe.parent().unwrap_or(Path::new(".")))
}

/// `dir/splitdial` if it is there, else a one-line reason with the build
/// command for that directory's profile.
fn in_dir(dir: &Path) -> Result<PathBuf, Exit> {
    let path = dir.join(PROGRAM);
    if path.is_file() {
        return Ok(path);
    }
    let release = if dir.ends_with("release") {
        " --release"
    } else {
        ""
    };
    Err(Exit::failure(format!(
        "{} is not built: run `cargo build{release} -p splitdial-tui` (or `cargo build{release} --workspace --bins`)",
        path.display()
    )))
}

/// Runs `splitdial` inside the `dialer` host as alice with the terminal
/// inherited and waits for it; a signal to the demo ends it (SIGTERM, then
/// SIGKILL after [`STOP_GRACE`]).
pub async fn run(
    home: &Household,
    splitdial: &Path,
    config: &Path,
    signals: &mut Signals,
    timings: bool,
) -> Result<(), Exit> {
    let mut command = home.dialer_command(splitdial);
    command
        .arg("--config")
        .arg(config)
        // The demo's own settings win over the user's environment, and the
        // dialer's state (the last call) stays in the scratch directory.
        .env_remove("SPLITDIAL_MATCHER_URL")
        .env_remove("SPLITDIAL_TOKEN")
        .env_remove("SPLITDIAL_INTERFACES")
        .env("XDG_STATE_HOME", config.with_file_name("state"));
    let terminal = TerminalBefore::save();
    let mut child = tokio::process::Command::from(command)
        .spawn()
        .map_err(|e| Exit::failure(format!("cannot start the dialer: {e}")))?;
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
            match tokio::time::timeout(STOP_GRACE, child.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            }
        }
    }
    .map_err(|e| Exit::failure(format!("lost the dialer: {e}")))?;
    if status.signal().is_some() {
        // It could not put the terminal back itself.
        terminal.restore();
    }
    if status.success() {
        Ok(())
    } else {
        Err(Exit::failure(format!("the dialer exited with {status}")))
    }
}

/// What the dialer's own terminal restore writes: bracketed paste off, the
/// main screen back, the cursor shown.
const SCREEN_RESET: &[u8] = b"\x1b[?2004l\x1b[?1049l\x1b[?25h";

/// The terminal's settings before the full-screen dialer changed them, to
/// put back when the dialer dies without doing so: it set raw mode from its
/// own process, so only settings saved out here can undo it.
struct TerminalBefore(Option<Termios>);

impl TerminalBefore {
    /// Saves stdin's terminal settings (none when stdin is no terminal).
    fn save() -> Self {
        Self(tcgetattr(std::io::stdin()).ok())
    }

    /// Puts the settings back and resets the screen.
    fn restore(&self) {
        if let Some(settings) = &self.0 {
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, settings);
        }
        let mut stdout = std::io::stdout();
        let _ = stdout.write_all(SCREEN_RESET);
        let _ = stdout.flush();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_missing_dialer_is_named_with_its_build_command() {
        let dir = tempfile::tempdir().unwrap();
        let release = dir.path().join("release");
        std::fs::create_dir(&release).unwrap();
        let err = in_dir(&release).unwrap_err();
        assert_eq!(err.code, crate::exit::ExitCode::Failure);
        assert!(
            err.message.contains("release/splitdial is not built"),
            "{}",
            err.message
        );
        assert!(
            err.message
                .contains("`cargo build --release -p splitdial-tui`"),
            "{}",
            err.message
        );
        assert!(!err.message.contains('\n'), "{}", err.message);
        let err = in_dir(dir.path()).unwrap_err();
        assert!(
            err.message.contains("`cargo build -p splitdial-tui`"),
            "{}",
            err.message
        );
        std::fs::write(release.join(PROGRAM), "").unwrap();
        assert_eq!(in_dir(&release).unwrap(), release.join(PROGRAM));
    }
}
