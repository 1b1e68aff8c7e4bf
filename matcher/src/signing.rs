//! The matcher's token-signing keys: read from storage (the first created on
//! first start), the newest active one signs tokens, the active and the
//! recently retired ones are published to talkers in heartbeat and enrollment
//! replies, and revoked ones are named as revoked. Each published key also
//! signs the key set of every heartbeat reply, so a talker that holds any of
//! them (a retired key during its overlap too) takes the new set: that is how a
//! rotation and a revocation reach enrolled talkers.
//!
//! The ring is reread from storage every [`KEY_RELOAD_INTERVAL`] while the
//! matcher runs, so every matcher process on one store publishes the same set
//! and signs with the same key, at most that long after an admin command
//! changed it, without a restart.

use crate::storage::{Revocation, SigningKey as StoredKey, StorageError, Store};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};
use splitdial_api::{KeySetSignature, revoking_key_set_signing_input};
use splitdial_sip::call_token::{CurrentIssuer, Issuer, key_id};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a retired key stays published, so pinned sets roll over.
pub const KEY_OVERLAP_SECS: i64 = 24 * 3600;

/// How often a running matcher rereads its keys from storage: the most a
/// rotation or a revocation waits before every process publishes it.
pub const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// A public key as talkers receive it: the contract's key entry.
pub use splitdial_api::MatcherKey as PublishedKey;

/// The key set as one reread found it.
struct Snapshot {
    published: Vec<PublishedKey>,
    revoked: Vec<String>,
    /// The private half of each published key, in the same order, by kid.
    signers: Vec<(String, SigningKey)>,
}

/// The signing side: the issuer of new tokens and the published key set,
/// shared by every handler and kept current by [`KeyRing::keep_current`].
#[derive(Clone)]
pub struct KeyRing {
    issuer: CurrentIssuer,
    snapshot: Arc<RwLock<Arc<Snapshot>>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let snapshot = self.snapshot();
        f.debug_struct("KeyRing")
            .field("kid", &self.issuer.kid())
            .field("published", &snapshot.published)
            .field("revoked", &snapshot.revoked)
            .finish()
    }
}

/// A heartbeat reply's key part, from one reading of the ring.
#[derive(Debug, Clone)]
pub struct SignedKeySet {
    /// The keys talkers should accept now.
    pub keys: Vec<PublishedKey>,
    /// The kids of revoked keys.
    pub revoked: Vec<String>,
    /// One signature per published key over both, the talker and the time.
    pub signatures: Vec<KeySetSignature>,
}

/// Errors loading or changing keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A stored seed is not 32 bytes of hex, or not the key its kid names.
    #[error("stored signing key {0:?} is corrupt")]
    Corrupt(String),
    /// No stored key is active (every one retired or revoked).
    #[error("no active signing key in the database (run `matcher key rotate`)")]
    NoActiveKey,
    /// A key to revoke does not exist.
    #[error("no signing key {0:?} (see `matcher key list`)")]
    UnknownKey(String),
    /// A key to revoke was revoked before.
    #[error("signing key {0:?} is already revoked")]
    AlreadyRevoked(String),
    /// The key to revoke is the only active one.
    #[error(
        "signing key {0:?} is the only active key: revoking it would leave none to sign \
         (use `matcher key rotate --revoke {0}`)"
    )]
    LastActive(String),
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

/// The snapshot and the issuer (the newest active key) of stored `keys`.
fn snapshot_of(keys: &[StoredKey]) -> Result<(Snapshot, Issuer), KeyError> {
    let current = keys
        .iter()
        .find(|k| k.retired_at.is_none() && k.revoked_at.is_none())
        .ok_or(KeyError::NoActiveKey)?;
    let issuer = Issuer::new(seed_from(&current.seed_hex, &current.kid)?, &current.kid);
    let signers = keys
        .iter()
        .filter(|k| k.revoked_at.is_none())
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
    let mut revoked: Vec<String> = keys
        .iter()
        .filter(|k| k.revoked_at.is_some())
        .map(|k| k.kid.clone())
        .collect();
    // Every process sends the same bytes for the same store.
    revoked.sort();
    let snapshot = Snapshot {
        published,
        revoked,
        signers,
    };
    Ok((snapshot, issuer))
}

impl KeyRing {
    /// Loads the key set, creating the first key when none is active.
    pub async fn load(store: &Store) -> Result<Self, KeyError> {
        let mut keys = store.signing_keys(KEY_OVERLAP_SECS).await?;
        if !keys
            .iter()
            .any(|k| k.retired_at.is_none() && k.revoked_at.is_none())
        {
            let (kid, seed) = new_key();
            store.add_signing_key(&kid, &seed).await?;
            tracing::info!(kid, "created the matcher's first token-signing key");
            keys = store.signing_keys(KEY_OVERLAP_SECS).await?;
        }
        let (snapshot, issuer) = snapshot_of(&keys)?;
        Ok(Self {
            issuer: CurrentIssuer::new(issuer),
            snapshot: Arc::new(RwLock::new(Arc::new(snapshot))),
        })
    }

    /// Rereads the keys from `store` and puts them in force; whether the
    /// published set, the revoked set or the signing key changed. On an error
    /// the ring stays as it was.
    pub async fn reload(&self, store: &Store) -> Result<bool, KeyError> {
        let keys = store.signing_keys(KEY_OVERLAP_SECS).await?;
        let (snapshot, issuer) = snapshot_of(&keys)?;
        let before = self.snapshot();
        let changed = before.published != snapshot.published
            || before.revoked != snapshot.revoked
            || self.issuer.kid() != issuer.kid();
        if changed {
            tracing::info!(
                kid = issuer.kid(),
                published = ?snapshot.published.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
                revoked = ?snapshot.revoked,
                "token-signing keys changed"
            );
            // The issuer first: a token signed by a key about to be dropped
            // from the set would be refused.
            self.issuer.set(issuer);
            let snapshot = Arc::new(snapshot);
            match self.snapshot.write() {
                Ok(mut current) => *current = snapshot,
                Err(poisoned) => *poisoned.into_inner() = snapshot,
            }
        }
        Ok(changed)
    }

    /// Rereads the keys every [`KEY_RELOAD_INTERVAL`] until `stop`; a failed
    /// reread is logged once per run of failures and the ring kept.
    pub fn keep_current(&self, store: Store, stop: CancellationToken) {
        let ring = self.clone();
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(KEY_RELOAD_INTERVAL) => {}
                }
                match ring.reload(&store).await {
                    Ok(_) if failing => {
                        failing = false;
                        tracing::info!("token-signing keys read again");
                    }
                    Ok(_) => {}
                    Err(error) if !failing => {
                        failing = true;
                        tracing::warn!(%error, "cannot reread the token-signing keys; keeping them");
                    }
                    Err(_) => {}
                }
            }
        });
    }

    /// Makes a new signing key, retires the others (they stay published for
    /// [`KEY_OVERLAP_SECS`]) and revokes each of `revoke`, all or nothing;
    /// returns the new kid.
    pub async fn rotate(store: &Store, revoke: &[String]) -> Result<String, KeyError> {
        let (kid, seed) = new_key();
        match store.rotate_signing_key(&kid, &seed, revoke).await? {
            None => Ok(kid),
            Some((old, outcome)) => Err(refusal(old, outcome)),
        }
    }

    /// Revokes the key `kid`, unless it is the only active one.
    pub async fn revoke(store: &Store, kid: &str) -> Result<(), KeyError> {
        match store.revoke_signing_key(kid).await? {
            Revocation::Revoked => Ok(()),
            outcome => Err(refusal(kid.to_owned(), outcome)),
        }
    }

    /// The issuer of new tokens (the newest active key, kept current).
    pub fn issuer(&self) -> CurrentIssuer {
        self.issuer.clone()
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(snapshot) => Arc::clone(&snapshot),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Every key talkers should accept now.
    pub fn published(&self) -> Vec<PublishedKey> {
        self.snapshot().published.clone()
    }

    /// The kids of every revoked key.
    pub fn revoked(&self) -> Vec<String> {
        self.snapshot().revoked.clone()
    }

    /// The published key set and the revoked kids, signed for talker
    /// `talker_id` and the reply time `time_ms` (Unix milliseconds) by every
    /// published key (`docs/talker-agent.md`, "Trust").
    pub fn sign_key_set(&self, talker_id: &str, time_ms: i64) -> SignedKeySet {
        let snapshot = self.snapshot();
        let input = revoking_key_set_signing_input(
            talker_id,
            time_ms,
            &snapshot.published,
            &snapshot.revoked,
        );
        let signatures = snapshot
            .signers
            .iter()
            .map(|(kid, key)| KeySetSignature {
                kid: kid.clone(),
                signature: STANDARD.encode(key.sign(&input).to_bytes()),
            })
            .collect();
        SignedKeySet {
            keys: snapshot.published.clone(),
            revoked: snapshot.revoked.clone(),
            signatures,
        }
    }
}

/// The error for a revocation of `kid` that did not happen.
fn refusal(kid: String, outcome: Revocation) -> KeyError {
    match outcome {
        Revocation::Unknown | Revocation::Revoked => KeyError::UnknownKey(kid),
        Revocation::AlreadyRevoked => KeyError::AlreadyRevoked(kid),
        Revocation::LastActive => KeyError::LastActive(kid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    use splitdial_api::key_set_signing_input;

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

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("matcher.db").display());
        let store = Store::open(&url).await.unwrap();
        (dir, store)
    }

    /// After a rotation both keys are published and each signs the set, so a
    /// talker holding only the old key takes the new one.
    #[tokio::test]
    async fn a_rotated_key_set_is_signed_by_the_old_key_too() {
        let (_dir, store) = store().await;
        let old = KeyRing::load(&store).await.unwrap();
        let old_kid = old.issuer().kid();
        let old_key = old.published()[0].clone();
        let new_kid = KeyRing::rotate(&store, &[]).await.unwrap();
        let ring = KeyRing::load(&store).await.unwrap();
        assert_eq!(ring.issuer().kid(), new_kid);
        let kids: Vec<_> = ring.published().iter().map(|k| k.kid.clone()).collect();
        assert_eq!(kids.len(), 2);
        assert!(kids.contains(&old_kid) && kids.contains(&new_kid));
        let set = ring.sign_key_set("tv-1", 1_796_662_510_126);
        assert!(set.revoked.is_empty());
        let input = key_set_signing_input("tv-1", 1_796_662_510_126, &set.keys);
        let by_old = set.signatures.iter().find(|s| s.kid == old_kid).unwrap();
        assert!(verifies(&old_key, by_old, &input));
        let later = key_set_signing_input("tv-1", 1_796_662_510_127, &set.keys);
        assert!(!verifies(&old_key, by_old, &later), "the time is bound");
    }

    /// A ring that is running takes a rotation with a revocation made through
    /// another process's store handle: the revoked key is no longer published
    /// nor signs, the set names it, the new key signs the set and the tokens.
    #[tokio::test]
    async fn a_running_ring_takes_a_revocation_at_its_next_reread() {
        let (_dir, store) = store().await;
        let ring = KeyRing::load(&store).await.unwrap();
        let old_kid = ring.issuer().kid();
        let issuer = ring.issuer();
        assert!(!ring.reload(&store).await.unwrap(), "nothing changed yet");
        let new_kid = KeyRing::rotate(&store, std::slice::from_ref(&old_kid))
            .await
            .unwrap();
        assert_eq!(ring.issuer().kid(), old_kid, "not reread yet");
        assert!(ring.reload(&store).await.unwrap());
        assert_eq!(issuer.kid(), new_kid, "every handle signs with the new key");
        let set = ring.sign_key_set("tv-1", 1_000);
        let kids: Vec<_> = set.keys.iter().map(|k| k.kid.clone()).collect();
        assert_eq!(kids, std::slice::from_ref(&new_kid));
        assert_eq!(set.revoked, std::slice::from_ref(&old_kid));
        assert_eq!(set.signatures.len(), 1);
        let input = revoking_key_set_signing_input("tv-1", 1_000, &set.keys, &set.revoked);
        assert!(verifies(&set.keys[0], &set.signatures[0], &input));
        let unrevoked = key_set_signing_input("tv-1", 1_000, &set.keys);
        assert!(
            !verifies(&set.keys[0], &set.signatures[0], &unrevoked),
            "the revoked list is signed"
        );
    }

    /// The only active key cannot be revoked; an unknown or revoked kid is
    /// named; a rotation whose revocation fails changes nothing.
    #[tokio::test]
    async fn revoking_the_last_active_key_is_refused() {
        let (_dir, store) = store().await;
        let ring = KeyRing::load(&store).await.unwrap();
        let only = ring.issuer().kid();
        let refused = KeyRing::revoke(&store, &only).await.unwrap_err();
        assert!(
            matches!(&refused, KeyError::LastActive(k) if *k == only),
            "{refused}"
        );
        let refused = KeyRing::revoke(&store, "m-0000000000000000")
            .await
            .unwrap_err();
        assert!(matches!(refused, KeyError::UnknownKey(_)), "{refused}");
        let refused = KeyRing::rotate(&store, &["m-0000000000000000".into()])
            .await
            .unwrap_err();
        assert!(matches!(refused, KeyError::UnknownKey(_)), "{refused}");
        assert!(
            !ring.reload(&store).await.unwrap(),
            "the failed rotation left no trace"
        );
        // Once another key signs, the old one can go, once.
        let new_kid = KeyRing::rotate(&store, &[]).await.unwrap();
        KeyRing::revoke(&store, &only).await.unwrap();
        let refused = KeyRing::revoke(&store, &only).await.unwrap_err();
        assert!(matches!(refused, KeyError::AlreadyRevoked(_)), "{refused}");
        let refused = KeyRing::revoke(&store, &new_kid).await.unwrap_err();
        assert!(matches!(refused, KeyError::LastActive(_)), "{refused}");
    }
}
