//! What the dialer learns from the network, as plain data: the matcher's
//! answers (docs/matcher.md) and a talker's local status (docs/talker-agent.md).
//!
//! The wire types are the contract's own, from `splitdial-api` (the matcher
//! writes them with the same types); the same values serve the TUI, the
//! scriptable subcommands' `--json` output and the snapshot tests. What stays
//! here is the dialer's reading of a talker's media statistics, and
//! [`Problem`], why an answer did not come.

use serde::{Deserialize, Serialize};
use serde_json::Value;
pub use splitdial_api::{
    AccountState, CallEvent, CallState, Contact, ContactKind, EventDetail, Me, Media, PartyState,
    RegisteredAccount, RegisteredTalker, RouteView, Routes, TalkerCallKind, TalkerCallState,
    TalkerKind, TalkerSoftware,
};

/// A call as the matcher reports it (`POST /v1/calls`, `GET /v1/calls/{id}`).
pub type CallInfo = splitdial_api::Call;

/// A talker's own view of itself (`GET /v1/status` on its local API), read
/// with the media statistics the dialer shows.
pub type TalkerStatus = splitdial_api::TalkerStatus<MediaStats>;

/// One account in a talker's status.
pub type AgentAccount = splitdial_api::StatusAccount;

/// One call in a talker's status.
pub type AgentCall = splitdial_api::TalkerCall<MediaStats>;

/// Live media statistics of one call on a talker (its media engine's view).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MediaStats {
    /// Audio RTP counters.
    #[serde(default)]
    pub audio: Option<RtpStats>,
    /// Video RTP counters.
    #[serde(default)]
    pub video: Option<RtpStats>,
    /// What an `analyze` audio sink hears.
    #[serde(default)]
    pub sound: Option<SoundStats>,
    /// What an `analyze` video sink sees.
    #[serde(default)]
    pub picture: Option<PictureStats>,
}

/// RTP counters of one stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RtpStats {
    /// Codec name.
    #[serde(default)]
    pub codec: Value,
    /// Packets sent.
    #[serde(default)]
    pub packets_sent: u64,
    /// Packets received.
    #[serde(default)]
    pub packets_received: u64,
    /// Packets lost on the way in.
    #[serde(default)]
    pub packets_lost: u64,
    /// Interarrival jitter in ms.
    #[serde(default)]
    pub jitter_ms: f64,
}

/// What an `analyze` audio sink measures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SoundStats {
    /// Level of the last 100 ms in dBFS.
    #[serde(default)]
    pub level_dbfs: f64,
    /// The strongest frequency heard, in Hz.
    #[serde(default)]
    pub dominant_frequency_hz: Option<f64>,
}

/// What an `analyze` video sink counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PictureStats {
    /// Decoded frames.
    #[serde(default)]
    pub frames: u64,
    /// Width of the last frame.
    #[serde(default)]
    pub width: u32,
    /// Height of the last frame.
    #[serde(default)]
    pub height: u32,
}

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
