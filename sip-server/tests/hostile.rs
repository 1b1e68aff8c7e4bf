//! Hostile input against `sip-server` (issue 2): the RFC 4475 categories, framing
//! abuse over TCP, and a bounded storm of random and mutated datagrams.
//!
//! Every case lives in `tests/hostile/*.sip` with the screening verdict and the
//! server answer it expects (see `hostile/cases.rs`). After every message the
//! server must still answer an OPTIONS with 200. All traffic stays on 127.0.0.1,
//! and every Request-URI names `home.example` (served) or `example.com` (refused).

#[path = "hostile/cases.rs"]
mod cases;

use cases::{Case, ScreenExpect, ServerExpect};
use splitdial_sip::headers;
use splitdial_sip::screen::{Verdict, screen_bytes};
use splitdial_sip::sip::{Response, SipMessage};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use testbed::{Process, Spawn};

/// How long an expected answer may take (2 busy cores, debug build).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to keep listening for an answer that must not come, after the
/// liveness probe sent behind it was already answered.
const SILENCE_GRACE: Duration = Duration::from_millis(300);

static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// A per-send unique token for Call-IDs and branches.
fn unique_id(tag: &str) -> String {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{n}x{}", std::process::id())
}

/// A running sip-server on a free loopback port, open registration.
struct Server {
    process: Process,
    addr: SocketAddr,
}

impl Server {
    fn start() -> Self {
        let mut process = Spawn::new(env!("CARGO_BIN_EXE_sip-server"))
            .args(["--listen", "127.0.0.1:0", "--domain", "home.example"])
            .env("RUST_LOG", "info,rsipstack=warn")
            .label("sip-server-hostile")
            .start()
            .expect("start sip-server");
        process
            .wait_for_output("sip-server ready", Duration::from_secs(30))
            .expect("sip-server ready");
        let log = process.log();
        let addr = log
            .lines()
            .find(|l| l.starts_with("sip-server ready"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in the ready line:\n{log}"));
        Self { process, addr }
    }

    fn log(&self) -> String {
        self.process.log()
    }

    /// Fails if any task of the server panicked (tokio keeps the process up).
    /// A log match, because a panicked task leaves no other trace; the text is
    /// Rust's own panic message, which no rename of ours can disarm.
    fn assert_no_panic(&self) {
        let log = self.log();
        assert!(
            !log.contains("panicked"),
            "sip-server panicked:\n{}",
            log_tail(&log)
        );
    }
}

/// A UDP client on its own loopback port.
struct UdpClient {
    socket: UdpSocket,
    local: String,
    server: SocketAddr,
}

impl UdpClient {
    fn new(server: SocketAddr) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        let local = socket.local_addr().expect("local addr").to_string();
        Self {
            socket,
            local,
            server,
        }
    }

    fn send(&self, bytes: &[u8]) {
        self.socket.send_to(bytes, self.server).expect("udp send");
    }

    /// Every SIP response that arrives until `until` returns true for the
    /// responses so far or `timeout` passes. ACKs final INVITE responses.
    fn collect(
        &self,
        timeout: Duration,
        mut until: impl FnMut(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        while Instant::now() < deadline && !until(&got) {
            match self.socket.recv_from(&mut buf) {
                Ok((n, _)) => {
                    if let Some(r) = Received::parse(&buf[..n]) {
                        if let Some(ack) = r.ack() {
                            self.send(ack.as_bytes());
                        }
                        got.push(r);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("udp recv: {e}"),
            }
        }
        got
    }

    /// Sends an OPTIONS to the server and returns its final status (retried a
    /// few times: UDP may lose a datagram while the server is flooded).
    fn probe(&self) -> Option<u16> {
        for _ in 0..4 {
            let id = unique_id("probe");
            self.send(&options(&self.local, &id, "UDP"));
            let got = self.collect(ANSWER_TIMEOUT, |r| r.iter().any(|r| r.is_final_for(&id)));
            if let Some(r) = got.iter().find(|r| r.is_final_for(&id)) {
                return Some(r.status);
            }
        }
        None
    }
}

/// A response the test received.
#[derive(Debug)]
struct Received {
    status: u16,
    call_id: String,
    raw: String,
    response: Response,
}

impl Received {
    fn parse(bytes: &[u8]) -> Option<Self> {
        match SipMessage::try_from(bytes) {
            Ok(SipMessage::Response(response)) => Some(Self {
                status: response.status_code.code(),
                call_id: headers::first(&response.headers, "Call-ID")
                    .unwrap_or_default()
                    .to_owned(),
                raw: String::from_utf8_lossy(bytes).into_owned(),
                response,
            }),
            _ => None,
        }
    }

    fn is_final_for(&self, id: &str) -> bool {
        self.status >= 200 && self.call_id == id
    }

    /// Whether this response answers the send tagged `id` (its Call-ID or
    /// branch carries the tag).
    fn answers(&self, id: &str) -> bool {
        self.raw.contains(id)
    }

    /// The hop-by-hop ACK for a non-2xx final response to an INVITE.
    fn ack(&self) -> Option<String> {
        let h = &self.response.headers;
        let cseq = headers::first(h, "CSeq")?;
        let (seq, method) = cseq.trim().split_once(char::is_whitespace)?;
        if self.status < 300 || !method.trim().eq_ignore_ascii_case("INVITE") {
            return None;
        }
        let via = headers::list(h, "Via").into_iter().next()?;
        let to = headers::first(h, "To")?;
        let uri = to
            .split_once('<')
            .and_then(|(_, rest)| rest.split_once('>'))
            .map_or(to, |(uri, _)| uri);
        Some(format!(
            "ACK {uri} SIP/2.0\r\nVia: {via}\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {seq} ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            headers::first(h, "From")?,
            self.call_id
        ))
    }
}

/// A plain OPTIONS to the server itself.
fn options(client: &str, id: &str, transport: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:home.example SIP/2.0\r\nVia: SIP/2.0/{transport} {client};branch=z9hG4bK{id}\r\nFrom: <sip:prober@home.example>;tag=p{id}\r\nTo: <sip:home.example>\r\nCall-ID: {id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// A REGISTER binding `user` to the client's address.
fn register(client: &str, id: &str, user: &str) -> Vec<u8> {
    format!(
        "REGISTER sip:home.example SIP/2.0\r\nVia: SIP/2.0/UDP {client};branch=z9hG4bK{id}\r\nFrom: <sip:{user}@home.example>;tag=r{id}\r\nTo: <sip:{user}@home.example>\r\nCall-ID: {id}\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\nContact: <sip:{user}@{client}>\r\nExpires: 120\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// What happened to one send.
fn outcome_text(got: &[Received], id: &str) -> String {
    let statuses: Vec<String> = got
        .iter()
        .filter(|r| r.answers(id))
        .map(|r| r.status.to_string())
        .collect();
    if statuses.is_empty() {
        "no answer".into()
    } else {
        format!("answered {}", statuses.join(", "))
    }
}

/// How an observed answer (the first final status, or none) compares with a case.
enum Judgement {
    /// As the case expects.
    Pass,
    /// A known, tolerated deviation (the text says which and why).
    Gap(String),
    /// Wrong.
    Fail(String),
}

fn expects(expect: &ServerExpect, observed: Option<u16>) -> bool {
    match (expect, observed) {
        (ServerExpect::None, None) => true,
        (ServerExpect::Status(codes), Some(s)) => codes.contains(&s),
        _ => false,
    }
}

fn judge(case: &Case, observed: Option<u16>) -> Judgement {
    let seen = observed.map_or_else(|| "no answer".to_owned(), |s| format!("answered {s}"));
    if expects(&case.server, observed) {
        return Judgement::Pass;
    }
    match &case.gap {
        Some((gap, why)) if expects(gap, observed) => Judgement::Gap(format!(
            "{}: {seen} instead of {:?} (known gap: {why})",
            case.name, case.server
        )),
        _ => Judgement::Fail(format!("{}: expected {:?}, {seen}", case.name, case.server)),
    }
}

fn wants_status(case: &Case) -> bool {
    matches!(case.server, ServerExpect::Status(_))
        || matches!(case.gap, Some((ServerExpect::Status(_), _)))
}

/// Sends one case over UDP with a liveness probe right behind it; returns the
/// first final status that answers the case (None: no answer) and the probe's.
fn run_udp_case(client: &UdpClient, case: &Case) -> (Option<u16>, Option<u16>) {
    let id = unique_id("h");
    client.send(&case.render(&client.local, &id));
    let probe_id = unique_id("probe");
    client.send(&options(&client.local, &probe_id, "UDP"));
    let want_status = wants_status(case);
    let mut got = client.collect(ANSWER_TIMEOUT, |r| {
        r.iter().any(|r| r.is_final_for(&probe_id))
            && (!want_status || r.iter().any(|r| r.answers(&id) && r.status >= 200))
    });
    // Once the probe behind it is answered, an answer to the case would have
    // been sent too; listen a little longer for late ones.
    got.extend(client.collect(SILENCE_GRACE, |_| false));
    let observed = got
        .iter()
        .find(|r| r.answers(&id) && r.status >= 200)
        .map(|r| r.status);
    let probe = got
        .iter()
        .find(|r| r.is_final_for(&probe_id))
        .map(|r| r.status);
    let probe = if probe.is_some() {
        probe
    } else {
        client.probe()
    };
    (observed, probe)
}

#[test]
fn screening_verdicts_match_the_case_files() {
    let mut wrong = Vec::new();
    for case in cases::load_all() {
        let bytes = case.render("127.0.0.1:5999", "screencheck");
        let (got, why) = match screen_bytes(&bytes) {
            Verdict::Accept(_) => (ScreenExpect::Accept, String::new()),
            Verdict::Reject(_, r) => (ScreenExpect::Reject(r.status), r.reason),
            Verdict::Drop(why) => (ScreenExpect::Drop, why),
        };
        if got != case.screen {
            wrong.push(format!(
                "{} ({}): expected {:?}, got {got:?} {why}",
                case.name, case.description, case.screen
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "screening verdicts:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_case_over_udp_gets_its_answer_and_the_server_survives() {
    let server = Server::start();
    let client = UdpClient::new(server.addr);
    assert_eq!(
        client.probe(),
        Some(200),
        "server not answering before the cases"
    );
    let cases = cases::load_all();
    let mut failures = Vec::new();
    for case in &cases {
        let (observed, probe) = run_udp_case(&client, case);
        match judge(case, observed) {
            Judgement::Pass => {}
            Judgement::Gap(text) => println!("UDP {text}"),
            Judgement::Fail(text) => failures.push(text),
        }
        if probe != Some(200) {
            failures.push(format!("{}: OPTIONS afterwards got {probe:?}", case.name));
        }
    }
    server.assert_no_panic();
    assert!(
        failures.is_empty(),
        "{} failures over UDP ({} cases):\n{}\n--- server log tail ---\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n"),
        log_tail(&server.log())
    );
}

/// A TCP connection to the server with a read timeout.
fn tcp_connect(server: SocketAddr) -> (TcpStream, String) {
    let stream = TcpStream::connect_timeout(&server, ANSWER_TIMEOUT).expect("tcp connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    let local = stream.local_addr().expect("local addr").to_string();
    (stream, local)
}

/// Reads SIP responses from `stream` until `until` holds, the peer closes, or
/// `timeout` passes. Returns the responses and whether the peer closed.
fn tcp_collect(
    stream: &mut TcpStream,
    timeout: Duration,
    mut until: impl FnMut(&[Received]) -> bool,
) -> (Vec<Received>, bool) {
    let deadline = Instant::now() + timeout;
    let (mut buf, mut got, mut closed) = (Vec::new(), Vec::new(), false);
    let mut chunk = vec![0u8; 16384];
    while Instant::now() < deadline && !until(&got) {
        match stream.read(&mut chunk) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                while let Some(frame) = next_frame(&mut buf) {
                    got.extend(Received::parse(&frame));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    (got, closed)
}

/// Cuts one complete message (header block plus Content-Length body) off `buf`.
fn next_frame(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    while buf.starts_with(b"\r\n") {
        buf.drain(..2);
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            (headers::long_name(name.trim()).eq_ignore_ascii_case("Content-Length"))
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    if buf.len() < end + length {
        return None;
    }
    Some(buf.drain(..end + length).collect())
}

/// OPTIONS over a fresh TCP connection; the final status, if any.
fn tcp_probe(server: SocketAddr) -> Option<u16> {
    let (mut stream, local) = tcp_connect(server);
    let id = unique_id("tprobe");
    stream.write_all(&options(&local, &id, "TCP")).ok()?;
    let (got, _) = tcp_collect(&mut stream, ANSWER_TIMEOUT, |r| {
        r.iter().any(|r| r.is_final_for(&id))
    });
    got.iter().find(|r| r.is_final_for(&id)).map(|r| r.status)
}

/// Sends `bytes` on a fresh TCP connection (optionally half-closing after) and
/// returns the first final status answering it, if any. `wait` bounds the wait.
fn tcp_exchange(
    server: SocketAddr,
    bytes: impl Fn(&str, &str) -> Vec<u8>,
    wait: Duration,
    half_close: bool,
) -> Option<u16> {
    let (mut stream, local) = tcp_connect(server);
    let id = unique_id("t");
    // The server may close the connection while we still write (oversized
    // frames): a failed write is not a failure of the test.
    let _ = stream.write_all(&bytes(&local, &id));
    if half_close {
        let _ = stream.shutdown(Shutdown::Write);
    }
    let (got, _) = tcp_collect(&mut stream, wait, |r| {
        r.iter().any(|r| r.answers(&id) && r.status >= 200)
    });
    got.iter()
        .find(|r| r.answers(&id) && r.status >= 200)
        .map(|r| r.status)
}

/// The check for a frame that must get no answer.
fn silent(observed: Option<u16>) -> Result<(), String> {
    observed.map_or(Ok(()), |s| Err(format!("expected no answer, answered {s}")))
}

#[test]
fn tcp_cases_and_framing_abuse_leave_the_server_serving() {
    let server = Server::start();
    let udp = UdpClient::new(server.addr);
    assert_eq!(
        tcp_probe(server.addr),
        Some(200),
        "no TCP OPTIONS before the cases"
    );
    let mut failures = Vec::new();
    let mut check = |name: &str, result: Result<(), String>| {
        let (tcp_alive, udp_alive) = (tcp_probe(server.addr), udp.probe());
        if result.is_err() || tcp_alive != Some(200) || udp_alive != Some(200) {
            failures.push(format!(
                "{name}: {}; OPTIONS afterwards: TCP {tcp_alive:?}, UDP {udp_alive:?}",
                result
                    .err()
                    .unwrap_or_else(|| "answered as expected".into())
            ));
        }
    };

    let cases = cases::load_all();
    let tcp_cases: Vec<&Case> = cases.iter().filter(|c| c.tcp).collect();
    assert!(
        tcp_cases.len() >= 8,
        "too few TCP cases: {}",
        tcp_cases.len()
    );
    for case in tcp_cases {
        let render = |local: &str, id: &str| {
            replace_bytes(&case.render(local, id), b"SIP/2.0/UDP", b"SIP/2.0/TCP")
        };
        let wait = if wants_status(case) {
            ANSWER_TIMEOUT
        } else {
            Duration::from_secs(1)
        };
        let observed = tcp_exchange(server.addr, render, wait, false);
        let result = match judge(case, observed) {
            Judgement::Pass => Ok(()),
            Judgement::Gap(text) => {
                println!("TCP {text}");
                Ok(())
            }
            Judgement::Fail(text) => Err(text),
        };
        check(&case.name, result);
    }

    // A frame cut off in the middle of its headers, then the connection closes.
    let truncated = |local: &str, id: &str| {
        let mut m = options(local, id, "TCP");
        m.truncate(m.len() / 2);
        m
    };
    check(
        "truncated frame",
        silent(tcp_exchange(
            server.addr,
            truncated,
            Duration::from_secs(1),
            true,
        )),
    );

    // Content-Length promises more than ever arrives, then the connection closes.
    let short_body = |local: &str, id: &str| {
        String::from_utf8_lossy(&options(local, id, "TCP"))
            .replace(
                "Content-Length: 0\r\n\r\n",
                "Content-Type: text/plain\r\nContent-Length: 5000\r\n\r\nonly this",
            )
            .into_bytes()
    };
    check(
        "content-length beyond the stream",
        silent(tcp_exchange(
            server.addr,
            short_body,
            Duration::from_secs(1),
            true,
        )),
    );

    // One frame far past the 64 KiB frame limit.
    let oversized = |local: &str, id: &str| {
        let big = format!(
            "X-Padding: {}\r\nContent-Length: 0\r\n\r\n",
            "p".repeat(100_000)
        );
        String::from_utf8_lossy(&options(local, id, "TCP"))
            .replace("Content-Length: 0\r\n\r\n", &big)
            .into_bytes()
    };
    check(
        "oversized frame",
        silent(tcp_exchange(
            server.addr,
            oversized,
            Duration::from_secs(1),
            false,
        )),
    );

    // A large but legal frame (20 KiB of header) is answered.
    let large = |local: &str, id: &str| {
        let big = format!(
            "X-Padding: {}\r\nContent-Length: 0\r\n\r\n",
            "p".repeat(20_000)
        );
        String::from_utf8_lossy(&options(local, id, "TCP"))
            .replace("Content-Length: 0\r\n\r\n", &big)
            .into_bytes()
    };
    check(
        "large legal frame",
        match tcp_exchange(server.addr, large, ANSWER_TIMEOUT, false) {
            Some(200) => Ok(()),
            other => Err(format!("expected 200, got {other:?}")),
        },
    );

    // An invalid and a valid request in one write: both answered, in order.
    let pipelined = |local: &str, id: &str| {
        let bad = String::from_utf8_lossy(&options(local, id, "TCP"))
            .replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE")
            .replace("Call-ID: ", "Call-ID: bad-")
            .replace("branch=z9hG4bK", "branch=z9hG4bKbad");
        let mut both = bad.into_bytes();
        both.extend(options(local, id, "TCP"));
        both
    };
    check(
        "pipelined invalid then valid",
        pipelined_exchange(server.addr, pipelined),
    );

    // A request dribbled in small pieces is still one message.
    let (mut stream, local) = tcp_connect(server.addr);
    let id = unique_id("drip");
    for piece in options(&local, &id, "TCP").chunks(17) {
        let _ = stream.write_all(piece);
        std::thread::sleep(Duration::from_millis(5));
    }
    let (got, _) = tcp_collect(&mut stream, ANSWER_TIMEOUT, |r| {
        r.iter().any(|r| r.is_final_for(&id))
    });
    let dripped = match got.iter().find(|r| r.is_final_for(&id)) {
        Some(r) if r.status == 200 => Ok(()),
        _ => Err(format!("expected 200, {}", outcome_text(&got, &id))),
    };
    check("request in 17-byte pieces", dripped);

    server.assert_no_panic();
    assert!(
        failures.is_empty(),
        "{} TCP checks failed:\n{}\n--- server log tail ---\n{}",
        failures.len(),
        failures.join("\n"),
        log_tail(&server.log())
    );
}

/// Two requests in one write (the first with a CSeq mismatch): expects 400 for
/// the first and 200 for the second.
fn pipelined_exchange(
    server: SocketAddr,
    bytes: impl Fn(&str, &str) -> Vec<u8>,
) -> Result<(), String> {
    let (mut stream, local) = tcp_connect(server);
    let id = unique_id("pipe");
    stream
        .write_all(&bytes(&local, &id))
        .map_err(|e| format!("write: {e}"))?;
    let bad_id = format!("bad-{id}");
    let (got, _) = tcp_collect(&mut stream, ANSWER_TIMEOUT, |r| {
        r.iter().any(|r| r.is_final_for(&id)) && r.iter().any(|r| r.is_final_for(&bad_id))
    });
    let status_of = |call_id: &str| {
        got.iter()
            .find(|r| r.is_final_for(call_id))
            .map(|r| r.status)
    };
    match (status_of(&bad_id), status_of(&id)) {
        (Some(400), Some(200)) => Ok(()),
        (bad, good) => Err(format!("expected 400 then 200, got {bad:?} and {good:?}")),
    }
}

/// A small deterministic generator (xorshift64*), so a failing run can be
/// replayed from the seed it prints.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }
}

/// Interesting octets for mutations: separators and delimiters of SIP syntax.
const SPICE: &[u8] = b"\r\n :;,<>\"\\=%@?&\t\x00\xff0123456789";

/// One random or mutated datagram built from the case set.
fn hostile_datagram(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    match rng.below(4) {
        0 => {
            let len = rng.below(1400);
            (0..len).map(|_| rng.next() as u8).collect()
        }
        1 => {
            // Header lines of different cases spliced together.
            let mut out = b"OPTIONS sip:home.example SIP/2.0\r\n".to_vec();
            for _ in 0..rng.below(12) {
                let seed = &seeds[rng.below(seeds.len())];
                let lines: Vec<&[u8]> = seed.split(|&b| b == b'\n').collect();
                out.extend_from_slice(lines[rng.below(lines.len())]);
                out.push(b'\n');
            }
            out.extend_from_slice(b"\r\n");
            out
        }
        _ => {
            let mut m = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(m.len() + 1);
                match rng.below(5) {
                    0 if at < m.len() => m[at] = rng.next() as u8,
                    1 => m.insert(at, SPICE[rng.below(SPICE.len())]),
                    2 if at < m.len() => {
                        m.remove(at);
                    }
                    3 => {
                        let digits = "9".repeat(1 + rng.below(30));
                        m.splice(at..at, digits.into_bytes());
                    }
                    _ => m.truncate(at.max(1)),
                }
            }
            m
        }
    }
}

#[test]
fn thousands_of_random_and_mutated_datagrams_leave_the_server_serving() {
    const DATAGRAMS: usize = 3000;
    let server = Server::start();
    let client = UdpClient::new(server.addr);
    let seed = 0x5EED_0000_0000_0000 | u64::from(std::process::id());
    println!("random datagram seed: {seed:#x}");
    let mut rng = Rng(seed);
    let seeds: Vec<Vec<u8>> = cases::load_all()
        .iter()
        .map(|c| c.render(&client.local, &unique_id("m")))
        .chain(std::iter::once(options(&client.local, "mutant", "UDP")))
        .collect();
    let started = Instant::now();
    for i in 0..DATAGRAMS {
        let datagram = hostile_datagram(&mut rng, &seeds);
        // A datagram may be refused locally (e.g. empty is fine, but never
        // more than 64 KiB): only send what UDP can carry.
        if datagram.len() < 65_000 {
            client.send(&datagram);
        }
        // Pace a little so replies do not all pile up at once; drain them.
        if i % 50 == 49 {
            client.collect(Duration::from_millis(20), |_| false);
        }
    }
    client.collect(Duration::from_millis(500), |_| false);
    println!("sent {DATAGRAMS} datagrams in {:?}", started.elapsed());

    assert_eq!(
        client.probe(),
        Some(200),
        "OPTIONS after the storm; log tail:\n{}",
        log_tail(&server.log())
    );
    let id = unique_id("reg");
    client.send(&register(&client.local, &id, "survivor"));
    let got = client.collect(ANSWER_TIMEOUT, |r| r.iter().any(|r| r.is_final_for(&id)));
    let status = got.iter().find(|r| r.is_final_for(&id)).map(|r| r.status);
    assert_eq!(status, Some(200), "REGISTER after the storm");
    assert_eq!(
        tcp_probe(server.addr),
        Some(200),
        "TCP OPTIONS after the storm"
    );
}

/// `haystack` with every `from` replaced by `to`, byte-wise.
fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// The last lines of a server log, for failure messages.
fn log_tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
