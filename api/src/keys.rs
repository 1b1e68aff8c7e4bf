//! The matcher's token-signing keys as it publishes them to talkers (in the
//! enrollment reply and every heartbeat reply): talkers check call and owner
//! tokens with them. In a heartbeat reply the key set comes signed (see
//! [`key_set_signing_input`]) by the matcher keys it replaces, so a talker
//! takes a new set only from a key it already trusts. The set also names the
//! keys the matcher revoked ([`revoking_key_set_signing_input`]): a talker
//! drops them at once, pinned or learnt, and refuses their tokens from then on.

use serde::{Deserialize, Serialize};

/// One published key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatcherKey {
    /// The key id tokens name in their `kid`: `m-` and the first 16 hex digits
    /// of the SHA-256 of the 32 key bytes. A talker refuses a key whose `kid`
    /// is not that id.
    pub kid: String,
    /// The Ed25519 public key, standard base64 of its 32 bytes.
    pub public_key: String,
}

/// One matcher key's Ed25519 signature over a heartbeat reply's key set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySetSignature {
    /// The signing key's id (one of the keys the talker already holds).
    pub kid: String,
    /// The 64-byte signature over [`key_set_signing_input`], standard base64.
    pub signature: String,
}

/// The label that starts every signed key set: no other signature of the
/// matcher (a JWS signing input starts with base64url text) begins with it.
pub const KEY_SET_DOMAIN: &str = "splitdial-keyset-v1";

/// The bytes a matcher key signs for a heartbeat reply's key set: the label
/// [`KEY_SET_DOMAIN`] and a zero byte, then the talker id, the reply's time in
/// whole milliseconds (8 bytes, big-endian, signed), the number of keys
/// (4 bytes, big-endian) and each key's `kid` and `public_key` as sent. Every
/// string is its UTF-8 bytes after their length (4 bytes, big-endian), so no
/// two key sets encode alike.
pub fn key_set_signing_input(talker_id: &str, time_ms: i64, keys: &[MatcherKey]) -> Vec<u8> {
    revoking_key_set_signing_input(talker_id, time_ms, keys, &[])
}

/// The bytes a matcher key signs for a heartbeat reply's key set that also
/// names revoked keys: [`key_set_signing_input`]'s bytes, then, only when
/// `revoked` is not empty, their number (4 bytes, big-endian) and each revoked
/// `kid` after its length. A set that revokes nothing encodes exactly as
/// before, so talkers that predate revocation keep taking it; the count that
/// starts the revoked part is never zero, so no two statements encode alike.
pub fn revoking_key_set_signing_input(
    talker_id: &str,
    time_ms: i64,
    keys: &[MatcherKey],
    revoked: &[String],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + keys.len() * 80);
    out.extend_from_slice(KEY_SET_DOMAIN.as_bytes());
    out.push(0);
    string(&mut out, talker_id);
    out.extend_from_slice(&time_ms.to_be_bytes());
    let count = u32::try_from(keys.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for key in keys {
        string(&mut out, &key.kid);
        string(&mut out, &key.public_key);
    }
    if !revoked.is_empty() {
        let count = u32::try_from(revoked.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for kid in revoked {
            string(&mut out, kid);
        }
    }
    out
}

/// Appends `s` as its length (4 bytes, big-endian) and its UTF-8 bytes.
fn string(out: &mut Vec<u8>, s: &str) {
    // A length past u32 cannot come from a parsed reply; saturating keeps
    // the encoding total anyway.
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A reply's `time` (Unix seconds) in whole milliseconds, as the key-set
/// signature binds it; `None` when it is not a positive finite time. The
/// matcher sends whole milliseconds, so rounding undoes any last-digit error
/// of a JSON float round trip.
pub fn time_ms(time: f64) -> Option<i64> {
    // 1e11 s is the year 5138: anything later is not a clock.
    if !time.is_finite() || time <= 0.0 || time > 1e11 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)] // Bounded just above.
    Some((time * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, public_key: &str) -> MatcherKey {
        MatcherKey {
            kid: kid.into(),
            public_key: public_key.into(),
        }
    }

    #[test]
    fn the_signing_input_is_labelled_and_length_prefixed() {
        let input = key_set_signing_input("tv", 1_500, &[key("m-1", "AA==")]);
        let mut expected = b"splitdial-keyset-v1\0".to_vec();
        expected.extend_from_slice(&[0, 0, 0, 2, b't', b'v']);
        expected.extend_from_slice(&1_500_i64.to_be_bytes());
        expected.extend_from_slice(&[0, 0, 0, 1]);
        expected.extend_from_slice(&[0, 0, 0, 3, b'm', b'-', b'1']);
        expected.extend_from_slice(&[0, 0, 0, 4, b'A', b'A', b'=', b'=']);
        assert_eq!(input, expected);
    }

    #[test]
    fn talker_time_and_every_key_change_the_input() {
        let keys = [key("m-1", "AA=="), key("m-2", "AQ==")];
        let base = key_set_signing_input("tv", 1_000, &keys);
        assert_ne!(base, key_set_signing_input("pc", 1_000, &keys));
        assert_ne!(base, key_set_signing_input("tv", 1_001, &keys));
        assert_ne!(base, key_set_signing_input("tv", 1_000, &keys[..1]));
        assert_ne!(
            base,
            key_set_signing_input("tv", 1_000, &[keys[1].clone(), keys[0].clone()])
        );
        // Moving bytes from one field to the next changes the input too.
        assert_ne!(
            key_set_signing_input("tv", 1_000, &[key("m-1A", "A==")]),
            key_set_signing_input("tv", 1_000, &[key("m-1", "AA==")])
        );
    }

    #[test]
    fn revoked_kids_are_appended_only_when_there_are_some() {
        let keys = [key("m-2", "AQ==")];
        let plain = key_set_signing_input("tv", 1_000, &keys);
        assert_eq!(
            revoking_key_set_signing_input("tv", 1_000, &keys, &[]),
            plain
        );
        let revoking = revoking_key_set_signing_input("tv", 1_000, &keys, &["m-1".into()]);
        let mut expected = plain;
        expected.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 3, b'm', b'-', b'1']);
        assert_eq!(revoking, expected);
        assert_ne!(
            revoking,
            revoking_key_set_signing_input("tv", 1_000, &keys, &["m-3".into()])
        );
    }

    #[test]
    fn times_are_whole_milliseconds_or_refused() {
        assert_eq!(time_ms(1_796_662_510.126), Some(1_796_662_510_126));
        assert_eq!(time_ms(1_796_662_510.125_9), Some(1_796_662_510_126));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e12] {
            assert_eq!(time_ms(bad), None, "{bad}");
        }
    }
}
