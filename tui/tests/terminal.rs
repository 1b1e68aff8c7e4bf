//! The real `splitdial` binary in a real terminal: tmux (100x30, a private
//! server socket) on the `dialer` host of a simulated LAN where the demo
//! household runs (`household` crate: `sip-server`s, `matcher`, enrolled
//! talker agents advertising over mDNS). Keys are typed with `send-keys` and
//! the screen is read with `capture-pane`: the talkers appear verified, bob
//! is selected, the TV is designated and shows its shared server, Enter
//! calls, the screen shows the call connected while bob's agent reports the
//! call with alice's tone, `h` hangs up and the call ends, `q` quits cleanly.
//!
//! Needs root (network namespaces), tmux, and the workspace built
//! (`cargo build --workspace`); run inside a private network namespace:
//! `unshare --net -- sh -c 'ip link set lo up && cargo test -p splitdial-tui --offline --test terminal'`.
//! Without root or tmux the test says it is skipped and passes.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use household::oneshot::{self, Finished};
use household::{Household, HouseholdSpec, Placement};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The terminal's size.
const COLUMNS: u16 = 100;
const ROWS: u16 = 30;
/// The tmux session's name (on its own private server).
const SESSION: &str = "splitdial";

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn tmux_available() -> bool {
    std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A private tmux server running `splitdial` in one 100x30 pane on the
/// household's dialer host; its server (and only it) is killed on drop.
struct Terminal<'a> {
    home: &'a Household,
    socket: PathBuf,
    dialer_log: PathBuf,
    dir: tempfile::TempDir,
}

impl<'a> Terminal<'a> {
    /// Starts tmux and, in it, `splitdial` logged in as `user`.
    fn start(home: &'a Household, user: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("tmux.sock");
        let dialer_log = dir.path().join("splitdial.log");
        // The pane keeps showing how splitdial ended, so a crash is visible
        // on the screen; the sleep ends with the server.
        let script = dir.path().join("dialer.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\n\"$SPLITDIAL\" 2>\"$SPLITDIAL_LOG\"\necho \"splitdial exited with $?\"\nexec sleep 600\n",
        )
        .unwrap();
        for name in ["config", "state", "data"] {
            std::fs::create_dir_all(dir.path().join(name)).unwrap();
        }
        let mut command = home.dialer_command("tmux");
        command
            .arg("-S")
            .arg(&socket)
            .args(["-f", "/dev/null", "new-session", "-d", "-s", SESSION])
            .args(["-x", &COLUMNS.to_string(), "-y", &ROWS.to_string()])
            .arg("sh")
            .arg(&script)
            // The server's environment is what the pane inherits.
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TERM", "xterm-256color")
            .env("LANG", "C.UTF-8")
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("SPLITDIAL", env!("CARGO_BIN_EXE_splitdial"))
            .env("SPLITDIAL_LOG", &dialer_log)
            .env("RUST_LOG", "info")
            .envs(home.dialer_env(user));
        let done = oneshot::run(command, Duration::from_secs(20)).unwrap();
        assert!(done.status.success(), "tmux new-session: {done:?}");
        let terminal = Self {
            home,
            socket,
            dialer_log,
            dir,
        };
        // A fixed size even if tmux would rather fit a client.
        terminal.tmux(&[
            "resize-window",
            "-t",
            SESSION,
            "-x",
            &COLUMNS.to_string(),
            "-y",
            &ROWS.to_string(),
        ]);
        terminal
    }

    /// Runs `tmux -S SOCKET ARGS` (the socket is a file: reachable from any
    /// network namespace).
    fn tmux(&self, args: &[&str]) -> Finished {
        let mut command = std::process::Command::new("tmux");
        command.arg("-S").arg(&self.socket).args(args);
        let done = oneshot::run(command, Duration::from_secs(10)).unwrap();
        assert!(done.status.success(), "tmux {args:?}: {done:?}");
        done
    }

    /// Types keys (tmux key names: `Tab`, `Space`, `Enter`, `j`).
    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", SESSION];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// The screen as text.
    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", SESSION]).stdout
    }

    /// What splitdial logged so far.
    fn dialer_log(&self) -> String {
        std::fs::read_to_string(&self.dialer_log).unwrap_or_default()
    }

    /// Waits until `ready` holds for the screen; returns that screen.
    fn wait_screen(&self, what: &str, within: Duration, ready: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ready(&screen) {
                eprintln!("screen shows {what} after {:?}", start.elapsed());
                return screen;
            }
            if start.elapsed() > within {
                panic!(
                    "the screen never showed {what} within {within:?}:\n{screen}\n--- splitdial log:\n{}\n{}",
                    self.dialer_log(),
                    self.home.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Types `keys`, then waits until `ready` holds for the screen.
    fn type_until(&self, keys: &[&str], what: &str, ready: impl Fn(&str) -> bool) -> String {
        self.send(keys);
        self.wait_screen(what, Duration::from_secs(20), ready)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Terminal<'_> {
    fn drop(&mut self) {
        // Only this test's server, through its own socket.
        let mut command = std::process::Command::new("tmux");
        command.arg("-S").arg(&self.socket).arg("kill-server");
        let _ = oneshot::run(command, Duration::from_secs(10));
    }
}

/// The screen line that shows talker `name`'s row (or footer) with `needle`.
fn line_with<'s>(screen: &'s str, name: &str, needle: &str) -> Option<&'s str> {
    screen
        .lines()
        .find(|l| l.contains(name) && l.contains(needle))
}

/// Whether the call pane's timeline shows the call connected (the stage
/// marked current `●` or done `✓`, not pending `·`).
fn shows_connected(screen: &str) -> bool {
    screen.lines().any(|l| {
        let Some(at) = l.find(" connected") else {
            return false;
        };
        let before = &l[..at];
        (before.contains('●') || before.contains('✓')) && before.contains('s')
    })
}

/// The number after `↓` on the call pane's audio statistics line.
fn packets_received_on_screen(screen: &str) -> Option<u64> {
    let line = screen
        .lines()
        .find(|l| l.contains("pkts") && l.contains('↓'))?;
    let after = &line[line.find('↓')? + '↓'.len_utf8()..];
    after
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The frequency on the statistics' `tone N Hz`.
fn tone_on_screen(screen: &str) -> Option<f64> {
    let at = screen.find("tone ")?;
    screen[at + 5..].split_whitespace().next()?.parse().ok()
}

/// Polls `f` every 300 ms until it gives `Some`, or fails with the logs.
fn wait_for<T>(home: &Household, what: &str, within: Duration, f: impl Fn() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < within,
            "no {what} within {within:?}\n{}",
            home.logs()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Waits until `listener`'s call of `kind` is connected and hears
/// `speaker`'s tone (its status API's analyzer, within 3 %).
fn wait_hears(home: &Household, listener: &str, kind: &str, speaker: &str) -> Value {
    let tone = home.talker(speaker).unwrap().spec.tone_hz;
    wait_for(
        home,
        &format!("{listener} hearing {speaker}'s {tone} Hz"),
        Duration::from_secs(40),
        || {
            let status = home.talker_status(listener).ok()?;
            let leg = status["calls"]
                .as_array()?
                .iter()
                .find(|c| c["kind"] == kind)?
                .clone();
            let heard = leg["media"]["sound"]["dominant_frequency_hz"].as_f64()?;
            (leg["state"] == "connected" && (heard - tone).abs() < tone * 0.03).then_some(leg)
        },
    )
}

fn wait_no_calls(home: &Household, id: &str) {
    wait_for(
        home,
        &format!("{id} without calls"),
        Duration::from_secs(30),
        || {
            let status = home.talker_status(id).ok()?;
            status["calls"]
                .as_array()
                .is_some_and(Vec::is_empty)
                .then_some(())
        },
    );
}

#[test]
fn the_dialer_in_tmux_calls_bob_on_the_tv_and_hangs_up() {
    if !is_root() || !tmux_available() {
        eprintln!("skipped: needs root (simulated LAN) and tmux");
        return;
    }
    let started = Instant::now();
    let home = Household::start(HouseholdSpec::demo(), Placement::Lan).unwrap();
    eprintln!("household up in {:?}", started.elapsed());
    let tv = home.spec().talker("tv").unwrap().name.clone();
    let pc = home.spec().talker("pc").unwrap().name.clone();
    let phone = home.spec().talker("phone").unwrap().name.clone();
    let terminal = Terminal::start(&home, "alice");
    let launched = Instant::now();

    // alice's three talkers appear, verified over the LAN.
    let screen = terminal.wait_screen("every talker verified", Duration::from_secs(60), |s| {
        [&tv, &pc, &phone]
            .iter()
            .all(|name| line_with(s, name, "✓").is_some())
    });
    eprintln!(
        "talkers verified {:?} after launch:\n{screen}",
        launched.elapsed()
    );

    // bob is the selected contact (the contacts pane has the focus first).
    let mut screen = screen;
    for _ in 0..4 {
        if line_with(&screen, "bob", "▸").is_some() {
            break;
        }
        screen = terminal.type_until(&["j"], "the next contact", |_| true);
    }
    let screen = terminal.wait_screen("talkers for bob", Duration::from_secs(20), |s| {
        s.contains("for bob")
    });
    assert!(line_with(&screen, "bob", "▸").is_some(), "{screen}");
    // Route marks for bob: the TV shares family.example with him, the PC
    // (work.example only) shares nothing, and says so.
    let screen = terminal.wait_screen("the route marks", Duration::from_secs(20), |s| {
        line_with(s, &tv, "◆ family.example").is_some()
            && line_with(s, &pc, "✗ no shared server").is_some()
    });
    assert!(
        line_with(&screen, &phone, "◆ family.example").is_some(),
        "{screen}"
    );

    // In the talkers pane, put the cursor on the TV (the footer names the
    // selected talker) and designate it.
    terminal.send(&["Tab", "k", "k", "k", "k", "k", "k"]);
    let footer = format!("{tv}: verified");
    let mut on_tv = false;
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(400));
        if terminal.screen().contains(&footer) {
            on_tv = true;
            break;
        }
        terminal.send(&["j"]);
    }
    assert!(on_tv, "never selected the TV:\n{}", terminal.screen());
    let screen = terminal.type_until(&["Space"], "the TV designated", |s| {
        s.contains(&format!("on {tv} (1st)"))
    });
    // Once designated, the TV is the only candidate: still its route mark.
    assert!(
        line_with(&screen, &tv, "◆ family.example").is_some(),
        "{screen}"
    );
    assert!(
        line_with(&screen, &pc, "not designated").is_some(),
        "{screen}"
    );

    // Enter calls; bob's phone auto-answers alice's TV.
    let called = Instant::now();
    terminal.send(&["Enter"]);
    let screen = terminal.wait_screen(
        "the call connected",
        Duration::from_secs(60),
        shows_connected,
    );
    eprintln!(
        "connected on screen {:?} after Enter:\n{screen}",
        called.elapsed()
    );
    let bob_leg = wait_hears(&home, "bob-phone", "incoming", "tv");
    assert!(
        bob_leg["peer"]
            .as_str()
            .is_some_and(|p| p.contains("sip:alice-tv@family.example")),
        "{bob_leg}"
    );
    wait_hears(&home, "tv", "referred", "bob-phone");
    assert!(screen.contains("via family.example"), "{screen}");
    // The live statistics show audio arriving on the TV, and bob's tone.
    let bob_tone = home.talker("bob-phone").unwrap().spec.tone_hz;
    let screen = terminal.wait_screen("packets and bob's tone", Duration::from_secs(30), |s| {
        packets_received_on_screen(s).is_some_and(|n| n > 0)
            && tone_on_screen(s).is_some_and(|hz| (hz - bob_tone).abs() < bob_tone * 0.03)
    });
    eprintln!("in call:\n{screen}");

    // `h` hangs up: the screen says so and both agents' calls end.
    let screen = terminal.type_until(&["h"], "the call ended", |s| {
        s.contains("ended: you hung up")
    });
    eprintln!("ended:\n{screen}");
    wait_no_calls(&home, "tv");
    wait_no_calls(&home, "bob-phone");

    // `q` quits and splitdial exits 0 (the pane shows how it ended).
    terminal.type_until(&["q"], "splitdial exited", |s| {
        s.contains("splitdial exited with")
    });
    let screen = terminal.screen();
    assert!(
        screen.contains("splitdial exited with 0"),
        "{screen}\n--- splitdial log:\n{}",
        terminal.dialer_log()
    );
    eprintln!(
        "whole test {:?}; scratch dir {}",
        started.elapsed(),
        terminal.path().display()
    );
    drop(terminal);
    home.shutdown();
}
