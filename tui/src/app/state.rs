//! The dialer's state: plain data that the drawing reads and `update` changes.

use super::clock::UnixMillis;
use crate::config::{Bindings, ManualTalker};
use crate::model::{
    AgentCall, CallInfo, CallState, Contact, Me, MediaStats, Problem, RegisteredTalker, Routes,
    TalkerCallKind, TalkerStatus,
};
use crate::roster::{self, RosterRow, RouteSource, Sources, Verification};
use discovery::TalkerAd;
use std::collections::{BTreeMap, BTreeSet};

/// Which list the arrow keys move in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    /// The contacts (who to call).
    Contacts,
    /// My talkers (where to talk).
    Talkers,
}

/// How the dialer stands with the matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// No matcher URL configured.
    NotConfigured,
    /// Asked, no answer yet.
    Connecting,
    /// The last request was answered.
    Online,
    /// The last request found nobody: why.
    Unreachable(String),
    /// The token was refused (expired or revoked): the matcher's message.
    Unauthorized(String),
}

/// How mDNS discovery stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LanState {
    /// Switched off in the config (registry and manual entries only).
    Off,
    /// Browsing.
    Browsing,
    /// Browsing could not start: why.
    Failed(String),
}

/// The contact filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    /// Whether keys are typed into the filter right now.
    pub active: bool,
    /// The filter text (matches names and servers, case-insensitive).
    pub query: String,
}

/// What the routes of the selected contact were asked with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutesKey {
    /// The contact.
    pub callee: String,
    /// My designated talkers then.
    pub talkers: Vec<String>,
    /// Whether video was asked for.
    pub video: bool,
}

/// The routes answer, or its absence.
#[derive(Debug, Clone, PartialEq)]
pub enum RoutesState {
    /// Asked, not answered.
    Loading,
    /// Answered.
    Loaded(Routes),
    /// Refused or unreachable.
    Failed(Problem),
}

/// The shared-server marks of the selected contact.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutesView {
    /// What they were asked with.
    pub key: RoutesKey,
    /// The answer.
    pub state: RoutesState,
}

/// One step of the call's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    /// The event's sequence number.
    pub seq: i64,
    /// The state reached.
    pub state: CallState,
    /// The party it concerns (1 = the first callee).
    pub party: u32,
    /// The matcher's time of the change (`None` when its `at` did not parse).
    pub at: Option<UnixMillis>,
    /// When the dialer learnt of it (its own clock).
    pub seen: UnixMillis,
    /// The end reason code, on `ended`.
    pub reason: Option<String>,
    /// The SIP status behind the end, when there is one.
    pub sip_code: Option<u16>,
}

/// Another party added to the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// The contact.
    pub callee: String,
    /// Its number once the matcher accepted it (2, 3...).
    pub number: Option<u32>,
}

/// The call this dialer placed.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentCall {
    /// The contact called.
    pub callee: String,
    /// My talkers, in the order asked.
    pub talkers: Vec<String>,
    /// Whether video was asked for.
    pub video: bool,
    /// When Enter was pressed (the dialer's clock).
    pub requested: UnixMillis,
    /// The matcher's answer to `POST /v1/calls`.
    pub info: Option<CallInfo>,
    /// Why `POST /v1/calls` was refused.
    pub failure: Option<Problem>,
    /// The SSE progress, in order.
    pub timeline: Vec<TimelineEntry>,
    /// Why the event stream broke before the end.
    pub stream_lost: Option<String>,
    /// Hang-up asked for (before the matcher gave the call an id too).
    pub hangup_requested: bool,
    /// Parties added after the first.
    pub parties: Vec<Party>,
}

impl CurrentCall {
    /// The matcher's call id, once known.
    pub fn id(&self) -> Option<&str> {
        self.info.as_ref().map(|info| info.call.as_str())
    }

    /// The latest state of the call (of its first party), if any event came.
    pub fn state(&self) -> Option<CallState> {
        self.timeline
            .iter()
            .rev()
            .find(|e| e.party == 1 || e.state.is_final())
            .map(|e| e.state)
            .or_else(|| self.info.as_ref().map(|i| i.state))
    }

    /// Whether nothing more will happen.
    pub fn is_over(&self) -> bool {
        self.failure.is_some() || self.state().is_some_and(CallState::is_final)
    }

    /// The timeline entry of a state of the first party.
    pub fn entry(&self, state: CallState) -> Option<&TimelineEntry> {
        self.timeline
            .iter()
            .find(|e| e.state == state && (e.party == 1 || state.is_final()))
    }

    /// The first event time on the matcher's clock: offsets count from it.
    pub fn origin(&self) -> Option<UnixMillis> {
        self.timeline.iter().find_map(|e| e.at)
    }

    /// My talker the matcher chose (from the call's route).
    pub fn talker_id(&self) -> Option<&str> {
        self.info
            .as_ref()
            .and_then(|info| info.route.as_ref())
            .map(|route| route.talker.as_str())
    }

    /// The shared server the call goes through.
    pub fn server(&self) -> Option<&str> {
        self.info
            .as_ref()
            .and_then(|info| info.route.as_ref())
            .map(|route| route.server.as_str())
    }

    /// Milliseconds connected: up to `now` while live, up to the end once over.
    pub fn connected_for(&self, now: UnixMillis) -> Option<i64> {
        let connected = self.entry(CallState::Connected)?;
        let end = self.timeline.iter().find(|e| e.state.is_final());
        match end {
            Some(end) => match (end.at, connected.at) {
                (Some(a), Some(b)) => Some(a - b),
                _ => Some(end.seen - connected.seen),
            },
            None => Some(now - connected.seen),
        }
    }
}

/// A call ringing (or up) on one of my talkers that this dialer did not place.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingCall<'a> {
    /// The talker it rings on.
    pub talker_id: &'a str,
    /// The talker's name.
    pub talker_name: &'a str,
    /// The call as the talker reports it.
    pub call: &'a AgentCall,
}

/// A readable error pane over the screen; Esc closes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorPane {
    /// No matcher URL: nothing can work.
    NotConfigured,
    /// The matcher does not answer.
    MatcherUnreachable {
        /// The transport error.
        message: String,
    },
    /// The token was refused.
    Unauthorized {
        /// The matcher's message.
        message: String,
    },
    /// A call found no server both sides are on.
    NoSharedServer {
        /// The contact.
        callee: String,
        /// My talkers' servers.
        caller_servers: Vec<String>,
        /// The contact's servers.
        callee_servers: Vec<String>,
    },
    /// mDNS browsing could not start.
    DiscoveryFailed {
        /// Why.
        message: String,
    },
}

impl ErrorPane {
    /// Whether two panes are about the same trouble (one of each is shown).
    pub fn same_kind(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// A one-line message in the status bar that fades after a few seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The message.
    pub text: String,
    /// Whether it reports a failure.
    pub error: bool,
    /// When it stops being shown.
    pub until: UnixMillis,
}

/// Request bookkeeping: what is in flight and when each poll is due.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Polls {
    /// `GET /v1/me/talkers` in flight.
    pub registry_in_flight: bool,
    /// Next registry poll.
    pub registry_due: UnixMillis,
    /// `GET /v1/me/contacts` in flight.
    pub contacts_in_flight: bool,
    /// `GET /v1/me` in flight.
    pub me_in_flight: bool,
    /// `GET /v1/routes` in flight (one at a time: fast scrolling asks for the latest only).
    pub routes_in_flight: Option<RoutesKey>,
    /// Talkers whose `/v1/status` is in flight.
    pub status_in_flight: BTreeSet<String>,
    /// When each talker's status was last asked for (absent: ask at the next tick).
    pub status_polled: BTreeMap<String, UnixMillis>,
}

/// Everything the dialer shows and knows.
#[derive(Debug, Clone)]
pub struct App {
    /// The dialer's clock, set by the runtime before each update (tests set it by hand).
    pub now: UnixMillis,
    /// Effective key bindings.
    pub bindings: Bindings,
    /// The matcher connection.
    pub connection: Connection,
    /// mDNS discovery.
    pub lan: LanState,
    /// Who I am, once the matcher said.
    pub me: Option<Me>,
    /// My contacts (`None` until loaded).
    pub contacts: Option<Vec<Contact>>,
    /// The contact filter.
    pub search: Search,
    /// My registry (`None` until loaded).
    pub registry: Option<Vec<RegisteredTalker>>,
    /// mDNS sightings by instance name.
    pub sightings: BTreeMap<String, TalkerAd>,
    /// Manual talker entries.
    pub manual: Vec<ManualTalker>,
    /// Signed-challenge results by talker id.
    pub verifications: BTreeMap<String, Verification>,
    /// The last status of each verified talker.
    pub statuses: BTreeMap<String, TalkerStatus>,
    /// The talkers list, derived from the above after every update.
    pub rows: Vec<RosterRow>,
    /// The focused list.
    pub focus: Pane,
    /// Selected row in the filtered contacts.
    pub contact_cursor: usize,
    /// Selected row in the talkers list.
    pub talker_cursor: usize,
    /// My designated talkers, first choice first.
    pub designated: Vec<String>,
    /// Video asked for the next call.
    pub video: bool,
    /// The selected contact's routes.
    pub routes: Option<RoutesView>,
    /// The call I placed (kept after it ends until dismissed or replaced).
    pub call: Option<CurrentCall>,
    /// Open error panes, the newest last (shown on top).
    pub errors: Vec<ErrorPane>,
    /// The help overlay is open.
    pub help: bool,
    /// The status bar's passing message.
    pub notice: Option<Notice>,
    /// Owner actions sent and not answered: (talker id, its call id).
    pub owner_actions: BTreeSet<(String, u64)>,
    /// Leave at the next chance.
    pub should_quit: bool,
    /// Request bookkeeping.
    pub polls: Polls,
}

impl App {
    /// The contacts matching the filter, in the matcher's order.
    pub fn visible_contacts(&self) -> Vec<&Contact> {
        let Some(contacts) = &self.contacts else {
            return Vec::new();
        };
        let query = self.search.query.trim().to_lowercase();
        if query.is_empty() {
            return contacts.iter().collect();
        }
        contacts
            .iter()
            .filter(|c| {
                c.name.to_lowercase().contains(&query)
                    || c.servers.iter().any(|s| s.to_lowercase().contains(&query))
            })
            .collect()
    }

    /// The contact under the cursor.
    pub fn selected_contact(&self) -> Option<&Contact> {
        self.visible_contacts().get(self.contact_cursor).copied()
    }

    /// The talker under the cursor.
    pub fn selected_talker(&self) -> Option<&RosterRow> {
        self.rows.get(self.talker_cursor)
    }

    /// Calls ringing or up on my verified talkers that this dialer did not
    /// place (`incoming` in their status).
    pub fn incoming_calls(&self) -> Vec<IncomingCall<'_>> {
        let mut calls = Vec::new();
        for (id, status) in &self.statuses {
            for call in status
                .calls
                .iter()
                .filter(|c| c.kind == TalkerCallKind::Incoming)
            {
                calls.push(IncomingCall {
                    talker_id: id,
                    talker_name: &status.name,
                    call,
                });
            }
        }
        calls
    }

    /// Live media statistics of the current call: from the chosen talker's
    /// referred call (the leg that carries media).
    pub fn call_media(&self) -> Option<(&str, &MediaStats)> {
        let call = self.call.as_ref()?;
        let talker = call.talker_id()?;
        let status = self.statuses.get(talker)?;
        status
            .calls
            .iter()
            .filter(|c| c.kind == TalkerCallKind::Referred)
            .find_map(|c| c.media.as_ref())
            .map(|media| (status.name.as_str(), media))
    }

    /// The current call's leg to the callee, as my talker reports it: the
    /// chosen talker's first referred call (the one that carries media; a
    /// conference's later parties get legs of their own after it). Whether
    /// it is held and the DTMF digits it received come from here. `None`
    /// once the call is over.
    pub fn callee_leg(&self) -> Option<&AgentCall> {
        // A finished call has no leg left, whatever a late status says.
        let call = self.call.as_ref().filter(|c| !c.is_over())?;
        let talker = call.talker_id()?;
        self.statuses
            .get(talker)?
            .calls
            .iter()
            .find(|c| c.kind == TalkerCallKind::Referred)
    }

    /// The name a talker id is shown with.
    pub fn talker_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.rows
            .iter()
            .find(|r| r.id == id)
            .map_or(id, |r| r.name.as_str())
    }

    /// The error pane on top, if any.
    pub fn top_error(&self) -> Option<&ErrorPane> {
        self.errors.last()
    }

    /// Whether a live (not finished) call is up.
    pub fn call_is_live(&self) -> bool {
        self.call.as_ref().is_some_and(|c| !c.is_over())
    }

    pub(super) fn sources(&self) -> Sources<'_> {
        Sources {
            registry: self.registry.as_deref(),
            sightings: &self.sightings,
            manual: &self.manual,
            verifications: &self.verifications,
            statuses: &self.statuses,
            designated: &self.designated,
        }
    }

    /// Rebuilds the talkers list and keeps both cursors on a row.
    pub(super) fn rebuild_rows(&mut self) {
        let contact = self.selected_contact();
        let route = match (contact, &self.routes) {
            (None, _) => RouteSource::NoContact,
            (Some(contact), Some(view)) if view.key.callee == contact.name => match &view.state {
                RoutesState::Loading => RouteSource::Loading(contact),
                RoutesState::Loaded(routes) => RouteSource::Loaded(contact, routes),
                RoutesState::Failed(problem) => RouteSource::Failed(contact, problem),
            },
            (Some(contact), _) => RouteSource::Loading(contact),
        };
        let rows = roster::rows(&self.sources(), route);
        self.rows = rows;
        self.talker_cursor = self.talker_cursor.min(self.rows.len().saturating_sub(1));
        let contacts = self.visible_contacts().len();
        self.contact_cursor = self.contact_cursor.min(contacts.saturating_sub(1));
    }
}
