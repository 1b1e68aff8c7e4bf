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
//! Without root they are ignored (`scripts/test` runs them, as root); without
//! tmux they fail saying so.
//!
//! Two more tests: SIGTERM sent to the full-screen dialer (run directly as
//! the pane's command, so the pane's pid is splitdial's) ends it with exit
//! code 0 and the terminal restored (alternate screen left, cursor shown);
//! and an ordinary call from bob ringing on one of alice's talkers (answer
//! policy `manual`) shows up on alice's screen, `a` answers it through the
//! owner-token API and the talker reports the call connected; a second
//! call is declined with `d` and bob's call ends refused.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod support;

use household::{AnswerSpec, Household, HouseholdSpec, Placement};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{Tmux, pane_env, require_tmux};
use testbed::require_root;

/// The terminal's size.
const COLUMNS: u16 = 100;
const ROWS: u16 = 30;
/// The tmux session's name (on its own private server).
const SESSION: &str = "splitdial";

/// `splitdial` in one 100x30 pane of a private tmux server on the
/// household's dialer host.
struct Terminal<'a> {
    home: &'a Household,
    tmux: Tmux,
    dialer_log: PathBuf,
    dir: tempfile::TempDir,
}

impl<'a> Terminal<'a> {
    /// Starts tmux and, in it, `splitdial` logged in as `user`.
    fn start(home: &'a Household, user: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let dialer_log = dir.path().join("splitdial.log");
        // The pane keeps showing how splitdial ended, so a crash is visible
        // on the screen; the sleep ends with the server.
        let script = dir.path().join("dialer.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\n\"$SPLITDIAL\" 2>\"$SPLITDIAL_LOG\"\necho \"splitdial exited with $?\"\nexec sleep 600\n",
        )
        .unwrap();
        let mut launcher = home.dialer_command("tmux");
        // The server's environment is what the pane inherits.
        pane_env(&mut launcher, dir.path());
        launcher
            .env("SPLITDIAL", env!("CARGO_BIN_EXE_splitdial"))
            .env("SPLITDIAL_LOG", &dialer_log)
            .env("RUST_LOG", "info")
            .envs(home.dialer_env(user));
        let tmux = Tmux::start(
            launcher,
            dir.path().join("tmux.sock"),
            SESSION,
            (COLUMNS, ROWS),
            Path::new("/dev/null"),
            &["sh".as_ref(), script.as_os_str()],
        );
        Self {
            home,
            tmux,
            dialer_log,
            dir,
        }
    }

    /// Types keys (tmux key names: `Tab`, `Space`, `Enter`, `j`).
    fn send(&self, keys: &[&str]) {
        self.tmux.send(keys);
    }

    /// The screen as text.
    fn screen(&self) -> String {
        self.tmux.screen()
    }

    /// What splitdial logged so far.
    fn dialer_log(&self) -> String {
        std::fs::read_to_string(&self.dialer_log).unwrap_or_default()
    }

    /// Waits until `ready` holds for the screen; returns that screen.
    fn wait_screen(&self, what: &str, within: Duration, ready: impl Fn(&str) -> bool) -> String {
        let context = || {
            format!(
                "--- splitdial log:\n{}\n{}",
                self.dialer_log(),
                self.home.logs()
            )
        };
        self.tmux.wait_screen(what, within, context, ready)
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

#[test]
#[ignore = "needs root: run scripts/test"]
fn the_dialer_in_tmux_calls_bob_on_the_tv_and_hangs_up() {
    require_root();
    require_tmux();
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
    terminal.type_until(&["Space"], "the TV designated", |s| {
        s.contains(&format!("on {tv} (1st)"))
    });
    // Once designated, the TV is the only candidate: the dialer asks for the
    // routes again ("… routes" meanwhile) and the TV gets its mark back.
    terminal.wait_screen(
        "the designated TV's route mark",
        Duration::from_secs(20),
        |s| {
            line_with(s, &tv, "◆ family.example").is_some()
                && line_with(s, &pc, "not designated").is_some()
        },
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
    let bob_leg = home.wait_hears("bob-phone", "incoming", "tv", 0);
    assert!(
        bob_leg["peer"]
            .as_str()
            .is_some_and(|p| p.contains("sip:alice-tv@family.example")),
        "{bob_leg}"
    );
    home.wait_hears("tv", "referred", "bob-phone", 0);
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
    home.wait_no_calls("tv");
    home.wait_no_calls("bob-phone");

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

/// Polls `f` until it gives `Some`, or panics with `context()`.
fn poll<T>(
    what: &str,
    within: Duration,
    context: impl Fn() -> String,
    f: impl Fn() -> Option<T>,
) -> T {
    let start = Instant::now();
    let found =
        testbed::wait_until(what, within, f).unwrap_or_else(|e| panic!("{e}\n{}", context()));
    eprintln!("{what} after {:?}", start.elapsed());
    found
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn sigterm_ends_the_dialer_and_restores_the_terminal() {
    require_root();
    require_tmux();
    // No household: a dialer without mDNS whose matcher cannot be reached
    // (nothing listens on port 9 of this namespace's loopback) is a full
    // screen all the same.
    let dir = tempfile::tempdir().unwrap();
    let mut launcher = std::process::Command::new("tmux");
    pane_env(&mut launcher, dir.path());
    launcher.env("SPLITDIAL_TOKEN", "sdu_not-a-real-token");
    // A shell runs splitdial and writes down its exit status: tmux's own
    // `#{pane_dead_status}` stays empty when it sees the pty close before
    // the child's exit (seen here in about half of the runs).
    let exit_file = dir.path().join("exit-status");
    let tmux = Tmux::start(
        launcher,
        dir.path().join("tmux.sock"),
        SESSION,
        (COLUMNS, ROWS),
        Path::new("/dev/null"),
        &[
            "sh".as_ref(),
            "-c".as_ref(),
            "\"$0\" --no-discovery --matcher-url http://127.0.0.1:9; echo $? > \"$1\"; exec sleep 600"
                .as_ref(),
            env!("CARGO_BIN_EXE_splitdial").as_ref(),
            exit_file.as_os_str(),
        ],
    );
    let screen = || tmux.screen();

    // The dialer is up: its status bar is drawn on the alternate screen.
    poll(
        "the dialer's first frames",
        Duration::from_secs(30),
        screen,
        || {
            let s = screen();
            (tmux.pane_format("#{alternate_on}") == "1" && s.contains("LAN off")).then_some(())
        },
    );
    // What splitdial writes from now on, raw, to read its last words.
    let written = dir.path().join("pane-output");
    let pipe = format!("cat >> '{}'", written.display());
    tmux.run(&["pipe-pane", "-o", "-t", SESSION, &pipe]);
    let shell: u32 = tmux.pane_format("#{pane_pid}").parse().unwrap();
    let pid: u32 = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the pane's shell runs splitdial");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert_eq!(comm.trim(), "splitdial", "the pane's process is splitdial");
    // The matcher is unreachable, yet the dialer keeps running until told.
    std::thread::sleep(Duration::from_millis(500));
    assert!(!exit_file.exists(), "{}", screen());

    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = poll(
        "splitdial ended after SIGTERM",
        Duration::from_secs(20),
        screen,
        || {
            let text = std::fs::read_to_string(&exit_file).ok()?;
            text.ends_with('\n').then(|| text.trim().to_owned())
        },
    );
    // It exited by itself (SIGTERM is a quit, not a kill: a kill would be
    // 128 + the signal), with status 0, and left the terminal as a shell
    // expects it.
    assert_eq!(status, "0", "exit status:\n{}", screen());
    assert_eq!(
        tmux.pane_format("#{alternate_on}"),
        "0",
        "still on the alternate screen:\n{}",
        screen()
    );
    // The way out, as the terminal saw it: the alternate screen left, the
    // cursor shown and bracketed paste off, none undone afterwards.
    let tail = poll(
        "splitdial's restore sequences",
        Duration::from_secs(10),
        screen,
        || {
            let bytes = std::fs::read(&written).ok()?;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            text.contains("\x1b[?1049l").then_some(text)
        },
    );
    let last = |on: &str, off: &str| {
        let on = tail.rfind(on);
        let off = tail.rfind(off);
        off.is_some() && off > on
    };
    assert!(
        last("\x1b[?1049h", "\x1b[?1049l"),
        "alternate screen: {tail:?}"
    );
    assert!(
        last("\x1b[?25l", "\x1b[?25h"),
        "cursor still hidden: {tail:?}"
    );
    assert!(
        last("\x1b[?2004h", "\x1b[?2004l"),
        "bracketed paste still on: {tail:?}"
    );
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn an_ordinary_call_ringing_on_alices_talker_is_answered_from_the_dialer() {
    require_root();
    require_tmux();
    let started = Instant::now();
    // The demo household as it is: alice's talkers answer `manual`, bob's
    // phone is on family.example, and alice and bob are mutual contacts.
    let spec = HouseholdSpec::demo();
    for id in ["tv", "phone"] {
        assert_eq!(spec.talker(id).unwrap().answer, AnswerSpec::Manual);
    }
    let home = Household::start(spec, Placement::Lan).unwrap();
    eprintln!("household up in {:?}", started.elapsed());
    let tv = home.spec().talker("tv").unwrap().name.clone();
    let phone = home.spec().talker("phone").unwrap().name.clone();
    let terminal = Terminal::start(&home, "alice");
    // Owner actions go only to verified talkers.
    let screen = terminal.wait_screen("alice's talkers verified", Duration::from_secs(60), |s| {
        [&tv, &phone]
            .iter()
            .all(|name| line_with(s, name, "✓").is_some())
    });
    eprintln!("verified:\n{screen}");

    // bob calls alice from his phone through the matcher (what his dialer does).
    let placed = home
        .matcher_request(
            "bob",
            "POST",
            "/v1/calls",
            Some(r#"{"callee":"alice","talkers":["bob-phone"],"media":"audio"}"#),
        )
        .unwrap();
    assert_eq!(placed.status, 201, "{}", placed.body);
    let call_id = placed.json()["call"].as_str().unwrap().to_owned();

    // It rings on one of alice's family.example talkers (the agent decides
    // nothing: manual); her dialer shows it with the keys to answer.
    let ringing_on = home.wait_for(
        "a call ringing on alice's talker",
        Duration::from_secs(40),
        || {
            ["tv", "phone"].into_iter().find(|id| {
                home.talker_status(id).ok().is_some_and(|status| {
                    status["calls"].as_array().is_some_and(|calls| {
                        calls
                            .iter()
                            .any(|c| c["kind"] == "incoming" && c["state"] == "ringing")
                    })
                })
            })
        },
    );
    let name = home.spec().talker(ringing_on).unwrap().name.clone();
    let screen = terminal.wait_screen("the incoming call ringing", Duration::from_secs(30), |s| {
        s.contains(&format!("rings on {name}")) && s.contains("answer")
    });
    eprintln!("ringing on {ringing_on}:\n{screen}");

    // `a` answers: the talker reports the call connected and bob hears it.
    terminal.send(&["a"]);
    let leg = home.wait_hears(ringing_on, "incoming", "bob-phone", 0);
    assert!(
        leg["peer"].as_str().is_some_and(|p| p.contains("bob")),
        "{leg}"
    );
    let screen = terminal.wait_screen("the call connected", Duration::from_secs(30), |s| {
        s.contains(&format!("connected on {name}"))
    });
    eprintln!("answered:\n{screen}");

    // bob hangs up; the call leaves alice's talker and her screen.
    let hung_up = home
        .matcher_request("bob", "DELETE", &format!("/v1/calls/{call_id}"), None)
        .unwrap();
    assert!(
        matches!(hung_up.status, 200 | 202),
        "{} {}",
        hung_up.status,
        hung_up.body
    );
    home.wait_no_calls(ringing_on);
    home.wait_no_calls("bob-phone");
    terminal.wait_screen("the call gone", Duration::from_secs(30), |s| {
        !s.contains('☎')
    });

    // bob calls again; this time `d` declines, and bob's call ends refused.
    let placed = home
        .matcher_request(
            "bob",
            "POST",
            "/v1/calls",
            Some(r#"{"callee":"alice","talkers":["bob-phone"],"media":"audio"}"#),
        )
        .unwrap();
    assert_eq!(placed.status, 201, "{}", placed.body);
    let call_id = placed.json()["call"].as_str().unwrap().to_owned();
    let screen = terminal.wait_screen("the second call ringing", Duration::from_secs(40), |s| {
        s.contains(" rings on ")
    });
    eprintln!("ringing again:\n{screen}");
    terminal.send(&["d"]);
    let ended = home.wait_for("bob's call ended", Duration::from_secs(40), || {
        let call = home
            .matcher_request("bob", "GET", &format!("/v1/calls/{call_id}"), None)
            .ok()?
            .json();
        (call["state"] == "ended").then_some(call)
    });
    eprintln!("declined: {ended}");
    assert_eq!(ended["reason"], "callee_rejected", "{ended}");
    for id in ["tv", "phone", "bob-phone"] {
        home.wait_no_calls(id);
    }
    terminal.wait_screen("the declined call gone", Duration::from_secs(30), |s| {
        !s.contains('☎')
    });

    terminal.type_until(&["q"], "splitdial exited", |s| {
        s.contains("splitdial exited with")
    });
    assert!(
        terminal.screen().contains("splitdial exited with 0"),
        "{}",
        terminal.dialer_log()
    );
    eprintln!("whole test {:?}", started.elapsed());
    drop(terminal);
    home.shutdown();
}
