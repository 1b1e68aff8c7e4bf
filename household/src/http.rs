//! A small blocking HTTP/1.1 client for the household's own checks (is every
//! talker online? what does an agent's status say?).
//!
//! Why not reqwest: on the simulated LAN the request must leave from a thread
//! inside a host's network namespace (`LanHost::run_in`), and a blocking
//! socket made on that very thread is the simplest thing that stays there.

use rustls_pki_types::ServerName;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// TLS toward one server: the client configuration and the name its certificate must carry.
/// How the server is verified is the configuration's: the household CA for the matcher, the
/// talker's own key for a talker's status API ([`crate::talker_https`]).
#[derive(Debug, Clone)]
pub struct Tls {
    /// The client configuration (roots and verifier).
    pub config: Arc<rustls::ClientConfig>,
    /// The server's name or address in its certificate.
    pub server_name: ServerName<'static>,
}

/// Largest answer read (a registry listing or a talker's status is a few KiB).
const MAX_RESPONSE: u64 = 4 * 1024 * 1024;

/// One answer: status code and body text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The body, decoded from chunked transfer coding when needed.
    pub body: String,
}

impl Response {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Sends one request (over TLS when `tls` is given) and reads the whole
/// answer (`Connection: close`). `Host` is the IP address, as the talker's
/// status API demands.
pub fn request(
    method: &str,
    addr: SocketAddr,
    path: &str,
    bearer: Option<&str>,
    json_body: Option<&str>,
    timeout: Duration,
    tls: Option<&Tls>,
) -> std::io::Result<Response> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    match tls {
        None => exchange(stream, method, addr, path, bearer, json_body),
        Some(tls) => {
            let connection =
                rustls::ClientConnection::new(Arc::clone(&tls.config), tls.server_name.clone())
                    .map_err(std::io::Error::other)?;
            exchange(
                rustls::StreamOwned::new(connection, stream),
                method,
                addr,
                path,
                bearer,
                json_body,
            )
        }
    }
}

/// Writes the request and reads the answer to its end.
fn exchange(
    mut stream: impl Read + Write,
    method: &str,
    addr: SocketAddr,
    path: &str,
    bearer: Option<&str>,
    json_body: Option<&str>,
) -> std::io::Result<Response> {
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
    match stream.take(MAX_RESPONSE).read_to_end(&mut raw) {
        Ok(_) => {}
        // A TLS server that closes without close_notify after a whole answer
        // (the talker's status API does) has sent all it will send.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    parse_response(&raw)
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned())
}

/// Splits a whole HTTP/1.1 answer into status and body.
pub(crate) fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of the response head"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let rest = &raw[split + 4..];
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("no status line"))?;
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Decodes a chunked body (RFC 9112 §7.1; trailers ignored).
fn dechunk(mut data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("truncated chunk size"))?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data.get(..size).ok_or_else(|| invalid("truncated chunk"))?;
        out.extend_from_slice(chunk);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_and_chunked_answers() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n{\"a\":true}\n";
        let r = parse_response(plain).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["a"], serde_json::json!(true));
        let chunked =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"b\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        let r = parse_response(chunked).unwrap();
        assert_eq!((r.status, r.body.as_str()), (404, "{\"b\":1}"));
        assert!(parse_response(b"garbage").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
    }
}
