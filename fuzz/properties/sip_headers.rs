//! The `sip_headers` fuzz target's properties for splitdial-sip's parsers of
//! header values and bodies from the network, in one place: the fuzz target
//! (`fuzz/fuzz_targets/sip_headers.rs`) and the stable replay of its seeds in CI
//! (`sip/tests/fuzz_seeds.rs`) both include this file. Every check panics on a
//! violation.
//!
//! An input's first byte picks the parser ([`Parser::pick`]), the rest is the
//! value. The `Authorization` parser is sip-server's; its properties are in
//! `digest_credentials.rs` next to this file.

use splitdial_sip::event::Event;
use splitdial_sip::session_timer::{self, MinSe, SessionExpires};
use splitdial_sip::sipfrag::{self, StatusLine};
use splitdial_sip::subscription::SubscriptionState;
use splitdial_sip::uri_match::SipUri;

/// The parser an input is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parser {
    /// `sipfrag::parse`, a REFER's NOTIFY body (raw bytes).
    Sipfrag,
    /// `Event::parse`.
    Event,
    /// `SubscriptionState::parse`.
    SubscriptionState,
    /// `SessionExpires::parse`.
    SessionExpires,
    /// `MinSe::parse`.
    MinSe,
    /// `SipUri::parse` and `equivalent` (a `Refer-To` against a token's target).
    Uri,
    /// sip-server's digest `Credentials::parse` (`Authorization`).
    Authorization,
}

impl Parser {
    /// Every parser, in the order a first byte other than a letter below picks
    /// them (its value modulo 7).
    const ALL: [Parser; 7] = [
        Parser::Sipfrag,
        Parser::Event,
        Parser::SubscriptionState,
        Parser::SessionExpires,
        Parser::MinSe,
        Parser::Uri,
        Parser::Authorization,
    ];

    /// The parser a first byte picks: the seeds use a letter (`f` sipfrag, `e`
    /// Event, `s` Subscription-State, `x` Session-Expires, `m` Min-SE, `u` URI,
    /// `a` Authorization) so that they stay readable; any other byte picks by
    /// its value.
    pub fn pick(byte: u8) -> Self {
        match byte {
            b'f' => Parser::Sipfrag,
            b'e' => Parser::Event,
            b's' => Parser::SubscriptionState,
            b'x' => Parser::SessionExpires,
            b'm' => Parser::MinSe,
            b'u' => Parser::Uri,
            b'a' => Parser::Authorization,
            other => Self::ALL[usize::from(other) % Self::ALL.len()],
        }
    }
}

/// Splits an input into the parser its first byte picks and the value (`None`
/// for an empty input).
pub fn split(data: &[u8]) -> Option<(Parser, &[u8])> {
    let (&first, value) = data.split_first()?;
    Some((Parser::pick(first), value))
}

/// Checks the properties of the parser an input picks; header values are read
/// as text the way a SIP stack hands them over (lossy UTF-8). `Authorization`
/// inputs are left to `digest_credentials::check`.
pub fn check(data: &[u8]) {
    let Some((parser, value)) = split(data) else {
        return;
    };
    let text = String::from_utf8_lossy(value);
    match parser {
        Parser::Sipfrag => check_sipfrag(value),
        Parser::Event => {
            if let Ok(event) = Event::parse(&text) {
                let written = event.to_string();
                assert_eq!(Event::parse(&written), Ok(event), "{written:?}");
            }
        }
        Parser::SubscriptionState => {
            if let Ok(state) = SubscriptionState::parse(&text) {
                let written = state.to_string();
                assert_eq!(SubscriptionState::parse(&written), Ok(state), "{written:?}");
            }
        }
        Parser::SessionExpires => {
            if let Ok(se) = SessionExpires::parse(&text) {
                let written = se.to_string();
                assert_eq!(SessionExpires::parse(&written), Ok(se), "{written:?}");
                // Whatever interval arrives, the timer arithmetic holds.
                let _ = session_timer::refresh_after(se.secs);
                let _ = session_timer::expires_after(se.secs);
            }
        }
        Parser::MinSe => {
            if let Ok(min) = MinSe::parse(&text) {
                let written = min.to_string();
                assert_eq!(MinSe::parse(&written), Ok(min), "{written:?}");
            }
        }
        Parser::Uri => check_uri(&text),
        Parser::Authorization => {}
    }
}

/// A status line we read prints (with the standard builder) and reads back
/// the same, except that a lone CR inside the reason is written as a space
/// (the builder keeps the body one line).
fn check_sipfrag(body: &[u8]) {
    let Ok(line) = sipfrag::parse(body) else {
        return;
    };
    assert!((100..=699).contains(&line.code), "{line:?}");
    let written = sipfrag::build_with_reason(line.code, &line.reason);
    let expected = StatusLine {
        code: line.code,
        reason: line.reason.replace('\r', " "),
    };
    assert_eq!(
        sipfrag::parse(written.as_bytes()),
        Ok(expected),
        "{written:?}"
    );
}

/// `SipUri` has no printer: a URI is equivalent to itself, to itself in angle
/// brackets (a name-addr), and equivalence is symmetric. A line break splits
/// the value into two URIs to compare.
fn check_uri(text: &str) {
    let (a, b) = text.split_once('\n').unwrap_or((text, text));
    let parsed_a = SipUri::parse(a);
    if let Ok(uri) = &parsed_a {
        assert!(uri.equivalent(uri), "{uri:?}");
        if !a.contains(['<', '>']) {
            let bracketed = format!("<{}>", a.trim());
            assert_eq!(SipUri::parse(&bracketed).as_ref(), Ok(uri), "{bracketed:?}");
        }
    }
    if let (Ok(a), Ok(b)) = (parsed_a, SipUri::parse(b)) {
        assert_eq!(a.equivalent(&b), b.equivalent(&a), "{a:?} {b:?}");
    }
}
