//! Click-to-dial end to end, with real parts: a controller signing tokens as
//! the matcher does, the embedded sip-server, two talker agents and real
//! GStreamer media. The controller's control INVITE (over TCP, trusted) is
//! auto-answered inactive by talker A; its REFER makes A call Bob's talker B
//! with A's own account; B answers (auto, for the caller its server asserts);
//! NOTIFYs report the progress; tones drawn at random by the test are heard on
//! the other side; BYE on the control leg ends everything.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsipstack::sip::{Request, Response, SipMessage};
use sip_server::ServerConfig;
use sip_server::users::UserDirectory;
use splitdial_sip::call_token::{Action, Claims, Issuer, TokenKind, key_id, unix_now};
use splitdial_sip::headers;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use testbed::{Process, Spawn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DOMAIN: &str = "home.example";

fn agent_config(
    dir: &std::path::Path,
    name: &str,
    user: &str,
    proxy: SocketAddr,
    key: &str,
    tone: f64,
    extra: &str,
) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"
name = "{name}"
kind = "pc"
media = {media}
id = "{name}"
state_dir = "{state}"
matcher_key = "{key}"

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
            media = if extra.contains("[video]") {
                r#"["audio", "video"]"#
            } else {
                r#"["audio"]"#
            },
        ),
    )
    .unwrap();
    path
}

fn start_agent(config: &std::path::Path, label: &str) -> Process {
    let agent = std::path::Path::new(env!("CARGO_BIN_EXE_talker-agent"));
    // Calls need the media worker, another workspace package, next to the agent.
    assert!(
        agent.with_file_name("talker-media").is_file(),
        "talker-media is missing next to {}: cargo build --workspace --all-targets",
        agent.display()
    );
    let mut p = Spawn::new(agent)
        .arg("--config")
        .arg(config)
        .env(
            "RUST_LOG",
            std::env::var("AGENT_LOG").unwrap_or_else(|_| "info,rsipstack=warn".into()),
        )
        .label(label)
        .start()
        .unwrap();
    p.wait_for_output("talker-agent ready", Duration::from_secs(20))
        .unwrap();
    p
}

/// A SIP controller on one TCP connection to the server.
struct Controller {
    stream: TcpStream,
    local: SocketAddr,
    pending: Vec<u8>,
}

impl Controller {
    async fn connect(server: SocketAddr) -> Self {
        let stream = TcpStream::connect(server).await.unwrap();
        let local = stream.local_addr().unwrap();
        Self {
            stream,
            local,
            pending: Vec::new(),
        }
    }

    async fn send(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).await.unwrap();
    }

    /// The next message on the connection (framed by Content-Length).
    async fn next(&mut self, within: Duration) -> Option<SipMessage> {
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

    /// Waits for the final response to `cseq`, answering requests (NOTIFY) on the
    /// way; returns it and the sipfrag statuses of the NOTIFYs seen meanwhile.
    async fn final_response(&mut self, cseq: &str, notifies: &mut Vec<(u16, String)>) -> Response {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match self.next(Duration::from_secs(20)).await {
                Some(SipMessage::Response(r))
                    if headers::first(&r.headers, "CSeq") == Some(cseq)
                        && r.status_code.code() >= 200 =>
                {
                    return r;
                }
                Some(SipMessage::Response(_)) => {}
                Some(SipMessage::Request(req)) => self.answer_request(&req, notifies).await,
                None => break,
            }
        }
        panic!("no final response to {cseq}");
    }

    async fn answer_request(&mut self, req: &Request, notifies: &mut Vec<(u16, String)>) {
        if req.method.to_string() == "NOTIFY" {
            let frag = splitdial_sip::sipfrag::parse(&req.body).unwrap();
            let state = headers::first(&req.headers, "Subscription-State")
                .unwrap_or_default()
                .to_owned();
            notifies.push((frag.code, state));
        }
        let ok = splitdial_sip::wire::response_to(req, 200, "OK", vec![]);
        self.stream.write_all(&ok.to_bytes()).await.unwrap();
    }
}

fn token(issuer: &Issuer, aud: &str, act: Action, dlg: &str, target: Option<&str>) -> String {
    let now = unix_now();
    issuer.issue(
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

/// A numeric field of an agent's last `media summary` line.
fn summary_field(log: &str, field: &str) -> f64 {
    testbed::MediaSummary::last_in(log)
        .and_then(|summary| summary.number(field))
        .unwrap_or_else(|| panic!("no {field} in a media summary of:\n{log}"))
}

/// The `heard_all` list (Hz) of an agent's last `media summary` line.
fn summary_heard_all(log: &str) -> Vec<f64> {
    testbed::MediaSummary::last_in(log)
        .unwrap_or_else(|| panic!("no media summary in:\n{log}"))
        .heard_all()
}

fn summary_hz(log: &str) -> f64 {
    summary_field(log, "heard_hz")
}

/// How the test call ends.
#[derive(PartialEq)]
enum Scenario {
    /// B answers; media flows; the controller hangs up.
    Answered,
    /// The same with video on both talkers.
    AnsweredWithVideo,
    /// B rings (manual policy); the controller hangs up while it rings.
    HangUpWhileRinging,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refer_connects_two_talkers_and_each_hears_the_other() {
    click_to_dial(Scenario::Answered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_video_each_talker_receives_the_others_picture() {
    click_to_dial(Scenario::AnsweredWithVideo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_up_while_the_callee_rings_cancels_its_ringing() {
    click_to_dial(Scenario::HangUpWhileRinging).await;
}

async fn click_to_dial(scenario: Scenario) {
    // SIP_SERVER_LOG=debug shows what the in-process server does.
    if let Ok(filter) = std::env::var("SIP_SERVER_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
    let users = "[users.alice]\npassword = \"alice-pw\"\n[users.bob]\npassword = \"bob-pw\"\n";
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), DOMAIN);
    config.users = Some(UserDirectory::parse(users, DOMAIN).unwrap());
    config.trusted = vec!["127.0.0.1".parse().unwrap()];
    let server = sip_server::start(config).await.unwrap();

    let seed: [u8; 32] = rand::random();
    let issuer = Issuer::new(seed, key_id(&Issuer::new(seed, "").verifying_key()));
    let key = STANDARD.encode(issuer.verifying_key().to_bytes());
    // Tones drawn now; nobody tells the analyzers.
    let tone_a = f64::from(300 + rand::random::<u32>() % 700);
    let tone_b = tone_a + f64::from(200 + rand::random::<u32>() % 700);
    let dir = tempfile::tempdir().unwrap();
    let video = if scenario == Scenario::AnsweredWithVideo {
        "[video]\nsource = \"pattern\"\nsink = \"analyze\"\n"
    } else {
        ""
    };
    let a_cfg = agent_config(
        dir.path(),
        "tv-a",
        "alice",
        server.local_addr(),
        &key,
        tone_a,
        video,
    );
    let b_cfg = agent_config(
        dir.path(),
        "pc-b",
        "bob",
        server.local_addr(),
        &key,
        tone_b,
        &if scenario == Scenario::HangUpWhileRinging {
            "[answer]\npolicy = \"manual\"\n".to_owned()
        } else {
            format!(
                "[answer]\npolicy = \"auto\"\nafter_seconds = 0\nallow = [\"sip:alice@home.example\"]\n{video}"
            )
        },
    );
    let mut a = start_agent(&a_cfg, "tv-a");
    let mut b = start_agent(&b_cfg, "pc-b");
    let location = &server.context().location;
    registered(location, &["alice", "bob"]).await;

    let mut ctl = Controller::connect(server.local_addr()).await;
    let me = ctl.local;
    let call_id = format!("ctl-{}", rand::random::<u32>());
    let offer = "v=0\r\no=ctl 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8\r\na=inactive\r\n";
    ctl.send(&format!(
        "INVITE sip:alice@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKctl1\r\nMax-Forwards: 70\r\nFrom: <sip:controller@{DOMAIN}>;tag=ctl\r\nTo: <sip:alice@{DOMAIN}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:controller@{me};transport=tcp>\r\nSplitdial-Token: {}\r\nCall-Info: <sip:controller@{DOMAIN}>;answer-after=0\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
        token(&issuer, "tv-a", Action::Control, &call_id, None),
        offer.len()
    ))
    .await;
    let mut notifies = Vec::new();
    let ok = ctl.final_response("1 INVITE", &mut notifies).await;
    assert_eq!(ok.status_code.code(), 200, "{ok}\n{}", a.log());
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
    let in_dialog = |method: &str, cseq: u32, extra: &str| {
        format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKctl{cseq}{method}\r\nMax-Forwards: 70\r\n{route_lines}From: <sip:controller@{DOMAIN}>;tag=ctl\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:controller@{me};transport=tcp>\r\n{extra}Content-Length: 0\r\n\r\n"
        )
    };
    ctl.send(&in_dialog("ACK", 1, "")).await;

    let bob = format!("sip:bob@{DOMAIN}");
    let refer_token = token(&issuer, "tv-a", Action::Refer, &call_id, Some(&bob));
    ctl.send(&in_dialog(
        "REFER",
        2,
        &format!("Refer-To: <{bob}>\r\nSplitdial-Token: {refer_token}\r\n"),
    ))
    .await;
    let accepted = ctl.final_response("2 REFER", &mut notifies).await;
    assert_eq!(accepted.status_code.code(), 202, "{accepted}");

    // Progress until the referred call is answered (or rings, when it will not be).
    let awaited = if scenario != Scenario::HangUpWhileRinging {
        200
    } else {
        180
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !notifies.iter().any(|(code, _)| *code == awaited) {
        assert!(
            Instant::now() < deadline,
            "no NOTIFY {awaited}; got {notifies:?}\nA:\n{}\nB:\n{}",
            a.log(),
            b.log()
        );
        if let Some(SipMessage::Request(req)) = ctl.next(Duration::from_secs(5)).await {
            ctl.answer_request(&req, &mut notifies).await;
        }
    }
    assert_eq!(notifies.first().map(|n| n.0), Some(100), "{notifies:?}");
    assert!(
        notifies
            .iter()
            .all(|(code, _)| [100, 180, 183, 200].contains(code)),
        "{notifies:?}"
    );
    let last = notifies.last().unwrap();
    assert_eq!(
        last.1.starts_with("terminated"),
        awaited == 200,
        "{notifies:?}"
    );

    if scenario == Scenario::HangUpWhileRinging {
        // B rings: for longer than the agents take to report media statistics
        // (0.5 s), its call and A's referred call carry no media.
        let client = splitdial_tls::client_builder().no_proxy().build().unwrap();
        let (status_a, status_b) = (status_addr(&a), status_addr(&b));
        let ringing = Instant::now();
        while ringing.elapsed() < Duration::from_millis(1500) {
            let ringing_a = status_calls(&client, status_a).await;
            let ringing_b = status_calls(&client, status_b).await;
            assert!(
                ringing_b
                    .iter()
                    .any(|c| c["kind"] == "incoming" && c["state"] == "ringing"),
                "B: {ringing_b:?}"
            );
            assert!(
                ringing_a
                    .iter()
                    .chain(&ringing_b)
                    .all(|c| c["media"].is_null()),
                "media before an answer: A {ringing_a:?}, B {ringing_b:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        ctl.send(&in_dialog("BYE", 3, "")).await;
        let bye_ok = ctl.final_response("3 BYE", &mut notifies).await;
        assert_eq!(bye_ok.status_code.code(), 200);
        // A cancels its ringing call: B stops ringing, and both are left without calls.
        if let Err(e) = b.wait_for_output("caller gave up", Duration::from_secs(15)) {
            panic!("{e}\nA:\n{}", a.log());
        }
        for (agent, status) in [(&a, status_a), (&b, status_b)] {
            testbed::wait_until_async("no calls left", Duration::from_secs(15), || async {
                status_calls(&client, status).await.is_empty().then_some(())
            })
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", agent.log()));
        }
        server.shutdown().await;
        return;
    }

    // Let the tones flow, then hang up from the controller.
    tokio::time::sleep(Duration::from_secs(3)).await;
    ctl.send(&in_dialog("BYE", 3, "")).await;
    let bye_ok = ctl.final_response("3 BYE", &mut notifies).await;
    assert_eq!(bye_ok.status_code.code(), 200);

    // Both media legs end (A hung up B) and report what they heard.
    a.wait_for_output("media summary", Duration::from_secs(15))
        .unwrap();
    b.wait_for_output("media summary", Duration::from_secs(15))
        .unwrap();
    let (heard_by_a, heard_by_b) = (summary_hz(&a.log()), summary_hz(&b.log()));
    assert!(
        (heard_by_a - tone_b).abs() < tone_b * 0.02,
        "A heard {heard_by_a} Hz, B sent {tone_b}\n{}",
        a.log()
    );
    assert!(
        (heard_by_b - tone_a).abs() < tone_a * 0.02,
        "B heard {heard_by_b} Hz, A sent {tone_a}\n{}",
        b.log()
    );
    if scenario == Scenario::AnsweredWithVideo {
        for (who, log) in [("A", a.log()), ("B", b.log())] {
            let frames = summary_field(&log, "video_frames");
            assert!(
                frames >= 10.0,
                "{who} received {frames} video frames\n{log}"
            );
            let size = (
                summary_field(&log, "video_width"),
                summary_field(&log, "video_height"),
            );
            assert_eq!(size, (640.0, 480.0), "{who}'s picture size\n{log}");
        }
    }
    server.shutdown().await;
}

fn heard(list: &[f64], tone: f64) -> bool {
    list.iter().any(|f| (f - tone).abs() < tone * 0.03)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_refer_makes_a_three_party_call_where_each_hears_both_others() {
    let users = "[users.alice]\npassword = \"alice-pw\"\n[users.bob]\npassword = \"bob-pw\"\n[users.carol]\npassword = \"carol-pw\"\n";
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), DOMAIN);
    config.users = Some(UserDirectory::parse(users, DOMAIN).unwrap());
    config.trusted = vec!["127.0.0.1".parse().unwrap()];
    let server = sip_server::start(config).await.unwrap();
    let seed: [u8; 32] = rand::random();
    let issuer = Issuer::new(seed, key_id(&Issuer::new(seed, "").verifying_key()));
    let key = STANDARD.encode(issuer.verifying_key().to_bytes());
    // Three tones far enough apart to be told apart in a mix, drawn now.
    let tone_a = f64::from(300 + rand::random::<u32>() % 200);
    let tone_b = tone_a + f64::from(300 + rand::random::<u32>() % 150);
    let tone_c = tone_b + f64::from(300 + rand::random::<u32>() % 150);
    let dir = tempfile::tempdir().unwrap();
    let auto =
        "[answer]\npolicy = \"auto\"\nafter_seconds = 0\nallow = [\"sip:alice@home.example\"]\n";
    let cfg = |name: &str, user: &str, tone: f64, extra: &str| {
        agent_config(
            dir.path(),
            name,
            user,
            server.local_addr(),
            &key,
            tone,
            extra,
        )
    };
    let mut a = start_agent(&cfg("tv-a", "alice", tone_a, ""), "tv-a");
    let mut b = start_agent(&cfg("pc-b", "bob", tone_b, auto), "pc-b");
    let mut c = start_agent(&cfg("ph-c", "carol", tone_c, auto), "ph-c");
    let location = &server.context().location;
    registered(location, &["alice", "bob", "carol"]).await;

    let mut ctl = Controller::connect(server.local_addr()).await;
    let me = ctl.local;
    let call_id = format!("conf-{}", rand::random::<u32>());
    let offer = "v=0\r\no=ctl 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8\r\na=inactive\r\n";
    ctl.send(&format!(
        "INVITE sip:alice@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKconf1\r\nMax-Forwards: 70\r\nFrom: <sip:controller@{DOMAIN}>;tag=ctl\r\nTo: <sip:alice@{DOMAIN}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:controller@{me};transport=tcp>\r\nSplitdial-Token: {}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
        token(&issuer, "tv-a", Action::Control, &call_id, None),
        offer.len()
    ))
    .await;
    let mut notifies = Vec::new();
    let ok = ctl.final_response("1 INVITE", &mut notifies).await;
    assert_eq!(ok.status_code.code(), 200, "{ok}");
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
    let in_dialog = |method: &str, cseq: u32, extra: &str| {
        format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKconf{cseq}{method}\r\nMax-Forwards: 70\r\n{route_lines}From: <sip:controller@{DOMAIN}>;tag=ctl\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:controller@{me};transport=tcp>\r\n{extra}Content-Length: 0\r\n\r\n"
        )
    };
    ctl.send(&in_dialog("ACK", 1, "")).await;

    for (cseq, user) in [(2u32, "bob"), (3, "carol")] {
        let party = format!("sip:{user}@{DOMAIN}");
        let t = token(&issuer, "tv-a", Action::Refer, &call_id, Some(&party));
        ctl.send(&in_dialog(
            "REFER",
            cseq,
            &format!("Refer-To: <{party}>\r\nSplitdial-Token: {t}\r\n"),
        ))
        .await;
        let accepted = ctl
            .final_response(&format!("{cseq} REFER"), &mut notifies)
            .await;
        assert_eq!(accepted.status_code.code(), 202, "{accepted}");
        let answered = |n: &Vec<(u16, String)>| n.iter().filter(|(code, _)| *code == 200).count();
        let wanted = cseq as usize - 1;
        let deadline = Instant::now() + Duration::from_secs(30);
        while answered(&notifies) < wanted {
            assert!(
                Instant::now() < deadline,
                "{user} never answered: {notifies:?}\nA:\n{}",
                a.log()
            );
            if let Some(SipMessage::Request(req)) = ctl.next(Duration::from_secs(5)).await {
                ctl.answer_request(&req, &mut notifies).await;
            }
        }
    }
    // The move into the conference runs in the media worker after the second
    // party answered, so its log line can trail that party's NOTIFY 200.
    if let Err(e) = a.wait_for_output("mixing locally", Duration::from_secs(10)) {
        panic!("{e}\n{}", a.log());
    }
    assert!(a.log().contains("mixing locally"), "{}", a.log());

    // Let the three tones mix, then end everything from the controller.
    tokio::time::sleep(Duration::from_secs(4)).await;
    ctl.send(&in_dialog("BYE", 4, "")).await;
    let bye_ok = ctl.final_response("4 BYE", &mut notifies).await;
    assert_eq!(bye_ok.status_code.code(), 200);
    for p in [&mut a, &mut b, &mut c] {
        p.wait_for_output("media summary", Duration::from_secs(15))
            .unwrap();
    }
    // The conference summary comes last on A (its first leg's plain session
    // logged one when it moved into the mix).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (at_a, at_b, at_c) = (
        summary_heard_all(&a.log()),
        summary_heard_all(&b.log()),
        summary_heard_all(&c.log()),
    );
    let tones = format!("a={tone_a} b={tone_b} c={tone_c}");
    assert!(
        heard(&at_a, tone_b) && heard(&at_a, tone_c),
        "A heard {at_a:?}; {tones}\n{}",
        a.log()
    );
    assert!(
        heard(&at_b, tone_a) && heard(&at_b, tone_c),
        "B heard {at_b:?}; {tones}\n{}",
        b.log()
    );
    assert!(
        heard(&at_c, tone_a) && heard(&at_c, tone_b),
        "C heard {at_c:?}; {tones}\n{}",
        c.log()
    );
    server.shutdown().await;
}

/// The agent's status API address, from its ready line.
fn status_addr(agent: &Process) -> SocketAddr {
    let log = agent.log();
    let line = log
        .lines()
        .find(|l| l.contains("talker-agent ready"))
        .unwrap_or_else(|| panic!("no ready line in:\n{log}"));
    line.split_whitespace()
        .skip_while(|w| *w != "status")
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no status address in {line:?}"))
}

/// Waits until each of `users` has a binding at the server.
async fn registered(location: &sip_server::location::Location, users: &[&str]) {
    let what = format!("{} registered at the server", users.join(", "));
    testbed::wait_until_async(&what, Duration::from_secs(20), || {
        let all = users.iter().all(|user| !location.lookup(user).is_empty());
        std::future::ready(all.then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// The agent's calls as `GET /v1/status` shows them.
async fn status_calls(client: &reqwest::Client, agent: SocketAddr) -> Vec<serde_json::Value> {
    let status: serde_json::Value = client
        .get(format!("http://{agent}/v1/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    status["calls"].as_array().cloned().unwrap_or_default()
}

/// The audio RTP packets a call of `kind` received so far (0 before media).
#[cfg(feature = "long-tests")]
fn audio_received(calls: &[serde_json::Value], kind: &str) -> Option<u64> {
    let call = calls.iter().find(|c| c["kind"] == kind)?;
    Some(
        call["media"]["audio"]["packets_received"]
            .as_u64()
            .unwrap_or(0),
    )
}

/// RFC 4028 on the control leg: the agent refuses an interval below 90 s
/// (422 with Min-SE: 90), answers 90 s with `refresher=uac` and
/// `Require: timer`; the controller then vanishes (no refresh, answers
/// nothing), so about 60 s after the answer the agent BYEs the control leg —
/// and only it: the referred call to B keeps its media flowing both ways until
/// A shuts down.
///
/// It takes 60 s of real time, so it runs only with the `long-tests` feature
/// (`scripts/test --long`, which CI runs): the agent is a child process on the
/// real clock, and its expiry follows RFC 4028's 90 s minimum interval, a
/// constant (`session_timer::MIN_SECS`), not a setting.
#[cfg(feature = "long-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrefreshed_control_leg_expires_alone_and_the_referred_call_goes_on() {
    let users = "[users.alice]\npassword = \"alice-pw\"\n[users.bob]\npassword = \"bob-pw\"\n";
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), DOMAIN);
    config.users = Some(UserDirectory::parse(users, DOMAIN).unwrap());
    config.trusted = vec!["127.0.0.1".parse().unwrap()];
    let server = sip_server::start(config).await.unwrap();
    let seed: [u8; 32] = rand::random();
    let issuer = Issuer::new(seed, key_id(&Issuer::new(seed, "").verifying_key()));
    let key = STANDARD.encode(issuer.verifying_key().to_bytes());
    let tone_a = f64::from(300 + rand::random::<u32>() % 700);
    let tone_b = tone_a + f64::from(200 + rand::random::<u32>() % 700);
    let dir = tempfile::tempdir().unwrap();
    let auto =
        "[answer]\npolicy = \"auto\"\nafter_seconds = 0\nallow = [\"sip:alice@home.example\"]\n";
    let proxy = server.local_addr();
    let mut a = start_agent(
        &agent_config(dir.path(), "tv-a", "alice", proxy, &key, tone_a, ""),
        "tv-a",
    );
    let mut b = start_agent(
        &agent_config(dir.path(), "pc-b", "bob", proxy, &key, tone_b, auto),
        "pc-b",
    );
    let location = &server.context().location;
    registered(location, &["alice", "bob"]).await;
    let logs = |a: &Process, b: &Process| format!("A:\n{}\nB:\n{}", a.log(), b.log());

    let mut ctl = Controller::connect(proxy).await;
    let me = ctl.local;
    let call_id = format!("st-{}", rand::random::<u32>());
    let offer = "v=0\r\no=ctl 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8\r\na=inactive\r\n";
    let invite = |cseq: u32, session_expires: &str| {
        format!(
            "INVITE sip:alice@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKst{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:controller@{DOMAIN}>;tag=ctl\r\nTo: <sip:alice@{DOMAIN}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:controller@{me};transport=tcp>\r\nSplitdial-Token: {}\r\nSupported: timer\r\nSession-Expires: {session_expires}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
            token(&issuer, "tv-a", Action::Control, &call_id, None),
            offer.len()
        )
    };
    let mut notifies = Vec::new();

    // Below RFC 4028's minimum: 422 naming it.
    ctl.send(&invite(1, "60;refresher=uac")).await;
    let too_small = ctl.final_response("1 INVITE", &mut notifies).await;
    assert_eq!(too_small.status_code.code(), 422, "{too_small}");
    assert_eq!(headers::first(&too_small.headers, "Min-SE"), Some("90"));
    let to = headers::first(&too_small.headers, "To").unwrap().to_owned();
    ctl.send(&format!(
        "ACK sip:alice@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKst1\r\nMax-Forwards: 70\r\nFrom: <sip:controller@{DOMAIN}>;tag=ctl\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    ))
    .await;

    // 90 s, refreshed by us: agreed.
    ctl.send(&invite(2, "90;refresher=uac\r\nMin-SE: 90")).await;
    let ok = ctl.final_response("2 INVITE", &mut notifies).await;
    let answered_at = Instant::now();
    assert_eq!(ok.status_code.code(), 200, "{ok}\n{}", logs(&a, &b));
    assert_eq!(
        headers::first(&ok.headers, "Session-Expires"),
        Some("90;refresher=uac"),
        "{ok}"
    );
    assert!(
        headers::list(&ok.headers, "Require").contains(&"timer".to_owned()),
        "{ok}"
    );
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
    let in_dialog = |method: &str, cseq: u32, extra: &str| {
        format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKst{cseq}{method}\r\nMax-Forwards: 70\r\n{route_lines}From: <sip:controller@{DOMAIN}>;tag=ctl\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:controller@{me};transport=tcp>\r\n{extra}Content-Length: 0\r\n\r\n"
        )
    };
    ctl.send(&in_dialog("ACK", 2, "")).await;
    let bob = format!("sip:bob@{DOMAIN}");
    let refer_token = token(&issuer, "tv-a", Action::Refer, &call_id, Some(&bob));
    ctl.send(&in_dialog(
        "REFER",
        3,
        &format!("Refer-To: <{bob}>\r\nSplitdial-Token: {refer_token}\r\n"),
    ))
    .await;
    let accepted = ctl.final_response("3 REFER", &mut notifies).await;
    assert_eq!(accepted.status_code.code(), 202, "{accepted}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !notifies.iter().any(|(code, _)| *code == 200) {
        assert!(
            Instant::now() < deadline,
            "no NOTIFY 200: {notifies:?}\n{}",
            logs(&a, &b)
        );
        if let Some(SipMessage::Request(req)) = ctl.next(Duration::from_secs(5)).await {
            ctl.answer_request(&req, &mut notifies).await;
        }
    }

    // The controller vanishes: no refresh, no answer to anything. It still
    // watches its connection, where the agent's BYE arrives after the expiry.
    let bye = loop {
        let left = Duration::from_secs(90).saturating_sub(answered_at.elapsed());
        assert!(
            !left.is_zero(),
            "no BYE 90 s after the answer\n{}",
            logs(&a, &b)
        );
        match ctl.next(left).await {
            Some(SipMessage::Request(req)) if req.method.to_string() == "BYE" => break req,
            Some(_) => {}
            None => panic!("the connection closed without a BYE\n{}", logs(&a, &b)),
        }
    };
    let expired_after = answered_at.elapsed();
    assert_eq!(
        headers::first(&bye.headers, "Call-ID"),
        Some(call_id.as_str())
    );
    // The agent gives up 60 s after its answer (90 - min(32, 90/3)), never sooner.
    assert!(
        expired_after >= Duration::from_secs(58),
        "BYE after {expired_after:?}\n{}",
        a.log()
    );
    assert!(a.log().contains("session timer expired"), "{}", a.log());

    // The referred call goes on: no media summary anywhere, both sides still
    // connected, and the packets each side receives still rise.
    let client = splitdial_tls::client_builder().no_proxy().build().unwrap();
    let (status_a, status_b) = (status_addr(&a), status_addr(&b));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let first_a = status_calls(&client, status_a).await;
    let first_b = status_calls(&client, status_b).await;
    assert!(
        !first_a.iter().any(|c| c["kind"] == "control"),
        "the control leg is gone: {first_a:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let then_a = status_calls(&client, status_a).await;
    let then_b = status_calls(&client, status_b).await;
    let rising = |before: &[serde_json::Value], after: &[serde_json::Value], kind: &str| match (
        audio_received(before, kind),
        audio_received(after, kind),
    ) {
        (Some(x), Some(y)) => y > x && x > 0,
        _ => false,
    };
    assert!(
        rising(&first_a, &then_a, "referred"),
        "A: {first_a:?} then {then_a:?}\n{}",
        logs(&a, &b)
    );
    assert!(
        rising(&first_b, &then_b, "incoming"),
        "B: {first_b:?} then {then_b:?}\n{}",
        logs(&a, &b)
    );
    // Both media calls are the ones of the start, still connected.
    for (calls, kind) in [(&then_a, "referred"), (&then_b, "incoming")] {
        assert!(
            calls
                .iter()
                .any(|c| c["kind"] == kind && c["state"] == "connected"),
            "{kind}: {calls:?}\n{}",
            logs(&a, &b)
        );
    }

    // Only A's shutdown ends the detached call: B hears its BYE.
    tokio::task::block_in_place(|| a.stop(Duration::from_secs(10)).unwrap());
    let a_log = a.log();
    let expired = a_log.find("session timer expired").unwrap();
    let ending = a_log
        .find("ending the detached referred calls")
        .unwrap_or_else(|| panic!("{a_log}"));
    assert!(expired < ending, "{a_log}");
    testbed::wait_until_async(
        "B's call ended (its media summary)",
        Duration::from_secs(15),
        || std::future::ready(b.log().contains("media summary").then_some(())),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", b.log()));
    let heard_by_b = summary_hz(&b.log());
    assert!(
        (heard_by_b - tone_a).abs() < tone_a * 0.02,
        "B heard {heard_by_b} Hz, A sent {tone_a}\n{}",
        b.log()
    );
    let _ = b.stop(Duration::from_secs(10));
    server.shutdown().await;
}
