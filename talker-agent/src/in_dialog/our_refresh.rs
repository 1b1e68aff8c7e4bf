//! Our own session refresh (RFC 4028 §7.4) as the refresher: UPDATE without an offer
//! when the far end takes UPDATE, else a re-INVITE with our current description; run on
//! a task of its own so the call keeps serving the far end's requests meanwhile (and
//! answers 491 to an offer that crosses ours). Its answer: 2xx restarts the timer, 491
//! retries after RFC 3261 §14.1's delay, 422 retries with the far end's `Min-SE`, 408,
//! 481 or no answer end the call.

use super::refresh::{self, SessionTimer};
use super::{CallMedia, Effects, InDialog, Served, methods, offer, sleep_until_or_never};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::Response;
use splitdial_sip::sdp;
use splitdial_sip::session_timer::{self, MinSe};
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;
use tracing::{debug, info, warn};

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
pub(super) struct OurRefresh {
    /// The offer it carries (a re-INVITE), to read the answer against.
    pub(super) offer: Option<String>,
    pub(super) task: JoinHandle<rsipstack::Result<Option<Response>>>,
}

impl InDialog {
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
                let (served, effects) = self.on_refreshed(answered, offer);
                self.pass_on(media, effects).await;
                served
            }
        }
    }

    /// Sends our refresh on a task of its own.
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

    /// The answer to our refresh (or why there is none).
    fn on_refreshed(
        &mut self,
        answered: Result<rsipstack::Result<Option<Response>>, JoinError>,
        offer: Option<String>,
    ) -> (Served, Effects) {
        let response = match answered {
            Ok(Ok(Some(response))) => response,
            other => return (self.on_no_answer(other), Effects::default()),
        };
        if response.status_code.kind() == rsipstack::sip::StatusCodeKind::Successful {
            return (Served::Going, self.on_refresh_accepted(&response, offer));
        }
        (self.on_refresh_refused(&response), Effects::default())
    }

    /// Our refresh got no answer: the dialog was busy (retry soon), the transaction
    /// failed (the call is gone), or its task did.
    fn on_no_answer(
        &mut self,
        answered: Result<rsipstack::Result<Option<Response>>, JoinError>,
    ) -> Served {
        let call_id = self.call_id.clone();
        match answered {
            Ok(Ok(Some(_))) => Served::Going,
            Ok(Ok(None)) => {
                // The dialog was not at rest (another exchange under way): try again soon.
                self.retry_at = Some(Instant::now() + refresh::glare_delay(false));
                Served::Going
            }
            Ok(Err(e)) => {
                warn!(%call_id, error = %e, "our session refresh failed");
                Served::HangUp
            }
            Err(e) => {
                warn!(%call_id, error = %e, "our session refresh's task failed");
                Served::Going
            }
        }
    }

    /// A final failure to our refresh: 491 and 422 retry, 408 and 481 end the call.
    fn on_refresh_refused(&mut self, response: &Response) -> Served {
        let call_id = self.call_id.clone();
        match response.status_code.code() {
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
            status @ (408 | 481) => {
                warn!(%call_id, status, "our session refresh says the call is gone");
                Served::HangUp
            }
            status => {
                warn!(%call_id, status, "our session refresh was refused; the timer runs on");
                Served::Going
            }
        }
    }

    /// A 2xx to our refresh: the timer it names (or the one in force) starts again, and
    /// the answer to our re-INVITE's offer makes the plan.
    fn on_refresh_accepted(&mut self, response: &Response, offer: Option<String>) -> Effects {
        match SessionTimer::agreed_as_uac(&response.headers) {
            Some(agreed) => self.timer = Some(agreed),
            None => self.timer.iter_mut().for_each(SessionTimer::restart),
        }
        self.learn_allow(&response.headers);
        let Some(offer) = offer.filter(|_| !response.body.is_empty()) else {
            return Effects::default();
        };
        let answer = String::from_utf8_lossy(&response.body);
        match sdp::negotiated_from_answer(&offer, &answer) {
            Ok(plan) => Effects::plan(plan),
            Err(e) => {
                warn!(call_id = %self.call_id, error = %e, "the answer to our refresh does not fit");
                Effects::default()
            }
        }
    }
}
