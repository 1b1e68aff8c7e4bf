//! Screening of requests from the network before any element acts on them.
//!
//! rsipstack's parser is lenient: it keeps unknown or malformed header values as
//! text and parses them lazily. That lets us look at a message that is wrong in
//! detail and answer with a precise 4xx (RFC 3261 §16.3 for proxies; the invalid
//! and application-level cases of RFC 4475) instead of dropping it. What cannot be
//! parsed at all, or lacks what a response needs (Via, From, To, Call-ID, CSeq), is
//! dropped: there is nobody to answer.

use crate::headers;
use rsipstack::sip::{Method, Request, Scheme, SipMessage, Version, typed};

/// Largest message we accept over UDP or as one TCP frame.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Most header lines a message may carry.
pub const MAX_HEADER_LINES: usize = 256;
/// Largest CSeq sequence number (RFC 3261 §8.1.1.5: less than 2**31).
pub const MAX_CSEQ: u32 = (1 << 31) - 1;

/// Why a request is refused, and with which status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The status code to answer (4xx or 505).
    pub status: u16,
    /// A short human-readable reason, sent as the reason phrase.
    pub reason: String,
    /// Extension names to list in `Unsupported` (for 420).
    pub unsupported: Vec<String>,
}

impl Rejection {
    fn new(status: u16, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
            unsupported: Vec::new(),
        }
    }
}

/// What to do with bytes that arrived from the network.
#[derive(Debug)]
pub enum Verdict {
    /// A well-formed message to act on.
    Accept(Box<SipMessage>),
    /// A request that parsed far enough to answer, but is invalid: answer it.
    Reject(Box<Request>, Rejection),
    /// Nothing can be answered: drop it (the reason is for a debug log line).
    Drop(String),
}

/// Parses and screens one message (a UDP datagram or one TCP frame).
pub fn screen_bytes(bytes: &[u8]) -> Verdict {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Verdict::Drop(format!("message of {} bytes is too large", bytes.len()));
    }
    let message = match SipMessage::try_from(bytes) {
        Ok(message) => message,
        Err(e) => return Verdict::Drop(format!("unparseable: {e}")),
    };
    // rsipstack's parser forgives what only the raw bytes show: extra spaces in
    // the Request-Line, `<>` around the Request-URI (RFC 4475 §3.1.2.6/7), and a
    // header line that is not UTF-8 (it silently ends the header section there).
    let raw_problem = raw_request_problem(bytes);
    match (screen_message(message), raw_problem) {
        (Verdict::Accept(message), Some(reason)) => match *message {
            SipMessage::Request(request) => {
                Verdict::Reject(Box::new(request), Rejection::new(400, reason))
            }
            response @ SipMessage::Response(_) => Verdict::Accept(Box::new(response)),
        },
        (verdict, _) => verdict,
    }
}

/// What is wrong with a request's raw Request-Line or header bytes, if anything
/// (responses are not looked at).
pub fn raw_request_problem(bytes: &[u8]) -> Option<&'static str> {
    let head_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(bytes.len());
    let head = &bytes[..head_end];
    let line_end = head
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(head.len());
    let line = &head[..line_end];
    if line.starts_with(b"SIP/") {
        return None;
    }
    if std::str::from_utf8(head).is_err() {
        return Some("Bad Header Encoding");
    }
    // Request-Line = Method SP Request-URI SP SIP-Version (RFC 3261 §25.1).
    let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let well_formed = parts.len() == 3
        && parts.iter().all(|p| !p.is_empty())
        && !line
            .iter()
            .any(|&b| b.is_ascii_control() || b == b'<' || b == b'>' || b == b'"');
    (!well_formed).then_some("Bad Request-Line")
}

/// Screens a parsed message: responses are checked only for what routing needs.
pub fn screen_message(message: SipMessage) -> Verdict {
    // rsipstack's TCP framing lets a frame past its own 64 KiB limit through when
    // it arrives complete in few reads: measure the parsed message again.
    let size = encoded_size(&message);
    if size > MAX_MESSAGE_BYTES {
        return Verdict::Drop(format!("message of about {size} bytes is too large"));
    }
    match message {
        SipMessage::Request(request) => match answerable(&request) {
            Err(why) => Verdict::Drop(why),
            Ok(()) => match screen_request(&request) {
                Ok(()) => Verdict::Accept(Box::new(SipMessage::Request(request))),
                Err(rejection) => Verdict::Reject(Box::new(request), rejection),
            },
        },
        SipMessage::Response(response) => {
            let h = &response.headers;
            // RFC 3261 §7.2: Status-Code is three digits, 100 to 699.
            if !(100..=699).contains(&response.status_code.code()) {
                return Verdict::Drop("response with a status code outside 100-699".into());
            }
            let cseq_ok = headers::first(h, "CSeq").is_some_and(|v| typed::CSeq::parse(v).is_ok());
            if headers::count(h, "Via") == 0 || !cseq_ok {
                Verdict::Drop("response without Via or with a bad CSeq".into())
            } else if headers::count(h, "Content-Length") > 1 {
                Verdict::Drop("response with several Content-Length headers".into())
            } else {
                Verdict::Accept(Box::new(SipMessage::Response(response)))
            }
        }
    }
}

/// About the size of a message as sent: its header lines and body (the start
/// line is left out).
fn encoded_size(message: &SipMessage) -> usize {
    let (headers, body) = match message {
        SipMessage::Request(r) => (&r.headers, r.body.len()),
        SipMessage::Response(r) => (&r.headers, r.body.len()),
    };
    headers
        .iter()
        .map(|h| h.name().len() + h.value().len() + 4)
        .sum::<usize>()
        + body
}

/// Whether a response can be built for this request at all: one parseable top Via,
/// From, To, Call-ID and CSeq.
fn answerable(request: &Request) -> Result<(), String> {
    let h = &request.headers;
    let top_via = headers::list(h, "Via").into_iter().next();
    match top_via {
        Some(v) if typed::Via::parse(&v).is_ok() => {}
        Some(_) => return Err("top Via does not parse".into()),
        None => return Err("no Via".into()),
    }
    for name in ["From", "To", "Call-ID", "CSeq"] {
        if headers::count(h, name) == 0 {
            return Err(format!("no {name}"));
        }
    }
    Ok(())
}

/// Checks a request that can be answered; `Err` says which 4xx to send.
pub fn screen_request(request: &Request) -> Result<(), Rejection> {
    let h = &request.headers;
    if request.version != Version::V2 {
        return Err(Rejection::new(505, "Version Not Supported"));
    }
    if h.len() > MAX_HEADER_LINES {
        return Err(Rejection::new(400, "Too Many Headers"));
    }
    for name in ["From", "To", "Call-ID", "CSeq", "Max-Forwards"] {
        if headers::count(h, name) > 1 {
            return Err(Rejection::new(400, format!("Duplicate {name}")));
        }
    }
    // The uniqueness checks above make `first` the only value.
    let call_id = headers::first(h, "Call-ID").unwrap_or_default();
    if call_id.trim().is_empty() || call_id.chars().any(char::is_whitespace) {
        return Err(Rejection::new(400, "Bad Call-ID"));
    }
    check_cseq(request)?;
    check_content_length(request)?;
    check_max_forwards(request)?;
    check_addresses(request)?;
    check_top_via(request)?;
    // RFC 3261 §19.1.1: headers are not allowed in a Request-URI (and a proxy
    // must never turn them into a Route).
    if !request.uri.headers.is_empty() {
        return Err(Rejection::new(400, "Headers In Request-URI"));
    }
    match &request.uri.scheme {
        Some(Scheme::Sip | Scheme::Sips) => {}
        Some(Scheme::Other(s)) if s.eq_ignore_ascii_case("tel") => {}
        _ => return Err(Rejection::new(416, "Unsupported URI Scheme")),
    }
    let proxy_require: Vec<String> = headers::list(h, "Proxy-Require");
    if !proxy_require.is_empty() {
        return Err(Rejection {
            status: 420,
            reason: "Bad Extension".into(),
            unsupported: proxy_require,
        });
    }
    Ok(())
}

fn check_cseq(request: &Request) -> Result<(), Rejection> {
    let value = headers::first(&request.headers, "CSeq").unwrap_or_default();
    let cseq = typed::CSeq::parse(value).map_err(|_| Rejection::new(400, "Bad CSeq"))?;
    if cseq.seq > MAX_CSEQ {
        return Err(Rejection::new(400, "CSeq Out Of Range"));
    }
    // RFC 3261 §8.1.1.5: the CSeq method matches the request method.
    let method_text = value.split_whitespace().nth(1).unwrap_or_default();
    if cseq.method != request.method
        || !method_text.eq_ignore_ascii_case(&request.method.to_string())
    {
        return Err(Rejection::new(400, "CSeq Method Mismatch"));
    }
    Ok(())
}

fn check_content_length(request: &Request) -> Result<(), Rejection> {
    let h = &request.headers;
    match headers::count(h, "Content-Length") {
        0 | 1 => {}
        _ => return Err(Rejection::new(400, "Multiple Content-Length")),
    }
    if let Some(value) = headers::first(h, "Content-Length") {
        let declared: usize = value
            .trim()
            .parse()
            .map_err(|_| Rejection::new(400, "Bad Content-Length"))?;
        // The parser cuts the body at Content-Length; a shorter body means the
        // declared length ran past the end of the message.
        if declared > request.body.len() {
            return Err(Rejection::new(400, "Content-Length Exceeds Message"));
        }
    }
    Ok(())
}

fn check_max_forwards(request: &Request) -> Result<(), Rejection> {
    if let Some(value) = headers::first(&request.headers, "Max-Forwards") {
        match value.trim().parse::<u32>() {
            Ok(n) if n <= 255 => {}
            _ => return Err(Rejection::new(400, "Bad Max-Forwards")),
        }
    }
    Ok(())
}

/// Headers whose values are name-addr lists that a SIP element interprets.
const ADDRESS_HEADERS: [&str; 5] = ["From", "To", "Contact", "Route", "Record-Route"];

/// Whether every quoted string in `value` is closed (backslash escapes inside).
fn quotes_closed(value: &str) -> bool {
    let (mut quoted, mut escaped) = (false, false);
    for ch in value.chars() {
        match ch {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            _ => {}
        }
    }
    !quoted
}

fn check_addresses(request: &Request) -> Result<(), Rejection> {
    let h = &request.headers;
    for name in ADDRESS_HEADERS {
        if !headers::values(h, name).all(quotes_closed) {
            return Err(Rejection::new(400, format!("Unterminated Quote In {name}")));
        }
    }
    let from = headers::first(h, "From").unwrap_or_default();
    let from = typed::From::parse(from).map_err(|_| Rejection::new(400, "Bad From"))?;
    if from.tag().is_none() {
        return Err(Rejection::new(400, "Missing From Tag"));
    }
    let to = headers::first(h, "To").unwrap_or_default();
    let to = typed::To::parse(to).map_err(|_| Rejection::new(400, "Bad To"))?;
    // RFC 3261 §10.2: a REGISTER's To is the SIP or SIPS address-of-record.
    if request.method == Method::Register
        && !matches!(to.uri.scheme, Some(Scheme::Sip | Scheme::Sips))
    {
        return Err(Rejection::new(400, "Bad To URI"));
    }
    for uri in [&from.uri] {
        if !matches!(
            uri.scheme,
            Some(Scheme::Sip | Scheme::Sips) | Some(Scheme::Other(_))
        ) {
            return Err(Rejection::new(400, "Bad From URI"));
        }
    }
    Ok(())
}

fn check_top_via(request: &Request) -> Result<(), Rejection> {
    let top = headers::list(&request.headers, "Via")
        .into_iter()
        .next()
        .unwrap_or_default();
    let via = typed::Via::parse(&top).map_err(|_| Rejection::new(400, "Bad Via"))?;
    if via.version != Version::V2 {
        return Err(Rejection::new(400, "Bad Via Version"));
    }
    // RFC 3261 §8.1.1.7: only RFC 3261 branches (with the magic cookie) are
    // accepted; RFC 2543 transaction matching is not supported.
    let branch_ok = via
        .branch()
        .is_some_and(|b| b.to_string().starts_with("z9hG4bK") && b.to_string().len() > 7);
    if !branch_ok && request.method != Method::Ack {
        return Err(Rejection::new(400, "Via Branch Without Magic Cookie"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(head: &str, body: &str) -> Vec<u8> {
        format!("{head}\r\n\r\n{body}")
            .replace("\n", "\r\n")
            .replace("\r\r\n", "\r\n")
            .into_bytes()
    }

    const BASE: &str = "OPTIONS sip:home.example SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKabc
From: <sip:alice@home.example>;tag=1
To: <sip:home.example>
Call-ID: c1
CSeq: 1 OPTIONS
Max-Forwards: 70
Content-Length: 0";

    fn status_of(bytes: &[u8]) -> Option<u16> {
        match screen_bytes(bytes) {
            Verdict::Accept(_) => None,
            Verdict::Reject(_, r) => Some(r.status),
            Verdict::Drop(why) => panic!("dropped: {why}"),
        }
    }

    #[test]
    fn accepts_a_plain_request() {
        assert_eq!(status_of(&request(BASE, "")), None);
    }

    #[test]
    fn rejects_cseq_method_mismatch() {
        let m = BASE.replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE");
        assert_eq!(status_of(&request(&m, "")), Some(400));
    }

    #[test]
    fn rejects_content_length_past_the_end() {
        let m = BASE.replace("Content-Length: 0", "Content-Length: 50");
        assert_eq!(status_of(&request(&m, "short")), Some(400));
    }

    #[test]
    fn rejects_negative_and_double_content_length() {
        let m = BASE.replace("Content-Length: 0", "Content-Length: -5");
        assert_eq!(status_of(&request(&m, "")), Some(400));
        let m = format!("{BASE}\nl: 0");
        assert_eq!(status_of(&request(&m, "")), Some(400));
    }

    #[test]
    fn rejects_unknown_version_and_scheme() {
        let m = BASE.replace("home.example SIP/2.0", "home.example SIP/7.0");
        assert_eq!(status_of(&request(&m, "")), Some(505));
        let m = BASE.replace("OPTIONS sip:home.example", "OPTIONS http://home.example");
        assert!(matches!(
            screen_bytes(&request(&m, "")),
            Verdict::Reject(..) | Verdict::Drop(_)
        ));
    }

    #[test]
    fn rejects_proxy_require_with_unsupported() {
        let m = format!("{BASE}\nProxy-Require: foo, bar");
        match screen_bytes(&request(&m, "")) {
            Verdict::Reject(_, r) => {
                assert_eq!(r.status, 420);
                assert_eq!(r.unsupported, vec!["foo", "bar"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_overlarge_cseq_and_max_forwards() {
        let m = BASE.replace("CSeq: 1 OPTIONS", "CSeq: 4294967296 OPTIONS");
        assert_eq!(status_of(&request(&m, "")), Some(400));
        let m = BASE.replace("Max-Forwards: 70", "Max-Forwards: 300");
        assert_eq!(status_of(&request(&m, "")), Some(400));
    }

    #[test]
    fn rejects_branch_without_magic_cookie() {
        let m = BASE.replace("branch=z9hG4bKabc", "branch=abc");
        assert_eq!(status_of(&request(&m, "")), Some(400));
    }

    #[test]
    fn rejects_what_only_the_raw_request_line_shows() {
        let m = BASE.replace(
            "OPTIONS sip:home.example SIP/2.0",
            "OPTIONS <sip:home.example> SIP/2.0",
        );
        assert_eq!(status_of(&request(&m, "")), Some(400));
        let m = BASE.replace("sip:home.example SIP/2.0", "sip:home.example   SIP/2.0");
        assert_eq!(status_of(&request(&m, "")), Some(400));
        let m = BASE.replace("sip:home.example SIP/2.0", "sip:home.example\tSIP/2.0");
        assert!(!matches!(
            screen_bytes(&request(&m, "")),
            Verdict::Accept(_)
        ));
        let mut bytes = request(&format!("{BASE}\nSubject: caf\u{e9}"), "");
        let at = bytes.iter().position(|&b| b == 0xc3).unwrap();
        bytes.remove(at + 1);
        bytes[at] = 0xe9; // Latin-1, not UTF-8
        assert_eq!(status_of(&bytes), Some(400));
        // A response's status line is not a Request-Line.
        let resp = "SIP/2.0 200  OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert!(matches!(screen_bytes(resp.as_bytes()), Verdict::Accept(_)));
    }

    #[test]
    fn rejects_headers_in_the_request_uri_and_open_quotes() {
        let m = BASE.replace(
            "OPTIONS sip:home.example",
            "OPTIONS sip:bob@home.example?Route=%3Csip:example.com%3E",
        );
        assert_eq!(status_of(&request(&m, "")), Some(400));
        let m = BASE.replace(
            "To: <sip:home.example>",
            "To: \"Mr. J. User <sip:home.example>",
        );
        assert_eq!(status_of(&request(&m, "")), Some(400));
        let m = BASE.replace(
            "To: <sip:home.example>",
            r#"To: "a \" b" <sip:home.example>"#,
        );
        assert_eq!(status_of(&request(&m, "")), None);
    }

    #[test]
    fn rejects_a_register_to_a_non_sip_address_of_record() {
        let m = BASE
            .replace("OPTIONS", "REGISTER")
            .replace("To: <sip:home.example>", "To: <isbn:2983792873>");
        assert_eq!(status_of(&request(&m, "")), Some(400));
    }

    #[test]
    fn drops_parsed_messages_past_the_size_limit() {
        let big = format!("{BASE}\nX-Padding: {}", "p".repeat(MAX_MESSAGE_BYTES));
        let message = SipMessage::try_from(request(&big, "").as_slice()).unwrap();
        assert!(matches!(screen_message(message), Verdict::Drop(_)));
        let fits = format!(
            "{BASE}\nX-Padding: {}",
            "p".repeat(MAX_MESSAGE_BYTES - 1000)
        );
        let message = SipMessage::try_from(request(&fits, "").as_slice()).unwrap();
        assert!(matches!(screen_message(message), Verdict::Accept(_)));
    }

    #[test]
    fn drops_responses_with_impossible_status_codes() {
        for line in ["SIP/2.0 700 Far", "SIP/2.0 99 Low", "SIP/2.0 200 OK"] {
            let resp = format!(
                "{line}\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\nCSeq: 1 OPTIONS\r\n\r\n"
            );
            let accepted = matches!(screen_bytes(resp.as_bytes()), Verdict::Accept(_));
            assert_eq!(accepted, line.ends_with("OK"), "{line}");
        }
    }

    #[test]
    fn drops_what_cannot_be_answered() {
        let m = BASE.replace("Call-ID: c1\n", "");
        assert!(matches!(screen_bytes(&request(&m, "")), Verdict::Drop(_)));
        assert!(matches!(screen_bytes(b"\x00\x01garbage"), Verdict::Drop(_)));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let _ = screen_bytes(&bytes);
        }

        #[test]
        fn never_panics_on_mutated_requests(
            edits in proptest::collection::vec((0usize..400, proptest::num::u8::ANY), 1..12),
            cut in 0usize..400,
        ) {
            let mut bytes = request(BASE, "");
            for (at, byte) in edits {
                let len = bytes.len();
                bytes[at % len] = byte;
            }
            bytes.truncate(cut.max(1).min(bytes.len()));
            let _ = screen_bytes(&bytes);
        }
    }
}
