//! The `Subscription-State` header of a NOTIFY (RFC 6665 §8.2.3, as REFER's
//! implicit subscription uses it, RFC 3515 §2.4.5): parse it tolerantly and
//! build it.
//!
//! ```text
//! Subscription-State: active;expires=60
//! Subscription-State: terminated;reason=noresource
//! Subscription-State: terminated;reason=probation;retry-after=30
//! ```

use crate::headers;
use rsipstack::sip::Headers;
use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// The header's name.
pub const HEADER: &str = "Subscription-State";

/// The subscription's state (`substate-value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubState {
    /// The subscription is accepted and running.
    Active,
    /// The subscription is received but not yet authorized.
    Pending,
    /// The subscription is over.
    Terminated,
    /// An extension state, lower-cased (treat it as the RFC says: like an
    /// unknown state, ignore it or end the subscription).
    Other(String),
}

/// Why a subscription ended (`event-reason-value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The subscription was ended; the subscriber may re-subscribe at once.
    Deactivated,
    /// The subscription was ended; re-subscribe later (see `retry-after`).
    Probation,
    /// The subscription was refused.
    Rejected,
    /// The subscription was not refreshed in time.
    Timeout,
    /// The notifier gave up waiting for authorization.
    Giveup,
    /// The resource no longer exists (REFER's final NOTIFY says this).
    Noresource,
    /// The resource will not change; do not re-subscribe.
    Invariant,
    /// An extension reason, lower-cased.
    Other(String),
}

impl Reason {
    fn parse(value: &str) -> Self {
        match value.to_ascii_lowercase().as_str() {
            "deactivated" => Self::Deactivated,
            "probation" => Self::Probation,
            "rejected" => Self::Rejected,
            "timeout" => Self::Timeout,
            "giveup" => Self::Giveup,
            "noresource" => Self::Noresource,
            "invariant" => Self::Invariant,
            other => Self::Other(other.to_owned()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Self::Deactivated => "deactivated",
            Self::Probation => "probation",
            Self::Rejected => "rejected",
            Self::Timeout => "timeout",
            Self::Giveup => "giveup",
            Self::Noresource => "noresource",
            Self::Invariant => "invariant",
            Self::Other(s) => s,
        }
    }
}

/// A parsed or to-be-sent `Subscription-State` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    /// The state.
    pub state: SubState,
    /// Seconds the subscription still runs (active and pending states).
    pub expires: Option<u32>,
    /// Why it ended (terminated state).
    pub reason: Option<Reason>,
    /// Seconds to wait before re-subscribing (terminated state).
    pub retry_after: Option<u32>,
}

/// Why a `Subscription-State` value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionStateError {
    /// The value is empty or has no state token.
    #[error("Subscription-State has no state")]
    Empty,
    /// The state is not a token.
    #[error("Subscription-State state {0:?} is not a token")]
    BadState(String),
    /// `expires` or `retry-after` is not a number of seconds that fits 32 bits.
    #[error("Subscription-State parameter {0} is not a number of seconds")]
    BadNumber(&'static str),
}

impl SubscriptionState {
    /// `active;expires=<secs>`.
    pub fn active(expires: Option<u32>) -> Self {
        Self {
            state: SubState::Active,
            expires,
            reason: None,
            retry_after: None,
        }
    }

    /// `pending;expires=<secs>`.
    pub fn pending(expires: Option<u32>) -> Self {
        Self {
            state: SubState::Pending,
            ..Self::active(expires)
        }
    }

    /// `terminated;reason=<reason>`.
    pub fn terminated(reason: Option<Reason>) -> Self {
        Self {
            state: SubState::Terminated,
            expires: None,
            reason,
            retry_after: None,
        }
    }

    /// Whether the subscription is over.
    pub fn is_terminated(&self) -> bool {
        self.state == SubState::Terminated
    }

    /// Parses a header value. Case-insensitive; whitespace around `;` and `=`,
    /// unknown parameters, quoted values and a repeated parameter (the first
    /// counts) are tolerated; a reason with control characters is ignored.
    pub fn parse(value: &str) -> Result<Self, SubscriptionStateError> {
        let mut parts = split_params(value).into_iter();
        let state = parts.next().unwrap_or_default();
        if state.is_empty() {
            return Err(SubscriptionStateError::Empty);
        }
        if !is_token(state) {
            return Err(SubscriptionStateError::BadState(
                state.chars().take(32).collect(),
            ));
        }
        let state = match state.to_ascii_lowercase().as_str() {
            "active" => SubState::Active,
            "pending" => SubState::Pending,
            "terminated" => SubState::Terminated,
            other => SubState::Other(other.to_owned()),
        };
        let mut out = Self {
            state,
            expires: None,
            reason: None,
            retry_after: None,
        };
        for param in parts {
            let (name, value) = param
                .split_once('=')
                .map_or((param, Cow::Borrowed("")), |(n, v)| {
                    (n.trim(), unquote(v.trim()))
                });
            match name.to_ascii_lowercase().as_str() {
                "expires" if out.expires.is_none() => {
                    out.expires = Some(seconds(&value, "expires")?);
                }
                "retry-after" if out.retry_after.is_none() => {
                    out.retry_after = Some(seconds(&value, "retry-after")?);
                }
                "reason" if out.reason.is_none() && !value.is_empty() && is_writable(&value) => {
                    out.reason = Some(Reason::parse(&value));
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Reads the first `Subscription-State` header of a message, if present.
    pub fn from_headers(h: &Headers) -> Option<Result<Self, SubscriptionStateError>> {
        headers::first(h, HEADER).map(Self::parse)
    }
}

impl fmt::Display for SubscriptionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            SubState::Active => f.write_str("active")?,
            SubState::Pending => f.write_str("pending")?,
            SubState::Terminated => f.write_str("terminated")?,
            SubState::Other(s) => f.write_str(s)?,
        }
        if let Some(reason) = &self.reason {
            f.write_str(";reason=")?;
            write_value(f, reason.as_str())?;
        }
        if let Some(expires) = self.expires {
            write!(f, ";expires={expires}")?;
        }
        if let Some(retry) = self.retry_after {
            write!(f, ";retry-after={retry}")?;
        }
        Ok(())
    }
}

fn seconds(value: &str, name: &'static str) -> Result<u32, SubscriptionStateError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SubscriptionStateError::BadNumber(name));
    }
    value
        .parse()
        .map_err(|_| SubscriptionStateError::BadNumber(name))
}

/// RFC 3261 `token` characters.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// Splits at `;` outside quoted strings; trims each part.
pub(crate) fn split_params(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut quoted, mut escaped, mut start) = (false, false, 0);
    for (i, ch) in value.char_indices() {
        match ch {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts
}

/// A parameter value without its surrounding quotes and with its quoted-pairs
/// (`\"`, `\\`) resolved, if quoted (RFC 3261 §25.1); as it is otherwise.
pub(crate) fn unquote(value: &str) -> Cow<'_, str> {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return Cow::Borrowed(value);
    };
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        // A lone backslash at the end stands for itself (`write_value` writes
        // it back as `\\`).
        out.push(if c == '\\' {
            chars.next().unwrap_or('\\')
        } else {
            c
        });
    }
    Cow::Owned(out)
}

/// Whether a received parameter value can be kept: we may have to write it
/// again, and a header cannot carry CR or LF (nor do we write other control
/// characters but HTAB), so a value with them is ignored.
pub(crate) fn is_writable(value: &str) -> bool {
    !value.chars().any(|c| c.is_ascii_control() && c != '\t')
}

/// Writes a parameter value bare when it is a token and as a quoted-string
/// (`"` and `\` escaped) otherwise, so that [`split_params`] and [`unquote`]
/// read back exactly this value: written bare, `new;thing` would read back as
/// `new` and a parameter `thing`.
pub(crate) fn write_value(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    if is_token(value) {
        return f.write_str(value);
    }
    f.write_char('"')?;
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_states() {
        let s = SubscriptionState::parse("active;expires=60").unwrap();
        assert_eq!(s, SubscriptionState::active(Some(60)));
        let s = SubscriptionState::parse(" Pending ; EXPIRES = 3600 ").unwrap();
        assert_eq!(s, SubscriptionState::pending(Some(3600)));
        let s = SubscriptionState::parse("terminated;reason=noresource").unwrap();
        assert!(s.is_terminated());
        assert_eq!(s.reason, Some(Reason::Noresource));
        let s = SubscriptionState::parse("terminated;reason=probation;retry-after=30").unwrap();
        assert_eq!(
            (s.reason, s.retry_after),
            (Some(Reason::Probation), Some(30))
        );
    }

    #[test]
    fn tolerates_extensions_and_unknown_parameters() {
        let s = SubscriptionState::parse("waiting;reason=\"new;thing\";x=1;flag").unwrap();
        assert_eq!(s.state, SubState::Other("waiting".into()));
        assert_eq!(s.reason, Some(Reason::Other("new;thing".into())));
        let s = SubscriptionState::parse("active;expires=10;expires=20").unwrap();
        assert_eq!(s.expires, Some(10));
    }

    /// Found by fuzzing: `reason="new;thing"` printed bare and read back as
    /// `new`.
    #[test]
    fn a_reason_that_is_no_token_prints_quoted() {
        let s = SubscriptionState::parse("terminated;reason=\"new;thing\"").unwrap();
        assert_eq!(s.to_string(), "terminated;reason=\"new;thing\"");
        assert_eq!(SubscriptionState::parse(&s.to_string()), Ok(s));
        let s = SubscriptionState::parse("terminated;reason=\" a\\\"\"").unwrap();
        assert_eq!(s.reason, Some(Reason::Other(" a\"".into())));
        assert_eq!(SubscriptionState::parse(&s.to_string()), Ok(s));
        let s = SubscriptionState::parse("terminated;reason=\"x\ry\";reason=timeout").unwrap();
        assert_eq!(s.reason, Some(Reason::Timeout));
    }

    #[test]
    fn refuses_broken_values() {
        use SubscriptionStateError::*;
        assert_eq!(SubscriptionState::parse(""), Err(Empty));
        assert_eq!(SubscriptionState::parse(" ;expires=5"), Err(Empty));
        assert!(matches!(
            SubscriptionState::parse("act ive"),
            Err(BadState(_))
        ));
        assert_eq!(
            SubscriptionState::parse("active;expires=-1"),
            Err(BadNumber("expires"))
        );
        assert_eq!(
            SubscriptionState::parse("active;expires=99999999999"),
            Err(BadNumber("expires"))
        );
        assert_eq!(
            SubscriptionState::parse("terminated;retry-after"),
            Err(BadNumber("retry-after"))
        );
    }

    #[test]
    fn builds_what_refer_notifies_need() {
        assert_eq!(
            SubscriptionState::active(Some(60)).to_string(),
            "active;expires=60"
        );
        assert_eq!(
            SubscriptionState::terminated(Some(Reason::Noresource)).to_string(),
            "terminated;reason=noresource"
        );
        let mut s = SubscriptionState::terminated(Some(Reason::Probation));
        s.retry_after = Some(30);
        assert_eq!(s.to_string(), "terminated;reason=probation;retry-after=30");
    }

    #[test]
    fn reads_the_header_from_a_message() {
        let mut h = Headers::default();
        assert!(SubscriptionState::from_headers(&h).is_none());
        headers::push(&mut h, "subscription-state", "pending");
        let s = SubscriptionState::from_headers(&h).unwrap().unwrap();
        assert_eq!(s.state, SubState::Pending);
    }

    fn reason_strategy() -> impl proptest::strategy::Strategy<Value = Option<Reason>> {
        use proptest::prelude::*;
        prop_oneof![
            Just(None),
            Just(Some(Reason::Noresource)),
            Just(Some(Reason::Timeout)),
            "[a-z]{1,10}".prop_map(|s| Some(Reason::parse(&s))),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]
        #[test]
        fn never_panics(value in "\\PC{0,80}") {
            let _ = SubscriptionState::parse(&value);
        }

        #[test]
        fn built_values_parse_back(
            state in proptest::sample::select(vec!["active", "pending", "terminated", "ext-state"]),
            expires in proptest::option::of(proptest::num::u32::ANY),
            reason in reason_strategy(),
            retry_after in proptest::option::of(proptest::num::u32::ANY),
        ) {
            let built = SubscriptionState {
                state: SubscriptionState::parse(state).unwrap().state,
                expires,
                reason,
                retry_after,
            };
            let parsed = SubscriptionState::parse(&built.to_string()).unwrap();
            proptest::prop_assert_eq!(parsed, built);
        }
    }
}
