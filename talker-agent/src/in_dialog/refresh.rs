//! A call's session timer (RFC 4028), on either side: as refreshee the call ends when no
//! refresh came by the deadline; as refresher we refresh at half the interval. The rules
//! of the headers live in [`splitdial_sip::session_timer`]; this is the clock of one call.

use rsipstack::sip::{Header, Headers};
use splitdial_sip::session_timer::{self, Refresher, SessionExpires, UasTerms};
use std::time::Duration;
use tokio::time::Instant;

use super::methods::header;

/// Which side of the call sends the refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// We refresh.
    Us,
    /// The far end refreshes; we end the call when it does not.
    Peer,
}

/// A running session timer: the interval agreed, who refreshes, and its two moments.
#[derive(Debug, Clone)]
pub struct SessionTimer {
    secs: u32,
    refresher: Side,
    /// Whether the far end lists `timer` in `Supported` (our 2xx then says `Require`).
    peer_supports: bool,
    deadline: Instant,
}

impl SessionTimer {
    /// Starts the timer on `secs`, refreshed by `refresher`.
    pub fn start(secs: u32, refresher: Side, peer_supports: bool) -> Self {
        Self {
            secs,
            refresher,
            peer_supports,
            deadline: Instant::now() + session_timer::expires_after(secs),
        }
    }

    /// The timer a UAS agreed to for a request from the far end (`agreed` names who
    /// refreshes from that request's point of view: `uac` is the far end).
    pub fn agreed_as_uas(agreed: SessionExpires, request: &Headers) -> Self {
        let refresher = match agreed.refresher {
            Some(Refresher::Uas) => Side::Us,
            _ => Side::Peer,
        };
        Self::start(agreed.secs, refresher, session_timer::supported(request))
    }

    /// The timer the far end's 2xx to a request of ours sets (RFC 4028 §7.2): `None`
    /// when it names none. A 2xx that names no refresher leaves it to us.
    pub fn agreed_as_uac(response: &Headers) -> Option<Self> {
        let agreed = SessionExpires::from_headers(response)?.ok()?;
        let refresher = match agreed.refresher {
            Some(Refresher::Uas) => Side::Peer,
            _ => Side::Us,
        };
        Some(Self::start(agreed.secs, refresher, true))
    }

    /// The interval in force, in seconds.
    pub fn secs(&self) -> u32 {
        self.secs
    }

    /// Who refreshes.
    pub fn refresher(&self) -> Side {
        self.refresher
    }

    /// When the call ends unless a refresh came first.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// When we refresh, as the refresher: half the interval after the last refresh.
    pub fn refresh_at(&self) -> Option<Instant> {
        (self.refresher == Side::Us).then(|| {
            self.deadline - session_timer::expires_after(self.secs)
                + session_timer::refresh_after(self.secs)
        })
    }

    /// A refresh that names no new interval: the one in force starts again.
    pub fn restart(&mut self) {
        self.deadline = Instant::now() + session_timer::expires_after(self.secs);
    }

    /// The headers of a 2xx to the far end's request that keeps the timer running
    /// (RFC 4028 §9): who refreshes, seen from that request (`uac` is the far end).
    pub fn answer_headers(&self) -> Vec<Header> {
        let refresher = match self.refresher {
            Side::Us => Refresher::Uas,
            Side::Peer => Refresher::Uac,
        };
        let agreed = SessionExpires {
            secs: self.secs,
            refresher: Some(refresher),
        };
        let mut headers = vec![header(session_timer::HEADER, &agreed.to_string())];
        if self.peer_supports {
            headers.push(header("Require", session_timer::OPTION_TAG));
        }
        headers
    }

    /// The headers of our own refresh (RFC 4028 §7.4): we stay the refresher.
    pub fn refresh_headers(&self) -> Vec<Header> {
        let agreed = SessionExpires {
            secs: self.secs,
            refresher: Some(Refresher::Uac),
        };
        vec![
            header(session_timer::HEADER, &agreed.to_string()),
            header(
                session_timer::MIN_SE_HEADER,
                &session_timer::MIN_SECS.to_string(),
            ),
            header("Supported", session_timer::OPTION_TAG),
        ]
    }

    /// A 422 to our refresh named the far end's `Min-SE`: the interval grows to it.
    pub fn raise_to(&mut self, min_secs: u32) {
        self.secs = self.secs.max(min_secs);
    }
}

/// Why a request's session timer is refused: the status and the headers it needs.
#[derive(Debug, Clone)]
pub struct TimerRefusal {
    /// 422 (with our `Min-SE`) or 400.
    pub status: u16,
    /// The reason phrase.
    pub reason: &'static str,
    /// `Min-SE` of a 422.
    pub headers: Vec<Header>,
}

/// The timer a request from the far end asks us to keep (an INVITE, a re-INVITE or an
/// UPDATE): none, an agreed interval, or a refusal. A control leg never refreshes
/// (`may_refresh` false: the controller does, DESIGN.md); a call may.
pub fn terms(headers: &Headers, may_refresh: bool) -> Result<Option<SessionExpires>, TimerRefusal> {
    let terms = if may_refresh {
        session_timer::refreshing_uas_terms(headers, session_timer::MIN_SECS)
    } else {
        session_timer::uas_terms(headers, session_timer::MIN_SECS)
    };
    match terms {
        UasTerms::NoTimer => Ok(None),
        UasTerms::Run(agreed) => Ok(Some(agreed)),
        UasTerms::TooSmall(min) => Err(TimerRefusal {
            status: session_timer::TOO_SMALL,
            reason: session_timer::TOO_SMALL_REASON,
            headers: vec![header(session_timer::MIN_SE_HEADER, &min.to_string())],
        }),
        UasTerms::Malformed(_) => Err(TimerRefusal {
            status: 400,
            reason: "Bad Session-Expires",
            headers: Vec::new(),
        }),
    }
}

/// How long to wait before retrying a re-INVITE of ours that got 491 (RFC 3261 §14.1):
/// 2.1–4 s when we own the dialog's Call-ID (we sent its first INVITE), 0–2 s otherwise,
/// in steps of 10 ms.
pub fn glare_delay(we_own_call_id: bool) -> Duration {
    let steps = u64::from(rand::random::<u8>() % 200) + 1;
    if we_own_call_id {
        Duration::from_millis(2100 + steps * 950 / 100)
    } else {
        Duration::from_millis(steps * 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use splitdial_sip::headers;

    fn request(lines: &[(&str, &str)]) -> Headers {
        let mut h = Headers::default();
        for (name, value) in lines {
            headers::push(&mut h, name, *value);
        }
        h
    }

    /// On paused time: as refreshee the call gives up `N − min(32, N/3)` s after the
    /// last refresh (60 s for 90); as refresher we refresh at half the interval.
    #[tokio::test(start_paused = true)]
    async fn the_moments_follow_the_interval_and_restart_on_refresh() {
        let start = Instant::now();
        let mut peer = SessionTimer::start(90, Side::Peer, true);
        assert_eq!(peer.deadline() - start, Duration::from_secs(60));
        assert_eq!(peer.refresh_at(), None);
        tokio::time::sleep(Duration::from_secs(45)).await;
        peer.restart();
        assert_eq!(peer.deadline() - start, Duration::from_secs(105));
        let us = SessionTimer::start(90, Side::Us, true);
        assert_eq!(
            us.refresh_at().map(|at| at - Instant::now()),
            Some(Duration::from_secs(45))
        );
        let long = SessionTimer::start(1800, Side::Peer, true);
        assert_eq!(long.deadline() - Instant::now(), Duration::from_secs(1768));
    }

    #[test]
    fn the_answer_names_the_refresher_from_the_requests_point_of_view() {
        let asked = request(&[
            ("Supported", "timer"),
            ("Session-Expires", "120;refresher=uas"),
        ]);
        let agreed = terms(&asked, true).unwrap().unwrap();
        let timer = SessionTimer::agreed_as_uas(agreed, &asked);
        assert_eq!(timer.refresher(), Side::Us);
        let answer = Headers::from(timer.answer_headers());
        assert_eq!(
            headers::first(&answer, "Session-Expires"),
            Some("120;refresher=uas")
        );
        assert_eq!(headers::first(&answer, "Require"), Some("timer"));
        // A control leg never takes the refreshing on.
        assert_eq!(terms(&asked, false).unwrap(), None);
        let small = request(&[("Supported", "timer"), ("Session-Expires", "30")]);
        let refusal = terms(&small, true).unwrap_err();
        assert_eq!(refusal.status, 422);
        assert_eq!(
            headers::first(&Headers::from(refusal.headers), "Min-SE"),
            Some("90")
        );
        assert_eq!(
            terms(&request(&[("Session-Expires", "x")]), true)
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn a_2xx_to_our_request_says_who_refreshes() {
        let ours =
            SessionTimer::agreed_as_uac(&request(&[("Session-Expires", "90;refresher=uac")]));
        assert_eq!(ours.map(|t| t.refresher()), Some(Side::Us));
        let theirs = SessionTimer::agreed_as_uac(&request(&[("x", "90;refresher=uas")]));
        assert_eq!(theirs.map(|t| t.refresher()), Some(Side::Peer));
        assert!(SessionTimer::agreed_as_uac(&Headers::default()).is_none());
    }

    #[test]
    fn the_glare_delay_depends_on_who_owns_the_call_id() {
        for _ in 0..200 {
            let owner = glare_delay(true);
            assert!(owner > Duration::from_millis(2100) && owner <= Duration::from_secs(4));
            assert!(glare_delay(false) <= Duration::from_secs(2));
        }
    }
}
