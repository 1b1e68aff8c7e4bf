//! Users: the people who own talkers and contacts.

use super::{Result, StorageError, Store, conflict_or, now_secs};
use crate::registry::{User, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

pub(super) fn user_from(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        display_name: row.try_get("display_name")?,
    })
}

impl Store {
    /// Adds a user; [`StorageError::Conflict`] when the name is taken.
    pub async fn add_user(&self, name: &str, display_name: &str) -> Result<User> {
        let row = sqlx::query(
            "INSERT INTO users (name, display_name, created_at) VALUES ($1, $2, $3) \
             RETURNING id, name, display_name",
        )
        .bind(name)
        .bind(display_name)
        .bind(now_secs())
        .fetch_one(self.pool())
        .await
        .map_err(|e| conflict_or(e, || format!("user {name:?}")))?;
        user_from(&row)
    }

    /// The user with this id.
    pub async fn user(&self, id: UserId) -> Result<Option<User>> {
        let row = sqlx::query("SELECT id, name, display_name FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(user_from).transpose()
    }

    /// The user with this name.
    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT id, name, display_name FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(user_from).transpose()
    }

    /// The user with this name, or [`StorageError::NotFound`].
    pub async fn require_user(&self, name: &str) -> Result<User> {
        self.user_by_name(name)
            .await?
            .ok_or_else(|| StorageError::NotFound(format!("user {name:?}")))
    }

    /// Every user, by id.
    pub async fn users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query("SELECT id, name, display_name FROM users ORDER BY id")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(user_from).collect()
    }
}
