//! SIP URI equivalence (RFC 3261 §19.1.4), for checking that a REFER's
//! `Refer-To` is exactly the target a call token names.

use std::collections::BTreeMap;

/// A SIP or SIPS URI split into the parts §19.1.4 compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sip` or `sips` (lower case).
    pub scheme: String,
    /// User info (user and optional password), percent-decoded; case-sensitive.
    pub userinfo: Option<String>,
    /// Host, lower-cased.
    pub host: String,
    /// Port when written.
    pub port: Option<u16>,
    /// URI parameters, names and values lower-cased and decoded.
    pub params: BTreeMap<String, Option<String>>,
    /// Embedded headers (`?h=v`), names lower-cased, values decoded.
    pub headers: BTreeMap<String, String>,
}

/// Why a text is not an acceptable SIP URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// Not of the form `sip:` / `sips:`.
    #[error("not a sip: or sips: URI")]
    Scheme,
    /// Empty or malformed host or port.
    #[error("malformed host or port")]
    Host,
    /// A bad percent escape.
    #[error("bad %-escape")]
    Escape,
}

/// Parameters that must match when either URI has them (§19.1.4).
const STRICT_PARAMS: [&str; 5] = ["user", "ttl", "method", "maddr", "transport"];

impl SipUri {
    /// Parses a URI, or a name-addr (`"Bob" <sip:bob@x>;param`) by taking what is
    /// inside the angle brackets.
    pub fn parse(text: &str) -> Result<Self, UriError> {
        let text = text.trim();
        let inner = match (text.find('<'), text.rfind('>')) {
            (Some(a), Some(b)) if a < b => &text[a + 1..b],
            _ => text,
        };
        let (scheme, rest) = inner.split_once(':').ok_or(UriError::Scheme)?;
        let scheme = scheme.trim().to_ascii_lowercase();
        if scheme != "sip" && scheme != "sips" {
            return Err(UriError::Scheme);
        }
        let (rest, headers_text) = match rest.split_once('?') {
            Some((r, h)) => (r, Some(h)),
            None => (rest, None),
        };
        let mut parts = rest.split(';');
        let address = parts.next().unwrap_or_default();
        let (userinfo, hostport) = match address.rsplit_once('@') {
            Some((u, h)) => (Some(decode(u)?), h),
            None => (None, address),
        };
        let (host, port) = split_host_port(hostport)?;
        let mut params = BTreeMap::new();
        for p in parts.filter(|p| !p.is_empty()) {
            let (name, value) = match p.split_once('=') {
                Some((n, v)) => (n, Some(decode(v)?.to_ascii_lowercase())),
                None => (p, None),
            };
            params
                .entry(decode(name)?.to_ascii_lowercase())
                .or_insert(value);
        }
        let mut headers = BTreeMap::new();
        if let Some(h) = headers_text {
            for pair in h.split('&').filter(|p| !p.is_empty()) {
                let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
                headers.insert(decode(n)?.to_ascii_lowercase(), decode(v)?);
            }
        }
        Ok(Self {
            scheme,
            userinfo,
            host,
            port,
            params,
            headers,
        })
    }

    /// Whether two URIs are equivalent under RFC 3261 §19.1.4.
    pub fn equivalent(&self, other: &Self) -> bool {
        if self.scheme != other.scheme
            || self.userinfo != other.userinfo
            || self.host != other.host
            || self.port != other.port
            || self.headers != other.headers
        {
            return false;
        }
        for name in STRICT_PARAMS {
            if self.params.get(name) != other.params.get(name) {
                return false;
            }
        }
        self.params
            .iter()
            .filter(|(n, _)| !STRICT_PARAMS.contains(&n.as_str()))
            .all(|(n, v)| other.params.get(n).is_none_or(|ov| ov == v))
    }
}

fn split_host_port(hostport: &str) -> Result<(String, Option<u16>), UriError> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or(UriError::Host)?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(UriError::Host),
        };
        (format!("[{}]", h.to_ascii_lowercase()), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
            None => (hostport.to_ascii_lowercase(), None),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(UriError::Host);
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| UriError::Host)?),
        None => None,
    };
    Ok((host, port))
}

/// Percent-decodes `text` (§19.1.4: an escaped character equals the character).
fn decode(text: &str) -> Result<String, UriError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or(UriError::Escape)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| UriError::Escape)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UriError::Escape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(a: &str, b: &str) -> bool {
        SipUri::parse(a)
            .unwrap()
            .equivalent(&SipUri::parse(b).unwrap())
    }

    #[test]
    fn rfc3261_equivalent_examples() {
        assert!(eq(
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp"
        ));
        assert!(eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;newparam=5"
        ));
        assert!(eq(
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;newparam=5"
        ));
        assert!(eq(
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
        ));
        assert!(eq("\"Bob\" <sip:bob@biloxi.com>;x=1", "sip:bob@biloxi.com"));
    }

    #[test]
    fn rfc3261_non_equivalent_examples() {
        assert!(!eq(
            "SIP:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP"
        ));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com;transport=udp"
        ));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com:6000;transport=tcp"
        ));
        assert!(!eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com?Subject=next%20meeting"
        ));
        assert!(!eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
        assert!(!eq(
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;security=off"
        ));
        assert!(!eq("sips:bob@biloxi.com", "sip:bob@biloxi.com"));
    }

    #[test]
    fn refuses_other_schemes_and_bad_escapes() {
        assert_eq!(SipUri::parse("tel:+123"), Err(UriError::Scheme));
        assert_eq!(SipUri::parse("sip:a%zz@x"), Err(UriError::Escape));
        assert_eq!(SipUri::parse("sip:a@x:99999"), Err(UriError::Host));
        assert_eq!(SipUri::parse("sip:"), Err(UriError::Host));
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(s in ".{0,80}") {
            let _ = SipUri::parse(&s);
        }
    }
}
