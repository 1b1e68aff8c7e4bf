//! A throw-away PostgreSQL server for tests: a fresh cluster in a temporary
//! directory, listening only on a Unix socket in that directory (no TCP, so it
//! works the same inside any network namespace), stopped and removed on drop.

use crate::process::{Process, Spawn};
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A running PostgreSQL cluster owned by one test.
#[derive(Debug)]
pub struct Postgres {
    server: Process,
    dir: tempfile::TempDir,
}

/// The PostgreSQL server programs' folder (`/usr/lib/postgresql/N/bin`), the
/// newest version installed.
fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// Whether PostgreSQL's server programs are installed here.
pub fn postgres_available() -> bool {
    bin_dir().is_some()
}

/// `setpriv` arguments that run a program as the package's `postgres` user; it
/// execs the program, so the PID we hold is the server's own.
const AS_POSTGRES: [&str; 4] = [
    "--reuid=postgres",
    "--regid=postgres",
    "--init-groups",
    "--",
];

fn run_as_postgres(program: &Path, args: &[&str]) -> Result<()> {
    // The server refuses to run as root: use the package's `postgres` user.
    let out = Command::new("setpriv")
        .args(AS_POSTGRES)
        .arg(program)
        .args(args)
        .output()
        .map_err(|source| Error::Spawn {
            program: "setpriv".into(),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Io(std::io::Error::other(format!(
            "{} failed: {}",
            program.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))))
    }
}

impl Postgres {
    /// Creates and starts a cluster; returns once it accepts connections.
    pub fn start() -> Result<Self> {
        let bin = bin_dir().ok_or_else(|| {
            Error::Io(std::io::Error::other(
                "PostgreSQL is not installed (scripts/install-deps installs it)",
            ))
        })?;
        let dir = tempfile::Builder::new().prefix("testbed-pg-").tempdir()?;
        let chown = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()?;
        if !chown.success() {
            return Err(Error::Io(std::io::Error::other(
                "chown of the cluster dir failed",
            )));
        }
        let data = dir.path().join("data");
        let data_str = data.to_string_lossy().into_owned();
        run_as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                &data_str,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        let socket_dir = dir.path().to_string_lossy().into_owned();
        let mut server = Spawn::new("setpriv")
            .args(AS_POSTGRES)
            .arg(bin.join("postgres"))
            .args([
                "-D",
                &data_str,
                "-k",
                &socket_dir,
                "-c",
                "listen_addresses=",
            ])
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .label("postgres")
            .start()?;
        server.wait_for_output(
            "database system is ready to accept connections",
            Duration::from_secs(30),
        )?;
        Ok(Self { server, dir })
    }

    /// Creates database `name` and returns its URL (Unix socket).
    pub fn create_database(&self, name: &str) -> Result<String> {
        let bin = bin_dir().ok_or_else(|| Error::Io(std::io::Error::other("no PostgreSQL")))?;
        let socket_dir = self.dir.path().to_string_lossy().into_owned();
        run_as_postgres(
            &bin.join("createdb"),
            &["-h", &socket_dir, "-U", "postgres", name],
        )?;
        Ok(self.url(name))
    }

    /// URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://postgres@localhost/{name}?host={}",
            self.dir.path().display()
        )
    }

    /// The server process.
    pub fn process(&self) -> &Process {
        &self.server
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for clients);
        // the `Process` then reaps it, with SIGKILL as the last resort.
        let _ = self.server.signal(nix::sys::signal::Signal::SIGINT);
        let _ = self.server.stop(Duration::from_secs(10));
    }
}
