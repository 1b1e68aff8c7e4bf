//! The matcher's token-signing keys: loaded from storage (created on first
//! start), the newest signs tokens, all current ones are published to talkers
//! in heartbeat and enrollment replies. Each published key also signs the key
//! set of every heartbeat reply, so a talker that holds any of them (a retired
//! key during its overlap too) takes the new set: that is how a rotation
//! reaches enrolled talkers.

use crate::storage::{StorageError, Store};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};
use splitdial_api::{KeySetSignature, key_set_signing_input};
use splitdial_sip::call_token::{Issuer, key_id};
use std::sync::Arc;

/// How long a retired key stays published, so pinned sets roll over.
pub const KEY_OVERLAP_SECS: i64 = 24 * 3600;

/// A public key as talkers receive it: the contract's key entry.
pub use splitdial_api::MatcherKey as PublishedKey;

/// The signing side: the issuer of new tokens and the published key set.
#[derive(Clone)]
pub struct KeyRing {
    issuer: Arc<Issuer>,
    published: Vec<PublishedKey>,
    /// The private half of each published key, in the same order, by kid.
    signers: Arc<Vec<(String, SigningKey)>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("kid", &self.issuer.kid())
            .field("published", &self.published)
            .finish()
    }
}

/// Errors loading keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A stored seed is not 32 bytes of hex.
    #[error("stored signing key {0:?} is corrupt")]
    Corrupt(String),
}

fn seed_from(seed_hex: &str, kid: &str) -> Result<[u8; 32], KeyError> {
    hex::decode(seed_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| KeyError::Corrupt(kid.to_owned()))
}

fn new_key() -> (String, String) {
    let seed: [u8; 32] = rand::random();
    let kid = key_id(&Issuer::new(seed, "").verifying_key());
    (kid, hex::encode(seed))
}

impl KeyRing {
    /// Loads the key set, creating the first key when there is none.
    pub async fn load(store: &Store) -> Result<Self, KeyError> {
        let mut keys = store.signing_keys(KEY_OVERLAP_SECS).await?;
        if !keys.iter().any(|k| k.retired_at.is_none()) {
            let (kid, seed) = new_key();
            store.add_signing_key(&kid, &seed).await?;
            tracing::info!(kid, "created the matcher's first token-signing key");
            keys = store.signing_keys(KEY_OVERLAP_SECS).await?;
        }
        let current = keys
            .iter()
            .find(|k| k.retired_at.is_none())
            .ok_or_else(|| KeyError::Corrupt("no current key".into()))?;
        let issuer = Issuer::new(seed_from(&current.seed_hex, &current.kid)?, &current.kid);
        let signers = keys
            .iter()
            .map(|k| {
                let key = SigningKey::from_bytes(&seed_from(&k.seed_hex, &k.kid)?);
                // Talkers refuse a kid that is not the key's id: never publish one.
                if key_id(&key.verifying_key()) != k.kid {
                    return Err(KeyError::Corrupt(k.kid.clone()));
                }
                Ok((k.kid.clone(), key))
            })
            .collect::<Result<Vec<_>, KeyError>>()?;
        let published = signers
            .iter()
            .map(|(kid, key)| PublishedKey {
                kid: kid.clone(),
                public_key: STANDARD.encode(key.verifying_key().as_bytes()),
            })
            .collect();
        Ok(Self {
            issuer: Arc::new(issuer),
            published,
            signers: Arc::new(signers),
        })
    }

    /// Makes a new signing key and retires the others (they stay published for
    /// [`KEY_OVERLAP_SECS`]); returns the new kid.
    pub async fn rotate(store: &Store) -> Result<String, KeyError> {
        let (kid, seed) = new_key();
        store.add_signing_key(&kid, &seed).await?;
        store.retire_signing_keys_except(&kid).await?;
        Ok(kid)
    }

    /// The issuer of new tokens (the newest key).
    pub fn issuer(&self) -> Arc<Issuer> {
        Arc::clone(&self.issuer)
    }

    /// Every key talkers should accept now.
    pub fn published(&self) -> &[PublishedKey] {
        &self.published
    }

    /// The published key set signed for talker `talker_id` and the reply time
    /// `time_ms` (Unix milliseconds), once by every published key
    /// (`docs/talker-agent.md`, "Trust").
    pub fn sign_key_set(&self, talker_id: &str, time_ms: i64) -> Vec<KeySetSignature> {
        let input = key_set_signing_input(talker_id, time_ms, &self.published);
        self.signers
            .iter()
            .map(|(kid, key)| KeySetSignature {
                kid: kid.clone(),
                signature: STANDARD.encode(key.sign(&input).to_bytes()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    fn verifies(key: &PublishedKey, signature: &KeySetSignature, input: &[u8]) -> bool {
        let Ok(public) = STANDARD.decode(&key.public_key) else {
            return false;
        };
        let (Ok(public), Ok(bytes)) = (
            <[u8; 32]>::try_from(public),
            <[u8; 64]>::try_from(STANDARD.decode(&signature.signature).unwrap_or_default()),
        ) else {
            return false;
        };
        VerifyingKey::from_bytes(&public)
            .is_ok_and(|k| k.verify(input, &Signature::from_bytes(&bytes)).is_ok())
    }

    /// After a rotation both keys are published and each signs the set, so a
    /// talker holding only the old key takes the new one.
    #[tokio::test]
    async fn a_rotated_key_set_is_signed_by_the_old_key_too() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("matcher.db").display());
        let store = Store::open(&url).await.unwrap();
        let old = KeyRing::load(&store).await.unwrap();
        let old_kid = old.issuer().kid().to_owned();
        let new_kid = KeyRing::rotate(&store).await.unwrap();
        let ring = KeyRing::load(&store).await.unwrap();
        assert_eq!(ring.issuer().kid(), new_kid);
        let kids: Vec<_> = ring.published().iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids.len(), 2);
        assert!(kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()));
        let signatures = ring.sign_key_set("tv-1", 1_796_662_510_126);
        let input = key_set_signing_input("tv-1", 1_796_662_510_126, ring.published());
        let old_key = &old.published()[0];
        let by_old = signatures.iter().find(|s| s.kid == old_kid).unwrap();
        assert!(verifies(old_key, by_old, &input));
        let later = key_set_signing_input("tv-1", 1_796_662_510_127, ring.published());
        assert!(!verifies(old_key, by_old, &later), "the time is bound");
    }
}
