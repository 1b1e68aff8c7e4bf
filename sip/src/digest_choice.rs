//! Which digest challenges our user agents answer. rsipstack's client answers
//! the first `WWW-Authenticate` (or `Proxy-Authenticate`) of a 401/407, from
//! any realm. Before it sees such a response to a request of ours we keep only
//! the challenges worth answering:
//!
//! * **the account's realm only**: the realm is pinned to the domain of the
//!   account the request is sent as (its `From`), which is what our sip-server
//!   and the Kamailio configurations we ship use; a challenge from another realm
//!   is dropped with one log line, and a response left without any is not
//!   answered at all (rsipstack then reports the 401/407 as a failure);
//! * **SHA-256 whenever offered**: a server that also serves MD5-only phones
//!   sends MD5 first and SHA-256 second (those phones answer only the first), so
//!   the MD5 challenges of a response that carries a SHA-256 one are dropped,
//!   whatever the order.
//!
//! A response with more than one `Via` is one we forward as a proxy, not an
//! answer to our own request: it is left untouched.

use crate::headers;
use crate::uri_match::SipUri;
use rsipstack::sip::Response;
use tracing::warn;

/// The challenge headers a 401 or 407 may carry.
const CHALLENGE_HEADERS: [&str; 2] = ["WWW-Authenticate", "Proxy-Authenticate"];

/// What a challenge is about: its header, realm and algorithm.
struct Challenge {
    header: &'static str,
    realm: Option<String>,
    sha256: bool,
}

/// Drops from `response` the challenges our client must not answer (see the
/// module's rules); does nothing to other responses.
pub fn keep_answerable_challenges(response: &mut Response) {
    if !matches!(response.status_code.code(), 401 | 407)
        || headers::list(&response.headers, "Via").len() != 1
    {
        return;
    }
    let Some(account_domain) = headers::first(&response.headers, "From")
        .and_then(|from| SipUri::parse(from).ok())
        .map(|uri| uri.host)
    else {
        return;
    };
    let challenges: Vec<Challenge> = response
        .headers
        .iter()
        .filter_map(|h| {
            let header = CHALLENGE_HEADERS
                .into_iter()
                .find(|name| headers::is_named(h, name))?;
            Some(Challenge {
                header,
                realm: parameter(h.value(), "realm"),
                sha256: parameter(h.value(), "algorithm")
                    .is_some_and(|a| a.eq_ignore_ascii_case("SHA-256")),
            })
        })
        .collect();
    let ours = |c: &Challenge| {
        c.realm
            .as_deref()
            .is_some_and(|r| r.eq_ignore_ascii_case(&account_domain))
    };
    for foreign in challenges.iter().filter(|c| !ours(c)) {
        warn!(
            realm = foreign.realm.as_deref().unwrap_or("(none)"),
            account_domain = %account_domain,
            "digest challenge from a realm other than the account's: not answered"
        );
    }
    let sha256_offered = |header: &str| {
        challenges
            .iter()
            .any(|c| c.header == header && ours(c) && c.sha256)
    };
    let keep: Vec<bool> = challenges
        .iter()
        .map(|c| ours(c) && (c.sha256 || !sha256_offered(c.header)))
        .collect();
    let mut next = keep.into_iter();
    response.headers.retain(|h| {
        if CHALLENGE_HEADERS
            .iter()
            .any(|name| headers::is_named(h, name))
        {
            next.next().unwrap_or(false)
        } else {
            true
        }
    });
}

/// The value of parameter `name` of a `Digest` challenge, unquoted.
fn parameter(challenge: &str, name: &str) -> Option<String> {
    let (_scheme, params) = challenge.trim().split_once(char::is_whitespace)?;
    headers::split_list(params).into_iter().find_map(|p| {
        let (n, v) = p.split_once('=')?;
        n.trim().eq_ignore_ascii_case(name).then(|| {
            let v = v.trim();
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v)
                .to_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, vias: usize, challenges: &[(&str, &str, &str)]) -> Response {
        let mut text = format!("SIP/2.0 {status} Challenge\r\n");
        for i in 0..vias {
            text.push_str(&format!(
                "Via: SIP/2.0/UDP 127.0.0.{}:5060;branch=z9hG4bK{i}\r\n",
                i + 1
            ));
        }
        text.push_str("From: <sip:alice@home.example>;tag=1\r\nTo: <sip:alice@home.example>;tag=2\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n");
        for (header, realm, algorithm) in challenges {
            text.push_str(&format!(
                "{header}: Digest realm=\"{realm}\", nonce=\"n\", algorithm={algorithm}, qop=\"auth\"\r\n"
            ));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        Response::try_from(text.as_str()).expect("a valid test response")
    }

    fn left(r: &Response) -> Vec<String> {
        CHALLENGE_HEADERS
            .iter()
            .flat_map(|name| headers::values(&r.headers, name))
            .map(|v| {
                format!(
                    "{}/{}",
                    parameter(v, "realm").unwrap_or_default(),
                    parameter(v, "algorithm").unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn sha256_is_answered_whatever_the_order() {
        for header in CHALLENGE_HEADERS {
            let mut r = response(
                401,
                1,
                &[
                    (header, "home.example", "MD5"),
                    (header, "home.example", "SHA-256"),
                ],
            );
            keep_answerable_challenges(&mut r);
            assert_eq!(left(&r), ["home.example/SHA-256"], "{header}");
        }
        // MD5 alone stays: there is nothing better to answer.
        let mut r = response(407, 1, &[("Proxy-Authenticate", "home.example", "MD5")]);
        keep_answerable_challenges(&mut r);
        assert_eq!(left(&r), ["home.example/MD5"]);
    }

    #[test]
    fn a_challenge_from_another_realm_is_not_answered() {
        let mut r = response(401, 1, &[("WWW-Authenticate", "evil.example", "SHA-256")]);
        keep_answerable_challenges(&mut r);
        assert!(left(&r).is_empty());
        // Another realm's SHA-256 does not push out our own realm's MD5.
        let mut r = response(
            401,
            1,
            &[
                ("WWW-Authenticate", "evil.example", "SHA-256"),
                ("WWW-Authenticate", "HOME.example", "MD5"),
            ],
        );
        keep_answerable_challenges(&mut r);
        assert_eq!(left(&r), ["HOME.example/MD5"]);
    }

    #[test]
    fn responses_we_forward_and_other_statuses_are_untouched() {
        let challenges = [
            ("WWW-Authenticate", "evil.example", "MD5"),
            ("WWW-Authenticate", "home.example", "SHA-256"),
        ];
        let mut forwarded = response(401, 2, &challenges);
        keep_answerable_challenges(&mut forwarded);
        assert_eq!(left(&forwarded).len(), 2);
        let mut other = response(403, 1, &challenges);
        keep_answerable_challenges(&mut other);
        assert_eq!(left(&other).len(), 2);
    }

    #[test]
    fn reads_quoted_and_bare_parameters() {
        let c = "Digest realm=\"a, b\", algorithm=SHA-256,qop=\"auth\"";
        assert_eq!(parameter(c, "realm").as_deref(), Some("a, b"));
        assert_eq!(parameter(c, "ALGORITHM").as_deref(), Some("SHA-256"));
        assert_eq!(parameter("Digest", "realm"), None);
    }
}
