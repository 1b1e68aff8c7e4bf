//! RFC 4028 session timers on the control leg, with the controller as the
//! refresher: the control INVITE asks for [`SESSION_SECS`] with
//! `refresher=uac`; when the talker's 2xx agrees (it carries
//! `Session-Expires` naming us, or no refresher), the controller sends an
//! UPDATE without SDP every half interval. A refresh answered 408 or 481, or
//! not answered at all, means the talker no longer holds the leg: control of
//! the call is lost (the call task reports it; see `Call::control_lost`).

use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Response};
use splitdial_sip::session_timer::{self, MinSe, Refresher, SessionExpires};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// The session interval the controller asks for: RFC 4028's minimum, so a
/// talker that lost the controller notices within a minute.
pub(super) const SESSION_SECS: u32 = session_timer::MIN_SECS;

/// The outcome of one refresh's client transaction.
pub(super) type RefreshResult = rsipstack::Result<Option<Response>>;

/// What a refresh's outcome means for the call.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The leg lives on (refreshed, or a failure that does not end it).
    Alive,
    /// The talker no longer holds the leg (why, for logs and the end reason).
    Lost(String),
}

/// The session-timer headers of the control INVITE.
pub(super) fn invite_headers() -> Vec<Header> {
    request_headers(SESSION_SECS)
}

fn request_headers(secs: u32) -> Vec<Header> {
    let asked = SessionExpires {
        secs,
        refresher: Some(Refresher::Uac),
    };
    vec![
        make("Supported", session_timer::OPTION_TAG.into()),
        make(session_timer::HEADER, asked.to_string()),
        make(
            session_timer::MIN_SE_HEADER,
            MinSe { secs: SESSION_SECS }.to_string(),
        ),
    ]
}

fn make(name: &str, value: String) -> Header {
    rsipstack::sip::headers::make_header(name, value)
}

/// The refresher of one call's control leg (off until the talker agreed).
pub(super) struct SessionRefresh {
    call: String,
    /// The session interval in force, when timers run.
    secs: Option<u32>,
    /// When the next refresh is due (`None` while one is in flight or when
    /// timers are off).
    due: Option<Instant>,
    in_flight: Option<JoinHandle<()>>,
}

impl SessionRefresh {
    /// No timer (yet).
    pub(super) fn off(call: &str) -> Self {
        Self {
            call: call.to_owned(),
            secs: None,
            due: None,
            in_flight: None,
        }
    }

    /// The talker's 2xx to the control INVITE: timers run when it carries a
    /// `Session-Expires` that leaves the refreshing to us.
    pub(super) fn on_answer(&mut self, response: &Response) {
        match SessionExpires::from_headers(&response.headers) {
            None => {
                debug!(call = %self.call, "the talker runs no session timer on the control leg");
            }
            Some(Err(e)) => {
                warn!(call = %self.call, error = %e, "the talker's Session-Expires is unreadable; no session timer");
            }
            Some(Ok(agreed)) if agreed.refresher == Some(Refresher::Uas) => {
                // The talker refreshes; we never end a leg on our own expiry.
                info!(call = %self.call, secs = agreed.secs, "the talker refreshes the control leg itself");
            }
            Some(Ok(agreed)) => self.run(agreed.secs),
        }
    }

    fn run(&mut self, secs: u32) {
        let secs = secs.max(session_timer::MIN_SECS);
        if self.secs != Some(secs) {
            info!(call = %self.call, secs, refresh_after = ?session_timer::refresh_after(secs), "session timer on the control leg");
        }
        self.secs = Some(secs);
        self.due = Some(Instant::now() + session_timer::refresh_after(secs));
    }

    /// When the next refresh is due; `None` when none is.
    pub(super) fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Whether a refresh is in flight.
    pub(super) fn in_flight(&self) -> bool {
        self.in_flight.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Sends the refresh: an UPDATE without SDP; its outcome comes on `results`.
    pub(super) fn start(
        &mut self,
        dialog: &InviteDialog,
        results: &mpsc::UnboundedSender<RefreshResult>,
    ) {
        let Some(secs) = self.secs else { return };
        self.due = None;
        debug!(call = %self.call, secs, "refreshing the control leg (UPDATE)");
        let (dialog, results) = (dialog.clone(), results.clone());
        self.in_flight = Some(tokio::spawn(async move {
            let result = dialog.update(Some(request_headers(secs)), None).await;
            let _ = results.send(result);
        }));
    }

    /// A refresh's outcome.
    pub(super) fn on_result(&mut self, result: RefreshResult) -> Verdict {
        self.in_flight = None;
        let Some(secs) = self.secs else {
            return Verdict::Alive;
        };
        let response = match result {
            Ok(Some(response)) => response,
            Ok(None) => return Verdict::Lost("no answer to the session refresh".into()),
            Err(e) => return Verdict::Lost(format!("session refresh failed: {e}")),
        };
        let code = response.status_code.code();
        match code {
            200..=299 => {
                match SessionExpires::from_headers(&response.headers) {
                    Some(Ok(agreed)) if agreed.refresher != Some(Refresher::Uas) => {
                        self.run(agreed.secs);
                    }
                    // RFC 4028 §7.4: a 2xx without Session-Expires turns the
                    // timer off; so does the talker taking the refreshing over.
                    _ => {
                        info!(call = %self.call, "the talker ended the session timer");
                        self.secs = None;
                        self.due = None;
                        return Verdict::Alive;
                    }
                }
                debug!(call = %self.call, "control leg refreshed");
                Verdict::Alive
            }
            // RFC 4028 §10: the session is over for the talker.
            408 | 481 => Verdict::Lost(format!("session refresh answered {code}")),
            session_timer::TOO_SMALL => {
                // The talker wants a longer interval: ask again at once with it.
                let wanted = MinSe::from_headers(&response.headers)
                    .and_then(Result::ok)
                    .map_or(secs, |m| m.secs.max(secs));
                warn!(call = %self.call, wanted, "the talker wants a longer session interval");
                self.secs = Some(wanted);
                self.due = Some(Instant::now());
                Verdict::Alive
            }
            _ => {
                // Another failure (491 glare, 500...) leaves the session as it
                // was; try again after another half interval.
                warn!(call = %self.call, code, "session refresh refused; trying again later");
                self.due = Some(Instant::now() + session_timer::refresh_after(secs));
                Verdict::Alive
            }
        }
    }

    /// Stops refreshing for good (the call is over): no refresh outlives it.
    pub(super) fn stop(&mut self) {
        self.secs = None;
        self.due = None;
        if let Some(task) = self.in_flight.take() {
            task.abort();
        }
    }
}

impl Drop for SessionRefresh {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use rsipstack::sip::StatusCode;
    use std::time::Duration;

    fn response(code: u16, headers: &[(&str, &str)]) -> Response {
        let mut r = Response {
            status_code: StatusCode::from(code),
            wire_reason: None,
            version: rsipstack::sip::Version::V2,
            headers: Default::default(),
            body: Vec::new(),
        };
        for (n, v) in headers {
            splitdial_sip::headers::push(&mut r.headers, n, *v);
        }
        r
    }

    #[test]
    fn the_invite_asks_for_90_seconds_refreshed_by_us() {
        let mut h = rsipstack::sip::Headers::default();
        for header in invite_headers() {
            h.push(header);
        }
        assert!(session_timer::supported(&h));
        assert_eq!(
            SessionExpires::from_headers(&h)
                .unwrap()
                .unwrap()
                .to_string(),
            "90;refresher=uac"
        );
        assert_eq!(MinSe::from_headers(&h).unwrap().unwrap().secs, 90);
    }

    #[tokio::test]
    async fn timers_run_only_when_the_talker_agrees() {
        let mut refresh = SessionRefresh::off("c");
        refresh.on_answer(&response(200, &[]));
        assert_eq!(refresh.due(), None);
        refresh.on_answer(&response(200, &[("Session-Expires", "90;refresher=uas")]));
        assert_eq!(refresh.due(), None);
        let before = Instant::now();
        refresh.on_answer(&response(200, &[("x", "90;refresher=uac")]));
        let due = refresh.due().unwrap();
        assert!(
            due >= before + Duration::from_secs(45)
                && due <= Instant::now() + Duration::from_secs(45)
        );
    }

    #[tokio::test]
    async fn refresh_outcomes() {
        let mut refresh = SessionRefresh::off("c");
        refresh.on_answer(&response(200, &[("Session-Expires", "90;refresher=uac")]));
        assert_eq!(
            refresh.on_result(Ok(Some(response(
                200,
                &[("Session-Expires", "120;refresher=uac")]
            )))),
            Verdict::Alive
        );
        assert_eq!(refresh.secs, Some(120));
        assert!(matches!(
            refresh.on_result(Ok(Some(response(481, &[])))),
            Verdict::Lost(_)
        ));
        assert!(matches!(
            refresh.on_result(Ok(Some(response(408, &[])))),
            Verdict::Lost(_)
        ));
        assert!(matches!(refresh.on_result(Ok(None)), Verdict::Lost(_)));
        assert_eq!(
            refresh.on_result(Ok(Some(response(500, &[])))),
            Verdict::Alive
        );
        assert!(refresh.due().is_some());
        assert_eq!(
            refresh.on_result(Ok(Some(response(422, &[("Min-SE", "300")])))),
            Verdict::Alive
        );
        assert_eq!(refresh.secs, Some(300));
        assert!(refresh.due().unwrap() <= Instant::now());
        // A 2xx without Session-Expires turns the timer off.
        assert_eq!(
            refresh.on_result(Ok(Some(response(200, &[])))),
            Verdict::Alive
        );
        assert_eq!(refresh.due(), None);
    }
}
