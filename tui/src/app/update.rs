//! `App::new` and `App::update`: one action in, state changes and effects out.

use super::clock::{UnixMillis, parse_rfc3339};
use super::state::{
    App, Connection, CurrentCall, ErrorPane, LanState, Notice, Pane, Party, Polls, RoutesKey,
    RoutesState, RoutesView, Search, TimelineEntry,
};
use super::{Action, Command, Effect, OwnerAction};
use crate::config::Config;
use crate::model::{CallEvent, CallInfo, Problem, RegisteredTalker, TalkerCallState};
use crate::roster::{self, Verification, VerifyState};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use discovery::TalkerAd;
use std::collections::BTreeMap;

/// How often the registry is read again.
pub const REGISTRY_POLL_MS: i64 = 10_000;
/// How often a verified talker's status is read.
pub const STATUS_POLL_MS: i64 = 2_000;
/// How often during a call (live media statistics).
pub const STATUS_POLL_IN_CALL_MS: i64 = 1_000;
/// How long a status-bar notice stays.
pub const NOTICE_MS: i64 = 5_000;

impl App {
    /// The state at start, and the first loads to do (nothing without a
    /// matcher URL: the not-configured pane says so).
    pub fn new(config: &Config) -> (App, Vec<Effect>) {
        // Without the URL or the token no matcher request can succeed.
        let configured = config
            .matcher_url
            .as_deref()
            .is_some_and(|url| !url.trim().is_empty())
            && config.token.is_some();
        let mut app = App {
            now: 0,
            bindings: config.keys.clone(),
            connection: if configured {
                Connection::Connecting
            } else {
                Connection::NotConfigured
            },
            lan: if config.discovery {
                LanState::Browsing
            } else {
                LanState::Off
            },
            me: None,
            contacts: None,
            search: Search::default(),
            registry: None,
            sightings: BTreeMap::new(),
            manual: config.talkers.clone(),
            verifications: BTreeMap::new(),
            statuses: BTreeMap::new(),
            rows: Vec::new(),
            focus: Pane::Contacts,
            contact_cursor: 0,
            talker_cursor: 0,
            designated: Vec::new(),
            video: false,
            routes: None,
            call: None,
            errors: Vec::new(),
            help: false,
            notice: None,
            owner_actions: Default::default(),
            should_quit: false,
            polls: Polls::default(),
        };
        let mut effects = Vec::new();
        if configured {
            app.polls.me_in_flight = true;
            app.polls.registry_in_flight = true;
            app.polls.contacts_in_flight = true;
            effects.extend([Effect::LoadMe, Effect::LoadTalkers, Effect::LoadContacts]);
        } else {
            app.errors.push(ErrorPane::NotConfigured);
        }
        app.rebuild_rows();
        (app, effects)
    }

    /// Sets the dialer's clock (the runtime does before each batch of actions).
    pub fn set_now(&mut self, now: UnixMillis) {
        self.now = now;
    }

    /// Applies one action; returns the network work it asks for.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        let mut effects = Vec::new();
        match action {
            Action::Key(key) => self.on_key(key, &mut effects),
            Action::Resize(..) => {}
            Action::Tick => self.on_tick(&mut effects),
            Action::Quit => self.should_quit = true,
            Action::Me(result) => {
                self.polls.me_in_flight = false;
                match result {
                    Ok(me) => {
                        self.matcher_answered();
                        self.me = Some(me);
                    }
                    Err(problem) => self.matcher_failed(&problem),
                }
            }
            Action::RegisteredTalkers(result) => {
                self.polls.registry_in_flight = false;
                // The next read counts from this answer (a slow matcher is not hammered).
                self.polls.registry_due = self.now + REGISTRY_POLL_MS;
                match result {
                    Ok(talkers) => {
                        self.matcher_answered();
                        self.registry_loaded(talkers, &mut effects);
                    }
                    Err(problem) => self.matcher_failed(&problem),
                }
            }
            Action::Contacts(result) => {
                self.polls.contacts_in_flight = false;
                match result {
                    Ok(contacts) => {
                        self.matcher_answered();
                        let selected = self.selected_contact().map(|c| c.name.clone());
                        self.contacts = Some(contacts);
                        // Keep the same contact selected across reloads.
                        if let Some(name) = selected
                            && let Some(i) =
                                self.visible_contacts().iter().position(|c| c.name == name)
                        {
                            self.contact_cursor = i;
                        }
                    }
                    Err(problem) => self.matcher_failed(&problem),
                }
            }
            Action::Routes { callee, result } => self.routes_answered(&callee, result),
            Action::LanTalkerSeen(ad) => self.lan_seen(ad, &mut effects),
            Action::LanTalkerGone(ad) => self.lan_gone(&ad),
            Action::DiscoveryFailed(message) => {
                self.lan = LanState::Failed(message.clone());
                self.open_error(ErrorPane::DiscoveryFailed { message });
            }
            Action::Verified {
                talker_id,
                dialed,
                result,
            } => {
                if let Some(v) = self.verifications.get_mut(&talker_id)
                    && v.dialed == dialed
                {
                    v.state = match result {
                        Ok(()) => VerifyState::Verified,
                        Err(why) => VerifyState::Failed(why),
                    };
                    if v.state == VerifyState::Verified {
                        // Read its status at the next tick.
                        self.polls.status_polled.remove(&talker_id);
                    }
                }
            }
            Action::TalkerStatus { talker_id, result } => {
                self.polls.status_in_flight.remove(&talker_id);
                match result {
                    Ok(status) => {
                        self.statuses.insert(talker_id, status);
                    }
                    Err(problem) => {
                        tracing::debug!(talker = %talker_id, %problem, "status poll failed");
                        self.statuses.remove(&talker_id);
                    }
                }
            }
            Action::CallPlaced(result) => self.call_placed(result, &mut effects),
            Action::CallEvent(event) => self.call_event(&event),
            Action::CallStreamLost(why) => {
                if let Some(call) = &mut self.call
                    && !call.is_over()
                {
                    call.stream_lost = Some(why);
                }
            }
            Action::HungUp(result) => {
                if let Err(problem) = result {
                    self.matcher_failed(&problem);
                    if let Some(call) = &mut self.call {
                        call.hangup_requested = false;
                    }
                    self.notify_error(format!("hang-up failed: {problem}"));
                }
            }
            Action::PartyAdded(result) => {
                let pending = self.call.as_mut().and_then(|c| {
                    c.parties
                        .iter()
                        .position(|p| p.number.is_none())
                        .map(|i| (c, i))
                });
                match (result, pending) {
                    (Ok(number), Some((call, i))) => call.parties[i].number = Some(number),
                    (Ok(_), None) => {}
                    (Err(problem), pending) => {
                        let name = match pending {
                            Some((call, i)) => call.parties.remove(i).callee,
                            None => "party".to_owned(),
                        };
                        self.matcher_failed(&problem);
                        self.notify_error(format!("adding {name} failed: {problem}"));
                    }
                }
            }
            Action::OwnerActionDone {
                talker_id,
                action,
                result,
            } => {
                self.owner_actions.retain(|(t, _)| *t != talker_id);
                let name = self.talker_name(&talker_id).to_owned();
                match result {
                    Ok(()) => self.notify(format!("{} on {name}: done", action.as_str())),
                    Err(problem) => {
                        self.notify_error(format!(
                            "{} on {name} failed: {problem}",
                            action.as_str()
                        ));
                    }
                }
                self.polls.status_polled.remove(&talker_id);
            }
        }
        self.rebuild_rows();
        self.request_routes(&mut effects);
        effects
    }

    // ---- keys -------------------------------------------------------------

    fn on_key(&mut self, key: KeyEvent, effects: &mut Vec<Effect>) {
        if key.kind == KeyEventKind::Release {
            return;
        }
        // Ctrl-C always leaves, whatever the bindings and modes say.
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            self.should_quit = true;
            return;
        }
        if self.search.active && self.search_key(key) {
            return;
        }
        let Some(command) = self.bindings.resolve(&key) else {
            return;
        };
        if self.help {
            match command {
                Command::Help | Command::Dismiss => self.help = false,
                Command::Quit => self.should_quit = true,
                _ => {}
            }
            return;
        }
        self.run(command, effects);
    }

    /// Typing into the contact filter; returns whether the key was taken.
    fn search_key(&mut self, key: KeyEvent) -> bool {
        match key.code {
            KeyCode::Esc => {
                self.search = Search::default();
                self.contact_cursor = 0;
            }
            KeyCode::Enter => self.search.active = false,
            KeyCode::Backspace => {
                self.search.query.pop();
                self.contact_cursor = 0;
            }
            KeyCode::Char(c)
                if !key
                    .modifiers
                    .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
            {
                self.search.query.push(c);
                self.contact_cursor = 0;
            }
            KeyCode::Up => self.move_cursor(-1),
            KeyCode::Down => self.move_cursor(1),
            _ => return false,
        }
        true
    }

    /// Carries out one command.
    pub fn run(&mut self, command: Command, effects: &mut Vec<Effect>) {
        match command {
            Command::SwitchPane => {
                self.focus = match self.focus {
                    Pane::Contacts => Pane::Talkers,
                    Pane::Talkers => Pane::Contacts,
                };
            }
            Command::Up => self.move_cursor(-1),
            Command::Down => self.move_cursor(1),
            Command::Search => {
                self.focus = Pane::Contacts;
                self.search.active = true;
            }
            Command::Designate => self.designate(),
            Command::Call => self.place_call(effects),
            Command::ToggleVideo => {
                self.video = !self.video;
                self.notify(if self.video {
                    "next call: video".to_owned()
                } else {
                    "next call: audio only".to_owned()
                });
            }
            Command::HangUp => self.hang_up(effects),
            Command::AddParty => self.add_party(effects),
            Command::Answer => self.owner_action(OwnerAction::Answer, effects),
            Command::Decline => self.owner_action(OwnerAction::Decline, effects),
            Command::Refresh => self.refresh(effects),
            Command::Help => self.help = true,
            Command::Dismiss => {
                if self.errors.pop().is_none() {
                    if !self.search.query.is_empty() {
                        self.search = Search::default();
                    } else if self.call.as_ref().is_some_and(CurrentCall::is_over) {
                        self.call = None;
                    }
                }
            }
            Command::Quit => self.should_quit = true,
        }
    }

    fn move_cursor(&mut self, delta: isize) {
        let len = match self.focus {
            Pane::Contacts => self.visible_contacts().len(),
            Pane::Talkers => self.rows.len(),
        };
        let cursor = match self.focus {
            Pane::Contacts => &mut self.contact_cursor,
            Pane::Talkers => &mut self.talker_cursor,
        };
        if len == 0 {
            *cursor = 0;
            return;
        }
        *cursor = cursor.saturating_add_signed(delta).min(len - 1);
    }

    fn designate(&mut self) {
        if self.focus != Pane::Talkers {
            self.notify("Tab to the talkers to designate one".to_owned());
            return;
        }
        let Some(row) = self.selected_talker() else {
            return;
        };
        let id = row.id.clone();
        if let Some(i) = self.designated.iter().position(|d| *d == id) {
            self.designated.remove(i);
        } else if let Some(why) = row.not_callable_reason() {
            self.notify_error(why);
        } else {
            self.designated.push(id);
        }
    }

    /// The talkers a call is placed on: the designation, or every callable
    /// talker in list order when none is designated.
    fn call_talkers(&self) -> Vec<String> {
        if self.designated.is_empty() {
            self.rows
                .iter()
                .filter(|r| r.callable())
                .map(|r| r.id.clone())
                .collect()
        } else {
            self.designated.clone()
        }
    }

    fn place_call(&mut self, effects: &mut Vec<Effect>) {
        if self.connection == Connection::NotConfigured {
            self.open_error(ErrorPane::NotConfigured);
            return;
        }
        if self.call_is_live() {
            self.notify_error("a call is in progress: hang up first".to_owned());
            return;
        }
        let Some(contact) = self.selected_contact() else {
            self.notify_error("no contact selected".to_owned());
            return;
        };
        let callee = contact.name.clone();
        let talkers = self.call_talkers();
        if talkers.is_empty() {
            self.notify_error("no callable talker: none is verified or online".to_owned());
            return;
        }
        self.call = Some(CurrentCall {
            callee: callee.clone(),
            talkers: talkers.clone(),
            video: self.video,
            requested: self.now,
            info: None,
            failure: None,
            timeline: Vec::new(),
            stream_lost: None,
            hangup_requested: false,
            parties: Vec::new(),
        });
        effects.push(Effect::PlaceCall {
            callee,
            talkers,
            video: self.video,
        });
    }

    fn hang_up(&mut self, effects: &mut Vec<Effect>) {
        if let Some(call) = &mut self.call
            && !call.is_over()
        {
            if call.hangup_requested {
                return;
            }
            call.hangup_requested = true;
            if let Some(id) = call.id() {
                effects.push(Effect::HangUp {
                    call: id.to_owned(),
                });
            }
            // Without an id yet, the hang-up goes out when CallPlaced arrives.
            return;
        }
        // No call of mine: hang up an ordinary call that is up on my talker.
        if self
            .incoming_calls()
            .iter()
            .any(|c| c.call.state == TalkerCallState::Connected)
        {
            self.owner_action(OwnerAction::HangUp, effects);
        } else {
            self.notify("no call to hang up".to_owned());
        }
    }

    fn add_party(&mut self, effects: &mut Vec<Effect>) {
        let Some(contact) = self.selected_contact().map(|c| c.name.clone()) else {
            self.notify_error("no contact selected".to_owned());
            return;
        };
        let Some(call) = self.call.as_mut().filter(|c| !c.is_over()) else {
            self.notify_error("no call to add a party to".to_owned());
            return;
        };
        let Some(id) = call.id().map(str::to_owned) else {
            self.notify_error("the call is not placed yet".to_owned());
            return;
        };
        if call.callee == contact || call.parties.iter().any(|p| p.callee == contact) {
            self.notify_error(format!("{contact} is already in the call"));
            return;
        }
        call.parties.push(Party {
            callee: contact.clone(),
            number: None,
        });
        effects.push(Effect::AddParty {
            call: id,
            callee: contact,
        });
    }

    fn owner_action(&mut self, action: OwnerAction, effects: &mut Vec<Effect>) {
        let wanted_state = match action {
            OwnerAction::Answer | OwnerAction::Decline => TalkerCallState::Ringing,
            OwnerAction::HangUp => TalkerCallState::Connected,
        };
        let selected = self.selected_talker().map(|r| r.id.clone());
        let candidates: Vec<(String, u64, String)> = self
            .incoming_calls()
            .iter()
            .filter(|c| c.call.state == wanted_state)
            .map(|c| {
                (
                    c.talker_id.to_owned(),
                    c.call.id,
                    c.call.sip_call_id.clone(),
                )
            })
            .collect();
        // The call on the selected talker first, else the first one.
        let chosen = candidates
            .iter()
            .find(|(t, ..)| Some(t) == selected.as_ref())
            .or_else(|| candidates.first())
            .cloned();
        let Some((talker_id, call_id, sip_call_id)) = chosen else {
            self.notify(format!("no call to {} on my talkers", action.as_str()));
            return;
        };
        let Some((dialed, public_key)) = self
            .verifications
            .get(&talker_id)
            .filter(|v| v.state == VerifyState::Verified)
            .map(|v| (v.dialed, v.public_key.clone()))
        else {
            self.notify_error(format!("{talker_id} is not verified"));
            return;
        };
        if !self.owner_actions.insert((talker_id.clone(), call_id)) {
            return;
        }
        self.notify(format!(
            "{}: sent to {}",
            action.as_str(),
            self.talker_name(&talker_id)
        ));
        effects.push(Effect::OwnerAction {
            talker_id,
            dialed,
            public_key,
            call_id,
            sip_call_id,
            action,
        });
    }

    fn refresh(&mut self, effects: &mut Vec<Effect>) {
        if self.connection == Connection::NotConfigured {
            self.open_error(ErrorPane::NotConfigured);
            return;
        }
        if !self.polls.me_in_flight && self.me.is_none() {
            self.polls.me_in_flight = true;
            effects.push(Effect::LoadMe);
        }
        if !self.polls.registry_in_flight {
            self.polls.registry_in_flight = true;
            self.polls.registry_due = self.now + REGISTRY_POLL_MS;
            effects.push(Effect::LoadTalkers);
        }
        if !self.polls.contacts_in_flight {
            self.polls.contacts_in_flight = true;
            effects.push(Effect::LoadContacts);
        }
        // Ask for the routes again (request_routes sends it after this update).
        self.routes = None;
        if let Some(call) = &mut self.call
            && call.stream_lost.is_some()
            && !call.is_over()
            && let Some(id) = call.id()
        {
            effects.push(Effect::FollowCall {
                call: id.to_owned(),
            });
            call.stream_lost = None;
        }
        self.notify("refreshing".to_owned());
    }

    // ---- periodic work ----------------------------------------------------

    fn on_tick(&mut self, effects: &mut Vec<Effect>) {
        if self.notice.as_ref().is_some_and(|n| n.until <= self.now) {
            self.notice = None;
        }
        if self.connection == Connection::NotConfigured {
            return;
        }
        if !self.polls.registry_in_flight && self.now >= self.polls.registry_due {
            self.polls.registry_in_flight = true;
            self.polls.registry_due = self.now + REGISTRY_POLL_MS;
            effects.push(Effect::LoadTalkers);
            // Retry what failed at start along with the registry.
            if self.contacts.is_none() && !self.polls.contacts_in_flight {
                self.polls.contacts_in_flight = true;
                effects.push(Effect::LoadContacts);
            }
            if self.me.is_none() && !self.polls.me_in_flight {
                self.polls.me_in_flight = true;
                effects.push(Effect::LoadMe);
            }
        }
        let interval = if self.call_is_live() {
            STATUS_POLL_IN_CALL_MS
        } else {
            STATUS_POLL_MS
        };
        let verified: Vec<(String, std::net::SocketAddr, String)> = self
            .verifications
            .iter()
            .filter(|(_, v)| v.state == VerifyState::Verified)
            .map(|(id, v)| (id.clone(), v.dialed, v.public_key.clone()))
            .collect();
        for (talker_id, dialed, public_key) in verified {
            if self.polls.status_in_flight.contains(&talker_id) {
                continue;
            }
            let last = self.polls.status_polled.get(&talker_id).copied();
            if last.is_none_or(|last| self.now - last >= interval) {
                self.polls.status_in_flight.insert(talker_id.clone());
                self.polls.status_polled.insert(talker_id.clone(), self.now);
                effects.push(Effect::PollStatus {
                    talker_id,
                    dialed,
                    public_key,
                });
            }
        }
    }

    // ---- registry, LAN, verification ---------------------------------------

    fn registry_loaded(&mut self, talkers: Vec<RegisteredTalker>, effects: &mut Vec<Effect>) {
        let changed = self.registry.as_ref() != Some(&talkers);
        self.registry = Some(talkers);
        // Designations of talkers that left the registry go too.
        let registry = self.registry.as_deref().unwrap_or_default();
        self.designated
            .retain(|id| registry.iter().any(|t| t.id == *id));
        self.verify_all(effects);
        if changed {
            // Online states feed the ranking: ask for the marks again.
            self.routes = None;
        }
    }

    fn lan_seen(&mut self, ad: TalkerAd, effects: &mut Vec<Effect>) {
        // The same instance may now advertise another id: drop the old entry first.
        self.sightings.insert(ad.instance.clone(), ad);
        self.verify_all(effects);
    }

    fn lan_gone(&mut self, ad: &TalkerAd) {
        self.sightings.remove(&ad.instance);
        let id = ad.id.as_str();
        // Still reachable through a manual entry or another advertisement?
        match roster::address_of(id, &self.sources()) {
            Some(address)
                if self
                    .verifications
                    .get(id)
                    .is_some_and(|v| v.dialed == address) => {}
            _ => {
                self.verifications.remove(id);
                self.statuses.remove(id);
                self.polls.status_polled.remove(id);
                // Not on the LAN any more: still callable through the matcher when online.
                if !self.registry_online(id) {
                    self.designated.retain(|d| d != id);
                }
            }
        }
    }

    fn registry_online(&self, id: &str) -> bool {
        self.registry
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|t| t.id == id && t.online)
    }

    /// Challenges every seen agent of my registry that is not challenged at
    /// its current address with its current registry key.
    fn verify_all(&mut self, effects: &mut Vec<Effect>) {
        let Some(registry) = &self.registry else {
            return;
        };
        let mut wanted = Vec::new();
        // A SIP phone has no key to prove itself with: never challenged.
        let agents = registry
            .iter()
            .filter(|t| t.software != crate::model::TalkerSoftware::SipPhone);
        for talker in agents {
            let Some(dialed) = roster::address_of(&talker.id, &self.sources()) else {
                continue;
            };
            let current = self.verifications.get(&talker.id);
            if current.is_some_and(|v| v.dialed == dialed && v.public_key == talker.public_key) {
                continue;
            }
            wanted.push((talker.id.clone(), dialed, talker.public_key.clone()));
        }
        for (talker_id, dialed, public_key) in wanted {
            self.verifications.insert(
                talker_id.clone(),
                Verification {
                    dialed,
                    public_key: public_key.clone(),
                    state: VerifyState::Pending,
                },
            );
            self.statuses.remove(&talker_id);
            effects.push(Effect::Verify {
                talker_id,
                dialed,
                public_key,
            });
        }
    }

    // ---- routes -------------------------------------------------------------

    /// Asks for the selected contact's routes when what they depend on changed
    /// (contact, designation, video). One request at a time: the answer to an
    /// old one triggers the latest.
    fn request_routes(&mut self, effects: &mut Vec<Effect>) {
        if !matches!(
            self.connection,
            Connection::Online | Connection::Connecting | Connection::Unreachable(_)
        ) {
            return;
        }
        let Some(contact) = self.selected_contact() else {
            return;
        };
        let key = RoutesKey {
            callee: contact.name.clone(),
            talkers: self.designated.clone(),
            video: self.video,
        };
        if self.routes.as_ref().is_some_and(|r| r.key == key) {
            return;
        }
        if self.polls.routes_in_flight.is_some() {
            return;
        }
        self.polls.routes_in_flight = Some(key.clone());
        self.routes = Some(RoutesView {
            key: key.clone(),
            state: RoutesState::Loading,
        });
        self.rebuild_rows();
        effects.push(Effect::LoadRoutes {
            callee: key.callee,
            talkers: key.talkers,
            video: key.video,
        });
    }

    fn routes_answered(&mut self, callee: &str, result: Result<crate::model::Routes, Problem>) {
        let asked = self.polls.routes_in_flight.take();
        match &result {
            Ok(_) => self.matcher_answered(),
            Err(problem) => self.matcher_failed(problem),
        }
        let Some(asked) = asked.filter(|k| k.callee == callee) else {
            return;
        };
        if let Some(view) = &mut self.routes
            && view.key == asked
        {
            view.state = match result {
                Ok(routes) => RoutesState::Loaded(routes),
                Err(problem) => RoutesState::Failed(problem),
            };
        }
    }

    // ---- the call -------------------------------------------------------------

    fn call_placed(&mut self, result: Result<CallInfo, Problem>, effects: &mut Vec<Effect>) {
        let Some(call) = &mut self.call else {
            return;
        };
        match result {
            Ok(info) => {
                let id = info.call.clone();
                call.info = Some(info);
                effects.push(Effect::FollowCall { call: id.clone() });
                if call.hangup_requested {
                    effects.push(Effect::HangUp { call: id });
                }
                self.matcher_answered();
            }
            Err(problem) => {
                call.failure = Some(problem.clone());
                if let Problem::Refused {
                    code,
                    caller_servers,
                    callee_servers,
                    ..
                } = &problem
                    && code == "no_shared_server"
                {
                    let pane = ErrorPane::NoSharedServer {
                        callee: call.callee.clone(),
                        caller_servers: caller_servers.clone(),
                        callee_servers: callee_servers.clone(),
                    };
                    self.open_error(pane);
                }
                self.matcher_failed(&problem);
            }
        }
    }

    fn call_event(&mut self, event: &CallEvent) {
        let now = self.now;
        let Some(call) = &mut self.call else {
            return;
        };
        if call.id() != Some(event.call.as_str()) {
            return;
        }
        // The stream replays after a reconnect: each state once.
        if call
            .timeline
            .last()
            .is_some_and(|last| last.seq >= event.seq)
        {
            return;
        }
        call.stream_lost = None;
        let sip_code = event.detail.sip_code;
        call.timeline.push(TimelineEntry {
            seq: event.seq,
            state: event.state,
            party: event.party(),
            at: parse_rfc3339(&event.at),
            seen: now,
            reason: event.reason().map(str::to_owned),
            sip_code,
        });
        if let Some(info) = &mut call.info
            && (event.party() == 1 || event.state.is_final())
        {
            info.state = event.state;
            if let Some(reason) = event.reason() {
                info.reason = Some(reason.to_owned());
            }
        }
    }

    // ---- connection and messages ---------------------------------------------

    fn matcher_answered(&mut self) {
        self.connection = Connection::Online;
        self.errors.retain(|e| {
            !matches!(
                e,
                ErrorPane::MatcherUnreachable { .. } | ErrorPane::Unauthorized { .. }
            )
        });
    }

    fn matcher_failed(&mut self, problem: &Problem) {
        match problem {
            Problem::Unreachable { what, message } if what == "matcher" => {
                if !matches!(self.connection, Connection::Unreachable(_)) {
                    self.open_error(ErrorPane::MatcherUnreachable {
                        message: message.clone(),
                    });
                }
                self.connection = Connection::Unreachable(message.clone());
            }
            Problem::Refused {
                status: 401,
                message,
                ..
            } => {
                if !matches!(self.connection, Connection::Unauthorized(_)) {
                    self.open_error(ErrorPane::Unauthorized {
                        message: message.clone(),
                    });
                }
                self.connection = Connection::Unauthorized(message.clone());
            }
            Problem::Refused { code, .. } if code == "not_configured" => {
                self.connection = Connection::NotConfigured;
                self.open_error(ErrorPane::NotConfigured);
            }
            // The matcher answered: it is up, only this request was refused.
            Problem::Refused { .. } => {
                if !matches!(self.connection, Connection::Unauthorized(_)) {
                    self.connection = Connection::Online;
                }
            }
            other => self.notify_error(other.to_string()),
        }
    }

    fn open_error(&mut self, pane: ErrorPane) {
        self.errors.retain(|e| !e.same_kind(&pane));
        self.errors.push(pane);
    }

    fn notify(&mut self, text: String) {
        self.notice = Some(Notice {
            text,
            error: false,
            until: self.now + NOTICE_MS,
        });
    }

    fn notify_error(&mut self, text: String) {
        self.notice = Some(Notice {
            text,
            error: true,
            until: self.now + NOTICE_MS,
        });
    }
}
