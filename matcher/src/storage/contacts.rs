//! Contacts: who a user may call. A splitdial user is callable only once both
//! have added each other; a plain SIP address is callable at once.

use super::{Result, StorageError, Store, conflict_or};
use crate::registry::{Contact, ContactTarget, UserId};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

/// A contact as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactView {
    /// The contact.
    #[serde(flatten)]
    pub contact: Contact,
    /// Whether it can be called: a plain address always; a user once they have
    /// added the owner back.
    pub accepted: bool,
}

const CONTACT_COLUMNS: &str = "c.id, c.owner, c.name, c.user_id, c.aor, c.server";

fn contact_from(row: &AnyRow) -> Result<ContactView> {
    contact_from_prefixed(row, "")
}

/// A contact from columns named `{prefix}id`, ..., `{prefix}accepted`.
pub(super) fn contact_from_prefixed(row: &AnyRow, prefix: &str) -> Result<ContactView> {
    let column = |name: &str| format!("{prefix}{name}");
    let user: Option<i64> = row.try_get(column("user_id").as_str())?;
    let aor: Option<String> = row.try_get(column("aor").as_str())?;
    let server: Option<String> = row.try_get(column("server").as_str())?;
    let target = match (user, aor, server) {
        (Some(user), None, None) => ContactTarget::User { user },
        (None, Some(aor), Some(server)) => ContactTarget::Address { aor, server },
        _ => {
            return Err(StorageError::Corrupt(
                "contact is neither user nor address".into(),
            ));
        }
    };
    let accepted: i64 = row.try_get(column("accepted").as_str())?;
    Ok(ContactView {
        contact: Contact {
            id: row.try_get(column("id").as_str())?,
            owner: row.try_get(column("owner").as_str())?,
            name: row.try_get(column("name").as_str())?,
            target,
        },
        accepted: accepted != 0,
    })
}

/// Whether the contact in row `c` of `contacts c` is accepted: addresses
/// always; users when a contact points back.
pub(super) const ACCEPTED: &str = "CASE WHEN c.user_id IS NULL THEN 1 \
     WHEN EXISTS (SELECT 1 FROM contacts b WHERE b.owner = c.user_id AND b.user_id = c.owner) \
     THEN 1 ELSE 0 END";

impl Store {
    /// Adds `target` to `owner`'s contacts under `name`.
    pub async fn add_contact(
        &self,
        owner: UserId,
        name: &str,
        target: &ContactTarget,
    ) -> Result<Contact> {
        let (user, aor, server) = match target {
            ContactTarget::User { user } => (Some(*user), None, None),
            ContactTarget::Address { aor, server } => {
                (None, Some(aor.as_str()), Some(server.as_str()))
            }
        };
        let row = sqlx::query(
            "INSERT INTO contacts (owner, name, user_id, aor, server) VALUES ($1, $2, $3, $4, $5) \
             RETURNING id",
        )
        .bind(owner)
        .bind(name)
        .bind(user)
        .bind(aor)
        .bind(server)
        .fetch_one(self.pool())
        .await
        .map_err(|e| conflict_or(e, || format!("contact {name:?}")))?;
        Ok(Contact {
            id: row.try_get("id")?,
            owner,
            name: name.to_owned(),
            target: target.clone(),
        })
    }

    /// `owner`'s contacts, by name.
    pub async fn contacts_of(&self, owner: UserId) -> Result<Vec<ContactView>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CONTACT_COLUMNS}, {ACCEPTED} AS accepted FROM contacts c WHERE c.owner = $1 ORDER BY c.name"
        )))
        .bind(owner)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(contact_from).collect()
    }

    /// Every distinct plain SIP address in anyone's contacts, with its server.
    pub async fn address_contacts(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT DISTINCT aor, server FROM contacts WHERE aor IS NOT NULL ORDER BY aor",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("aor")?, r.try_get("server")?)))
            .collect()
    }

    /// `owner`'s contact called `name`.
    pub async fn contact_by_name(&self, owner: UserId, name: &str) -> Result<Option<ContactView>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CONTACT_COLUMNS}, {ACCEPTED} AS accepted FROM contacts c WHERE c.owner = $1 AND c.name = $2"
        )))
        .bind(owner)
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(contact_from).transpose()
    }
}
