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
//!
//! Why child processes and not `setns`: `setns` moves only the calling thread, so a
//! tokio runtime's workers would stay behind in the old namespace.

pub mod avahi;
pub mod lan;
pub mod media_summary;
pub mod name;
pub mod netns;
pub mod postgres;
pub mod process;

pub use avahi::{AvahiStack, avahi_resolved};
pub use lan::{Lan, LanBuilder, LanHost};
pub use media_summary::MediaSummary;
pub use name::unique_name;
pub use netns::Namespace;
pub use postgres::{Postgres, postgres_available};
pub use process::{Process, Spawn, workspace_binary};

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
    /// Any other I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Whether this process runs as root (effective UID 0): network namespaces
/// need it, so tests that build a LAN skip themselves otherwise.
pub fn is_root() -> bool {
    // The effective UID is the second field of the `Uid:` line.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Result type of the test rig.
pub type Result<T> = std::result::Result<T, Error>;
