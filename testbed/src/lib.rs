//! The test rig every splitdial integration test reuses.
//!
//! * [`process`] starts programs as child processes, optionally inside a network
//!   namespace (`ip netns exec`), captures their output to a log file, and always
//!   ends them by PID when dropped.
//! * [`netns`] creates uniquely named network namespaces and removes them (after
//!   ending every process left inside) when dropped.
//! * [`name`] makes per-run unique names so parallel runs never collide.
//! * [`lan`] builds a simulated home LAN (a bridge namespace plus one namespace
//!   per host) and tears it down on drop.
//! * [`avahi`] runs the reference mDNS stack inside one LAN host; [`postgres`] a
//!   throw-away PostgreSQL server; [`kamailio`] the reference SIP server's
//!   command line; [`media_summary`] reads an agent's `media summary` log line.
//!
//! Test support that every crate's tests share (one home each, not a copy per
//! test file):
//!
//! * [`wait`]: [`wait_until`] polls a condition within a bound, blocking its
//!   thread; [`wait_until_async`] does the same on tokio's clock (paused time
//!   included).
//! * [`ports`]: [`free_port`] and [`free_port_pair`] on 127.0.0.1, for programs
//!   that must be told their port before they start.
//! * [`binary`]: [`workspace_binary`] (and [`find_binary`], which returns the
//!   error) finds a program of this build, or says how to build it.
//! * [`pki`]: [`TestPki`], a household CA in a temporary directory with a matcher
//!   certificate for loopback, and HTTP clients that trust it.
//! * [`matcher`]: [`start_matcher`] runs the matcher binary and reads the
//!   addresses of its ready line ([`MatcherReady`]).
//! * [`prerequisites`]: root-only tests carry
//!   `#[ignore = "needs root: run scripts/test"]` and begin with
//!   [`require_root`] and [`require_program`], so inside `scripts/test` (which
//!   runs them) a missing prerequisite fails with a clear message.
//!
//! Why child processes and not `setns`: `setns` moves only the calling thread, so a
//! tokio runtime's workers would stay behind in the old namespace.

pub mod avahi;
pub mod binary;
pub mod kamailio;
pub mod lan;
pub mod matcher;
pub mod media_summary;
pub mod name;
pub mod netns;
pub mod pki;
pub mod ports;
pub mod postgres;
pub mod prerequisites;
pub mod process;
pub mod secret_file;
pub mod wait;

pub use avahi::{AvahiStack, avahi_resolved};
pub use binary::{find_binary, workspace_binary};
pub use kamailio::{KAMAILIO_LOAD_MEMORY_MB, KAMAILIO_MEMORY_MB, kamailio};
pub use lan::{Lan, LanBuilder, LanHost};
pub use matcher::{MatcherReady, matcher_spawn, start_matcher};
pub use media_summary::MediaSummary;
pub use name::unique_name;
pub use netns::Namespace;
pub use pki::TestPki;
pub use ports::{free_port, free_port_pair};
pub use postgres::{Postgres, postgres_available};
pub use prerequisites::{
    NEEDS_ROOT, find_program, is_root, only_loopback, require_loopback_only_namespace,
    require_program, require_root,
};
pub use process::{Process, Spawn};
pub use secret_file::write_private;
pub use wait::{wait_until, wait_until_async};

/// Errors from the test rig.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A program could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program that failed to start.
        program: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// An `ip` command failed.
    #[error("`{command}` failed: {stderr}")]
    Ip {
        /// The command line that failed.
        command: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Waiting for something took longer than allowed.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited.
        after: std::time::Duration,
    },
    /// A program of this workspace is not built next to the running
    /// executable.
    #[error("{} is not built: run `{build}` (or `cargo build --workspace --bins`)", path.display())]
    MissingBinary {
        /// Where it was looked for.
        path: std::path::PathBuf,
        /// The command that builds it there.
        build: String,
    },
    /// Any other I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Result type of the test rig.
pub type Result<T> = std::result::Result<T, Error>;
