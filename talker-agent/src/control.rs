//! Incoming SIP requests: the matcher's control leg (DESIGN.md call flow), the
//! REFERs in it that make this talker dial, and ordinary calls under the answer
//! policy. Nothing here auto-answers, dials or opens media without a call token
//! that [`Trust::check`] accepted.
//!
//! A control leg whose controller asked for RFC 4028 session timers ends when
//! no refresh came in time: its BYE goes out, and its referred calls are
//! detached rather than hung up (they end with their peer or at shutdown).

use crate::calls::{CallKind, CallState, Calls, OwnerAction};
use crate::config::{AnswerPolicy, Policy};
use crate::media;
use crate::referred_call::{self, Dialer, Progress};
use crate::trust::Trust;
use rsipstack::dialog::dialog::{Dialog, DialogState};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::{Header, Method, StatusCode, Uri};
use rsipstack::transaction::transaction::Transaction;
use splitdial_sip::call_token::{self, Action};
use splitdial_sip::headers;
use splitdial_sip::session_timer::{self, SessionExpires, UasTerms};
use splitdial_sip::wire::has_tag;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// Methods the agent accepts inside a control dialog.
const CONTROL_ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, UPDATE";
/// How long an ordinary call rings before we give up on it.
const RING_LIMIT: Duration = Duration::from_secs(90);
/// At shutdown, how long each call's BYE may wait for its answer (a peer that
/// never answers would otherwise hold shutdown for timer F, 32 s).
pub const SHUTDOWN_BYE_LIMIT: Duration = Duration::from_secs(4);
/// When the control leg's session expires, how long its BYE may wait for an
/// answer (the controller is probably gone: nobody may answer at all).
const EXPIRY_BYE_LIMIT: Duration = Duration::from_secs(4);
/// How long an in-dialog request that overtook the ACK of our 2xx waits for
/// it. rsipstack silently drops such a request (a REFER right behind the ACK,
/// arriving first over another connection), and over TCP nobody retransmits.
const ACK_WAIT_LIMIT: Duration = Duration::from_secs(4);

/// How a control leg's loop ended.
enum LegEnd {
    /// The controller hung up, the leg ended, or the agent shuts down: the
    /// referred calls end with it.
    HangUp,
    /// No session refresh came in time (RFC 4028): the leg ends, the referred
    /// calls go on.
    Expired,
}

/// The control leg's session timer, when the controller asked for one: we
/// never refresh, the controller does (`refresher=uac`).
struct ControlSession {
    secs: u32,
    /// When we give up on the leg unless a refresh comes first.
    deadline: Instant,
}

impl ControlSession {
    fn start(agreed: SessionExpires) -> Self {
        Self {
            secs: agreed.secs,
            deadline: Instant::now() + session_timer::expires_after(agreed.secs),
        }
    }

    /// The headers of a 2xx that keeps the timer running (RFC 4028 §9).
    fn answer_headers(&self) -> Vec<Header> {
        let agreed = SessionExpires {
            secs: self.secs,
            refresher: Some(session_timer::Refresher::Uac),
        };
        vec![
            make(session_timer::HEADER, agreed.to_string()),
            make("Require", session_timer::OPTION_TAG.into()),
        ]
    }
}

/// Everything the request handlers share.
pub struct CallControl {
    /// rsipstack's dialogs of this agent.
    pub dialogs: Arc<DialogLayer>,
    /// Token checks.
    pub trust: Arc<Trust>,
    /// The live calls.
    pub calls: Calls,
    /// Our SIP contact (`sip:talker@ip:port`).
    pub contact: Uri,
    /// The local IP for SDP.
    pub local_ip: IpAddr,
    /// Ordinary-call policy.
    pub policy: AnswerPolicy,
    /// Places referred calls with the device's own accounts.
    pub dialer: Arc<Dialer>,
    /// Cancelled at shutdown: every control leg hangs up its referred calls and
    /// ends with BYE, concurrently, each bounded by [`SHUTDOWN_BYE_LIMIT`].
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl CallControl {
    /// Handles one incoming transaction to its end.
    pub async fn dispatch(self: Arc<Self>, mut tx: Transaction) {
        let method = tx.original.method;
        let to = headers::first(&tx.original.headers, "To").unwrap_or_default();
        if has_tag(to) {
            match self.dialogs.match_dialog(&tx) {
                Some(mut dialog) => {
                    if !matches!(method, Method::Ack | Method::Bye | Method::Cancel)
                        && !ack_arrived(&dialog).await
                    {
                        let retry = Header::Other("Retry-After".into(), "1".into());
                        reply_with(&mut tx, 500, "ACK Not Yet Received", vec![retry]).await;
                        return;
                    }
                    if let Err(e) = dialog.handle(&mut tx).await {
                        debug!(%method, error = %e, "in-dialog request failed");
                    }
                }
                // A REFER is only ever obeyed inside a control dialog.
                None if method == Method::Refer => {
                    reply(&mut tx, 403, "Not A Control Dialog").await;
                }
                None => reply(&mut tx, 481, "Call/Transaction Does Not Exist").await,
            }
            return;
        }
        match method {
            Method::Invite if headers::count(&tx.original.headers, call_token::HEADER) > 0 => {
                self.control_leg(tx).await;
            }
            Method::Invite => self.ordinary_call(tx).await,
            Method::Refer => reply(&mut tx, 403, "Not A Control Dialog").await,
            Method::Options => {
                let _ = tx.reply(StatusCode::OK).await;
            }
            _ => reply(&mut tx, 481, "Call/Transaction Does Not Exist").await,
        }
    }

    /// A control INVITE: checked token → auto-answer with an inactive SDP answer
    /// (this leg never carries media), then serve the dialog until it ends.
    async fn control_leg(self: Arc<Self>, mut tx: Transaction) {
        let call_id = headers::first(&tx.original.headers, "Call-ID")
            .unwrap_or_default()
            .to_owned();
        let token = headers::first(&tx.original.headers, call_token::HEADER);
        if let Err(e) = self.trust.check(token, Action::Control, &call_id, None) {
            warn!(%call_id, error = %e, "control INVITE refused");
            // 403, never a 6xx: another device of this account may be the one meant.
            reply(&mut tx, 403, "Invalid Call Token").await;
            return;
        }
        // Dial on answer: the party to call named in the INVITE itself, with its own `refer`
        // token, checked like a REFER's. Calling it at once saves the REFER's round trips.
        let dial_on_answer = match headers::first(&tx.original.headers, call_token::DIAL_HEADER) {
            None => None,
            Some(target) => {
                let token = headers::first(&tx.original.headers, call_token::DIAL_TOKEN_HEADER);
                if let Err(e) = self
                    .trust
                    .check(token, Action::Refer, &call_id, Some(target))
                {
                    warn!(%call_id, error = %e, "control INVITE refused: the party to dial");
                    reply(&mut tx, 403, "Invalid Call Token").await;
                    return;
                }
                Some(target.to_owned())
            }
        };
        let invite_cseq = headers::cseq_number(&tx.original.headers).unwrap_or(0);
        // RFC 4028: the controller refreshes, we only watch the deadline.
        let mut session = match session_timer::uas_terms(
            &tx.original.headers,
            session_timer::MIN_SECS,
        ) {
            UasTerms::NoTimer => None,
            UasTerms::Run(agreed) => Some(ControlSession::start(agreed)),
            UasTerms::TooSmall(min) => {
                info!(%call_id, min_se = min.secs, "control INVITE asks for too short a session interval");
                let min_se = vec![make(session_timer::MIN_SE_HEADER, min.to_string())];
                reply_with(
                    &mut tx,
                    session_timer::TOO_SMALL,
                    session_timer::TOO_SMALL_REASON,
                    min_se,
                )
                .await;
                return;
            }
            UasTerms::Malformed(e) => {
                warn!(%call_id, error = %e, "control INVITE refused");
                reply(&mut tx, 400, "Bad Session-Expires").await;
                return;
            }
        };
        // A small, pure-Rust SDP answer: cheaper here than a hop to the blocking pool.
        let answer = match inactive_answer(&tx.original.body, self.local_ip) {
            Ok(answer) => answer,
            Err(status) => {
                reply(&mut tx, status, "Not Acceptable Here").await;
                return;
            }
        };
        let (state_tx, mut states) = self.dialogs.new_dialog_state_channel();
        let dialog = match self.dialogs.get_or_create_server_invite(
            &tx,
            state_tx,
            None,
            Some(self.contact.clone()),
        ) {
            Ok(dialog) => dialog,
            Err(e) => {
                warn!(error = %e, "cannot create the control dialog");
                reply(&mut tx, 500, "Server Internal Error").await;
                return;
            }
        };
        let id = dialog.id();
        let mut answer_headers = control_headers();
        answer_headers.extend(session.iter().flat_map(ControlSession::answer_headers));
        if let Some(target) = &dial_on_answer {
            answer_headers.push(make(call_token::DIAL_HEADER, target.clone()));
        }
        if let Err(e) = dialog.accept(Some(answer_headers), Some(answer.into_bytes())) {
            warn!(error = %e, "cannot answer the control INVITE");
            self.dialogs.remove_dialog(&id);
            return;
        }
        info!(%call_id, session_expires = ?session.as_ref().map(|s| s.secs), "control leg answered");
        let peer = headers::first(&tx.original.headers, "From")
            .unwrap_or_default()
            .to_owned();
        let entry = self.calls.add(
            CallKind::Control,
            CallState::Connected,
            &call_id,
            &peer,
            None,
        );
        let leg = Dialog::Invite(dialog.clone());
        let mut invite_dialog = leg.clone();
        tokio::spawn(async move {
            let _ = invite_dialog.handle(&mut tx).await;
        });

        let (progress_tx, mut progress) = mpsc::unbounded_channel::<Progress>();
        let hub = crate::media::hub::MediaHub::new(self.dialer.media.clone());
        let mut calls: Vec<referred_call::Handle> = Vec::new();
        let mut first_refer: Option<u32> = None;
        if let Some(target) = &dial_on_answer {
            // Reported like a first REFER (NOTIFYs without `id`), so every later REFER's
            // NOTIFYs carry their own id.
            first_refer = Some(invite_cseq);
            info!(%call_id, refer_to = %target, "dialling the party named in the control INVITE");
            calls.push(
                self.dialer
                    .clone()
                    .call(target, None, progress_tx.clone(), hub.clone()),
            );
        }
        let end = loop {
            let expiry = sleep_until_or_never(session.as_ref().map(|s| s.deadline));
            tokio::select! {
                state = states.recv() => {
                    let Some(state) = state else { break LegEnd::HangUp };
                    match state {
                        DialogState::Refer(_, request, handle) => {
                            let refer_to = headers::first(&request.headers, "Refer-To").unwrap_or_default().to_owned();
                            let token = headers::first(&request.headers, call_token::HEADER);
                            let cseq = headers::cseq_number(&request.headers).unwrap_or(0);
                            match self.trust.check(token, Action::Refer, &call_id, Some(&refer_to)) {
                                Err(e) => {
                                    warn!(%call_id, error = %e, "REFER refused");
                                    let _ = handle.respond(StatusCode::Forbidden, None, None).await;
                                }
                                Ok(_) => {
                                    let _ = handle.respond(StatusCode::Other(202, "Accepted".into()), None, None).await;
                                    let first = *first_refer.get_or_insert(cseq);
                                    // RFC 3515 §2.4.6: NOTIFYs of a second REFER carry its id.
                                    let event_id = (cseq != first).then_some(cseq);
                                    info!(%call_id, %refer_to, "dialling the referred party");
                                    calls.push(self.dialer.clone().call(&refer_to, event_id, progress_tx.clone(), hub.clone()));
                                }
                            }
                        }
                        DialogState::Updated(_, request, handle) => {
                            // A re-INVITE or UPDATE on the control leg is a session
                            // refresh (RFC 4028): the deadline starts again, with
                            // the interval it names (a refresh naming none keeps
                            // the one in force).
                            let mut headers = Vec::new();
                            match session_timer::uas_terms(&request.headers, session_timer::MIN_SECS) {
                                UasTerms::TooSmall(min) => {
                                    let min_se = vec![make(session_timer::MIN_SE_HEADER, min.to_string())];
                                    let _ = handle.respond(StatusCode::Other(session_timer::TOO_SMALL, session_timer::TOO_SMALL_REASON.into()), Some(min_se), None).await;
                                    continue;
                                }
                                UasTerms::Malformed(e) => {
                                    debug!(%call_id, error = %e, "refresh refused");
                                    let _ = handle.respond(StatusCode::BadRequest, None, None).await;
                                    continue;
                                }
                                UasTerms::Run(agreed) => session = Some(ControlSession::start(agreed)),
                                UasTerms::NoTimer => {
                                    if let Some(current) = session.as_mut() {
                                        current.deadline = Instant::now() + session_timer::expires_after(current.secs);
                                    }
                                }
                            }
                            if let Some(current) = &session {
                                info!(%call_id, method = %request.method, secs = current.secs, "control leg refreshed");
                                headers.extend(current.answer_headers());
                            }
                            // Answered inactive whatever it offers.
                            let body = if request.method == Method::Invite && !request.body.is_empty() {
                                inactive_answer(&request.body, self.local_ip).ok()
                            } else {
                                None
                            };
                            if body.is_some() {
                                headers.extend(control_headers());
                            }
                            let headers = (!headers.is_empty()).then_some(headers);
                            let _ = handle.respond(StatusCode::OK, headers, body.map(String::into_bytes)).await;
                        }
                        DialogState::Notify(_, _, handle)
                        | DialogState::Options(_, _, handle)
                        | DialogState::Info(_, _, handle) => {
                            let _ = handle.reply(StatusCode::OK).await;
                        }
                        DialogState::Message(_, _, handle) | DialogState::Publish(_, _, handle) => {
                            let _ = handle.reply(StatusCode::MethodNotAllowed).await;
                        }
                        DialogState::Terminated(_, reason) => {
                            info!(%call_id, ?reason, "control leg ended");
                            break LegEnd::HangUp;
                        }
                        _ => {}
                    }
                }
                () = self.shutdown.cancelled() => {
                    info!(%call_id, "shutting down: ending the referred calls and the control leg");
                    // The referred calls first, and all BYEs at once: a controller
                    // that never answers (the matcher is gone) must not keep the
                    // referred party's call up, nor hold shutdown past the bound.
                    for call in &calls {
                        call.hang_up();
                    }
                    let control_bye = async {
                        if tokio::time::timeout(SHUTDOWN_BYE_LIMIT, dialog.bye()).await.is_err() {
                            warn!(%call_id, "no answer to the control leg's BYE; going on");
                        }
                    };
                    let referred_ended = tokio::time::timeout(SHUTDOWN_BYE_LIMIT, async {
                        while !calls.iter().all(referred_call::Handle::is_finished) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    });
                    let ((), referred) = tokio::join!(control_bye, referred_ended);
                    if referred.is_err() {
                        warn!(%call_id, "a referred call did not end in time; going on");
                    }
                    break LegEnd::HangUp;
                }
                () = expiry => {
                    warn!(%call_id, "session timer expired: no refresh from the controller; ending the control leg, the referred calls go on");
                    break LegEnd::Expired;
                }
                report = progress.recv() => {
                    let Some(report) = report else { continue };
                    let frag = splitdial_sip::sipfrag::build(report.status);
                    let sub = if report.status >= 200 {
                        splitdial_sip::subscription::SubscriptionState::terminated(
                            Some(splitdial_sip::subscription::Reason::Noresource),
                        )
                    } else {
                        splitdial_sip::subscription::SubscriptionState::active(Some(60))
                    };
                    let notify_headers = vec![
                        make("Event", splitdial_sip::event::Event::refer(report.event_id).to_string()),
                        make("Subscription-State", sub.to_string()),
                        make("Content-Type", "message/sipfrag;version=2.0".into()),
                    ];
                    // A call dialled on answer can report before the controller's ACK of our
                    // 200 is in: hold the NOTIFY until then (bounded), so the leg is confirmed
                    // on both sides before either sends a request in it.
                    if !ack_arrived(&leg).await {
                        debug!(%call_id, "no ACK for the control leg yet; sending the NOTIFY anyway");
                    }
                    if let Err(e) = dialog.notify(Some(notify_headers), Some(frag.into_bytes())).await {
                        debug!(error = %e, "NOTIFY failed");
                    }
                    if report.ended_after_answer && calls.iter().all(referred_call::Handle::is_finished) {
                        // The last referred party hung up: end the control leg.
                        let _ = dialog.bye().await;
                    }
                }
            }
        };
        match end {
            LegEnd::HangUp => {
                for call in &calls {
                    call.hang_up();
                }
                self.dialogs.remove_dialog(&id);
            }
            LegEnd::Expired => {
                // The leg is over for us at once; its BYE goes on its own (the
                // controller is probably gone and may never answer).
                drop(entry);
                let (dialogs, bye_call_id) = (self.dialogs.clone(), call_id.clone());
                tokio::spawn(async move {
                    if tokio::time::timeout(EXPIRY_BYE_LIMIT, dialog.bye())
                        .await
                        .is_err()
                    {
                        warn!(call_id = %bye_call_id, "no answer to the expired control leg's BYE");
                    }
                    dialogs.remove_dialog(&id);
                });
                drop(progress_tx);
                self.detached(&call_id, &calls, progress).await;
            }
        }
    }

    /// The referred calls of a control leg whose session expired: detached,
    /// they go on (media and all) until their peer hangs up or the agent shuts
    /// down. Returns when every one has ended.
    async fn detached(
        &self,
        call_id: &str,
        calls: &[referred_call::Handle],
        mut progress: mpsc::UnboundedReceiver<Progress>,
    ) {
        let live = calls.iter().filter(|c| !c.is_finished()).count();
        info!(%call_id, live, "referred calls detached from the expired control leg");
        loop {
            tokio::select! {
                // Each call's task holds a sender: all gone means all ended.
                report = progress.recv() => match report {
                    Some(report) => debug!(%call_id, status = report.status, "detached referred call progress"),
                    None => break,
                },
                () = self.shutdown.cancelled() => {
                    info!(%call_id, "shutting down: ending the detached referred calls");
                    for call in calls {
                        call.hang_up();
                    }
                    let ended = tokio::time::timeout(SHUTDOWN_BYE_LIMIT, async {
                        while !calls.iter().all(referred_call::Handle::is_finished) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    });
                    if ended.await.is_err() {
                        warn!(%call_id, "a detached referred call did not end in time; going on");
                    }
                    break;
                }
            }
        }
        info!(%call_id, "detached referred calls over");
    }

    /// An INVITE without a token: an ordinary call under the answer policy. It is
    /// never auto-answered as a control leg: `auto` answers only a caller on the
    /// allow-list as asserted (P-Asserted-Identity) by one of our own servers,
    /// and `manual` rings until the owner answers through the status API.
    async fn ordinary_call(self: Arc<Self>, mut tx: Transaction) {
        if self.policy.policy == Policy::Reject {
            // 486 rather than 603: another device of the account may answer.
            reply(&mut tx, 486, "Busy Here").await;
            return;
        }
        let auto = self.policy.policy == Policy::Auto && self.caller_allowed(&tx);
        let call_id = headers::first(&tx.original.headers, "Call-ID")
            .unwrap_or_default()
            .to_owned();
        let peer = headers::first(&tx.original.headers, "From")
            .unwrap_or_default()
            .to_owned();
        let offer = tx.original.body.clone();
        let (state_tx, mut states) = self.dialogs.new_dialog_state_channel();
        let dialog = match self.dialogs.get_or_create_server_invite(
            &tx,
            state_tx,
            None,
            Some(self.contact.clone()),
        ) {
            Ok(dialog) => dialog,
            Err(e) => {
                warn!(error = %e, "cannot create the dialog of an incoming call");
                reply(&mut tx, 500, "Server Internal Error").await;
                return;
            }
        };
        let id = dialog.id();
        let (actions_tx, mut actions) = mpsc::unbounded_channel();
        let entry = Arc::new(self.calls.add(
            CallKind::Incoming,
            CallState::Ringing,
            &call_id,
            &peer,
            Some(actions_tx),
        ));
        let _ = dialog.ringing(None, None);
        info!(%call_id, %peer, auto, "incoming call ringing");
        let mut invite_dialog = Dialog::Invite(dialog.clone());
        tokio::spawn(async move {
            let _ = invite_dialog.handle(&mut tx).await;
        });
        let after = Duration::from_secs(u64::from(self.policy.after_seconds));
        let auto_answer = async {
            if auto {
                tokio::time::sleep(after).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::pin!(auto_answer);
        let ring_limit = tokio::time::sleep(RING_LIMIT);
        tokio::pin!(ring_limit);
        let answer = loop {
            tokio::select! {
                () = &mut auto_answer => break true,
                action = actions.recv() => match action {
                    Some(OwnerAction::Answer) => break true,
                    Some(OwnerAction::Decline | OwnerAction::Hangup) | None => {
                        let _ = dialog.reject(Some(StatusCode::Decline), None);
                        break false;
                    }
                },
                state = states.recv() => {
                    if matches!(state, Some(DialogState::Terminated(..)) | None) {
                        info!(%call_id, "caller gave up");
                        break false;
                    }
                }
                () = &mut ring_limit => {
                    let _ = dialog.reject(Some(StatusCode::TemporarilyUnavailable), None);
                    break false;
                }
            }
        };
        if answer {
            self.answer_and_serve(&dialog, &offer, &entry, &mut states, &mut actions)
                .await;
        }
        self.dialogs.remove_dialog(&id);
    }

    /// Answers a ringing call with our media and serves it until either side
    /// hangs up.
    async fn answer_and_serve(
        &self,
        dialog: &rsipstack::dialog::invite_dialog::InviteDialog,
        offer: &[u8],
        entry: &Arc<crate::calls::CallEntry>,
        states: &mut rsipstack::dialog::dialog::DialogStateReceiver,
        actions: &mut mpsc::UnboundedReceiver<OwnerAction>,
    ) {
        // GStreamer starts in the worker while the answer goes out.
        let _warm = crate::media::worker::MediaWorker::shared().warm_up().await;
        let settings = self.dialer.media.clone();
        let offer = String::from_utf8_lossy(offer).into_owned();
        let negotiated = tokio::task::spawn_blocking(move || {
            let ports = media::AllocatedPorts::reserve(settings.local_ip, settings.video_capable())
                .map_err(|e| (500u16, e.to_string()))?;
            let (answer, plan) = media::answer(&offer, &settings, &ports)
                .map_err(|e| (e.sip_status(), e.to_string()))?;
            Ok::<_, (u16, String)>((answer, plan, ports))
        })
        .await
        .unwrap_or_else(|e| Err((500, e.to_string())));
        let (answer, plan, ports) = match negotiated {
            Ok(n) => n,
            Err((status, why)) => {
                warn!(%why, "cannot answer the offer");
                let _ = dialog.reject(Some(StatusCode::from(status)), None);
                return;
            }
        };
        if let Err(e) = dialog.accept(Some(control_headers()), Some(answer.into_bytes())) {
            warn!(error = %e, "cannot answer");
            return;
        }
        entry.set_state(CallState::Connected);
        let leg =
            match crate::media::hub::start(&plan, &self.dialer.media, ports, entry.clone()).await {
                Ok(leg) => Some(leg),
                Err(e) => {
                    warn!(error = %e, "no media; hanging up");
                    let _ = dialog.hangup().await;
                    None
                }
            };
        if leg.is_some() {
            loop {
                tokio::select! {
                    state = states.recv() => {
                        if matches!(state, Some(DialogState::Terminated(..)) | None) {
                            break;
                        }
                    }
                    action = actions.recv() => {
                        if matches!(action, Some(OwnerAction::Hangup) | None) {
                            let _ = dialog.hangup().await;
                            break;
                        }
                    }
                }
            }
        }
        if let Some(leg) = leg {
            crate::media::hub::stop(leg).await;
        }
        info!("incoming call ended");
    }

    /// Whether the caller is on the allow-list, as asserted by one of our own
    /// servers (the request must come from an account's proxy address).
    fn caller_allowed(&self, tx: &Transaction) -> bool {
        let from_our_server = tx.connection.as_ref().is_some_and(|c| {
            c.get_remote_addr()
                .and_then(|a| a.get_socketaddr().ok())
                .is_some_and(|source| {
                    let proxies = self.dialer.accounts.iter().map(|a| a.proxy);
                    sent_by_a_proxy(c.transport(), source, proxies)
                })
        });
        let asserted = headers::first(&tx.original.headers, "P-Asserted-Identity")
            .and_then(|v| splitdial_sip::uri_match::SipUri::parse(v).ok());
        let Some(asserted) = asserted.filter(|_| from_our_server) else {
            debug!(
                from_our_server,
                asserted = headers::first(&tx.original.headers, "P-Asserted-Identity"),
                "caller not asserted by one of our servers: no auto-answer"
            );
            return false;
        };
        let allowed = self.policy.allow.iter().any(|allowed| {
            splitdial_sip::uri_match::SipUri::parse(allowed).is_ok_and(|a| a.equivalent(&asserted))
        });
        if !allowed {
            debug!(asserted = ?asserted, "caller not on the allow-list: no auto-answer");
        }
        allowed
    }
}

/// Whether a request arriving from `source` over `transport` was sent by one
/// of `proxies`. Over UDP a server sends from its listening address; over TCP
/// it may open a new connection from an ephemeral port (RFC 3261 §18.1.1: a
/// request too big for UDP goes over TCP even toward a UDP contact), so only
/// the host must match.
fn sent_by_a_proxy(
    transport: rsipstack::sip::Transport,
    source: std::net::SocketAddr,
    mut proxies: impl Iterator<Item = std::net::SocketAddr>,
) -> bool {
    match transport {
        rsipstack::sip::Transport::Udp => proxies.any(|proxy| proxy == source),
        _ => proxies.any(|proxy| proxy.ip() == source.ip()),
    }
}

fn make(name: &str, value: String) -> Header {
    rsipstack::sip::headers::make_header(name, value)
}

fn control_headers() -> Vec<Header> {
    vec![
        make("Allow", CONTROL_ALLOW.into()),
        make("Content-Type", "application/sdp".into()),
    ]
}

/// The inactive answer to an offer (or an inactive offer in the 200 when the
/// INVITE had none); a status code when the offer cannot be answered.
fn inactive_answer(body: &[u8], local_ip: IpAddr) -> Result<String, u16> {
    if body.is_empty() {
        return media::inactive_offer(local_ip).map_err(|_| 500);
    }
    let offer = std::str::from_utf8(body).map_err(|_| 400u16)?;
    media::inactive_answer(offer, local_ip).map_err(|e| e.sip_status())
}

/// Sleeps until `at`, or forever when there is no `at`.
async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Waits (bounded by [`ACK_WAIT_LIMIT`]) until the dialog no longer waits for
/// the ACK of our 2xx; `false` if it still does.
async fn ack_arrived(dialog: &Dialog) -> bool {
    let deadline = Instant::now() + ACK_WAIT_LIMIT;
    while dialog.state().waiting_ack() {
        if Instant::now() >= deadline {
            return false;
        }
        // The ACK is normally a fraction of a millisecond behind our 200, and whatever
        // waits here (a NOTIFY of a call dialled on answer, a REFER that overtook the
        // ACK) is on the path the person at the dialer is watching: poll finely.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    true
}

async fn reply(tx: &mut Transaction, status: u16, reason: &str) {
    reply_with(tx, status, reason, Vec::new()).await;
}

async fn reply_with(tx: &mut Transaction, status: u16, reason: &str, headers: Vec<Header>) {
    let response = splitdial_sip::wire::response_to(&tx.original, status, reason, headers);
    if let Err(e) = tx.respond(response).await {
        debug!(error = %e, "could not answer");
    }
}

#[cfg(test)]
mod tests {
    use super::sent_by_a_proxy;
    use rsipstack::sip::Transport;
    use std::net::SocketAddr;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn udp_must_come_from_the_proxy_address_and_tcp_from_its_host() {
        let proxies = || [addr("10.0.0.1:5060"), addr("10.0.0.2:5061")].into_iter();
        assert!(sent_by_a_proxy(
            Transport::Udp,
            addr("10.0.0.1:5060"),
            proxies()
        ));
        assert!(!sent_by_a_proxy(
            Transport::Udp,
            addr("10.0.0.1:40000"),
            proxies()
        ));
        assert!(sent_by_a_proxy(
            Transport::Tcp,
            addr("10.0.0.2:40000"),
            proxies()
        ));
        assert!(!sent_by_a_proxy(
            Transport::Tcp,
            addr("10.0.0.9:5060"),
            proxies()
        ));
        assert!(!sent_by_a_proxy(
            Transport::Udp,
            addr("10.0.0.9:5060"),
            proxies()
        ));
    }
}
