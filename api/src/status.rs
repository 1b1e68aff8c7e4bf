//! A talker's local API, on the port its DNS-SD advertisement names
//! (docs/talker-agent.md, "Local status API"): `GET /v1/status`,
//! `POST /v1/challenge` and the owner's `POST /v1/calls/{id}/{action}`
//! (an [`OwnerAction`] with an owner token). Errors are [`crate::ErrorBody`].
//!
//! The media statistics of a call are the media worker's own contract and
//! live with it: [`TalkerStatus`] and [`TalkerCall`] take their type as a
//! parameter (`M`), so the agent sends its statistics and the dialer reads
//! them with the same type. Statistics a reader cannot read (a codec word a
//! newer agent negotiates, a field an agent of another version lacks that
//! the type requires) read as no statistics: the call, and the status
//! around it, still read, as a talker with a software word the reader does
//! not know still lists ([`crate::TalkerSoftware::Unknown`]).

use crate::owner_tokens::OwnerAction;
use crate::talker::{Media, TalkerKind};
use crate::word::wire_words;
use serde::{Deserialize, Deserializer, Serialize};

/// `GET /v1/status`: who the talker is and what it is doing. Never a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TalkerStatus<M> {
    /// Talker id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Device kind.
    pub kind: TalkerKind,
    /// `["audio"]` or `["audio", "video"]`.
    #[serde(default)]
    pub media: Vec<Media>,
    /// Its SIP accounts and their registration.
    #[serde(default)]
    pub accounts: Vec<StatusAccount>,
    /// Its calls right now.
    // A default by path: plain `default` would ask `M: Default`.
    #[serde(default = "Vec::new")]
    pub calls: Vec<TalkerCall<M>>,
}

/// One account in a talker's status: `{"aor", "state", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusAccount {
    /// Address of record.
    pub aor: String,
    /// Where its registration stands (the `state` word and its fields).
    #[serde(flatten)]
    pub registration: AccountState,
}

/// Where one account's registration stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AccountState {
    /// The first REGISTER is under way.
    Registering,
    /// Registered.
    Registered {
        /// Seconds granted by the server.
        expires: u32,
        /// The device's public GRUU, when the server gave one.
        gruu: Option<String>,
    },
    /// The server refused or could not be reached; retrying with back-off.
    Failed {
        /// Why, in a few words (a status line or a transport error).
        reason: String,
    },
    /// Un-registered (shutdown).
    Unregistered,
}

/// One call on the talker; `M` is the media statistics' type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TalkerCall<M> {
    /// The talker's own id for the call (what the owner actions address).
    pub id: u64,
    /// What kind of leg it is.
    pub kind: TalkerCallKind,
    /// Where it stands.
    pub state: TalkerCallState,
    /// The SIP Call-ID (what an owner token is bound to); empty until known.
    pub sip_call_id: String,
    /// The other end (a SIP URI).
    #[serde(default)]
    pub peer: String,
    /// Live media statistics, once media runs (`null` before); statistics
    /// this reader cannot read as `M` read as `None` (see the module).
    // A default by path: plain `default` would ask `M: Default`.
    #[serde(
        default = "Option::default",
        deserialize_with = "readable_or_none",
        bound(deserialize = "M: Deserialize<'de>")
    )]
    pub media: Option<M>,
    /// Whether the call is on hold, and by which end (`null`: not held). An
    /// agent without the field reads as not held.
    #[serde(default)]
    pub held: Option<Held>,
    /// The DTMF digits received in this call, oldest first (`0`-`9`, `*`,
    /// `#`, `A`-`D`; at most the last [`DTMF_RECEIVED_MAX`]). An agent without
    /// the field reads as none received.
    #[serde(default)]
    pub dtmf_received: String,
}

/// How many received DTMF digits a call's status keeps: the latest ones.
pub const DTMF_RECEIVED_MAX: usize = 64;

/// Which end put a call on hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Held {
    /// The far end did: its offer was `sendonly` or `inactive`, so we stopped sending.
    ByPeer,
    /// This talker did.
    ByUs,
}

/// Reads `M`, or `None` for `null` and for whatever does not read as `M`.
/// The statistics are the media worker's own contract, whose words (codecs,
/// directions) grow with it; one unreadable report must not cost the reader
/// the status around it (for the dialer: the calls it could answer or hang up).
fn readable_or_none<'de, D, M>(deserializer: D) -> Result<Option<M>, D::Error>
where
    D: Deserializer<'de>,
    M: Deserialize<'de>,
{
    /// The statistics as `M` (or `null`), or any other JSON value, skipped.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Report<M> {
        Readable(Option<M>),
        Unreadable(serde::de::IgnoredAny),
    }
    Ok(match Report::deserialize(deserializer)? {
        Report::Readable(media) => media,
        Report::Unreadable(_) => None,
    })
}

wire_words! {
    /// What kind of leg a talker's call is.
    pub enum TalkerCallKind as "call kind" {
        /// The matcher's control leg (never carries media).
        Control = "control",
        /// A call the talker placed because the controller told it to.
        Referred = "referred",
        /// An ordinary incoming call.
        Incoming = "incoming",
    }
}

wire_words! {
    /// Where a talker's call stands.
    pub enum TalkerCallState as "call state" {
        /// Outgoing, no answer yet.
        Dialing = "dialing",
        /// Ringing (either direction).
        Ringing = "ringing",
        /// Answered; media may flow.
        Connected = "connected",
    }
}

/// Body of `POST /v1/challenge`. The signature also covers the TLS connection
/// the request came on (its channel binding), which each end reads itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    /// The dialer's fresh nonce: 16 to 128 characters of base64, base64url or hex.
    pub nonce: String,
}

/// The 200 answer to `POST /v1/challenge`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeAnswer {
    /// The id the talker claims.
    pub talker_id: String,
    /// Its fresh nonce (32 hex digits).
    pub talker_nonce: String,
    /// The key it claims, standard base64: a convenience, never used to verify
    /// (the dialer uses the key the matcher's registry holds).
    #[serde(default)]
    pub public_key: String,
    /// Standard base64 Ed25519 signature of the `splitdial-challenge-v2` message.
    pub signature: String,
}

/// Body of an owner action: an empty object (fields may come later).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerActionRequest {}

/// The 202 answer to an owner action: the talker's call handler acts on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerActionAccepted {
    /// The talker's call id.
    pub call: u64,
    /// The action taken.
    pub action: OwnerAction,
}
