//! The household's own requests to a talker's local API (is it registered?
//! what does its status say?): HTTPS that accepts only the talker's key, as
//! the dialer does (`splitdial_tls::talker`), with the key the agent's ready
//! line names.
//!
//! Blocking, like [`crate::http`], so that on the simulated LAN the request
//! leaves from a thread inside a host's network namespace.

use crate::http::{Response, parse_response};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Largest answer read (a status with a few calls is a few KiB).
const MAX_RESPONSE: u64 = 1024 * 1024;

/// Sends one request to the talker at `addr`, whose certificate must carry
/// `talker_key`, and reads the whole answer (`Connection: close`). `Host` is
/// the IP address, as the talker's status API demands.
pub fn request(
    method: &str,
    addr: SocketAddr,
    talker_key: &[u8; 32],
    path: &str,
    bearer: Option<&str>,
    json_body: Option<&str>,
    timeout: Duration,
) -> std::io::Result<Response> {
    let config = splitdial_tls::talker::client_config(talker_key).map_err(std::io::Error::other)?;
    let connection =
        rustls::ClientConnection::new(config, splitdial_tls::talker::server_name(addr.ip()))
            .map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect_timeout(&addr, timeout)?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    if let Some(token) = bearer {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = json_body.unwrap_or("");
    if json_body.is_some() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()?;
    let mut raw = Vec::new();
    // The talker closes after its answer; a peer that drops the TCP connection
    // without TLS's close_notify has sent all it will send too.
    match (&mut stream).take(MAX_RESPONSE).read_to_end(&mut raw) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    parse_response(&raw)
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
