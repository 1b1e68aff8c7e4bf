//! The matcher's Ed25519 token-signing keys. They live in the database so that
//! every matcher instance on one PostgreSQL signs with the same key set; a
//! retired key stays listed for an overlap so tokens and pinned sets roll over.

use super::{Result, Store, conflict_or, now_secs};
use sqlx::Row;

/// One signing key as stored.
#[derive(Clone)]
pub struct SigningKey {
    /// Key id (`kid` of the tokens it signs).
    pub kid: String,
    /// The 32-byte Ed25519 seed, hex.
    pub seed_hex: String,
    /// Unix seconds it was made.
    pub created_at: i64,
    /// Unix seconds it stopped signing, if it did.
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The seed never reaches a log.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
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

    /// Keys still signing, and keys retired less than `overlap_secs` ago;
    /// newest first.
    pub async fn signing_keys(&self, overlap_secs: i64) -> Result<Vec<SigningKey>> {
        let rows = sqlx::query(
            "SELECT kid, seed, created_at, retired_at FROM signing_keys \
             WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at DESC, kid",
        )
        .bind(now_secs() - overlap_secs)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SigningKey {
                    kid: r.try_get("kid")?,
                    seed_hex: r.try_get("seed")?,
                    created_at: r.try_get("created_at")?,
                    retired_at: r.try_get("retired_at")?,
                })
            })
            .collect()
    }

    /// Retires every key but `keep` (after a rotation).
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
}
