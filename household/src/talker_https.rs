//! The household's own requests to a talker's local API (is it registered?
//! what does its status say?): HTTPS that accepts only the talker's key, as
//! the dialer does (`splitdial_tls::talker`), with the key the agent's ready
//! line names.
//!
//! The request itself is [`crate::http`]'s, blocking, so that on the simulated
//! LAN it leaves from a thread inside a host's network namespace.

use crate::http::{self, Response};
use std::net::SocketAddr;
use std::time::Duration;

/// Sends one request to the talker at `addr`, whose certificate must carry
/// `talker_key`, and reads the whole answer ([`http::request`] with the
/// talker's verifier).
pub fn request(
    method: &str,
    addr: SocketAddr,
    talker_key: &[u8; 32],
    path: &str,
    bearer: Option<&str>,
    json_body: Option<&str>,
    timeout: Duration,
) -> std::io::Result<Response> {
    let tls = http::Tls {
        config: splitdial_tls::talker::client_config(talker_key).map_err(std::io::Error::other)?,
        server_name: splitdial_tls::talker::server_name(addr.ip()),
    };
    http::request(method, addr, path, bearer, json_body, timeout, Some(&tls))
}

/// The status API's address and key from an agent's ready line
/// (`talker-agent ready id ID sip ADDR status ADDR key BASE64`).
pub fn status_api_of(ready_line: &str) -> Option<(SocketAddr, [u8; 32])> {
    use base64::Engine;
    let after = |key: &str| {
        let mut words = ready_line.split_whitespace();
        words.find(|w| *w == key)?;
        words.next()
    };
    let addr = after("status")?.parse().ok()?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(after("key")?)
        .ok()?
        .try_into()
        .ok()?;
    Some((addr, key))
}

/// `GET /v1/status` of the agent whose ready line is `ready_line`, as JSON
/// (blocking: from async code, run it with `spawn_blocking`).
///
/// # Errors
/// When the line names no status API or the request fails.
pub fn status_of(ready_line: &str) -> std::io::Result<serde_json::Value> {
    let (addr, key) = status_api_of(ready_line).ok_or_else(|| {
        std::io::Error::other(format!("no status address and key in {ready_line:?}"))
    })?;
    let answer = request(
        "GET",
        addr,
        &key,
        "/v1/status",
        None,
        None,
        Duration::from_secs(10),
    )?;
    if answer.status != 200 {
        return Err(std::io::Error::other(format!(
            "{} {}",
            answer.status, answer.body
        )));
    }
    Ok(answer.json())
}
