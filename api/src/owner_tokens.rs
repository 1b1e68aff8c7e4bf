//! `POST /v1/talkers/{id}/owner-tokens`: the owner asks the matcher for a
//! short-lived token for one action on one SIP call of their own talker, and
//! sends it to that talker's local API (see [`crate::status`]).

use crate::word::wire_words;
use serde::{Deserialize, Serialize};

wire_words! {
    /// What an owner may do to a call on their talker (also the last segment
    /// of the talker's `POST /v1/calls/{id}/{action}`).
    pub enum OwnerAction as "action" {
        /// Answer a ringing call.
        Answer = "answer",
        /// Decline a ringing call.
        Decline = "decline",
        /// Hang up.
        Hangup = "hangup",
    }
}

/// The request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerTokenRequest {
    /// The action the token allows.
    pub action: OwnerAction,
    /// The SIP Call-ID of the talker's call (from its status).
    pub sip_call_id: String,
    /// The matcher's call id, when the call is one of the matcher's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
}

/// The 201 answer.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerToken {
    /// The token, a compact JWS (a secret until used: never logged).
    pub token: String,
    /// Seconds it stays valid.
    #[serde(default)]
    pub expires_in: u64,
    /// The talker it is for.
    #[serde(default)]
    pub talker: String,
}

impl std::fmt::Debug for OwnerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnerToken")
            .field("token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("talker", &self.talker)
            .finish()
    }
}
