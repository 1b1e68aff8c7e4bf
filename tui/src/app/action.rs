//! Everything that can change the dialer's state arrives as an [`Action`] on
//! one channel (key presses, ticks, mDNS events, matcher answers, call events);
//! everything the state wants done on the network leaves as an [`Effect`].
//! `update` turns one action into state changes plus effects; the runtime
//! performs the effects and feeds their results back as actions. Neither side
//! draws, and drawing reads state only.

use crate::model::{
    CallEvent, CallInfo, Contact, Me, Problem, RegisteredTalker, Routes, TalkerStatus,
};
use crossterm::event::KeyEvent;
use discovery::TalkerAd;
use std::net::SocketAddr;

/// One input to the dialer's state machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A key press.
    Key(KeyEvent),
    /// The terminal was resized.
    Resize(u16, u16),
    /// Once a second: elapsed times, periodic refreshes.
    Tick,
    /// Leave the dialer (SIGTERM, SIGINT, or the quit key).
    Quit,

    /// `GET /v1/me` answered.
    Me(Result<Me, Problem>),
    /// `GET /v1/me/talkers` answered.
    RegisteredTalkers(Result<Vec<RegisteredTalker>, Problem>),
    /// `GET /v1/me/contacts` answered.
    Contacts(Result<Vec<Contact>, Problem>),
    /// `GET /v1/routes` answered for this contact.
    Routes {
        /// The contact the routes lead to.
        callee: String,
        /// The ranked routes, or why there are none (`no_shared_server`).
        result: Result<Routes, Problem>,
    },

    /// mDNS: a talker appeared or its advertisement changed.
    LanTalkerSeen(TalkerAd),
    /// mDNS: a talker left (goodbye or failed verification).
    LanTalkerGone(TalkerAd),
    /// mDNS browsing could not start (the error pane says why; the registry
    /// still lists the talkers).
    DiscoveryFailed(String),
    /// A talker answered (or failed) the signed challenge at `dialed`.
    Verified {
        /// The talker id the dialer asked about.
        talker_id: String,
        /// The address the dialer connected to.
        dialed: SocketAddr,
        /// `Ok` when the signature checks with the registry's key for that id.
        result: Result<(), String>,
    },
    /// A verified talker's `GET /v1/status` answered.
    TalkerStatus {
        /// The talker asked.
        talker_id: String,
        /// Its status, or why it could not be read.
        result: Result<TalkerStatus, Problem>,
    },

    /// `POST /v1/calls` answered.
    CallPlaced(Result<CallInfo, Problem>),
    /// One event of the current call's SSE stream.
    CallEvent(CallEvent),
    /// The call's event stream broke before a final state.
    CallStreamLost(String),
    /// `DELETE /v1/calls/{id}` answered.
    HungUp(Result<(), Problem>),
    /// `POST /v1/calls/{id}/parties` answered with the party number.
    PartyAdded(Result<u32, Problem>),
    /// An owner action on a talker's own call was accepted or refused.
    OwnerActionDone {
        /// The talker it was sent to.
        talker_id: String,
        /// What was asked.
        action: OwnerAction,
        /// `Ok` on 202.
        result: Result<(), Problem>,
    },
}

/// What the owner can do to an ordinary call ringing or up on their talker
/// (the talker's local API, authorised by a matcher-signed owner token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerAction {
    /// Pick up a ringing call.
    Answer,
    /// Refuse a ringing call.
    Decline,
    /// End the call.
    HangUp,
}

impl OwnerAction {
    /// The action word of the APIs (`answer`, `decline`, `hangup`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answer => "answer",
            Self::Decline => "decline",
            Self::HangUp => "hangup",
        }
    }
}

/// Work the state asks the runtime to do; each result comes back as an [`Action`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// `GET /v1/me` → [`Action::Me`].
    LoadMe,
    /// `GET /v1/me/talkers` → [`Action::RegisteredTalkers`].
    LoadTalkers,
    /// `GET /v1/me/contacts` → [`Action::Contacts`].
    LoadContacts,
    /// `GET /v1/routes` → [`Action::Routes`].
    LoadRoutes {
        /// The contact.
        callee: String,
        /// My designated talkers in preference order (empty: all).
        talkers: Vec<String>,
        /// Whether video is asked for.
        video: bool,
    },
    /// Challenge the talker at `dialed` and check its answer with the
    /// registry's key → [`Action::Verified`].
    Verify {
        /// The id it advertises (and the registry holds).
        talker_id: String,
        /// Where to connect.
        dialed: SocketAddr,
        /// The registry's public key for that id (standard base64).
        public_key: String,
    },
    /// `GET /v1/status` of a verified talker → [`Action::TalkerStatus`].
    PollStatus {
        /// The talker.
        talker_id: String,
        /// Its verified address.
        dialed: SocketAddr,
        /// The registry's key it was verified with (its TLS handshake must prove it again).
        public_key: String,
    },
    /// `POST /v1/calls` → [`Action::CallPlaced`].
    PlaceCall {
        /// The contact.
        callee: String,
        /// My designated talkers in preference order.
        talkers: Vec<String>,
        /// Whether video is asked for.
        video: bool,
    },
    /// Follow `GET /v1/calls/{id}/events` → [`Action::CallEvent`]s, then
    /// [`Action::CallStreamLost`] if it breaks early.
    FollowCall {
        /// The matcher's call id.
        call: String,
    },
    /// `DELETE /v1/calls/{id}` → [`Action::HungUp`].
    HangUp {
        /// The matcher's call id.
        call: String,
    },
    /// `POST /v1/calls/{id}/parties` → [`Action::PartyAdded`].
    AddParty {
        /// The matcher's call id.
        call: String,
        /// The contact to add.
        callee: String,
    },
    /// Fetch an owner token from the matcher and send the action to the
    /// talker → [`Action::OwnerActionDone`].
    OwnerAction {
        /// The talker.
        talker_id: String,
        /// Its verified address.
        dialed: SocketAddr,
        /// The registry's key it was verified with (its TLS handshake must prove it again).
        public_key: String,
        /// The talker's local call id.
        call_id: u64,
        /// The call's SIP Call-ID (the owner token is bound to it).
        sip_call_id: String,
        /// What to do.
        action: OwnerAction,
    },
}
