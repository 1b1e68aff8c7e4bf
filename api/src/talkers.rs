//! `GET /v1/me/talkers`: the user's talkers as the registry holds them, with
//! their keys, accounts and whether their heartbeats are fresh.

use crate::talker::{Media, TalkerKind, TalkerSoftware};
use serde::{Deserialize, Serialize};

/// The answer: `{"talkers": [...]}`, oldest talker first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TalkerList {
    /// The user's talkers.
    pub talkers: Vec<RegisteredTalker>,
}

/// One of my talkers as the matcher's registry holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredTalker {
    /// Talker id (the same id its mDNS advertisement carries).
    pub id: String,
    /// Human name ("Living room TV").
    pub name: String,
    /// Device kind.
    pub kind: TalkerKind,
    /// `video` when it carries video as well as audio.
    pub media: Media,
    /// The enrolled Ed25519 public key (standard base64): the only key a
    /// challenge answer is checked with. Empty for a SIP phone.
    pub public_key: String,
    /// What runs on it.
    #[serde(default)]
    pub software: TalkerSoftware,
    /// Whether its heartbeats are fresh (for a SIP phone: the matcher's
    /// probes reach it).
    pub online: bool,
    /// Unix seconds of its last heartbeat, if any.
    #[serde(default)]
    pub last_seen: Option<i64>,
    /// Its SIP accounts, in its order of preference.
    #[serde(default)]
    pub accounts: Vec<RegisteredAccount>,
}

/// One SIP account of a registered talker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredAccount {
    /// Address of record (`sip:alice-tv@family.example`).
    pub aor: String,
    /// The domain of the server it lives on.
    pub server: String,
    /// Registered, and its talker online.
    pub registered: bool,
}
