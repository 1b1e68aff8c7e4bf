//! What a user sees of themselves: profile, talkers, contacts.

use super::{ApiError, AppState, CurrentUser};
use crate::registry::ContactTarget;
use axum::Json;
use axum::extract::State;
use splitdial_api::{
    Contact, ContactKind, ContactList, Me, RegisteredAccount, RegisteredTalker, TalkerList,
};

/// `GET /v1/me`.
pub async fn me(CurrentUser(user): CurrentUser) -> Json<Me> {
    Json(Me {
        id: user.id,
        name: user.name,
        display_name: Some(user.display_name),
    })
}

/// `GET /v1/me/talkers`: the user's talkers with their accounts and online state.
pub async fn talkers(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<TalkerList>, ApiError> {
    let now = crate::storage::now_secs();
    let max_age = i64::try_from(state.settings.max_heartbeat_age.as_secs()).unwrap_or(i64::MAX);
    let talkers = state
        .store
        .talkers_with_accounts(user.id)
        .await?
        .into_iter()
        .map(|(talker, accounts)| {
            let online = crate::route::heartbeat_fresh(&talker, now, max_age);
            RegisteredTalker {
                accounts: accounts
                    .into_iter()
                    .map(|a| RegisteredAccount {
                        aor: a.aor,
                        server: a.server,
                        registered: a.registered && online,
                    })
                    .collect(),
                id: talker.id,
                name: talker.name,
                kind: talker.kind,
                media: talker.media,
                public_key: talker.public_key,
                software: talker.software,
                online,
                last_seen: talker.last_seen,
            }
        })
        .collect();
    Ok(Json(TalkerList { talkers }))
}

/// `GET /v1/me/contacts`: each contact with the server domains where it can be
/// reached — never the devices behind them.
pub async fn contacts(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<ContactList>, ApiError> {
    let mut contacts = Vec::new();
    for view in state.store.contacts_of(user.id).await? {
        let (kind, servers) = match &view.contact.target {
            ContactTarget::Address { server, .. } => (ContactKind::Address, vec![server.clone()]),
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
                (ContactKind::User, servers)
            }
            ContactTarget::User { .. } => (ContactKind::User, Vec::new()),
        };
        contacts.push(Contact {
            name: view.contact.name,
            kind,
            accepted: view.accepted,
            servers,
        });
    }
    Ok(Json(ContactList { contacts }))
}
