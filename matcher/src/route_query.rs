//! A route query end to end: the caller's contact, both sides' talkers and
//! accounts and the servers involved, read from storage in one statement
//! ([`Store::route_inputs`]), then ranked by the pure `route` module. Shared by `GET /v1/routes`, `POST /v1/calls` and the
//! route benchmark.

use crate::presence::Presence;
use crate::registry::{ContactTarget, Media, User};
use crate::route::{
    CalleeSide, CallerSide, Route, RouteError, RouteQuery, TalkerAccounts, rank_routes,
};
use crate::storage::{ContactView, StorageError, Store};

/// Why a route query has no answer.
#[derive(Debug, thiserror::Error)]
pub enum RouteQueryError {
    /// The callee is not one of the user's contacts.
    #[error("{0:?} is not one of your contacts")]
    UnknownContact(String),
    /// The callee (a user) has not added the caller back.
    #[error("{0:?} has not added you back yet")]
    NotAccepted(String),
    /// Ranking found no route.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Ranks the routes from `user`'s `designated` talkers (all of them, oldest
/// first, when empty) to their contact `callee`.
pub async fn find_routes(
    store: &Store,
    user: &User,
    designated: &[String],
    callee: &str,
    media: Media,
    max_heartbeat_age_s: i64,
    presence: &Presence,
) -> Result<(ContactView, Vec<Route>), RouteQueryError> {
    let now = crate::storage::now_secs();
    let inputs = store
        .route_inputs(user.id, callee)
        .await?
        .ok_or_else(|| RouteQueryError::UnknownContact(callee.to_owned()))?;
    let contact = inputs.contact;
    if !contact.accepted {
        return Err(RouteQueryError::NotAccepted(callee.to_owned()));
    }
    let (mine, theirs): (Vec<_>, Vec<_>) = inputs
        .talkers
        .into_iter()
        .partition(|(t, _)| t.owner == user.id);
    let designated = if designated.is_empty() {
        mine.iter().map(|(t, _)| t.id.clone()).collect()
    } else {
        designated.to_vec()
    };
    let callee_side = match &contact.contact.target {
        ContactTarget::Address { aor, server } => CalleeSide::Address {
            aor: aor.clone(),
            server: server.clone(),
            media: Media::Audio,
            reachable: presence.reachable(aor, now, max_heartbeat_age_s),
        },
        ContactTarget::User { user: other } => CalleeSide::User {
            user: *other,
            talkers: theirs
                .into_iter()
                .map(|(talker, accounts)| TalkerAccounts { talker, accounts })
                .collect(),
        },
    };
    let servers = inputs.servers;
    let caller = CallerSide {
        user: user.id,
        designated,
        talkers: mine
            .into_iter()
            .map(|(talker, accounts)| TalkerAccounts { talker, accounts })
            .collect(),
    };
    let query = RouteQuery {
        media,
        now,
        max_heartbeat_age_s,
    };
    let routes = rank_routes(&caller, &callee_side, &servers, &query)?;
    Ok((contact, routes))
}
