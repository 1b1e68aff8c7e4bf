//! Call records and their event log: who called whom, through which route, how
//! it went. Written as the call goes, so a restart loses nothing that matters.
//!
//! The database keeps states and media as their words; they become
//! [`CallState`] and [`Media`] here, and a word the code does not know is a
//! [`StorageError::Corrupt`] naming it.

use super::{Result, StorageError, Store, conflict_or, now_secs};
use crate::registry::{Media, UserId};
use serde::Serialize;
use splitdial_api::CallState;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

/// One call as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    /// The matcher's call id.
    pub id: String,
    /// Calling user.
    pub caller: UserId,
    /// The contact called.
    pub contact_id: i64,
    /// The chosen route, as JSON (a `RouteView`).
    pub route: String,
    /// The media asked for.
    pub media: Media,
    /// Latest state.
    pub state: CallState,
    /// End reason code, once ended.
    pub reason: Option<String>,
    /// The matcher instance that owns the control leg.
    pub owner_instance: String,
    /// Unix seconds it was requested.
    pub created_at: i64,
    /// Unix seconds it ended, if it did.
    pub ended_at: Option<i64>,
}

/// One state change of a call, as the SSE stream sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallEvent {
    /// The call.
    pub call: String,
    /// 1, 2, 3... per call.
    pub seq: i64,
    /// The state reached.
    pub state: CallState,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// Details (JSON text).
    pub detail: String,
}

/// A stored call state.
fn call_state(word: &str) -> Result<CallState> {
    CallState::parse(word).ok_or_else(|| StorageError::Corrupt(format!("call state {word:?}")))
}

fn call_from(row: &AnyRow) -> Result<CallRecord> {
    let media: String = row.try_get("media")?;
    let state: String = row.try_get("state")?;
    Ok(CallRecord {
        id: row.try_get("id")?,
        caller: row.try_get("caller")?,
        contact_id: row.try_get("contact_id")?,
        route: row.try_get("route")?,
        media: Media::parse(&media)
            .ok_or_else(|| StorageError::Corrupt(format!("call media {media:?}")))?,
        state: call_state(&state)?,
        reason: row.try_get("reason")?,
        owner_instance: row.try_get("owner_instance")?,
        created_at: row.try_get("created_at")?,
        ended_at: row.try_get("ended_at")?,
    })
}

const CALL_COLUMNS: &str =
    "id, caller, contact_id, route, media, state, reason, owner_instance, created_at, ended_at";

impl Store {
    /// Records a new call.
    pub async fn insert_call(&self, call: &CallRecord) -> Result<()> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO calls ({CALL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )))
        .bind(&call.id)
        .bind(call.caller)
        .bind(call.contact_id)
        .bind(&call.route)
        .bind(call.media.as_str())
        .bind(call.state.as_str())
        .bind(call.reason.as_deref())
        .bind(&call.owner_instance)
        .bind(call.created_at)
        .bind(call.ended_at)
        .execute(self.pool())
        .await
        .map_err(|e| conflict_or(e, || format!("call {:?}", call.id)))?;
        Ok(())
    }

    /// The call with this id.
    pub async fn call(&self, id: &str) -> Result<Option<CallRecord>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(call_from).transpose()
    }

    /// Appends an event and moves the call to its state (ending it when the
    /// state is final), atomically. Returns the event with its sequence number.
    ///
    /// One statement (migration 0003): the UPDATE numbers the event from the
    /// call's `last_seq` and a trigger files it. A call's set-up records several
    /// events while its talkers dial; each used to be five round trips to the
    /// database (a transaction, a read of the last number, two writes), and that
    /// work competed for the CPU with the very set-up it recorded.
    pub async fn append_call_event(
        &self,
        call: &str,
        state: CallState,
        reason: Option<&str>,
        detail: &str,
    ) -> Result<CallEvent> {
        let ended_at = state.is_final().then(now_secs);
        let at_ms = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or_default(),
        )
        .unwrap_or(i64::MAX);
        let row = sqlx::query(
            "UPDATE calls SET last_seq = last_seq + 1, state = $1, reason = COALESCE($2, reason), \
             ended_at = COALESCE($3, ended_at), last_at_ms = $4, last_detail = $5 \
             WHERE id = $6 RETURNING last_seq",
        )
        .bind(state.as_str())
        .bind(reason)
        .bind(ended_at)
        .bind(at_ms)
        .bind(detail)
        .bind(call)
        .fetch_optional(self.pool())
        .await
        .map_err(|e| conflict_or(e, || format!("an event of call {call:?}")))?;
        let Some(row) = row else {
            return Err(StorageError::NotFound(format!("call {call:?}")));
        };
        Ok(CallEvent {
            call: call.to_owned(),
            seq: row.try_get("last_seq")?,
            state,
            at_ms,
            detail: detail.to_owned(),
        })
    }

    /// A call's events after `after_seq`, in order.
    pub async fn call_events(&self, call: &str, after_seq: i64) -> Result<Vec<CallEvent>> {
        let rows = sqlx::query(
            "SELECT call_id, seq, state, at_ms, detail FROM call_events \
             WHERE call_id = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(call)
        .bind(after_seq)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let state: String = r.try_get("state")?;
                Ok(CallEvent {
                    call: r.try_get("call_id")?,
                    seq: r.try_get("seq")?,
                    state: call_state(&state)?,
                    at_ms: r.try_get("at_ms")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// Ids of the calls `instance` owned that had not ended: after a restart of
    /// that instance their control legs are gone.
    pub async fn unfinished_calls(&self, instance: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT id FROM calls WHERE owner_instance = $1 \
             AND state NOT IN ('ended', 'handed_off', 'lost_control') ORDER BY created_at, id",
        )
        .bind(instance)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A state word the code does not know (a newer matcher's, or a broken
    /// row) is an error naming it, never a default.
    #[tokio::test]
    async fn an_unknown_stored_state_is_a_corrupt_row_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite:{}", dir.path().join("m.db").display()))
            .await
            .unwrap();
        let alice = store.add_user("alice", "Alice").await.unwrap();
        let call = CallRecord {
            id: "c1".into(),
            caller: alice.id,
            contact_id: 1,
            route: "{}".into(),
            media: Media::Video,
            state: CallState::Matching,
            reason: None,
            owner_instance: "m1".into(),
            created_at: 1,
            ended_at: None,
        };
        store.insert_call(&call).await.unwrap();
        store
            .append_call_event("c1", CallState::CalleeRinging, None, "{}")
            .await
            .unwrap();
        let stored = store.call("c1").await.unwrap().unwrap();
        assert_eq!(
            (stored.state, stored.media),
            (CallState::CalleeRinging, Media::Video)
        );
        sqlx::query("UPDATE calls SET state = 'ringing'")
            .execute(store.pool())
            .await
            .unwrap();
        let error = store.call("c1").await.unwrap_err();
        assert!(
            matches!(&error, StorageError::Corrupt(what) if what == "call state \"ringing\""),
            "{error}"
        );
        sqlx::query("UPDATE call_events SET state = 'ringing'")
            .execute(store.pool())
            .await
            .unwrap();
        assert!(matches!(
            store.call_events("c1", 0).await,
            Err(StorageError::Corrupt(_))
        ));
        store.close().await;
    }
}
