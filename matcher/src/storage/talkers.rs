//! Talkers and their SIP accounts: enrollment, heartbeats and the lookups route
//! ranking needs.

use super::{Result, StorageError, Store, conflict_or, now_secs};
use crate::registry::{Account, Media, Talker, TalkerKind, TalkerSoftware, UserId};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

/// A talker being enrolled.
#[derive(Debug, Clone)]
pub struct NewTalker {
    /// Its id (the agent derives it from its key).
    pub id: String,
    /// Owner.
    pub owner: UserId,
    /// Human name.
    pub name: String,
    /// Device kind.
    pub kind: TalkerKind,
    /// Media it carries.
    pub media: Media,
    /// Ed25519 public key, standard base64.
    pub public_key: String,
    /// RFC 5626 instance URN, if it sent one.
    pub instance: Option<String>,
    /// Hash of the credential it will use for heartbeats.
    pub credential_hash: String,
    /// Its accounts, in its own order of preference.
    pub accounts: Vec<NewAccount>,
}

/// One account of a talker being enrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// Address of record.
    pub aor: String,
    /// Server domain (must be a known server).
    pub server: String,
}

/// What a heartbeat says of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountReport {
    /// Address of record.
    pub aor: String,
    /// Whether it is registered right now.
    pub registered: bool,
    /// Its public GRUU, when the server gave one.
    pub gruu: Option<String>,
}

/// A third-party SIP phone an admin adds as a user's talker.
#[derive(Debug, Clone)]
pub struct NewSipPhone {
    /// Its id, chosen by the admin.
    pub id: String,
    /// Owner.
    pub owner: UserId,
    /// Human name.
    pub name: String,
    /// Device kind.
    pub kind: TalkerKind,
    /// Media it carries.
    pub media: Media,
    /// Its accounts, in order of preference.
    pub accounts: Vec<NewAccount>,
}

const TALKER_COLUMNS: &str =
    "id, owner, name, kind, media, public_key, software, instance, last_seen";

fn talker_from(row: &AnyRow) -> Result<Talker> {
    talker_from_prefixed(row, "")
}

/// A talker from columns named `{prefix}id`, `{prefix}owner`, ... (a joined
/// query aliases them apart).
pub(super) fn talker_from_prefixed(row: &AnyRow, prefix: &str) -> Result<Talker> {
    let column = |name: &str| format!("{prefix}{name}");
    let kind: String = row.try_get(column("kind").as_str())?;
    let media: String = row.try_get(column("media").as_str())?;
    let software: String = row.try_get(column("software").as_str())?;
    Ok(Talker {
        id: row.try_get(column("id").as_str())?,
        owner: row.try_get(column("owner").as_str())?,
        name: row.try_get(column("name").as_str())?,
        kind: TalkerKind::parse(&kind)
            .ok_or_else(|| StorageError::Corrupt(format!("talker kind {kind:?}")))?,
        media: Media::parse(&media)
            .ok_or_else(|| StorageError::Corrupt(format!("talker media {media:?}")))?,
        public_key: row.try_get(column("public_key").as_str())?,
        software: TalkerSoftware::parse(&software)
            .ok_or_else(|| StorageError::Corrupt(format!("talker software {software:?}")))?,
        instance: row.try_get(column("instance").as_str())?,
        last_seen: row.try_get(column("last_seen").as_str())?,
    })
}

fn account_from(row: &AnyRow) -> Result<Account> {
    account_from_prefixed(row, "")
}

/// An account from columns named `{prefix}talker_id`, `{prefix}aor`, ...
pub(super) fn account_from_prefixed(row: &AnyRow, prefix: &str) -> Result<Account> {
    let column = |name: &str| format!("{prefix}{name}");
    let registered: i64 = row.try_get(column("registered").as_str())?;
    Ok(Account {
        talker: row.try_get(column("talker_id").as_str())?,
        aor: row.try_get(column("aor").as_str())?,
        server: row.try_get(column("server").as_str())?,
        registered: registered != 0,
        gruu: row.try_get(column("gruu").as_str())?,
    })
}

/// Inserts a new talker's accounts in its order of preference.
async fn insert_accounts(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    talker: &str,
    accounts: &[NewAccount],
) -> Result<()> {
    for (position, account) in (0_i64..).zip(accounts) {
        sqlx::query(
            "INSERT INTO accounts (talker_id, aor, server, position) VALUES ($1, $2, $3, $4)",
        )
        .bind(talker)
        .bind(&account.aor)
        .bind(&account.server)
        .bind(position)
        .execute(&mut **tx)
        .await
        .map_err(|e| {
            conflict_or(e, || {
                format!("account {:?} on server {:?}", account.aor, account.server)
            })
        })?;
    }
    Ok(())
}

impl Store {
    /// Enrolls a talker with its accounts in one transaction.
    /// [`StorageError::Conflict`] when the id is taken, [`StorageError::NotFound`]
    /// when an account names an unknown server.
    pub async fn enroll_talker(&self, talker: &NewTalker) -> Result<Talker> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO talkers (id, owner, name, kind, media, public_key, instance, \
             credential_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&talker.id)
        .bind(talker.owner)
        .bind(&talker.name)
        .bind(talker.kind.as_str())
        .bind(talker.media.as_str())
        .bind(&talker.public_key)
        .bind(talker.instance.as_deref())
        .bind(&talker.credential_hash)
        .bind(now_secs())
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, || format!("talker {:?}", talker.id)))?;
        insert_accounts(&mut tx, &talker.id, &talker.accounts).await?;
        tx.commit().await?;
        self.talker(&talker.id)
            .await?
            .ok_or_else(|| StorageError::NotFound(format!("talker {:?}", talker.id)))
    }

    /// Adds a third-party SIP phone as `phone.owner`'s talker (no key, no
    /// heartbeat credential anyone holds). Errors as [`Store::enroll_talker`].
    pub async fn add_sip_phone(&self, phone: &NewSipPhone) -> Result<Talker> {
        let mut tx = self.pool().begin().await?;
        // The column is NOT NULL UNIQUE. Credential hashes are hex SHA-256, so a
        // value with a prefix matches no credential: no heartbeat can ever
        // authenticate as this talker.
        let unusable_credential = format!("sip-phone:{}", hex::encode(rand::random::<[u8; 16]>()));
        sqlx::query(
            "INSERT INTO talkers (id, owner, name, kind, media, public_key, software, \
             credential_hash, created_at) VALUES ($1, $2, $3, $4, $5, '', $6, $7, $8)",
        )
        .bind(&phone.id)
        .bind(phone.owner)
        .bind(&phone.name)
        .bind(phone.kind.as_str())
        .bind(phone.media.as_str())
        .bind(TalkerSoftware::SipPhone.as_str())
        .bind(&unusable_credential)
        .bind(now_secs())
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, || format!("talker {:?}", phone.id)))?;
        insert_accounts(&mut tx, &phone.id, &phone.accounts).await?;
        tx.commit().await?;
        self.talker(&phone.id)
            .await?
            .ok_or_else(|| StorageError::NotFound(format!("talker {:?}", phone.id)))
    }

    /// Every account of every SIP-phone talker, with its server: what the
    /// presence probes ask about.
    pub async fn sip_phone_accounts(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT a.aor, a.server FROM accounts a JOIN talkers t ON t.id = a.talker_id \
             WHERE t.software = $1 ORDER BY a.aor",
        )
        .bind(TalkerSoftware::SipPhone.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("aor")?, row.try_get("server")?)))
            .collect()
    }

    /// Records an OPTIONS probe of a SIP phone's account: reachable marks the
    /// account registered and the phone seen now (its heartbeat); unreachable
    /// marks the account unregistered. Agents' accounts are never touched.
    pub async fn record_sip_phone_probe(&self, aor: &str, reachable: bool) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE accounts SET registered = $1 WHERE aor = $2 AND talker_id IN \
             (SELECT id FROM talkers WHERE software = $3)",
        )
        .bind(i64::from(reachable))
        .bind(aor)
        .bind(TalkerSoftware::SipPhone.as_str())
        .execute(&mut *tx)
        .await?;
        if reachable {
            sqlx::query(
                "UPDATE talkers SET last_seen = $1 WHERE software = $2 AND id IN \
                 (SELECT talker_id FROM accounts WHERE aor = $3)",
            )
            .bind(now_secs())
            .bind(TalkerSoftware::SipPhone.as_str())
            .bind(aor)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The talker with this id.
    pub async fn talker(&self, id: &str) -> Result<Option<Talker>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TALKER_COLUMNS} FROM talkers WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(talker_from).transpose()
    }

    /// The talker whose heartbeat credential hashes to `credential_hash`.
    pub async fn talker_by_credential(&self, credential_hash: &str) -> Result<Option<Talker>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TALKER_COLUMNS} FROM talkers WHERE credential_hash = $1"
        )))
        .bind(credential_hash)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(talker_from).transpose()
    }

    /// A user's talkers, oldest first.
    pub async fn talkers_of(&self, owner: UserId) -> Result<Vec<Talker>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TALKER_COLUMNS} FROM talkers WHERE owner = $1 ORDER BY created_at, id"
        )))
        .bind(owner)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(talker_from).collect()
    }

    /// A talker's accounts in its own order.
    pub async fn accounts_of(&self, talker: &str) -> Result<Vec<Account>> {
        let rows = sqlx::query(
            "SELECT talker_id, aor, server, registered, gruu FROM accounts \
             WHERE talker_id = $1 ORDER BY position",
        )
        .bind(talker)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(account_from).collect()
    }

    /// A user's talkers, each with its accounts: what route ranking works on.
    pub async fn talkers_with_accounts(
        &self,
        owner: UserId,
    ) -> Result<Vec<(Talker, Vec<Account>)>> {
        self.talkers_with_accounts_of(&[owner]).await
    }

    /// The talkers of several users with their accounts, in one query (a route
    /// query reads both sides at once): by owner, oldest talker first, each
    /// talker's accounts in its own order.
    pub async fn talkers_with_accounts_of(
        &self,
        owners: &[UserId],
    ) -> Result<Vec<(Talker, Vec<Account>)>> {
        if owners.is_empty() {
            return Ok(Vec::new());
        }
        // Placeholders only, never values, go into the text.
        let placeholders: Vec<String> = (1..=owners.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT t.id, t.owner, t.name, t.kind, t.media, t.public_key, t.software, t.instance, \
             t.last_seen, \
             a.talker_id, a.aor, a.server, a.registered, a.gruu \
             FROM talkers t LEFT JOIN accounts a ON a.talker_id = t.id \
             WHERE t.owner IN ({}) ORDER BY t.owner, t.created_at, t.id, a.position",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for owner in owners {
            query = query.bind(*owner);
        }
        let rows = query.fetch_all(self.pool()).await?;
        let mut out: Vec<(Talker, Vec<Account>)> = Vec::new();
        for row in &rows {
            let id: String = row.try_get("id")?;
            if out.last().is_none_or(|(t, _)| t.id != id) {
                out.push((talker_from(row)?, Vec::new()));
            }
            let aor: Option<String> = row.try_get("aor")?;
            if aor.is_some()
                && let Some((_, accounts)) = out.last_mut()
            {
                accounts.push(account_from(row)?);
            }
        }
        // Keep the callers' order of owners.
        out.sort_by_key(|(t, _)| owners.iter().position(|o| *o == t.owner));
        Ok(out)
    }

    /// Removes a talker and its accounts: its credential stops working with the
    /// next request (every request looks the credential up here), and it drops
    /// out of routes, listings and presence probes. False when there is none.
    pub async fn remove_talker(&self, id: &str) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        // Not left to ON DELETE CASCADE: SQLite enforces it only with the
        // foreign_keys pragma on.
        sqlx::query("DELETE FROM accounts WHERE talker_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let removed = sqlx::query("DELETE FROM talkers WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(removed.rows_affected() == 1)
    }

    /// Replaces an agent's heartbeat credential by the one hashed as
    /// `credential_hash`: the old one is refused from the next request on.
    /// [`StorageError::NotFound`] when there is no such agent (a SIP phone has
    /// no credential to rotate).
    pub async fn rotate_talker_credential(&self, id: &str, credential_hash: &str) -> Result<()> {
        let updated =
            sqlx::query("UPDATE talkers SET credential_hash = $1 WHERE id = $2 AND software = $3")
                .bind(credential_hash)
                .bind(id)
                .bind(TalkerSoftware::Agent.as_str())
                .execute(self.pool())
                .await?;
        if updated.rows_affected() == 0 {
            return Err(StorageError::NotFound(format!("talker agent {id:?}")));
        }
        Ok(())
    }

    /// Records a heartbeat: the talker is seen now, in `state`, and each reported
    /// account's registration (accounts it does not have are ignored).
    pub async fn record_heartbeat(
        &self,
        talker: &str,
        state: &str,
        accounts: &[AccountReport],
    ) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        let updated = sqlx::query("UPDATE talkers SET last_seen = $1, state = $2 WHERE id = $3")
            .bind(now_secs())
            .bind(state)
            .bind(talker)
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(StorageError::NotFound(format!("talker {talker:?}")));
        }
        for report in accounts {
            sqlx::query(
                "UPDATE accounts SET registered = $1, gruu = $2 WHERE talker_id = $3 AND aor = $4",
            )
            .bind(i64::from(report.registered))
            .bind(report.gruu.as_deref())
            .bind(talker)
            .bind(&report.aor)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
