//! The control leg as an actor. [`answer_and_run`] admits a control INVITE, answers it
//! with inactive SDP and hands the dialog to a [`ControlLeg`]: one task owns the dialog
//! and everything about it — its session timer, its SDP session, its referred calls (a
//! `JoinSet`) and their NOTIFY subscriptions — and its loop takes one event at a time,
//! each to one handler:
//!
//! | event | handler |
//! |---|---|
//! | REFER | [`ControlLeg::on_refer`]: its token checked → 202 and a referred call, else 403 |
//! | NOTIFY | 200 |
//! | re-INVITE, UPDATE, OPTIONS, INFO, MESSAGE | [`crate::in_dialog`]: the session timer restarts, any offer answered inactive |
//! | the dialog ended (BYE) | the leg ends and hangs up its referred calls |
//! | the ACK of our 200 (a dialog state), or [`ACK_WAIT_LIMIT`] without it | the referred calls' reports go out from now on |
//! | a referred call's progress | [`ControlLeg::on_progress`]: NOTIFY |
//! | a referred call's end | [`ControlLeg::on_referred_end`]: the final NOTIFY; BYE when the last connected party left |
//! | the session timer expired ([`InDialog::wake`]) | the leg ends alone: BYE, its referred calls go on, detached |
//! | shutdown | [`ControlLeg::on_shutdown`]: the referred calls hung up and BYE at once, bounded |
//!
//! A call dialled on answer can report before the controller's ACK of our 200 is in. Its
//! reports (and its end) wait in their channels until the ACK arrives, so the leg is
//! confirmed on both sides before either sends a request in it; the loop takes them once
//! the ACK is in, or once [`ACK_WAIT_LIMIT`] passed without it.

use super::ack::ACK_WAIT_LIMIT;
use super::admission::{self, Admission};
use super::refer_notify::{self, ReferSubscriptions};
use super::{CallControl, SHUTDOWN_BYE_LIMIT, reply};
use crate::calls::CallEntry;
use crate::in_dialog::offer::{self, Answering};
use crate::in_dialog::refresh::SessionTimer;
use crate::in_dialog::{self, CallMedia, InDialog, Served, Wake};
use crate::media::hub::MediaHub;
use crate::referred_call::{Outcome, Progress};
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, TransactionHandle};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Request, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use splitdial_api::{TalkerCallKind, TalkerCallState};
use splitdial_sip::call_token;
use splitdial_sip::headers;
use splitdial_sip::sdp::SdpSession;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// When the control leg's session expires, how long its BYE may wait for an
/// answer (the controller is probably gone: nobody may answer at all).
const EXPIRY_BYE_LIMIT: Duration = Duration::from_secs(4);

/// How a referred call's task ended: its outcome, and the subscription that reports it.
struct ReferredEnd {
    event_id: Option<u32>,
    outcome: Outcome,
}

/// What the leg's loop waits for.
enum Event {
    /// An in-dialog request, or the dialog's end (`None`: the stack dropped it). Boxed:
    /// a dialog state is ten times the size of any other event.
    Dialog(Option<Box<DialogState>>),
    /// A referred call's progress while it is under way.
    Progress(Progress),
    /// A referred call's task ended.
    ReferredEnded(Result<ReferredEnd, JoinError>),
    /// The ACK of our 200 did not come within [`ACK_WAIT_LIMIT`].
    AckOverdue,
    /// The session timer's moment (RFC 4028).
    Timer(Wake),
    /// The agent shuts down.
    Shutdown,
}

/// How a control leg ends.
enum LegEnd {
    /// The controller hung up, the leg ended, or the agent shuts down: the
    /// referred calls end with it.
    HangUp,
    /// No session refresh came in time (RFC 4028): the leg ends, the referred
    /// calls go on.
    Expired,
}

/// One answered control leg and everything it owns.
pub(super) struct ControlLeg {
    control: Arc<CallControl>,
    call_id: String,
    dialog: InviteDialog,
    /// Our SDP and session timer in this dialog, and the requests in it that every
    /// call serves alike.
    in_dialog: InDialog,
    states: DialogStateReceiver,
    /// Until the ACK of our 200 is in: when to stop waiting for it. The referred calls'
    /// reports wait meanwhile.
    awaiting_ack: Option<Instant>,
    /// The referred calls under way; each task's end is an event.
    referred: JoinSet<ReferredEnd>,
    /// Cancelled to hang up every referred call (each holds a child token).
    hang_up_referred: CancellationToken,
    progress: mpsc::UnboundedReceiver<Progress>,
    progress_tx: mpsc::UnboundedSender<Progress>,
    subscriptions: ReferSubscriptions,
    /// The referred calls' media, mixed once there are two parties.
    hub: Arc<MediaHub>,
    /// The leg in the agent's call list (status API) while it lives.
    entry: CallEntry,
}

/// A control INVITE: checked (see [`admission`]), auto-answered with an inactive SDP
/// answer (this leg never carries media), then served until it ends.
pub(super) async fn answer_and_run(control: Arc<CallControl>, mut tx: Transaction) {
    let admission = match admission::control_invite(&control.trust, &tx.original) {
        Ok(admission) => admission,
        Err(refusal) => {
            refusal.send(&mut tx).await;
            return;
        }
    };
    let dial_on_answer = admission.dial_on_answer.clone();
    let invite_cseq = admission.invite_cseq;
    let Some(mut leg) = ControlLeg::answer(control, tx, admission).await else {
        return;
    };
    if let Some(target) = dial_on_answer {
        // Reported like a first REFER (NOTIFYs without `id`), so every later REFER's
        // NOTIFYs carry their own id.
        let event_id = leg.subscriptions.event_id(invite_cseq);
        info!(call_id = %leg.call_id, refer_to = %target, "dialling the party named in the control INVITE");
        leg.dial(target, event_id);
    }
    leg.run().await;
}

impl ControlLeg {
    /// Answers an admitted control INVITE (200, inactive SDP) and registers the leg;
    /// `None` when it could not be answered (the INVITE got its error response).
    async fn answer(
        control: Arc<CallControl>,
        mut tx: Transaction,
        admission: Admission,
    ) -> Option<Self> {
        let Admission { call_id, timer, .. } = admission;
        let timer = timer.map(|agreed| SessionTimer::agreed_as_uas(agreed, &tx.original.headers));
        // A small, pure-Rust SDP answer: cheaper here than a hop to the blocking pool.
        let mut sdp = SdpSession::new(control.local_ip);
        let answer = if tx.original.body.is_empty() {
            offer::our_offer(&mut sdp, &Answering::Inactive)
        } else {
            match offer::answer(&mut sdp, &Answering::Inactive, &tx.original.body) {
                Ok(answered) => answered.sdp,
                Err(refused) => {
                    reply(&mut tx, refused.status, "Not Acceptable Here").await;
                    return None;
                }
            }
        };
        let (dialog, states) = super::server_dialog(&control, &mut tx, "control leg").await?;
        let mut answer_headers = in_dialog::invite_answer_headers();
        answer_headers.extend(timer.iter().flat_map(SessionTimer::answer_headers));
        if let Some(target) = &admission.dial_on_answer {
            answer_headers.push(super::make(call_token::DIAL_HEADER, target.clone()));
        }
        if let Err(e) = dialog.accept(Some(answer_headers), Some(answer.into_bytes())) {
            warn!(error = %e, "cannot answer the control INVITE");
            control.dialogs.remove_dialog(&dialog.id());
            return None;
        }
        info!(%call_id, session_expires = ?timer.as_ref().map(SessionTimer::secs), "control leg answered");
        let peer = headers::first(&tx.original.headers, "From").unwrap_or_default();
        let entry = control.calls.add(
            TalkerCallKind::Control,
            TalkerCallState::Connected,
            &call_id,
            peer,
            None,
        );
        // The INVITE's server transaction lives on (retransmitted 200s until the ACK).
        control.acks.serve_invite(&dialog, tx);
        let (progress_tx, progress) = mpsc::unbounded_channel();
        let hub = MediaHub::new(control.dialer.media.clone());
        let in_dialog = InDialog::new(&call_id, Answering::Inactive, sdp, false).with_timer(timer);
        Some(Self {
            control,
            call_id,
            dialog,
            in_dialog,
            states,
            awaiting_ack: Some(Instant::now() + ACK_WAIT_LIMIT),
            referred: JoinSet::new(),
            hang_up_referred: CancellationToken::new(),
            progress,
            progress_tx,
            subscriptions: ReferSubscriptions::default(),
            hub,
            entry,
        })
    }

    /// Serves the leg until it ends, one event at a time.
    async fn run(mut self) {
        let end = loop {
            let event = self.next_event().await;
            if let Some(end) = self.on_event(event).await {
                break end;
            }
        };
        match end {
            LegEnd::HangUp => self.hang_up(),
            LegEnd::Expired => self.expire().await,
        }
    }

    async fn next_event(&mut self) -> Event {
        let ack_overdue = in_dialog::sleep_until_or_never(self.awaiting_ack);
        let acked = self.awaiting_ack.is_none();
        tokio::select! {
            state = self.states.recv() => Event::Dialog(state.map(Box::new)),
            () = ack_overdue => Event::AckOverdue,
            Some(ended) = self.referred.join_next(), if acked => Event::ReferredEnded(ended),
            // The leg holds a sender itself: the channel never closes while it runs.
            Some(report) = self.progress.recv(), if acked => Event::Progress(report),
            wake = self.in_dialog.wake() => Event::Timer(wake),
            () = self.control.shutdown.cancelled() => Event::Shutdown,
        }
    }

    /// Hands an event to its handler; `Some` when the leg ends.
    async fn on_event(&mut self, event: Event) -> Option<LegEnd> {
        match event {
            Event::Dialog(None) => return Some(LegEnd::HangUp),
            Event::Dialog(Some(state)) => return self.on_dialog_state(*state).await,
            Event::AckOverdue => {
                debug!(call_id = %self.call_id, "no ACK for the control leg yet; reporting anyway");
                self.awaiting_ack = None;
            }
            Event::Progress(report) => self.on_progress(report).await,
            Event::ReferredEnded(ended) => self.on_referred_end(ended).await,
            Event::Timer(wake) => {
                if self
                    .in_dialog
                    .on_wake(wake, &self.dialog, CallMedia::None)
                    .await
                    != Served::Going
                {
                    warn!(call_id = %self.call_id, "session timer expired: no refresh from the controller; ending the control leg, the referred calls go on");
                    return Some(LegEnd::Expired);
                }
            }
            Event::Shutdown => {
                self.on_shutdown().await;
                return Some(LegEnd::HangUp);
            }
        }
        None
    }

    /// A request from the controller in the dialog, or the dialog's end: REFER and
    /// NOTIFY here, everything else on the path every call shares.
    async fn on_dialog_state(&mut self, state: DialogState) -> Option<LegEnd> {
        match state {
            DialogState::Refer(_, request, handle) => self.on_refer(&request, &handle).await,
            DialogState::Notify(_, _, handle) => {
                let _ = handle.reply(StatusCode::OK).await;
            }
            state => {
                // The ACK of our 200 (and, later, the dialog back at rest after a request).
                if matches!(state, DialogState::Confirmed(..)) {
                    self.awaiting_ack = None;
                }
                let served = self
                    .in_dialog
                    .on_request(state, &self.dialog, CallMedia::None)
                    .await;
                if served != Served::Going {
                    info!(call_id = %self.call_id, "control leg ended");
                    return Some(LegEnd::HangUp);
                }
            }
        }
        None
    }

    /// A REFER: with a valid token for its target, 202 and a call to that target;
    /// otherwise 403.
    async fn on_refer(&mut self, request: &Request, handle: &TransactionHandle) {
        let refer_to = match admission::refer(&self.control.trust, &self.call_id, request) {
            Ok(refer_to) => refer_to,
            Err(e) => {
                warn!(call_id = %self.call_id, error = %e, "REFER refused");
                let _ = handle.respond(StatusCode::Forbidden, None, None).await;
                return;
            }
        };
        let accepted = StatusCode::Other(202, "Accepted".into());
        let _ = handle.respond(accepted, None, None).await;
        // RFC 3515 §2.4.6: NOTIFYs of a second REFER carry its id.
        let cseq = headers::cseq_number(&request.headers).unwrap_or(0);
        let event_id = self.subscriptions.event_id(cseq);
        info!(call_id = %self.call_id, %refer_to, "dialling the referred party");
        self.dial(refer_to, event_id);
    }

    /// A referred call's progress: one NOTIFY.
    async fn on_progress(&self, report: Progress) {
        self.notify(report.status, report.event_id).await;
    }

    /// A referred call ended: its final NOTIFY (the failure, or 200 once more for a party
    /// that connected and then hung up), and BYE on the leg when that party was the last.
    async fn on_referred_end(&mut self, ended: Result<ReferredEnd, JoinError>) {
        // What the call reported before it ended goes out first.
        while let Ok(report) = self.progress.try_recv() {
            self.on_progress(report).await;
        }
        let ended = match ended {
            Ok(ended) => ended,
            Err(e) => {
                warn!(call_id = %self.call_id, error = %e, "a referred call's task failed");
                return;
            }
        };
        let status = match ended.outcome {
            Outcome::Failed(status) => status,
            Outcome::Ended => 200,
        };
        self.notify(status, ended.event_id).await;
        if ended.outcome == Outcome::Ended && self.referred.is_empty() {
            // The last referred party hung up: end the control leg.
            let _ = self.dialog.bye().await;
        }
    }

    /// The agent shuts down: the referred calls first, and all BYEs at once. A
    /// controller that never answers (the matcher is gone) must not keep the referred
    /// party's call up, nor hold shutdown past the bound.
    async fn on_shutdown(&mut self) {
        let call_id = &self.call_id;
        info!(%call_id, "shutting down: ending the referred calls and the control leg");
        self.hang_up_referred.cancel();
        let dialog = &self.dialog;
        let control_bye = async {
            if tokio::time::timeout(SHUTDOWN_BYE_LIMIT, dialog.bye())
                .await
                .is_err()
            {
                warn!(%call_id, "no answer to the control leg's BYE; going on");
            }
        };
        let referred_ended =
            tokio::time::timeout(SHUTDOWN_BYE_LIMIT, all_ended(&mut self.referred));
        let ((), referred) = tokio::join!(control_bye, referred_ended);
        if referred.is_err() {
            warn!(%call_id, "a referred call did not end in time; going on");
        }
    }

    /// Starts a call to `target`, reported on the subscription `event_id`.
    fn dial(&mut self, target: String, event_id: Option<u32>) {
        let dialer = self.control.dialer.clone();
        let progress = self.progress_tx.clone();
        let hub = self.hub.clone();
        let stop = self.hang_up_referred.child_token();
        self.referred.spawn(async move {
            let outcome = dialer.call(target, event_id, progress, hub, stop).await;
            ReferredEnd { event_id, outcome }
        });
    }

    /// Reports `status` to the controller on the subscription `event_id` (only once the
    /// ACK of our 200 is in, or overdue: see [`Self::next_event`]).
    async fn notify(&self, status: u16, event_id: Option<u32>) {
        let (headers, body) = refer_notify::notify(status, event_id);
        if let Err(e) = self.dialog.notify(Some(headers), Some(body)).await {
            debug!(error = %e, "NOTIFY failed");
        }
    }

    /// The leg is over and its referred calls end with it (CANCEL or BYE each, on their
    /// own tasks).
    fn hang_up(mut self) {
        self.hang_up_referred.cancel();
        self.referred.detach_all();
        self.control.dialogs.remove_dialog(&self.dialog.id());
    }

    /// The session expired: the leg is over for us at once and its BYE goes on its own
    /// (the controller is probably gone and may never answer); its referred calls go on,
    /// detached, until their peers hang up or the agent shuts down.
    async fn expire(self) {
        let Self {
            control,
            call_id,
            dialog,
            referred,
            hang_up_referred,
            progress,
            entry,
            ..
        } = self;
        drop(entry);
        let (dialogs, bye_call_id) = (control.dialogs.clone(), call_id.clone());
        tokio::spawn(async move {
            if tokio::time::timeout(EXPIRY_BYE_LIMIT, dialog.bye())
                .await
                .is_err()
            {
                warn!(call_id = %bye_call_id, "no answer to the expired control leg's BYE");
            }
            dialogs.remove_dialog(&dialog.id());
        });
        let detached = Detached {
            call_id,
            referred,
            hang_up: hang_up_referred,
            progress,
        };
        detached.run(&control.shutdown).await;
    }
}

/// The referred calls of a control leg whose session expired: they go on (media and
/// all) until their peers hang up or the agent shuts down.
struct Detached {
    call_id: String,
    referred: JoinSet<ReferredEnd>,
    hang_up: CancellationToken,
    progress: mpsc::UnboundedReceiver<Progress>,
}

impl Detached {
    /// Returns when every detached call has ended.
    async fn run(mut self, shutdown: &CancellationToken) {
        let call_id = &self.call_id;
        info!(%call_id, live = self.referred.len(), "referred calls detached from the expired control leg");
        loop {
            tokio::select! {
                ended = self.referred.join_next() => match ended {
                    Some(_) => debug!(%call_id, "a detached referred call ended"),
                    None => break,
                },
                Some(report) = self.progress.recv() => {
                    debug!(%call_id, status = report.status, "detached referred call progress");
                }
                () = shutdown.cancelled() => {
                    info!(%call_id, "shutting down: ending the detached referred calls");
                    self.hang_up.cancel();
                    let ended = tokio::time::timeout(SHUTDOWN_BYE_LIMIT, all_ended(&mut self.referred));
                    if ended.await.is_err() {
                        warn!(%call_id, "a detached referred call did not end in time; going on");
                    }
                    // Any call still ending finishes on its own task.
                    self.referred.detach_all();
                    break;
                }
            }
        }
        info!(%call_id, "detached referred calls over");
    }
}

/// Waits until every call in `referred` has ended.
async fn all_ended(referred: &mut JoinSet<ReferredEnd>) {
    while referred.join_next().await.is_some() {}
}
