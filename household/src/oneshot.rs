//! Running a one-shot command (e.g. `splitdial talkers --json` on the dialer's
//! host) to its end within a time bound, capturing what it printed.

use crate::Error;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What a finished command left behind.
#[derive(Debug, Clone)]
pub struct Finished {
    /// How it exited.
    pub status: ExitStatus,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
}

impl Finished {
    /// The exit code (`None` when a signal ended it).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Runs `command` (stdin closed) until it exits; after `within` it is
/// killed by its PID and the wait fails with what it printed so far.
pub fn run(mut command: Command, within: Duration) -> Result<Finished, Error> {
    let dir = tempfile::Builder::new()
        .prefix("household-run-")
        .tempdir()?;
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    // Files, not pipes: a chatty child can never block on a full pipe.
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(std::fs::File::create(&err_path)?)
        .spawn()?;
    let read = |path: &std::path::Path| {
        std::fs::read(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Finished {
                status,
                stdout: read(&out_path),
                stderr: read(&err_path),
            });
        }
        if start.elapsed() > within {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Timeout {
                what: format!(
                    "{command:?} to finish; stdout:\n{}\nstderr:\n{}",
                    read(&out_path),
                    read(&err_path)
                ),
                after: within,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn captures_both_streams_and_bounds_the_time() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo out; echo err >&2; exit 3"]);
        let done = run(c, Duration::from_secs(10)).unwrap();
        assert_eq!(done.code(), Some(3));
        assert_eq!(
            (done.stdout.as_str(), done.stderr.as_str()),
            ("out\n", "err\n")
        );
        let mut c = Command::new("sleep");
        c.arg("30");
        let started = Instant::now();
        assert!(run(c, Duration::from_millis(300)).is_err());
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
