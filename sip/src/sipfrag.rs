//! `message/sipfrag` bodies (RFC 3420) as the NOTIFYs of a REFER carry them
//! (RFC 3515 §2.4.5): a status line, perhaps followed by header lines.
//!
//! rsipstack's `ReferStatus::parse()` returns `None` for real NOTIFYs and its
//! `notify_refer` writes reason phrases in Debug form ("503 ServiceUnavailable");
//! this module parses tolerantly and builds with the standard reason phrase.

/// The Content-Type of a sipfrag body.
pub const CONTENT_TYPE: &str = "message/sipfrag;version=2.0";

/// Longest status line we look at, in bytes (also as text); a sipfrag status
/// line is short.
const MAX_STATUS_LINE: usize = 1024;

/// The status line of a sipfrag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    /// The status code, 100 to 699.
    pub code: u16,
    /// The reason phrase as sent (may be empty).
    pub reason: String,
}

/// Why a sipfrag body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SipfragError {
    /// The body holds no line at all.
    #[error("empty sipfrag body")]
    Empty,
    /// The first line is not `SIP/2.0 <code> <reason>`.
    #[error("sipfrag does not start with a SIP/2.0 status line")]
    NotAStatusLine,
    /// The status code is not three digits from 100 to 699.
    #[error("sipfrag status code {0:?} is not 100-699")]
    BadCode(String),
}

/// Reads the status line of a sipfrag body. Leading blank lines, any line
/// ending (CRLF or LF), extra spaces, a lower-case `sip/2.0`, a missing reason
/// and any header lines after the status line are tolerated.
pub fn parse(body: &[u8]) -> Result<StatusLine, SipfragError> {
    let first = body
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .find(|line| !line.iter().all(u8::is_ascii_whitespace))
        .ok_or(SipfragError::Empty)?;
    let first = &first[..first.len().min(MAX_STATUS_LINE)];
    let mut line = String::from_utf8_lossy(first).into_owned();
    // Each byte that is not UTF-8 became a three-byte U+FFFD: cut the text to
    // the limit too, so that a reason we read always fits the status line we
    // would write with it (and reads back the same).
    line.truncate(line.floor_char_boundary(MAX_STATUS_LINE));
    let line = line.trim();
    let rest = line
        .get(..7)
        .filter(|v| v.eq_ignore_ascii_case("SIP/2.0"))
        .map(|_| &line[7..])
        .ok_or(SipfragError::NotAStatusLine)?;
    if !rest.starts_with([' ', '\t']) {
        return Err(SipfragError::NotAStatusLine);
    }
    let rest = rest.trim_start();
    let (code_text, reason) = rest
        .split_once([' ', '\t'])
        .map_or((rest, ""), |(c, r)| (c, r.trim()));
    let code = code_text
        .parse::<u16>()
        .ok()
        .filter(|c| code_text.len() == 3 && (100..=699).contains(c))
        .ok_or_else(|| SipfragError::BadCode(code_text.chars().take(16).collect()))?;
    Ok(StatusLine {
        code,
        reason: reason.to_owned(),
    })
}

/// The standard reason phrase of `code` (RFC 3261 and its extensions), or a
/// phrase naming its class for codes without one.
pub fn reason_phrase(code: u16) -> &'static str {
    KNOWN.iter().find(|(known, _)| *known == code).map_or_else(
        || match code / 100 {
            1 => "Provisional",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
        |(_, text)| text,
    )
}

/// The status codes with a standard reason phrase, worded as rsipstack's
/// `StatusCode::text` words them (the tests check that they agree).
const KNOWN: &[(u16, &str)] = &[
    (100, "Trying"),
    (180, "Ringing"),
    (181, "Call Is Being Forwarded"),
    (182, "Queued"),
    (183, "Session Progress"),
    (199, "Early Dialog Terminated"),
    (200, "OK"),
    (202, "Accepted"),
    (204, "No Notification"),
    (300, "Multiple Choices"),
    (301, "Moved Permanently"),
    (302, "Moved Temporarily"),
    (305, "Use Proxy"),
    (380, "Alternative Service"),
    (400, "Bad Request"),
    (401, "Unauthorized"),
    (402, "Payment Required"),
    (403, "Forbidden"),
    (404, "Not Found"),
    (405, "Method Not Allowed"),
    (406, "Not Acceptable"),
    (407, "Proxy Authentication Required"),
    (408, "Request Timeout"),
    (409, "Conflict"),
    (410, "Gone"),
    (411, "Length Required"),
    (412, "Conditional Request Failed"),
    (413, "Request Entity Too Large"),
    (414, "Request-URI Too Long"),
    (415, "Unsupported Media Type"),
    (416, "Unsupported URI Scheme"),
    (417, "Unknown Resource-Priority"),
    (420, "Bad Extension"),
    (421, "Extension Required"),
    (422, "Session Interval Too Small"),
    (423, "Interval Too Brief"),
    (424, "Bad Location Information"),
    (428, "Use Identity Header"),
    (429, "Provide Referrer Identity"),
    (433, "Anonymity Disallowed"),
    (436, "Bad Identity-Info"),
    (437, "Unsupported Certificate"),
    (438, "Invalid Identity Header"),
    (439, "First Hop Lacks Outbound Support"),
    (440, "Max-Breadth Exceeded"),
    (469, "Bad Info Package"),
    (470, "Consent Needed"),
    (480, "Temporarily Unavailable"),
    (481, "Call/Transaction Does Not Exist"),
    (482, "Loop Detected"),
    (483, "Too Many Hops"),
    (484, "Address Incomplete"),
    (485, "Ambiguous"),
    (486, "Busy Here"),
    (487, "Request Terminated"),
    (488, "Not Acceptable Here"),
    (489, "Bad Event"),
    (491, "Request Pending"),
    (493, "Undecipherable"),
    (494, "Security Agreement Required"),
    (500, "Server Internal Error"),
    (501, "Not Implemented"),
    (502, "Bad Gateway"),
    (503, "Service Unavailable"),
    (504, "Server Time-out"),
    (505, "Version Not Supported"),
    (513, "Message Too Large"),
    (580, "Precondition Failure"),
    (600, "Busy Everywhere"),
    (603, "Decline"),
    (604, "Does Not Exist Anywhere"),
    (606, "Not Acceptable"),
    (607, "Unwanted"),
];

/// A sipfrag body for `code` with its standard reason phrase, e.g.
/// `SIP/2.0 503 Service Unavailable` followed by CRLF.
pub fn build(code: u16) -> String {
    build_with_reason(code, reason_phrase(code))
}

/// A sipfrag body for `code` with the given reason phrase (line breaks in it
/// are replaced by spaces so the body stays one status line).
pub fn build_with_reason(code: u16, reason: &str) -> String {
    let reason: String = reason
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    format!("SIP/2.0 {code} {}\r\n", reason.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::sip::StatusCode;

    #[test]
    fn parses_status_lines_with_headers_after_them() {
        let body = b"SIP/2.0 180 Ringing\r\nContact: <sip:bob@home.example>\r\n\r\n";
        assert_eq!(
            parse(body).unwrap(),
            StatusLine {
                code: 180,
                reason: "Ringing".into()
            }
        );
        let body = b"\r\n  sip/2.0  503   Service Unavailable  \nRetry-After: 5\n";
        let line = parse(body).unwrap();
        assert_eq!(
            (line.code, line.reason.as_str()),
            (503, "Service Unavailable")
        );
        assert_eq!(parse(b"SIP/2.0 200").unwrap().reason, "");
        assert_eq!(parse(b"SIP/2.0 100 Trying").unwrap().code, 100);
    }

    #[test]
    fn reads_rsipstack_debug_form_but_never_writes_it() {
        // What rsipstack's notify_refer sends: readable, code is what matters.
        assert_eq!(parse(b"SIP/2.0 503 ServiceUnavailable").unwrap().code, 503);
        assert_eq!(build(503), "SIP/2.0 503 Service Unavailable\r\n");
        assert_eq!(build(486), "SIP/2.0 486 Busy Here\r\n");
        assert_eq!(build(200), "SIP/2.0 200 OK\r\n");
        assert_eq!(build(499), "SIP/2.0 499 Client Error\r\n");
        assert_eq!(
            build_with_reason(180, "Ring\r\ning"),
            "SIP/2.0 180 Ring  ing\r\n"
        );
    }

    #[test]
    fn refuses_what_is_not_a_status_line() {
        assert_eq!(parse(b""), Err(SipfragError::Empty));
        assert_eq!(parse(b"\r\n \r\n"), Err(SipfragError::Empty));
        assert_eq!(
            parse(b"INVITE sip:bob@home.example SIP/2.0\r\n"),
            Err(SipfragError::NotAStatusLine)
        );
        assert_eq!(
            parse(b"SIP/2.0180 Ringing"),
            Err(SipfragError::NotAStatusLine)
        );
        assert_eq!(
            parse(b"SIP/3.0 180 Ringing"),
            Err(SipfragError::NotAStatusLine)
        );
        for bad in [
            "SIP/2.0 99 Low",
            "SIP/2.0 700 High",
            "SIP/2.0 0180 Pad",
            "SIP/2.0 x Ringing",
        ] {
            assert!(
                matches!(parse(bad.as_bytes()), Err(SipfragError::BadCode(_))),
                "{bad}"
            );
        }
    }

    /// Found by reviewing the `sip_headers` fuzz target's property: bytes that
    /// are not UTF-8 grow as text, so a reason read from a 1024-byte line did
    /// not fit the line written with it and read back shorter.
    #[test]
    fn a_reason_read_reads_back_from_the_line_written_with_it() {
        let mut body = b"SIP/2.0 200 ".to_vec();
        body.extend(std::iter::repeat_n(0xff, 2000));
        let line = parse(&body).unwrap();
        assert!(
            line.reason.len() <= MAX_STATUS_LINE,
            "{}",
            line.reason.len()
        );
        assert_eq!(
            parse(build_with_reason(line.code, &line.reason).as_bytes()),
            Ok(line)
        );
    }

    #[test]
    fn known_phrases_match_rsipstack() {
        for (code, text) in KNOWN {
            let status = StatusCode::try_from((*code, "")).unwrap();
            assert_eq!(status.code(), *code);
            assert_eq!(status.text(), *text, "{code}");
            assert_eq!(reason_phrase(*code), *text);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn built_bodies_parse_back(code in 100u16..=699, reason in "[ -~]{0,40}") {
            let line = parse(build_with_reason(code, &reason).as_bytes()).unwrap();
            proptest::prop_assert_eq!(line.code, code);
            proptest::prop_assert_eq!(line.reason, reason.trim());
            let line = parse(build(code).as_bytes()).unwrap();
            proptest::prop_assert_eq!(line.reason, reason_phrase(code));
        }
    }
}
