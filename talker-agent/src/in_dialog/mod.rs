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
//! `their_update.rs` serves the far end's re-INVITE and UPDATE; `our_refresh.rs` sends
//! ours when we are the refresher.
//!
//! A new plan goes to the call's media through one call site, [`apply_media_plan`]; the
//! far end's hold and its DTMF digits through another, [`report_call_facts`].

pub mod info;
pub mod methods;
pub mod offer;
pub mod options;
mod our_refresh;
pub mod refresh;
mod their_update;

pub use our_refresh::Wake;

use crate::calls::CallEntry;
use crate::media::hub::{LegMedia, MediaHub};
use offer::Answering;
use refresh::SessionTimer;
use rsipstack::dialog::dialog::{DialogState, TransactionHandle};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Request, StatusCode};
use splitdial_sip::headers;
use splitdial_sip::sdp::{self, Negotiated, SdpSession};
use std::sync::Arc;
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

/// What an exchange changed for a call: a new media plan, facts for the call list.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    plan: Option<Negotiated>,
    facts: Vec<CallFact>,
}

impl Effects {
    /// Only a new plan.
    fn plan(plan: Negotiated) -> Self {
        Self {
            plan: Some(plan),
            facts: Vec::new(),
        }
    }
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
    ours: Option<our_refresh::OurRefresh>,
    /// When to retry a refresh that met 491 or 422.
    retry_at: Option<Instant>,
    /// Our offer in a 2xx to a re-INVITE without one (and that re-INVITE's CSeq),
    /// until its ACK answers it.
    offer_in_2xx: Option<(String, u32)>,
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
        let mut effects = Effects::default();
        match state {
            DialogState::Updated(_, request, handle) => {
                effects = self.on_update(&request, &handle).await;
            }
            DialogState::Options(_, _, handle) => {
                let _ = handle
                    .respond(StatusCode::OK, Some(options::capabilities()), None)
                    .await;
            }
            DialogState::Info(_, request, handle) => {
                effects = self.on_info(&request, &handle).await;
            }
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
            DialogState::Confirmed(..) => effects = self.on_ack(dialog),
            DialogState::Terminated(_, reason) => {
                info!(call_id = %self.call_id, ?reason, "dialog ended");
                return Served::Ended;
            }
            _ => {}
        }
        self.pass_on(media, effects).await;
        Served::Going
    }

    /// Passes what an exchange changed on: the one call site of [`apply_media_plan`] and
    /// of [`report_call_facts`].
    pub(crate) async fn pass_on(&self, media: CallMedia<'_>, effects: Effects) {
        if let Some(plan) = &effects.plan {
            apply_media_plan(&self.call_id, media, plan).await;
        }
        for fact in effects.facts {
            report_call_facts(&self.call_id, self.entry.as_deref(), fact);
        }
    }

    /// The dialog is at rest again: when it was the ACK of our 2xx with an offer, its
    /// answer makes the plan.
    fn on_ack(&mut self, dialog: &InviteDialog) -> Effects {
        let Some((_, cseq)) = &self.offer_in_2xx else {
            return Effects::default();
        };
        // Another request may bring the dialog back to rest before that ACK comes.
        let ack = dialog
            .last_remote_ack()
            .filter(|ack| headers::cseq_number(&ack.headers) == Some(*cseq));
        let (Some(ack), Some((offer, _))) = (ack, self.offer_in_2xx.take()) else {
            return Effects::default();
        };
        if ack.body.is_empty() {
            debug!(call_id = %self.call_id, "the ACK carried no answer to our offer");
            return Effects::default();
        }
        match sdp::negotiated_from_answer(&offer, &String::from_utf8_lossy(&ack.body)) {
            Ok(plan) if self.may_refresh() => Effects::plan(plan),
            Ok(_) => Effects::default(),
            Err(e) => {
                warn!(call_id = %self.call_id, error = %e, "the ACK's answer does not fit our offer");
                Effects::default()
            }
        }
    }

    /// An INFO: its answer, and the digit it carries reported.
    async fn on_info(&mut self, request: &Request, handle: &TransactionHandle) -> Effects {
        let answer = info::answer(request);
        let code = StatusCode::Other(answer.status(), answer.reason().into());
        let _ = handle.respond(code, Some(answer.headers()), None).await;
        let mut effects = Effects::default();
        if let info::InfoAnswer::Taken(Some(digit)) = answer {
            effects.facts.push(CallFact::Dtmf(digit));
        }
        effects
    }
}

impl Drop for InDialog {
    fn drop(&mut self) {
        if let Some(ours) = &self.ours {
            ours.task.abort();
        }
    }
}

/// The one place a call's new plan reaches its media, after its 200 went out. A failed
/// update leaves the media on the previous plan (the worker's rule), so the call goes on
/// and the failure is logged: the peer already has our answer.
pub async fn apply_media_plan(call_id: &str, media: CallMedia<'_>, plan: &Negotiated) {
    let applied = match media {
        CallMedia::None => return,
        CallMedia::Leg(leg) => leg.update(plan).await,
        CallMedia::Party { hub, key } => hub.update(key, plan).await,
    };
    match applied {
        Ok(()) => debug!(%call_id, ?plan, "call media follows the new plan"),
        Err(e) => warn!(%call_id, error = %e, "call media kept its previous plan"),
    }
}

/// The one place a call's hold state and DTMF digits reach the call list (the status
/// API).
pub fn report_call_facts(call_id: &str, entry: Option<&CallEntry>, fact: CallFact) {
    let Some(entry) = entry else {
        return;
    };
    debug!(%call_id, call = entry.id(), ?fact, "call fact");
    match fact {
        CallFact::HeldByPeer(true) => entry.set_held(Some(splitdial_api::Held::ByPeer)),
        CallFact::HeldByPeer(false) => entry.set_held(None),
        CallFact::Dtmf(digit) => entry.record_dtmf(digit),
    }
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
