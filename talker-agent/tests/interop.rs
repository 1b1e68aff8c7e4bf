//! Interop of the talker agent with third-party SIP parts, all real programs on
//! 127.0.0.x. They run only inside a loopback-only network namespace, so a
//! plain `cargo test` ignores them; `scripts/test` runs them there, or by hand
//! as root: `unshare --net -- sh -c 'ip link set lo up &&
//! cargo test -p talker-agent --test interop -- --include-ignored'`:
//!
//! * baresip 1.0 as the referred party: the agent's referred call (a control
//!   leg and its REFER, as in `click_to_dial.rs`) reaches a baresip account registered at
//!   the embedded sip-server; G.711 flows both ways (the agent hears baresip's
//!   `ausine` tone; baresip counts the agent's RTP packets in its RTCP stats).
//! * baresip puts that call on hold and resumes it (re-INVITEs with `a=sendonly`,
//!   then `a=sendrecv`): the agent's status says `held: by_peer`, its audio is
//!   `recvonly` and sends nothing (baresip sends nothing either while it holds),
//!   and both directions flow again after the resume.
//! * Kamailio instead of sip-server: the same click-to-dial between two agents
//!   through Kamailio (digest for the agents, the controller trusted by its TCP
//!   source address); each agent hears the other's tone.
//! * SIGTERM of an agent during a live call: it sends BYE (the other agent's call
//!   ends, the controller's leg gets BYE) before it un-registers (Kamailio's
//!   request log shows the order), also when the controller never answers
//!   the agent's BYE on the control leg (the matcher is gone).

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

#[path = "interop/rig.rs"]
mod rig;

use rig::{
    Baresip, BaresipSetup, CONTROLLER_IP, ControlLeg, DOMAIN, Kamailio, Matcher, agent_config,
    auto_answer, eventually, start_agent, summary_field,
};
use sip_server::ServerConfig;
use sip_server::users::UserDirectory;
use std::path::Path;
use std::time::Duration;

fn agent_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_talker-agent"))
}

/// MD5(eve:home.example:eve-pw). baresip's SIP stack (libre) answers only MD5
/// digest challenges, and stops at the first challenge it cannot answer
/// ("Register: Function not implemented"): its account gets an MD5 H(A1) only,
/// so sip-server challenges it with MD5 alone.
const EVE_HA1_MD5: &str = "8c4d506c4f0c83294a5e0db87b5e077a";

/// A referred call from agent `tv-a` (account alice, at the embedded sip-server) to
/// baresip (account eve), connected: baresip has set up incoming RTP.
struct BaresipCall {
    server: sip_server::RunningServer,
    eve: Baresip,
    eve_ctl: rig::BaresipControl,
    a: testbed::Process,
    leg: ControlLeg,
    tone_eve: f64,
    _dir: tempfile::TempDir,
}

impl BaresipCall {
    /// Starts the server, baresip (sending a random tone over G.711) and the agent, and
    /// has the controller refer the agent to eve.
    async fn connect() -> Self {
        // baresip refuses a 401 carrying any non-MD5 challenge: an MD5-only realm.
        let users = format!(
            "challenge = \"md5\"\n[users.alice]\npassword = \"alice-pw\"\nmd5 = true\n[users.eve]\nha1_md5 = \"{EVE_HA1_MD5}\"\n"
        );
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), DOMAIN);
        config.users = Some(UserDirectory::parse(&users, DOMAIN).unwrap());
        config.trusted = vec![CONTROLLER_IP];
        let server = sip_server::start(config).await.unwrap();
        let matcher = Matcher::new();
        // Tones drawn now; nobody tells the analyzers. G.711 carries up to 4 kHz.
        let tone_a = f64::from(300 + rand::random::<u32>() % 400);
        let tone_eve = 900 + rand::random::<u32>() % 900;

        let mut eve = Baresip::start(&BaresipSetup {
            user: "eve",
            proxy: server.local_addr(),
            tone_hz: tone_eve,
            opus: false,
        });
        eve.wait_registered();
        let eve_ctl = eve.control().await;
        let dir = tempfile::tempdir().unwrap();
        let a_cfg = agent_config(
            dir.path(),
            "tv-a",
            "alice",
            server.local_addr(),
            &matcher.key,
            tone_a,
            "",
        );
        let a = start_agent(agent_binary(), &a_cfg, "tv-a");
        let location = &server.context().location;
        eventually("alice and eve registered", Duration::from_secs(30), || {
            !location.lookup("alice").is_empty() && !location.lookup("eve").is_empty()
        })
        .await;

        let mut leg = ControlLeg::open(
            server.local_addr(),
            &matcher,
            "tv-a",
            &format!("sip:alice@{DOMAIN}"),
        )
        .await;
        leg.refer_and_wait_answer(&matcher, &format!("sip:eve@{DOMAIN}"))
            .await;
        if let Err(e) = eve.process.wait_for_output(
            "incoming rtp for 'audio' established",
            Duration::from_secs(15),
        ) {
            panic!("{e}\nagent:\n{}", a.log());
        }
        Self {
            server,
            eve,
            eve_ctl,
            a,
            leg,
            tone_eve: f64::from(tone_eve),
            _dir: dir,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: run scripts/test"]
async fn a_referred_call_to_baresip_carries_g711_both_ways() {
    testbed::require_loopback_only_namespace();
    testbed::require_program("baresip", "baresip-core");
    let BaresipCall {
        server,
        mut eve,
        mut eve_ctl,
        mut a,
        mut leg,
        tone_eve,
        _dir,
    } = BaresipCall::connect().await;
    // Let the tones flow until baresip has reported, from RTCP, at least 3 s of
    // the agent's 20 ms packets (RTCP comes every ~5 s; bounded wait).
    let mut received = None;
    for _ in 0..30 {
        eve_ctl.collect(Duration::from_secs(1)).await;
        received = eve_ctl.rtp_received();
        if received.is_some_and(|n| n >= 150) {
            break;
        }
    }
    leg.bye().await;

    let log = eve.process.log();
    assert!(
        log.contains("audio: Set audio decoder: PCMU") || log.contains("decoder: PCMA"),
        "baresip did not decode G.711:\n{log}"
    );
    assert!(
        received.is_some_and(|n| n >= 150),
        "baresip received {received:?} RTP packets from the agent; events: {:?}\n{log}",
        eve_ctl.events("CALL_RTCP")
    );
    a.wait_for_output("media summary", Duration::from_secs(15))
        .unwrap();
    let agent_log = a.log();
    let heard = summary_field(&agent_log, "heard_hz");
    assert!(
        (heard - tone_eve).abs() < tone_eve * 0.02,
        "the agent heard {heard} Hz, baresip sent {tone_eve}\n{agent_log}"
    );
    assert!(
        summary_field(&agent_log, "sent") >= 150.0,
        "the agent sent too little\n{agent_log}"
    );
    // The agent hung up baresip when the controller hung up.
    eve.process
        .wait_for_output("terminated (duration:", Duration::from_secs(15))
        .unwrap();
    server.shutdown().await;
}

/// What the agent's status API says of its one referred call.
#[derive(Debug)]
struct ReferredCallView {
    held: Option<splitdial_api::Held>,
    direction: Option<splitdial_media::Direction>,
    packets_sent: u64,
    packets_received: u64,
}

/// Reads the agent's `GET /v1/status` (over HTTPS, with the address and key
/// its ready line `status` names) and returns its referred call, if any.
async fn referred_call(status: &str) -> Option<ReferredCallView> {
    let line = status.to_owned();
    let body = tokio::task::spawn_blocking(move || household::talker_https::status_of(&line))
        .await
        .ok()?
        .ok()?;
    let talker: splitdial_api::TalkerStatus<splitdial_media::MediaStats> =
        serde_json::from_value(body).unwrap();
    let call = talker
        .calls
        .into_iter()
        .find(|c| c.kind == splitdial_api::TalkerCallKind::Referred)?;
    let audio = call.media.and_then(|m| m.audio);
    Some(ReferredCallView {
        held: call.held,
        direction: audio.as_ref().map(|a| a.direction),
        packets_sent: audio.as_ref().map_or(0, |a| a.packets_sent),
        packets_received: audio.as_ref().map_or(0, |a| a.packets_received),
    })
}

/// Waits until the referred call matches `wanted` and returns it.
async fn referred_call_until(
    status: &str,
    what: &str,
    wanted: impl Fn(&ReferredCallView) -> bool,
) -> ReferredCallView {
    testbed::wait_until_async(what, Duration::from_secs(15), || async {
        referred_call(status).await.filter(|c| wanted(c))
    })
    .await
    .unwrap_or_else(|e| panic!("{e} (GET /v1/status of {status:?})"))
}

/// baresip puts the call on hold (a re-INVITE with `a=sendonly`) and resumes it: the
/// agent answers each, reports the hold in its status, stops sending while held, and
/// sends and plays again after the resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: run scripts/test"]
async fn baresip_puts_the_referred_call_on_hold_and_resumes_it() {
    testbed::require_loopback_only_namespace();
    testbed::require_program("baresip", "baresip-core");
    use splitdial_media::Direction;
    let mut call = BaresipCall::connect().await;
    let status = status_addr(&call.a.log());
    referred_call_until(&status, "the call's media running both ways", |c| {
        c.direction == Some(Direction::SendRecv) && c.packets_sent > 25
    })
    .await;

    call.eve_ctl.command("hold", "").await;
    let held = referred_call_until(&status, "the call held by baresip", |c| {
        c.held == Some(splitdial_api::Held::ByPeer) && c.direction == Some(Direction::RecvOnly)
    })
    .await;
    // The status shows statistics up to 500 ms old: from 800 ms on, every snapshot
    // was taken after the worker stopped sending.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let before = referred_call(&status).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = referred_call(&status).await.unwrap();
    assert_eq!(
        after.packets_sent,
        before.packets_sent,
        "the agent kept sending while held ({held:?} → {after:?})\n{}",
        call.a.log()
    );
    // baresip 1.0 itself sends nothing while it holds a call (its status line reads
    // `audio=0/0`), so what we still play while `recvonly` is checked with a plain UDP
    // peer in talker-media/tests/update.rs; here the receive path must come back below.
    call.eve_ctl.command("resume", "").await;
    referred_call_until(
        &status,
        "the call resumed, sending and receiving again",
        |c| {
            c.held.is_none()
                && c.direction == Some(Direction::SendRecv)
                && c.packets_sent >= after.packets_sent + 25
                && c.packets_received >= after.packets_received + 25
        },
    )
    .await;
    call.leg.bye().await;
    call.eve
        .process
        .wait_for_output("terminated (duration:", Duration::from_secs(15))
        .unwrap();
    call.server.shutdown().await;
}

/// The agent's `talker-agent ready ... status ADDR key KEY` line: where its
/// status API is and the key its certificate carries.
fn status_addr(log: &str) -> String {
    log.lines()
        .find(|l| l.contains("talker-agent ready"))
        .unwrap()
        .to_owned()
}

/// Two agents registered at Kamailio; `b` auto-answers alice.
struct KamailioPair {
    kamailio: Kamailio,
    matcher: Matcher,
    a: testbed::Process,
    b: testbed::Process,
    tone_a: f64,
    tone_b: f64,
    _dir: tempfile::TempDir,
}

impl KamailioPair {
    async fn start() -> Self {
        let kamailio = Kamailio::start();
        let matcher = Matcher::new();
        let tone_a = f64::from(300 + rand::random::<u32>() % 700);
        let tone_b = tone_a + f64::from(200 + rand::random::<u32>() % 700);
        let dir = tempfile::tempdir().unwrap();
        let a_cfg = agent_config(
            dir.path(),
            "tv-a",
            "alice",
            kamailio.addr,
            &matcher.key,
            tone_a,
            "",
        );
        let b_cfg = agent_config(
            dir.path(),
            "pc-b",
            "bob",
            kamailio.addr,
            &matcher.key,
            tone_b,
            &auto_answer("alice"),
        );
        let a = start_agent(agent_binary(), &a_cfg, "tv-a");
        let b = start_agent(agent_binary(), &b_cfg, "pc-b");
        let pair = Self {
            kamailio,
            matcher,
            a,
            b,
            tone_a,
            tone_b,
            _dir: dir,
        };
        let registered = |p: &testbed::Process| rig::plain(&p.log()).contains("registered aor=");
        let both = testbed::wait_until_async(
            "both agents registered at Kamailio",
            Duration::from_secs(30),
            || std::future::ready((registered(&pair.a) && registered(&pair.b)).then_some(())),
        )
        .await;
        if let Err(e) = both {
            panic!(
                "{e}\nA:\n{}\nB:\n{}\nkamailio:\n{}",
                pair.a.log(),
                pair.b.log(),
                pair.kamailio.process.log()
            );
        }
        pair
    }

    /// The control leg to alice's talker by her AOR, REFERred to bob.
    async fn connect(&mut self) -> ControlLeg {
        let mut leg = ControlLeg::open(
            self.kamailio.addr,
            &self.matcher,
            "tv-a",
            &format!("sip:alice@{DOMAIN}"),
        )
        .await;
        leg.refer_and_wait_answer(&self.matcher, &format!("sip:bob@{DOMAIN}"))
            .await;
        leg
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: run scripts/test"]
async fn click_to_dial_through_kamailio_each_talker_hears_the_other() {
    testbed::require_loopback_only_namespace();
    testbed::require_program("kamailio", "kamailio");
    let mut pair = KamailioPair::start().await;
    let mut leg = pair.connect().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    leg.bye().await;
    for p in [&mut pair.a, &mut pair.b] {
        p.wait_for_output("media summary", Duration::from_secs(15))
            .unwrap();
    }
    let (heard_by_a, heard_by_b) = (
        summary_field(&pair.a.log(), "heard_hz"),
        summary_field(&pair.b.log(), "heard_hz"),
    );
    assert!(
        (heard_by_a - pair.tone_b).abs() < pair.tone_b * 0.02,
        "A heard {heard_by_a} Hz, B sent {}\n{}",
        pair.tone_b,
        pair.a.log()
    );
    assert!(
        (heard_by_b - pair.tone_a).abs() < pair.tone_a * 0.02,
        "B heard {heard_by_b} Hz, A sent {}\n{}",
        pair.tone_a,
        pair.b.log()
    );
    // B auto-answered because Kamailio asserted the digest-authenticated caller.
    let requests = pair.kamailio.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("request INVITE sip:alice@home.example from tcp:127.0.0.2:")),
        "{requests:#?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("request REFER ") && r.contains("from tcp:127.0.0.2:")),
        "{requests:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: run scripts/test"]
async fn sigterm_during_a_call_sends_bye_before_unregistering() {
    testbed::require_loopback_only_namespace();
    testbed::require_program("kamailio", "kamailio");
    let mut pair = KamailioPair::start().await;
    let mut leg = pair.connect().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let a_sip = sip_addr(&pair.a.log());
    // The controller keeps answering (as the matcher's would) while A shuts down.
    let controller = tokio::spawn(async move {
        let got_bye = leg
            .ctl
            .serve_until(&mut leg.seen, Duration::from_secs(30), |s| s.bye)
            .await;
        (leg, got_bye)
    });
    rig::terminate(&pair.a);

    // The other agent's call ends by A's BYE, and so does the control leg.
    if let Err(e) = pair
        .b
        .wait_for_output("incoming call ended", Duration::from_secs(20))
    {
        panic!("{e}\nA:\n{}", pair.a.log());
    }
    pair.b
        .wait_for_output("media summary", Duration::from_secs(15))
        .unwrap();
    let (_leg, got_bye) = controller.await.unwrap();
    assert!(got_bye, "no BYE on the control leg\nA:\n{}", pair.a.log());
    let status = wait_exit(&mut pair.a, Duration::from_secs(20));
    assert!(status.success(), "agent exit {status}\n{}", pair.a.log());
    assert!(pair.a.log().contains("unregistered"), "{}", pair.a.log());

    // At Kamailio: A's BYE (to B) came before A's un-REGISTER.
    let from_a = format!("from udp:{a_sip} ");
    let requests = pair.kamailio.requests();
    let first =
        |what: &dyn Fn(&str) -> bool| requests.iter().position(|r| r.contains(&from_a) && what(r));
    let bye_to_b = first(&|r| r.starts_with("request BYE sip:talker@"));
    let bye_to_controller = first(&|r| r.starts_with("request BYE sip:controller@"));
    let unregister = first(&|r| r.starts_with("request REGISTER ") && r.contains("expires=0"));
    let (Some(bye_to_b), Some(bye_to_controller), Some(unregister)) =
        (bye_to_b, bye_to_controller, unregister)
    else {
        panic!(
            "BYE to B, BYE to the controller or un-REGISTER missing from {a_sip}: {requests:#?}"
        );
    };
    assert!(
        bye_to_b < unregister && bye_to_controller < unregister,
        "{requests:#?}"
    );
}

/// The controller (the matcher) is gone silent: it receives the agent's BYE on
/// the control leg and never answers it. SIGTERM must still end the referred
/// call (B gets BYE) and the agent must exit 0, un-registering after the BYEs,
/// within a bounded time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: run scripts/test"]
async fn sigterm_ends_the_referred_call_when_the_controller_never_answers_bye() {
    testbed::require_loopback_only_namespace();
    testbed::require_program("kamailio", "kamailio");
    let mut pair = KamailioPair::start().await;
    let mut leg = pair.connect().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let a_sip = sip_addr(&pair.a.log());
    // Answer everything (NOTIFYs) except the BYE, which is only noted.
    let controller = tokio::spawn(async move {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !leg.seen.bye && std::time::Instant::now() < deadline {
            match leg.ctl.next(Duration::from_secs(2)).await {
                Some(rsipstack::sip::SipMessage::Request(req))
                    if req.method == rsipstack::sip::Method::Bye =>
                {
                    leg.seen.bye = true;
                }
                Some(rsipstack::sip::SipMessage::Request(req)) => {
                    leg.ctl.answer_request(&req, &mut leg.seen).await;
                }
                _ => {}
            }
        }
        leg
    });
    let terminated = std::time::Instant::now();
    rig::terminate(&pair.a);

    // B's call ends by A's BYE although the control leg's BYE is never answered.
    if let Err(e) = pair
        .b
        .wait_for_output("incoming call ended", Duration::from_secs(20))
    {
        panic!("{e}\nA:\n{}", pair.a.log());
    }
    let status = wait_exit(&mut pair.a, Duration::from_secs(25));
    let took = terminated.elapsed();
    eprintln!("SIGTERM to exit with a silent controller: {took:?}");
    assert!(status.success(), "agent exit {status}\n{}", pair.a.log());
    assert!(pair.a.log().contains("unregistered"), "{}", pair.a.log());
    let leg = controller.await.unwrap();
    assert!(
        leg.seen.bye,
        "no BYE on the control leg\nA:\n{}",
        pair.a.log()
    );

    // At Kamailio: B got A's BYE (and answered it), before A's un-REGISTER.
    let from_a = format!("from udp:{a_sip} ");
    let requests = pair.kamailio.requests();
    let first =
        |what: &dyn Fn(&str) -> bool| requests.iter().position(|r| r.contains(&from_a) && what(r));
    let bye_to_b = first(&|r| r.starts_with("request BYE sip:talker@"));
    let unregister = first(&|r| r.starts_with("request REGISTER ") && r.contains("expires=0"));
    let (Some(bye_to_b), Some(unregister)) = (bye_to_b, unregister) else {
        panic!("BYE to B or un-REGISTER missing from {a_sip}: {requests:#?}");
    };
    assert!(bye_to_b < unregister, "{requests:#?}");
    // Well under the 32 s a BYE transaction takes to time out (timer F).
    assert!(
        took < Duration::from_secs(20),
        "shutdown took {took:?}\n{}",
        pair.a.log()
    );
}

/// The agent's SIP address from its `talker-agent ready ... sip ADDR ...` line.
fn sip_addr(log: &str) -> String {
    let line = log
        .lines()
        .find(|l| l.contains("talker-agent ready"))
        .unwrap();
    let mut words = line.split_whitespace();
    words.find(|w| *w == "sip").unwrap();
    words.next().unwrap().to_owned()
}

fn wait_exit(p: &mut testbed::Process, within: Duration) -> std::process::ExitStatus {
    match p.wait_exit(within) {
        Ok(Some(status)) => status,
        Ok(None) => panic!("the agent did not exit within {within:?}\n{}", p.log()),
        Err(e) => panic!("waiting for the agent's exit: {e}\n{}", p.log()),
    }
}
