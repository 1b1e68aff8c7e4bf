//! `POST /v1/talkers` with a one-time enrollment token: a talker agent sends
//! its id, key and accounts and gets its heartbeat credential and the
//! matcher's keys.

use crate::keys::MatcherKey;
use crate::talker::{Media, TalkerKind};
use serde::{Deserialize, Serialize};

/// The request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The talker id (configured, or derived from its key).
    pub id: String,
    /// The talker's Ed25519 public key, standard base64.
    pub public_key: String,
    /// Human name, also its DNS-SD instance name.
    pub name: String,
    /// Device kind.
    pub kind: TalkerKind,
    /// `video` when the device carries video, else `audio`.
    pub media: Media,
    /// The device's RFC 5626 `+sip.instance` URN (`urn:uuid:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The device's SIP accounts (each a `sip:` address on a known server).
    pub accounts: Vec<EnrollAccount>,
}

/// One account in an enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollAccount {
    /// `sip:user@server`.
    pub aor: String,
    /// The server's domain.
    pub server: String,
}

/// The 201 answer.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollReply {
    /// The talker id enrolled.
    pub talker_id: String,
    /// The name of the user who owns the talker now.
    pub owner: String,
    /// The heartbeat credential (a bearer secret: never logged).
    pub credential: String,
    /// The matcher's current token keys.
    pub keys: Vec<MatcherKey>,
    /// The matcher's Unix time, seconds with milliseconds.
    pub time: f64,
}

impl std::fmt::Debug for EnrollReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollReply")
            .field("talker_id", &self.talker_id)
            .field("owner", &self.owner)
            .field("credential", &"<redacted>")
            .field("keys", &self.keys)
            .field("time", &self.time)
            .finish()
    }
}
