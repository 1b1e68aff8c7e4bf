//! The talker's local HTTPS API, on the port its mDNS advertisement names
//! (`docs/talker-agent.md`, "Local status API"). TLS 1.3 only, with a
//! self-signed certificate that carries the talker's own Ed25519 key
//! ([`splitdial_tls::talker`]): a dialer that pins the registry's key for the
//! talker knows whom it talks to before it sends anything.
//!
//! * `GET /v1/status`: who the talker is, its accounts and their registration
//!   state, its calls with live media statistics, whether each is held and
//!   the DTMF digits it received (as their handlers keep them in
//!   [`crate::calls`]). Never a secret.
//! * `POST /v1/challenge`: signs the domain-separated challenge
//!   (docs/discovery.md) with the talker's own key over the channel binding of
//!   the TLS connection it came on, so a dialer can verify it is the enrolled
//!   talker and that no relay stands between them. Rate-limited.
//! * `POST /v1/calls/{id}/answer|decline|hangup`: the owner's actions, each
//!   only with a matcher-signed owner token for that action and that call.
//!
//! Every request passes the same guard first: its `Host` must be an IP literal
//! or a `.local` name (against DNS rebinding), its body at most
//! [`MAX_BODY_BYTES`]; no response ever carries CORS headers, so a web page
//! cannot read answers or send JSON with an `Authorization` header. Errors are
//! `{"error": {"code": "...", "message": "..."}}`.

use crate::calls::{Calls, OwnerAction};
use crate::config::Config;
use crate::identity::Identity;
use crate::registration::AccountHandle;
use crate::trust::Trust;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, FailedToBufferBody, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use discovery::challenge::Challenge;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use splitdial_api::{
    ChallengeAnswer, ChallengeRequest, ErrorBody, Media, OwnerActionAccepted, OwnerActionRequest,
    StatusAccount, TalkerCallKind, TalkerCallState, TalkerKind, TalkerStatus,
};
use splitdial_sip::call_token::Action;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, debug, info, warn};

/// Largest request body accepted, in bytes (larger: 413).
pub const MAX_BODY_BYTES: usize = 4096;
/// Challenges answered back to back before the rate limit applies.
pub const CHALLENGE_BURST: u32 = 8;
/// Challenges answered per second, sustained (beyond: 429).
pub const CHALLENGE_PER_SECOND: u32 = 4;
/// Shortest and longest dialer nonce accepted, in characters.
pub const NONCE_LEN: std::ops::RangeInclusive<usize> = 16..=128;
/// Longest owner token accepted, in bytes.
const TOKEN_MAX_LEN: usize = 4096;
/// Connections served at once; further ones are closed at once.
const MAX_CONNECTIONS: usize = 64;
/// A client must finish its TLS handshake within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client must send a request's headers within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Read buffer per connection (bounds the request head).
const MAX_BUF_BYTES: usize = 16 * 1024;
/// How long shutdown lets requests in flight finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// What the status API shows and acts on; the agent fills it in at start.
#[derive(Clone)]
pub struct StatusState {
    /// The talker id.
    pub talker_id: String,
    /// The talker's human name.
    pub name: String,
    /// Device kind.
    pub kind: TalkerKind,
    /// Media it can carry (`audio`, `video`).
    pub media: Vec<Media>,
    /// Its SIP accounts with their registration state.
    pub accounts: Vec<AccountHandle>,
    /// The live calls (owner actions are sent to them).
    pub calls: Calls,
    /// Owner-token checks.
    pub trust: Arc<Trust>,
    /// The talker's key (signs challenges).
    pub identity: Arc<Identity>,
}

impl StatusState {
    /// The state for the talker `talker_id` described by `config` (name, kind
    /// and media words as advertised over mDNS).
    pub fn new(
        config: &Config,
        talker_id: impl Into<String>,
        accounts: Vec<AccountHandle>,
        calls: Calls,
        trust: Arc<Trust>,
        identity: Arc<Identity>,
    ) -> Self {
        Self {
            talker_id: talker_id.into(),
            name: config.name.clone(),
            kind: config.kind,
            media: config.media.clone(),
            accounts,
            calls,
            trust,
            identity,
        }
    }
}

struct Shared {
    state: StatusState,
    challenges: Mutex<TokenBucket>,
}

/// A token bucket: `capacity` requests at once, refilled at `per_second`.
struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(capacity: u32, per_second: u32) -> Self {
        Self {
            capacity: f64::from(capacity),
            per_second: f64::from(per_second),
            tokens: f64::from(capacity),
            last: Instant::now(),
        }
    }

    /// Takes one token, or says how long until one is there.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.per_second,
            ))
        }
    }
}

/// The channel binding of the TLS connection a request came on (RFC 9266),
/// set on every request of that connection: the challenge signs it.
#[derive(Debug, Clone, Copy)]
struct ConnectionBinding(splitdial_tls::talker::ChannelBinding);

/// Serves the API over TLS with `tls` (the talker's certificate, see
/// [`Identity::tls_config`]) on `listener` until `shutdown` is cancelled; then
/// lets the requests in flight finish (for a few seconds at most) and returns.
/// Fails only when the listener itself breaks.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    state: StatusState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router(state);
    let acceptor = TlsAcceptor::from(tls);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_BUF_BYTES)
        .max_headers(64)
        .keep_alive(true);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    if let Ok(local) = listener.local_addr() {
        info!(%local, "status API listening (HTTPS)");
    }
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) if transient_accept_error(&e) => {
                        warn!(error = %e, "status API: accept failed; retrying");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    debug!(%peer, "status API: too many connections; closing this one");
                    continue;
                };
                // The handshake runs in the connection's own task: a slow or
                // silent client holds one permit, never the accept loop.
                let connection = Connection {
                    acceptor: acceptor.clone(),
                    http: http.clone(),
                    app: app.clone(),
                    stop: shutdown.clone(),
                };
                connections.spawn(
                    async move {
                        let _permit = permit;
                        connection.run(stream).await;
                    }
                    .instrument(tracing::debug_span!("status_api", %peer)),
                );
            }
        }
    }
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
    info!("status API stopped");
    Ok(())
}

/// What one accepted connection needs: its TLS handshake, then HTTP/1.1 with
/// the connection's channel binding on every request.
struct Connection {
    acceptor: TlsAcceptor,
    http: hyper::server::conn::http1::Builder,
    app: Router,
    stop: CancellationToken,
}

impl Connection {
    async fn run(self, stream: TcpStream) {
        let handshake = tokio::select! {
            done = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream)) => done,
            () = self.stop.cancelled() => return,
        };
        let stream = match handshake {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                debug!(error = %e, "status API: TLS handshake failed");
                return;
            }
            Err(_) => {
                debug!("status API: TLS handshake timed out");
                return;
            }
        };
        let binding = match splitdial_tls::talker::channel_binding(stream.get_ref().1) {
            Ok(binding) => ConnectionBinding(binding),
            Err(e) => {
                debug!(error = %e, "status API: no channel binding; closing");
                return;
            }
        };
        let app = self.app.layer(Extension(binding));
        let connection = self
            .http
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
        let mut connection = std::pin::pin!(connection);
        tokio::select! {
            done = connection.as_mut() => {
                if let Err(e) = done {
                    debug!(error = %e, "status API connection ended");
                }
                return;
            }
            () = self.stop.cancelled() => {}
        }
        connection.as_mut().graceful_shutdown();
        let _ = connection.await;
    }
}

/// Accept errors that say nothing about the listener (a client gave up, or we
/// are short of descriptors for a moment).
fn transient_accept_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted, WouldBlock};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

fn router(state: StatusState) -> Router {
    let shared = Arc::new(Shared {
        state,
        challenges: Mutex::new(TokenBucket::new(CHALLENGE_BURST, CHALLENGE_PER_SECOND)),
    });
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/challenge", post(challenge))
        .route("/v1/calls/{id}/{action}", post(owner_action))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(guard))
        .with_state(shared)
}

/// An error answer: `{"error": {"code", "message"}}` with its status.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody::new(self.code, self.message);
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"splitdial-talker\""),
            );
        }
        response
    }
}

/// Runs before every handler: Host check, declared body size; and after it:
/// no caching, no sniffing, and never a CORS header.
async fn guard(request: Request<Body>, next: Next) -> Response {
    if let Err(e) = check_host(&request) {
        debug!(code = e.code, "status API request refused");
        return secure(e.into_response());
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return secure(body_too_large().into_response());
    }
    secure(next.run(request).await)
}

fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let cors: Vec<_> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in cors {
        headers.remove(name);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The request's authority (the `Host` header, and the URI's when the request
/// line is in absolute form) must be an IP literal or a `.local` name.
fn check_host(request: &Request<Body>) -> Result<(), ApiError> {
    let mut hosts = request.headers().get_all(header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(host), None) => host,
        (None, _) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "missing_host",
                "a Host header is required",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_host",
                "more than one Host header",
            ));
        }
    };
    let refused = || {
        error(
            StatusCode::FORBIDDEN,
            "host_not_allowed",
            "Host must be an IP address or a .local name",
        )
    };
    let host = host.to_str().map_err(|_| refused())?;
    if !host_allowed(host) {
        return Err(refused());
    }
    if let Some(authority) = request.uri().authority()
        && !host_allowed(authority.as_str())
    {
        return Err(refused());
    }
    Ok(())
}

/// An IP literal (`192.0.2.1`, `[fe80::1%25eth0]`) or a `.local` host name,
/// each with an optional port.
pub fn host_allowed(host: &str) -> bool {
    if host.is_empty() || host.len() > 300 {
        return false;
    }
    if let Some(rest) = host.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        let address = match inside.split_once("%25") {
            Some((address, zone)) => {
                let zone_ok = !zone.is_empty()
                    && zone
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
                if !zone_ok {
                    return false;
                }
                address
            }
            None => inside,
        };
        return address.parse::<Ipv6Addr>().is_ok()
            && (after.is_empty() || after.strip_prefix(':').is_some_and(port_ok));
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port_ok(port) => name,
        Some(_) => return false,
        None => host,
    };
    name.parse::<Ipv4Addr>().is_ok() || is_local_name(name)
}

fn port_ok(port: &str) -> bool {
    (1..=5).contains(&port.len())
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p != 0)
}

/// `name.local` (or `name.local.`): DNS labels of letters, digits and `-`.
fn is_local_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.len() > 253 {
        return false;
    }
    let Some((labels, tld)) = name.rsplit_once('.') else {
        return false;
    };
    tld.eq_ignore_ascii_case("local")
        && labels.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

async fn not_found() -> ApiError {
    error(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this endpoint",
    )
}

fn body_too_large() -> ApiError {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("request bodies are limited to {MAX_BODY_BYTES} bytes"),
    )
}

/// The body must be declared `application/json` and be a JSON object that
/// reads as `T`.
fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        ));
    }
    let body = match body {
        Ok(body) => body,
        Err(BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_))) => {
            return Err(body_too_large());
        }
        Err(e) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("cannot read the body: {e}"),
            ));
        }
    };
    serde_json::from_slice(&body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("invalid JSON body: {e}"),
        )
    })
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    let state = &shared.state;
    let body = TalkerStatus {
        id: state.talker_id.clone(),
        name: state.name.clone(),
        kind: state.kind,
        media: state.media.clone(),
        accounts: state
            .accounts
            .iter()
            .map(|a| StatusAccount {
                aor: a.aor.clone(),
                registration: a.state(),
            })
            .collect(),
        calls: state.calls.list(),
    };
    Json(body).into_response()
}

async fn challenge(
    State(shared): State<Arc<Shared>>,
    Extension(binding): Extension<ConnectionBinding>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let allowed = shared
        .challenges
        .lock()
        .map_err(|_| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "lock poisoned",
            )
        })?
        .take(Instant::now());
    if let Err(wait) = allowed {
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many challenges; try again shortly",
        )
        .into_response();
        let seconds = wait.as_secs().max(1).to_string();
        if let Ok(value) = HeaderValue::from_str(&seconds) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return Ok(response);
    }
    let request: ChallengeRequest = json_body(&headers, body)?;
    check_nonce(&request.nonce)?;
    let state = &shared.state;
    let talker_nonce = hex::encode(rand::random::<[u8; 16]>());
    let signature = state.identity.sign_challenge(&Challenge {
        talker_id: &state.talker_id,
        dialer_nonce: &request.nonce,
        talker_nonce: &talker_nonce,
        channel_binding: &binding.0,
    });
    debug!("challenge signed");
    Ok(Json(ChallengeAnswer {
        talker_id: state.talker_id.clone(),
        talker_nonce,
        public_key: state.identity.public_key_base64(),
        signature: STANDARD.encode(signature.to_bytes()),
    })
    .into_response())
}

/// A dialer nonce: 16 to 128 characters of base64, base64url or hex.
fn check_nonce(nonce: &str) -> Result<(), ApiError> {
    let ok = NONCE_LEN.contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/' | b'='));
    if ok {
        Ok(())
    } else {
        Err(error(
            StatusCode::BAD_REQUEST,
            "bad_nonce",
            format!(
                "nonce: {} to {} characters of A-Z a-z 0-9 - _ + / =",
                NONCE_LEN.start(),
                NONCE_LEN.end()
            ),
        ))
    }
}

async fn owner_action(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Ok(Path((id, action))) = path else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such endpoint",
        ));
    };
    let Some(action) = splitdial_api::OwnerAction::parse(&action) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such endpoint",
        ));
    };
    let (token_action, owner_action) = match action {
        splitdial_api::OwnerAction::Answer => (Action::Answer, OwnerAction::Answer),
        splitdial_api::OwnerAction::Decline => (Action::Decline, OwnerAction::Decline),
        splitdial_api::OwnerAction::Hangup => (Action::Hangup, OwnerAction::Hangup),
    };
    let OwnerActionRequest {} = json_body(&headers, body)?;
    let token = bearer(&headers)?;
    let calls = &shared.state.calls;
    let no_call = || error(StatusCode::NOT_FOUND, "no_such_call", "no such call");
    let id: u64 = id.parse().map_err(|_| no_call())?;
    let sip_call_id = calls.sip_call_id(id).ok_or_else(no_call)?;
    if let Err(e) = shared
        .state
        .trust
        .check_owner(Some(token), token_action, &sip_call_id)
    {
        info!(call = id, %action, reason = %e, "owner token refused");
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "bad_token",
            format!("owner token refused: {e}"),
        ));
    }
    let info = calls
        .list()
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(no_call)?;
    let applies = info.kind == TalkerCallKind::Incoming
        && match owner_action {
            OwnerAction::Answer | OwnerAction::Decline => info.state == TalkerCallState::Ringing,
            OwnerAction::Hangup => true,
        };
    if !applies || !calls.act(id, owner_action) {
        return Err(error(
            StatusCode::CONFLICT,
            "action_not_applicable",
            format!(
                "call {id} ({:?}, {:?}) cannot be asked to {action}",
                info.kind, info.state
            ),
        ));
    }
    info!(call = id, %action, "owner action accepted");
    Ok((
        StatusCode::ACCEPTED,
        Json(OwnerActionAccepted { call: id, action }),
    )
        .into_response())
}

/// The owner token from `Authorization: Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let missing = || {
        error(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "send the owner token as Authorization: Bearer <token>",
        )
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(missing)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer")
        || token.is_empty()
        || token.len() > TOKEN_MAX_LEN
        || !token.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(missing());
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_ip_literals_or_local_names() {
        for good in [
            "127.0.0.1",
            "127.0.0.1:8420",
            "10.77.0.1:1",
            "[::1]",
            "[::1]:8420",
            "[fe80::1%25eth0]:8420",
            "splitdial-tv-1.local",
            "splitdial-tv-1.local.:8420",
            "Living-Room.LOCAL:80",
        ] {
            assert!(host_allowed(good), "{good}");
        }
        for bad in [
            "",
            "localhost",
            "localhost:8420",
            "evil.example",
            "evil.example:8420",
            "local",
            ".local",
            "a..local",
            "-a.local",
            "127.0.0.1:0",
            "127.0.0.1:99999",
            "127.0.0.1:",
            "127.1",
            "0x7f.0.0.1",
            "[::1",
            "[::1]x",
            "[fe80::1%eth0]",
            "[fe80::1%25]",
            "::1",
            "a b.local",
            "evil.local.example",
        ] {
            assert!(!host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn nonces_are_bounded() {
        assert!(check_nonce(&"a".repeat(16)).is_ok());
        assert!(check_nonce("AbC-_+/=0123456789").is_ok());
        assert!(check_nonce(&"a".repeat(15)).is_err());
        assert!(check_nonce(&"a".repeat(129)).is_err());
        assert!(check_nonce("aaaaaaaaaaaaaaa\0").is_err());
        assert!(check_nonce("aaaaaaaaaaaaaaa é").is_err());
    }

    #[test]
    fn state_from_config_uses_the_advertised_words() {
        let config = Config::parse(
            "name = \"Study PC\"\nkind = \"pc\"\nmedia = [\"audio\", \"video\"]\n\
             state_dir = \"/nonexistent\"\n[[accounts]]\nserver = \"home.example\"\n\
             proxy = \"127.0.0.1:5060\"\nuser = \"pc\"\npassword = \"pw\"\n",
            std::path::Path::new("pc.toml"),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let identity = Arc::new(Identity::load_or_create(dir.path()).unwrap());
        let state = StatusState::new(
            &config,
            "pc-1",
            Vec::new(),
            Calls::default(),
            Arc::new(Trust::new("pc-1")),
            identity,
        );
        assert_eq!(state.talker_id, "pc-1");
        assert_eq!(state.name, "Study PC");
        assert_eq!(state.kind, TalkerKind::Pc);
        assert_eq!(state.media, [Media::Audio, Media::Video]);
    }

    #[test]
    fn the_bucket_allows_a_burst_then_refills() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(3, 2);
        bucket.last = start;
        for _ in 0..3 {
            assert!(bucket.take(start).is_ok());
        }
        let wait = bucket.take(start).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(500));
        assert!(bucket.take(start + Duration::from_millis(500)).is_ok());
        assert!(bucket.take(start + Duration::from_millis(500)).is_err());
        // Never more than the capacity, however long it rested.
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(bucket.take(later).is_ok());
        }
        assert!(bucket.take(later).is_err());
    }
}
