//! The control leg's security rules, driven by a raw SIP controller that signs
//! tokens exactly as the matcher does: only a valid, unused `control` token is
//! auto-answered (inactive), only a matching `refer` token is obeyed, and
//! everything else gets 403 — no call, no media.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsipstack::sip::{SipMessage, StatusCode};
use splitdial_sip::call_token::{Action, Claims, Issuer, TokenKind, key_id, unix_now};
use splitdial_sip::headers;
use std::net::SocketAddr;
use std::time::Duration;
use testbed::{Process, Spawn};
use tokio::net::UdpSocket;

const TALKER: &str = "tv-1";

struct Rig {
    agent: Process,
    agent_addr: SocketAddr,
    issuer: Issuer,
    socket: UdpSocket,
    _dir: tempfile::TempDir,
}

async fn rig(policy: &str) -> Rig {
    rig_with_proxy(policy, "127.0.0.1:9").await
}

async fn rig_with_proxy(policy: &str, proxy: &str) -> Rig {
    let seed: [u8; 32] = rand::random();
    let probe = Issuer::new(seed, "x");
    let issuer = Issuer::new(seed, key_id(&probe.verifying_key()));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tv.toml");
    testbed::write_private(
        &config,
        format!(
            r#"
name = "TV"
kind = "tv"
id = "{TALKER}"
state_dir = "{state}"
matcher_key = "{key}"

[[accounts]]
server = "home.example"
proxy = "{proxy}"
user = "alice"
password = "pw"

[discovery]
enabled = false

[answer]
policy = "{policy}"

[audio]
source = "none"
sink = "none"
"#,
            state = dir.path().join("state").display(),
            key = STANDARD.encode(issuer.verifying_key().to_bytes()),
        ),
    )
    .unwrap();
    let mut agent = Spawn::new(env!("CARGO_BIN_EXE_talker-agent"))
        .arg("--config")
        .arg(&config)
        .start()
        .unwrap();
    agent
        .wait_for_output("talker-agent ready", Duration::from_secs(20))
        .unwrap();
    let line = agent
        .log()
        .lines()
        .find(|l| l.starts_with("talker-agent ready"))
        .unwrap()
        .to_owned();
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "sip").unwrap();
    let agent_addr: SocketAddr = words[at + 1].parse().unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    Rig {
        agent,
        agent_addr,
        issuer,
        socket,
        _dir: dir,
    }
}

fn claims(act: Action, dlg: &str, target: Option<&str>) -> Claims {
    let now = unix_now();
    Claims {
        aud: TALKER.into(),
        jti: format!("j{}", rand::random::<u64>()),
        iat: now,
        exp: now + 20,
        call: "call-1".into(),
        dlg: dlg.into(),
        act,
        target: target.map(Into::into),
    }
}

const OFFER: &str = "v=0\r\no=ctl 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=inactive\r\n";
const ACTIVE_OFFER: &str = "v=0\r\no=ctl 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n";

impl Rig {
    fn local(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    async fn send(&self, text: &str) {
        self.socket
            .send_to(text.as_bytes(), self.agent_addr)
            .await
            .unwrap();
    }

    /// The final (or given provisional) response to `call_id`/`cseq`; ACKs every
    /// non-2xx final response to an INVITE (so the agent stops retransmitting it)
    /// and answers the agent's own requests (NOTIFY) with 200.
    async fn response_to(&self, call_id: &str, cseq: &str) -> rsipstack::sip::Response {
        let mut buf = vec![0u8; 65536];
        loop {
            let (n, _) =
                tokio::time::timeout(Duration::from_secs(20), self.socket.recv_from(&mut buf))
                    .await
                    .unwrap_or_else(|_| {
                        panic!(
                            "no answer to {cseq} in {call_id}; agent log:\n{}",
                            self.agent.log()
                        )
                    })
                    .unwrap();
            match SipMessage::try_from(&buf[..n]).unwrap() {
                SipMessage::Response(r) => {
                    let code = r.status_code.code();
                    let this_call = headers::first(&r.headers, "Call-ID") == Some(call_id);
                    let this_cseq = headers::first(&r.headers, "CSeq") == Some(cseq);
                    if code >= 300 && cseq.ends_with("INVITE") {
                        self.ack_failure(&r).await;
                    }
                    if this_call && this_cseq && code >= 200 {
                        return r;
                    }
                }
                SipMessage::Request(r) => {
                    let ok = splitdial_sip::wire::response_to(&r, 200, "OK", vec![]);
                    self.socket
                        .send_to(&ok.to_bytes(), self.agent_addr)
                        .await
                        .unwrap();
                }
            }
        }
    }

    /// The hop-by-hop ACK of a failure response (same branch as the INVITE).
    async fn ack_failure(&self, r: &rsipstack::sip::Response) {
        let h = |n: &str| headers::first(&r.headers, n).unwrap_or_default().to_owned();
        let seq = h("CSeq")
            .split_whitespace()
            .next()
            .unwrap_or("1")
            .to_owned();
        let ack = format!(
            "ACK sip:talker@{agent} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: {seq} ACK\r\nContent-Length: 0\r\n\r\n",
            agent = self.agent_addr,
            via = h("Via"),
            from = h("From"),
            to = h("To"),
            cid = h("Call-ID"),
        );
        self.socket
            .send_to(ack.as_bytes(), self.agent_addr)
            .await
            .unwrap();
    }

    fn request(
        &self,
        method: &str,
        call_id: &str,
        cseq: u32,
        to_tag: Option<&str>,
        extra: &str,
        body: &str,
    ) -> String {
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let ctype = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        format!(
            "{method} sip:talker@{agent} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{r}\r\nMax-Forwards: 70\r\nFrom: <sip:controller@home.example>;tag=ctl\r\nTo: <sip:alice@home.example>{to_tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:controller@{me}>\r\n{extra}{ctype}Content-Length: {len}\r\n\r\n{body}",
            agent = self.agent_addr,
            me = self.local(),
            r = rand::random::<u32>(),
            len = body.len(),
        )
    }

    async fn invite(&self, call_id: &str, token: Option<String>) -> rsipstack::sip::Response {
        self.invite_with(call_id, token, OFFER).await
    }

    async fn invite_with(
        &self,
        call_id: &str,
        token: Option<String>,
        offer: &str,
    ) -> rsipstack::sip::Response {
        let extra = token.map(|t| format!("Splitdial-Token: {t}\r\nCall-Info: <sip:controller@home.example>;answer-after=0\r\n")).unwrap_or_default();
        self.send(&self.request("INVITE", call_id, 1, None, &extra, offer))
            .await;
        self.response_to(call_id, "1 INVITE").await
    }

    fn to_tag(response: &rsipstack::sip::Response) -> String {
        let to = headers::first(&response.headers, "To").unwrap();
        to.split("tag=")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_get_403_and_a_good_one_an_inactive_answer() {
    let rig = rig("reject").await;
    let issue = |c: &Claims| rig.issuer.issue(TokenKind::Call, c);

    // Forged: signed by another key under the same key id.
    let forger = Issuer::new(rand::random(), rig.issuer.kid());
    let forged = forger.issue(TokenKind::Call, &claims(Action::Control, "c-forged", None));
    assert_eq!(
        rig.invite("c-forged", Some(forged))
            .await
            .status_code
            .code(),
        403
    );
    // Wrong audience.
    let mut other = claims(Action::Control, "c-aud", None);
    other.aud = "pc-2".into();
    assert_eq!(
        rig.invite("c-aud", Some(issue(&other)))
            .await
            .status_code
            .code(),
        403
    );
    // Expired.
    let mut old = claims(Action::Control, "c-old", None);
    old.iat -= 100;
    old.exp -= 100;
    assert_eq!(
        rig.invite("c-old", Some(issue(&old)))
            .await
            .status_code
            .code(),
        403
    );
    // Wrong typ (an owner token cannot open a control leg).
    let owner = rig
        .issuer
        .issue(TokenKind::Owner, &claims(Action::Control, "c-typ", None));
    assert_eq!(
        rig.invite("c-typ", Some(owner)).await.status_code.code(),
        403
    );
    // Bound to another dialog.
    let elsewhere = issue(&claims(Action::Control, "c-other", None));
    assert_eq!(
        rig.invite("c-dlg", Some(elsewhere))
            .await
            .status_code
            .code(),
        403
    );
    // No token: an ordinary call, here under policy `reject`.
    assert_eq!(rig.invite("c-plain", None).await.status_code.code(), 486);
    // A REFER outside any control dialog.
    let refer = rig.request(
        "REFER",
        "c-refer",
        1,
        None,
        "Refer-To: <sip:bob@home.example>\r\n",
        "",
    );
    rig.send(&refer).await;
    assert_eq!(
        rig.response_to("c-refer", "1 REFER")
            .await
            .status_code
            .code(),
        403
    );

    // A valid token with an offer that is not SDP: a clean 4xx, and the agent
    // keeps serving.
    for (i, garbage) in [
        "v=0\r\nm=audio banana\r\n",
        "\u{0}\u{1}not sdp at all",
        "v=0\r\no=\r\n",
    ]
    .iter()
    .enumerate()
    {
        let call_id = format!("c-sdp-{i}");
        let t = issue(&claims(Action::Control, &call_id, None));
        let r = rig.invite_with(&call_id, Some(t), garbage).await;
        assert!(
            (400..500).contains(&r.status_code.code()),
            "{garbage:?} got {r}"
        );
    }

    // A valid token: auto-answered, with an inactive answer.
    let token = issue(&claims(Action::Control, "c-good", None));
    let ok = rig.invite("c-good", Some(token.clone())).await;
    assert_eq!(ok.status_code, StatusCode::OK);
    let answer = String::from_utf8_lossy(&ok.body).into_owned();
    assert!(
        answer.contains("a=inactive") && !answer.contains("a=sendrecv"),
        "{answer}"
    );
    assert!(
        headers::first(&ok.headers, "Allow")
            .unwrap()
            .contains("REFER")
    );
    let tag = Rig::to_tag(&ok);
    rig.send(&rig.request("ACK", "c-good", 1, Some(&tag), "", ""))
        .await;

    // The same token again (a replay in a new INVITE of the same dialog id).
    assert_eq!(
        rig.invite("c-good", Some(token)).await.status_code.code(),
        403
    );

    // A re-INVITE offering active media is answered inactive.
    rig.send(&rig.request("INVITE", "c-good", 2, Some(&tag), "", ACTIVE_OFFER))
        .await;
    let re = rig.response_to("c-good", "2 INVITE").await;
    assert_eq!(re.status_code.code(), 200);
    let body = String::from_utf8_lossy(&re.body).into_owned();
    assert!(body.contains("a=inactive"), "{body}");
    rig.send(&rig.request("ACK", "c-good", 2, Some(&tag), "", ""))
        .await;

    // REFERs in the control dialog: no token, a target mismatch, embedded headers.
    let target = "sip:bob@home.example";
    let cases = [
        (format!("Refer-To: <{target}>\r\n"), 3),
        (
            format!(
                "Refer-To: <sip:eve@home.example>\r\nSplitdial-Token: {}\r\n",
                issue(&claims(Action::Refer, "c-good", Some(target)))
            ),
            4,
        ),
        (
            format!(
                "Refer-To: <{target}?Replaces=x>\r\nSplitdial-Token: {}\r\n",
                issue(&claims(Action::Refer, "c-good", Some(target)))
            ),
            5,
        ),
        (
            format!(
                "Refer-To: <{target}>\r\nSplitdial-Token: {}\r\n",
                issue(&claims(Action::Control, "c-good", None))
            ),
            6,
        ),
    ];
    for (extra, cseq) in cases {
        rig.send(&rig.request("REFER", "c-good", cseq, Some(&tag), &extra, ""))
            .await;
        let got = rig.response_to("c-good", &format!("{cseq} REFER")).await;
        assert_eq!(got.status_code.code(), 403, "{extra}");
    }

    // BYE ends the control leg.
    rig.send(&rig.request("BYE", "c-good", 7, Some(&tag), "", ""))
        .await;
    assert_eq!(
        rig.response_to("c-good", "7 BYE").await.status_code.code(),
        200
    );
    drop(rig.agent);
}

/// Dial on answer: a control INVITE that names the party to call (`Splitdial-Dial`) with that
/// party's own `refer` token (`Splitdial-Dial-Token`) is answered 200 echoing the name, and the
/// agent calls the party at once, reporting in the control leg as for a first REFER (NOTIFY
/// `Event: refer` without `id`, sent only once the ACK is in). Any flaw in that token: 403, and
/// nobody is called.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_invite_naming_the_party_dials_it_at_once_only_with_its_own_token() {
    let proxy = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rig = rig_with_proxy("reject", &proxy.local_addr().unwrap().to_string()).await;
    let issue = |c: &Claims| rig.issuer.issue(TokenKind::Call, c);
    let target = "sip:bob@home.example";
    let invite = |call_id: &str, dial_token: Option<String>| {
        let control = issue(&claims(Action::Control, call_id, None));
        let dial_token = dial_token
            .map(|t| format!("Splitdial-Dial-Token: {t}\r\n"))
            .unwrap_or_default();
        let extra =
            format!("Splitdial-Token: {control}\r\nSplitdial-Dial: <{target}>\r\n{dial_token}");
        rig.request("INVITE", call_id, 1, None, &extra, OFFER)
    };
    let refused = [
        ("c-d-none", None),
        (
            "c-d-target",
            Some(issue(&claims(
                Action::Refer,
                "c-d-target",
                Some("sip:eve@home.example"),
            ))),
        ),
        (
            "c-d-act",
            Some(issue(&claims(Action::Control, "c-d-act", None))),
        ),
        (
            "c-d-dlg",
            Some(issue(&claims(Action::Refer, "c-elsewhere", Some(target)))),
        ),
    ];
    for (call_id, dial_token) in refused {
        rig.send(&invite(call_id, dial_token)).await;
        let got = rig.response_to(call_id, "1 INVITE").await;
        assert_eq!(got.status_code.code(), 403, "{call_id}");
    }

    let dial_token = issue(&claims(Action::Refer, "c-dial", Some(target)));
    rig.send(&invite("c-dial", Some(dial_token))).await;
    let ok = rig.response_to("c-dial", "1 INVITE").await;
    assert_eq!(ok.status_code, StatusCode::OK);
    assert_eq!(
        headers::first(&ok.headers, "Splitdial-Dial"),
        Some(format!("<{target}>").as_str())
    );
    let tag = Rig::to_tag(&ok);
    rig.send(&rig.request("ACK", "c-dial", 1, Some(&tag), "", ""))
        .await;

    // At the talker's server: the call to the named party, with the talker's own account.
    let mut buf = vec![0u8; 65536];
    let (referred, from) = loop {
        let (n, from) = tokio::time::timeout(Duration::from_secs(20), proxy.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no INVITE for bob; agent log:\n{}", rig.agent.log()))
            .unwrap();
        if let SipMessage::Request(r) = SipMessage::try_from(&buf[..n]).unwrap() {
            if r.method.to_string() == "INVITE" {
                break (r, from);
            }
            let ok = splitdial_sip::wire::response_to(&r, 200, "OK", vec![]);
            proxy.send_to(&ok.to_bytes(), from).await.unwrap();
        }
    };
    assert!(referred.uri.to_string().starts_with(target), "{referred}");
    assert!(
        headers::first(&referred.headers, "From")
            .unwrap()
            .contains("sip:alice@home.example")
    );
    let mut ringing = splitdial_sip::wire::response_to(&referred, 180, "Ringing", vec![]);
    let to = headers::first(&ringing.headers, "To").unwrap().to_owned();
    headers::remove(&mut ringing.headers, "To");
    headers::push(&mut ringing.headers, "To", format!("{to};tag=bob1"));
    proxy.send_to(&ringing.to_bytes(), from).await.unwrap();

    // In the control leg: NOTIFY 100 (the agent is dialling), then 180, as for a first REFER.
    let notify = loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(20), rig.socket.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no NOTIFY; agent log:\n{}", rig.agent.log()))
            .unwrap();
        if let SipMessage::Request(r) = SipMessage::try_from(&buf[..n]).unwrap() {
            let ok = splitdial_sip::wire::response_to(&r, 200, "OK", vec![]);
            rig.socket
                .send_to(&ok.to_bytes(), rig.agent_addr)
                .await
                .unwrap();
            if r.method.to_string() == "NOTIFY" {
                assert_eq!(headers::first(&r.headers, "Event"), Some("refer"), "{r}");
                if String::from_utf8_lossy(&r.body).starts_with("SIP/2.0 180") {
                    break r;
                }
            }
        }
    };
    assert!(
        headers::first(&notify.headers, "Subscription-State")
            .unwrap()
            .starts_with("active")
    );
    assert!(
        rig.agent
            .log()
            .contains("dialling the party named in the control INVITE")
    );
    drop(rig.agent);
}

/// A call dialled on answer can ring before the controller's ACK of the control leg's
/// 200 is in. Its reports wait for that ACK (so the leg is confirmed on both sides before
/// the agent sends a request in it) and go out as soon as it arrives, not when the
/// agent's 4 s wait for it runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_dialled_on_answer_reports_once_the_ack_arrives() {
    let proxy = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rig = rig_with_proxy("reject", &proxy.local_addr().unwrap().to_string()).await;
    let target = "sip:bob@home.example";
    let control = rig
        .issuer
        .issue(TokenKind::Call, &claims(Action::Control, "c-late", None));
    let dial = rig.issuer.issue(
        TokenKind::Call,
        &claims(Action::Refer, "c-late", Some(target)),
    );
    let extra = format!(
        "Splitdial-Token: {control}\r\nSplitdial-Dial: <{target}>\r\nSplitdial-Dial-Token: {dial}\r\n"
    );
    rig.send(&rig.request("INVITE", "c-late", 1, None, &extra, OFFER))
        .await;
    let ok = rig.response_to("c-late", "1 INVITE").await;
    assert_eq!(ok.status_code, StatusCode::OK);
    let tag = Rig::to_tag(&ok);

    // No ACK yet: the party rings all the same.
    let mut buf = vec![0u8; 65536];
    let (referred, from) = loop {
        let (n, from) = tokio::time::timeout(Duration::from_secs(20), proxy.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no INVITE for bob; agent log:\n{}", rig.agent.log()))
            .unwrap();
        if let SipMessage::Request(r) = SipMessage::try_from(&buf[..n]).unwrap()
            && r.method.to_string() == "INVITE"
        {
            break (r, from);
        }
    };
    let mut ringing = splitdial_sip::wire::response_to(&referred, 180, "Ringing", vec![]);
    let to = headers::first(&ringing.headers, "To").unwrap().to_owned();
    headers::remove(&mut ringing.headers, "To");
    headers::push(&mut ringing.headers, "To", format!("{to};tag=bob1"));
    proxy.send_to(&ringing.to_bytes(), from).await.unwrap();

    // For a second the controller sees only our 200 again (sent until the ACK), no NOTIFY.
    let quiet = tokio::time::Instant::now() + Duration::from_secs(1);
    while let Ok(received) = tokio::time::timeout_at(quiet, rig.socket.recv_from(&mut buf)).await {
        let (n, _) = received.unwrap();
        if let SipMessage::Request(r) = SipMessage::try_from(&buf[..n]).unwrap() {
            panic!("{} before the ACK:\n{r}", r.method);
        }
    }

    // The ACK: both reports follow at once.
    rig.send(&rig.request("ACK", "c-late", 1, Some(&tag), "", ""))
        .await;
    let acked = std::time::Instant::now();
    let mut reported = Vec::new();
    while !reported
        .iter()
        .any(|s: &String| s.starts_with("SIP/2.0 180"))
    {
        let (n, _) = tokio::time::timeout(Duration::from_secs(20), rig.socket.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no NOTIFY 180; agent log:\n{}", rig.agent.log()))
            .unwrap();
        if let SipMessage::Request(r) = SipMessage::try_from(&buf[..n]).unwrap() {
            let ok = splitdial_sip::wire::response_to(&r, 200, "OK", vec![]);
            rig.socket
                .send_to(&ok.to_bytes(), rig.agent_addr)
                .await
                .unwrap();
            assert_eq!(r.method.to_string(), "NOTIFY", "{r}");
            reported.push(String::from_utf8_lossy(&r.body).into_owned());
        }
    }
    assert!(
        acked.elapsed() < Duration::from_secs(1),
        "the reports came {:?} after the ACK",
        acked.elapsed()
    );
    assert!(reported[0].starts_with("SIP/2.0 100"), "{reported:?}");
}

/// A REFER can overtake the ACK of the control leg's 200 (they may reach the
/// talker over different connections). rsipstack drops such a request without
/// an answer, and over TCP nobody would send it again: the agent holds it
/// until the ACK is in, then answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refer_that_overtakes_the_ack_is_answered_once_the_ack_arrives() {
    let rig = rig("reject").await;
    let token = rig
        .issuer
        .issue(TokenKind::Call, &claims(Action::Control, "c-early", None));
    let ok = rig.invite("c-early", Some(token)).await;
    assert_eq!(ok.status_code, StatusCode::OK);
    let tag = Rig::to_tag(&ok);

    // A REFER without its token, before the ACK: held, not dropped...
    let refer = rig.request(
        "REFER",
        "c-early",
        2,
        Some(&tag),
        "Refer-To: <sip:bob@home.example>\r\n",
        "",
    );
    rig.send(&refer).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    rig.send(&rig.request("ACK", "c-early", 1, Some(&tag), "", ""))
        .await;
    // ...and judged once the dialog is confirmed.
    let got = rig.response_to("c-early", "2 REFER").await;
    assert_eq!(got.status_code.code(), 403, "{got}");

    rig.send(&rig.request("BYE", "c-early", 3, Some(&tag), "", ""))
        .await;
    assert_eq!(
        rig.response_to("c-early", "3 BYE").await.status_code.code(),
        200
    );
}

/// The `o=` line of an SDP body: (session id, version).
fn origin(sdp: &str) -> (u64, u64) {
    let line = sdp.lines().find(|l| l.starts_with("o=")).unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[1].parse().unwrap(), fields[2].parse().unwrap())
}

/// The control leg's SDP over its re-offers (RFC 3264 §8): one `o=` session id for the
/// dialog, the version unchanged while our answer is, one more when it changes. A stream
/// the controller refuses (port 0) is answered with port 0 (RFC 3264 §6); an UPDATE's offer
/// is answered too, and a re-INVITE without an offer gets our inactive offer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_legs_sdp_keeps_its_origin_and_answers_a_refused_stream_refused() {
    let rig = rig("reject").await;
    let call_id = "c-sdp";
    let token = rig
        .issuer
        .issue(TokenKind::Call, &claims(Action::Control, call_id, None));
    let ok = rig.invite(call_id, Some(token)).await;
    assert_eq!(ok.status_code, StatusCode::OK);
    let tag = Rig::to_tag(&ok);
    rig.send(&rig.request("ACK", call_id, 1, Some(&tag), "", ""))
        .await;
    let first = String::from_utf8_lossy(&ok.body).into_owned();
    let (id, version) = origin(&first);
    assert_eq!(version, 1, "{first}");

    // The controller's first stream refused, a second one added.
    let refused_first = OFFER.replace("m=audio 40000", "m=audio 0")
        + "m=audio 40002 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=inactive\r\n";
    // (method, cseq, offer, the version expected)
    let steps = [
        ("INVITE", 2, OFFER.to_owned(), 1),
        ("INVITE", 3, refused_first, 2),
        ("UPDATE", 4, OFFER.to_owned(), 3),
        ("UPDATE", 5, OFFER.to_owned(), 3),
        ("INVITE", 6, String::new(), 4),
    ];
    let mut answers = Vec::new();
    for (method, cseq, offer, expected) in steps {
        rig.send(&rig.request(method, call_id, cseq, Some(&tag), "", &offer))
            .await;
        let got = rig.response_to(call_id, &format!("{cseq} {method}")).await;
        assert_eq!(got.status_code.code(), 200, "{cseq} {method}: {got}");
        let body = String::from_utf8_lossy(&got.body).into_owned();
        assert_eq!(origin(&body), (id, expected), "{cseq} {method}:\n{body}");
        assert!(
            body.contains("a=inactive") && !body.contains("a=sendrecv"),
            "{body}"
        );
        if method == "INVITE" {
            // A re-INVITE without an offer got ours: the answer rides on the ACK.
            let ack_body = if offer.is_empty() { OFFER } else { "" };
            rig.send(&rig.request("ACK", call_id, cseq, Some(&tag), "", ack_body))
                .await;
        }
        answers.push(body);
    }
    assert_eq!(answers[0], first, "an unchanged answer is the same SDP");
    let m_lines: Vec<&str> = answers[1].lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(m_lines.len(), 2, "{}", answers[1]);
    assert!(
        m_lines[0].starts_with("m=audio 0 RTP/AVP "),
        "{}",
        answers[1]
    );
    assert!(
        m_lines[1].starts_with("m=audio 9 RTP/AVP 8"),
        "{}",
        answers[1]
    );
    assert!(
        answers[4].contains("m=audio 9 RTP/AVP 0 8\r\n"),
        "{}",
        answers[4]
    );

    rig.send(&rig.request("BYE", call_id, 7, Some(&tag), "", ""))
        .await;
    assert_eq!(
        rig.response_to(call_id, "7 BYE").await.status_code.code(),
        200
    );
}

/// The plan an inactive answer makes starts no media at all: not even the media worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inactive_plan_starts_no_media_worker() {
    use splitdial_media::{AllocatedPorts, AudioSink, AudioSource, MediaSettings};
    use splitdial_sip::sdp::{LocalMedia, SdpSession, negotiated_from_answer};
    use talker_agent::media::RemoteSession;
    use talker_agent::media::worker::MediaWorker;

    let localhost = std::net::IpAddr::from([127, 0, 0, 1]);
    let mut settings = MediaSettings::new(localhost);
    settings.audio_source = AudioSource::Tone {
        frequency_hz: 440.0,
    };
    settings.audio_sink = AudioSink::Analyze;
    let ports = AllocatedPorts::reserve(localhost, false).unwrap();
    let local = LocalMedia::for_call(&settings, &ports);
    let active = SdpSession::new(localhost).offer(&local);
    let inactive = SdpSession::new(localhost).inactive_answer(&active).unwrap();
    let plan = negotiated_from_answer(&active, &inactive).unwrap();
    assert!(!plan.carries_media(), "{plan:?}");
    let session = RemoteSession::start(&plan, &settings, ports).await.unwrap();
    assert!(!MediaWorker::shared().is_running());
    let stats = session.stats().await.unwrap();
    assert_eq!(stats.audio.map(|a| a.packets_sent), Some(0));
    session.stop().await;
}
