//! The `Event` header (RFC 6665 §8.2.1; compact form `o`), chiefly
//! `Event: refer;id=<CSeq>`: RFC 3515 §2.4.6 makes the NOTIFYs of a second (and
//! every later) REFER in one dialog carry the CSeq number of their REFER as `id`,
//! which rsipstack's `notify_refer` never writes.

use crate::headers;
use crate::subscription::{is_token, is_writable, split_params, unquote, write_value};
use rsipstack::sip::Headers;
use std::borrow::Cow;
use std::fmt;

/// The header's name.
pub const HEADER: &str = "Event";

/// The event package of REFER's implicit subscription.
pub const REFER: &str = "refer";

/// A parsed or to-be-sent `Event` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event package (and template), e.g. `refer` or `presence.winfo`.
    pub package: String,
    /// The `id` parameter, which tells subscriptions in one dialog apart.
    pub id: Option<String>,
    /// Other parameters, in order, as (name, value).
    pub params: Vec<(String, Option<String>)>,
}

/// Why an `Event` value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The value is empty.
    #[error("Event has no package")]
    Empty,
    /// The package is not a token.
    #[error("Event package {0:?} is not a token")]
    BadPackage(String),
    /// The `id` parameter is empty or not a token.
    #[error("Event id parameter is not a token")]
    BadId,
}

impl Event {
    /// `refer`, with `id=<cseq>` when given: pass the REFER's CSeq number for
    /// every REFER but the first in a dialog (RFC 3515 §2.4.6). Passing it for
    /// the first too is allowed and unambiguous.
    pub fn refer(cseq: Option<u32>) -> Self {
        Self {
            package: REFER.into(),
            id: cseq.map(|c| c.to_string()),
            params: Vec::new(),
        }
    }

    /// Parses a header value. The package is lower-cased (our comparisons are
    /// case-insensitive); whitespace around `;` and `=`, other parameters and
    /// quoted values are tolerated. Other parameters are kept unless their name
    /// is not a token or their value has control characters: those are ignored.
    pub fn parse(value: &str) -> Result<Self, EventError> {
        let mut parts = split_params(value).into_iter();
        let package = parts.next().unwrap_or_default();
        if package.is_empty() {
            return Err(EventError::Empty);
        }
        if !is_token(package) {
            return Err(EventError::BadPackage(package.chars().take(32).collect()));
        }
        let mut event = Self {
            package: package.to_ascii_lowercase(),
            id: None,
            params: Vec::new(),
        };
        for param in parts.filter(|p| !p.is_empty()) {
            let (name, value) = match param.split_once('=') {
                Some((n, v)) => (n.trim(), Some(unquote(v.trim()))),
                None => (param, None),
            };
            if name.eq_ignore_ascii_case("id") {
                match value.as_deref() {
                    Some(v) if is_token(v) && event.id.is_none() => event.id = Some(v.into()),
                    Some(v) if is_token(v) => {}
                    _ => return Err(EventError::BadId),
                }
            } else if is_token(name) && value.as_deref().is_none_or(is_writable) {
                event
                    .params
                    .push((name.to_owned(), value.map(Cow::into_owned)));
            }
            // Anything else is no parameter we could write back (RFC 6665
            // names are tokens): ignored, like a parameter we do not know.
        }
        Ok(event)
    }

    /// Reads the first `Event` (or `o`) header of a message, if present.
    pub fn from_headers(h: &Headers) -> Option<Result<Self, EventError>> {
        headers::first(h, HEADER).map(Self::parse)
    }

    /// Whether this is the `refer` package.
    pub fn is_refer(&self) -> bool {
        self.package == REFER
    }

    /// The REFER CSeq number this `refer` event names through `id`; `None` when
    /// there is no id (the dialog's first REFER) or it is not a number.
    pub fn refer_cseq(&self) -> Option<u32> {
        self.id.as_deref().and_then(|id| id.parse().ok())
    }

    /// Whether a NOTIFY with this event reports on the REFER whose CSeq number
    /// is `refer_cseq`, where `first_refer_cseq` is the dialog's first REFER (the
    /// one a NOTIFY without id belongs to, RFC 3515 §2.4.6).
    pub fn reports_on_refer(&self, refer_cseq: u32, first_refer_cseq: u32) -> bool {
        self.is_refer()
            && match &self.id {
                None => refer_cseq == first_refer_cseq,
                Some(_) => self.refer_cseq() == Some(refer_cseq),
            }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.package)?;
        if let Some(id) = &self.id {
            write!(f, ";id={id}")?;
        }
        for (name, value) in &self.params {
            write!(f, ";{name}")?;
            if let Some(v) = value {
                f.write_str("=")?;
                write_value(f, v)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_refer_events_with_and_without_id() {
        assert_eq!(Event::refer(None).to_string(), "refer");
        assert_eq!(
            Event::refer(Some(93_809_824)).to_string(),
            "refer;id=93809824"
        );
    }

    #[test]
    fn parses_ids_and_other_parameters() {
        let e = Event::parse("Refer ; ID = 7 ;foo=\"bar\";flag").unwrap();
        assert!(e.is_refer());
        assert_eq!(e.refer_cseq(), Some(7));
        assert_eq!(
            e.params,
            vec![("foo".into(), Some("bar".into())), ("flag".into(), None)]
        );
        let e = Event::parse("presence.winfo").unwrap();
        assert_eq!((e.package.as_str(), e.id), ("presence.winfo", None));
    }

    #[test]
    fn matches_notifies_to_their_refer() {
        let first = 1;
        let no_id = Event::parse("refer").unwrap();
        assert!(no_id.reports_on_refer(1, first));
        assert!(!no_id.reports_on_refer(2, first));
        let second = Event::refer(Some(2));
        assert!(second.reports_on_refer(2, first));
        assert!(!second.reports_on_refer(1, first));
        assert!(
            !Event::parse("dialog;id=2")
                .unwrap()
                .reports_on_refer(2, first)
        );
    }

    #[test]
    fn refuses_broken_values() {
        assert_eq!(Event::parse(""), Err(EventError::Empty));
        assert!(matches!(
            Event::parse("re fer"),
            Err(EventError::BadPackage(_))
        ));
        assert_eq!(Event::parse("refer;id="), Err(EventError::BadId));
        assert_eq!(Event::parse("refer;id"), Err(EventError::BadId));
        assert_eq!(Event::parse("refer;id=a b"), Err(EventError::BadId));
    }

    /// Found by the `sip_headers` fuzz target (`r;=";"`): values were written
    /// back bare, so `foo="a;b"` printed as `foo=a;b` and read back as two
    /// parameters.
    #[test]
    fn what_it_reads_prints_and_reads_back_the_same() {
        assert_eq!(Event::parse("r;=\";\""), Ok(Event::parse("r").unwrap()));
        let e = Event::parse(r#"refer;foo="a;b" ; bar=" x ";q="say \"hi\"\\";t=tok"#).unwrap();
        assert_eq!(
            e.params,
            vec![
                ("foo".into(), Some("a;b".into())),
                ("bar".into(), Some(" x ".into())),
                ("q".into(), Some(r#"say "hi"\"#.into())),
                ("t".into(), Some("tok".into())),
            ]
        );
        let written = e.to_string();
        assert_eq!(
            written,
            r#"refer;foo="a;b";bar=" x ";q="say \"hi\"\\";t=tok"#
        );
        assert_eq!(Event::parse(&written), Ok(e));
        // No parameter we could not write back is kept.
        let e = Event::parse("refer;a b=1;x=\"a\r\nb\";y").unwrap();
        assert_eq!(e.params, vec![("y".into(), None)]);
    }

    #[test]
    fn reads_the_compact_form_from_a_message() {
        let mut h = Headers::default();
        headers::push(&mut h, "o", "refer;id=3");
        let e = Event::from_headers(&h).unwrap().unwrap();
        assert_eq!(e.refer_cseq(), Some(3));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]
        #[test]
        fn never_panics(value in "\\PC{0,80}") {
            let _ = Event::parse(&value);
        }

        #[test]
        fn refer_events_parse_back(cseq in proptest::option::of(proptest::num::u32::ANY)) {
            let parsed = Event::parse(&Event::refer(cseq).to_string()).unwrap();
            proptest::prop_assert_eq!(parsed.refer_cseq(), cseq);
            proptest::prop_assert_eq!(parsed, Event::refer(cseq));
        }
    }
}
