//! The interop rig shared by `tests/interop.rs` and `benches/idle.rs` (both
//! include this file with `#[path]`): talker agents as child processes, a SIP
//! controller that signs call tokens as the matcher does (copied from
//! `tests/click_to_dial.rs`), baresip 1.0 as a third-party talker with its
//! `ctrl_tcp` event stream, and Kamailio with `interop/kamailio.cfg`.
//! Everything binds 127.0.0.x; run it inside a loopback-only namespace.

// Each including target uses a different part of the rig.
#![allow(dead_code, clippy::unwrap_used)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsipstack::sip::{Request, Response, SipMessage};
use splitdial_sip::call_token::{Action, Claims, Issuer, TokenKind, key_id, unix_now};
use splitdial_sip::headers;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testbed::{Process, Spawn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The SIP domain of every server in the rig.
pub const DOMAIN: &str = "home.example";

/// The address the controller sends from; the servers trust TCP from it.
pub const CONTROLLER_IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

/// Directory holding this rig's fixtures (kamailio.cfg).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// The matcher's signing key, as the agents pin it.
pub struct Matcher {
    /// Signs call tokens.
    pub issuer: Issuer,
    /// The public key, base64, for `matcher_key`.
    pub key: String,
}

impl Matcher {
    /// A fresh random key.
    pub fn new() -> Self {
        let seed: [u8; 32] = rand::random();
        let issuer = Issuer::new(seed, key_id(&Issuer::new(seed, "").verifying_key()));
        let key = STANDARD.encode(issuer.verifying_key().to_bytes());
        Self { issuer, key }
    }

    /// A call token for talker `aud`.
    pub fn token(&self, aud: &str, act: Action, dlg: &str, target: Option<&str>) -> String {
        let now = unix_now();
        self.issuer.issue(
            TokenKind::Call,
            &Claims {
                aud: aud.into(),
                jti: format!("j{}", rand::random::<u64>()),
                iat: now,
                exp: now + 20,
                call: "call-1".into(),
                dlg: dlg.into(),
                act,
                target: target.map(Into::into),
            },
        )
    }
}

/// Writes the configuration of agent `name` (account `user`@DOMAIN with password
/// `user-pw` via `proxy`, sending `tone` Hz, analysing what it hears).
pub fn agent_config(
    dir: &Path,
    name: &str,
    user: &str,
    proxy: SocketAddr,
    key: &str,
    tone: f64,
    extra: &str,
) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    testbed::write_private(
        &path,
        format!(
            r#"
name = "{name}"
kind = "pc"
media = ["audio"]
id = "{name}"
state_dir = "{state}"
matcher_key = "{key}"

[sip]
listen = "127.0.0.1:0"

[status]
listen = "127.0.0.1:0"

[[accounts]]
server = "{DOMAIN}"
proxy = "{proxy}"
user = "{user}"
password = "{user}-pw"

[audio]
source = "tone:{tone}"
sink = "analyze"
jitter_ms = 20

[discovery]
enabled = false
{extra}
"#,
            state = dir.join(format!("{name}-state")).display(),
        ),
    )
    .unwrap();
    path
}

/// The `[answer]` section that auto-answers `caller` (as asserted by the server).
pub fn auto_answer(caller: &str) -> String {
    format!("[answer]\npolicy = \"auto\"\nafter_seconds = 0\nallow = [\"sip:{caller}@{DOMAIN}\"]\n")
}

/// Starts an agent binary with `config` and waits until it is ready.
pub fn start_agent(binary: &Path, config: &Path, label: &str) -> Process {
    assert_media_worker_beside(binary);
    let mut p = Spawn::new(binary)
        .arg("--config")
        .arg(config)
        .env(
            "RUST_LOG",
            std::env::var("AGENT_LOG").unwrap_or_else(|_| "info,rsipstack=warn".into()),
        )
        .label(label)
        .start()
        .unwrap();
    p.wait_for_output("talker-agent ready", Duration::from_secs(30))
        .unwrap();
    p
}

/// Panics with the build command when the media worker (`talker-media`, another
/// workspace package) is not built next to the agent binary: calls would get no media.
pub fn assert_media_worker_beside(agent: &Path) {
    let worker = agent.with_file_name("talker-media");
    assert!(
        worker.is_file(),
        "{} is missing: build the workspace first (cargo build --workspace --all-targets)",
        worker.display()
    );
}

/// Sends SIGTERM to `process` (by its PID).
pub fn terminate(process: &Process) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &process.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM {}", process.pid());
}

/// Waits (bounded) until `what` holds ([`testbed::wait_until_async`]).
pub async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    testbed::wait_until_async(what, within, || std::future::ready(check().then_some(())))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// A SIP controller on one TCP connection to the server.
pub struct Controller {
    stream: TcpStream,
    /// Our end of the connection.
    pub local: SocketAddr,
    pending: Vec<u8>,
}

impl Controller {
    /// Connects to `server` from `source` (port chosen by the kernel).
    pub async fn connect(source: IpAddr, server: SocketAddr) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(source, 0)).unwrap();
        let stream = socket.connect(server).await.unwrap();
        let local = stream.local_addr().unwrap();
        Self {
            stream,
            local,
            pending: Vec::new(),
        }
    }

    /// Sends raw SIP text.
    pub async fn send(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).await.unwrap();
    }

    /// The next message on the connection (framed by Content-Length).
    pub async fn next(&mut self, within: Duration) -> Option<SipMessage> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.pending[..end]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        (n.trim().eq_ignore_ascii_case("content-length") || n.trim() == "l")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if self.pending.len() >= end + 4 + len {
                    let frame: Vec<u8> = self.pending.drain(..end + 4 + len).collect();
                    return Some(SipMessage::try_from(frame.as_slice()).unwrap());
                }
            }
            let mut buf = [0u8; 8192];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
    }

    /// Waits for the final response to `cseq`, answering requests on the way.
    pub async fn final_response(&mut self, cseq: &str, seen: &mut Seen) -> Response {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match self.next(Duration::from_secs(30)).await {
                Some(SipMessage::Response(r))
                    if headers::first(&r.headers, "CSeq") == Some(cseq)
                        && r.status_code.code() >= 200 =>
                {
                    return r;
                }
                Some(SipMessage::Response(_)) => {}
                Some(SipMessage::Request(req)) => self.answer_request(&req, seen).await,
                None => break,
            }
        }
        panic!("no final response to {cseq}");
    }

    /// Answers a request with 200, noting NOTIFY sipfrags and BYEs in `seen`.
    pub async fn answer_request(&mut self, req: &Request, seen: &mut Seen) {
        match req.method.to_string().as_str() {
            "NOTIFY" => {
                let frag = splitdial_sip::sipfrag::parse(&req.body).unwrap();
                let state = headers::first(&req.headers, "Subscription-State")
                    .unwrap_or_default()
                    .to_owned();
                seen.notifies.push((frag.code, state));
            }
            "BYE" => seen.bye = true,
            _ => {}
        }
        let ok = splitdial_sip::wire::response_to(req, 200, "OK", vec![]);
        self.stream.write_all(&ok.to_bytes()).await.unwrap();
    }

    /// Serves requests until `done(seen)` holds or `within` passes.
    pub async fn serve_until(
        &mut self,
        seen: &mut Seen,
        within: Duration,
        done: impl Fn(&Seen) -> bool,
    ) -> bool {
        let deadline = Instant::now() + within;
        while !done(seen) {
            if Instant::now() >= deadline {
                return false;
            }
            if let Some(SipMessage::Request(req)) = self.next(Duration::from_secs(2)).await {
                self.answer_request(&req, seen).await;
            }
        }
        true
    }
}

/// What the controller received on its control leg.
#[derive(Debug, Default)]
pub struct Seen {
    /// (sipfrag status, Subscription-State) of each NOTIFY, in order.
    pub notifies: Vec<(u16, String)>,
    /// The talker ended the control leg with BYE.
    pub bye: bool,
}

impl Seen {
    /// Whether a NOTIFY reported `code`.
    pub fn notified(&self, code: u16) -> bool {
        self.notifies.iter().any(|(c, _)| *c == code)
    }
}

/// An answered control leg to a talker, as the matcher's controller holds it.
pub struct ControlLeg {
    /// The controller's connection.
    pub ctl: Controller,
    /// What arrived on the leg.
    pub seen: Seen,
    call_id: String,
    target: String,
    to: String,
    route_lines: String,
    talker_id: String,
    cseq: u32,
}

impl ControlLeg {
    /// Sends the control INVITE for talker `talker_id` to `request_uri` through
    /// `server` (over TCP from [`CONTROLLER_IP`]), expects 200 with an inactive
    /// answer, and ACKs it.
    pub async fn open(
        server: SocketAddr,
        matcher: &Matcher,
        talker_id: &str,
        request_uri: &str,
    ) -> Self {
        let mut ctl = Controller::connect(CONTROLLER_IP, server).await;
        let me = ctl.local;
        let call_id = format!("ctl-{}", rand::random::<u32>());
        let offer = "v=0\r\no=ctl 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8\r\na=inactive\r\n";
        let to_user = request_uri.split(';').next().unwrap_or(request_uri);
        ctl.send(&format!(
            "INVITE {request_uri} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKctl1{call_id}\r\nMax-Forwards: 70\r\nFrom: <sip:controller@{DOMAIN}>;tag=ctl\r\nTo: <{to_user}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:controller@{me};transport=tcp>\r\nSplitdial-Token: {}\r\nCall-Info: <sip:controller@{DOMAIN}>;answer-after=0\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
            matcher.token(talker_id, Action::Control, &call_id, None),
            offer.len()
        ))
        .await;
        let mut seen = Seen::default();
        let ok = ctl.final_response("1 INVITE", &mut seen).await;
        assert_eq!(ok.status_code.code(), 200, "control INVITE: {ok}");
        assert!(String::from_utf8_lossy(&ok.body).contains("a=inactive"));
        let to = headers::first(&ok.headers, "To").unwrap().to_owned();
        let mut routes = headers::list(&ok.headers, "Record-Route");
        routes.reverse();
        let route_lines: String = routes.iter().map(|r| format!("Route: {r}\r\n")).collect();
        let target = headers::first(&ok.headers, "Contact")
            .unwrap()
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_owned();
        let mut leg = Self {
            ctl,
            seen,
            call_id,
            target,
            to,
            route_lines,
            talker_id: talker_id.into(),
            cseq: 1,
        };
        leg.send_in_dialog("ACK", 1, "").await;
        leg
    }

    async fn send_in_dialog(&mut self, method: &str, cseq: u32, extra: &str) {
        let (me, target, to, call_id, routes) = (
            self.ctl.local,
            &self.target,
            &self.to,
            &self.call_id,
            &self.route_lines,
        );
        let text = format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKctl{cseq}{method}{call_id}\r\nMax-Forwards: 70\r\n{routes}From: <sip:controller@{DOMAIN}>;tag=ctl\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:controller@{me};transport=tcp>\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        self.ctl.send(&text).await;
    }

    /// REFERs the talker to `party` (with its token), expects 202, then waits
    /// for the NOTIFY reporting 200 (the referred party answered).
    pub async fn refer_and_wait_answer(&mut self, matcher: &Matcher, party: &str) {
        self.cseq += 1;
        let cseq = self.cseq;
        let token = matcher.token(&self.talker_id, Action::Refer, &self.call_id, Some(party));
        self.send_in_dialog(
            "REFER",
            cseq,
            &format!("Refer-To: <{party}>\r\nSplitdial-Token: {token}\r\n"),
        )
        .await;
        let accepted = self
            .ctl
            .final_response(&format!("{cseq} REFER"), &mut self.seen)
            .await;
        assert_eq!(accepted.status_code.code(), 202, "{accepted}");
        let answered = self
            .ctl
            .serve_until(&mut self.seen, Duration::from_secs(30), |s| s.notified(200))
            .await;
        assert!(answered, "no NOTIFY 200: {:?}", self.seen.notifies);
        assert_eq!(
            self.seen.notifies.first().map(|n| n.0),
            Some(100),
            "{:?}",
            self.seen.notifies
        );
    }

    /// Hangs up the control leg (BYE) and expects 200.
    pub async fn bye(&mut self) {
        self.cseq += 1;
        let cseq = self.cseq;
        self.send_in_dialog("BYE", cseq, "").await;
        let ok = self
            .ctl
            .final_response(&format!("{cseq} BYE"), &mut self.seen)
            .await;
        assert_eq!(ok.status_code.code(), 200, "{ok}");
    }
}

/// Removes ANSI colour escapes.
pub fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut in_escape = false;
    for c in text.chars() {
        match c {
            '\u{1b}' => in_escape = true,
            'm' if in_escape => in_escape = false,
            _ if in_escape => {}
            _ => out.push(c),
        }
    }
    out
}

/// A numeric field (`field=N`) of the last `media summary` line of an agent log.
pub fn summary_field(log: &str, field: &str) -> f64 {
    testbed::MediaSummary::last_in(log)
        .and_then(|summary| summary.number(field))
        .unwrap_or_else(|| panic!("no {field} in a media summary of:\n{log}"))
}

/// How a baresip instance is set up.
pub struct BaresipSetup<'a> {
    /// Account user at [`DOMAIN`] (password `user-pw`).
    pub user: &'a str,
    /// The registrar/proxy (baresip's outbound proxy).
    pub proxy: SocketAddr,
    /// The tone `ausine` sends, Hz.
    pub tone_hz: u32,
    /// Load the opus module too (otherwise G.711 only).
    pub opus: bool,
}

/// baresip 1.0 running headless on 127.0.0.1, registered through an outbound
/// proxy given by IP (no DNS: the namespace has no resolver), auto-answering.
pub struct Baresip {
    /// The process.
    pub process: Process,
    /// Its SIP port (UDP/TCP; TLS on the next one).
    pub sip_port: u16,
    /// Its `ctrl_tcp` port.
    pub ctrl_port: u16,
    _dir: tempfile::TempDir,
}

impl Baresip {
    /// Writes the configuration and starts baresip (not waiting for anything).
    pub fn start(setup: &BaresipSetup<'_>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("splitdial-baresip-")
            .tempdir()
            .unwrap();
        let sip_port = testbed::free_port_pair().unwrap();
        let ctrl_port = loop {
            let p = testbed::free_port_pair().unwrap();
            if p.abs_diff(sip_port) > 1 {
                break p;
            }
        };
        let opus = if setup.opus {
            "module\t\t\topus.so\n"
        } else {
            ""
        };
        // ausrc at 48 kHz stereo: with other source formats baresip 1.0 never
        // answers (FACTS.md). aubridge as player: no sound card, ~1 % of a core.
        let config = format!(
            "poll_method\t\tepoll\nsip_listen\t\t127.0.0.1:{sip_port}\nnet_interface\t\t127.0.0.1\n\
             audio_player\t\taubridge,nil\naudio_alert\t\taubridge,nil\naudio_source\t\tausine,{tone}\n\
             ausrc_srate\t\t48000\nausrc_channels\t\t2\nmodule_path\t\t/usr/lib/baresip/modules\n\
             {opus}module\t\t\tg711.so\nmodule\t\t\tausine.so\nmodule\t\t\taubridge.so\n\
             module_app\t\taccount.so\nmodule_app\t\tmenu.so\nmodule_app\t\tctrl_tcp.so\n\
             ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}\n",
            tone = setup.tone_hz,
        );
        std::fs::write(dir.path().join("config"), config).unwrap();
        // `outbound` by IP: without it baresip resolves the domain and fails
        // ("Network is unreachable") in a namespace without a resolver.
        let account = format!(
            "<sip:{user}@{DOMAIN};transport=udp>;auth_pass={user}-pw;outbound=\"sip:{proxy};transport=udp\";regint=600;answermode=auto\n",
            user = setup.user,
            proxy = setup.proxy,
        );
        std::fs::write(dir.path().join("accounts"), account).unwrap();
        let process = Spawn::new("baresip")
            .arg("-f")
            .arg(dir.path())
            .label(format!("baresip-{}", setup.user))
            .start()
            .unwrap();
        Self {
            process,
            sip_port,
            ctrl_port,
            _dir: dir,
        }
    }

    /// Waits until the registration was accepted.
    pub fn wait_registered(&mut self) {
        self.process
            .wait_for_output("200 OK () [1 binding]", Duration::from_secs(30))
            .unwrap();
    }

    /// Connects to its `ctrl_tcp` socket (events arrive from then on).
    pub async fn control(&self) -> BaresipControl {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.ctrl_port));
        let connected = testbed::wait_until_async(
            &format!("baresip's ctrl_tcp accepting on {addr}"),
            Duration::from_secs(10),
            || async { TcpStream::connect(addr).await.ok() },
        )
        .await;
        match connected {
            Ok(stream) => BaresipControl {
                stream,
                pending: Vec::new(),
                messages: Vec::new(),
            },
            Err(e) => panic!("{e}: {:?}", TcpStream::connect(addr).await.err()),
        }
    }
}

/// baresip's `ctrl_tcp`: netstring-framed JSON commands, responses and events.
pub struct BaresipControl {
    stream: TcpStream,
    pending: Vec<u8>,
    /// Every message received so far.
    pub messages: Vec<serde_json::Value>,
}

impl BaresipControl {
    /// Sends a command (e.g. `dial`, `sip:bob@home.example`).
    pub async fn command(&mut self, command: &str, params: &str) {
        let body =
            serde_json::json!({"command": command, "params": params, "token": "rig"}).to_string();
        let frame = format!("{}:{body},", body.len());
        self.stream.write_all(frame.as_bytes()).await.unwrap();
    }

    /// Reads whatever arrives within `within` into [`Self::messages`].
    pub async fn collect(&mut self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(colon) = self.pending.iter().position(|b| *b == b':') {
                let len: usize = std::str::from_utf8(&self.pending[..colon])
                    .unwrap()
                    .parse()
                    .unwrap();
                if self.pending.len() < colon + 1 + len + 1 {
                    break;
                }
                let body: Vec<u8> = self.pending.drain(..colon + 1 + len + 1).collect();
                let json = &body[colon + 1..colon + 1 + len];
                self.messages.push(serde_json::from_slice(json).unwrap());
            }
            let mut buf = [0u8; 16384];
            let Ok(read) = tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await
            else {
                return;
            };
            match read {
                Ok(0) | Err(_) => return,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// The events of type `kind` received so far.
    pub fn events(&self, kind: &str) -> Vec<&serde_json::Value> {
        self.messages
            .iter()
            .filter(|m| m["event"] == true && m["type"] == kind)
            .collect()
    }

    /// RTP packets baresip received from its peer, by its latest RTCP
    /// statistics (expected minus lost), or `None` before any RTCP arrived.
    pub fn rtp_received(&self) -> Option<u64> {
        let last = self.events("CALL_RTCP").into_iter().last()?;
        let rx = &last["rtcp_stats"]["rx"];
        Some(rx["sent"].as_u64()? - rx["lost"].as_u64().unwrap_or(0))
    }
}

/// Kamailio with `interop/kamailio.cfg`, stopped by PID on drop.
pub struct Kamailio {
    /// Its UDP and TCP listen address.
    pub addr: SocketAddr,
    /// The process.
    pub process: Process,
    _rundir: tempfile::TempDir,
}

impl Kamailio {
    /// Starts Kamailio on a free port of 127.0.0.1 and waits until it is ready.
    pub fn start() -> Self {
        let port = testbed::free_port_pair().unwrap();
        let rundir = tempfile::Builder::new()
            .prefix("splitdial-kamailio-")
            .tempdir()
            .unwrap();
        let run = rundir.path();
        let mut process = testbed::kamailio(
            &fixtures().join("kamailio.cfg"),
            run,
            testbed::KAMAILIO_MEMORY_MB,
        )
        .label("kamailio")
        .arg("-A")
        .arg(format!("SIP_PORT={port}"))
        .start()
        .unwrap();
        process
            .wait_for_output("kamailio ready", Duration::from_secs(60))
            .unwrap();
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            process,
            _rundir: rundir,
        }
    }

    /// Kamailio's request log lines (`request METHOD URI from proto:ip:port contact ...`).
    pub fn requests(&self) -> Vec<String> {
        self.process
            .log()
            .lines()
            .filter_map(|l| l.find("request ").map(|at| l[at..].to_owned()))
            .collect()
    }
}

/// CPU time (user + system, clock ticks) of process `pid`.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start after ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// A `kB` field of `/proc/PID/status` or `/proc/PID/smaps_rollup`.
pub fn proc_kb(pid: u32, file: &str, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/{file}"))
}
