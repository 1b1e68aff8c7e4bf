//! A re-INVITE or UPDATE from the far end: 491 when it crosses our own offer, its session
//! timer (RFC 4028 §9), then its offer answered (or ours, for a re-INVITE without one),
//! and the new plan and hold state returned as the exchange's effects.

use super::offer::{self, Answered};
use super::refresh::{self, SessionTimer};
use super::{CallFact, Effects, InDialog, methods};
use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::sip::{Header, Method, Request, StatusCode};
use splitdial_sip::session_timer::SessionExpires;
use tracing::{debug, info};

/// The SDP of our 2xx to a re-INVITE or UPDATE, and what it answered.
struct Body {
    sdp: Option<String>,
    answered: Option<Answered>,
}

impl InDialog {
    /// A re-INVITE or UPDATE: glare, the session timer, then the offer (if any).
    pub(super) async fn on_update(
        &mut self,
        request: &Request,
        handle: &TransactionHandle,
    ) -> Effects {
        let call_id = self.call_id.clone();
        if self.crosses_ours(request) {
            debug!(%call_id, "their offer crossed ours: 491");
            let _ = handle.reply(StatusCode::RequestPending).await;
            return Effects::default();
        }
        let terms = match refresh::terms(&request.headers, self.may_refresh()) {
            Ok(terms) => terms,
            Err(refusal) => {
                debug!(%call_id, status = refusal.status, "refresh refused");
                let code = StatusCode::Other(refusal.status, refusal.reason.into());
                let _ = handle.respond(code, Some(refusal.headers), None).await;
                return Effects::default();
            }
        };
        let body = match self.body_for(request) {
            Ok(body) => body,
            Err(refused) => {
                info!(%call_id, status = refused.status, why = %refused.why, "offer refused; the call goes on as before");
                let _ = handle.reply(StatusCode::from(refused.status)).await;
                return Effects::default();
            }
        };
        self.learn_allow(&request.headers);
        self.keep_timer(terms, request);
        let headers = self.answer_headers(request, body.sdp.is_some());
        let _ = handle
            .respond(StatusCode::OK, headers, body.sdp.map(String::into_bytes))
            .await;
        let Some(answered) = body.answered else {
            return Effects::default();
        };
        Effects {
            plan: answered.plan,
            facts: answered
                .held_by_peer
                .map(CallFact::HeldByPeer)
                .into_iter()
                .collect(),
        }
    }

    /// Whether a request carries an offer (or is a re-INVITE) while ours is in flight
    /// (RFC 3261 §14.2, RFC 3311 §5.2).
    fn crosses_ours(&self, request: &Request) -> bool {
        let ours_offers = self.ours.as_ref().is_some_and(|o| o.offer.is_some());
        ours_offers && (request.method == Method::Invite || !request.body.is_empty())
    }

    /// Our SDP for the 2xx: the answer to its offer, our offer for a re-INVITE without
    /// one (its answer then comes in the ACK), nothing for an UPDATE without one.
    fn body_for(&mut self, request: &Request) -> Result<Body, offer::Refused> {
        if !request.body.is_empty() {
            let answered = offer::answer(&mut self.sdp, &self.answering, &request.body)?;
            return Ok(Body {
                sdp: Some(answered.sdp.clone()),
                answered: Some(answered),
            });
        }
        if request.method != Method::Invite {
            return Ok(Body {
                sdp: None,
                answered: None,
            });
        }
        let ours = offer::our_offer(&mut self.sdp, &self.answering);
        let cseq = splitdial_sip::headers::cseq_number(&request.headers).unwrap_or(0);
        self.offer_in_2xx = Some((ours.clone(), cseq));
        Ok(Body {
            sdp: Some(ours),
            answered: None,
        })
    }

    /// The refresh restarts the timer: with the interval it names, else the one in force.
    fn keep_timer(&mut self, terms: Option<SessionExpires>, request: &Request) {
        match (terms, self.timer.as_mut()) {
            (Some(agreed), _) => {
                self.timer = Some(SessionTimer::agreed_as_uas(agreed, &request.headers));
            }
            (None, Some(current)) => current.restart(),
            (None, None) => {}
        }
    }

    /// The headers of our 2xx: the timer in force, `Allow` and `Supported` to a
    /// re-INVITE, the body's type.
    fn answer_headers(&self, request: &Request, with_sdp: bool) -> Option<Vec<Header>> {
        let mut headers = Vec::new();
        if let Some(timer) = &self.timer {
            let (call_id, method, secs) = (&self.call_id, &request.method, timer.secs());
            // The matcher's tests count the control leg's line.
            if self.may_refresh() {
                info!(%call_id, %method, secs, "call session refreshed");
            } else {
                info!(%call_id, %method, secs, "control leg refreshed");
            }
            headers.extend(timer.answer_headers());
        }
        if request.method == Method::Invite {
            headers.extend([methods::allow(), methods::supported()]);
        }
        if with_sdp {
            headers.push(methods::header("Content-Type", "application/sdp"));
        }
        (!headers.is_empty()).then_some(headers)
    }
}
