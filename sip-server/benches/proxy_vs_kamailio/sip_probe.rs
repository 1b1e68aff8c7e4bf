//! A minimal SIP caller and callee on blocking UDP sockets, for timing
//! INVITE -> 200 through a proxy with a monotonic clock (`Instant`).
//!
//! The callee registers at the proxy and answers every INVITE with 200 at once,
//! copying the Record-Route set; the caller places sequential calls (INVITE, 200,
//! ACK and BYE along the route set) and reports the INVITE -> 200 time. Both are
//! deliberately small: the same code runs against both proxies, so what differs
//! between the two sets of samples is the proxy.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Errors of the probe.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// RFC 3261 T1: the caller retransmits after this long without an answer.
const T1: Duration = Duration::from_millis(500);

/// A parsed SIP message: start line, headers in order (names lower-cased, compact
/// forms expanded), body.
#[derive(Debug)]
pub struct Message {
    start: String,
    headers: Vec<(String, String)>,
}

impl Message {
    /// Parses a datagram; `None` when it is not a SIP message we can read.
    pub fn parse(datagram: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(datagram).ok()?;
        let head = text.split("\r\n\r\n").next()?;
        let mut lines = head.split("\r\n");
        let start = lines.next()?.to_owned();
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line.split_once(':')?;
            let name = match name.trim().to_ascii_lowercase().as_str() {
                "v" => "via".to_owned(),
                "f" => "from".to_owned(),
                "t" => "to".to_owned(),
                "i" => "call-id".to_owned(),
                "m" => "contact".to_owned(),
                "l" => "content-length".to_owned(),
                "c" => "content-type".to_owned(),
                other => other.to_owned(),
            };
            headers.push((name, value.trim().to_owned()));
        }
        Some(Self { start, headers })
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        let rest = self.start.strip_prefix("SIP/2.0 ")?;
        rest.get(..3)?.parse().ok()
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        if self.start.starts_with("SIP/2.0") {
            return None;
        }
        self.start.split(' ').next()
    }

    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every header line called `name`, in order, each split at top-level commas
    /// (one entry per value).
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| split_top_level_commas(v))
            .collect()
    }

    /// Every header line called `name`, unsplit, in order.
    fn header_lines(&self, name: &str) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The method named in CSeq.
    pub fn cseq_method(&self) -> Option<&str> {
        self.header("cseq")?.split_whitespace().nth(1)
    }
}

/// Splits a header value at commas outside `<...>` and quotes.
fn split_top_level_commas(value: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let (mut angle, mut quoted, mut start) = (false, false, 0);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(value[start..i].trim().to_owned());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim().to_owned());
    parts.retain(|p| !p.is_empty());
    parts
}

/// The URI inside a name-addr (`"x" <sip:...>;p`) or a bare addr-spec.
fn uri_of(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or(value).trim(),
    }
}

fn short_hash(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

const SDP_OFFER: &str = "v=0\r\no=probe 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
const SDP_ANSWER: &str = "v=0\r\no=probe 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/// Answers every INVITE with 200 at once, in a thread of its own, until stopped.
pub struct Callee {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Callee {
    /// Binds 127.0.0.1, registers `user@home.example` at `proxy`, and starts
    /// answering.
    pub fn start(proxy: SocketAddr, user: &str) -> Result<Self, Error> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        let local = socket.local_addr()?;
        register(&socket, proxy, user)?;
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, answered, user) = (stop.clone(), answered.clone(), user.to_owned());
            std::thread::Builder::new()
                .name(format!("callee-{user}"))
                .spawn(move || answer_calls(&socket, local, &user, &stop, &answered))?
        };
        Ok(Self {
            stop,
            answered,
            thread: Some(thread),
        })
    }

    /// INVITEs answered so far.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }
}

impl Drop for Callee {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn register(socket: &UdpSocket, proxy: SocketAddr, user: &str) -> Result<(), Error> {
    let local = socket.local_addr()?;
    let call_id = format!("reg-{}-{}@127.0.0.1", std::process::id(), local.port());
    let request = format!(
        "REGISTER sip:home.example SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-reg-{port};rport\r\n\
         From: <sip:{user}@home.example>;tag=reg{port}\r\n\
         To: <sip:{user}@home.example>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:{user}@{local};transport=udp>\r\n\
         Expires: 3600\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n",
        port = local.port()
    );
    socket.set_read_timeout(Some(T1))?;
    let mut buf = vec![0u8; 65536];
    for _ in 0..8 {
        socket.send_to(request.as_bytes(), proxy)?;
        let deadline = Instant::now() + T1;
        while Instant::now() < deadline {
            let Ok((n, _)) = socket.recv_from(&mut buf) else {
                break;
            };
            let Some(m) = Message::parse(&buf[..n]) else {
                continue;
            };
            match m.status() {
                Some(200) => return Ok(()),
                Some(s) if s >= 300 => return Err(format!("REGISTER got {}", m.start).into()),
                _ => {}
            }
        }
    }
    Err(format!("no answer to REGISTER from {proxy}").into())
}

fn answer_calls(
    socket: &UdpSocket,
    local: SocketAddr,
    user: &str,
    stop: &AtomicBool,
    answered: &AtomicU64,
) {
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Some(request) = Message::parse(&buf[..n]) else {
            continue;
        };
        let response = match request.method() {
            Some("INVITE") => {
                answered.fetch_add(1, Ordering::Relaxed);
                response_200(&request, Some((local, user)))
            }
            Some("ACK") | None => continue,
            Some(_) => response_200(&request, None),
        };
        if let Some(response) = response {
            let _ = socket.send_to(response.as_bytes(), from);
        }
    }
}

/// 200 OK for `request`; with `contact`, an INVITE answer (Record-Route, Contact,
/// SDP answer, a To tag derived from the Call-ID so retransmissions get the same).
fn response_200(request: &Message, contact: Option<(SocketAddr, &str)>) -> Option<String> {
    let call_id = request.header("call-id")?;
    let mut to = request.header("to")?.to_owned();
    if !to.contains(";tag=") {
        to.push_str(&format!(";tag=uas{:x}", short_hash(call_id)));
    }
    let mut out = String::with_capacity(1024);
    out.push_str("SIP/2.0 200 OK\r\n");
    for via in request.header_lines("via") {
        out.push_str(&format!("Via: {via}\r\n"));
    }
    if contact.is_some() {
        for rr in request.header_lines("record-route") {
            out.push_str(&format!("Record-Route: {rr}\r\n"));
        }
    }
    out.push_str(&format!("From: {}\r\n", request.header("from")?));
    out.push_str(&format!("To: {to}\r\n"));
    out.push_str(&format!("Call-ID: {call_id}\r\n"));
    out.push_str(&format!("CSeq: {}\r\n", request.header("cseq")?));
    match contact {
        Some((addr, user)) => {
            out.push_str(&format!(
                "Contact: <sip:{user}@{addr};transport=udp>\r\n\
                 Content-Type: application/sdp\r\n\
                 Content-Length: {}\r\n\r\n{SDP_ANSWER}",
                SDP_ANSWER.len()
            ));
        }
        None => out.push_str("Content-Length: 0\r\n\r\n"),
    }
    Some(out)
}

/// Why a probe call did not yield a sample.
#[derive(Debug)]
pub enum CallFailure {
    /// No final answer to the INVITE within the deadline.
    InviteTimeout,
    /// The INVITE got a failure response.
    Rejected(u16),
    /// The 200 lacked something needed to continue (Contact, To).
    BadAnswer,
    /// No 200 to the BYE within the deadline (the INVITE sample still counts).
    ByeTimeout,
    /// A socket error.
    Io(std::io::Error),
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InviteTimeout => write!(f, "no final answer to the INVITE"),
            Self::Rejected(status) => write!(f, "INVITE answered {status}"),
            Self::BadAnswer => write!(f, "200 without Contact or To"),
            Self::ByeTimeout => write!(f, "no 200 to the BYE"),
            Self::Io(e) => write!(f, "socket error: {e}"),
        }
    }
}

/// Places sequential calls through a proxy from one UDP socket.
pub struct Caller {
    socket: UdpSocket,
    local: SocketAddr,
    proxy: SocketAddr,
    calls: u64,
    buf: Vec<u8>,
}

impl Caller {
    /// Binds 127.0.0.1 to call through `proxy`.
    pub fn new(proxy: SocketAddr) -> Result<Self, Error> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        let local = socket.local_addr()?;
        Ok(Self {
            socket,
            local,
            proxy,
            calls: 0,
            buf: vec![0u8; 65536],
        })
    }

    /// Calls `user@home.example`; returns the INVITE -> 200 time once the whole call
    /// (ACK, BYE, 200) has gone through.
    pub fn call(&mut self, user: &str) -> Result<Duration, CallFailure> {
        self.calls += 1;
        let n = self.calls;
        let pid = std::process::id();
        let local = self.local;
        let call_id = format!("{n}-{pid}-probe@127.0.0.1");
        let from = format!("<sip:probe-caller@home.example>;tag=c{n}x{pid}");
        let invite = format!(
            "INVITE sip:{user}@home.example SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK-{pid}-{n}-i;rport\r\n\
             From: {from}\r\n\
             To: <sip:{user}@home.example>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:probe-caller@{local};transport=udp>\r\n\
             Max-Forwards: 70\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{SDP_OFFER}",
            SDP_OFFER.len()
        );
        let started = Instant::now();
        let answer = self.transact(&invite, &call_id, "INVITE", Duration::from_secs(8))?;
        let latency = started.elapsed();
        let Some(answer) = answer else {
            return Err(CallFailure::InviteTimeout);
        };
        let status = answer.status().unwrap_or(0);
        let to = answer.header("to").map(str::to_owned);
        if !(200..300).contains(&status) {
            // ACK the failure so the proxy stops retransmitting it.
            if let Some(to) = &to {
                let ack = format!(
                    "ACK sip:{user}@home.example SIP/2.0\r\n\
                     Via: SIP/2.0/UDP {local};branch=z9hG4bK-{pid}-{n}-i;rport\r\n\
                     From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\n\
                     Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                );
                let _ = self.socket.send_to(ack.as_bytes(), self.proxy);
            }
            return Err(CallFailure::Rejected(status));
        }
        let (Some(to), Some(contact)) = (to, answer.header("contact")) else {
            return Err(CallFailure::BadAnswer);
        };
        let target = uri_of(contact).to_owned();
        // The route set is the Record-Route list in reverse (RFC 3261 §12.1.2).
        let routes: String = answer
            .header_values("record-route")
            .iter()
            .rev()
            .map(|r| format!("Route: {r}\r\n"))
            .collect();
        let in_dialog = |method: &str, cseq: u32, tag: &str| {
            format!(
                "{method} {target} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {local};branch=z9hG4bK-{pid}-{n}-{tag};rport\r\n\
                 {routes}From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n\
                 CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            )
        };
        // The first Route is the proxy itself (loose routing): send both there.
        let ack = in_dialog("ACK", 1, "a");
        self.socket
            .send_to(ack.as_bytes(), self.proxy)
            .map_err(CallFailure::Io)?;
        let bye = in_dialog("BYE", 2, "b");
        match self.transact(&bye, &call_id, "BYE", Duration::from_secs(8))? {
            Some(m) if m.status().is_some_and(|s| (200..300).contains(&s)) => Ok(latency),
            _ => Err(CallFailure::ByeTimeout),
        }
    }

    /// Sends `request` and waits for its final response (retransmitting every T1),
    /// for at most `limit`. Provisional answers and strays are skipped.
    fn transact(
        &mut self,
        request: &str,
        call_id: &str,
        method: &str,
        limit: Duration,
    ) -> Result<Option<Message>, CallFailure> {
        let deadline = Instant::now() + limit;
        let mut resend_at = Instant::now() + T1;
        self.socket
            .send_to(request.as_bytes(), self.proxy)
            .map_err(CallFailure::Io)?;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            if now >= resend_at {
                self.socket
                    .send_to(request.as_bytes(), self.proxy)
                    .map_err(CallFailure::Io)?;
                resend_at = now + T1;
            }
            let wait = resend_at.min(deadline).saturating_duration_since(now);
            self.socket
                .set_read_timeout(Some(wait.max(Duration::from_micros(100))))
                .map_err(CallFailure::Io)?;
            let n = match self.socket.recv(&mut self.buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(CallFailure::Io(e)),
            };
            let Some(m) = Message::parse(&self.buf[..n]) else {
                continue;
            };
            let ours = m.header("call-id") == Some(call_id) && m.cseq_method() == Some(method);
            match m.status() {
                Some(s) if ours && s >= 200 => return Ok(Some(m)),
                // A provisional answer stops retransmissions of an INVITE.
                Some(_) if ours && method == "INVITE" => resend_at = deadline,
                _ => {}
            }
        }
    }
}
