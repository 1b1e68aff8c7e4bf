//! Bearer tokens of users and one-time enrollment tokens, stored only as
//! hashes (see `auth`): a stolen database grants nothing.

use super::users::user_from;
use super::{Result, Store, conflict_or, now_secs};
use crate::registry::{User, UserId};
use sqlx::Row;

impl Store {
    /// Stores the hash of a new API token of `user`.
    pub async fn add_api_token(&self, user: UserId, token_hash: &str, label: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, user_id, label, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user)
        .bind(label)
        .bind(now_secs())
        .execute(self.pool())
        .await
        .map_err(|e| conflict_or(e, || "token".into()))?;
        Ok(())
    }

    /// The user an API token (by hash) belongs to. One statement: every API
    /// request asks it before anything else, and a call's set-up waits for it.
    pub async fn user_for_api_token(&self, token_hash: &str) -> Result<Option<User>> {
        let row = sqlx::query(
            "SELECT u.id, u.name, u.display_name FROM api_tokens t \
             JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(user_from).transpose()
    }

    /// Stores the hash of a one-time enrollment token of `user`, valid until
    /// `expires_at` (Unix seconds).
    pub async fn add_enrollment_token(
        &self,
        user: UserId,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO enrollment_tokens (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(token_hash)
        .bind(user)
        .bind(expires_at)
        .execute(self.pool())
        .await
        .map_err(|e| conflict_or(e, || "enrollment token".into()))?;
        Ok(())
    }

    /// Uses up an enrollment token: the owner when it was valid, unused and
    /// unexpired; `None` otherwise. Atomic: two enrollments racing with one
    /// token cannot both win.
    pub async fn take_enrollment_token(&self, token_hash: &str) -> Result<Option<UserId>> {
        let now = now_secs();
        let row = sqlx::query(
            "UPDATE enrollment_tokens SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $3 RETURNING user_id",
        )
        .bind(now)
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get("user_id")).transpose()?)
    }
}
