//! What the dialer learns from the network, as plain data: the matcher's
//! answers (docs/matcher.md) and a talker's local status (docs/talker-agent.md).
//!
//! The wire types are the contract's own, from `splitdial-api` (the matcher
//! writes them with the same types), and a talker's media statistics are its
//! media worker's, from `splitdial-media` (the agent sends them as the worker
//! reports them); the same values serve the TUI, the scriptable subcommands'
//! `--json` output and the snapshot tests. What stays here is [`Problem`],
//! why an answer did not come.

use serde::{Deserialize, Serialize};
pub use splitdial_api::{
    AccountState, CallEvent, CallState, Contact, ContactKind, EventDetail, Held, Me, Media,
    PartyState, RegisteredAccount, RegisteredTalker, RouteView, Routes, TalkerCallKind,
    TalkerCallState, TalkerKind, TalkerSoftware,
};
pub use splitdial_media::{Codec, Direction, MediaStats, PictureStats, RtpStats, SoundStats};

/// A call as the matcher reports it (`POST /v1/calls`, `GET /v1/calls/{id}`).
pub type CallInfo = splitdial_api::Call;

/// A talker's own view of itself (`GET /v1/status` on its local API), with
/// each call's media statistics as the talker's media worker reports them
/// (statistics this dialer cannot read, e.g. from a newer agent, read as
/// none: docs/dialer.md, "Media statistics").
pub type TalkerStatus = splitdial_api::TalkerStatus<MediaStats>;

/// One account in a talker's status.
pub type AgentAccount = splitdial_api::StatusAccount;

/// One call in a talker's status.
pub type AgentCall = splitdial_api::TalkerCall<MediaStats>;

/// Why a request to the matcher or a talker did not give an answer, in the
/// terms an error pane shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Problem {
    /// Nothing answered (connection refused, timeout, DNS).
    #[error("{what} unreachable: {message}")]
    Unreachable {
        /// `matcher` or the talker's name.
        what: String,
        /// The transport error, one line.
        message: String,
    },
    /// It answered with an error (`{"error": {"code", "message", ...}}`).
    #[error("{status} {code}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Stable error code (`no_shared_server`, `unauthorized`, ...).
        code: String,
        /// Human message.
        message: String,
        /// `caller_servers` with `no_shared_server`.
        #[serde(default)]
        caller_servers: Vec<String>,
        /// `callee_servers` with `no_shared_server`.
        #[serde(default)]
        callee_servers: Vec<String>,
    },
    /// It answered outside the contract (bad JSON, wrong shape).
    #[error("{what} answered outside the contract: {message}")]
    Protocol {
        /// Who answered.
        what: String,
        /// What was wrong.
        message: String,
    },
}
