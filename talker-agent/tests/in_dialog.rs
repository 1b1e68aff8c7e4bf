//! Every request inside a call gets its answer, on each kind of call the agent holds: the
//! control leg, an answered ordinary call, a referred call and a second referred party
//! (a conference leg). A raw SIP far end on loopback sends each request inside the
//! connected call and checks the answer's code, its headers (`Allow`, `Accept`,
//! `Supported`, `Recv-Info`, `Session-Expires`, `Min-SE`) and its SDP (direction, the
//! `o=` id and version rules, refused streams kept refused). On an ordinary call, a
//! referred call and a conference leg the far end also counts the agent's RTP at its
//! own sockets while it holds, resumes (and moves) the call.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsipstack::sip::{Request, Response, SipMessage};
use splitdial_sip::call_token::{Action, Claims, Issuer, TokenKind, key_id, unix_now};
use splitdial_sip::headers;
use std::net::SocketAddr;
use std::time::Duration;
use testbed::{Process, Spawn};
use tokio::net::UdpSocket;

const TALKER: &str = "tv-1";
/// The agent's one `Allow` list (in every 2xx to an INVITE, in OPTIONS and in a 405).
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY";

/// The agent, the controller's socket and its server's socket (the proxy its account
/// names: ordinary calls come from it, referred calls go to it).
struct Rig {
    agent: Process,
    agent_addr: SocketAddr,
    issuer: Issuer,
    controller: UdpSocket,
    proxy: UdpSocket,
    _dir: tempfile::TempDir,
}

async fn rig() -> Rig {
    let seed: [u8; 32] = rand::random();
    let probe = Issuer::new(seed, "x");
    let issuer = Issuer::new(seed, key_id(&probe.verifying_key()));
    let proxy = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let controller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tv.toml");
    std::fs::write(
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
policy = "auto"
after_seconds = 0
allow = ["sip:bob@home.example"]

[audio]
source = "tone:440"
sink = "analyze"
"#,
            state = dir.path().join("state").display(),
            key = STANDARD.encode(issuer.verifying_key().to_bytes()),
            proxy = proxy.local_addr().unwrap(),
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
    Rig {
        agent,
        agent_addr,
        issuer,
        controller,
        proxy,
        _dir: dir,
    }
}

/// One dialog as the far end sees it: the lines its requests carry.
#[derive(Clone)]
struct Dialog {
    call_id: String,
    /// The request URI (the agent's contact).
    target: String,
    /// Our From (with our tag).
    from: String,
    /// Our To (the agent's tag once it answered).
    to: String,
}

/// The body of an SDP offer of the far end.
fn sdp(version: u32, media: &str) -> String {
    format!(
        "v=0\r\no=far 4242 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n{media}"
    )
}

fn audio(port: u16, direction: &str) -> String {
    format!(
        "m=audio {port} RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na={direction}\r\n"
    )
}

/// The `o=` line of an SDP body: (session id, version).
fn origin(body: &str) -> (u64, u64) {
    let line = body.lines().find(|l| l.starts_with("o=")).unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[1].parse().unwrap(), fields[2].parse().unwrap())
}

fn body(message: &Response) -> String {
    String::from_utf8_lossy(&message.body).into_owned()
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

impl Rig {
    /// A request of the far end in `dialog`, sent from `socket`.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        socket: &UdpSocket,
        method: &str,
        dialog: &Dialog,
        cseq: u32,
        extra: &str,
        content_type: &str,
        body: &str,
    ) {
        let content_type = if body.is_empty() {
            String::new()
        } else {
            format!("Content-Type: {content_type}\r\n")
        };
        let text = format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{r}\r\nMax-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:far@{me}>\r\n{extra}{content_type}Content-Length: {len}\r\n\r\n{body}",
            target = dialog.target,
            me = socket.local_addr().unwrap(),
            r = rand::random::<u32>(),
            from = dialog.from,
            to = dialog.to,
            call_id = dialog.call_id,
            len = body.len(),
        );
        socket
            .send_to(text.as_bytes(), self.agent_addr)
            .await
            .unwrap();
    }

    /// The next SIP message on `socket`.
    async fn receive(&self, socket: &UdpSocket, waiting_for: &str) -> SipMessage {
        let mut buf = vec![0u8; 65536];
        let (n, _) = tokio::time::timeout(Duration::from_secs(60), socket.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {waiting_for}; agent log:\n{}", self.agent.log()))
            .unwrap();
        SipMessage::try_from(&buf[..n]).unwrap()
    }

    /// The final response to `cseq` in `call_id`; the agent's own requests meanwhile
    /// are answered 200 (NOTIFY) and a failure to an INVITE is ACKed.
    async fn response_to(&self, socket: &UdpSocket, call_id: &str, cseq: &str) -> Response {
        loop {
            match self.receive(socket, cseq).await {
                SipMessage::Response(r) => {
                    let this_call = headers::first(&r.headers, "Call-ID") == Some(call_id);
                    let this_cseq = headers::first(&r.headers, "CSeq") == Some(cseq);
                    if r.status_code.code() >= 300 && cseq.ends_with("INVITE") {
                        self.ack_failure(socket, &r).await;
                    }
                    if this_call && this_cseq && r.status_code.code() >= 200 {
                        return r;
                    }
                }
                SipMessage::Request(r) => self.answer(socket, &r, 200, vec![], "").await,
            }
        }
    }

    /// The next request of the agent named `method`; any other is answered 200.
    async fn request_of_agent(&self, socket: &UdpSocket, method: &str) -> Request {
        loop {
            if let SipMessage::Request(r) = self.receive(socket, method).await {
                if r.method.to_string() == method {
                    return r;
                }
                self.answer(socket, &r, 200, vec![], "").await;
            }
        }
    }

    /// Answers a request of the agent.
    async fn answer(
        &self,
        socket: &UdpSocket,
        request: &Request,
        status: u16,
        extra: Vec<rsipstack::sip::Header>,
        sdp_body: &str,
    ) {
        if request.method.to_string() == "ACK" {
            return;
        }
        let mut response = splitdial_sip::wire::response_to(request, status, "Answer", extra);
        if !sdp_body.is_empty() {
            headers::remove(&mut response.headers, "Content-Length");
            headers::push(&mut response.headers, "Content-Type", "application/sdp");
            headers::push(
                &mut response.headers,
                "Content-Length",
                sdp_body.len().to_string(),
            );
            response.body = sdp_body.as_bytes().to_vec();
        }
        socket
            .send_to(&response.to_bytes(), self.agent_addr)
            .await
            .unwrap();
    }

    /// The hop-by-hop ACK of a failure response (same branch as the INVITE).
    async fn ack_failure(&self, socket: &UdpSocket, r: &Response) {
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
        socket
            .send_to(ack.as_bytes(), self.agent_addr)
            .await
            .unwrap();
    }

    /// Sends `method` with `body` in `dialog` and returns its final answer (ACKing a 2xx
    /// to a re-INVITE, with `ack_body` as the answer when the 2xx carried our offer).
    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &self,
        socket: &UdpSocket,
        method: &str,
        dialog: &Dialog,
        cseq: u32,
        extra: &str,
        content_type: &str,
        body: &str,
    ) -> Response {
        self.send(socket, method, dialog, cseq, extra, content_type, body)
            .await;
        let got = self
            .response_to(socket, &dialog.call_id, &format!("{cseq} {method}"))
            .await;
        if method == "INVITE" && got.status_code.code() < 300 {
            let ack_body = if body.is_empty() {
                body_answering(&got)
            } else {
                String::new()
            };
            let mut confirmed = dialog.clone();
            confirmed.to = headers::first(&got.headers, "To").unwrap().to_owned();
            let content_type = "application/sdp";
            self.send(socket, "ACK", &confirmed, cseq, "", content_type, &ack_body)
                .await;
        }
        got
    }

    /// An ordinary call from bob, asserted by our server: answered at once (`auto`).
    async fn ordinary_call(&self, call_id: &str, extra: &str, offer: &str) -> (Dialog, Response) {
        let mut dialog = Dialog {
            call_id: call_id.into(),
            target: format!("sip:alice@{}", self.agent_addr),
            from: "<sip:bob@home.example>;tag=bob".into(),
            to: "<sip:alice@home.example>".into(),
        };
        let extra = format!("P-Asserted-Identity: <sip:bob@home.example>\r\n{extra}");
        let ok = self
            .exchange(
                &self.proxy,
                "INVITE",
                &dialog,
                1,
                &extra,
                "application/sdp",
                offer,
            )
            .await;
        assert_eq!(ok.status_code.code(), 200, "{ok}\n{}", self.agent.log());
        dialog.to = headers::first(&ok.headers, "To").unwrap().to_owned();
        (dialog, ok)
    }

    /// A control leg (no SDP in the agent's answer has media); dials `party` at once when
    /// named.
    async fn control_leg(&self, call_id: &str, party: Option<&str>) -> (Dialog, Response) {
        let mut dialog = Dialog {
            call_id: call_id.into(),
            target: format!("sip:talker@{}", self.agent_addr),
            from: "<sip:controller@home.example>;tag=ctl".into(),
            to: "<sip:alice@home.example>".into(),
        };
        let token = self
            .issuer
            .issue(TokenKind::Call, &claims(Action::Control, call_id, None));
        let mut extra = format!(
            "Splitdial-Token: {token}\r\nCall-Info: <sip:controller@home.example>;answer-after=0\r\n"
        );
        if let Some(party) = party {
            let dial = self.issuer.issue(
                TokenKind::Call,
                &claims(Action::Refer, call_id, Some(party)),
            );
            extra.push_str(&format!(
                "Splitdial-Dial: <{party}>\r\nSplitdial-Dial-Token: {dial}\r\n"
            ));
        }
        let offer = sdp(1, &audio(40000, "inactive"));
        let ok = self
            .exchange(
                &self.controller,
                "INVITE",
                &dialog,
                1,
                &extra,
                "application/sdp",
                &offer,
            )
            .await;
        assert_eq!(ok.status_code.code(), 200, "{ok}");
        dialog.to = headers::first(&ok.headers, "To").unwrap().to_owned();
        (dialog, ok)
    }

    /// The agent's incoming call as its `GET /v1/status` shows it.
    async fn incoming_call_status(&self) -> serde_json::Value {
        let line = self
            .agent
            .log()
            .lines()
            .find(|l| l.starts_with("talker-agent ready"))
            .unwrap()
            .to_owned();
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "status").unwrap();
        let url = format!("http://{}/v1/status", words[at + 1]);
        let status: serde_json::Value = splitdial_tls::client_builder()
            .build()
            .unwrap()
            .get(&url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        status["calls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["kind"] == "incoming")
            .cloned()
            .unwrap_or_else(|| panic!("no incoming call in {status}"))
    }

    /// The controller refers the control leg `control` to `party` (a further party of
    /// its call, mixed with the ones it has); accepted with 202.
    async fn refer(&self, control: &Dialog, cseq: u32, party: &str) {
        let token = self.issuer.issue(
            TokenKind::Call,
            &claims(Action::Refer, &control.call_id, Some(party)),
        );
        let refer = format!("Refer-To: <{party}>\r\nSplitdial-Token: {token}\r\n");
        let accepted = self
            .exchange(&self.controller, "REFER", control, cseq, &refer, "", "")
            .await;
        assert_eq!(accepted.status_code.code(), 202, "{accepted}");
    }

    /// The referred call's INVITE at our server, answered 200 by the callee with `answer`
    /// and `extra` headers; the dialog as the callee sees it.
    async fn referred_call(
        &self,
        callee_tag: &str,
        extra: Vec<rsipstack::sip::Header>,
    ) -> (Dialog, Request) {
        self.referred_call_answering(callee_tag, extra, 41000).await
    }

    /// [`Self::referred_call`], the callee's answer naming `rtp_port` for its audio.
    async fn referred_call_answering(
        &self,
        callee_tag: &str,
        extra: Vec<rsipstack::sip::Header>,
        rtp_port: u16,
    ) -> (Dialog, Request) {
        let connected = self.agent.log().matches("referred call connected").count();
        let invite = self.request_of_agent(&self.proxy, "INVITE").await;
        let h = |n: &str| headers::first(&invite.headers, n).unwrap().to_owned();
        let offer = String::from_utf8_lossy(&invite.body).into_owned();
        let port = offer
            .lines()
            .find(|l| l.starts_with("m=audio"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .to_owned();
        assert_ne!(port, "0", "{offer}");
        let mut ok = splitdial_sip::wire::response_to(&invite, 200, "OK", extra);
        headers::remove(&mut ok.headers, "To");
        headers::push(
            &mut ok.headers,
            "To",
            format!("{};tag={callee_tag}", h("To")),
        );
        headers::push(
            &mut ok.headers,
            "Contact",
            format!("<sip:bob@{}>", self.proxy.local_addr().unwrap()),
        );
        let answer = sdp(1, &audio(rtp_port, "sendrecv"));
        headers::remove(&mut ok.headers, "Content-Length");
        headers::push(&mut ok.headers, "Content-Type", "application/sdp");
        headers::push(&mut ok.headers, "Content-Length", answer.len().to_string());
        ok.body = answer.into_bytes();
        self.proxy
            .send_to(&ok.to_bytes(), self.agent_addr)
            .await
            .unwrap();
        let contact = h("Contact");
        let target = contact
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_owned();
        let dialog = Dialog {
            call_id: h("Call-ID"),
            target,
            from: format!("{};tag={callee_tag}", h("To")),
            to: h("From"),
        };
        // The agent's ACK of our 200.
        let ack = self.request_of_agent(&self.proxy, "ACK").await;
        assert_eq!(
            headers::first(&ack.headers, "Call-ID"),
            Some(dialog.call_id.as_str())
        );
        // The agent's dialog is confirmed (and re-keyed by our tag) a moment after its
        // ACK left: requests of ours wait until the call is connected on its side.
        testbed::wait_until_async(
            "the referred call connected",
            Duration::from_secs(10),
            || async {
                (self.agent.log().matches("referred call connected").count() > connected)
                    .then_some(())
            },
        )
        .await
        .unwrap();
        (dialog, invite)
    }
}

/// An answer to the agent's offer in a 2xx (for the ACK): every stream sendrecv toward a
/// far-end port.
fn body_answering(offer: &Response) -> String {
    let offered = body(offer);
    if offered.is_empty() {
        return String::new();
    }
    let media: String = offered
        .lines()
        .filter(|l| l.starts_with("m=audio"))
        .map(|_| audio(42000, "sendrecv"))
        .collect();
    sdp(9, &media)
}

/// Checks the answers every call gives to OPTIONS, INFO and methods it does not serve;
/// `cseq` is the next free CSeq of the far end, returned advanced.
async fn common_requests(rig: &Rig, socket: &UdpSocket, dialog: &Dialog, mut cseq: u32) -> u32 {
    let mut next = || {
        cseq += 1;
        cseq
    };
    let options = rig
        .exchange(socket, "OPTIONS", dialog, next(), "", "", "")
        .await;
    assert_eq!(options.status_code.code(), 200, "{options}");
    assert_eq!(headers::first(&options.headers, "Allow"), Some(ALLOW));
    let accept = headers::first(&options.headers, "Accept").unwrap();
    for kind in [
        "application/sdp",
        "application/dtmf-relay",
        "application/dtmf",
    ] {
        assert!(accept.contains(kind), "{accept}");
    }
    assert!(headers::list(&options.headers, "Supported").contains(&"timer".to_owned()));

    let relay = "Signal=5\r\nDuration=160\r\n";
    let dtmf = rig
        .exchange(
            socket,
            "INFO",
            dialog,
            next(),
            "",
            "application/dtmf-relay",
            relay,
        )
        .await;
    assert_eq!(dtmf.status_code.code(), 200, "{dtmf}");
    let plain = rig
        .exchange(socket, "INFO", dialog, next(), "", "application/dtmf", "#")
        .await;
    assert_eq!(plain.status_code.code(), 200, "{plain}");
    let empty = rig
        .exchange(socket, "INFO", dialog, next(), "", "", "")
        .await;
    assert_eq!(empty.status_code.code(), 200, "{empty}");
    let package = rig
        .exchange(
            socket,
            "INFO",
            dialog,
            next(),
            "Info-Package: foo\r\n",
            "application/foo",
            "x",
        )
        .await;
    assert_eq!(package.status_code.code(), 469, "{package}");
    assert_eq!(
        headers::count(&package.headers, "Recv-Info"),
        1,
        "{package}"
    );
    let text = rig
        .exchange(socket, "INFO", dialog, next(), "", "text/plain", "hello")
        .await;
    assert_eq!(text.status_code.code(), 415, "{text}");
    assert!(
        headers::first(&text.headers, "Accept")
            .unwrap()
            .contains("application/dtmf-relay")
    );

    for method in ["MESSAGE", "SUBSCRIBE", "PUBLISH", "PRACK"] {
        let refused = rig
            .exchange(
                socket,
                method,
                dialog,
                next(),
                "Event: x\r\n",
                "text/plain",
                "hi",
            )
            .await;
        assert_eq!(refused.status_code.code(), 405, "{method}: {refused}");
        assert_eq!(
            headers::first(&refused.headers, "Allow"),
            Some(ALLOW),
            "{method}"
        );
    }
    let small = rig
        .exchange(
            socket,
            "UPDATE",
            dialog,
            next(),
            "Supported: timer\r\nSession-Expires: 30\r\n",
            "",
            "",
        )
        .await;
    assert_eq!(small.status_code.code(), 422, "{small}");
    assert_eq!(headers::first(&small.headers, "Min-SE"), Some("90"));
    cseq
}

/// The offers of a call with media: hold, off, resume, a codec change, a move, a refused
/// stream, an offer we cannot take (488, the session unchanged), a refresh without SDP
/// and a re-INVITE without an offer. `first` is our first description in the dialog.
async fn offers(rig: &Rig, socket: &UdpSocket, dialog: &Dialog, first: &str, mut cseq: u32) -> u32 {
    let (id, mut version) = origin(first);
    let mut next = || {
        cseq += 1;
        cseq
    };
    // (method, offer, the direction we answer, whether our description changes)
    let pcma_only = "m=audio 5000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n".to_owned();
    let steps = [
        ("INVITE", audio(5000, "sendonly"), "a=recvonly", true),
        ("INVITE", audio(5000, "sendonly"), "a=recvonly", false),
        ("UPDATE", audio(5000, "inactive"), "a=inactive", true),
        ("INVITE", audio(5000, "sendrecv"), "a=sendrecv", true),
        ("UPDATE", audio(5002, "sendrecv"), "a=sendrecv", false),
        ("INVITE", pcma_only, "a=sendrecv", true),
        (
            "INVITE",
            audio(5000, "sendrecv") + "m=video 0 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n",
            "a=sendrecv",
            true,
        ),
    ];
    let mut answers = Vec::new();
    for (i, (method, offer, direction, changes)) in steps.into_iter().enumerate() {
        let got = rig
            .exchange(
                socket,
                method,
                dialog,
                next(),
                "",
                "application/sdp",
                &sdp(i as u32 + 2, &offer),
            )
            .await;
        assert_eq!(got.status_code.code(), 200, "step {i}: {got}");
        let answer = body(&got);
        if changes {
            version += 1;
        }
        assert_eq!(origin(&answer), (id, version), "step {i}:\n{answer}");
        assert!(answer.contains(direction), "step {i}:\n{answer}");
        if method == "INVITE" {
            assert_eq!(headers::first(&got.headers, "Allow"), Some(ALLOW));
        }
        answers.push(answer);
    }
    let last = answers.last().unwrap().clone();
    assert!(
        last.contains("m=video 0 "),
        "a refused stream stays refused:\n{last}"
    );
    assert!(
        answers[5].contains("RTP/AVP 8\r\n"),
        "the codec follows:\n{}",
        answers[5]
    );

    // An offer we cannot take: 488, and the session as it was.
    let g729 = "m=audio 5000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\na=sendrecv\r\n";
    let refused = rig
        .exchange(
            socket,
            "INVITE",
            dialog,
            next(),
            "",
            "application/sdp",
            &sdp(20, g729),
        )
        .await;
    assert_eq!(refused.status_code.code(), 488, "{refused}");
    let same = audio(5000, "sendrecv") + "m=video 0 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n";
    let again = rig
        .exchange(
            socket,
            "UPDATE",
            dialog,
            next(),
            "",
            "application/sdp",
            &sdp(21, &same),
        )
        .await;
    assert_eq!(body(&again), last, "the refused offer changed nothing");

    // A refresh by UPDATE without SDP: 200 without SDP, the timer restarted.
    let refresh = rig
        .exchange(
            socket,
            "UPDATE",
            dialog,
            next(),
            "Supported: timer\r\nSession-Expires: 120;refresher=uac\r\n",
            "",
            "",
        )
        .await;
    assert_eq!(refresh.status_code.code(), 200, "{refresh}");
    assert!(refresh.body.is_empty());
    assert_eq!(
        headers::first(&refresh.headers, "Session-Expires"),
        Some("120;refresher=uac")
    );
    assert_eq!(headers::first(&refresh.headers, "Require"), Some("timer"));
    // A refresh by re-INVITE with an unchanged offer: the previous description, same version.
    let reinvite = rig
        .exchange(
            socket,
            "INVITE",
            dialog,
            next(),
            "Supported: timer\r\nSession-Expires: 120\r\n",
            "application/sdp",
            &sdp(21, &same),
        )
        .await;
    assert_eq!(body(&reinvite), last);
    assert_eq!(
        headers::first(&reinvite.headers, "Session-Expires"),
        Some("120;refresher=uac")
    );
    // A re-INVITE without an offer: ours in the 200 (same id), the answer in the ACK.
    let offerless = rig
        .exchange(socket, "INVITE", dialog, next(), "", "", "")
        .await;
    assert_eq!(offerless.status_code.code(), 200, "{offerless}");
    let ours = body(&offerless);
    assert_eq!(origin(&ours).0, id, "{ours}");
    assert!(
        ours.contains("a=sendrecv") && ours.contains("PCMU"),
        "{ours}"
    );
    cseq
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_leg_answers_every_request_and_every_offer_inactive() {
    let rig = rig().await;
    let (dialog, ok) = rig.control_leg("c-in-dialog", None).await;
    assert_eq!(headers::first(&ok.headers, "Allow"), Some(ALLOW));
    let mut cseq = common_requests(&rig, &rig.controller, &dialog, 1).await;
    let (id, version) = origin(&body(&ok));
    cseq += 1;
    let held = rig
        .exchange(
            &rig.controller,
            "INVITE",
            &dialog,
            cseq,
            "",
            "application/sdp",
            &sdp(2, &audio(40000, "sendonly")),
        )
        .await;
    assert_eq!(held.status_code.code(), 200);
    assert!(body(&held).contains("a=inactive"), "{held}");
    assert_eq!(origin(&body(&held)), (id, version));
    cseq += 1;
    let bye = rig
        .exchange(&rig.controller, "BYE", &dialog, cseq, "", "", "")
        .await;
    assert_eq!(bye.status_code.code(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_ordinary_call_answers_every_request_and_follows_every_offer() {
    let rig = rig().await;
    let offer = sdp(1, &audio(5000, "sendrecv"));
    let extra = "Supported: timer\r\nSession-Expires: 90\r\nAllow: INVITE, ACK, BYE, UPDATE\r\n";
    let (dialog, ok) = rig.ordinary_call("o-in-dialog", extra, &offer).await;
    assert_eq!(headers::first(&ok.headers, "Allow"), Some(ALLOW));
    assert_eq!(
        headers::first(&ok.headers, "Session-Expires"),
        Some("90;refresher=uac")
    );
    assert!(body(&ok).contains("a=sendrecv"), "{ok}");
    let cseq = common_requests(&rig, &rig.proxy, &dialog, 1).await;
    // The two DTMF INFOs' digits reach the call in the status API.
    let call = rig.incoming_call_status().await;
    assert_eq!(call["dtmf_received"], "5#", "{call}");
    assert!(call["held"].is_null(), "{call}");
    let cseq = offers(&rig, &rig.proxy, &dialog, &body(&ok), cseq).await;
    // The hold: a sendonly offer, in the status as held by the peer.
    let hold = sdp(30, &audio(5000, "sendonly"));
    let held = rig
        .exchange(
            &rig.proxy,
            "UPDATE",
            &dialog,
            cseq + 1,
            "",
            "application/sdp",
            &hold,
        )
        .await;
    assert_eq!(held.status_code.code(), 200, "{held}");
    // Reported once the 200 is out and the media follows: a moment later.
    testbed::wait_until_async("the call held by bob", Duration::from_secs(5), || async {
        (rig.incoming_call_status().await["held"] == "by_peer").then_some(())
    })
    .await
    .unwrap();
    let cseq = cseq + 1;
    let bye = rig
        .exchange(&rig.proxy, "BYE", &dialog, cseq + 1, "", "", "")
        .await;
    assert_eq!(bye.status_code.code(), 200);
    testbed::wait_until_async("the call's end", Duration::from_secs(10), || async {
        rig.agent
            .log()
            .contains("incoming call ended")
            .then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_call_refuses_too_short_a_session_interval() {
    let rig = rig().await;
    let dialog = Dialog {
        call_id: "o-short".into(),
        target: format!("sip:alice@{}", rig.agent_addr),
        from: "<sip:bob@home.example>;tag=bob".into(),
        to: "<sip:alice@home.example>".into(),
    };
    let extra = "P-Asserted-Identity: <sip:bob@home.example>\r\nSupported: timer\r\nSession-Expires: 60\r\n";
    let offer = sdp(1, &audio(5000, "sendrecv"));
    let got = rig
        .exchange(
            &rig.proxy,
            "INVITE",
            &dialog,
            1,
            extra,
            "application/sdp",
            &offer,
        )
        .await;
    assert_eq!(got.status_code.code(), 422, "{got}");
    assert_eq!(headers::first(&got.headers, "Min-SE"), Some("90"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referred_call_and_a_conference_leg_answer_every_request() {
    let rig = rig().await;
    let bob = "sip:bob@home.example";
    let (control, _) = rig.control_leg("c-referred", Some(bob)).await;
    let refresher = vec![
        splitdial_sip::sip::headers::make_header("Session-Expires", "90;refresher=uas".into()),
        splitdial_sip::sip::headers::make_header("Require", "timer".into()),
    ];
    let (party, invite) = rig.referred_call("bob1", refresher).await;
    assert_eq!(headers::first(&invite.headers, "Allow"), Some(ALLOW));
    assert!(headers::list(&invite.headers, "Supported").contains(&"timer".to_owned()));
    let first = String::from_utf8_lossy(&invite.body).into_owned();
    let cseq = common_requests(&rig, &rig.proxy, &party, 1).await;
    let cseq = offers(&rig, &rig.proxy, &party, &first, cseq).await;

    // A second party: the two are mixed (a conference leg), served the same way.
    rig.refer(&control, 2, "sip:carol@home.example").await;
    let (second, invite) = rig.referred_call("carol1", vec![]).await;
    let (id, version) = origin(&String::from_utf8_lossy(&invite.body));
    let options = rig
        .exchange(&rig.proxy, "OPTIONS", &second, 2, "", "", "")
        .await;
    assert_eq!(headers::first(&options.headers, "Allow"), Some(ALLOW));
    let hold = rig
        .exchange(
            &rig.proxy,
            "INVITE",
            &second,
            3,
            "",
            "application/sdp",
            &sdp(2, &audio(5100, "sendonly")),
        )
        .await;
    assert_eq!(hold.status_code.code(), 200, "{hold}");
    assert!(body(&hold).contains("a=recvonly"), "{hold}");
    assert_eq!(origin(&body(&hold)), (id, version + 1));
    let dtmf = rig
        .exchange(&rig.proxy, "INFO", &second, 4, "", "application/dtmf", "7")
        .await;
    assert_eq!(dtmf.status_code.code(), 200);

    for (dialog, cseq) in [(&party, cseq + 1), (&second, 5)] {
        let bye = rig
            .exchange(&rig.proxy, "BYE", dialog, cseq, "", "", "")
            .await;
        assert_eq!(bye.status_code.code(), 200);
    }
}

/// What the refresher test has seen of the agent's refreshes.
#[derive(Default)]
struct Refreshes {
    /// The ordinary call's UPDATE.
    update: bool,
    /// Each re-INVITE call: when ours answered its first refresh 491, and whether the
    /// retry came.
    glare: std::collections::HashMap<String, tokio::time::Instant>,
    retried: std::collections::HashSet<String>,
    /// Calls whose crossing re-INVITE of the far end the agent answered 491.
    crossed: std::collections::HashSet<String>,
    /// The agent's re-INVITE of each call, held until the agent answered the crossing one.
    held: std::collections::HashMap<String, Request>,
    /// The CSeq of each call's first refresh (its retransmissions are not retries).
    first_cseq: std::collections::HashMap<String, String>,
}

/// The agent as refresher (RFC 4028 §7.4, on real time: 45 s, half the shortest interval
/// allowed): by UPDATE without SDP toward a far end that allows UPDATE, by re-INVITE with
/// our unchanged description toward one that does not (an ordinary call, and a referred
/// call whose callee's 2xx says `refresher=uac`). A re-INVITE of the far end that crosses
/// ours gets 491, and ours, refused 491, comes again after RFC 3261 §14.1's delay: 0–2 s
/// on the ordinary call (we did not send its first INVITE), 2.1–4 s on the referred call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_refresher_the_agent_refreshes_by_update_or_by_reinvite_and_retries_after_glare() {
    let rig = rig().await;
    let offer = sdp(1, &audio(5000, "sendrecv"));
    let uas = "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\n";
    let by_update = format!("{uas}Allow: INVITE, ACK, BYE, UPDATE\r\n");
    let (_, ok) = rig.ordinary_call("r-update", &by_update, &offer).await;
    assert_eq!(
        headers::first(&ok.headers, "Session-Expires"),
        Some("90;refresher=uas")
    );
    let by_invite = format!("{uas}Allow: INVITE, ACK, BYE\r\n");
    let (invite_call, ok) = rig.ordinary_call("r-invite", &by_invite, &offer).await;
    let mut descriptions = std::collections::HashMap::new();
    descriptions.insert("r-invite".to_owned(), (invite_call, body(&ok)));
    let make = splitdial_sip::sip::headers::make_header;
    let (_control, _) = rig
        .control_leg("r-control", Some("sip:bob@home.example"))
        .await;
    let callee_refreshes = vec![
        make("Session-Expires", "90;refresher=uac".into()),
        make("Require", "timer".into()),
        make("Allow", "INVITE, ACK, BYE".into()),
    ];
    let (referred, invite) = rig.referred_call("bob1", callee_refreshes).await;
    let referred_offer = String::from_utf8_lossy(&invite.body).into_owned();
    descriptions.insert(referred.call_id.clone(), (referred, referred_offer));

    let mut seen = Refreshes::default();
    let refreshes = async {
        while !(seen.update && seen.retried.len() == 2 && seen.crossed.len() == 2) {
            match rig.receive(&rig.proxy, "a refresh").await {
                SipMessage::Request(request) => {
                    refresh_seen(&rig, &request, &descriptions, &mut seen).await;
                }
                SipMessage::Response(response) => {
                    let call_id = headers::first(&response.headers, "Call-ID").unwrap_or_default();
                    if headers::first(&response.headers, "CSeq") == Some("30 INVITE") {
                        assert_eq!(response.status_code.code(), 491, "{call_id}: {response}");
                        rig.ack_failure(&rig.proxy, &response).await;
                        seen.crossed.insert(call_id.to_owned());
                        // Only now is ours refused: theirs was in flight all along.
                        let ours = seen.held.remove(call_id).unwrap();
                        rig.answer(&rig.proxy, &ours, 491, vec![], "").await;
                        seen.glare
                            .insert(call_id.to_owned(), tokio::time::Instant::now());
                    }
                }
            }
        }
    };
    // The controller answers the control leg's NOTIFYs meanwhile.
    let controller = async {
        loop {
            if let SipMessage::Request(r) = rig.receive(&rig.controller, "NOTIFY").await {
                rig.answer(&rig.controller, &r, 200, vec![], "").await;
            }
        }
    };
    tokio::select! {
        () = refreshes => {}
        () = controller => {}
    }
    assert!(!rig.agent.log().contains("no session refresh in time"));
}

/// Checks and answers one request of the agent in the refresher test.
async fn refresh_seen(
    rig: &Rig,
    request: &Request,
    descriptions: &std::collections::HashMap<String, (Dialog, String)>,
    seen: &mut Refreshes,
) {
    let make = splitdial_sip::sip::headers::make_header;
    let call_id = headers::first(&request.headers, "Call-ID")
        .unwrap_or_default()
        .to_owned();
    let agreed = || vec![make("Session-Expires", "90;refresher=uac".into())];
    match request.method.to_string().as_str() {
        "UPDATE" if call_id == "r-update" => {
            assert!(request.body.is_empty(), "{request}");
            assert_eq!(
                headers::first(&request.headers, "Session-Expires"),
                Some("90;refresher=uac")
            );
            rig.answer(&rig.proxy, request, 200, agreed(), "").await;
            seen.update = true;
        }
        "INVITE" if descriptions.contains_key(&call_id) => {
            let (dialog, ours) = &descriptions[&call_id];
            assert_eq!(
                &String::from_utf8_lossy(&request.body),
                ours,
                "{call_id}: the refresh carries our description unchanged"
            );
            let cseq = headers::first(&request.headers, "CSeq").unwrap_or_default();
            let first_cseq = seen
                .first_cseq
                .entry(call_id.clone())
                .or_insert_with(|| cseq.to_owned());
            if (first_cseq == cseq && seen.glare.contains_key(&call_id))
                || seen.held.contains_key(&call_id)
            {
                return; // A retransmission of the refresh already seen.
            }
            match seen.glare.get(&call_id) {
                None => {
                    // Theirs crosses ours: it gets 491 from us (the main loop sees that
                    // answer, and then refuses ours 491).
                    let crossing = sdp(2, &audio(5000, "sendrecv"));
                    rig.send(
                        &rig.proxy,
                        "INVITE",
                        dialog,
                        30,
                        "",
                        "application/sdp",
                        &crossing,
                    )
                    .await;
                    seen.held.insert(call_id, request.clone());
                }
                Some(refused_at) => {
                    let waited = refused_at.elapsed();
                    let bounds = if call_id == "r-invite" {
                        Duration::ZERO..Duration::from_millis(2500)
                    } else {
                        Duration::from_millis(2100)..Duration::from_millis(4500)
                    };
                    assert!(
                        bounds.contains(&waited),
                        "{call_id}: retried after {waited:?}"
                    );
                    let answer = sdp(3, &audio(5000, "sendrecv"));
                    rig.answer(&rig.proxy, request, 200, agreed(), &answer)
                        .await;
                    seen.retried.insert(call_id);
                }
            }
        }
        "ACK" => {}
        _ => rig.answer(&rig.proxy, request, 200, vec![], "").await,
    }
}

/// The agent as refreshee: a far end that asked for 90 s and never refreshes is hung up
/// (BYE) 60 s later (RFC 4028 §10: the smaller of 32 s and a third before expiry).
#[cfg(feature = "long-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrefreshed_ordinary_call_ends_with_bye() {
    let rig = rig().await;
    let offer = sdp(1, &audio(5000, "sendrecv"));
    let extra = "Supported: timer\r\nSession-Expires: 90\r\n";
    let (_dialog, _) = rig.ordinary_call("o-expire", extra, &offer).await;
    let started = tokio::time::Instant::now();
    let bye = rig.request_of_agent(&rig.proxy, "BYE").await;
    assert_eq!(headers::first(&bye.headers, "Call-ID"), Some("o-expire"));
    assert!(
        started.elapsed() >= Duration::from_secs(55),
        "{:?}",
        started.elapsed()
    );
    rig.answer(&rig.proxy, &bye, 200, vec![], "").await;
}

/// A far end's RTP socket that counts the agent's packets.
struct RtpProbe {
    socket: UdpSocket,
}

impl RtpProbe {
    async fn bind() -> Self {
        Self {
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        }
    }

    fn port(&self) -> u16 {
        self.socket.local_addr().unwrap().port()
    }

    /// The datagrams that arrive within `window` (what queued before counts too).
    async fn count(&self, window: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + window;
        let mut buf = [0u8; 2048];
        let mut seen = 0;
        while let Ok(Ok(_)) =
            tokio::time::timeout_at(deadline, self.socket.recv_from(&mut buf)).await
        {
            seen += 1;
        }
        seen
    }

    /// Forgets what queued so far, then counts for `window`.
    async fn count_from_now(&self, window: Duration) -> usize {
        self.count(Duration::from_millis(50)).await;
        self.count(window).await
    }
}

/// The far end holds, resumes and moves the call (each an offer in a re-INVITE or an
/// UPDATE) and counts the agent's RTP at its sockets: nothing while held, packets again
/// after the resume, and after the move only at the new port.
async fn media_follows_hold_resume_and_move(
    rig: &Rig,
    dialog: &Dialog,
    first: &RtpProbe,
    mut cseq: u32,
) {
    let second = RtpProbe::bind().await;
    let sent = first.count(Duration::from_secs(2)).await;
    assert!(sent >= 20, "{sent} packets in 2 s before the hold");

    let mut offer = |method: &'static str, port: u16, direction: &'static str| {
        cseq += 1;
        (method, cseq, sdp(cseq + 1, &audio(port, direction)))
    };
    let steps = [
        (offer("INVITE", first.port(), "sendonly"), "a=recvonly"),
        (offer("INVITE", first.port(), "sendrecv"), "a=sendrecv"),
        (offer("UPDATE", first.port(), "inactive"), "a=inactive"),
        (offer("UPDATE", second.port(), "sendrecv"), "a=sendrecv"),
    ];
    for (i, ((method, cseq, body), answered)) in steps.into_iter().enumerate() {
        let got = rig
            .exchange(
                &rig.proxy,
                method,
                dialog,
                cseq,
                "",
                "application/sdp",
                &body,
            )
            .await;
        assert_eq!(got.status_code.code(), 200, "step {i}: {got}");
        assert!(self::body(&got).contains(answered), "step {i}: {got}");
        // The plan is applied once the 200 is out; give it time, and what was in
        // flight, before counting.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let (at_first, at_second) = (
            first.count_from_now(Duration::from_millis(1200)).await,
            second.count(Duration::from_millis(50)).await,
        );
        match i {
            0 | 2 => assert_eq!(
                at_first,
                0,
                "step {i} ({answered}): the agent kept sending\n{}",
                rig.agent.log()
            ),
            1 => assert!(at_first >= 20, "resumed: only {at_first} packets in 1.2 s"),
            _ => {
                let at_second = at_second + second.count(Duration::from_millis(1200)).await;
                assert_eq!(at_first, 0, "moved: packets still reach the old port");
                assert!(
                    at_second >= 20,
                    "moved: {at_second} packets at the new port"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_calls_media_stops_while_held_and_follows_a_resume_and_a_move() {
    let rig = rig().await;
    let far = RtpProbe::bind().await;
    let offer = sdp(1, &audio(far.port(), "sendrecv"));
    let (dialog, ok) = rig.ordinary_call("o-media", "", &offer).await;
    assert!(body(&ok).contains("a=sendrecv"), "{ok}");
    media_follows_hold_resume_and_move(&rig, &dialog, &far, 1).await;
    // The status describes the plan in force (moved, sendrecv) and the counters kept
    // counting across the four updates.
    let call = rig.incoming_call_status().await;
    let audio = &call["media"]["audio"];
    assert_eq!(audio["direction"], "SendRecv", "{call}");
    assert!(audio["packets_sent"].as_u64().unwrap_or(0) >= 150, "{call}");
    let bye = rig
        .exchange(&rig.proxy, "BYE", &dialog, 10, "", "", "")
        .await;
    assert_eq!(bye.status_code.code(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referred_calls_media_stops_while_held_and_follows_a_resume_and_a_move() {
    let rig = rig().await;
    let (control, _) = rig
        .control_leg("c-media", Some("sip:bob@home.example"))
        .await;
    let far = RtpProbe::bind().await;
    let (party, _) = rig
        .referred_call_answering("bob-media", vec![], far.port())
        .await;
    media_follows_hold_resume_and_move(&rig, &party, &far, 1).await;
    let bye = rig
        .exchange(&rig.controller, "BYE", &control, 2, "", "", "")
        .await;
    assert_eq!(bye.status_code.code(), 200);
}

/// The issue's long case: a far end with `Session-Expires: 90` that refreshes every half
/// interval, by UPDATE and by re-INVITE in turn, keeps the call up for three whole
/// periods (270 s; unrefreshed, the agent ends it after 60 s). The agent sends no
/// request meanwhile, answers every refresh with the same terms and the same
/// description, and its media still flows at the end.
#[cfg(feature = "long-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_refreshed_by_update_and_by_reinvite_stays_up_for_three_periods() {
    let rig = rig().await;
    let far = RtpProbe::bind().await;
    let media = audio(far.port(), "sendrecv");
    let extra = "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n";
    let (dialog, ok) = rig
        .ordinary_call("o-three-periods", extra, &sdp(1, &media))
        .await;
    let description = body(&ok);
    let started = tokio::time::Instant::now();
    let mut cseq = 1;
    for refresh in 1..=6u32 {
        // Half an interval of quiet: the agent must not end the call or send anything.
        let due = started + Duration::from_secs(45 * u64::from(refresh));
        while let Ok(message) = tokio::time::timeout_at(due, rig.receive(&rig.proxy, "")).await {
            if let SipMessage::Request(r) = message {
                panic!(
                    "the agent sent {} {:?} into the refresh {refresh}\n{}",
                    r.method,
                    started.elapsed(),
                    rig.agent.log()
                );
            }
        }
        cseq += 1;
        let (method, content_type, offer) = if refresh % 2 == 1 {
            ("UPDATE", "", String::new())
        } else {
            ("INVITE", "application/sdp", sdp(1, &media))
        };
        let got = rig
            .exchange(
                &rig.proxy,
                method,
                &dialog,
                cseq,
                extra,
                content_type,
                &offer,
            )
            .await;
        assert_eq!(got.status_code.code(), 200, "refresh {refresh}: {got}");
        assert_eq!(
            headers::first(&got.headers, "Session-Expires"),
            Some("90;refresher=uac"),
            "refresh {refresh}"
        );
        if method == "INVITE" {
            assert_eq!(body(&got), description, "refresh {refresh}");
        }
    }
    // 270 s: three periods after the call began, still up with its media.
    let quiet_until = started + Duration::from_secs(270);
    while let Ok(message) = tokio::time::timeout_at(quiet_until, rig.receive(&rig.proxy, "")).await
    {
        assert!(
            matches!(message, SipMessage::Response(_)),
            "the agent sent a request at the end\n{}",
            rig.agent.log()
        );
    }
    let packets = far.count_from_now(Duration::from_secs(1)).await;
    assert!(packets >= 20, "{packets} packets in the last second");
    let bye = rig
        .exchange(&rig.proxy, "BYE", &dialog, cseq + 1, "", "", "")
        .await;
    assert_eq!(bye.status_code.code(), 200);
}

/// Two referred parties mixed (a conference): carol holds her leg, and only her leg goes
/// quiet (bob still gets the mix); after her resume she gets packets again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_conference_leg_goes_quiet_while_the_other_party_still_gets_the_mix() {
    let rig = rig().await;
    let (control, _) = rig
        .control_leg("c-conference-media", Some("sip:bob@home.example"))
        .await;
    let (bob_rtp, carol_rtp) = (RtpProbe::bind().await, RtpProbe::bind().await);
    let _bob = rig
        .referred_call_answering("bob-mix", vec![], bob_rtp.port())
        .await;
    rig.refer(&control, 2, "sip:carol@home.example").await;
    let (carol, _) = rig
        .referred_call_answering("carol-mix", vec![], carol_rtp.port())
        .await;
    let both = (
        bob_rtp.count_from_now(Duration::from_secs(2)).await,
        carol_rtp.count_from_now(Duration::from_secs(2)).await,
    );
    assert!(both.0 >= 20 && both.1 >= 20, "before the hold: {both:?}");

    let mut cseq = 1;
    for (direction, answered) in [("sendonly", "a=recvonly"), ("sendrecv", "a=sendrecv")] {
        cseq += 1;
        let offer = sdp(cseq, &audio(carol_rtp.port(), direction));
        let got = rig
            .exchange(
                &rig.proxy,
                "INVITE",
                &carol,
                cseq,
                "",
                "application/sdp",
                &offer,
            )
            .await;
        assert_eq!(got.status_code.code(), 200, "{got}");
        assert!(body(&got).contains(answered), "{got}");
        tokio::time::sleep(Duration::from_millis(400)).await;
        let at_carol = carol_rtp.count_from_now(Duration::from_millis(1200)).await;
        let at_bob = bob_rtp.count_from_now(Duration::from_millis(1200)).await;
        assert!(
            at_bob >= 20,
            "{direction}: bob got {at_bob} packets of the mix"
        );
        if direction == "sendonly" {
            assert_eq!(at_carol, 0, "carol's held leg still got packets");
        } else {
            assert!(at_carol >= 20, "carol's resumed leg got {at_carol} packets");
        }
    }
    let bye = rig
        .exchange(&rig.controller, "BYE", &control, 3, "", "", "")
        .await;
    assert_eq!(bye.status_code.code(), 200);
}
