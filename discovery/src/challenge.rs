//! The talker challenge (DESIGN.md, security rules): how a dialer proves that a
//! talker it found (by mDNS or a manual address) holds the key the matcher's
//! registry enrolled for that talker id.
//!
//! The dialer sends a fresh nonce over the TLS connection it opened to the
//! talker; the talker adds its own fresh nonce and signs the domain-separated
//! message `splitdial-challenge-v2`, talker id, dialer nonce, talker nonce —
//! each followed by a NUL byte — and the connection's channel binding (the 32
//! bytes of RFC 9266's `tls-exporter`, which each end computes from its own
//! side of the connection). The signature is then worthless for another talker
//! id, another dialer's nonce or another connection: a host that relays the
//! dialer's challenge to the real talker over a connection of its own gets a
//! signature over that other connection's binding.
//!
//! Lives here (not in the agent) so the dialer can check answers without
//! depending on the agent's media stack; the agent signs with the same
//! [`Challenge::message`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};

/// The domain-separation label of the talker challenge.
pub const CHALLENGE_LABEL: &str = "splitdial-challenge-v2";

/// The fields a dialer's challenge binds together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge<'a> {
    /// The talker's id.
    pub talker_id: &'a str,
    /// The dialer's fresh nonce.
    pub dialer_nonce: &'a str,
    /// The talker's fresh nonce.
    pub talker_nonce: &'a str,
    /// The channel binding of the TLS connection the challenge travels on
    /// (`EXPORTER-Channel-Binding`, no context, 32 bytes).
    pub channel_binding: &'a [u8; 32],
}

/// Why a challenge answer does not prove the talker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// The registry's public key is not 32 bytes of standard base64.
    #[error("the registry's public key is not an Ed25519 key: {0}")]
    BadKey(String),
    /// The signature is not 64 bytes of standard base64.
    #[error("the signature is not an Ed25519 signature: {0}")]
    BadSignature(String),
    /// The signature does not check with the registry's key over this challenge.
    #[error("the signature does not match the registry's key for this talker and connection")]
    Mismatch,
}

impl Challenge<'_> {
    /// The exact bytes signed: the text fields each followed by NUL, which
    /// none may contain (NUL bytes inside a field are dropped, so they cannot
    /// shift fields), then the 32 bytes of the channel binding.
    pub fn message(&self) -> Vec<u8> {
        let mut m = Vec::new();
        for part in [
            CHALLENGE_LABEL,
            self.talker_id,
            self.dialer_nonce,
            self.talker_nonce,
        ] {
            m.extend(part.bytes().filter(|b| *b != 0));
            m.push(0);
        }
        m.extend_from_slice(self.channel_binding);
        m
    }

    /// Checks a talker's signature over this challenge.
    pub fn verify(&self, key: &VerifyingKey, signature: &Signature) -> bool {
        key.verify_strict(&self.message(), signature).is_ok()
    }

    /// Checks a signature given as standard base64 against a public key given as
    /// standard base64 (the registry's form). Pass the key the registry holds for
    /// the talker id, never the key the talker's answer carries.
    pub fn verify_base64(&self, public_key: &str, signature: &str) -> Result<(), ChallengeError> {
        let key = decode_key(public_key)?;
        let signature = decode_signature(signature)?;
        if self.verify(&key, &signature) {
            Ok(())
        } else {
            Err(ChallengeError::Mismatch)
        }
    }
}

/// Decodes a standard-base64 Ed25519 public key.
pub fn decode_key(public_key: &str) -> Result<VerifyingKey, ChallengeError> {
    let bytes = STANDARD
        .decode(public_key.trim())
        .map_err(|e| ChallengeError::BadKey(e.to_string()))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| ChallengeError::BadKey(format!("{} bytes, not 32", b.len())))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| ChallengeError::BadKey(e.to_string()))
}

/// Decodes a standard-base64 Ed25519 signature.
pub fn decode_signature(signature: &str) -> Result<Signature, ChallengeError> {
    let bytes = STANDARD
        .decode(signature.trim())
        .map_err(|e| ChallengeError::BadSignature(e.to_string()))?;
    let bytes: [u8; 64] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| ChallengeError::BadSignature(format!("{} bytes, not 64", b.len())))?;
    Ok(Signature::from_bytes(&bytes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn message_is_label_and_fields_each_followed_by_nul() {
        let c = Challenge {
            talker_id: "tv-1",
            dialer_nonce: "dn",
            talker_nonce: "tn",
            channel_binding: &[0xab; 32],
        };
        let mut expected = b"splitdial-challenge-v2\x00tv-1\x00dn\x00tn\x00".to_vec();
        expected.extend_from_slice(&[0xab; 32]);
        assert_eq!(c.message(), expected);
        // A NUL inside a field cannot move bytes into the next field.
        let shifted = Challenge {
            talker_id: "tv-1\0dn",
            dialer_nonce: "",
            ..c.clone()
        };
        assert_ne!(shifted.message(), c.message());
    }

    #[test]
    fn signatures_bind_every_field_and_the_key() {
        let talker = key(7);
        let c = Challenge {
            talker_id: "tv-1",
            dialer_nonce: "dialer-nonce-0123456789",
            talker_nonce: "00112233445566778899aabbccddeeff",
            channel_binding: &[1; 32],
        };
        let sig = talker.sign(&c.message());
        let pk = STANDARD.encode(talker.verifying_key().as_bytes());
        let sig64 = STANDARD.encode(sig.to_bytes());
        assert!(c.verify(&talker.verifying_key(), &sig));
        assert_eq!(c.verify_base64(&pk, &sig64), Ok(()));
        for other in [
            Challenge {
                talker_id: "tv-2",
                ..c.clone()
            },
            Challenge {
                dialer_nonce: "dialer-nonce-012345678X",
                ..c.clone()
            },
            Challenge {
                talker_nonce: "00112233445566778899aabbccddeefe",
                ..c.clone()
            },
            Challenge {
                channel_binding: &[2; 32],
                ..c.clone()
            },
        ] {
            assert_eq!(
                other.verify_base64(&pk, &sig64),
                Err(ChallengeError::Mismatch)
            );
        }
        let stranger = STANDARD.encode(key(8).verifying_key().as_bytes());
        assert_eq!(
            c.verify_base64(&stranger, &sig64),
            Err(ChallengeError::Mismatch)
        );
        assert!(matches!(
            c.verify_base64("not base64!", &sig64),
            Err(ChallengeError::BadKey(_))
        ));
        assert!(matches!(
            c.verify_base64(&STANDARD.encode([1u8; 31]), &sig64),
            Err(ChallengeError::BadKey(_))
        ));
        assert!(matches!(
            c.verify_base64(&pk, &STANDARD.encode([0u8; 63])),
            Err(ChallengeError::BadSignature(_))
        ));
    }
}
