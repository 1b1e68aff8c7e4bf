//! INFO inside a call (RFC 6086): the legacy DTMF bodies without an Info-Package are
//! taken and their digit reported; an Info Package is refused with 469 (we take none);
//! any other body gets 415; an empty INFO is answered 200.

use rsipstack::sip::{Header, Request};
use splitdial_sip::headers;

use super::methods::{self, RECV_INFO};

/// What an INFO gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfoAnswer {
    /// 200: an empty INFO, or a legacy DTMF body with this digit (none when its body
    /// names no digit we know).
    Taken(Option<char>),
    /// 469 Bad Info Package, with our (empty) `Recv-Info`.
    BadInfoPackage,
    /// 415 Unsupported Media Type, with `Accept`.
    UnsupportedBody,
}

impl InfoAnswer {
    /// The status code of this answer.
    pub fn status(&self) -> u16 {
        match self {
            Self::Taken(_) => 200,
            Self::BadInfoPackage => 469,
            Self::UnsupportedBody => 415,
        }
    }

    /// The reason phrase of this answer.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Taken(_) => "OK",
            Self::BadInfoPackage => "Bad Info Package",
            Self::UnsupportedBody => "Unsupported Media Type",
        }
    }

    /// The headers this answer needs (RFC 6086 §4.2.2, RFC 3261 §21.4.13).
    pub fn headers(&self) -> Vec<Header> {
        match self {
            Self::Taken(_) => Vec::new(),
            Self::BadInfoPackage => vec![methods::header("Recv-Info", RECV_INFO)],
            Self::UnsupportedBody => vec![methods::accept()],
        }
    }
}

/// Decides the answer to an INFO.
pub fn answer(request: &Request) -> InfoAnswer {
    if headers::count(&request.headers, "Info-Package") > 0 {
        return InfoAnswer::BadInfoPackage;
    }
    if request.body.is_empty() {
        return InfoAnswer::Taken(None);
    }
    let content_type = headers::first(&request.headers, "Content-Type")
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let body = String::from_utf8_lossy(&request.body);
    match content_type.as_str() {
        "application/dtmf-relay" => InfoAnswer::Taken(dtmf_relay_digit(&body)),
        "application/dtmf" => InfoAnswer::Taken(digit(body.trim())),
        _ => InfoAnswer::UnsupportedBody,
    }
}

/// The `Signal=` of an `application/dtmf-relay` body (`Signal=5\r\nDuration=160`).
fn dtmf_relay_digit(body: &str) -> Option<char> {
    body.lines().find_map(|line| {
        let (name, value) = line.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("signal")
            .then(|| digit(value.trim()))
            .flatten()
    })
}

/// One DTMF key: `0`–`9`, `*`, `#`, `A`–`D` (the events 10 and 11 written as numbers
/// are `*` and `#`, RFC 4733).
fn digit(text: &str) -> Option<char> {
    match text {
        "10" => return Some('*'),
        "11" => return Some('#'),
        _ => {}
    }
    let mut chars = text.chars();
    let key = chars.next()?.to_ascii_uppercase();
    (chars.next().is_none() && matches!(key, '0'..='9' | '*' | '#' | 'A'..='D')).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(extra: &[(&str, &str)], body: &str) -> Request {
        let mut request = Request {
            method: rsipstack::sip::Method::Info,
            uri: rsipstack::sip::Uri::try_from("sip:talker@127.0.0.1").unwrap_or_default(),
            version: rsipstack::sip::Version::V2,
            headers: Default::default(),
            body: body.as_bytes().to_vec(),
        };
        for (name, value) in extra {
            headers::push(&mut request.headers, name, *value);
        }
        request
    }

    #[test]
    fn legacy_dtmf_is_taken_with_its_digit() {
        let relay = info(
            &[("Content-Type", "application/dtmf-relay")],
            "Signal=5\r\nDuration=160\r\n",
        );
        assert_eq!(answer(&relay), InfoAnswer::Taken(Some('5')));
        let star = info(
            &[("Content-Type", "application/dtmf-relay")],
            "Signal= *\r\n",
        );
        assert_eq!(answer(&star), InfoAnswer::Taken(Some('*')));
        let plain = info(&[("Content-Type", "Application/DTMF")], "11");
        assert_eq!(answer(&plain), InfoAnswer::Taken(Some('#')));
        let odd = info(&[("Content-Type", "application/dtmf")], "Z");
        assert_eq!(answer(&odd), InfoAnswer::Taken(None));
        assert_eq!(answer(&info(&[], "")), InfoAnswer::Taken(None));
    }

    #[test]
    fn a_package_or_another_body_is_refused() {
        let package = info(
            &[
                ("Info-Package", "foo"),
                ("Content-Type", "application/dtmf"),
            ],
            "1",
        );
        assert_eq!(answer(&package), InfoAnswer::BadInfoPackage);
        assert_eq!(answer(&package).status(), 469);
        let text = info(&[("Content-Type", "text/plain")], "hello");
        assert_eq!(answer(&text), InfoAnswer::UnsupportedBody);
        assert_eq!(answer(&text).headers().len(), 1);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever a far end puts in an INFO's body, the answer is one of the three,
        /// and a digit taken is always a DTMF key.
        #[test]
        fn any_info_body_gets_an_answer_and_only_dtmf_keys_are_taken(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            relay in proptest::prelude::any::<bool>(),
        ) {
            let kind = if relay { "application/dtmf-relay" } else { "application/dtmf" };
            let mut request = info(&[("Content-Type", kind)], "");
            request.body = body;
            if let InfoAnswer::Taken(Some(key)) = answer(&request) {
                proptest::prop_assert!(matches!(key, '0'..='9' | '*' | '#' | 'A'..='D'));
            }
        }
    }
}
