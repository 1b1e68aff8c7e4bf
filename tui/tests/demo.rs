//! `splitdial demo`, for real: the demo runs in tmux (a private server
//! socket, 100x30) in the test's own network namespace, builds its simulated
//! LAN inside it, and opens the dialer as alice. The test waits until alice's
//! three talkers show verified (`✓`), presses `q`, and checks that the demo
//! exited 0 and left nothing behind: every PID it reported with `--timings`
//! gone, its namespaces removed, its scratch directory deleted, and no
//! process naming that directory on its command line. A second test checks
//! the one-line message and exit code 2 for a non-root user; a third, that a
//! `splitdial` without `splitdial-demo` beside it names the program and the
//! command that builds it (exit 1).
//!
//! `splitdial demo` runs the `splitdial-demo` next to `splitdial`. Needs
//! root (network namespaces), tmux, and the workspace built
//! (`cargo build --workspace --bins`); run inside a private network namespace:
//! `unshare --net -- sh -c 'ip link set lo up && cargo test -p splitdial-tui --offline --test demo'`.
//! Without root they are ignored (`scripts/test` runs them, as root); without
//! tmux or setpriv they fail saying so.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod support;

use household::oneshot;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{Tmux, pane_env, require_tmux};

const SESSION: &str = "demo";
/// The names `HouseholdSpec::demo()` gives alice's talkers.
const ALICE_TALKERS: [&str; 3] = ["Living-room TV", "Study PC", "Alice's phone"];

/// `splitdial demo --timings` in one pane of a private tmux server.
struct Terminal {
    tmux: Tmux,
    demo_log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Terminal {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let demo_log = dir.path().join("demo.log");
        // The pane keeps showing how the demo ended; the sleep ends with the
        // server.
        let script = dir.path().join("demo.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\n\"$SPLITDIAL\" demo --timings 2>\"$DEMO_LOG\"\necho \"splitdial exited with $?\"\nexec sleep 600\n",
        )
        .unwrap();
        let mut launcher = std::process::Command::new("tmux");
        pane_env(&mut launcher, dir.path());
        launcher
            .env("SPLITDIAL", env!("CARGO_BIN_EXE_splitdial"))
            .env("DEMO_LOG", &demo_log);
        let tmux = Tmux::start(
            launcher,
            dir.path().join("tmux.sock"),
            SESSION,
            (100, 30),
            Path::new("/dev/null"),
            &["sh".as_ref(), script.as_os_str()],
        );
        Self {
            tmux,
            demo_log,
            _dir: dir,
        }
    }

    fn demo_log(&self) -> String {
        std::fs::read_to_string(&self.demo_log).unwrap_or_default()
    }

    fn wait_screen(&self, what: &str, within: Duration, ready: impl Fn(&str) -> bool) -> String {
        let context = || format!("--- demo log:\n{}", self.demo_log());
        self.tmux.wait_screen(what, within, context, ready)
    }
}

/// What `--timings` reported: PIDs (with labels), namespaces, scratch dir.
#[derive(Debug, Default)]
struct Reported {
    pids: Vec<(u32, String)>,
    namespaces: Vec<String>,
    scratch: Option<PathBuf>,
}

fn parse_report(log: &str) -> Reported {
    let mut reported = Reported::default();
    for line in log.lines() {
        let Some(rest) = line.strip_prefix("splitdial demo: ") else {
            continue;
        };
        if let Some(rest) = rest.strip_prefix("pid ") {
            let (pid, label) = rest.split_once(' ').unwrap();
            reported.pids.push((pid.parse().unwrap(), label.to_owned()));
        } else if let Some(rest) = rest.strip_prefix("namespaces ") {
            reported.namespaces = rest.split_whitespace().map(str::to_owned).collect();
        } else if let Some(rest) = rest.strip_prefix("scratch dir ") {
            reported.scratch = Some(PathBuf::from(rest));
        }
    }
    reported
}

/// PIDs of every process whose command line mentions `needle`.
fn processes_naming(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Whether PID `pid` still runs one of the demo's programs (a reused PID
/// running something else does not count).
fn still_running(pid: u32, label: &str) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
    let ours = ["splitdial", "sip-server", "matcher", "talker-agent"]
        .iter()
        .any(|program| cmdline.contains(program));
    ours.then(|| format!("{label} (pid {pid}): {cmdline}"))
}

fn netns_list() -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn the_demo_shows_alices_talkers_and_quitting_leaves_nothing_behind() {
    testbed::require_root();
    require_tmux();
    let started = Instant::now();
    let terminal = Terminal::start();
    let screen = terminal.wait_screen(
        "alice's three talkers verified",
        Duration::from_secs(120),
        |s| {
            ALICE_TALKERS
                .iter()
                .all(|name| s.lines().any(|l| l.contains(name) && l.contains('✓')))
        },
    );
    eprintln!("verified {:?} after start:\n{screen}", started.elapsed());
    let report = parse_report(&terminal.demo_log());
    assert!(
        report.pids.iter().any(|(_, l)| l == "dialer")
            && report.pids.iter().any(|(_, l)| l == "matcher")
            && report.namespaces.len() >= 3
            && report.scratch.is_some(),
        "--timings did not report pids, namespaces and the scratch dir: {report:?}\n{}",
        terminal.demo_log()
    );
    // While it runs, its namespaces exist (the check below means something).
    let listed = netns_list();
    for ns in &report.namespaces {
        assert!(listed.contains(ns.as_str()), "{ns} missing while running");
    }

    terminal.tmux.send(&["q"]);
    let screen = terminal.wait_screen("the demo exited", Duration::from_secs(60), |s| {
        s.contains("splitdial exited with")
    });
    let log = terminal.demo_log();
    assert!(
        screen.contains("splitdial exited with 0"),
        "{screen}\n--- demo log:\n{log}"
    );
    assert!(log.contains("stopped every process"), "{log}");

    let listed = netns_list();
    for ns in &report.namespaces {
        assert!(!listed.contains(ns.as_str()), "{ns} left behind:\n{listed}");
    }
    let left: Vec<String> = report
        .pids
        .iter()
        .filter_map(|(pid, label)| still_running(*pid, label))
        .collect();
    assert!(left.is_empty(), "processes left running: {left:?}");
    let scratch = report.scratch.unwrap();
    assert!(!scratch.exists(), "{} left behind", scratch.display());
    let naming = processes_naming(&scratch.to_string_lossy());
    assert!(
        naming.is_empty(),
        "processes naming the scratch dir: {naming:?}"
    );
    eprintln!("whole test {:?}", started.elapsed());
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_non_root_user_is_told_what_is_needed() {
    testbed::require_root();
    testbed::require_program("setpriv", "util-linux");
    let mut command = std::process::Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_splitdial"))
        .arg("demo");
    let done = oneshot::run(command, Duration::from_secs(20)).unwrap();
    assert!(
        done.code() != Some(126) && !done.stderr.contains("Permission denied"),
        "nobody (uid 65534) cannot run {}: the build directory must be readable by every \
         user for this test: {done:?}",
        env!("CARGO_BIN_EXE_splitdial")
    );
    assert_eq!(done.code(), Some(2), "{done:?}");
    assert_eq!(done.stderr.lines().count(), 1, "{done:?}");
    assert!(done.stderr.contains("sudo splitdial demo"), "{done:?}");
    assert!(done.stdout.is_empty(), "{done:?}");
}

#[test]
fn a_splitdial_without_the_demo_beside_it_names_what_to_build() {
    // A copy of the dialer alone in a directory: no `splitdial-demo` there.
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("splitdial");
    // Copied by `cp`, not `std::fs::copy`: while this process holds the copy open for
    // writing, another test's thread may fork, and its child would hold the write
    // descriptor until its exec, so running the copy fails with "Text file busy"
    // (ETXTBSY). `cp`'s descriptor lives and dies in its own process.
    let copied = std::process::Command::new("cp")
        .arg(env!("CARGO_BIN_EXE_splitdial"))
        .arg(&alone)
        .status()
        .unwrap();
    assert!(copied.success(), "cp: {copied}");
    let mut command = std::process::Command::new(&alone);
    command.args(["demo", "--no-tui"]);
    let done = oneshot::run(command, Duration::from_secs(20)).unwrap();
    assert_eq!(done.code(), Some(1), "{done:?}");
    assert_eq!(done.stderr.lines().count(), 1, "{done:?}");
    let missing = dir.path().join("splitdial-demo");
    assert!(
        done.stderr.starts_with(&format!(
            "splitdial: demo: cannot run {}",
            missing.display()
        )),
        "{done:?}"
    );
    assert!(
        done.stderr.contains("`cargo build -p splitdial-demo`"),
        "{done:?}"
    );
    assert!(done.stdout.is_empty(), "{done:?}");
}
