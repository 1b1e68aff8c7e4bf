//! `POST /v1/talkers/{id}/heartbeat` with the talker's credential: its state
//! and registrations in, the matcher's time, keys and interval out.

use crate::keys::{KeySetSignature, MatcherKey};
use crate::word::wire_words;
use serde::{Deserialize, Serialize};

wire_words! {
    /// Whether a talker is free to take a call (also the DNS-SD `state=`).
    pub enum TalkerState as "state" {
        /// No call other than a bare control leg.
        Idle = "idle",
        /// In a call.
        Busy = "busy",
    }
}

/// The request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// Idle or busy.
    pub state: TalkerState,
    /// Every account of the talker.
    #[serde(default)]
    pub accounts: Vec<HeartbeatAccount>,
}

/// One account's registration in a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatAccount {
    /// `sip:user@server`.
    pub aor: String,
    /// Whether the account is registered right now.
    pub registered: bool,
    /// The public GRUU the server handed out (where the controller sends the
    /// control INVITE), if any.
    #[serde(default)]
    pub gruu: Option<String>,
}

/// The 200 answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// The matcher's Unix time in whole milliseconds, as seconds (talkers
    /// keep an offset from it for token times; the signatures bind it).
    pub time: f64,
    /// The matcher's current token keys (they replace the talker's learnt set
    /// once a signature checks).
    pub keys: Vec<MatcherKey>,
    /// One signature per published key over `keys`, `revoked`, this talker's
    /// id and `time` ([`crate::revoking_key_set_signing_input`]); a talker takes the keys
    /// and the time only when one of them checks with a key it holds. Absent
    /// means unsigned: refused.
    #[serde(default)]
    pub signatures: Vec<KeySetSignature>,
    /// The `kid`s of keys the matcher revoked: a talker drops each at once,
    /// whether it learnt or pinned it, and refuses tokens signed by it even
    /// before their `exp`. The signatures cover this list
    /// ([`crate::revoking_key_set_signing_input`]); absent means none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked: Vec<String>,
    /// Seconds until the next heartbeat.
    #[serde(default)]
    pub interval_s: Option<u64>,
}
