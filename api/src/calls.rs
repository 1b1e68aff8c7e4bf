//! Calls: `POST /v1/calls` places one, `GET /v1/calls/{id}` and
//! `DELETE /v1/calls/{id}` answer with it, `GET /v1/calls/{id}/events`
//! follows it as Server-Sent Events (`event: state`, `id: seq`, data a
//! [`CallEvent`]), `POST /v1/calls/{id}/parties` adds a party.

use crate::routes::RouteView;
use crate::talker::Media;
use crate::word::wire_words;
use serde::{Deserialize, Serialize};

/// Body of `POST /v1/calls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCall {
    /// The contact's name.
    pub callee: String,
    /// My designated talkers, in preference order (all of mine when empty).
    #[serde(default)]
    pub talkers: Vec<String>,
    /// `audio` (the default) or `video`.
    #[serde(default)]
    pub media: Option<Media>,
}

wire_words! {
    /// A call's states, in the order a successful call passes them.
    pub enum CallState as "call state" {
        /// The matcher is ranking routes.
        Matching = "matching",
        /// The control INVITE is on its way to the caller's talker.
        DialingTalker = "dialing_talker",
        /// The caller's talker answered the control leg.
        TalkerAnswered = "talker_answered",
        /// The callee's device rings.
        CalleeRinging = "callee_ringing",
        /// Both talkers are connected; media flows.
        Connected = "connected",
        /// A third-party talker took the call over (connected, no longer
        /// steerable). Final.
        HandedOff = "handed_off",
        /// The matcher lost the control leg; media may still flow. Final.
        LostControl = "lost_control",
        /// Over; the reason says why. Final.
        Ended = "ended",
    }
}

impl CallState {
    /// Whether nothing more happens after this state.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Ended | Self::HandedOff | Self::LostControl)
    }
}

/// A call as the matcher reports it (`POST /v1/calls` with 201, `GET` and
/// `DELETE /v1/calls/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// The matcher's call id (`c_` and 32 hex digits).
    pub call: String,
    /// Its latest state.
    pub state: CallState,
    /// The end (or loss of control) reason code, once there is one.
    #[serde(default)]
    pub reason: Option<String>,
    /// The media asked for.
    pub media: Media,
    /// The route it was placed on.
    #[serde(default)]
    pub route: Option<RouteView>,
    /// Unix seconds it was requested.
    pub created_at: i64,
    /// Unix seconds it ended, once it did.
    #[serde(default)]
    pub ended_at: Option<i64>,
    /// The path of its event stream (`/v1/calls/{id}/events`).
    #[serde(default)]
    pub events: String,
}

/// One state change of a call: the data of one Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEvent {
    /// The call.
    pub call: String,
    /// 1, 2, 3... per call (also the SSE `id`).
    pub seq: i64,
    /// The state reached (a party change that does not move the call repeats it).
    pub state: CallState,
    /// RFC 3339 UTC time of the change, with milliseconds.
    pub at: String,
    /// What else there is to say about it.
    #[serde(default)]
    pub detail: EventDetail,
}

impl CallEvent {
    /// The reason code, on `ended` and `lost_control`.
    pub fn reason(&self) -> Option<&str> {
        self.detail.reason.as_deref()
    }

    /// The party this event is about (1, the first callee, when it names none).
    pub fn party(&self) -> u32 {
        self.detail.party.unwrap_or(1)
    }
}

/// The `detail` of a call event; `{}` when there is nothing to add.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDetail {
    /// The party the event is about (`2` when a second party rings or connects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party: Option<u32>,
    /// What happened to that party when the call's state did not move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party_state: Option<PartyState>,
    /// The reason code: on `ended` (`hung_up`, `callee_busy`, ... `error`) and
    /// on `lost_control` (`matcher_restarted`, `controller_gone`,
    /// `control_leg_lost`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The SIP status behind the event, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_code: Option<u16>,
    /// On `matching`: the server the call goes through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// On `ended` with reason `error`: what went wrong, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

wire_words! {
    /// What happened to one party without moving the call's state.
    pub enum PartyState as "party state" {
        /// It could not be reached (with the SIP code it failed with).
        Failed = "failed",
        /// It had connected and is gone.
        Ended = "ended",
    }
}

/// Body of `POST /v1/calls/{id}/parties`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewParty {
    /// The contact's name.
    pub callee: String,
}

/// The 201 answer to `POST /v1/calls/{id}/parties`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyAdded {
    /// The call.
    pub call: String,
    /// The new party's number (2, 3, ...).
    pub party: u32,
}
