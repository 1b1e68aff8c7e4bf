//! A raw SIP user agent for tests: a UDP (or TCP) socket on 127.0.0.1 that sends
//! hand-written messages and parses what comes back, so tests see exactly what
//! the server puts on the wire.

#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use rsipstack::sip::{Request, Response, SipMessage};
use sip_server::{RunningServer, ServerConfig};
use splitdial_sip::headers;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

pub const DOMAIN: &str = "home.example";

pub async fn server(users: Option<&str>) -> RunningServer {
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), DOMAIN);
    if let Some(text) = users {
        config.users = Some(sip_server::users::UserDirectory::parse(text, DOMAIN).unwrap());
    }
    config.trusted = vec!["127.0.0.1".parse().unwrap()];
    sip_server::start(config).await.unwrap()
}

pub struct Ua {
    pub socket: UdpSocket,
    pub local: SocketAddr,
    pub server: SocketAddr,
    pub user: String,
    counter: std::sync::atomic::AtomicU32,
}

impl Ua {
    pub async fn new(user: &str, server: SocketAddr) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = socket.local_addr().unwrap();
        Self {
            socket,
            local,
            server,
            user: user.into(),
            counter: 0.into(),
        }
    }

    pub fn next(&self) -> u32 {
        self.counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1
    }

    pub fn branch(&self) -> String {
        format!("z9hG4bK{}x{}", self.local.port(), self.next())
    }

    pub fn contact(&self) -> String {
        format!("<sip:{}@{}>", self.user, self.local)
    }

    pub async fn send(&self, text: &str) {
        self.send_to(text, self.server).await;
    }

    pub async fn send_to(&self, text: &str, to: SocketAddr) {
        let text = text.replace("\r\n", "\n").replace('\n', "\r\n");
        self.socket.send_to(text.as_bytes(), to).await.unwrap();
    }

    /// The next message, or `None` after `wait`.
    pub async fn recv_within(&self, wait: Duration) -> Option<SipMessage> {
        let mut buf = vec![0u8; 65536];
        let (n, _) = tokio::time::timeout(wait, self.socket.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(SipMessage::try_from(&buf[..n]).expect("server sent unparseable SIP"))
    }

    pub async fn recv(&self) -> SipMessage {
        self.recv_within(Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("{}: nothing received", self.user))
    }

    /// The next response that is not 100 Trying.
    pub async fn response(&self) -> Response {
        loop {
            match self.recv().await {
                SipMessage::Response(r) if r.status_code.code() == 100 => continue,
                SipMessage::Response(r) => return r,
                SipMessage::Request(r) => {
                    panic!("{}: expected a response, got {}", self.user, r.method)
                }
            }
        }
    }

    pub async fn request(&self) -> Request {
        match self.recv().await {
            SipMessage::Request(r) => r,
            SipMessage::Response(r) => {
                panic!("{}: expected a request, got {}", self.user, r.status_code)
            }
        }
    }

    pub fn register_text(&self, call_id: &str, cseq: u32, expires: u32, extra: &str) -> String {
        format!(
            "REGISTER sip:{DOMAIN} SIP/2.0
Via: SIP/2.0/UDP {local};branch={branch};rport
Max-Forwards: 70
From: <sip:{user}@{DOMAIN}>;tag=r{cseq}
To: <sip:{user}@{DOMAIN}>
Call-ID: {call_id}
CSeq: {cseq} REGISTER
Contact: {contact};expires={expires}
{extra}Content-Length: 0

",
            local = self.local,
            branch = self.branch(),
            user = self.user,
            contact = self.contact(),
        )
    }

    pub async fn register(&self) -> Response {
        let call_id = format!("reg-{}-{}", self.user, self.local.port());
        self.send(&self.register_text(&call_id, self.next(), 300, ""))
            .await;
        self.response().await
    }

    pub fn invite_text(&self, to_user: &str, call_id: &str, extra: &str) -> String {
        let body = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        format!(
            "INVITE sip:{to_user}@{DOMAIN} SIP/2.0
Via: SIP/2.0/UDP {local};branch={branch};rport
Max-Forwards: 70
From: <sip:{user}@{DOMAIN}>;tag=f{port}
To: <sip:{to_user}@{DOMAIN}>
Call-ID: {call_id}
CSeq: 1 INVITE
Contact: {contact}
{extra}Content-Type: application/sdp
Content-Length: {len}

{body}",
            local = self.local,
            port = self.local.port(),
            branch = self.branch(),
            user = self.user,
            contact = self.contact(),
            len = body.len(),
        )
    }

    /// Answers a request with `status`, echoing Via, From, To (+tag), Call-ID,
    /// CSeq and Record-Route, and our Contact.
    pub async fn answer(&self, request: &Request, status: u16, reason: &str, to_tag: &str) {
        let mut text = format!("SIP/2.0 {status} {reason}\n");
        for v in headers::list(&request.headers, "Via") {
            text.push_str(&format!("Via: {v}\n"));
        }
        for name in ["From", "Call-ID", "CSeq"] {
            text.push_str(&format!(
                "{name}: {}\n",
                headers::first(&request.headers, name).unwrap()
            ));
        }
        let to = headers::first(&request.headers, "To").unwrap();
        if splitdial_sip::wire::has_tag(to) || to_tag.is_empty() {
            text.push_str(&format!("To: {to}\n"));
        } else {
            text.push_str(&format!("To: {to};tag={to_tag}\n"));
        }
        for rr in headers::list(&request.headers, "Record-Route") {
            text.push_str(&format!("Record-Route: {rr}\n"));
        }
        text.push_str(&format!(
            "Contact: {}\nContent-Length: 0\n\n",
            self.contact()
        ));
        // Responses go to the top Via's sent-by (the proxy).
        let top = splitdial_sip::sip::typed::Via::parse(&headers::list(&request.headers, "Via")[0])
            .unwrap();
        let to_addr: SocketAddr = top.uri.host_with_port.to_string().parse().unwrap();
        self.send_to(&text, to_addr).await;
    }
}

pub fn header<'a>(headers: &'a rsipstack::sip::Headers, name: &'a str) -> Option<&'a str> {
    headers::first(headers, name)
}
