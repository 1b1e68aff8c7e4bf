//! The control leg's session timer (RFC 4028), kept as the UAS that never refreshes:
//! the controller refreshes (`refresher=uac`), and the leg ends when no refresh came by
//! the deadline. Its expiry never ends a referred call.

use super::admission::Refusal;
use super::make;
use rsipstack::sip::{Header, Headers};
use splitdial_sip::session_timer::{self, SessionExpires, UasTerms};
use tokio::time::Instant;

/// A running session timer: the interval agreed and when we give up on the leg.
pub(super) struct LegTimer {
    secs: u32,
    deadline: Instant,
}

impl LegTimer {
    /// Starts the timer on the interval `agreed`.
    pub(super) fn start(agreed: SessionExpires) -> Self {
        Self {
            secs: agreed.secs,
            deadline: Instant::now() + session_timer::expires_after(agreed.secs),
        }
    }

    /// The interval in force, in seconds.
    pub(super) fn secs(&self) -> u32 {
        self.secs
    }

    /// When the leg expires unless a refresh comes first.
    pub(super) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// A refresh that names no interval: the one in force starts again.
    pub(super) fn restart(&mut self) {
        self.deadline = Instant::now() + session_timer::expires_after(self.secs);
    }

    /// The headers of a 2xx that keeps the timer running (RFC 4028 §9).
    pub(super) fn answer_headers(&self) -> Vec<Header> {
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

/// The session timer a request (the control INVITE or a refresh) asks this talker to
/// keep: none, an agreed interval, or a refusal (422 with our `Min-SE` below 90 s; 400
/// for a malformed header).
pub(super) fn terms(headers: &Headers) -> Result<Option<SessionExpires>, Refusal> {
    match session_timer::uas_terms(headers, session_timer::MIN_SECS) {
        UasTerms::NoTimer => Ok(None),
        UasTerms::Run(agreed) => Ok(Some(agreed)),
        UasTerms::TooSmall(min) => Err(Refusal {
            status: session_timer::TOO_SMALL,
            reason: session_timer::TOO_SMALL_REASON,
            headers: vec![make(session_timer::MIN_SE_HEADER, min.to_string())],
        }),
        UasTerms::Malformed(_) => Err(Refusal::new(400, "Bad Session-Expires")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn agreed(secs: u32) -> SessionExpires {
        SessionExpires {
            secs,
            refresher: Some(session_timer::Refresher::Uac),
        }
    }

    /// On paused time: the leg gives up `N − min(32, N/3)` s after the last refresh (60 s
    /// for the controller's 90), a refresh without an interval restarts the one in force,
    /// and its 2xx says who refreshes.
    #[tokio::test(start_paused = true)]
    async fn the_deadline_follows_the_interval_and_restarts_on_refresh() {
        let start = Instant::now();
        let mut timer = LegTimer::start(agreed(90));
        assert_eq!(timer.deadline() - start, Duration::from_secs(60));
        tokio::time::sleep(Duration::from_secs(45)).await;
        timer.restart();
        assert_eq!(timer.deadline() - start, Duration::from_secs(105));
        assert_eq!(timer.secs(), 90);
        let long = LegTimer::start(agreed(1800));
        assert_eq!(long.deadline() - Instant::now(), Duration::from_secs(1768));
        let headers = rsipstack::sip::Headers::from(timer.answer_headers());
        assert_eq!(
            splitdial_sip::headers::first(&headers, session_timer::HEADER),
            Some("90;refresher=uac")
        );
        assert_eq!(
            splitdial_sip::headers::first(&headers, "Require"),
            Some("timer")
        );
    }

    #[test]
    fn a_short_or_malformed_interval_is_refused() {
        let headers = |value: &str| {
            rsipstack::sip::Headers::from(vec![
                make("Supported", "timer".into()),
                make(session_timer::HEADER, value.into()),
            ])
        };
        let too_small = terms(&headers("30")).unwrap_err();
        assert_eq!(too_small.status, 422);
        assert_eq!(too_small.headers.len(), 1);
        assert_eq!(terms(&headers("x")).unwrap_err().status, 400);
        assert_eq!(terms(&headers("90")).unwrap().map(|a| a.secs), Some(90));
        assert!(
            terms(&rsipstack::sip::Headers::default())
                .unwrap()
                .is_none()
        );
    }
}
