//! What the dialer learns from the network, as plain data: the matcher's
//! answers (docs/matcher.md) and a talker's local status (docs/talker-agent.md).
//!
//! These types mirror the wire contracts, so the same structs serve the TUI,
//! the scriptable subcommands' `--json` output and the snapshot tests.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /v1/me`: who the bearer token belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// The user's numeric id.
    pub id: i64,
    /// Login name.
    pub name: String,
    /// Human name, when set.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// What runs on a talker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TalkerSoftware {
    /// splitdial's talker agent: it proves itself with its key.
    #[default]
    Agent,
    /// A third-party SIP phone its owner added: it has no key to prove itself
    /// with and no status API; the matcher's probes say whether it is online,
    /// and its calls are handed off once it has transferred them.
    SipPhone,
    /// A kind this dialer does not know yet: treated as an agent.
    #[serde(other)]
    Unknown,
}

/// One of my talkers as the matcher's registry holds it (`GET /v1/me/talkers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredTalker {
    /// Talker id (the same id its mDNS advertisement carries).
    pub id: String,
    /// Human name ("Living room TV").
    pub name: String,
    /// Device kind: `tv`, `pc`, `phone`, `tablet`, `speaker` or `other`.
    pub kind: String,
    /// `audio` or `video`.
    pub media: String,
    /// The enrolled Ed25519 public key (standard base64): the only key a
    /// challenge answer is checked with. Empty for a SIP phone.
    pub public_key: String,
    /// What runs on it.
    #[serde(default)]
    pub software: TalkerSoftware,
    /// Whether its heartbeats are fresh.
    pub online: bool,
    /// Unix seconds of its last heartbeat.
    #[serde(default)]
    pub last_seen: Option<i64>,
    /// Its SIP accounts.
    #[serde(default)]
    pub accounts: Vec<RegisteredAccount>,
}

/// One SIP account of a registered talker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredAccount {
    /// Address of record (`sip:alice-tv@family.example`).
    pub aor: String,
    /// The server domain it lives on.
    pub server: String,
    /// Registered and its talker online.
    pub registered: bool,
}

/// One of my contacts (`GET /v1/me/contacts`): never their devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The name I call them by (what `callee` means in the API).
    pub name: String,
    /// `user` (another splitdial user) or `address` (a plain SIP address).
    pub kind: String,
    /// For a user contact: whether both sides accepted.
    pub accepted: bool,
    /// Server domains where they can be reached.
    #[serde(default)]
    pub servers: Vec<String>,
}

/// `GET /v1/routes`: ranked routes from my talkers to one contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routes {
    /// The contact's name.
    pub callee: String,
    /// `audio` or `video`.
    pub media: String,
    /// Best first.
    pub routes: Vec<RouteView>,
}

/// One route as the matcher explains it to the dialer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteView {
    /// 1 is best.
    pub rank: usize,
    /// My talker's id.
    pub talker: String,
    /// My talker's name.
    pub talker_name: String,
    /// My account that would dial.
    pub account: String,
    /// The shared server.
    pub server: String,
    /// The server's cost.
    pub cost: u32,
    /// `audio` or `video`: what the route can carry.
    pub media: String,
    /// Whether my talker is online on that account.
    pub talker_online: bool,
    /// Whether no end of the route is known offline.
    pub online: bool,
    /// Why it ranks where it does ("online · video on both · cost 1").
    pub reason: String,
}

/// A call as the matcher reports it (`POST /v1/calls`, `GET /v1/calls/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallInfo {
    /// The matcher's call id.
    pub call: String,
    /// Latest state word.
    pub state: CallState,
    /// End reason code, once ended.
    #[serde(default)]
    pub reason: Option<String>,
    /// `audio` or `video`.
    pub media: String,
    /// The chosen route (a [`RouteView`] as JSON), when known.
    #[serde(default)]
    pub route: Value,
    /// Unix seconds it was requested.
    pub created_at: i64,
    /// Unix seconds it ended.
    #[serde(default)]
    pub ended_at: Option<i64>,
}

/// A call's states, in the order a successful call passes them (DESIGN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// The matcher is ranking routes.
    Matching,
    /// The control INVITE is on its way to my talker.
    DialingTalker,
    /// My talker answered the control leg.
    TalkerAnswered,
    /// The callee's device rings.
    CalleeRinging,
    /// Both talkers are connected; media flows.
    Connected,
    /// A third-party talker took the call over (connected, no longer steerable).
    HandedOff,
    /// The matcher lost the control leg (restart); media may still flow.
    LostControl,
    /// Over; the event's detail carries the reason.
    Ended,
}

impl CallState {
    /// Whether nothing more happens after this state.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Ended | Self::HandedOff | Self::LostControl)
    }

    /// The state word as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Matching => "matching",
            Self::DialingTalker => "dialing_talker",
            Self::TalkerAnswered => "talker_answered",
            Self::CalleeRinging => "callee_ringing",
            Self::Connected => "connected",
            Self::HandedOff => "handed_off",
            Self::LostControl => "lost_control",
            Self::Ended => "ended",
        }
    }
}

/// One Server-Sent Event of `GET /v1/calls/{id}/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEvent {
    /// The call.
    pub call: String,
    /// 1, 2, 3... per call.
    pub seq: i64,
    /// The state reached.
    pub state: CallState,
    /// RFC 3339 time of the change.
    pub at: String,
    /// `{"reason": ..., "sip_code": ...}` on `ended`, `{"party": n}` for a
    /// later party, else `{}`.
    #[serde(default)]
    pub detail: Value,
}

impl CallEvent {
    /// The end reason code, on `ended`.
    pub fn reason(&self) -> Option<&str> {
        self.detail.get("reason").and_then(Value::as_str)
    }

    /// The party this event is about (1 is the first callee).
    pub fn party(&self) -> u32 {
        self.detail
            .get("party")
            .and_then(Value::as_u64)
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(1)
    }
}

/// A talker's own view of itself (`GET /v1/status` on its local API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TalkerStatus {
    /// Talker id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Device kind.
    pub kind: String,
    /// `["audio"]` or `["audio", "video"]`.
    #[serde(default)]
    pub media: Vec<String>,
    /// Its SIP accounts and their registration state.
    #[serde(default)]
    pub accounts: Vec<AgentAccount>,
    /// Its calls right now.
    #[serde(default)]
    pub calls: Vec<AgentCall>,
}

/// One account in a talker's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentAccount {
    /// Address of record.
    pub aor: String,
    /// `registering`, `registered`, `failed` or `unregistered`.
    pub state: String,
    /// Why it failed, when it did.
    #[serde(default)]
    pub reason: Option<String>,
}

/// One call in a talker's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentCall {
    /// The talker's local call id (what the owner actions address).
    pub id: u64,
    /// `control`, `referred` or `incoming`.
    pub kind: String,
    /// `dialing`, `ringing` or `connected`.
    pub state: String,
    /// The SIP Call-ID (what an owner token is bound to).
    pub sip_call_id: String,
    /// The other end's address.
    #[serde(default)]
    pub peer: Option<String>,
    /// Live media statistics, once media runs.
    #[serde(default)]
    pub media: Option<MediaStats>,
}

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
