//! A talker's local API as the dialer uses it (docs/talker-agent.md, "Local
//! status API"): the signed challenge that makes a discovered or hand-entered
//! talker *verified*, its status, and the owner's actions on its calls.
//!
//! The challenge answer is checked with the public key the matcher's registry
//! holds for the talker id the dialer asked about — never with the key the
//! answer carries — over the dialer's own fresh nonce and the address it
//! actually dialed, and the answer must name that same talker id. Owner tokens
//! are sent only to talkers verified that way (the caller's duty: the state
//! machine asks for owner actions on verified addresses only).

use crate::app::OwnerAction;
use crate::config::Secret;
use crate::matcher_client::wire_action;
use crate::model::{Problem, TalkerStatus};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use discovery::challenge::Challenge;
pub use splitdial_api::ChallengeAnswer;
use splitdial_api::{ChallengeRequest, OwnerActionAccepted, OwnerActionRequest};
use std::net::SocketAddr;
use std::time::Duration;

/// Talkers are on the LAN: a short bound keeps a dead one from holding a task.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read (a status with a few calls and stats is ~2 KiB).
const MAX_BODY: usize = 256 * 1024;
/// Longest talker nonce accepted in an answer.
const MAX_TALKER_NONCE: usize = 256;

/// Why a talker is not verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The challenge request failed.
    #[error(transparent)]
    Request(#[from] Problem),
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
    Signature(#[from] discovery::challenge::ChallengeError),
}

/// A fresh dialer nonce: 32 random bytes, base64url (43 characters).
pub fn fresh_nonce() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Checks a challenge answer: it must name `talker_id`, and its signature over
/// (`talker_id`, `dialer_nonce`, its nonce, `dialed`) must check with
/// `registry_key` (standard base64, from `GET /v1/me/talkers`).
pub fn check_answer(
    talker_id: &str,
    dialer_nonce: &str,
    dialed: &str,
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
        dialed,
    }
    .verify_base64(registry_key, &answer.signature)?;
    Ok(())
}

/// The client of talkers' local APIs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TalkerClient {
    http: reqwest::Client,
}

fn unreachable(what: &str, error: &reqwest::Error) -> Problem {
    Problem::Unreachable {
        what: what.to_owned(),
        message: crate::matcher_client::error_chain(error),
    }
}

fn protocol(what: &str, message: impl Into<String>) -> Problem {
    Problem::Protocol {
        what: what.to_owned(),
        message: message.into(),
    }
}

/// `http://{addr}` plus a path; a scoped IPv6 address (`fe80::1%eth0`) cannot
/// be written in a URL, so it is refused rather than silently unscoped.
fn url(addr: SocketAddr, path: &str) -> Result<String, Problem> {
    if let SocketAddr::V6(v6) = addr
        && v6.scope_id() != 0
    {
        return Err(Problem::Unreachable {
            what: format!("talker at {addr}"),
            message:
                "link-local IPv6 addresses with a zone are not supported; use its IPv4 address"
                    .into(),
        });
    }
    Ok(format!("http://{addr}{path}"))
}

impl TalkerClient {
    /// A client with no proxy, no redirects and short timeouts.
    pub fn new() -> Result<Self, Problem> {
        let http = splitdial_tls::client_builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("splitdial/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| unreachable("talker", &e))?;
        Ok(Self { http })
    }

    async fn read<T: serde::de::DeserializeOwned>(
        what: &str,
        response: reqwest::Response,
        expected: u16,
    ) -> Result<T, Problem> {
        let status = response.status().as_u16();
        let mut response = response;
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY as u64)
        {
            return Err(protocol(
                what,
                format!("answer larger than {MAX_BODY} bytes"),
            ));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(what, &e))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(protocol(
                    what,
                    format!("answer larger than {MAX_BODY} bytes"),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        if status != expected {
            return Err(crate::matcher_client::refusal(status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| protocol(what, e.to_string()))
    }

    /// Asks the talker at `dialed` to sign a fresh challenge and checks the
    /// answer with `registry_key`, the key the registry holds for `talker_id`.
    pub async fn verify(
        &self,
        talker_id: &str,
        dialed: SocketAddr,
        registry_key: &str,
    ) -> Result<(), VerifyError> {
        let what = format!("talker {talker_id} at {dialed}");
        let nonce = fresh_nonce();
        let dialed_text = dialed.to_string();
        let response = self
            .http
            .post(url(dialed, "/v1/challenge")?)
            .json(&ChallengeRequest {
                nonce: nonce.clone(),
                dialed: dialed_text.clone(),
            })
            .send()
            .await
            .map_err(|e| unreachable(&what, &e))?;
        let answer: ChallengeAnswer = Self::read(&what, response, 200).await?;
        check_answer(talker_id, &nonce, &dialed_text, registry_key, &answer)
    }

    /// `GET /v1/status` of the talker at `dialed`.
    pub async fn status(&self, dialed: SocketAddr) -> Result<TalkerStatus, Problem> {
        let what = format!("talker at {dialed}");
        let response = self
            .http
            .get(url(dialed, "/v1/status")?)
            .send()
            .await
            .map_err(|e| unreachable(&what, &e))?;
        Self::read(&what, response, 200).await
    }

    /// `POST /v1/calls/{call_id}/{action}` with the owner token; `Ok` on 202.
    pub async fn owner_action(
        &self,
        dialed: SocketAddr,
        call_id: u64,
        action: OwnerAction,
        token: &Secret,
    ) -> Result<(), Problem> {
        let what = format!("talker at {dialed}");
        let action = wire_action(action);
        let response = self
            .http
            .post(url(dialed, &format!("/v1/calls/{call_id}/{action}"))?)
            .bearer_auth(token.expose())
            .json(&OwnerActionRequest {})
            .send()
            .await
            .map_err(|e| unreachable(&what, &e))?;
        let _: OwnerActionAccepted = Self::read(&what, response, 202).await?;
        Ok(())
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

    #[test]
    fn zoned_ipv6_is_refused_and_others_are_bracketed() {
        assert_eq!(
            url("[2001:db8::1]:8420".parse().unwrap(), "/v1/status").unwrap(),
            "http://[2001:db8::1]:8420/v1/status"
        );
        let zoned = SocketAddr::V6(std::net::SocketAddrV6::new(
            "fe80::1".parse().unwrap(),
            8420,
            0,
            2,
        ));
        assert!(url(zoned, "/v1/status").is_err());
    }
}
