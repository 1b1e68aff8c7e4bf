//! The interop rig shared by `tests/sipp_interop.rs` and the `proxy_vs_kamailio`
//! benchmark (both include this file with `#[path]`): starts the proxy under test
//! (our `sip-server` or Kamailio with `interop/kamailio.cfg`) and sipp with the
//! scenarios in `interop/`, as child processes tracked by PID, optionally inside a
//! network namespace, and reads sipp's exit code and statistics.
//!
//! Switching the server under test is one parameter: [`ProxyKind`].

// Each including target uses a different part of the rig.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testbed::{KAMAILIO_LOAD_MEMORY_MB, Process, Spawn};

/// Errors of the rig: any error, with a message a test failure can show.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result of the rig.
pub type Result<T> = std::result::Result<T, Error>;

/// The SIP domain both proxies serve (the scenarios address `user@home.example`).
pub const DOMAIN: &str = "home.example";

/// Directory holding kamailio.cfg, users.toml and the sipp scenarios.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop")
}

/// Which proxy a run exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// splitdial's embedded registrar and proxy.
    SipServer,
    /// Kamailio 5.6 from Debian with `interop/kamailio.cfg`.
    Kamailio,
}

impl ProxyKind {
    /// Short name for logs and tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::SipServer => "sip-server",
            Self::Kamailio => "kamailio",
        }
    }
}

/// Authentication setting, the same for both proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Anyone may register and call (sip-server without `--users`; Kamailio
    /// without `WITH_AUTH`).
    Open,
    /// Digest against the accounts of `interop/users.toml`: 401 for REGISTER, 407
    /// for other out-of-dialog requests.
    Digest,
}

/// Starts a program, inside `netns` when given.
pub fn spawn(program: impl Into<std::ffi::OsString>, netns: Option<&str>) -> Spawn {
    let spawn = Spawn::new(program);
    match netns {
        Some(ns) => spawn.in_netns(ns),
        None => spawn,
    }
}

/// A running proxy under test; stopped by PID (SIGTERM, then SIGKILL) on drop.
pub struct Proxy {
    /// Which proxy this is.
    pub kind: ProxyKind,
    /// Its UDP and TCP listen address.
    pub addr: SocketAddr,
    process: Process,
    _rundir: tempfile::TempDir,
}

impl Proxy {
    /// Starts `kind` on 127.0.0.1:`port` (inside `netns` when given) and waits until
    /// it says it is ready. `sip_server` is the sip-server binary to run.
    pub fn start(
        kind: ProxyKind,
        auth: Auth,
        port: u16,
        netns: Option<&str>,
        sip_server: &Path,
    ) -> Result<Self> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let rundir = tempfile::Builder::new()
            .prefix("splitdial-proxy-")
            .tempdir()?;
        let (spawn, ready) = match kind {
            ProxyKind::SipServer => {
                let mut spawn = spawn(sip_server, netns)
                    .label("sip-server")
                    .env(
                        "RUST_LOG",
                        std::env::var("SIP_SERVER_LOG").unwrap_or("warn".into()),
                    )
                    .args(["--listen", &addr.to_string(), "--domain", DOMAIN]);
                if auth == Auth::Digest {
                    spawn = spawn.arg("--users").arg(private_users_file(rundir.path())?);
                }
                (spawn, "sip-server ready")
            }
            ProxyKind::Kamailio => {
                let cfg = interop_dir().join("kamailio.cfg");
                let mut spawn = testbed::kamailio(&cfg, rundir.path(), KAMAILIO_LOAD_MEMORY_MB)
                    .label("kamailio")
                    .arg("-A")
                    .arg(format!("SIP_PORT={port}"));
                if let Some(ns) = netns {
                    spawn = spawn.in_netns(ns);
                }
                if auth == Auth::Digest {
                    spawn = spawn.args(["-A", "WITH_AUTH"]);
                }
                (spawn, "kamailio ready")
            }
        };
        let mut process = spawn.start()?;
        process
            .wait_for_output(ready, Duration::from_secs(60))
            .map_err(|e| format!("{} did not start: {e}", kind.name()))?;
        Ok(Self {
            kind,
            addr,
            process,
            _rundir: rundir,
        })
    }

    /// The proxy's (main) process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Everything the proxy has logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Whether the proxy is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.process.try_wait(), Ok(None))
    }

    /// Stops the proxy (SIGTERM, up to 10 s, then SIGKILL).
    pub fn stop(&mut self) -> Result<std::process::ExitStatus> {
        Ok(self.process.stop(Duration::from_secs(10))?)
    }
}

/// One sipp invocation: scenario, local port, proxy, and the run's options.
#[derive(Debug, Clone)]
pub struct Sipp {
    scenario: String,
    local_port: u16,
    proxy: SocketAddr,
    args: Vec<String>,
    netns: Option<String>,
}

/// Final counters of a sipp run (its `-trace_stat` CSV, last row).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SippStats {
    /// Calls sipp started (`TotalCallCreated`).
    pub created: u64,
    /// Calls that reached the end of the scenario (`SuccessfulCall(C)`).
    pub successful: u64,
    /// Calls that failed (`FailedCall(C)`).
    pub failed: u64,
}

/// What a finished (or timed-out) sipp run left behind.
#[derive(Debug)]
pub struct SippOutcome {
    /// A label for messages (`scenario@port`).
    pub label: String,
    /// Exit code; `None` when the run timed out (sipp was then stopped) or died by
    /// a signal.
    pub exit: Option<i32>,
    /// Whether the run hit the rig's timeout.
    pub timed_out: bool,
    /// Final counters, when sipp wrote its statistics file.
    pub stats: Option<SippStats>,
    /// sipp's error log (`-trace_err`): unexpected messages and why calls failed.
    pub errors: String,
    /// How long the run took.
    pub elapsed: Duration,
}

impl SippOutcome {
    /// Whether sipp exited 0 (every call succeeded).
    pub fn succeeded(&self) -> bool {
        self.exit == Some(0)
    }

    /// sipp's error log grouped by kind (Call-IDs and times stripped), most frequent
    /// first: `(count, first line of the event)`.
    pub fn error_kinds(&self, top: usize) -> Vec<(usize, String)> {
        let mut kinds: Vec<(usize, String)> = Vec::new();
        for line in self.errors.lines() {
            // Events start with "DATE\tTIME\tEPOCH: text"; message dumps follow.
            let Some((stamp, event)) = line.split_once(": ") else {
                continue;
            };
            if !stamp.contains('\t') {
                continue;
            }
            let kind: String = event
                .split_whitespace()
                .map(|w| {
                    if w.contains("@127.0.0.1") {
                        "CALL-ID"
                    } else {
                        w
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(160)
                .collect();
            match kinds.iter_mut().find(|(_, k)| *k == kind) {
                Some((n, _)) => *n += 1,
                None => kinds.push((1, kind)),
            }
        }
        kinds.sort_by_key(|k| std::cmp::Reverse(k.0));
        kinds.truncate(top);
        kinds
    }

    /// A short report for assertion messages: exit, counters and the first lines
    /// of sipp's error log.
    pub fn report(&self) -> String {
        let errors: Vec<&str> = self.errors.lines().take(12).collect();
        format!(
            "{}: exit {:?}{} after {:.1} s, stats {:?}\nsipp errors (first lines):\n{}",
            self.label,
            self.exit,
            if self.timed_out { " (timed out)" } else { "" },
            self.elapsed.as_secs_f64(),
            self.stats,
            errors.join("\n")
        )
    }
}

impl Sipp {
    /// Prepares `sipp -sf interop/SCENARIO -i 127.0.0.1 -p LOCAL_PORT PROXY`.
    pub fn new(scenario: &str, local_port: u16, proxy: SocketAddr) -> Self {
        Self {
            scenario: scenario.to_owned(),
            local_port,
            proxy,
            args: Vec::new(),
            netns: None,
        }
    }

    /// Runs sipp inside network namespace `name`.
    #[must_use]
    pub fn in_netns(mut self, name: &str) -> Self {
        self.netns = Some(name.to_owned());
        self
    }

    /// The `[service]` (user part of the Request-URI, or the registering user).
    #[must_use]
    pub fn service(self, user: &str) -> Self {
        self.arg("-s").arg(user)
    }

    /// Digest credentials for 401/407 challenges, answered for `request_uri`
    /// (the Request-URI the scenario's authenticated request carries, without
    /// its `sip:`). sipp 3.6 otherwise puts `uri="sip:REMOTE_IP:REMOTE_PORT"`
    /// in every answer, which a registrar that checks the digest `uri` against
    /// the Request-URI (RFC 3261 §22.4) rightly refuses; `-auth_uri` is how
    /// sipp is told the real one (it prefixes `sip:` itself).
    #[must_use]
    pub fn credentials(self, user: &str, password: &str, request_uri: &str) -> Self {
        self.arg("-au")
            .arg(user)
            .arg("-ap")
            .arg(password)
            .arg("-auth_uri")
            .arg(request_uri)
    }

    /// Stop after `calls` calls (`-m`).
    #[must_use]
    pub fn calls(self, calls: u64) -> Self {
        self.arg("-m").arg(calls.to_string())
    }

    /// New calls per second (`-r`).
    #[must_use]
    pub fn rate(self, per_second: u64) -> Self {
        self.arg("-r").arg(per_second.to_string())
    }

    /// Any other sipp option.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    fn label(&self) -> String {
        format!("sipp {}@{}", self.scenario, self.local_port)
    }

    /// Starts sipp in the background.
    pub fn start(self) -> Result<SippRun> {
        let dir = tempfile::Builder::new()
            .prefix("splitdial-sipp-")
            .tempdir()?;
        let stats_path = dir.path().join("stats.csv");
        let errors_path = dir.path().join("errors.log");
        let label = self.label();
        let mut args = self.args.clone();
        // Diagnosis: keep every message sipp sends and receives.
        if let Some(trace_dir) = std::env::var_os("SPLITDIAL_SIPP_TRACE_DIR") {
            let file = Path::new(&trace_dir).join(format!(
                "{}-{}-{}.msg",
                self.scenario.trim_end_matches(".xml"),
                self.local_port,
                testbed::unique_name("")
            ));
            args.push("-trace_msg".into());
            args.push("-message_file".into());
            args.push(file.to_string_lossy().into_owned());
        }
        let process = spawn("sipp", self.netns.as_deref())
            .label("sipp")
            .arg("-sf")
            .arg(interop_dir().join(&self.scenario))
            .args(["-i", "127.0.0.1", "-p", &self.local_port.to_string()])
            .args(["-nostdin", "-trace_err", "-error_file"])
            .arg(&errors_path)
            .args(["-trace_stat", "-fd", "1", "-stf"])
            .arg(&stats_path)
            .args(&args)
            .arg(self.proxy.to_string())
            .start()?;
        Ok(SippRun {
            process,
            label,
            stats_path,
            errors_path,
            started: Instant::now(),
            _dir: dir,
        })
    }

    /// Runs sipp to completion, for at most `timeout`.
    pub fn run(self, timeout: Duration) -> Result<SippOutcome> {
        self.start()?.wait(timeout)
    }
}

/// A sipp run in progress; stopped by PID if dropped before it ends.
pub struct SippRun {
    process: Process,
    label: String,
    stats_path: PathBuf,
    errors_path: PathBuf,
    started: Instant,
    _dir: tempfile::TempDir,
}

impl SippRun {
    /// Waits for sipp to exit, at most `timeout` from now; stops it on timeout.
    pub fn wait(mut self, timeout: Duration) -> Result<SippOutcome> {
        let (exit, timed_out) = match self.process.wait_exit(timeout)? {
            Some(status) => (status.code(), false),
            None => {
                // sipp ends on SIGTERM; its statistics file is still read below.
                self.process.stop(Duration::from_secs(5))?;
                (None, true)
            }
        };
        let stats = std::fs::read_to_string(&self.stats_path)
            .ok()
            .and_then(|csv| parse_sipp_stats(&csv));
        let errors = std::fs::read_to_string(&self.errors_path).unwrap_or_default();
        Ok(SippOutcome {
            label: self.label.clone(),
            exit,
            timed_out,
            stats,
            errors,
            elapsed: self.started.elapsed(),
        })
    }

    /// Whether sipp has already exited (e.g. could not bind its port).
    pub fn exited(&mut self) -> bool {
        !matches!(self.process.try_wait(), Ok(None))
    }

    /// sipp's console output so far.
    pub fn output(&self) -> String {
        self.process.log()
    }
}

/// Reads the final counters from a sipp `-trace_stat` CSV (`;`-separated, header
/// row first, one row per dump; the last row is the final state).
pub fn parse_sipp_stats(csv: &str) -> Option<SippStats> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next()?.split(';').collect();
    let last: Vec<&str> = lines.next_back()?.split(';').collect();
    let column = |name: &str| -> Option<u64> {
        let i = header.iter().position(|h| h.trim() == name)?;
        last.get(i)?.trim().parse().ok()
    };
    Some(SippStats {
        created: column("TotalCallCreated")?,
        successful: column("SuccessfulCall(C)")?,
        failed: column("FailedCall(C)")?,
    })
}

/// Registers `user` at `proxy` from 127.0.0.1:`local_port` with one sipp REGISTER
/// (digest when `credentials` are given), so that a sipp UAS started afterwards on
/// that port receives the calls for `user`.
pub fn register(
    user: &str,
    credentials: Option<(&str, &str)>,
    local_port: u16,
    proxy: SocketAddr,
    netns: Option<&str>,
) -> Result<SippOutcome> {
    let mut sipp = match credentials {
        Some((name, password)) => {
            // register_auth.xml's Request-URI.
            Sipp::new("register_auth.xml", local_port, proxy).credentials(
                name,
                password,
                "home.example",
            )
        }
        None => Sipp::new("register.xml", local_port, proxy),
    }
    .service(user)
    .calls(1);
    if let Some(ns) = netns {
        sipp = sipp.in_netns(ns);
    }
    sipp.run(Duration::from_secs(60))
}

/// Result of one bounded call run: caller and callee sipp outcomes.
#[derive(Debug)]
pub struct CallRun {
    /// The calling sipp (uac.xml or uac_auth.xml).
    pub uac: SippOutcome,
    /// The answering sipp (uas.xml).
    pub uas: SippOutcome,
}

/// Options for [`run_calls`].
#[derive(Debug, Clone)]
pub struct CallLoad {
    /// Calls to place.
    pub calls: u64,
    /// Calls per second.
    pub rate: u64,
    /// Digest credentials of the caller (uac_auth.xml) and the callee's REGISTER.
    pub auth: Option<CallCredentials>,
    /// Most time the whole run may take.
    pub timeout: Duration,
    /// Extra options for the calling sipp.
    pub uac_args: Vec<String>,
}

/// A copy of `interop/users.toml` in `dir`, mode 0600: sip-server refuses a
/// users file others can read, and git keeps no such mode.
fn private_users_file(dir: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let copy = dir.join("users.toml");
    std::fs::copy(interop_dir().join("users.toml"), &copy)?;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o600))?;
    Ok(copy)
}

/// Accounts of `users.toml` used by the call scenarios.
#[derive(Debug, Clone)]
pub struct CallCredentials {
    /// Caller account (user, password).
    pub uac: (String, String),
    /// Callee account (user, password); the callee registers as this user.
    pub uas: (String, String),
}

impl CallCredentials {
    /// The `uac` and `uas` accounts of `interop/users.toml`.
    pub fn from_users_file() -> Self {
        Self {
            uac: ("uac".into(), "uac-secret".into()),
            uas: ("uas".into(), "uas-secret".into()),
        }
    }
}

/// Registers a sipp UAS as `uas` at `proxy`, starts it, and runs a sipp UAC that
/// places `load.calls` calls at `load.rate` per second to `uas@home.example`.
pub fn run_calls(
    proxy: SocketAddr,
    uas_port: u16,
    uac_port: u16,
    load: &CallLoad,
    netns: Option<&str>,
) -> Result<CallRun> {
    let callee_credentials = load
        .auth
        .as_ref()
        .map(|c| (c.uas.0.as_str(), c.uas.1.as_str()));
    let registration = register("uas", callee_credentials, uas_port, proxy, netns)?;
    if !registration.succeeded() {
        return Err(format!("the UAS could not register: {}", registration.report()).into());
    }
    let mut uas = Sipp::new("uas.xml", uas_port, proxy).calls(load.calls);
    if let Some(ns) = netns {
        uas = uas.in_netns(ns);
    }
    let mut uas = uas.start()?;
    // sipp binds before it reads the scenario's first step; give it a moment and
    // make sure it did not die (e.g. port in use).
    std::thread::sleep(Duration::from_millis(300));
    if uas.exited() {
        return Err(format!("sipp UAS exited at start:\n{}", uas.output()).into());
    }
    let mut uac = match &load.auth {
        // uac_auth.xml's Request-URI, with `[service]` = uas.
        Some(c) => Sipp::new("uac_auth.xml", uac_port, proxy).credentials(
            &c.uac.0,
            &c.uac.1,
            "uas@home.example",
        ),
        None => Sipp::new("uac.xml", uac_port, proxy),
    }
    .service("uas")
    .calls(load.calls)
    .rate(load.rate);
    for a in &load.uac_args {
        uac = uac.arg(a.clone());
    }
    if let Some(ns) = netns {
        uac = uac.in_netns(ns);
    }
    let started = Instant::now();
    let uac = uac.run(load.timeout)?;
    // The UAS ends once it has handled every call (plus its 4 s time-wait); if
    // calls were lost it never gets there, so give it a bounded grace.
    let left = load.timeout.saturating_sub(started.elapsed());
    let uas = uas.wait(
        left.max(Duration::from_secs(10))
            .min(Duration::from_secs(30)),
    )?;
    Ok(CallRun { uac, uas })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_last_row_of_sipp_statistics() {
        let csv = "StartTime;TotalCallCreated;SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);FailedCall(C);\n\
                   a;10;5;5;0;0;\n\
                   b;20;3;18;1;2;\n";
        assert_eq!(
            super::parse_sipp_stats(csv),
            Some(super::SippStats {
                created: 20,
                successful: 18,
                failed: 2
            })
        );
        assert_eq!(super::parse_sipp_stats("StartTime;\n"), None);
    }
}
