//! Bearer tokens of users and one-time enrollment tokens, stored only as
//! hashes (see `auth`): a stolen database grants nothing.

use super::users::user_from;
use super::{Result, Store, conflict_or, now_secs};
use crate::auth::{FINGERPRINT_LEN, fingerprint};
use crate::registry::{User, UserId};
use serde::Serialize;
use sqlx::{AssertSqlSafe, Row};

/// One of a user's API tokens as an operator sees it: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiTokenInfo {
    /// The first hex digits of the token's hash ([`crate::auth::fingerprint`]).
    pub fingerprint: String,
    /// The label it was made with.
    pub label: String,
    /// When it was made, Unix seconds.
    pub created_at: i64,
}

/// Which of a user's API tokens to revoke.
#[derive(Debug, Clone, Copy)]
pub enum TokenSelector<'a> {
    /// Every token made with this label.
    Label(&'a str),
    /// The token with this fingerprint (see [`ApiTokenInfo::fingerprint`]).
    Fingerprint(&'a str),
    /// All of them.
    All,
}

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

    /// A user's API tokens, oldest first.
    pub async fn api_tokens(&self, user: UserId) -> Result<Vec<ApiTokenInfo>> {
        let rows = sqlx::query(
            "SELECT token_hash, label, created_at FROM api_tokens WHERE user_id = $1 \
             ORDER BY created_at, token_hash",
        )
        .bind(user)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let hash: String = row.try_get("token_hash")?;
                Ok(ApiTokenInfo {
                    fingerprint: fingerprint(&hash).to_owned(),
                    label: row.try_get("label")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Deletes the API tokens of `user` that `which` selects; returns how many.
    /// Every request reads its token from here, so a revoked token is refused
    /// from the next request on.
    pub async fn revoke_api_tokens(&self, user: UserId, which: TokenSelector<'_>) -> Result<u64> {
        let query = match which {
            TokenSelector::Label(label) => {
                sqlx::query("DELETE FROM api_tokens WHERE user_id = $1 AND label = $2")
                    .bind(user)
                    .bind(label)
            }
            TokenSelector::Fingerprint(print) => sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM api_tokens WHERE user_id = $1 \
                 AND substr(token_hash, 1, {FINGERPRINT_LEN}) = $2"
            )))
            .bind(user)
            .bind(print.to_ascii_lowercase()),
            TokenSelector::All => {
                sqlx::query("DELETE FROM api_tokens WHERE user_id = $1").bind(user)
            }
        };
        Ok(query.execute(self.pool()).await?.rows_affected())
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
