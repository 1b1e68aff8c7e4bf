//! What the terminal tests share: a private tmux server driven through its
//! own socket (keys in with `send-keys`, the screen out with `capture-pane`).

// Each test file uses a different part of it.
#![allow(dead_code)]

use household::oneshot::{self, Finished};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Fails the calling test unless tmux is installed.
///
/// # Panics
/// Without tmux, saying how to install it.
pub fn require_tmux() {
    testbed::require_program("tmux", "tmux");
}

/// Gives `command` the clean environment a pane should start with: only
/// `PATH`, a UTF-8 xterm, and `HOME` plus the XDG directories under `home`
/// (created), so no configuration of the machine leaks in.
pub fn pane_env(command: &mut Command, home: &Path) {
    for name in ["config", "state", "data"] {
        std::fs::create_dir_all(home.join(name)).expect("XDG directory");
    }
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TERM", "xterm-256color")
        .env("LANG", "C.UTF-8")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_DATA_HOME", home.join("data"));
}

/// A tmux server of this test only (its socket is a file, so it is reachable
/// from any network namespace); the server, and only it, is killed on drop.
pub struct Tmux {
    socket: PathBuf,
    session: &'static str,
}

impl Tmux {
    /// Starts the server with one `columns`×`rows` session running `pane`.
    /// `launcher` is the `tmux` command to use (e.g. run inside a network
    /// namespace) with the pane's environment already set; `config` is the
    /// tmux configuration file (`/dev/null` for none).
    pub fn start(
        mut launcher: Command,
        socket: PathBuf,
        session: &'static str,
        (columns, rows): (u16, u16),
        config: &Path,
        pane: &[&OsStr],
    ) -> Self {
        launcher
            .arg("-S")
            .arg(&socket)
            .arg("-f")
            .arg(config)
            .args(["new-session", "-d", "-s", session])
            .args(["-x", &columns.to_string(), "-y", &rows.to_string()])
            .args(pane);
        let done = oneshot::run(launcher, Duration::from_secs(20)).expect("tmux new-session");
        assert!(done.status.success(), "tmux new-session: {done:?}");
        let tmux = Self { socket, session };
        // A fixed size even if tmux would rather fit a client.
        tmux.run(&[
            "resize-window",
            "-t",
            session,
            "-x",
            &columns.to_string(),
            "-y",
            &rows.to_string(),
        ]);
        tmux
    }

    /// `tmux -S SOCKET ARGS`, bounded in time, whatever its outcome.
    pub fn try_run(&self, args: &[&str]) -> Finished {
        let mut command = Command::new("tmux");
        command.arg("-S").arg(&self.socket).args(args);
        oneshot::run(command, Duration::from_secs(10)).expect("tmux")
    }

    /// `tmux -S SOCKET ARGS`, which must succeed.
    pub fn run(&self, args: &[&str]) -> Finished {
        let done = self.try_run(args);
        assert!(done.status.success(), "tmux {args:?}: {done:?}");
        done
    }

    /// Types keys (tmux key names: `Tab`, `Space`, `Enter`, `j`).
    pub fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// The screen as text.
    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", self.session]).stdout
    }

    /// One `#{format}` of the session's pane.
    pub fn pane_format(&self, format: &str) -> String {
        self.run(&["display-message", "-p", "-t", self.session, format])
            .stdout
            .trim()
            .to_owned()
    }

    /// Waits until `ready` holds for the screen; returns that screen.
    ///
    /// # Panics
    /// After `within`, with the screen and `context()` (the logs).
    pub fn wait_screen(
        &self,
        what: &str,
        within: Duration,
        context: impl Fn() -> String,
        ready: impl Fn(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        let mut screen = String::new();
        let shown = testbed::wait_until(&format!("the screen showing {what}"), within, || {
            screen = self.screen();
            ready(&screen).then(|| screen.clone())
        });
        match shown {
            Ok(shown) => {
                eprintln!("screen shows {what} after {:?}", start.elapsed());
                shown
            }
            Err(e) => panic!("{e}:\n{screen}\n{}", context()),
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.try_run(&["kill-server"]);
    }
}
