//! The matcher's Ed25519 token-signing keys. They live in the database so that
//! every matcher instance on one PostgreSQL (or one SQLite file) signs with the
//! same key set; a retired key stays listed for an overlap so tokens and pinned
//! sets roll over, and a revoked key is kept, without its seed in use, so that
//! every instance keeps telling talkers it is revoked.

use super::{Result, Store, conflict_or, now_secs};
use sqlx::Row;
use sqlx::any::AnyRow;

/// One signing key as stored.
#[derive(Clone)]
pub struct SigningKey {
    /// Key id (`kid` of the tokens it signs).
    pub kid: String,
    /// The 32-byte Ed25519 seed, hex (empty when read for a listing or for a
    /// revoked key: it never signs again).
    pub seed_hex: String,
    /// Unix seconds it was made.
    pub created_at: i64,
    /// Unix seconds it stopped signing, if it did.
    pub retired_at: Option<i64>,
    /// Unix seconds it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The seed never reaches a log.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// What [`Store::revoke_signing_key`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// The key is revoked from now on.
    Revoked,
    /// No key has this id.
    Unknown,
    /// The key was revoked before.
    AlreadyRevoked,
    /// It is the only key that signs: revoking it would leave none (rotate
    /// first, or rotate with `--revoke`).
    LastActive,
}

fn signing_key_from(row: &AnyRow) -> Result<SigningKey> {
    Ok(SigningKey {
        kid: row.try_get("kid")?,
        seed_hex: row.try_get("seed")?,
        created_at: row.try_get("created_at")?,
        retired_at: row.try_get("retired_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// Revokes `kid` inside `tx` unless it is the last key that signs; what happened.
async fn revoke_in(tx: &mut sqlx::Transaction<'_, sqlx::Any>, kid: &str) -> Result<Revocation> {
    // One statement checks and revokes, so two admins revoking the last two
    // active keys at once cannot both succeed.
    let updated = sqlx::query(
        "UPDATE signing_keys SET revoked_at = $1, retired_at = COALESCE(retired_at, $1) \
         WHERE kid = $2 AND revoked_at IS NULL AND EXISTS (SELECT 1 FROM signing_keys o \
         WHERE o.kid <> $2 AND o.retired_at IS NULL AND o.revoked_at IS NULL)",
    )
    .bind(now_secs())
    .bind(kid)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() == 1 {
        return Ok(Revocation::Revoked);
    }
    let row = sqlx::query("SELECT revoked_at FROM signing_keys WHERE kid = $1")
        .bind(kid)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match row {
        None => Revocation::Unknown,
        Some(row) if row.try_get::<Option<i64>, _>("revoked_at")?.is_some() => {
            Revocation::AlreadyRevoked
        }
        Some(_) => Revocation::LastActive,
    })
}

impl Store {
    /// Stores a new signing key.
    pub async fn add_signing_key(&self, kid: &str, seed_hex: &str) -> Result<()> {
        sqlx::query("INSERT INTO signing_keys (kid, seed, created_at) VALUES ($1, $2, $3)")
            .bind(kid)
            .bind(seed_hex)
            .bind(now_secs())
            .execute(self.pool())
            .await
            .map_err(|e| conflict_or(e, || format!("signing key {kid:?}")))?;
        Ok(())
    }

    /// What a key ring is made of: the keys still signing, the keys retired
    /// less than `overlap_secs` ago, and every revoked key (with an empty
    /// seed); newest first.
    pub async fn signing_keys(&self, overlap_secs: i64) -> Result<Vec<SigningKey>> {
        let rows = sqlx::query(
            "SELECT kid, CASE WHEN revoked_at IS NULL THEN seed ELSE '' END AS seed, \
             created_at, retired_at, revoked_at FROM signing_keys \
             WHERE revoked_at IS NOT NULL OR retired_at IS NULL OR retired_at > $1 \
             ORDER BY created_at DESC, kid",
        )
        .bind(now_secs() - overlap_secs)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(signing_key_from).collect()
    }

    /// Every key ever made, without seeds, newest first (`matcher key list`).
    pub async fn signing_key_history(&self) -> Result<Vec<SigningKey>> {
        let rows = sqlx::query(
            "SELECT kid, '' AS seed, created_at, retired_at, revoked_at FROM signing_keys \
             ORDER BY created_at DESC, kid",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(signing_key_from).collect()
    }

    /// A rotation in one transaction: stores the new key `kid`, retires every
    /// other, and revokes each of `revoke`. When one of them cannot be revoked
    /// nothing changes, and the answer names it and why.
    pub async fn rotate_signing_key(
        &self,
        kid: &str,
        seed_hex: &str,
        revoke: &[String],
    ) -> Result<Option<(String, Revocation)>> {
        let mut tx = self.pool().begin().await?;
        let now = now_secs();
        sqlx::query("INSERT INTO signing_keys (kid, seed, created_at) VALUES ($1, $2, $3)")
            .bind(kid)
            .bind(seed_hex)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or(e, || format!("signing key {kid:?}")))?;
        sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND kid <> $2",
        )
        .bind(now)
        .bind(kid)
        .execute(&mut *tx)
        .await?;
        for old in revoke {
            let outcome = revoke_in(&mut tx, old).await?;
            if outcome != Revocation::Revoked {
                tx.rollback().await?;
                return Ok(Some((old.clone(), outcome)));
            }
        }
        tx.commit().await?;
        Ok(None)
    }

    /// Retires every key but `keep` (it stays published for the overlap).
    pub async fn retire_signing_keys_except(&self, keep: &str) -> Result<()> {
        sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND kid <> $2",
        )
        .bind(now_secs())
        .bind(keep)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Revokes the key `kid` unless it is the last one that signs.
    pub async fn revoke_signing_key(&self, kid: &str) -> Result<Revocation> {
        let mut tx = self.pool().begin().await?;
        let outcome = revoke_in(&mut tx, kid).await?;
        tx.commit().await?;
        Ok(outcome)
    }
}
