//! The one in-dialog serving path of every call the agent holds: the control leg, a
//! referred call (one party or several, mixed) and an answered ordinary call. Each
//! call's task owns an [`InDialog`] and hands it every in-dialog request rsipstack
//! delivers (a `DialogState` with its `TransactionHandle`), and waits on
//! [`InDialog::wake`] for its session timer and its own refreshes.
//!
//! | request | answer |
//! |---|---|
//! | re-INVITE / UPDATE with an offer | 200 with our answer from the call's `SdpSession` ([`offer`]); 488 (400 for a body that is not SDP) when we cannot take it, the session unchanged |
//! | re-INVITE without an offer | 200 with our offer; the answer in the ACK |
//! | UPDATE without an offer | 200 (a session refresh) |
//! | either, with a `Session-Expires` below 90 s | 422 with `Min-SE: 90` ([`refresh`]) |
//! | either, while our own offer is in flight | 491 |
//! | OPTIONS | 200 with `Allow`, `Accept`, `Supported` ([`options`]) |
//! | INFO | 200 (legacy DTMF, its digit reported; or empty), 469 with `Recv-Info`, 415 with `Accept` ([`info`]) |
//! | REFER / NOTIFY outside a control leg | 403 / 481 |
//! | MESSAGE, and any method not in `Allow` | 405 with `Allow` ([`methods`]) |
//!
//! A new plan goes to the call's media through one call site, [`apply_media_plan`]; the
//! far end's hold and its DTMF digits through another, [`report_call_facts`].

pub mod info;
pub mod methods;
pub mod offer;
pub mod options;
pub mod refresh;

use crate::calls::CallEntry;
use crate::media::hub::{LegMedia, MediaHub};
use offer::Answering;
use refresh::SessionTimer;
use rsipstack::dialog::dialog::{DialogState, TransactionHandle};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Method, Request, Response, StatusCode};
use splitdial_sip::headers;
use splitdial_sip::sdp::{self, Negotiated, SdpSession};
use splitdial_sip::session_timer::{self, MinSe};
use std::sync::Arc;
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// Whose media a call's new plan changes.
#[derive(Clone, Copy)]
pub enum CallMedia<'a> {
    /// The control leg: it never carries media.
    None,
    /// An answered ordinary call's one leg.
    Leg(&'a LegMedia),
    /// A referred party in its control leg's hub, under its call entry's id.
    Party {
        /// The control leg's hub.
        hub: &'a MediaHub,
        /// The party's key in the hub.
        key: u64,
    },
}

/// A fact about a call the status API shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallFact {
    /// The far end's last offer put us on hold (`true`) or took us off it (`false`).
    HeldByPeer(bool),
    /// The far end sent this DTMF digit (INFO).
    Dtmf(char),
}

/// What became of a call after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// The call goes on.
    Going,
    /// The dialog ended (BYE, or the stack dropped it).
    Ended,
    /// The call's task ends it with BYE: its session timer ran out, or our refresh got
    /// 408 or 481 (RFC 4028 §10, RFC 3261 §12.2.1.2).
    HangUp,
}

/// What [`InDialog::wake`] woke for.
pub enum Wake {
    /// No refresh came by the deadline.
    Expired,
    /// Time for our refresh (we are the refresher, or a 491 or 422 asked us to retry).
    RefreshDue,
    /// Our refresh got its answer.
    Refreshed(Result<rsipstack::Result<Option<Response>>, JoinError>),
}

/// A refresh of ours in flight.
struct OurRefresh {
    /// The offer it carries (a re-INVITE), to read the answer against.
    offer: Option<String>,
    task: JoinHandle<rsipstack::Result<Option<Response>>>,
}

/// One call's in-dialog state: its SDP session, its session timer, our refresh in
/// flight, and what its answers are made from.
pub struct InDialog {
    call_id: String,
    answering: Answering,
    sdp: SdpSession,
    timer: Option<SessionTimer>,
    /// Whether the far end takes UPDATE (its `Allow`): then we refresh with it.
    peer_allows_update: bool,
    /// Whether we sent the dialog's first INVITE (RFC 3261 §14.1 glare delays).
    we_own_call_id: bool,
    /// The call in the agent's list, for [`report_call_facts`] (not the control leg).
    entry: Option<Arc<CallEntry>>,
    ours: Option<OurRefresh>,
    /// When to retry a refresh that met 491 or 422.
    retry_at: Option<Instant>,
    /// Our offer in a 2xx to a re-INVITE without one, until the ACK answers it.
    offer_in_2xx: Option<String>,
}

impl InDialog {
    /// The in-dialog state of a call whose first exchange wrote `sdp`, answering with
    /// `answering`; `we_own_call_id` when we sent its first INVITE.
    pub fn new(
        call_id: impl Into<String>,
        answering: Answering,
        sdp: SdpSession,
        we_own_call_id: bool,
    ) -> Self {
        Self {
            call_id: call_id.into(),
            answering,
            sdp,
            timer: None,
            peer_allows_update: false,
            we_own_call_id,
            entry: None,
            ours: None,
            retry_at: None,
            offer_in_2xx: None,
        }
    }

    /// Runs `timer` from now on.
    pub fn with_timer(mut self, timer: Option<SessionTimer>) -> Self {
        self.timer = timer;
        self
    }

    /// Reports the call's facts to `entry`.
    pub fn with_entry(mut self, entry: Arc<CallEntry>) -> Self {
        self.entry = Some(entry);
        self
    }

    /// Learns from a message of the far end (its INVITE or 2xx) whether it takes UPDATE.
    pub fn learn_allow(&mut self, from_peer: &rsipstack::sip::Headers) {
        let allow = headers::list(from_peer, "Allow");
        if !allow.is_empty() {
            self.peer_allows_update = allow.iter().any(|m| m.eq_ignore_ascii_case("UPDATE"));
        }
    }

    /// The session timer in force.
    pub fn timer(&self) -> Option<&SessionTimer> {
        self.timer.as_ref()
    }

    /// A control leg never refreshes (the controller does, DESIGN.md).
    fn may_refresh(&self) -> bool {
        !matches!(self.answering, Answering::Inactive)
    }

    /// Serves one in-dialog request, or notes the dialog's end. The control leg takes
    /// REFER and NOTIFY itself before this.
    pub async fn on_request(
        &mut self,
        state: DialogState,
        dialog: &InviteDialog,
        media: CallMedia<'_>,
    ) -> Served {
        match state {
            DialogState::Updated(_, request, handle) => {
                self.on_offer_or_refresh(&request, &handle, media).await;
            }
            DialogState::Options(_, _, handle) => {
                let _ = handle
                    .respond(StatusCode::OK, Some(options::capabilities()), None)
                    .await;
            }
            DialogState::Info(_, request, handle) => self.on_info(&request, &handle).await,
            DialogState::Refer(_, _, handle) => {
                let refused = StatusCode::Other(403, "Not A Control Dialog".into());
                let _ = handle.respond(refused, None, None).await;
            }
            DialogState::Notify(_, _, handle) => {
                let none = StatusCode::Other(481, "Subscription Does Not Exist".into());
                let _ = handle.respond(none, None, None).await;
            }
            DialogState::Message(_, _, handle) | DialogState::Publish(_, _, handle) => {
                let _ = handle
                    .respond(
                        StatusCode::MethodNotAllowed,
                        Some(vec![methods::allow()]),
                        None,
                    )
                    .await;
            }
            DialogState::Confirmed(..) => self.on_ack(dialog, media).await,
            DialogState::Terminated(_, reason) => {
                info!(call_id = %self.call_id, ?reason, "dialog ended");
                return Served::Ended;
            }
            _ => {}
        }
        Served::Going
    }

    /// A re-INVITE or UPDATE: glare, the session timer, then the offer (if any).
    async fn on_offer_or_refresh(
        &mut self,
        request: &Request,
        handle: &TransactionHandle,
        media: CallMedia<'_>,
    ) {
        let call_id = &self.call_id.clone();
        let invite = request.method == Method::Invite;
        let has_offer = !request.body.is_empty();
        if self.ours.as_ref().is_some_and(|o| o.offer.is_some()) && (invite || has_offer) {
            debug!(%call_id, "their offer crossed ours: 491");
            let _ = handle.reply(StatusCode::RequestPending).await;
            return;
        }
        let terms = match refresh::terms(&request.headers, self.may_refresh()) {
            Ok(terms) => terms,
            Err(refusal) => {
                debug!(%call_id, status = refusal.status, "refresh refused");
                let code = StatusCode::Other(refusal.status, refusal.reason.into());
                let _ = handle.respond(code, Some(refusal.headers), None).await;
                return;
            }
        };
        let mut answered = None;
        let body = match (has_offer, invite) {
            (true, _) => match offer::answer(&mut self.sdp, &self.answering, &request.body) {
                Ok(answer) => {
                    let sdp = answer.sdp.clone();
                    answered = Some(answer);
                    Some(sdp)
                }
                Err(refused) => {
                    info!(%call_id, status = refused.status, why = %refused.why, "offer refused; the call goes on as before");
                    let _ = handle.reply(StatusCode::from(refused.status)).await;
                    return;
                }
            },
            (false, true) => {
                let ours = offer::our_offer(&mut self.sdp, &self.answering);
                self.offer_in_2xx = Some(ours.clone());
                Some(ours)
            }
            (false, false) => None,
        };
        self.learn_allow(&request.headers);
        match (terms, self.timer.as_mut()) {
            (Some(agreed), _) => {
                self.timer = Some(SessionTimer::agreed_as_uas(agreed, &request.headers));
            }
            (None, Some(current)) => current.restart(),
            (None, None) => {}
        }
        let mut answer_headers = Vec::new();
        if let Some(timer) = &self.timer {
            let (method, secs) = (&request.method, timer.secs());
            // The matcher's tests count the control leg's line.
            if self.may_refresh() {
                info!(%call_id, %method, secs, "call session refreshed");
            } else {
                info!(%call_id, %method, secs, "control leg refreshed");
            }
            answer_headers.extend(timer.answer_headers());
        }
        if invite {
            answer_headers.extend([methods::allow(), methods::supported()]);
        }
        if body.is_some() {
            answer_headers.push(methods::header("Content-Type", "application/sdp"));
        }
        let headers = (!answer_headers.is_empty()).then_some(answer_headers);
        let _ = handle
            .respond(StatusCode::OK, headers, body.map(String::into_bytes))
            .await;
        if let Some(answered) = answered {
            if let Some(plan) = &answered.plan {
                apply_media_plan(&self.call_id, media, plan).await;
            }
            if let Some(held) = answered.held_by_peer {
                report_call_facts(
                    &self.call_id,
                    self.entry.as_deref(),
                    CallFact::HeldByPeer(held),
                );
            }
        }
    }

    /// The dialog is at rest again: when it was the ACK of our 2xx with an offer, its
    /// answer makes the plan.
    async fn on_ack(&mut self, dialog: &InviteDialog, media: CallMedia<'_>) {
        let Some(offer) = self.offer_in_2xx.take() else {
            return;
        };
        let Some(ack) = dialog.last_remote_ack().filter(|a| !a.body.is_empty()) else {
            debug!(call_id = %self.call_id, "the ACK carried no answer to our offer");
            return;
        };
        match sdp::negotiated_from_answer(&offer, &String::from_utf8_lossy(&ack.body)) {
            Ok(plan) if self.may_refresh() => apply_media_plan(&self.call_id, media, &plan).await,
            Ok(_) => {}
            Err(e) => {
                warn!(call_id = %self.call_id, error = %e, "the ACK's answer does not fit our offer");
            }
        }
    }

    /// An INFO: its answer, and the digit it carries reported.
    async fn on_info(&mut self, request: &Request, handle: &TransactionHandle) {
        let answer = info::answer(request);
        let code = StatusCode::Other(answer.status(), answer.reason().into());
        let _ = handle.respond(code, Some(answer.headers()), None).await;
        if let info::InfoAnswer::Taken(Some(digit)) = answer {
            report_call_facts(&self.call_id, self.entry.as_deref(), CallFact::Dtmf(digit));
        }
    }

    /// Waits for the session timer's next moment or our refresh's answer (cancel-safe:
    /// a `select!` may drop it and call it again).
    pub async fn wake(&mut self) -> Wake {
        let deadline = self.timer.as_ref().map(SessionTimer::deadline);
        let refresh_at = match self.ours {
            Some(_) => None,
            None => self
                .retry_at
                .or_else(|| self.timer.as_ref().and_then(SessionTimer::refresh_at)),
        };
        let ours = async {
            match self.ours.as_mut() {
                Some(ours) => (&mut ours.task).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep_until_or_never(deadline) => Wake::Expired,
            () = sleep_until_or_never(refresh_at) => Wake::RefreshDue,
            answered = ours => Wake::Refreshed(answered),
        }
    }

    /// Acts on what [`Self::wake`] woke for.
    pub async fn on_wake(
        &mut self,
        wake: Wake,
        dialog: &InviteDialog,
        media: CallMedia<'_>,
    ) -> Served {
        match wake {
            Wake::Expired => {
                info!(call_id = %self.call_id, "no session refresh in time (RFC 4028)");
                Served::HangUp
            }
            Wake::RefreshDue => {
                self.send_refresh(dialog);
                Served::Going
            }
            Wake::Refreshed(answered) => {
                let offer = self.ours.take().and_then(|o| o.offer);
                self.on_refreshed(answered, offer, media).await
            }
        }
    }

    /// Our refresh (RFC 4028 §7.4): UPDATE without an offer when the far end takes
    /// UPDATE, else a re-INVITE with our current description.
    fn send_refresh(&mut self, dialog: &InviteDialog) {
        self.retry_at = None;
        let Some(timer) = &self.timer else {
            return;
        };
        let mut headers = timer.refresh_headers();
        let dialog = dialog.clone();
        let (offer, task) = if self.peer_allows_update {
            let task = tokio::spawn(async move { dialog.update(Some(headers), None).await });
            (None, task)
        } else {
            let body = self
                .sdp
                .current()
                .unwrap_or_else(|| offer::our_offer(&mut self.sdp, &self.answering));
            headers.extend([
                methods::allow(),
                methods::header("Content-Type", "application/sdp"),
            ]);
            let sent = body.clone().into_bytes();
            let task =
                tokio::spawn(async move { dialog.reinvite(Some(headers), Some(sent)).await });
            (Some(body), task)
        };
        info!(call_id = %self.call_id, by_update = offer.is_none(), "refreshing the session");
        self.ours = Some(OurRefresh { offer, task });
    }

    /// The answer to our refresh: 2xx restarts the timer (its answer, if any, makes the
    /// plan); 491 and 422 retry; 408, 481 or no answer at all end the call.
    async fn on_refreshed(
        &mut self,
        answered: Result<rsipstack::Result<Option<Response>>, JoinError>,
        offer: Option<String>,
        media: CallMedia<'_>,
    ) -> Served {
        let call_id = &self.call_id.clone();
        let response = match answered {
            Ok(Ok(Some(response))) => response,
            Ok(Ok(None)) => {
                // The dialog was not at rest (another exchange under way): try again soon.
                self.retry_at = Some(Instant::now() + refresh::glare_delay(false));
                return Served::Going;
            }
            Ok(Err(e)) => {
                warn!(%call_id, error = %e, "our session refresh failed");
                return Served::HangUp;
            }
            Err(e) => {
                warn!(%call_id, error = %e, "our session refresh's task failed");
                return Served::Going;
            }
        };
        match response.status_code.code() {
            200..=299 => {
                match SessionTimer::agreed_as_uac(&response.headers) {
                    Some(agreed) => self.timer = Some(agreed),
                    None => self.timer.iter_mut().for_each(SessionTimer::restart),
                }
                self.learn_allow(&response.headers);
                if let Some(offer) = offer.filter(|_| !response.body.is_empty()) {
                    let answer = String::from_utf8_lossy(&response.body);
                    match sdp::negotiated_from_answer(&offer, &answer) {
                        Ok(plan) => apply_media_plan(call_id, media, &plan).await,
                        Err(e) => {
                            warn!(%call_id, error = %e, "the answer to our refresh does not fit");
                        }
                    }
                }
                Served::Going
            }
            491 => {
                let delay = refresh::glare_delay(self.we_own_call_id);
                debug!(%call_id, ?delay, "our re-INVITE crossed theirs (491): retrying");
                self.retry_at = Some(Instant::now() + delay);
                Served::Going
            }
            session_timer::TOO_SMALL => {
                let min = MinSe::from_headers(&response.headers).and_then(Result::ok);
                if let (Some(min), Some(timer)) = (min, self.timer.as_mut()) {
                    timer.raise_to(min.secs);
                    self.retry_at = Some(Instant::now());
                }
                Served::Going
            }
            408 | 481 => {
                warn!(%call_id, status = response.status_code.code(), "our session refresh says the call is gone");
                Served::HangUp
            }
            status => {
                warn!(%call_id, status, "our session refresh was refused; the timer runs on");
                Served::Going
            }
        }
    }
}

impl Drop for InDialog {
    fn drop(&mut self) {
        if let Some(ours) = &self.ours {
            ours.task.abort();
        }
    }
}

/// The one place a call's new plan reaches its media. The media side's update
/// (`LegMedia::update`, `MediaHub::update`) is wired here when it lands; until then the
/// plan is logged.
pub async fn apply_media_plan(call_id: &str, media: CallMedia<'_>, plan: &Negotiated) {
    match media {
        CallMedia::None => {}
        CallMedia::Leg(_) => debug!(%call_id, ?plan, "new media plan for the call"),
        CallMedia::Party { key, .. } => {
            debug!(%call_id, key, ?plan, "new media plan for the party");
        }
    }
}

/// The one place a call's hold state and DTMF digits reach the call list (the status
/// API). `CallEntry::set_held` and `CallEntry::record_dtmf` are wired here when they land;
/// until then the fact is logged.
pub fn report_call_facts(call_id: &str, entry: Option<&CallEntry>, fact: CallFact) {
    let Some(entry) = entry else {
        return;
    };
    debug!(%call_id, call = entry.id(), ?fact, "call fact");
}

/// The headers of every 2xx to an INVITE we answer: what we take in the dialog, and the
/// body's type.
pub fn invite_answer_headers() -> Vec<Header> {
    vec![
        methods::allow(),
        methods::supported(),
        methods::header("Content-Type", "application/sdp"),
    ]
}

/// Sleeps until `at`, or forever when there is no `at`.
pub async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
