//! A splitdial household in a box: described as data, started as real
//! processes, torn down by PID.
//!
//! - [`spec`]: the household as plain data — SIP servers (domain, cost), users
//!   and their contacts, talkers (owner, kind, media, accounts, answer policy,
//!   test tone) — and [`HouseholdSpec::demo`], the demo household of issue 7.
//! - [`config_files`]: the users files and agent configurations written for it.
//! - [`running`]: [`Household::start`] runs one `sip-server` per domain, the
//!   `matcher` on a fresh SQLite file (registry filled with its admin
//!   commands), and per talker `talker-agent enroll` then `talker-agent`; it
//!   returns once the matcher sees every enrolled talker online.
//! - [`http`]: the small blocking HTTP client those checks use.
//! - [`oneshot`]: a command run to its end within a time bound (the dialer's
//!   subcommands in tests).
//! - [`dialer`]: the `splitdial` subcommands run on the household's dialer
//!   host, as the dialer's CLI tests and the end-to-end tests drive them.
//!
//! Two placements ([`Placement`]): everything on loopback without mDNS, or a
//! simulated LAN ([`testbed::Lan`], needs root) where each talker is its own
//! host advertising itself over mDNS, the servers and the matcher share a
//! `cloud` host, and a `dialer` host is left free for the dialer under test.
//! The matcher serves HTTPS with a certificate from the household's own CA
//! ([`pki`]); [`MatcherTransport::InsecureHttp`] asks for plain HTTP instead,
//! on loopback only (to measure what TLS costs).
//!
//! ```no_run
//! use household::{Household, HouseholdSpec, Placement};
//! # fn main() -> Result<(), household::Error> {
//! let home = Household::start(HouseholdSpec::demo(), Placement::Lan)?;
//! println!("matcher at {}, alice's token {:?}", home.matcher_url(), home.token("alice"));
//! home.shutdown();
//! # Ok(()) }
//! ```
//!
//! `sip-server`, `matcher` and `talker-agent` are found next to the running
//! executable ([`testbed::find_binary`]: the same target directory; a test's
//! `deps/` counts as its parent): build them first (`cargo build --workspace
//! --bins`). A missing one is [`testbed::Error::MissingBinary`] (inside
//! [`Error::Testbed`]), which names it and the command that builds it.

pub mod baresip;
pub mod config_files;
pub mod dialer;
pub mod http;
pub mod kamailio;
pub mod oneshot;
pub mod pki;
pub mod running;
pub mod spec;
pub mod talker_https;

pub use running::{Household, Placement, RunningServer, RunningTalker, call_of_kind};
pub use spec::{
    AccountSpec, AnswerSpec, ContactSpec, HouseholdSpec, MatcherTransport, ServerSoftware,
    ServerSpec, TalkerSoftware, TalkerSpec, UserSpec,
};

/// Why a household could not be started or asked something.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec contradicts itself (unknown server, duplicate id, ...).
    #[error("household spec: {0}")]
    Spec(String),
    /// Starting a process or building the LAN failed.
    #[error(transparent)]
    Testbed(#[from] testbed::Error),
    /// A file or socket operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A one-shot command (an admin command, an enrollment) failed.
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        /// The command line (no secrets: tokens go through the environment).
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed.
        output: String,
    },
    /// A program printed something outside its contract.
    #[error("{what}: unexpected output: {output}")]
    Output {
        /// What was being read.
        what: String,
        /// What came instead.
        output: String,
    },
    /// Something did not happen in time; `what` carries the logs that explain it.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited, and the relevant logs.
        what: String,
        /// How long we waited.
        after: std::time::Duration,
    },
}
