//! A talker's local API as the dialer uses it (docs/talker-agent.md, "Local
//! status API"): the signed challenge that makes a discovered or hand-entered
//! talker *verified*, its status, and the owner's actions on its calls.
//!
//! Every request goes over its own TLS 1.3 connection that the dialer accepts
//! only when the talker's certificate carries the key the matcher's registry
//! holds for that talker and the handshake is signed with it
//! ([`splitdial_tls::talker`]): a host without the talker's private key cannot
//! even finish the handshake, so neither a status nor an owner token ever goes
//! to it. HTTP/1.1 runs on hyper's client connection over that TLS stream,
//! because the challenge needs the connection's channel binding (RFC 9266),
//! which reqwest does not expose.
//!
//! The challenge answer is checked with the public key the registry holds for
//! the talker id the dialer asked about — never with the key the answer
//! carries — over the dialer's own fresh nonce and the channel binding of the
//! connection it came on, and the answer must name that same talker id. Owner
//! tokens are sent only to talkers verified that way (the caller's duty: the
//! state machine asks for owner actions on verified addresses only).

use crate::app::OwnerAction;
use crate::config::Secret;
use crate::matcher_client::wire_action;
use crate::model::{Problem, TalkerStatus};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use discovery::challenge::{Challenge, ChallengeError};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
pub use splitdial_api::ChallengeAnswer;
use splitdial_api::{ChallengeRequest, OwnerActionAccepted, OwnerActionRequest};
use splitdial_tls::talker::{self as talker_tls, ChannelBinding};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Talkers are on the LAN: a short bound keeps a dead one from holding a task.
/// It bounds the TCP connection and the TLS handshake together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Bounds a whole exchange: connection, handshake, request and answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read (a status with a few calls and stats is ~2 KiB).
const MAX_BODY: usize = 256 * 1024;
/// Longest talker nonce accepted in an answer.
const MAX_TALKER_NONCE: usize = 256;
const USER_AGENT: &str = concat!("splitdial/", env!("CARGO_PKG_VERSION"));

/// Why a talker is not verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The challenge request failed.
    #[error(transparent)]
    Request(#[from] Problem),
    /// The TLS handshake did not prove the registry's key: another key, or a
    /// certificate with the key but a handshake its owner did not sign.
    #[error("not the registry's talker: {0}")]
    NotTheTalker(String),
    /// The answer names another talker.
    #[error("the talker at this address answers as {answered:?}, not {asked:?}")]
    WrongTalker {
        /// The id asked about.
        asked: String,
        /// The id in the answer.
        answered: String,
    },
    /// The talker nonce is empty or too long.
    #[error("the talker's nonce is empty or longer than {MAX_TALKER_NONCE} bytes")]
    BadNonce,
    /// The signature does not check with the registry's key.
    #[error(transparent)]
    Signature(#[from] ChallengeError),
}

/// A fresh dialer nonce: 32 random bytes, base64url (43 characters).
pub fn fresh_nonce() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Checks a challenge answer: it must name `talker_id`, and its signature over
/// (`talker_id`, `dialer_nonce`, its nonce, `channel_binding`) must check with
/// `registry_key` (standard base64, from `GET /v1/me/talkers`).
/// `channel_binding` is the dialer's own side of the connection the answer
/// came on.
pub fn check_answer(
    talker_id: &str,
    dialer_nonce: &str,
    channel_binding: &ChannelBinding,
    registry_key: &str,
    answer: &ChallengeAnswer,
) -> Result<(), VerifyError> {
    if answer.talker_id != talker_id {
        return Err(VerifyError::WrongTalker {
            asked: talker_id.to_owned(),
            answered: answer.talker_id.chars().take(80).collect(),
        });
    }
    if answer.talker_nonce.is_empty() || answer.talker_nonce.len() > MAX_TALKER_NONCE {
        return Err(VerifyError::BadNonce);
    }
    Challenge {
        talker_id,
        dialer_nonce,
        talker_nonce: &answer.talker_nonce,
        channel_binding,
    }
    .verify_base64(registry_key, &answer.signature)?;
    Ok(())
}

/// The client of talkers' local APIs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TalkerClient {
    _private: (),
}

fn unreachable(what: &str, message: impl Into<String>) -> Problem {
    Problem::Unreachable {
        what: what.to_owned(),
        message: message.into(),
    }
}

fn protocol(what: &str, message: impl Into<String>) -> Problem {
    Problem::Protocol {
        what: what.to_owned(),
        message: message.into(),
    }
}

/// Why no connection to the talker was made.
enum OpenError {
    /// The talker did not prove the registry's key (the reason, one line).
    NotTheTalker(String),
    /// Nothing usable answered.
    Transport(Problem),
}

impl OpenError {
    /// As a [`Problem`] for status and owner actions: the connection was
    /// refused before any request went out.
    fn into_problem(self, what: &str) -> Problem {
        match self {
            OpenError::NotTheTalker(reason) => {
                unreachable(what, format!("not the registry's talker: {reason}"))
            }
            OpenError::Transport(problem) => problem,
        }
    }
}

impl From<OpenError> for VerifyError {
    fn from(error: OpenError) -> Self {
        match error {
            OpenError::NotTheTalker(reason) => VerifyError::NotTheTalker(reason),
            OpenError::Transport(problem) => VerifyError::Request(problem),
        }
    }
}

/// One HTTPS connection to a talker that proved the registry's key.
struct Session {
    what: String,
    host: String,
    binding: ChannelBinding,
    sender: SendRequest<Full<Bytes>>,
}

/// Connects to `dialed` and completes a TLS handshake that must prove
/// `registry_key` (standard base64).
async fn open(what: &str, dialed: SocketAddr, registry_key: &str) -> Result<Session, OpenError> {
    if let SocketAddr::V6(v6) = dialed
        && v6.scope_id() != 0
    {
        // A Host header cannot name the zone the talker would have to check.
        return Err(OpenError::Transport(unreachable(
            what,
            "link-local IPv6 addresses with a zone are not supported; use its IPv4 address",
        )));
    }
    let key = discovery::challenge::decode_key(registry_key)
        .map_err(|e| OpenError::Transport(protocol(what, format!("the registry's entry: {e}"))))?;
    let config = talker_tls::client_config(key.as_bytes())
        .map_err(|e| OpenError::Transport(unreachable(what, e.to_string())))?;
    let connect = async {
        let tcp = TcpStream::connect(dialed)
            .await
            .map_err(|e| OpenError::Transport(unreachable(what, format!("cannot connect: {e}"))))?;
        let tls = TlsConnector::from(config)
            .connect(talker_tls::server_name(dialed.ip()), tcp)
            .await;
        tls.map_err(|e| {
            let reason = talker_tls::handshake_failure(&e);
            let proof_failed = e
                .get_ref()
                .is_some_and(|inner| inner.is::<tokio_rustls::rustls::Error>());
            if proof_failed {
                OpenError::NotTheTalker(reason)
            } else {
                OpenError::Transport(unreachable(what, reason))
            }
        })
    };
    let tls = tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| OpenError::Transport(unreachable(what, "timed out")))??;
    let binding = talker_tls::channel_binding(tls.get_ref().1)
        .map_err(|e| OpenError::Transport(unreachable(what, format!("TLS: {e}"))))?;
    let (sender, connection) = http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| OpenError::Transport(unreachable(what, e.to_string())))?;
    // Drives the connection; it ends when the session (its sender) is dropped.
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "talker connection ended");
        }
    });
    Ok(Session {
        what: what.to_owned(),
        host: dialed.to_string(),
        binding,
        sender,
    })
}

impl Session {
    /// Sends one request and reads its JSON answer, which must come with
    /// status `expected` (any other status: the talker's error body).
    async fn call<T: serde::de::DeserializeOwned>(
        &mut self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        json: &impl serde::Serialize,
        expected: u16,
    ) -> Result<T, Problem> {
        let what = self.what.as_str();
        let mut request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::HOST, &self.host)
            .header(header::USER_AGENT, USER_AGENT)
            .header(header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = if method == Method::GET {
            Bytes::new()
        } else {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Bytes::from(serde_json::to_vec(json).map_err(|e| protocol(what, e.to_string()))?)
        };
        let request = request
            .body(Full::new(body))
            .map_err(|e| protocol(what, e.to_string()))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| unreachable(what, e.to_string()))?;
        let status = response.status().as_u16();
        let too_large = || protocol(what, format!("answer larger than {MAX_BODY} bytes"));
        let declared = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY as u64) {
            return Err(too_large());
        }
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<LengthLimitError>() {
                    too_large()
                } else {
                    unreachable(what, e.to_string())
                }
            })?
            .to_bytes();
        if status != expected {
            return Err(crate::matcher_client::refusal(status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| protocol(what, e.to_string()))
    }
}

/// Runs `exchange` within [`REQUEST_TIMEOUT`].
async fn bounded<T, E: From<Problem>>(
    what: &str,
    exchange: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| E::from(unreachable(what, "timed out")))?
}

impl TalkerClient {
    /// A client; it keeps nothing between requests (each has its own
    /// connection, checked against the key given with it).
    pub fn new() -> Result<Self, Problem> {
        Ok(Self { _private: () })
    }

    /// Asks the talker at `dialed` to sign a fresh challenge and checks the
    /// answer with `registry_key`, the key the registry holds for `talker_id`:
    /// the TLS handshake must prove that key, and the signature must cover the
    /// connection's channel binding.
    pub async fn verify(
        &self,
        talker_id: &str,
        dialed: SocketAddr,
        registry_key: &str,
    ) -> Result<(), VerifyError> {
        let what = format!("talker {talker_id} at {dialed}");
        let nonce = fresh_nonce();
        let (binding, answer) = bounded(&what, async {
            let mut session = open(&what, dialed, registry_key).await?;
            let request = ChallengeRequest {
                nonce: nonce.clone(),
            };
            let answer: ChallengeAnswer = session
                .call(Method::POST, "/v1/challenge", None, &request, 200)
                .await?;
            Ok::<_, VerifyError>((session.binding, answer))
        })
        .await?;
        check_answer(talker_id, &nonce, &binding, registry_key, &answer)
    }

    /// `GET /v1/status` of the talker at `dialed`, which must prove
    /// `registry_key`.
    pub async fn status(
        &self,
        dialed: SocketAddr,
        registry_key: &str,
    ) -> Result<TalkerStatus, Problem> {
        let what = format!("talker at {dialed}");
        bounded(&what, async {
            let mut session = open(&what, dialed, registry_key)
                .await
                .map_err(|e| e.into_problem(&what))?;
            session
                .call(Method::GET, "/v1/status", None, &(), 200)
                .await
        })
        .await
    }

    /// `POST /v1/calls/{call_id}/{action}` with the owner token to the talker
    /// at `dialed`, which must prove `registry_key`; `Ok` on 202.
    pub async fn owner_action(
        &self,
        dialed: SocketAddr,
        registry_key: &str,
        call_id: u64,
        action: OwnerAction,
        token: &Secret,
    ) -> Result<(), Problem> {
        let what = format!("talker at {dialed}");
        let path = format!("/v1/calls/{call_id}/{}", wire_action(action));
        bounded(&what, async {
            let mut session = open(&what, dialed, registry_key)
                .await
                .map_err(|e| e.into_problem(&what))?;
            let _: OwnerActionAccepted = session
                .call(
                    Method::POST,
                    &path,
                    Some(token.expose()),
                    &OwnerActionRequest {},
                    202,
                )
                .await?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn nonces_are_fresh_and_fit_the_talkers_bounds() {
        let a = fresh_nonce();
        assert_ne!(a, fresh_nonce());
        assert!((16..=128).contains(&a.len()));
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[tokio::test]
    async fn zoned_ipv6_is_refused_before_connecting() {
        let zoned = SocketAddr::V6(std::net::SocketAddrV6::new(
            "fe80::1".parse().unwrap(),
            8420,
            0,
            2,
        ));
        let key = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        let error = TalkerClient::new()
            .unwrap()
            .status(zoned, &key)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("with a zone"), "{error}");
    }
}
