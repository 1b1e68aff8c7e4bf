//! What a user sees of themselves: profile, talkers, contacts.

use super::{ApiError, AppState, CurrentUser};
use crate::registry::ContactTarget;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

/// `GET /v1/me`.
pub async fn me(CurrentUser(user): CurrentUser) -> Json<Value> {
    Json(json!({"id": user.id, "name": user.name, "display_name": user.display_name}))
}

/// `GET /v1/me/talkers`: the user's talkers with their accounts and online state.
pub async fn talkers(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let now = crate::storage::now_secs();
    let max_age = i64::try_from(state.settings.max_heartbeat_age.as_secs()).unwrap_or(i64::MAX);
    let talkers: Vec<Value> = state
        .store
        .talkers_with_accounts(user.id)
        .await?
        .into_iter()
        .map(|(talker, accounts)| {
            let online = crate::route::heartbeat_fresh(&talker, now, max_age);
            json!({
                "id": talker.id,
                "name": talker.name,
                "kind": talker.kind,
                "media": talker.media,
                "public_key": talker.public_key,
                "software": talker.software,
                "online": online,
                "last_seen": talker.last_seen,
                "accounts": accounts.iter().map(|a| json!({
                    "aor": a.aor,
                    "server": a.server,
                    "registered": a.registered && online,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({ "talkers": talkers })))
}

/// `GET /v1/me/contacts`: each contact with the server domains where it can be
/// reached — never the devices behind them.
pub async fn contacts(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let mut out = Vec::new();
    for view in state.store.contacts_of(user.id).await? {
        let (kind, servers) = match &view.contact.target {
            ContactTarget::Address { server, .. } => ("address", vec![server.clone()]),
            ContactTarget::User { user: other } if view.accepted => {
                let mut servers: Vec<String> = state
                    .store
                    .talkers_with_accounts(*other)
                    .await?
                    .into_iter()
                    .flat_map(|(_, accounts)| accounts.into_iter().map(|a| a.server))
                    .collect();
                servers.sort();
                servers.dedup();
                ("user", servers)
            }
            ContactTarget::User { .. } => ("user", Vec::new()),
        };
        out.push(json!({
            "name": view.contact.name,
            "kind": kind,
            "accepted": view.accepted,
            "servers": servers,
        }));
    }
    Ok(Json(json!({ "contacts": out })))
}
