//! Child processes that a test starts, tracks by PID and always ends.

use crate::{Error, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start a program: arguments, environment and, optionally, the network
/// namespace to start it in.
#[derive(Debug, Clone)]
pub struct Spawn {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    netns: Option<String>,
    label: String,
}

impl Spawn {
    /// Prepares to start `program`.
    pub fn new(program: impl Into<OsString>) -> Self {
        let program = program.into();
        let label = Path::new(&program)
            .file_name()
            .map_or_else(|| "process".into(), |n| n.to_string_lossy().into_owned());
        Self {
            program,
            args: Vec::new(),
            env: Vec::new(),
            netns: None,
            label,
        }
    }

    /// Adds one argument.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds several arguments.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the child.
    #[must_use]
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Starts the program inside network namespace `name` (through `ip netns exec`,
    /// which execs the program, so the PID we track is the program's own).
    #[must_use]
    pub fn in_netns(mut self, name: impl Into<String>) -> Self {
        self.netns = Some(name.into());
        self
    }

    /// Names the process in logs and in its log file.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Starts the program; stdout and stderr go to one log file that
    /// [`Process::log`] reads.
    pub fn start(self) -> Result<Process> {
        let log_dir = tempfile::Builder::new()
            .prefix(&format!("testbed-{}-", self.label))
            .tempdir()?;
        let log_path = log_dir.path().join("output.log");
        let log = std::fs::File::create(&log_path)?;
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = command.spawn().map_err(|source| Error::Spawn {
            program: self.program.to_string_lossy().into_owned(),
            source,
        })?;
        tracing::debug!(label = %self.label, pid = child.id(), "started");
        let mut process = Process {
            child,
            label: self.label,
            log_path,
            _log_dir: log_dir,
        };
        if let Some(ns) = &self.netns {
            process.wait_until_in_netns(ns);
        }
        Ok(process)
    }
}

/// How long [`Spawn::start`] waits for `ip netns exec` to move the child.
const NETNS_ENTRY_TIMEOUT: Duration = Duration::from_secs(5);

impl Process {
    /// Waits (bounded) until the child has joined namespace `ns`: `ip netns exec`
    /// forks first and enters the namespace a moment later, and a caller that
    /// lists the namespace's processes (or tears it down) right after spawning
    /// would otherwise miss this one.
    fn wait_until_in_netns(&mut self, ns: &str) {
        use std::os::unix::fs::MetadataExt;
        let Ok(target) = std::fs::metadata(format!("/run/netns/{ns}")) else {
            return;
        };
        let deadline = Instant::now() + NETNS_ENTRY_TIMEOUT;
        while Instant::now() < deadline {
            let current = std::fs::metadata(format!("/proc/{}/ns/net", self.pid()));
            match current {
                Ok(m) if m.ino() == target.ino() && m.dev() == target.dev() => return,
                Ok(_) => {}
                Err(_) => return,
            }
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        tracing::warn!(label = %self.label, namespace = ns, "child did not enter the namespace in time");
    }
}

/// How often [`Process::wait_exit`] asks whether the process exited.
const EXIT_POLL: Duration = Duration::from_millis(10);

/// A running child process, ended (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct Process {
    child: Child,
    label: String,
    log_path: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Process {
    /// The child's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process has written so far to stdout and stderr.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Path of the output log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Waits until the output contains `needle` (polling), or fails after `timeout`
    /// or when the process exits first.
    pub fn wait_for_output(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if self.log().contains(needle) {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(Error::Timeout {
                    what: format!(
                        "`{needle}` from {} (exited with {status}); output:\n{}",
                        self.label,
                        self.log()
                    ),
                    after: start.elapsed(),
                });
            }
            if start.elapsed() > timeout {
                return Err(Error::Timeout {
                    what: format!("`{needle}` from {}; output:\n{}", self.label, self.log()),
                    after: timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal to the process.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        kill(pid_of(self.child.id()), signal).map_err(|e| Error::Io(e.into()))
    }

    /// Whether the process has exited; its exit status if so.
    pub fn try_wait(&mut self) -> Result<Option<std::process::ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Waits up to `within` for the process to exit: its exit status, or
    /// `None` while it still runs then.
    ///
    /// Unlike [`crate::wait_until`] it looks every 10 ms throughout: asking
    /// the kernel costs next to nothing, and a one-shot command's end is
    /// awaited on every household start.
    pub fn wait_exit(&mut self, within: Duration) -> Result<Option<std::process::ExitStatus>> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            let left = within.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Ok(None);
            }
            std::thread::sleep(EXIT_POLL.min(left));
        }
    }

    /// Sends SIGTERM and waits up to `grace` for the exit, then SIGKILL.
    /// Returns the exit status.
    pub fn stop(&mut self, grace: Duration) -> Result<std::process::ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        let _ = self.signal(Signal::SIGTERM);
        if let Some(status) = self.wait_exit(grace)? {
            return Ok(status);
        }
        tracing::warn!(label = %self.label, "did not stop on SIGTERM; killing");
        let _ = self.child.kill();
        Ok(self.child.wait()?)
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.stop(Duration::from_secs(3));
    }
}

fn pid_of(id: u32) -> Pid {
    Pid::from_raw(i32::try_from(id).unwrap_or(i32::MAX))
}

/// Ends a process that is not our child (e.g. left inside a namespace): SIGTERM,
/// up to `grace` for it to go, then SIGKILL.
pub fn terminate_pid(pid: i32, grace: Duration) {
    let pid = Pid::from_raw(pid);
    if kill(pid, Signal::SIGTERM).is_err() {
        return;
    }
    let start = Instant::now();
    while start.elapsed() < grace {
        // Signal 0 probes for existence.
        if kill(pid, None).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = kill(pid, Signal::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_stops_by_pid() {
        let mut p = Spawn::new("sh")
            .args(["-c", "echo ready; exec sleep 30"])
            .start()
            .unwrap();
        p.wait_for_output("ready", Duration::from_secs(5)).unwrap();
        let status = p.stop(Duration::from_secs(5)).unwrap();
        assert!(!status.success(), "sleep should die by SIGTERM");
    }

    #[test]
    fn reports_early_exit_while_waiting() {
        let mut p = Spawn::new("sh").args(["-c", "echo nope"]).start().unwrap();
        let err = p
            .wait_for_output("never", Duration::from_secs(5))
            .unwrap_err();
        assert!(err.to_string().contains("exited"), "{err}");
    }

    #[test]
    fn waits_for_an_exit_within_its_bound() {
        let mut done = Spawn::new("sh").args(["-c", "exit 3"]).start().unwrap();
        let status = done.wait_exit(Duration::from_secs(5)).unwrap();
        assert_eq!(status.and_then(|s| s.code()), Some(3));
        let mut running = Spawn::new("sleep").arg("30").start().unwrap();
        let start = Instant::now();
        assert!(
            running
                .wait_exit(Duration::from_millis(200))
                .unwrap()
                .is_none()
        );
        assert!(start.elapsed() >= Duration::from_millis(200));
    }
}
