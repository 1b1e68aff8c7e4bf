//! rsipstack's digest client spells SHA-256 as `SHA256`: it cannot parse the
//! standard `algorithm=SHA-256` of RFC 7616/8760 challenges, and would write
//! the non-standard name in its answers. The hash itself does not depend on the
//! token, so translating the name at the edge gives real SHA-256 digest
//! authentication with any standard server (our sip-server, Kamailio).
//!
//! The same inspector first keeps only the challenges our client should answer
//! ([`crate::digest_choice`]: the account's realm, SHA-256 whenever offered).

use rsipstack::sip::{Header, SipMessage};
use rsipstack::transaction::endpoint::MessageInspector;
use rsipstack::transport::SipAddr;

/// Translates digest algorithm names between the wire and rsipstack.
pub struct DigestAlgorithmNames;

fn rename(value: &str, from: &str, to: &str) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    let needle = format!("algorithm={}", from.to_ascii_lowercase());
    let at = lower.find(&needle)?;
    let start = at + "algorithm=".len();
    let end = start + from.len();
    // Only a whole token: `SHA-256` must not match `SHA-256-sess`.
    let next = value[end..].chars().next();
    if next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-') {
        return None;
    }
    Some(format!("{}{to}{}", &value[..start], &value[end..]))
}

impl MessageInspector for DigestAlgorithmNames {
    fn before_send(&self, mut msg: SipMessage, _dest: Option<&SipAddr>) -> SipMessage {
        if let SipMessage::Request(req) = &mut msg {
            for h in req.headers.iter_mut() {
                let replacement = match h {
                    Header::Authorization(v) => rename(v.value(), "SHA256", "SHA-256")
                        .map(|s| Header::Authorization(s.into())),
                    Header::ProxyAuthorization(v) => rename(v.value(), "SHA256", "SHA-256")
                        .map(|s| Header::ProxyAuthorization(s.into())),
                    _ => None,
                };
                if let Some(r) = replacement {
                    *h = r;
                }
            }
        }
        msg
    }

    fn after_received(&self, mut msg: SipMessage, _from: Option<&SipAddr>) -> SipMessage {
        if let SipMessage::Response(resp) = &mut msg {
            crate::digest_choice::keep_answerable_challenges(resp);
            for h in resp.headers.iter_mut() {
                let replacement = match h {
                    Header::WwwAuthenticate(v) => rename(v.value(), "SHA-256", "SHA256")
                        .map(|s| Header::WwwAuthenticate(s.into())),
                    Header::ProxyAuthenticate(v) => rename(v.value(), "SHA-256", "SHA256")
                        .map(|s| Header::ProxyAuthenticate(s.into())),
                    _ => None,
                };
                if let Some(r) = replacement {
                    *h = r;
                }
            }
        }
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_whole_tokens_only() {
        assert_eq!(
            rename(
                "Digest realm=\"x\", algorithm=SHA-256, qop=\"auth\"",
                "SHA-256",
                "SHA256"
            )
            .unwrap(),
            "Digest realm=\"x\", algorithm=SHA256, qop=\"auth\""
        );
        assert!(rename("Digest algorithm=SHA-256-sess", "SHA-256", "SHA256").is_none());
        assert!(rename("Digest algorithm=MD5", "SHA-256", "SHA256").is_none());
        assert_eq!(
            rename("Digest algorithm=sha256", "SHA256", "SHA-256").unwrap(),
            "Digest algorithm=SHA-256"
        );
    }
}
