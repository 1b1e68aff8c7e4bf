//! `GET /v1/routes`: ranked candidate routes for the dialer's shared-server
//! marks — the caller's side only, nothing of the callee's devices.

use super::{ApiError, AppState, CurrentUser};
use crate::registry::{Media, User};
use crate::route::{Route, dialer_views};
use crate::route_query::{RouteQueryError, find_routes};
use crate::storage::ContactView;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use splitdial_api::Routes;

/// Query of `GET /v1/routes`.
#[derive(Debug, Deserialize)]
pub struct RoutesQuery {
    /// Comma-separated designated talker ids, in preference order; all of the
    /// user's talkers (oldest first) when absent.
    #[serde(default)]
    talkers: Option<String>,
    /// The contact's name.
    callee: String,
    /// `audio` (default) or `video`: a word, not a [`Media`], so that another
    /// word is a 422 naming both, like every other bad value.
    #[serde(default)]
    media: Option<String>,
}

/// Parses `audio` / `video` (absent: audio).
fn parse_media(word: Option<&str>) -> Result<Media, ApiError> {
    match word {
        None => Ok(Media::Audio),
        Some(w) => Media::parse(w)
            .ok_or_else(|| ApiError::invalid(format!("media must be audio or video, not {w:?}"))),
    }
}

/// Ranks the routes from `user`'s designated talkers to their contact
/// `callee`. `designated` empty means all of the user's talkers.
pub(super) async fn ranked(
    state: &AppState,
    user: &User,
    designated: &[String],
    callee: &str,
    media: Media,
) -> Result<(ContactView, Vec<Route>), ApiError> {
    state.metrics.route_query();
    let max_age = i64::try_from(state.settings.max_heartbeat_age.as_secs()).unwrap_or(i64::MAX);
    find_routes(
        &state.store,
        user,
        designated,
        callee,
        media,
        max_age,
        &state.presence,
    )
    .await
    .map_err(|e| match e {
        RouteQueryError::UnknownContact(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "unknown_contact", e.to_string())
        }
        RouteQueryError::NotAccepted(_) => {
            ApiError::new(StatusCode::FORBIDDEN, "contact_not_accepted", e.to_string())
        }
        RouteQueryError::Route(r) => r.into(),
        RouteQueryError::Storage(s) => s.into(),
    })
}

/// Splits `a,b,c` into ids (empty parts dropped).
pub(super) fn talker_list(list: Option<&str>) -> Vec<String> {
    list.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `GET /v1/routes?talkers=..&callee=..&media=..`.
pub async fn routes(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    query: Result<Query<RoutesQuery>, QueryRejection>,
) -> Result<Json<Routes>, ApiError> {
    let Query(query) = query?;
    let media = parse_media(query.media.as_deref())?;
    let designated = talker_list(query.talkers.as_deref());
    let (_, routes) = ranked(&state, &user, &designated, &query.callee, media).await?;
    Ok(Json(Routes {
        callee: query.callee,
        media,
        routes: dialer_views(&routes),
    }))
}
