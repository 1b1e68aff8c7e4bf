//! RFC 4028 session timers: the `Session-Expires` (compact `x`) and `Min-SE`
//! headers, the `timer` option tag, the two moments that matter (when the
//! refresher refreshes, when the other side gives up), and what a UAS that
//! never refreshes itself answers to a request's timer.
//!
//! splitdial's control leg runs session timers with the controller as the
//! refresher (`refresher=uac`): it refreshes with UPDATE at half the interval,
//! and the talker, which never refreshes it ([`uas_terms`]), ends the leg when
//! no refresh came in time. The talker's other calls may refresh themselves
//! ([`refreshing_uas_terms`]).

use rsipstack::sip::Headers;
use std::fmt;
use std::time::Duration;

use crate::headers;

/// The `Session-Expires` header's name (compact form `x`).
pub const HEADER: &str = "Session-Expires";
/// The `Min-SE` header's name.
pub const MIN_SE_HEADER: &str = "Min-SE";
/// The option tag in `Supported` and `Require`.
pub const OPTION_TAG: &str = "timer";
/// The smallest session interval RFC 4028 §4 allows anyone to ask for (and
/// the one splitdial uses on its control legs), in seconds.
pub const MIN_SECS: u32 = 90;
/// The 422 status (RFC 4028 §6): the interval asked for is below our Min-SE.
pub const TOO_SMALL: u16 = 422;
/// The reason phrase of [`TOO_SMALL`].
pub const TOO_SMALL_REASON: &str = "Session Interval Too Small";

/// A session-timer header that does not follow RFC 4028's grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionTimerError {
    /// The delta-seconds are missing, not all digits, or beyond 2^32 - 1.
    #[error("{header}: {value:?} is not a number of seconds")]
    Seconds {
        /// Which header.
        header: &'static str,
        /// The offending text.
        value: String,
    },
    /// A `refresher` parameter other than `uac` or `uas`, or given twice.
    #[error("Session-Expires: bad refresher parameter {0:?}")]
    Refresher(String),
    /// A parameter that is not `name` or `name=value`.
    #[error("{header}: malformed parameter {value:?}")]
    Parameter {
        /// Which header.
        header: &'static str,
        /// The offending text.
        value: String,
    },
    /// The header appears more than once.
    #[error("{0} appears more than once")]
    Repeated(&'static str),
}

/// Which side of the dialog sends the refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refresher {
    /// The side that sent the dialog's first INVITE.
    Uac,
    /// The side that answered it.
    Uas,
}

impl Refresher {
    /// The parameter value: `uac` or `uas`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uac => "uac",
            Self::Uas => "uas",
        }
    }
}

/// A `Session-Expires` value: the session interval and, when named, the
/// refresher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionExpires {
    /// The session interval in seconds.
    pub secs: u32,
    /// Who refreshes, when the header says so.
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    /// Parses a header value such as `1800;refresher=uac` (whitespace around
    /// `;` and `=` allowed, parameter names case-insensitive, other parameters
    /// ignored).
    pub fn parse(value: &str) -> Result<Self, SessionTimerError> {
        let mut parts = value.split(';');
        let secs = parse_seconds(HEADER, parts.next().unwrap_or_default())?;
        let mut refresher = None;
        for param in parts {
            let (name, param_value) = split_param(HEADER, param)?;
            if !name.eq_ignore_ascii_case("refresher") {
                continue;
            }
            let parsed = match param_value {
                Some(v) if v.eq_ignore_ascii_case("uac") => Refresher::Uac,
                Some(v) if v.eq_ignore_ascii_case("uas") => Refresher::Uas,
                _ => return Err(SessionTimerError::Refresher(param.trim().to_owned())),
            };
            if refresher.replace(parsed).is_some() {
                return Err(SessionTimerError::Refresher(param.trim().to_owned()));
            }
        }
        Ok(Self { secs, refresher })
    }

    /// The message's `Session-Expires` (or `x`): `None` when absent, an error
    /// when malformed or repeated.
    pub fn from_headers(headers: &Headers) -> Option<Result<Self, SessionTimerError>> {
        one_header(headers, HEADER).map(|value| value.and_then(Self::parse))
    }
}

impl fmt::Display for SessionExpires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.secs)?;
        if let Some(refresher) = self.refresher {
            write!(f, ";refresher={}", refresher.as_str())?;
        }
        Ok(())
    }
}

/// A `Min-SE` value: the smallest session interval the sender accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MinSe {
    /// Seconds.
    pub secs: u32,
}

impl MinSe {
    /// Parses a header value such as `90` (generic parameters ignored).
    pub fn parse(value: &str) -> Result<Self, SessionTimerError> {
        let mut parts = value.split(';');
        let secs = parse_seconds(MIN_SE_HEADER, parts.next().unwrap_or_default())?;
        for param in parts {
            split_param(MIN_SE_HEADER, param)?;
        }
        Ok(Self { secs })
    }

    /// The message's `Min-SE`: `None` when absent, an error when malformed or
    /// repeated.
    pub fn from_headers(headers: &Headers) -> Option<Result<Self, SessionTimerError>> {
        one_header(headers, MIN_SE_HEADER).map(|value| value.and_then(Self::parse))
    }
}

impl fmt::Display for MinSe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.secs)
    }
}

/// When the refresher sends its refresh: half the session interval after the
/// last one (RFC 4028 §7.4 and §10 recommend this).
pub fn refresh_after(secs: u32) -> Duration {
    Duration::from_millis(u64::from(secs) * 500)
}

/// When the side that does not refresh gives up on the session, counted from
/// the last refresh: RFC 4028 §10 has it send its BYE the smaller of 32 s and
/// a third of the interval before the session would expire (60 s for 90 s).
pub fn expires_after(secs: u32) -> Duration {
    Duration::from_secs(u64::from(secs - (secs / 3).min(32)))
}

/// Whether `Supported` (or `k`) lists the `timer` option tag.
pub fn supported(headers: &Headers) -> bool {
    lists_timer(headers, "Supported")
}

/// Whether `Require` lists the `timer` option tag.
pub fn required(headers: &Headers) -> bool {
    lists_timer(headers, "Require")
}

/// What a UAS that never refreshes answers to a request's session timer
/// (RFC 4028 §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UasTerms {
    /// No timer on this session: the request asked for none, the UAC does not
    /// support timers (it would leave the refreshing to us), or it asked us to
    /// refresh. The answer carries no `Session-Expires`.
    NoTimer,
    /// Run a timer with the UAC refreshing: answer with this `Session-Expires`
    /// (always `refresher=uac`) and `Require: timer`, and end the session when
    /// no refresh came within [`expires_after`].
    Run(SessionExpires),
    /// The interval asked for is below our minimum: answer [`TOO_SMALL`] with
    /// `Min-SE` set to this.
    TooSmall(MinSe),
    /// The header is malformed: answer 400.
    Malformed(SessionTimerError),
}

/// The terms a UAS that never refreshes offers for a request (an INVITE or a
/// refresh) whose UAC sent `headers`, never accepting an interval below
/// `min_secs` (itself at least [`MIN_SECS`]).
pub fn uas_terms(headers: &Headers, min_secs: u32) -> UasTerms {
    let min_secs = min_secs.max(MIN_SECS);
    let asked = match SessionExpires::from_headers(headers) {
        None => return UasTerms::NoTimer,
        Some(Err(e)) => return UasTerms::Malformed(e),
        Some(Ok(asked)) => asked,
    };
    if let Some(Err(e)) = MinSe::from_headers(headers) {
        return UasTerms::Malformed(e);
    }
    if asked.secs < min_secs {
        return UasTerms::TooSmall(MinSe { secs: min_secs });
    }
    // A UAC without timer support cannot refresh for us, and a UAC that wants
    // us to refresh asks for what this UAS never does: no timer in both cases
    // (the session then simply has none, which RFC 4028 §9 allows).
    if !supported(headers) || asked.refresher == Some(Refresher::Uas) {
        return UasTerms::NoTimer;
    }
    UasTerms::Run(SessionExpires {
        secs: asked.secs,
        refresher: Some(Refresher::Uac),
    })
}

/// The terms a UAS that may refresh itself offers for a request (an INVITE, a
/// re-INVITE or an UPDATE) whose UAC sent `headers` (RFC 4028 §9): the interval
/// asked for (never below `min_secs`, itself at least [`MIN_SECS`]), refreshed by
/// the UAC when it supports timers and did not ask otherwise, else by us
/// (`refresher=uas`: a UAC without timer support cannot refresh).
pub fn refreshing_uas_terms(headers: &Headers, min_secs: u32) -> UasTerms {
    let min_secs = min_secs.max(MIN_SECS);
    let asked = match SessionExpires::from_headers(headers) {
        None => return UasTerms::NoTimer,
        Some(Err(e)) => return UasTerms::Malformed(e),
        Some(Ok(asked)) => asked,
    };
    if let Some(Err(e)) = MinSe::from_headers(headers) {
        return UasTerms::Malformed(e);
    }
    if asked.secs < min_secs {
        return UasTerms::TooSmall(MinSe { secs: min_secs });
    }
    let refresher = match asked.refresher {
        _ if !supported(headers) => Refresher::Uas,
        Some(named) => named,
        None => Refresher::Uac,
    };
    UasTerms::Run(SessionExpires {
        secs: asked.secs,
        refresher: Some(refresher),
    })
}

fn lists_timer(headers: &Headers, name: &str) -> bool {
    headers::list(headers, name)
        .iter()
        .any(|tag| tag.eq_ignore_ascii_case(OPTION_TAG))
}

/// The value of a header that may appear at most once.
fn one_header<'a>(
    headers: &'a Headers,
    name: &'static str,
) -> Option<Result<&'a str, SessionTimerError>> {
    let mut values = headers::values(headers, name);
    let first = values.next()?;
    if values.next().is_some() {
        return Some(Err(SessionTimerError::Repeated(name)));
    }
    Some(Ok(first))
}

fn parse_seconds(header: &'static str, text: &str) -> Result<u32, SessionTimerError> {
    let text = text.trim();
    let bad = || SessionTimerError::Seconds {
        header,
        value: text.to_owned(),
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    text.parse().map_err(|_| bad())
}

/// `name` or `name=value` with a token name (whitespace around both trimmed).
fn split_param<'a>(
    header: &'static str,
    param: &'a str,
) -> Result<(&'a str, Option<&'a str>), SessionTimerError> {
    let (name, value) = match param.split_once('=') {
        Some((name, value)) => (name.trim(), Some(value.trim())),
        None => (param.trim(), None),
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
    };
    let value_ok =
        value.is_none_or(|v| token(v) || (v.len() >= 2 && v.starts_with('"') && v.ends_with('"')));
    if !token(name) || !value_ok {
        return Err(SessionTimerError::Parameter {
            header,
            value: param.trim().to_owned(),
        });
    }
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    fn headers(lines: &[(&str, &str)]) -> Headers {
        let mut h = Headers::default();
        for (name, value) in lines {
            headers::push(&mut h, name, *value);
        }
        h
    }

    #[test]
    fn parses_the_forms_rfc_4028_shows() {
        assert_eq!(
            SessionExpires::parse("4000;refresher=uac").unwrap(),
            SessionExpires {
                secs: 4000,
                refresher: Some(Refresher::Uac)
            }
        );
        assert_eq!(
            SessionExpires::parse(" 1800 ; Refresher = UAS ; x-foo=bar").unwrap(),
            SessionExpires {
                secs: 1800,
                refresher: Some(Refresher::Uas)
            }
        );
        assert_eq!(
            SessionExpires::parse("90").unwrap(),
            SessionExpires {
                secs: 90,
                refresher: None
            }
        );
        assert_eq!(MinSe::parse("90;lr").unwrap(), MinSe { secs: 90 });
    }

    #[test]
    fn refuses_what_the_grammar_does_not_allow() {
        for bad in [
            "",
            ";refresher=uac",
            "-90",
            "9 0",
            "0x5a",
            "4294967296",
            "90;refresher=proxy",
            "90;refresher",
            "90;refresher=uac;refresher=uas",
            "90;=x",
            "90;a b",
        ] {
            assert!(SessionExpires::parse(bad).is_err(), "{bad:?}");
        }
        assert!(MinSe::parse("ninety").is_err());
        assert!(MinSe::parse("").is_err());
    }

    #[test]
    fn formats_what_it_parses() {
        let se = SessionExpires {
            secs: MIN_SECS,
            refresher: Some(Refresher::Uac),
        };
        assert_eq!(se.to_string(), "90;refresher=uac");
        assert_eq!(MinSe { secs: 90 }.to_string(), "90");
    }

    #[test]
    fn finds_the_compact_form_and_refuses_repeats() {
        let h = headers(&[("x", "120;refresher=uac")]);
        assert_eq!(SessionExpires::from_headers(&h).unwrap().unwrap().secs, 120);
        let h = headers(&[("Session-Expires", "120"), ("x", "130")]);
        assert_eq!(
            SessionExpires::from_headers(&h).unwrap(),
            Err(SessionTimerError::Repeated(HEADER))
        );
        assert!(SessionExpires::from_headers(&Headers::default()).is_none());
    }

    #[test]
    fn timing_follows_section_10() {
        assert_eq!(refresh_after(90), Duration::from_secs(45));
        assert_eq!(refresh_after(91), Duration::from_millis(45_500));
        assert_eq!(expires_after(90), Duration::from_secs(60));
        assert_eq!(expires_after(1800), Duration::from_secs(1768));
        assert_eq!(expires_after(0), Duration::ZERO);
        // The refresh always comes before the other side gives up.
        for secs in [MIN_SECS, 120, 600, 1800, u32::MAX] {
            assert!(refresh_after(secs) < expires_after(secs), "{secs}");
        }
    }

    #[test]
    fn a_uas_that_never_refreshes_picks_its_terms() {
        let supported = ("Supported", "replaces, timer");
        assert_eq!(
            uas_terms(&headers(&[supported, ("x", "90;refresher=uac")]), MIN_SECS),
            UasTerms::Run(SessionExpires {
                secs: 90,
                refresher: Some(Refresher::Uac)
            })
        );
        // No refresher named: the UAC refreshes.
        assert_eq!(
            uas_terms(&headers(&[("k", "timer"), (HEADER, "1800")]), MIN_SECS),
            UasTerms::Run(SessionExpires {
                secs: 1800,
                refresher: Some(Refresher::Uac)
            })
        );
        assert_eq!(
            uas_terms(
                &headers(&[supported, (HEADER, "60"), (MIN_SE_HEADER, "60")]),
                MIN_SECS
            ),
            UasTerms::TooSmall(MinSe { secs: 90 })
        );
        assert_eq!(
            uas_terms(&headers(&[supported, (HEADER, "100")]), 120),
            UasTerms::TooSmall(MinSe { secs: 120 })
        );
        assert_eq!(
            uas_terms(&headers(&[supported]), MIN_SECS),
            UasTerms::NoTimer
        );
        assert_eq!(
            uas_terms(&headers(&[(HEADER, "90;refresher=uac")]), MIN_SECS),
            UasTerms::NoTimer,
            "a UAC without timer support cannot refresh"
        );
        assert_eq!(
            uas_terms(
                &headers(&[supported, (HEADER, "90;refresher=uas")]),
                MIN_SECS
            ),
            UasTerms::NoTimer,
            "this UAS never refreshes"
        );
        assert!(matches!(
            uas_terms(&headers(&[supported, (HEADER, "soon")]), MIN_SECS),
            UasTerms::Malformed(_)
        ));
        assert!(matches!(
            uas_terms(
                &headers(&[supported, (HEADER, "90"), (MIN_SE_HEADER, "x")]),
                MIN_SECS
            ),
            UasTerms::Malformed(_)
        ));
        assert!(required(&headers(&[("Require", "timer")])));
        assert!(!required(&headers(&[supported])));
    }

    #[test]
    fn a_uas_that_may_refresh_takes_what_rfc_4028_section_9_gives_it() {
        let run = |secs, refresher| {
            UasTerms::Run(SessionExpires {
                secs,
                refresher: Some(refresher),
            })
        };
        let supported = ("Supported", "timer");
        assert_eq!(
            refreshing_uas_terms(&headers(&[supported, (HEADER, "120")]), MIN_SECS),
            run(120, Refresher::Uac)
        );
        assert_eq!(
            refreshing_uas_terms(
                &headers(&[supported, (HEADER, "90;refresher=uas")]),
                MIN_SECS
            ),
            run(90, Refresher::Uas)
        );
        assert_eq!(
            refreshing_uas_terms(&headers(&[(HEADER, "90;refresher=uac")]), MIN_SECS),
            run(90, Refresher::Uas),
            "a UAC without timer support leaves the refreshing to us"
        );
        assert_eq!(
            refreshing_uas_terms(&headers(&[supported, (HEADER, "89")]), MIN_SECS),
            UasTerms::TooSmall(MinSe { secs: 90 })
        );
        assert_eq!(
            refreshing_uas_terms(&headers(&[supported]), MIN_SECS),
            UasTerms::NoTimer
        );
        assert!(matches!(
            refreshing_uas_terms(&headers(&[supported, (HEADER, "x")]), MIN_SECS),
            UasTerms::Malformed(_)
        ));
    }

    fn any_refresher() -> impl Strategy<Value = Option<Refresher>> {
        prop_oneof![
            Just(None),
            Just(Some(Refresher::Uac)),
            Just(Some(Refresher::Uas))
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn parsing_never_panics(text in ".{0,80}") {
            let _ = SessionExpires::parse(&text);
            let _ = MinSe::parse(&text);
            let h = headers(&[(HEADER, text.as_str()), ("Supported", "timer")]);
            let _ = uas_terms(&h, MIN_SECS);
        }

        #[test]
        fn header_like_text_never_panics(text in "[0-9 ;=a-zA-Z\"]{0,40}") {
            let _ = SessionExpires::parse(&text);
            let _ = MinSe::parse(&text);
        }

        #[test]
        fn values_round_trip(secs in any::<u32>(), refresher in any_refresher()) {
            let se = SessionExpires { secs, refresher };
            prop_assert_eq!(SessionExpires::parse(&se.to_string()), Ok(se));
            let min = MinSe { secs };
            prop_assert_eq!(MinSe::parse(&min.to_string()), Ok(min));
        }

        #[test]
        fn whatever_parses_formats_to_the_same_value(text in "[0-9]{1,6}(;[a-z]{1,9}(=[a-z0-9]{1,4})?){0,3}") {
            if let Ok(se) = SessionExpires::parse(&text) {
                prop_assert_eq!(SessionExpires::parse(&se.to_string()), Ok(se));
            }
        }

        #[test]
        fn the_refresh_comes_before_the_expiry(secs in MIN_SECS..=u32::MAX) {
            prop_assert!(refresh_after(secs) < expires_after(secs));
        }
    }
}
