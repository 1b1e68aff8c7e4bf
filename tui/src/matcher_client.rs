//! The matcher's HTTP API as the dialer uses it (docs/matcher.md): who I am,
//! my talkers, my contacts, routes, calls and their Server-Sent Events, owner
//! tokens.
//!
//! The HTTP client speaks HTTPS and verifies the matcher's certificate (system
//! roots, or the CA or certificate of the configuration; plain `http://` only
//! to a loopback host), takes no proxy from the environment and follows no
//! redirect (the bearer token must reach the configured matcher and nothing
//! else), bounds every answer's size and every request's time, and never logs
//! the token (reqwest marks the `Authorization` header sensitive). Every
//! failure is a [`Problem`], ready for an error pane.

use crate::app::OwnerAction;
use crate::config::Secret;
use crate::model::{CallEvent, CallInfo, Contact, Me, Media, Problem, RegisteredTalker, Routes};
use crate::sse::SseParser;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use splitdial_api::{
    ContactList, ErrorBody, NewCall, NewParty, OwnerTokenRequest, PartyAdded, TalkerList,
};
use std::time::Duration;

/// Time to open a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for a whole ordinary request and its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read (1000 contacts with their servers fit many times).
const MAX_BODY: usize = 2 * 1024 * 1024;
/// The matcher sends an SSE keep-alive every 15 s; silence this long is a break.
const STREAM_IDLE: Duration = Duration::from_secs(45);
/// Bounds of one SSE line and one event's data.
const SSE_MAX_LINE: usize = 64 * 1024;
const SSE_MAX_EVENT: usize = 256 * 1024;
/// Reconnections tried in a row after a break, before giving up.
const STREAM_RETRIES: u32 = 5;

/// A matcher-signed owner token for one action on one call of my talker.
#[derive(Debug, Clone)]
pub struct OwnerToken {
    /// The token (sent only to a verified talker).
    pub token: Secret,
    /// Seconds it stays valid.
    pub expires_in: u64,
}

/// The matcher API client. Cheap to clone.
#[derive(Clone)]
pub struct MatcherClient {
    http: reqwest::Client,
    stream_http: reqwest::Client,
    base: Url,
    token: Secret,
}

impl std::fmt::Debug for MatcherClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatcherClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

fn unreachable(error: &reqwest::Error) -> Problem {
    Problem::Unreachable {
        what: "matcher".into(),
        message: error_chain(error),
    }
}

fn protocol(message: impl Into<String>) -> Problem {
    Problem::Protocol {
        what: "matcher".into(),
        message: message.into(),
    }
}

/// A transport error with its causes, on one line, without the URL (which is
/// known) and never with a header.
pub fn error_chain(error: &reqwest::Error) -> String {
    // A refused certificate is the whole story: say what was wrong with it.
    if let Some(refusal) = splitdial_tls::certificate_refusal(error) {
        return one_line(&refusal);
    }
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        String::new()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    if text.is_empty() {
        text = "request failed".into();
    }
    one_line(&text)
}

fn one_line(text: &str) -> String {
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    text.chars().take(300).collect()
}

/// Builds the `Problem` for a non-success answer.
pub fn refusal(status: u16, body: &[u8]) -> Problem {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => Problem::Refused {
            status,
            code: one_line(&e.error.code),
            message: one_line(&e.error.message),
            caller_servers: e.error.caller_servers.unwrap_or_default(),
            callee_servers: e.error.callee_servers.unwrap_or_default(),
        },
        Err(_) => Problem::Refused {
            status,
            code: format!("http_{status}"),
            message: format!("HTTP {status} without an error body"),
            caller_servers: Vec::new(),
            callee_servers: Vec::new(),
        },
    }
}

/// Reads at most `limit` bytes of an answer.
async fn bounded_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, Problem> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(protocol(format!("answer larger than {limit} bytes")));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(&e))? {
        if body.len() + chunk.len() > limit {
            return Err(protocol(format!("answer larger than {limit} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl MatcherClient {
    /// A client of the matcher at `base_url` (`https://host:port`, or
    /// `http://` to a loopback host) with the user's bearer `token`, checking
    /// the matcher's certificate with `trust`.
    pub fn new(
        base_url: &str,
        token: Secret,
        trust: &splitdial_tls::ServerTrust,
    ) -> Result<Self, Problem> {
        let checked = splitdial_tls::check_base_url(base_url)
            .map_err(|e| protocol(format!("bad matcher URL: {e}")))?;
        let base = Url::parse(&checked).map_err(|e| protocol(format!("bad matcher URL: {e}")))?;
        let builder = || {
            splitdial_tls::verifying_client_builder(trust)
                .map(|(builder, _)| {
                    builder
                        .no_proxy()
                        .redirect(reqwest::redirect::Policy::none())
                        .connect_timeout(CONNECT_TIMEOUT)
                        .user_agent(concat!("splitdial/", env!("CARGO_PKG_VERSION")))
                })
                .map_err(|e| protocol(format!("matcher {checked}: {e}")))
        };
        let http = builder()?
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| protocol(error_chain(&e)))?;
        // The event stream lives as long as the call: no overall timeout, an
        // idle bound per chunk instead (see `CallEventStream`).
        let stream_http = builder()?.build().map_err(|e| protocol(error_chain(&e)))?;
        Ok(Self {
            http,
            stream_http,
            base,
            token,
        })
    }

    /// The matcher's base URL.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// `base` + path segments (each percent-encoded) + query pairs.
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<Value>,
    ) -> Result<(StatusCode, T), Problem> {
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(self.token.expose());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| unreachable(&e))?;
        let status = response.status();
        let body = bounded_body(response, MAX_BODY).await?;
        if !status.is_success() {
            return Err(refusal(status.as_u16(), &body));
        }
        let value =
            serde_json::from_slice(&body).map_err(|e| protocol(one_line(&e.to_string())))?;
        Ok((status, value))
    }

    /// `GET /v1/me`.
    pub async fn me(&self) -> Result<Me, Problem> {
        let (_, me) = self
            .request(Method::GET, self.url(&["v1", "me"], &[]), None)
            .await?;
        Ok(me)
    }

    /// `GET /v1/me/talkers`.
    pub async fn talkers(&self) -> Result<Vec<RegisteredTalker>, Problem> {
        let (_, list): (_, TalkerList) = self
            .request(Method::GET, self.url(&["v1", "me", "talkers"], &[]), None)
            .await?;
        Ok(list.talkers)
    }

    /// `GET /v1/me/contacts`.
    pub async fn contacts(&self) -> Result<Vec<Contact>, Problem> {
        let (_, list): (_, ContactList) = self
            .request(Method::GET, self.url(&["v1", "me", "contacts"], &[]), None)
            .await?;
        Ok(list.contacts)
    }

    /// `GET /v1/routes`: ranked routes from `talkers` (all of mine when empty)
    /// to the contact `callee`; `409 no_shared_server` names each side's servers.
    pub async fn routes(
        &self,
        callee: &str,
        talkers: &[String],
        video: bool,
    ) -> Result<Routes, Problem> {
        let list = talkers.join(",");
        let mut query = vec![
            ("callee", callee),
            ("media", Media::with_video(video).as_str()),
        ];
        if !talkers.is_empty() {
            query.push(("talkers", &list));
        }
        let (_, routes) = self
            .request(Method::GET, self.url(&["v1", "routes"], &query), None)
            .await?;
        Ok(routes)
    }

    /// `POST /v1/calls`: place a call to `callee` from the first of `talkers`
    /// that can reach them.
    pub async fn place_call(
        &self,
        callee: &str,
        talkers: &[String],
        video: bool,
    ) -> Result<CallInfo, Problem> {
        let body = json_body(&NewCall {
            callee: callee.to_owned(),
            talkers: talkers.to_vec(),
            media: Some(Media::with_video(video)),
        })?;
        let (_, call) = self
            .request(Method::POST, self.url(&["v1", "calls"], &[]), Some(body))
            .await?;
        Ok(call)
    }

    /// `GET /v1/calls/{id}`.
    pub async fn call(&self, call: &str) -> Result<CallInfo, Problem> {
        let (_, info) = self
            .request(Method::GET, self.url(&["v1", "calls", call], &[]), None)
            .await?;
        Ok(info)
    }

    /// `DELETE /v1/calls/{id}`: hang up. The answer's state is final when the
    /// call was already over (200), not yet when it is ending (202).
    pub async fn hang_up(&self, call: &str) -> Result<CallInfo, Problem> {
        let (_, info) = self
            .request(Method::DELETE, self.url(&["v1", "calls", call], &[]), None)
            .await?;
        Ok(info)
    }

    /// `POST /v1/calls/{id}/parties`: add `callee` to the call; the party number.
    pub async fn add_party(&self, call: &str, callee: &str) -> Result<u32, Problem> {
        let body = json_body(&NewParty {
            callee: callee.to_owned(),
        })?;
        let (_, party): (_, PartyAdded) = self
            .request(
                Method::POST,
                self.url(&["v1", "calls", call, "parties"], &[]),
                Some(body),
            )
            .await?;
        Ok(party.party)
    }

    /// `POST /v1/talkers/{id}/owner-tokens`: a token for `action` on the SIP
    /// call `sip_call_id` of my talker `talker_id`.
    pub async fn owner_token(
        &self,
        talker_id: &str,
        action: OwnerAction,
        sip_call_id: &str,
    ) -> Result<OwnerToken, Problem> {
        let body = json_body(&OwnerTokenRequest {
            action: wire_action(action),
            sip_call_id: sip_call_id.to_owned(),
            call: None,
        })?;
        let (_, answer): (_, splitdial_api::OwnerToken) = self
            .request(
                Method::POST,
                self.url(&["v1", "talkers", talker_id, "owner-tokens"], &[]),
                Some(body),
            )
            .await?;
        if answer.token.is_empty() {
            return Err(protocol("empty owner token"));
        }
        Ok(OwnerToken {
            token: Secret::new(answer.token),
            expires_in: answer.expires_in,
        })
    }

    /// Follows `GET /v1/calls/{id}/events`; read with [`CallEventStream::next`].
    pub fn follow_call(&self, call: &str) -> CallEventStream {
        CallEventStream {
            client: self.clone(),
            call: call.to_owned(),
            parser: SseParser::new(SSE_MAX_LINE, SSE_MAX_EVENT),
            body: None,
            pending: std::collections::VecDeque::new(),
            last_seq: 0,
            failures: 0,
            done: false,
        }
    }

    async fn open_events(
        &self,
        call: &str,
        last_id: Option<&str>,
    ) -> Result<BoxStream<'static, reqwest::Result<bytes::Bytes>>, Problem> {
        let mut request = self
            .stream_http
            .get(self.url(&["v1", "calls", call, "events"], &[]))
            .bearer_auth(self.token.expose())
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(id) = last_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = tokio::time::timeout(REQUEST_TIMEOUT, request.send())
            .await
            .map_err(|_| Problem::Unreachable {
                what: "matcher".into(),
                message: "timed out opening the call's event stream".into(),
            })?
            .map_err(|e| unreachable(&e))?;
        let status = response.status();
        if !status.is_success() {
            let body = tokio::time::timeout(REQUEST_TIMEOUT, bounded_body(response, 64 * 1024))
                .await
                .unwrap_or_else(|_| Ok(Vec::new()))
                .unwrap_or_default();
            return Err(refusal(status.as_u16(), &body));
        }
        Ok(response.bytes_stream().boxed())
    }
}

/// A request body as JSON (the contract's types always serialize).
fn json_body(body: &impl Serialize) -> Result<Value, Problem> {
    serde_json::to_value(body).map_err(|e| protocol(format!("cannot write a request: {e}")))
}

/// The contract's word for an owner action.
pub fn wire_action(action: OwnerAction) -> splitdial_api::OwnerAction {
    match action {
        OwnerAction::Answer => splitdial_api::OwnerAction::Answer,
        OwnerAction::Decline => splitdial_api::OwnerAction::Decline,
        OwnerAction::HangUp => splitdial_api::OwnerAction::Hangup,
    }
}

/// Whether a refusal will not change by asking again (no reconnect).
fn is_permanent(problem: &Problem) -> bool {
    matches!(problem, Problem::Refused { status, .. } if *status != 429 && *status < 500)
}

/// A call's events as they happen, resumed with `Last-Event-ID` after a break,
/// ending after a final state (`ended`, `handed_off`, `lost_control`).
pub struct CallEventStream {
    client: MatcherClient,
    call: String,
    parser: SseParser,
    body: Option<BoxStream<'static, reqwest::Result<bytes::Bytes>>>,
    pending: std::collections::VecDeque<CallEvent>,
    last_seq: i64,
    failures: u32,
    done: bool,
}

impl std::fmt::Debug for CallEventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallEventStream")
            .field("call", &self.call)
            .field("last_seq", &self.last_seq)
            .finish_non_exhaustive()
    }
}

impl CallEventStream {
    /// The next event; `None` after a final state (or after an error was
    /// returned). An `Err` means the stream broke and reconnecting failed
    /// [`STREAM_RETRIES`] times in a row, or the matcher refused it.
    pub async fn next(&mut self) -> Option<Result<CallEvent, Problem>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if event.state.is_final() {
                    self.done = true;
                    self.pending.clear();
                    self.body = None;
                }
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            if self.body.is_none() {
                if self.failures > 0 {
                    // 0.5 s, 1 s, 2 s, 4 s...: the matcher may be restarting.
                    let backoff = Duration::from_millis(500 * (1 << (self.failures - 1).min(3)));
                    let advised = self
                        .parser
                        .retry_ms()
                        .map_or(Duration::ZERO, |ms| Duration::from_millis(ms.min(10_000)));
                    tokio::time::sleep(backoff.max(advised)).await;
                }
                match self
                    .client
                    .open_events(&self.call, self.parser.last_id())
                    .await
                {
                    Ok(body) => {
                        self.parser.reset_connection();
                        self.body = Some(body);
                    }
                    Err(problem) => {
                        if let Some(e) = self.fail(problem) {
                            return Some(Err(e));
                        }
                        continue;
                    }
                }
            }
            let Some(body) = self.body.as_mut() else {
                continue;
            };
            let chunk = match tokio::time::timeout(STREAM_IDLE, body.next()).await {
                Err(_) => Err(Problem::Unreachable {
                    what: "matcher".into(),
                    message: format!("no event or keep-alive for {} s", STREAM_IDLE.as_secs()),
                }),
                Ok(None) => Err(Problem::Unreachable {
                    what: "matcher".into(),
                    message: "the event stream closed before the call ended".into(),
                }),
                Ok(Some(Err(e))) => Err(unreachable(&e)),
                Ok(Some(Ok(chunk))) => Ok(chunk),
            };
            match chunk.and_then(|chunk| self.take_chunk(&chunk)) {
                Ok(()) => {}
                Err(problem) => {
                    tracing::debug!(call = %self.call, %problem, "call event stream broke");
                    self.body = None;
                    if let Some(e) = self.fail(problem) {
                        return Some(Err(e));
                    }
                }
            }
        }
    }

    /// Counts a failure; gives up (returning the problem) when it is
    /// permanent or the retries are used up.
    fn fail(&mut self, problem: Problem) -> Option<Problem> {
        self.failures += 1;
        if is_permanent(&problem) || self.failures > STREAM_RETRIES {
            self.done = true;
            return Some(problem);
        }
        None
    }

    fn take_chunk(&mut self, chunk: &[u8]) -> Result<(), Problem> {
        let frames = self
            .parser
            .feed(chunk)
            .map_err(|e| protocol(e.to_string()))?;
        for frame in frames {
            if frame.event != "state" {
                continue;
            }
            let event: CallEvent = serde_json::from_str(&frame.data)
                .map_err(|e| protocol(format!("bad call event: {}", one_line(&e.to_string()))))?;
            if event.call != self.call {
                return Err(protocol(format!(
                    "an event of call {:?} on this call's stream",
                    event.call
                )));
            }
            // A replay after a reconnect repeats nothing we already passed on.
            if event.seq <= self.last_seq {
                continue;
            }
            self.last_seq = event.seq;
            self.failures = 0;
            self.pending.push_back(event);
        }
        Ok(())
    }
}
