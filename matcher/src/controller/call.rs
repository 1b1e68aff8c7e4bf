//! One placed call: the control leg's INVITE, its REFERs and their NOTIFYs, the
//! timeouts, and the hang-up. One task per call owns all of it, so the order of
//! events is the order things happened.

use super::events::{ControllerEvent, EndReason, PartyId};
use super::session_refresh::{self, RefreshResult, SessionRefresh, Verdict};
use super::{CallPlan, Command, ControllerError, MAX_PARTIES, Shared, SipTransport};
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, TerminatedReason};
use rsipstack::dialog::invitation::{InviteAsyncResult, InviteOption};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::headers::ReferTo;
use rsipstack::sip::{Header, Method, Request, Response, StatusCode, Transport, Uri};
use rsipstack::transport::SipAddr;
use splitdial_sip::call_token::{self, Action, Claims, TokenKind, unix_now};
use splitdial_sip::event::Event;
use splitdial_sip::headers;
use splitdial_sip::sdp::SdpSession;
use splitdial_sip::sipfrag;
use splitdial_sip::subscription::SubscriptionState;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// Lifetime of each token we mint (at most 30 s by the token rules).
const TOKEN_LIFETIME_SECS: u64 = 20;
/// How long a BYE or CANCEL may take before we stop waiting for it.
const TEARDOWN_LIMIT: Duration = Duration::from_secs(10);

/// Where a party's call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartyState {
    /// Its REFER waits to be sent (the talker has not answered, or another
    /// REFER is outstanding).
    Queued,
    /// Its REFER is sent, no answer yet.
    Referring,
    /// The talker accepted the REFER or reported 100.
    Trying,
    /// Ringing (180/183).
    Ringing,
    /// Answered (200).
    Connected,
    /// Never connected.
    Failed,
    /// Connected, then gone.
    Ended,
}

impl PartyState {
    fn pending(self) -> bool {
        matches!(
            self,
            Self::Queued | Self::Referring | Self::Trying | Self::Ringing
        )
    }

    fn alive(self) -> bool {
        self.pending() || self == Self::Connected
    }
}

struct Party {
    id: PartyId,
    uri: String,
    /// The CSeq number of its REFER (predicted before sending, confirmed by
    /// the final response).
    cseq: Option<u32>,
    state: PartyState,
    rang: bool,
}

/// How the call ends.
struct Finish {
    event: ControllerEvent,
    /// Whether the control leg must still be ended with BYE.
    bye: bool,
}

impl Finish {
    fn ended(reason: EndReason, bye: bool) -> Self {
        Self {
            event: ControllerEvent::Ended { reason },
            bye,
        }
    }
}

/// The outcome of a REFER's client transaction.
type ReferResult = (PartyId, rsipstack::Result<Option<Response>>);

/// One call's state, owned by its task.
pub(super) struct Call {
    shared: Arc<Shared>,
    plan: CallPlan,
    sip_call_id: String,
    events: mpsc::Sender<ControllerEvent>,
    parties: Vec<Party>,
    queue: VecDeque<PartyId>,
    refer_in_flight: bool,
    first_refer_cseq: Option<u32>,
    ever_connected: bool,
    callee_deadline: Option<Instant>,
    commands_open: bool,
    /// Our side of the control leg's SDP: inactive, one `o=` session for the dialog.
    sdp: SdpSession,
    /// RFC 4028 refreshes of the control leg (we are the refresher).
    refresh: SessionRefresh,
    /// In-dialog requests that came in while the control INVITE's 200 was still being
    /// taken in (a talker dialling on answer may NOTIFY that early); served first.
    held: Vec<DialogState>,
}

impl Call {
    pub(super) fn new(
        shared: Arc<Shared>,
        plan: CallPlan,
        sip_call_id: String,
        events: mpsc::Sender<ControllerEvent>,
    ) -> Self {
        let callee = Party {
            id: PartyId(1),
            uri: plan.callee_uri.clone(),
            cseq: None,
            state: PartyState::Queued,
            rang: false,
        };
        Self {
            shared,
            sip_call_id,
            events,
            parties: vec![callee],
            queue: VecDeque::from([PartyId(1)]),
            refer_in_flight: false,
            first_refer_cseq: None,
            ever_connected: false,
            callee_deadline: None,
            commands_open: true,
            sdp: SdpSession::new(IpAddr::from([0, 0, 0, 0])),
            refresh: SessionRefresh::off(&plan.call_id),
            held: Vec::new(),
            plan,
        }
    }

    /// Runs the call to its end.
    pub(super) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        info!(call = %self.plan.call_id, sip_call_id = %self.sip_call_id, target = %self.plan.caller_target, "dialing the talker");
        self.emit(ControllerEvent::DialingTalker);
        if self.plan.transport == SipTransport::Tcp {
            self.shared.flows.ensure(self.plan.proxy).await;
        }
        let (state_tx, mut states) = self.shared.dialogs.new_dialog_state_channel();
        let started = self.invite_option().and_then(|option| {
            self.shared
                .dialogs
                .do_invite_async(option, state_tx)
                .map_err(|e| ControllerError::Stack(e.to_string()))
        });
        let (dialog, invite) = match started {
            Ok(started) => started,
            Err(e) => {
                warn!(call = %self.plan.call_id, error = %e, "cannot send the control INVITE");
                self.emit(ControllerEvent::Ended {
                    reason: EndReason::Error {
                        message: e.to_string(),
                    },
                });
                self.shared.forget(&self.sip_call_id);
                return;
            }
        };
        let finish = match self
            .await_answer(&dialog, invite, &mut states, &mut commands)
            .await
        {
            Ok(()) => self.serve(&dialog, &mut states, &mut commands).await,
            Err(finish) => finish,
        };
        self.refresh.stop();
        if finish.bye {
            end_leg(&dialog, &mut states).await;
        }
        info!(call = %self.plan.call_id, event = ?finish.event, "call over");
        self.emit(finish.event);
        self.shared.dialogs.remove_dialog(&dialog.id());
        self.shared.forget(&self.sip_call_id);
        // Whatever is still queued for the dialog gets its answer.
        for state in std::mem::take(&mut self.held) {
            answer_late(state).await;
        }
        while let Ok(state) = states.try_recv() {
            answer_late(state).await;
        }
    }

    /// Until the talker answers: `Ok` when it answered with REFER support,
    /// else how the call ends.
    async fn await_answer(
        &mut self,
        dialog: &InviteDialog,
        mut invite: tokio::task::JoinHandle<InviteAsyncResult>,
        states: &mut DialogStateReceiver,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Result<(), Finish> {
        let deadline = tokio::time::sleep(self.plan.talker_answer_timeout);
        tokio::pin!(deadline);
        let give_up = loop {
            tokio::select! {
                result = &mut invite => {
                    return match result {
                        Ok(Ok((_, Some(response)))) if response.status_code.code() / 100 == 2 => {
                            self.answered(&response)
                        }
                        Ok(Ok((_, Some(response)))) => {
                            let code = response.status_code.code();
                            info!(call = %self.plan.call_id, code, "the talker refused the control INVITE");
                            Err(Finish::ended(EndReason::TalkerRejected { code }, false))
                        }
                        Ok(Ok((_, None))) => Err(Finish::ended(EndReason::TalkerNoAnswer, false)),
                        Ok(Err(e)) => Err(Finish::ended(EndReason::Error { message: format!("control INVITE: {e}") }, false)),
                        Err(e) => Err(Finish::ended(EndReason::Error { message: format!("control INVITE task: {e}") }, false)),
                    };
                }
                command = commands.recv(), if self.commands_open => match command {
                    Some(Command::HangUp) => break EndReason::HungUp,
                    Some(Command::AddParty { uri, reply }) => {
                        let _ = reply.send(self.add_party(uri));
                    }
                    None => self.commands_open = false,
                },
                () = &mut deadline => break EndReason::TalkerNoAnswer,
                () = self.shared.stop.cancelled() => break EndReason::Shutdown,
                state = states.recv() => match state {
                    Some(DialogState::Early(_, response)) => {
                        debug!(call = %self.plan.call_id, code = response.status_code.code(), "talker progress");
                    }
                    Some(
                        DialogState::Calling(_)
                        | DialogState::Trying(_)
                        | DialogState::WaitAck(..)
                        | DialogState::Confirmed(..),
                    )
                    | None => {}
                    Some(state) => self.held.push(state),
                },
            }
        };
        // CANCEL (rsipstack defers it until a provisional response when none
        // came yet, and BYEs a 2xx that crosses it).
        info!(call = %self.plan.call_id, reason = %give_up, "cancelling the control INVITE");
        if let Err(e) = dialog.cancel().await {
            debug!(call = %self.plan.call_id, error = %e, "CANCEL failed");
        }
        if let Ok(Ok(Ok((_, Some(response))))) = tokio::time::timeout(TEARDOWN_LIMIT, invite).await
        {
            debug!(call = %self.plan.call_id, code = response.status_code.code(), "control INVITE ended");
        }
        Err(Finish::ended(give_up, false))
    }

    /// The talker's 2xx: REFER must be allowed.
    fn answered(&mut self, response: &Response) -> Result<(), Finish> {
        let refer_allowed = headers::list(&response.headers, "Allow")
            .iter()
            .any(|m| m.eq_ignore_ascii_case("REFER"));
        if !refer_allowed {
            warn!(call = %self.plan.call_id, "the talker answered without Allow: REFER");
            return Err(Finish::ended(EndReason::NoReferSupport, true));
        }
        info!(call = %self.plan.call_id, "the talker answered the control leg");
        self.refresh.on_answer(response);
        self.emit(ControllerEvent::TalkerAnswered);
        self.dialling_on_answer(response)
    }

    /// When the talker's 200 echoes the party named in the INVITE, it is already calling that
    /// party: its NOTIFYs report on the INVITE's CSeq as a first REFER's would, and no REFER
    /// goes out for it. Without an echo (a SIP phone, an older agent) the party waits for its
    /// REFER. An echo of anything else ends the call: the talker may be calling someone, and a
    /// REFER could have it call the party a second time.
    fn dialling_on_answer(&mut self, response: &Response) -> Result<(), Finish> {
        let Some(echo) = headers::first(&response.headers, call_token::DIAL_HEADER) else {
            return Ok(());
        };
        let Some(index) = self.parties.iter().position(|p| p.id == PartyId(1)) else {
            return Ok(());
        };
        let party = &mut self.parties[index];
        let cseq = headers::cseq_number(&response.headers);
        let (Some(cseq), true) = (cseq, echo.trim() == dial_target(&party.uri)) else {
            warn!(call = %self.plan.call_id, %echo, "the talker's 200 names another party to dial than ours (or has no CSeq); ending the call");
            return Err(Finish::ended(
                EndReason::Error {
                    message: "the talker echoed another party to dial".into(),
                },
                true,
            ));
        };
        if party.state != PartyState::Queued {
            return Ok(());
        }
        party.cseq = Some(cseq);
        party.state = PartyState::Trying;
        let id = party.id;
        self.first_refer_cseq = Some(cseq);
        self.queue.retain(|queued| *queued != id);
        if !self.ever_connected && self.callee_deadline.is_none() {
            self.callee_deadline = Some(Instant::now() + self.plan.callee_answer_timeout);
        }
        info!(call = %self.plan.call_id, party = %id, cseq, "the talker dials on answer: no REFER");
        Ok(())
    }

    /// The answered control leg: REFERs, NOTIFYs, commands, timeouts.
    async fn serve(
        &mut self,
        dialog: &InviteDialog,
        states: &mut DialogStateReceiver,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Finish {
        let (refer_tx, mut refer_results) = mpsc::unbounded_channel::<ReferResult>();
        let (refresh_tx, mut refresh_results) = mpsc::unbounded_channel::<RefreshResult>();
        for state in std::mem::take(&mut self.held) {
            if let Some(finish) = self.on_dialog_state(state).await {
                return finish;
            }
        }
        loop {
            self.send_next_refer(dialog, &refer_tx);
            let callee_timeout = sleep_until_or_never(self.callee_deadline);
            // One request of ours at a time: a refresh waits for the REFER in
            // flight (whose NOTIFYs are matched by its predicted CSeq).
            let refresh_due =
                sleep_until_or_never(self.refresh.due().filter(|_| !self.refer_in_flight));
            tokio::select! {
                state = states.recv() => {
                    let Some(state) = state else {
                        return Finish::ended(EndReason::Error { message: "control dialog vanished".into() }, false);
                    };
                    if let Some(finish) = self.on_dialog_state(state).await {
                        return finish;
                    }
                }
                Some((party, result)) = refer_results.recv() => {
                    if let Some(finish) = self.on_refer_result(party, result) {
                        return finish;
                    }
                }
                command = commands.recv(), if self.commands_open => match command {
                    Some(Command::HangUp) => {
                        info!(call = %self.plan.call_id, "hanging up");
                        return Finish::ended(EndReason::HungUp, true);
                    }
                    Some(Command::AddParty { uri, reply }) => {
                        let _ = reply.send(self.add_party(uri));
                    }
                    None => self.commands_open = false,
                },
                () = callee_timeout => {
                    info!(call = %self.plan.call_id, "the callee did not answer in time");
                    return Finish::ended(EndReason::CalleeNoAnswer, true);
                }
                () = refresh_due => self.refresh.start(dialog, &refresh_tx),
                Some(result) = refresh_results.recv() => {
                    if let Verdict::Lost(why) = self.refresh.on_result(result) {
                        return self.control_lost(&why);
                    }
                }
                () = self.shared.stop.cancelled() => return Finish::ended(EndReason::Shutdown, true),
            }
        }
    }

    /// A session refresh showed that the talker no longer holds the control
    /// leg (RFC 4028 §10: 408, 481 or no answer). No BYE follows: the talker
    /// either forgot the leg already or cannot be reached, and to our talker
    /// agent a BYE on the control leg means "hang up the referred calls",
    /// which a lost leg must never do. A connected party's call goes on
    /// between the talkers, uncontrolled: that is `LostControl`, as when a
    /// matcher restarts. Without a connected party the call is over, reported
    /// like any other lost control leg (`error`).
    fn control_lost(&self, why: &str) -> Finish {
        let connected = self
            .parties
            .iter()
            .any(|p| p.state == PartyState::Connected);
        warn!(call = %self.plan.call_id, why, connected, "control leg lost");
        if connected {
            return Finish {
                event: ControllerEvent::LostControl,
                bye: false,
            };
        }
        Finish::ended(
            EndReason::Error {
                message: format!("control leg lost: {why}"),
            },
            false,
        )
    }

    /// A request from the talker in the control dialog, or the dialog's end.
    async fn on_dialog_state(&mut self, state: DialogState) -> Option<Finish> {
        match state {
            DialogState::Notify(_, request, handle) => {
                // Always 200 (RFC 5057: a NOTIFY is never refused for timing).
                let _ = handle.reply(StatusCode::OK).await;
                self.on_notify(&request)
            }
            DialogState::Terminated(_, reason) => Some(self.on_terminated(&reason)),
            DialogState::Updated(_, request, handle) => {
                // A re-INVITE or UPDATE (a hold, a session refresh): whatever
                // it offers is answered inactive; without an offer, a
                // re-INVITE gets our inactive offer and an UPDATE a plain 200.
                let sdp = if !request.body.is_empty() {
                    let offer = String::from_utf8_lossy(&request.body);
                    match self.sdp.inactive_answer(&offer) {
                        Ok(answer) => Some(answer),
                        Err(e) => {
                            debug!(call = %self.plan.call_id, error = %e, "cannot answer the talker's offer");
                            let _ = handle.reply(StatusCode::from(e.sip_status())).await;
                            return None;
                        }
                    }
                } else if request.method == Method::Invite {
                    Some(self.sdp.inactive_offer())
                } else {
                    None
                };
                let headers = sdp
                    .as_ref()
                    .map(|_| vec![make("Content-Type", "application/sdp".into())]);
                let _ = handle
                    .respond(StatusCode::OK, headers, sdp.map(String::into_bytes))
                    .await;
                None
            }
            DialogState::Options(_, _, handle) | DialogState::Info(_, _, handle) => {
                let _ = handle.reply(StatusCode::OK).await;
                None
            }
            DialogState::Refer(_, _, handle) => {
                let _ = handle.reply(StatusCode::Forbidden).await;
                None
            }
            DialogState::Message(_, _, handle) | DialogState::Publish(_, _, handle) => {
                let _ = handle.reply(StatusCode::MethodNotAllowed).await;
                None
            }
            _ => None,
        }
    }

    /// The talker (or the stack) ended the control leg.
    fn on_terminated(&mut self, reason: &TerminatedReason) -> Finish {
        if !matches!(reason, TerminatedReason::UasBye) {
            warn!(call = %self.plan.call_id, ?reason, "control leg ended");
            return Finish::ended(
                EndReason::Error {
                    message: format!("control leg ended: {reason:?}"),
                },
                false,
            );
        }
        let connected = self
            .parties
            .iter()
            .any(|p| p.state == PartyState::Connected);
        if connected {
            info!(call = %self.plan.call_id, "the talker handed the call off");
            return Finish {
                event: ControllerEvent::HandedOff,
                bye: false,
            };
        }
        let reason = if self.ever_connected {
            EndReason::CalleeHungUp
        } else {
            EndReason::TalkerHungUp
        };
        info!(call = %self.plan.call_id, %reason, "the talker ended the control leg");
        Finish::ended(reason, false)
    }

    /// A NOTIFY of a REFER's implicit subscription.
    fn on_notify(&mut self, request: &Request) -> Option<Finish> {
        let event = match Event::from_headers(&request.headers) {
            Some(Ok(event)) if event.is_refer() => event,
            other => {
                debug!(call = %self.plan.call_id, ?other, "NOTIFY for another event package");
                return None;
            }
        };
        let first = self.first_refer_cseq?;
        let Some(index) = self.parties.iter().position(|p| {
            p.cseq
                .is_some_and(|cseq| event.reports_on_refer(cseq, first))
        }) else {
            debug!(call = %self.plan.call_id, event = %event, "NOTIFY for no REFER of ours");
            return None;
        };
        let status = match sipfrag::parse(&request.body) {
            Ok(status) => status,
            Err(e) => {
                debug!(call = %self.plan.call_id, error = %e, "NOTIFY without a readable sipfrag");
                return None;
            }
        };
        let terminated = SubscriptionState::from_headers(&request.headers)
            .and_then(Result::ok)
            .is_some_and(|s| s.is_terminated());
        self.on_progress(index, status.code, terminated)
    }

    /// Applies a sipfrag status to a party.
    fn on_progress(&mut self, index: usize, code: u16, terminated: bool) -> Option<Finish> {
        let party = &mut self.parties[index];
        let id = party.id;
        debug!(call = %self.plan.call_id, party = %id, code, terminated, state = ?party.state, "referred call progress");
        match code {
            100..=199 => {
                if code > 100 && party.state.pending() {
                    party.state = PartyState::Ringing;
                    if !party.rang {
                        party.rang = true;
                        self.emit(ControllerEvent::CalleeRinging { party: id });
                    }
                } else if matches!(party.state, PartyState::Queued | PartyState::Referring) {
                    party.state = PartyState::Trying;
                }
                None
            }
            200..=299 => match party.state {
                state if state.pending() => {
                    party.state = PartyState::Connected;
                    self.ever_connected = true;
                    self.callee_deadline = None;
                    info!(call = %self.plan.call_id, party = %id, "party connected");
                    self.emit(ControllerEvent::Connected { party: id });
                    if self.plan.hand_off_after_transfer {
                        info!(call = %self.plan.call_id, "transfer done: handing the call off");
                        return Some(Finish {
                            event: ControllerEvent::HandedOff,
                            bye: true,
                        });
                    }
                    None
                }
                PartyState::Connected => {
                    // Our talker agent's report that a connected party's call
                    // ended: one more final NOTIFY (see the module docs).
                    party.state = PartyState::Ended;
                    info!(call = %self.plan.call_id, party = %id, "party gone");
                    self.emit(ControllerEvent::PartyEnded { party: id });
                    self.over_unless_alive(EndReason::CalleeHungUp)
                }
                _ => None,
            },
            // A challenge the talker answers with its own credentials.
            401 | 407 if !terminated => None,
            _ => {
                if !party.state.pending() {
                    return None;
                }
                party.state = PartyState::Failed;
                info!(call = %self.plan.call_id, party = %id, code, "party failed");
                self.emit(ControllerEvent::PartyFailed { party: id, code });
                self.over_unless_alive(EndReason::for_callee_failure(code))
            }
        }
    }

    /// The final response to a REFER.
    fn on_refer_result(
        &mut self,
        id: PartyId,
        result: rsipstack::Result<Option<Response>>,
    ) -> Option<Finish> {
        self.refer_in_flight = false;
        let index = self.parties.iter().position(|p| p.id == id)?;
        let code = match result {
            Ok(Some(response)) if response.status_code.code() / 100 == 2 => {
                let actual = headers::cseq_number(&response.headers);
                let party = &mut self.parties[index];
                if let Some(actual) = actual.filter(|a| Some(*a) != party.cseq) {
                    warn!(call = %self.plan.call_id, party = %id, predicted = ?party.cseq, actual, "REFER CSeq differs from the prediction");
                    if self.first_refer_cseq == party.cseq {
                        self.first_refer_cseq = Some(actual);
                    }
                    party.cseq = Some(actual);
                }
                if party.state == PartyState::Referring {
                    party.state = PartyState::Trying;
                }
                debug!(call = %self.plan.call_id, party = %id, "REFER accepted");
                return None;
            }
            Ok(Some(response)) => response.status_code.code(),
            Ok(None) => 408,
            Err(e) => {
                warn!(call = %self.plan.call_id, party = %id, error = %e, "REFER failed");
                500
            }
        };
        let party = &mut self.parties[index];
        if !party.state.pending() {
            return None;
        }
        party.state = PartyState::Failed;
        info!(call = %self.plan.call_id, party = %id, code, "the talker refused the REFER");
        self.emit(ControllerEvent::PartyFailed { party: id, code });
        self.over_unless_alive(EndReason::ReferRejected { code })
    }

    /// When no party is left alive the call is over: `callee_hung_up` if one
    /// had connected, else `reason`.
    fn over_unless_alive(&self, reason: EndReason) -> Option<Finish> {
        if self.parties.iter().any(|p| p.state.alive()) {
            return None;
        }
        let reason = if self.ever_connected {
            EndReason::CalleeHungUp
        } else {
            reason
        };
        Some(Finish::ended(reason, true))
    }

    /// A new party, queued for its REFER.
    fn add_party(&mut self, uri: String) -> Result<PartyId, ControllerError> {
        if self.parties.len() >= MAX_PARTIES {
            return Err(ControllerError::TooManyParties);
        }
        let id = PartyId(self.parties.last().map_or(1, |p| p.id.0 + 1));
        info!(call = %self.plan.call_id, party = %id, %uri, "adding a party");
        self.parties.push(Party {
            id,
            uri,
            cseq: None,
            state: PartyState::Queued,
            rang: false,
        });
        self.queue.push_back(id);
        Ok(id)
    }

    /// Sends the next queued REFER unless one is outstanding (one at a time, so
    /// each REFER's CSeq is known before its NOTIFYs can arrive).
    fn send_next_refer(
        &mut self,
        dialog: &InviteDialog,
        results: &mpsc::UnboundedSender<ReferResult>,
    ) {
        if self.refer_in_flight || self.refresh.in_flight() {
            return;
        }
        let Some(id) = self.queue.pop_front() else {
            return;
        };
        let Some(index) = self.parties.iter().position(|p| p.id == id) else {
            return;
        };
        let cseq = dialog.snapshot().local_cseq.wrapping_add(1);
        let token = self.token(Action::Refer, Some(&self.parties[index].uri));
        let party = &mut self.parties[index];
        party.cseq = Some(cseq);
        party.state = PartyState::Referring;
        self.first_refer_cseq.get_or_insert(cseq);
        if !self.ever_connected && self.callee_deadline.is_none() {
            self.callee_deadline = Some(Instant::now() + self.plan.callee_answer_timeout);
        }
        self.refer_in_flight = true;
        info!(call = %self.plan.call_id, party = %id, uri = %party.uri, cseq, "REFER");
        let refer_to = ReferTo::new(dial_target(&party.uri));
        let dialog = dialog.clone();
        let results = results.clone();
        tokio::spawn(async move {
            let headers = vec![make(call_token::HEADER, token)];
            let result = dialog.refer(refer_to, Some(headers), None).await;
            let _ = results.send((id, result));
        });
    }

    /// The control INVITE.
    fn invite_option(&mut self) -> Result<InviteOption, ControllerError> {
        self.sdp = SdpSession::new(media_ip(self.shared.local, self.plan.proxy));
        let uri = |what: &'static str, text: &str| {
            Uri::try_from(text).map_err(|_| ControllerError::InvalidUri {
                what,
                uri: text.to_owned(),
            })
        };
        let local = self.shared.local;
        let transport = match self.plan.transport {
            SipTransport::Tcp => Transport::Tcp,
            SipTransport::Udp => Transport::Udp,
        };
        let contact = match transport {
            Transport::Tcp => format!("sip:splitdial@{local};transport=tcp"),
            _ => format!("sip:splitdial@{local}"),
        };
        // The first party rides on the INVITE (dial on answer), with its own refer token.
        let first_party = dial_target(&self.plan.callee_uri);
        let dial_token = self.token(Action::Refer, Some(&self.plan.callee_uri));
        Ok(InviteOption {
            caller: uri("controller_uri", &self.plan.controller_uri)?,
            callee: uri("caller_target", &self.plan.caller_target)?,
            contact: uri("contact", &contact)?,
            destination: Some(SipAddr {
                r#type: Some(transport),
                addr: self.plan.proxy.into(),
            }),
            content_type: Some("application/sdp".into()),
            offer: Some(self.sdp.inactive_offer().into_bytes()),
            headers: Some(
                vec![
                    make(call_token::HEADER, self.token(Action::Control, None)),
                    make(
                        "Call-Info",
                        format!("<sip:{}>;answer-after=0", self.plan.server_domain),
                    ),
                    make("Answer-Mode", "Auto".into()),
                    make("Allow", super::ALLOW.into()),
                    make(call_token::DIAL_HEADER, first_party),
                    make(call_token::DIAL_TOKEN_HEADER, dial_token),
                ]
                .into_iter()
                .chain(session_refresh::invite_headers())
                .collect(),
            ),
            call_id: Some(self.sip_call_id.clone()),
            ..Default::default()
        })
    }

    /// A fresh token for one client transaction.
    fn token(&self, act: Action, target: Option<&str>) -> String {
        let now = unix_now();
        self.shared.issuer.issue(
            TokenKind::Call,
            &Claims {
                aud: self.plan.caller_talker_id.clone(),
                jti: format!("{:032x}", rand::random::<u128>()),
                iat: now,
                exp: now + TOKEN_LIFETIME_SECS,
                call: self.plan.call_id.clone(),
                dlg: self.sip_call_id.clone(),
                act,
                target: target.map(str::to_owned),
            },
        )
    }

    fn emit(&self, event: ControllerEvent) {
        if let Err(e) = self.events.try_send(event) {
            warn!(call = %self.plan.call_id, error = %e, "call event not delivered");
        }
    }
}

/// Ends the control leg with BYE, answering whatever the talker sends meanwhile
/// (NOTIFYs keep coming until the talker has seen the BYE).
async fn end_leg(dialog: &InviteDialog, states: &mut DialogStateReceiver) {
    let bye = tokio::time::timeout(TEARDOWN_LIMIT, dialog.bye());
    tokio::pin!(bye);
    loop {
        tokio::select! {
            result = &mut bye => {
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => debug!(error = %e, "BYE failed"),
                    Err(_) => debug!("no answer to BYE"),
                }
                return;
            }
            Some(state) = states.recv() => answer_late(state).await,
        }
    }
}

/// Answers an in-dialog request that arrives while the leg is ending: 200 for
/// NOTIFY (never leave the talker waiting), 481 for the rest.
async fn answer_late(state: DialogState) {
    match state {
        DialogState::Notify(_, _, handle) => {
            let _ = handle.reply(StatusCode::OK).await;
        }
        DialogState::Updated(_, _, handle)
        | DialogState::Options(_, _, handle)
        | DialogState::Info(_, _, handle)
        | DialogState::Refer(_, _, handle)
        | DialogState::Message(_, _, handle)
        | DialogState::Publish(_, _, handle) => {
            let _ = handle.reply(StatusCode::CallTransactionDoesNotExist).await;
        }
        _ => {}
    }
}

/// Sleeps until `at`, or forever when there is no `at`.
async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A party's URI as a `Refer-To` (and `Splitdial-Dial`) value.
fn dial_target(uri: &str) -> String {
    format!("<{uri}>")
}

fn make(name: &str, value: String) -> Header {
    rsipstack::sip::headers::make_header(name, value)
}

/// The address for our SDP: our own when it is concrete, else the local
/// address the system would use toward the proxy (no packet is sent).
fn media_ip(local: SocketAddr, proxy: SocketAddr) -> IpAddr {
    if !local.ip().is_unspecified() {
        return local.ip();
    }
    std::net::UdpSocket::bind(SocketAddr::new(local.ip(), 0))
        .and_then(|s| s.connect(proxy).and_then(|()| s.local_addr()))
        .map_or(local.ip(), |a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_media_address_is_our_own_when_it_is_concrete() {
        let local: SocketAddr = "127.0.0.1:5080".parse().unwrap();
        assert_eq!(
            media_ip(local, "127.0.0.1:5060".parse().unwrap()),
            local.ip()
        );
    }

    #[test]
    fn party_states_tell_pending_from_alive() {
        assert!(PartyState::Ringing.pending());
        assert!(PartyState::Connected.alive());
        assert!(!PartyState::Connected.pending());
        assert!(!PartyState::Ended.alive());
        assert!(!PartyState::Failed.alive());
    }
}
