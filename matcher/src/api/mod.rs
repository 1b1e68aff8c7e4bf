//! The matcher's HTTP API (DESIGN.md "Matcher HTTP API"): JSON in and out,
//! bearer tokens, every request authorized, errors as
//! `{"error": {"code": ..., "message": ...}}` with stable codes.

mod calls;
mod error;
mod health;
mod me;
mod rate_limit;
mod routes;
mod stream_slots;
mod talkers;

pub use error::ApiError;
pub use rate_limit::RateLimiter;
pub use stream_slots::{StreamSlot, StreamSlots};

use crate::auth::{SecretKind, bearer, secret_hash};
use crate::calls::CallService;
use crate::metrics::Metrics;
use crate::registry::{Talker, User};
use crate::signing::KeyRing;
use crate::storage::Store;
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Largest request body accepted (enrollment with many accounts fits easily).
pub const BODY_LIMIT: usize = 64 * 1024;

/// Settings of the API that tests and operators tune.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Heartbeat interval asked of talkers.
    pub heartbeat_interval: Duration,
    /// A talker whose last heartbeat is older than this counts as offline.
    pub max_heartbeat_age: Duration,
    /// Enrollment tokens live this long.
    pub enrollment_ttl: Duration,
    /// Requests per second allowed per client (bearer token, or address
    /// without one), with a burst of twice that; also the per-address budget
    /// of requests refused as unauthorized.
    pub rate_per_second: u32,
    /// An open call event stream checks its bearer token again this often, and
    /// ends once the token is revoked (the client's reconnect then gets 401).
    pub stream_recheck: Duration,
    /// Call event streams one user may hold open at once.
    pub max_streams_per_user: usize,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(30),
            max_heartbeat_age: Duration::from_secs(75),
            enrollment_ttl: Duration::from_secs(3600),
            rate_per_second: 20,
            stream_recheck: Duration::from_secs(10),
            max_streams_per_user: 16,
        }
    }
}

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The registry.
    pub store: Store,
    /// Token-signing keys.
    pub keys: KeyRing,
    /// Calls in progress and their records.
    pub calls: CallService,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Settings.
    pub settings: ApiSettings,
    /// Per-client request budget.
    pub limiter: Arc<RateLimiter>,
    /// Per-address budget of requests refused as unauthorized.
    pub auth_failures: Arc<RateLimiter>,
    /// Reachability of plain SIP addresses (OPTIONS probes).
    pub presence: Arc<crate::presence::Presence>,
    /// Open call event streams per user.
    pub streams: Arc<StreamSlots>,
    /// Cancelled when the matcher stops: open event streams end.
    pub stopping: tokio_util::sync::CancellationToken,
}

/// The API's router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/v1/me", get(me::me))
        .route("/v1/me/talkers", get(me::talkers))
        .route("/v1/me/contacts", get(me::contacts))
        .route("/v1/talkers", post(talkers::enroll))
        .route("/v1/talkers/{id}/heartbeat", post(talkers::heartbeat))
        .route("/v1/talkers/{id}/owner-tokens", post(talkers::owner_token))
        .route("/v1/routes", get(routes::routes))
        .route("/v1/calls", post(calls::create))
        .route("/v1/calls/{id}", get(calls::show))
        .route("/v1/calls/{id}", delete(calls::hang_up))
        .route("/v1/calls/{id}/events", get(calls::events))
        .route("/v1/calls/{id}/parties", post(calls::add_party))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Rate limit and count every request. A client is its bearer token, or its
/// address without one. Since anyone can make up a token, requests refused as
/// unauthorized are also counted per address, and an address out of that
/// budget gets 429 before its next token is looked up.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
    let client = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .map_or_else(
            || format!("a:{address}"),
            |t| format!("t:{}", &t[..t.len().min(16)]),
        );
    if request.uri().path() != "/healthz"
        && !(state.auth_failures.has_room(&address) && state.limiter.allow(&client))
    {
        state.metrics.count_status(429);
        return axum::response::IntoResponse::into_response(ApiError::rate_limited());
    }
    let response = next.run(request).await;
    if response.status() == axum::http::StatusCode::UNAUTHORIZED {
        state.auth_failures.allow(&address);
    }
    state.metrics.count_status(response.status().as_u16());
    response
}

fn bearer_of(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
}

/// How a request's user token is stored (its hash), if it carries one.
fn user_token_hash(parts: &Parts) -> Option<String> {
    secret_hash(SecretKind::UserToken, bearer_of(parts)?)
}

/// The user a request's bearer token belongs to.
pub struct CurrentUser(pub User);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let hash = user_token_hash(parts).ok_or_else(ApiError::unauthorized)?;
        let user = state
            .store
            .user_for_api_token(&hash)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        Ok(Self(user))
    }
}

/// The stored hash of the user token a request was authorized with, for
/// checking it again later (a long-lived event stream). Extract it after
/// [`CurrentUser`], which refuses requests without a valid one.
pub struct UserTokenHash(pub String);

impl FromRequestParts<AppState> for UserTokenHash {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        user_token_hash(parts)
            .map(Self)
            .ok_or_else(ApiError::unauthorized)
    }
}

/// The talker a request's credential belongs to.
pub struct CurrentTalker(pub Talker);

impl FromRequestParts<AppState> for CurrentTalker {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_of(parts).ok_or_else(ApiError::unauthorized)?;
        let hash =
            secret_hash(SecretKind::TalkerCredential, token).ok_or_else(ApiError::unauthorized)?;
        let talker = state
            .store
            .talker_by_credential(&hash)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        Ok(Self(talker))
    }
}

/// The raw bearer token of a request (enrollment tokens are checked by the
/// handler, which uses them up).
pub struct BearerToken(pub String);

impl FromRequestParts<AppState> for BearerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        bearer_of(parts)
            .map(|t| Self(t.to_owned()))
            .ok_or_else(ApiError::unauthorized)
    }
}

/// The matcher's clock for replies, Unix seconds with milliseconds.
fn unix_time_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}
