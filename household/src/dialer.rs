//! The `splitdial` dialer run as a subcommand on the household's `dialer`
//! host, the way the dialer's CLI tests and the end-to-end tests drive it:
//! its own empty HOME and XDG directories (no stray configuration), logged in
//! through the environment only.
//!
//! Its methods panic with every process's log when the dialer does not do
//! what they expect, because their callers are tests.

use crate::Household;
use crate::oneshot::{self, Finished};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Upper bound for one subcommand (a `talkers` browse is 3 s of it).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A dialer of one household.
#[derive(Debug)]
pub struct Dialer<'a> {
    home: &'a Household,
    program: PathBuf,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl<'a> Dialer<'a> {
    /// A dialer logged in as `user`, running `program` (the `splitdial`
    /// binary).
    ///
    /// # Panics
    /// When no temporary directory can be made.
    pub fn as_user(home: &'a Household, program: impl AsRef<Path>, user: &str) -> Self {
        Self::with_env(home, program, home.dialer_env(user))
    }

    /// A dialer with exactly this environment (besides PATH, HOME, XDG).
    ///
    /// # Panics
    /// When no temporary directory can be made.
    pub fn with_env(
        home: &'a Household,
        program: impl AsRef<Path>,
        env: Vec<(String, String)>,
    ) -> Self {
        Self {
            home,
            program: program.as_ref().to_path_buf(),
            dir: tempfile::tempdir().expect("a temporary directory for the dialer"),
            env,
        }
    }

    /// The household this dialer belongs to.
    pub fn home(&self) -> &Household {
        self.home
    }

    fn xdg(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(&path).expect("an XDG directory for the dialer");
        path
    }

    /// The command line for `splitdial ARGS` on the dialer's host.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = self.home.dialer_command(&self.program);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.xdg("config"))
            .env("XDG_STATE_HOME", self.xdg("state"))
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs `splitdial ARGS` to its end.
    ///
    /// # Panics
    /// When it cannot run or outlives a minute.
    pub fn run(&self, args: &[&str]) -> Finished {
        let started = Instant::now();
        let done = oneshot::run(self.command(args), COMMAND_TIMEOUT)
            .unwrap_or_else(|e| panic!("splitdial {args:?}: {e}\n{}", self.home.logs()));
        eprintln!(
            "splitdial {} -> {:?} in {:?}",
            args.join(" "),
            done.code(),
            started.elapsed()
        );
        done
    }

    /// Runs `splitdial ARGS` and insists on exit code `code`.
    ///
    /// # Panics
    /// On another exit code, with its output and the household's logs.
    pub fn expect(&self, args: &[&str], code: i32) -> Finished {
        let done = self.run(args);
        assert_eq!(
            done.code(),
            Some(code),
            "splitdial {args:?}\nstdout:\n{}\nstderr:\n{}\n{}",
            done.stdout,
            done.stderr,
            self.home.logs()
        );
        done
    }

    /// Runs `splitdial ARGS` expecting success and JSON on stdout.
    ///
    /// # Panics
    /// On failure or output that is not JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let done = self.expect(args, 0);
        serde_json::from_str(&done.stdout)
            .unwrap_or_else(|e| panic!("splitdial {args:?}: not JSON ({e}):\n{}", done.stdout))
    }

    /// `talkers --json` until every one of `ids` is verified (the first browse
    /// can be early for an advertisement); at most four browses.
    ///
    /// # Panics
    /// When they never all verify.
    pub fn talkers_verified(&self, ids: &[&str]) -> Value {
        let mut rows = Value::Null;
        for _ in 0..4 {
            rows = self.json(&["talkers", "--json", "--wait-lan", "3"]);
            if ids
                .iter()
                .all(|id| row_of(&rows, id)["status"] == "verified")
            {
                return rows;
            }
        }
        panic!("{ids:?} never all verified: {rows:#}\n{}", self.home.logs());
    }
}

/// The `talkers --json` row of talker `id` (`Value::Null` when absent).
pub fn row_of<'v>(rows: &'v Value, id: &str) -> &'v Value {
    rows.as_array()
        .and_then(|rows| rows.iter().find(|r| r["id"] == id))
        .unwrap_or(&Value::Null)
}
