//! The call controller against real parts: the embedded sip-server (in
//! process, trusting the controller's address over TCP), real talker agents
//! (child processes with GStreamer media: tones drawn at random, analysed on
//! the other side) and the matcher's own token issuer.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use matcher::controller::{
    CallHandle, CallPlan, Controller, ControllerConfig, ControllerEvent, EndReason, PartyId,
    SipTransport,
};
use sip_server::users::UserDirectory;
use sip_server::{RunningServer, ServerConfig};
use splitdial_sip::call_token::{CurrentIssuer, Issuer, key_id};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testbed::{Process, Spawn};
use tokio::sync::mpsc::error::TryRecvError;

const DOMAIN: &str = "home.example";
const AUTO: &str =
    "[answer]\npolicy = \"auto\"\nafter_seconds = 0\nallow = [\"sip:alice@home.example\"]\n";
const MANUAL: &str = "[answer]\npolicy = \"manual\"\n";

fn agent_config(
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

fn start_agent(config: &Path, label: &str) -> Process {
    let mut p = Spawn::new(testbed::workspace_binary("talker-agent"))
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

fn heard(list: &[f64], tone: f64) -> bool {
    list.iter().any(|f| (f - tone).abs() < tone * 0.03)
}

/// An agent's `GET /v1/status`, at the address and with the key its ready
/// line names (over HTTPS, as the dialer reads it).
async fn agent_status(agent: &Process) -> serde_json::Value {
    let log = agent.log();
    let line = log
        .lines()
        .find(|l| l.starts_with("talker-agent ready"))
        .unwrap_or_else(|| panic!("no ready line:\n{log}"))
        .to_owned();
    tokio::task::spawn_blocking(move || household::talker_https::status_of(&line))
        .await
        .unwrap()
        .unwrap()
}

/// The calls an agent's status lists.
fn calls_in(status: &serde_json::Value) -> Vec<serde_json::Value> {
    status["calls"].as_array().cloned().unwrap_or_default()
}

/// The call of `kind` in an agent's status, if any.
fn call_of_kind(status: &serde_json::Value, kind: &str) -> Option<serde_json::Value> {
    calls_in(status).into_iter().find(|c| c["kind"] == kind)
}

/// The audio packets a call received so far.
fn audio_received(call: &serde_json::Value) -> u64 {
    call["media"]["audio"]["packets_received"]
        .as_u64()
        .unwrap_or(0)
}

/// The sip-server, the agents and a controller that signs with the key the
/// agents pinned.
struct Rig {
    server: RunningServer,
    controller: Controller,
    agents: Vec<Process>,
    tones: Vec<f64>,
    _dir: tempfile::TempDir,
}

/// One agent to start: talker id, account user, answer policy.
struct AgentSpec {
    name: &'static str,
    user: &'static str,
    answer: &'static str,
}

impl Rig {
    /// Starts everything; `controller_key_matches = false` gives the controller
    /// a key the agents never pinned.
    async fn start(specs: &[AgentSpec], controller_key_matches: bool) -> Self {
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let users: String = specs
            .iter()
            .map(|s| format!("[users.{0}]\npassword = \"{0}-pw\"\n", s.user))
            .collect();
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), DOMAIN);
        config.users = Some(UserDirectory::parse(&users, DOMAIN).unwrap());
        config.trusted = vec!["127.0.0.1".parse().unwrap()];
        let server = sip_server::start(config).await.unwrap();

        let issuer = new_issuer();
        let key = STANDARD.encode(issuer.verifying_key().to_bytes());
        // Tones far enough apart to be told apart in a mix, drawn now; nobody
        // tells the analysers.
        let mut tones = vec![f64::from(300 + rand::random::<u32>() % 200)];
        for _ in 1..specs.len() {
            let last = *tones.last().unwrap();
            tones.push(last + f64::from(300 + rand::random::<u32>() % 150));
        }
        let dir = tempfile::tempdir().unwrap();
        let mut agents = Vec::new();
        for (spec, tone) in specs.iter().zip(&tones) {
            let cfg = agent_config(
                dir.path(),
                spec.name,
                spec.user,
                server.local_addr(),
                &key,
                *tone,
                spec.answer,
            );
            agents.push(start_agent(&cfg, spec.name));
        }
        let location = &server.context().location;
        testbed::wait_until_async("the agents registered", Duration::from_secs(30), || async {
            specs
                .iter()
                .all(|s| !location.lookup(s.user).is_empty())
                .then_some(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let controller = Controller::start(ControllerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            issuer: CurrentIssuer::new(if controller_key_matches {
                issuer
            } else {
                new_issuer()
            }),
            user_agent: "splitdial-matcher-test".into(),
        })
        .await
        .unwrap();
        Self {
            server,
            controller,
            agents,
            tones,
            _dir: dir,
        }
    }

    /// A plan from talker `tv-a` (alice, addressed by its GRUU) to `callee`.
    fn plan(&self, callee: &str, callee_answer_timeout: Duration) -> CallPlan {
        let bindings = self.server.context().location.lookup("alice");
        let instance = bindings
            .iter()
            .find_map(|b| b.instance.clone())
            .expect("the agent registers its +sip.instance");
        CallPlan {
            call_id: format!("call-{}", rand::random::<u32>()),
            server_domain: DOMAIN.into(),
            proxy: self.server.local_addr(),
            transport: SipTransport::Tcp,
            controller_uri: format!("sip:splitdial@{DOMAIN}"),
            caller_talker_id: "tv-a".into(),
            caller_target: format!("sip:alice@{DOMAIN};gr={instance}"),
            callee_uri: format!("sip:{callee}@{DOMAIN}"),
            talker_answer_timeout: Duration::from_secs(15),
            callee_answer_timeout,
            hand_off_after_transfer: false,
        }
    }

    fn logs(&self) -> String {
        self.agents
            .iter()
            .enumerate()
            .map(|(i, a)| format!("--- agent {i}:\n{}", a.log()))
            .collect()
    }

    async fn shutdown(self) {
        self.controller.shutdown().await;
        self.server.shutdown().await;
    }
}

fn new_issuer() -> Issuer {
    let seed: [u8; 32] = rand::random();
    Issuer::new(seed, key_id(&Issuer::new(seed, "").verifying_key()))
}

/// The next event within `within`, or a panic that shows the agents' logs.
async fn next_event(call: &mut CallHandle, within: Duration, rig: &Rig) -> ControllerEvent {
    match tokio::time::timeout(within, call.events.recv()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("event channel closed\n{}", rig.logs()),
        Err(_) => panic!("no event within {within:?}\n{}", rig.logs()),
    }
}

/// Reads events until a final one, returning every event seen (including it).
async fn events_to_the_end(call: &mut CallHandle) -> Vec<ControllerEvent> {
    let mut seen = Vec::new();
    while seen.last().is_none_or(|e: &ControllerEvent| !e.is_final()) {
        seen.push(call.events.recv().await.unwrap());
    }
    seen
}

/// Reads events until `wanted`, returning every event seen (including it).
async fn events_until(
    call: &mut CallHandle,
    wanted: &ControllerEvent,
    within: Duration,
    rig: &Rig,
) -> Vec<ControllerEvent> {
    events_until_all(call, std::slice::from_ref(wanted), within, || rig.logs()).await
}

/// Reads events until every one of `wanted` came, returning every event seen.
/// A final event before that, a closed channel or `within` passing fail with
/// `logs()`.
async fn events_until_all(
    call: &mut CallHandle,
    wanted: &[ControllerEvent],
    within: Duration,
    logs: impl Fn() -> String,
) -> Vec<ControllerEvent> {
    let mut seen = Vec::new();
    let all_seen = |seen: &[ControllerEvent]| wanted.iter().all(|w| seen.contains(w));
    let reading = async {
        while !all_seen(&seen) {
            let Some(event) = call.events.recv().await else {
                panic!("event channel closed; seen {seen:?}\n{}", logs());
            };
            let last = event.is_final();
            seen.push(event);
            assert!(
                !last || all_seen(&seen),
                "call ended before {wanted:?}: {seen:?}\n{}",
                logs()
            );
        }
    };
    if tokio::time::timeout(within, reading).await.is_err() {
        panic!("no {wanted:?} within {within:?}; seen {seen:?}\n{}", logs());
    }
    seen
}

/// Asserts the opening of a call that connects party 1.
fn assert_connected_in_order(seen: &[ControllerEvent]) {
    let expected_start = [
        ControllerEvent::DialingTalker,
        ControllerEvent::TalkerAnswered,
    ];
    assert_eq!(&seen[..2], &expected_start, "{seen:?}");
    let rest = &seen[2..];
    let connected = ControllerEvent::Connected { party: PartyId(1) };
    let ringing = ControllerEvent::CalleeRinging { party: PartyId(1) };
    assert!(
        rest == [connected.clone()] || rest == [ringing, connected],
        "{seen:?}"
    );
}

fn spec(name: &'static str, user: &'static str, answer: &'static str) -> AgentSpec {
    AgentSpec { name, user, answer }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placed_call_connects_two_talkers_that_hear_each_other_until_hang_up() {
    let mut rig = Rig::start(
        &[spec("tv-a", "alice", ""), spec("pc-b", "bob", AUTO)],
        true,
    )
    .await;
    let mut call = rig
        .controller
        .place(rig.plan("bob", Duration::from_secs(60)))
        .unwrap();
    let seen = events_until(
        &mut call,
        &ControllerEvent::Connected { party: PartyId(1) },
        Duration::from_secs(40),
        &rig,
    )
    .await;
    assert_connected_in_order(&seen);
    // The control INVITE reached A through its GRUU and carried a token A took.
    assert!(rig.agents[0].log().contains("control leg answered"));

    // Let the tones flow, then hang up from the controller.
    tokio::time::sleep(Duration::from_secs(3)).await;
    call.hang_up().unwrap();
    let end = next_event(&mut call, Duration::from_secs(20), &rig).await;
    assert_eq!(
        end,
        ControllerEvent::Ended {
            reason: EndReason::HungUp
        }
    );
    assert!(call.events.recv().await.is_none(), "nothing after Ended");

    // Both media legs end (A hung up B) and report what they heard.
    for agent in &mut rig.agents {
        agent
            .wait_for_output("media summary", Duration::from_secs(15))
            .unwrap();
    }
    let (tone_a, tone_b) = (rig.tones[0], rig.tones[1]);
    let heard_by_a = summary_field(&rig.agents[0].log(), "heard_hz");
    let heard_by_b = summary_field(&rig.agents[1].log(), "heard_hz");
    assert!(
        (heard_by_a - tone_b).abs() < tone_b * 0.02,
        "A heard {heard_by_a} Hz, B sent {tone_b}\n{}",
        rig.logs()
    );
    assert!(
        (heard_by_b - tone_a).abs() < tone_a * 0.02,
        "B heard {heard_by_b} Hz, A sent {tone_a}\n{}",
        rig.logs()
    );
    assert!(matches!(
        call.hang_up(),
        Err(matcher::controller::ControllerError::CallOver)
    ));
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_that_never_answers_ends_the_call_and_stops_ringing() {
    let mut rig = Rig::start(
        &[spec("tv-a", "alice", ""), spec("pc-b", "bob", MANUAL)],
        true,
    )
    .await;
    let started = Instant::now();
    let mut call = rig
        .controller
        .place(rig.plan("bob", Duration::from_secs(4)))
        .unwrap();
    let seen = events_until(
        &mut call,
        &ControllerEvent::CalleeRinging { party: PartyId(1) },
        Duration::from_secs(30),
        &rig,
    )
    .await;
    assert_eq!(
        seen,
        [
            ControllerEvent::DialingTalker,
            ControllerEvent::TalkerAnswered,
            ControllerEvent::CalleeRinging { party: PartyId(1) }
        ]
    );
    // While B rings, up to the controller giving up, no call of either talker
    // has media, and B's call is seen ringing.
    let seen_ringing = std::cell::Cell::new(false);
    let end = testbed::wait_until_async("the call's end", Duration::from_secs(30), || {
        let event = match call.events.try_recv() {
            Ok(event) => Some(event),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => panic!("event channel closed\n{}", rig.logs()),
        };
        let (rig, seen_ringing) = (&rig, &seen_ringing);
        async move {
            for (i, agent) in rig.agents.iter().enumerate() {
                let status = agent_status(agent).await;
                assert!(
                    calls_in(&status).iter().all(|c| c["media"].is_null()),
                    "agent {i} has media on an unanswered call: {status}\n{}",
                    rig.logs()
                );
                if i == 1
                    && call_of_kind(&status, "incoming").is_some_and(|c| c["state"] == "ringing")
                {
                    seen_ringing.set(true);
                }
            }
            event
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    assert!(
        seen_ringing.get(),
        "B's call never showed ringing\n{}",
        rig.logs()
    );
    assert_eq!(
        end,
        ControllerEvent::Ended {
            reason: EndReason::CalleeNoAnswer
        },
        "{}",
        rig.logs()
    );
    assert!(started.elapsed() >= Duration::from_secs(4));
    // The controller's BYE made A cancel its ringing call: B stops ringing and
    // no media ever started.
    rig.agents[1]
        .wait_for_output("caller gave up", Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    for agent in &rig.agents {
        testbed::wait_until_async("no calls left", Duration::from_secs(15), || async {
            calls_in(&agent_status(agent).await)
                .is_empty()
                .then_some(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    }
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callee_hanging_up_ends_the_call_as_callee_hung_up() {
    let mut rig = Rig::start(
        &[spec("tv-a", "alice", ""), spec("pc-b", "bob", AUTO)],
        true,
    )
    .await;
    let mut call = rig
        .controller
        .place(rig.plan("bob", Duration::from_secs(60)))
        .unwrap();
    events_until(
        &mut call,
        &ControllerEvent::Connected { party: PartyId(1) },
        Duration::from_secs(40),
        &rig,
    )
    .await;
    // B's agent stops: it hangs up its call (BYE to A) on the way out.
    let b = &mut rig.agents[1];
    tokio::task::block_in_place(|| b.stop(Duration::from_secs(10)).unwrap());
    let seen = events_until(
        &mut call,
        &ControllerEvent::Ended {
            reason: EndReason::CalleeHungUp,
        },
        Duration::from_secs(20),
        &rig,
    )
    .await;
    assert_eq!(
        seen,
        [
            ControllerEvent::PartyEnded { party: PartyId(1) },
            ControllerEvent::Ended {
                reason: EndReason::CalleeHungUp
            }
        ]
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_party_joins_and_shutdown_ends_every_call() {
    let rig = Rig::start(
        &[
            spec("tv-a", "alice", ""),
            spec("pc-b", "bob", AUTO),
            spec("ph-c", "carol", AUTO),
        ],
        true,
    )
    .await;
    let mut call = rig
        .controller
        .place(rig.plan("bob", Duration::from_secs(60)))
        .unwrap();
    // Added before the talker answered: the REFER waits for the control leg,
    // then for party 1's REFER.
    let carol = call
        .add_party(&format!("sip:carol@{DOMAIN}"))
        .await
        .unwrap();
    assert_eq!(carol, PartyId(2));
    let both = [1, 2].map(|p| ControllerEvent::Connected { party: PartyId(p) });
    events_until_all(&mut call, &both, Duration::from_secs(60), || rig.logs()).await;
    assert!(
        call.add_party("sip:dave@home.example?Replaces=x")
            .await
            .is_err()
    );
    // A reports the second party connected (NOTIFY 200) before its media
    // moves into the mix: give the log line a moment on a busy machine.
    testbed::wait_until_async("A mixing locally", Duration::from_secs(10), || async {
        rig.agents[0].log().contains("mixing locally").then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));

    // Let the three tones mix, then shut the controller down: it ends the
    // control leg, so A ends both referred calls.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let Rig {
        server,
        controller,
        mut agents,
        tones,
        _dir,
    } = rig;
    controller.shutdown().await;
    let end = call.events.recv().await;
    assert_eq!(
        end,
        Some(ControllerEvent::Ended {
            reason: EndReason::Shutdown
        })
    );
    for agent in &mut agents {
        agent
            .wait_for_output("media summary", Duration::from_secs(15))
            .unwrap();
    }
    // The conference summary comes last on A.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let heard_at: Vec<Vec<f64>> = agents.iter().map(|a| summary_heard_all(&a.log())).collect();
    for (i, list) in heard_at.iter().enumerate() {
        for (j, tone) in tones.iter().enumerate() {
            if i != j {
                assert!(
                    heard(list, *tone),
                    "agent {i} heard {list:?}; tones {tones:?}\n{}",
                    agents[i].log()
                );
            }
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_talker_that_refuses_the_token_is_reported_as_talker_rejected() {
    let rig = Rig::start(
        &[spec("tv-a", "alice", ""), spec("pc-b", "bob", AUTO)],
        false,
    )
    .await;
    let mut call = rig
        .controller
        .place(rig.plan("bob", Duration::from_secs(60)))
        .unwrap();
    assert_eq!(
        next_event(&mut call, Duration::from_secs(5), &rig).await,
        ControllerEvent::DialingTalker
    );
    assert_eq!(
        next_event(&mut call, Duration::from_secs(20), &rig).await,
        ControllerEvent::Ended {
            reason: EndReason::TalkerRejected { code: 403 }
        }
    );
    assert!(rig.agents[0].log().contains("control INVITE refused"));
    // A refused the call, so it dials nobody: for two seconds neither talker
    // holds any call (B would ring at once, and answer, were it called).
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(2) {
        for (i, agent) in rig.agents.iter().enumerate() {
            let status = agent_status(agent).await;
            assert!(
                calls_in(&status).is_empty(),
                "agent {i} holds a call after the token was refused: {status}\n{}",
                rig.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rig.shutdown().await;
}

/// MD5(eve:home.example:eve-pw). baresip's SIP stack answers only MD5 digest
/// challenges and refuses a 401 that carries any other, so its account gets an
/// MD5 H(A1) only and its realm is challenged with MD5 alone (`challenge =
/// "md5"`, every account marked).
const EVE_HA1_MD5: &str = "8c4d506c4f0c83294a5e0db87b5e077a";

/// baresip 1.0 as a third-party talker: registered as eve at the server,
/// auto-answering, and acting on a REFER as a blind transfer.
fn start_baresip(dir: &Path, proxy: SocketAddr, tone: u32) -> Process {
    // baresip binds TLS on its SIP port + 1.
    let sip_port = testbed::free_port_pair().unwrap();
    // ausrc at 48 kHz stereo: with other source formats baresip 1.0 never
    // answers. aubridge as player: no sound card needed.
    let config = format!(
        "poll_method\t\tepoll\nsip_listen\t\t127.0.0.1:{sip_port}\nnet_interface\t\t127.0.0.1\n\
         audio_player\t\taubridge,nil\naudio_alert\t\taubridge,nil\naudio_source\t\tausine,{tone}\n\
         ausrc_srate\t\t48000\nausrc_channels\t\t2\nmodule_path\t\t/usr/lib/baresip/modules\n\
         module\t\t\tg711.so\nmodule\t\t\tausine.so\nmodule\t\t\taubridge.so\n\
         module_app\t\taccount.so\nmodule_app\t\tmenu.so\n"
    );
    std::fs::write(dir.join("config"), config).unwrap();
    // The account names the server by its address rather than through an
    // outbound proxy: the sip-server refuses a preloaded Route naming itself
    // without its signature (404 Unknown Route), and the namespace has no
    // resolver for the domain.
    let account =
        format!("<sip:eve@{proxy};transport=udp>;auth_pass=eve-pw;regint=600;answermode=auto\n");
    std::fs::write(dir.join("accounts"), account).unwrap();
    let mut process = Spawn::new("baresip")
        .arg("-f")
        .arg(dir)
        .label("baresip-eve")
        .start()
        .unwrap();
    process
        .wait_for_output("200 OK () [1 binding]", Duration::from_secs(30))
        .unwrap();
    process
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: run scripts/test"]
async fn a_third_party_phone_serves_as_the_talker() {
    // baresip is a SIP server of its own: never in the machine's own network namespace.
    testbed::require_loopback_only_namespace();
    testbed::require_program("baresip", "baresip-core");
    let users = format!(
        "challenge = \"md5\"\n[users.eve]\nha1_md5 = \"{EVE_HA1_MD5}\"\n[users.bob]\npassword = \"bob-pw\"\nmd5 = true\n"
    );
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), DOMAIN);
    config.users = Some(UserDirectory::parse(&users, DOMAIN).unwrap());
    config.trusted = vec!["127.0.0.1".parse().unwrap()];
    let server = sip_server::start(config).await.unwrap();
    let issuer = new_issuer();
    let key = STANDARD.encode(issuer.verifying_key().to_bytes());
    let dir = tempfile::tempdir().unwrap();
    let eve_dir = dir.path().join("baresip");
    std::fs::create_dir(&eve_dir).unwrap();
    let mut eve = start_baresip(&eve_dir, server.local_addr(), 1000);
    let bob_cfg = agent_config(
        dir.path(),
        "pc-b",
        "bob",
        server.local_addr(),
        &key,
        500.0,
        "[answer]\npolicy = \"auto\"\nafter_seconds = 0\nallow = [\"sip:eve@home.example\"]\n",
    );
    let mut bob = start_agent(&bob_cfg, "pc-b");
    let location = &server.context().location;
    testbed::wait_until_async(
        "bob and eve registered",
        Duration::from_secs(30),
        || async {
            (!location.lookup("bob").is_empty() && !location.lookup("eve").is_empty()).then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let controller = Controller::start(ControllerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        issuer: CurrentIssuer::new(issuer),
        user_agent: "splitdial-matcher-test".into(),
    })
    .await
    .unwrap();
    let mut call = controller
        .place(CallPlan {
            call_id: "call-handoff".into(),
            server_domain: DOMAIN.into(),
            proxy: server.local_addr(),
            transport: SipTransport::Tcp,
            controller_uri: format!("sip:splitdial@{DOMAIN}"),
            caller_talker_id: "eve-phone".into(),
            caller_target: format!("sip:eve@{DOMAIN}"),
            // By the server's address too: baresip dials the Refer-To as is.
            callee_uri: format!("sip:bob@{}", server.local_addr()),
            talker_answer_timeout: Duration::from_secs(15),
            callee_answer_timeout: Duration::from_secs(60),
            hand_off_after_transfer: true,
        })
        .unwrap();
    let logs =
        |eve: &Process, bob: &Process| format!("baresip:\n{}\nbob:\n{}", eve.log(), bob.log());
    let connected = ControllerEvent::Connected { party: PartyId(1) };
    let seen = events_until_all(
        &mut call,
        std::slice::from_ref(&connected),
        Duration::from_secs(60),
        || logs(&eve, &bob),
    )
    .await;
    assert_connected_in_order(&seen);
    // baresip 1.0 waits for the transferor to hang up (RFC 5589 §6); the
    // plan says the talker is a SIP phone, so the controller does, and the
    // call is handed off.
    match tokio::time::timeout(Duration::from_secs(10), call.events.recv()).await {
        Ok(Some(ControllerEvent::HandedOff)) => {}
        other => panic!("{other:?} after {seen:?}\n{}", logs(&eve, &bob)),
    }
    // The transferred call goes on without the controller: bob keeps
    // hearing eve's 1000 Hz tone until he hangs up (here: shuts down).
    bob.wait_for_output("receiving media", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}\n{}", logs(&eve, &bob)));
    // Three looks a second apart (an agent copies its media statistics every
    // 0.5 s): the same call, connected, receiving more each time.
    let mut looks = Vec::new();
    for _ in 0..3 {
        looks.push(call_of_kind(&agent_status(&bob).await, "incoming"));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let first_id = looks[0].as_ref().map(|c| c["sip_call_id"].clone());
    let going_on = looks.iter().all(|c| {
        c.as_ref().is_some_and(|c| {
            c["state"] == "connected" && Some(c["sip_call_id"].clone()) == first_id
        })
    }) && looks
        .windows(2)
        .all(|w| w[1].as_ref().map(audio_received) > w[0].as_ref().map(audio_received));
    assert!(
        going_on,
        "bob's call did not go on receiving: {looks:?}\n{}",
        logs(&eve, &bob)
    );
    eve.wait_for_output("session closed", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("the control leg stayed up: {e}\n{}", logs(&eve, &bob)));
    bob.stop(Duration::from_secs(10)).unwrap();
    let heard_by_bob = summary_heard_all(&bob.log());
    assert!(
        heard(&heard_by_bob, 1000.0),
        "bob heard {heard_by_bob:?}\n{}",
        logs(&eve, &bob)
    );
    controller.shutdown().await;
    server.shutdown().await;
}

/// A hand-written SIP phone on one TCP connection, scripted step by step by
/// the test: it plays a third-party talker in the orders RFC 5057 and real
/// phones allow (a NOTIFY before the 202, a NOTIFY after the controller's BYE,
/// a BYE right after the transfer succeeded).
struct ScriptedPhone {
    listener: tokio::net::TcpListener,
    stream: Option<tokio::net::TcpStream>,
    local: SocketAddr,
    pending: Vec<u8>,
    /// The control dialog, once answered: (controller's Contact URI, our From
    /// value, our To value, Call-ID).
    dialog: Option<(String, String, String, String)>,
    cseq: u32,
}

impl ScriptedPhone {
    async fn bind() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = listener.local_addr().unwrap();
        Self {
            listener,
            stream: None,
            local,
            pending: Vec::new(),
            dialog: None,
            cseq: 0,
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.stream
            .as_mut()
            .unwrap()
            .write_all(bytes)
            .await
            .unwrap();
    }

    /// The next message (framed by Content-Length); accepts the controller's
    /// connection first.
    async fn next(&mut self) -> rsipstack::sip::SipMessage {
        self.next_within(Duration::from_secs(20)).await
    }

    /// The next message, waiting at most `within` for each read.
    async fn next_within(&mut self, within: Duration) -> rsipstack::sip::SipMessage {
        use tokio::io::AsyncReadExt;
        if self.stream.is_none() {
            let (stream, _) = tokio::time::timeout(within, self.listener.accept())
                .await
                .unwrap()
                .unwrap();
            self.stream = Some(stream);
        }
        loop {
            if let Some(message) = self.take_message() {
                return message;
            }
            let mut buf = [0u8; 8192];
            let n = tokio::time::timeout(within, self.stream.as_mut().unwrap().read(&mut buf))
                .await
                .expect("a message from the controller")
                .unwrap();
            assert!(n > 0, "the controller closed the connection");
            self.pending.extend_from_slice(&buf[..n]);
        }
    }

    /// The first whole message read so far (framed by Content-Length), if any.
    fn take_message(&mut self) -> Option<rsipstack::sip::SipMessage> {
        let end = self.pending.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&self.pending[..end]).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                (n.trim().eq_ignore_ascii_case("content-length") || n.trim() == "l")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        if self.pending.len() < end + 4 + len {
            return None;
        }
        let frame: Vec<u8> = self.pending.drain(..end + 4 + len).collect();
        Some(rsipstack::sip::SipMessage::try_from(frame.as_slice()).unwrap())
    }

    /// The next message if one comes within `wall` of wall-clock time: on a
    /// paused clock held still ([`hold_the_clock_still`]) no tokio timer can
    /// bound a wait. The connection must be open already.
    async fn next_by_wall_clock(&mut self, wall: Duration) -> Option<rsipstack::sip::SipMessage> {
        let started = Instant::now();
        let mut buf = [0u8; 8192];
        loop {
            if let Some(message) = self.take_message() {
                return Some(message);
            }
            if started.elapsed() >= wall {
                return None;
            }
            let stream = self.stream.as_ref().expect("an open connection");
            match stream.try_read(&mut buf) {
                Ok(0) => panic!("the controller closed the connection"),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    tokio::task::yield_now().await;
                }
                Err(e) => panic!("reading from the controller: {e}"),
            }
        }
    }

    async fn request(&mut self, method: &str) -> rsipstack::sip::Request {
        match self.next().await {
            rsipstack::sip::SipMessage::Request(r) if r.method.to_string() == method => r,
            other => panic!("expected {method}, got {other}"),
        }
    }

    async fn response(&mut self) -> rsipstack::sip::Response {
        match self.next().await {
            rsipstack::sip::SipMessage::Response(r) => r,
            other => panic!("expected a response, got {other}"),
        }
    }

    async fn reply(
        &mut self,
        request: &rsipstack::sip::Request,
        code: u16,
        extra: &str,
        body: &str,
    ) {
        let mut response = splitdial_sip::wire::response_to(request, code, "OK", Vec::new());
        splitdial_sip::headers::remove(&mut response.headers, "Content-Length");
        for line in extra.lines().filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':').unwrap();
            splitdial_sip::headers::push(&mut response.headers, name, value.trim());
        }
        splitdial_sip::headers::push(
            &mut response.headers,
            "Content-Length",
            body.len().to_string(),
        );
        response.body = body.as_bytes().to_vec();
        if request.method.to_string() == "INVITE" {
            let h = &request.headers;
            let first = |n| splitdial_sip::headers::first(h, n).unwrap().to_owned();
            let contact = first("Contact");
            let contact = contact
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_owned();
            let to = splitdial_sip::headers::first(&response.headers, "To")
                .unwrap()
                .to_owned();
            self.dialog = Some((contact, to, first("From"), first("Call-ID")));
        }
        self.send(&response.to_bytes()).await;
    }

    /// Sends an in-dialog request from the phone's side of the control leg.
    async fn send_request(&mut self, method: &str, extra: &str, body: &str) {
        self.cseq += 1;
        let (target, from, to, call_id) = self.dialog.clone().unwrap();
        let (me, cseq) = (self.local, self.cseq);
        let text = format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKphone{cseq}{}\r\nMax-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:eve@{me};transport=tcp>\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            rand::random::<u32>(),
            body.len()
        );
        self.send(text.as_bytes()).await;
    }

    async fn notify(&mut self, code: u16, state: &str) {
        let body = splitdial_sip::sipfrag::build(code);
        self.send_request(
            "NOTIFY",
            &format!("Event: refer\r\nSubscription-State: {state}\r\nContent-Type: message/sipfrag;version=2.0\r\n"),
            &body,
        )
        .await;
    }
}

/// How the scripted phone's call goes.
#[derive(PartialEq)]
enum PhoneScript {
    /// NOTIFY 100 before the 202, NOTIFY 200 terminated, then BYE.
    HandsOff,
    /// Rings; the dialer hangs up; NOTIFYs cross the BYE and follow it.
    NotifiesAfterHangUp,
    /// Dials the party named in the INVITE at once (echoing `Splitdial-Dial` in its 200) and
    /// reports right behind its 200, before the controller's stack has filed the dialog (our
    /// agent waits for the ACK, which narrows that race but cannot close it): no REFER may
    /// follow, and no report may be lost.
    DialsOnAnswer,
    /// Echoes another party than the one named in the INVITE: the call ends (BYE), and no
    /// REFER goes out that could have the talker call someone a second time.
    EchoesAnotherParty,
    /// Dials on answer, then sends the controller re-offers in the control leg (see
    /// [`re_offers`]).
    ReOffers,
}

async fn scripted_phone(script: PhoneScript) {
    use splitdial_sip::call_token::{self, Action, Expectation, KeySet, TokenKind};
    if let Ok(filter) = std::env::var("TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
    let issuer = new_issuer();
    let mut keys = KeySet::default();
    keys.insert(issuer.kid(), issuer.verifying_key());
    let mut phone = ScriptedPhone::bind().await;
    let controller = Controller::start(ControllerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        issuer: CurrentIssuer::new(issuer),
        user_agent: "splitdial-matcher-test".into(),
    })
    .await
    .unwrap();
    let callee = format!("sip:bob@{DOMAIN}");
    let mut call = controller
        .place(CallPlan {
            call_id: "call-scripted".into(),
            server_domain: DOMAIN.into(),
            proxy: phone.local,
            transport: SipTransport::Tcp,
            controller_uri: format!("sip:splitdial@{DOMAIN}"),
            caller_talker_id: "eve-phone".into(),
            caller_target: format!("sip:eve@{}", phone.local),
            callee_uri: callee.clone(),
            talker_answer_timeout: Duration::from_secs(15),
            callee_answer_timeout: Duration::from_secs(60),
            hand_off_after_transfer: false,
        })
        .unwrap();

    // The control INVITE: over TCP, a token for this talker, call and leg,
    // the auto-answer hints, and an inactive audio offer at a real address.
    let invite = phone.request("INVITE").await;
    let h = &invite.headers;
    let call_id = splitdial_sip::headers::first(h, "Call-ID")
        .unwrap()
        .to_owned();
    let expect = |action, refer_to| Expectation {
        kind: TokenKind::Call,
        audience: "eve-phone",
        action,
        dialog: "",
        refer_to,
        now: call_token::unix_now(),
        skew: call_token::DEFAULT_SKEW_SECS,
    };
    let token = splitdial_sip::headers::first(h, call_token::HEADER).unwrap();
    let claims = call_token::verify(
        token,
        &keys,
        &Expectation {
            dialog: &call_id,
            ..expect(Action::Control, None)
        },
    )
    .unwrap();
    assert_eq!(claims.call, "call-scripted");
    assert!(claims.exp - claims.iat <= 30);
    assert_eq!(
        splitdial_sip::headers::first(h, "Call-Info"),
        Some(format!("<sip:{DOMAIN}>;answer-after=0").as_str())
    );
    assert_eq!(
        splitdial_sip::headers::first(h, "Answer-Mode"),
        Some("Auto")
    );
    let offer = String::from_utf8_lossy(&invite.body).into_owned();
    assert!(offer.contains("c=IN IP4 127.0.0.1\r\n"), "{offer}");
    assert!(offer.contains("m=audio 9 RTP/AVP 0 8\r\n"), "{offer}");
    assert!(offer.contains("a=inactive"), "{offer}");
    assert!(invite.to_string().len() > 1000, "{invite}");

    // The first party rides on the INVITE too, with its own refer token for that target.
    let dial = splitdial_sip::headers::first(h, call_token::DIAL_HEADER)
        .unwrap()
        .to_owned();
    assert_eq!(dial, format!("<{callee}>"));
    let dial_token = splitdial_sip::headers::first(h, call_token::DIAL_TOKEN_HEADER).unwrap();
    let dial_claims = call_token::verify(
        dial_token,
        &keys,
        &Expectation {
            dialog: &call_id,
            ..expect(Action::Refer, Some(&dial))
        },
    )
    .unwrap();
    assert_ne!(dial_claims.jti, claims.jti, "every token its own jti");

    let answer = "v=0\r\no=eve 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=inactive\r\n";
    let echo = match script {
        PhoneScript::DialsOnAnswer | PhoneScript::ReOffers => {
            format!("{}: {dial}\n", call_token::DIAL_HEADER)
        }
        PhoneScript::EchoesAnotherParty => {
            format!("{}: <sip:mallory@{DOMAIN}>\n", call_token::DIAL_HEADER)
        }
        _ => String::new(),
    };
    phone
        .reply(
            &invite,
            200,
            &format!(
                "Contact: <sip:eve@{};transport=tcp>\nAllow: INVITE, ACK, BYE, CANCEL, REFER, NOTIFY\nContent-Type: application/sdp\n{echo}",
                phone.local
            ),
            answer,
        )
        .await;
    if script == PhoneScript::DialsOnAnswer {
        // Ringing reported at once, the NOTIFY written right behind the 200.
        phone.notify(180, "active;expires=60").await;
        let mut acked = false;
        for _ in 0..2 {
            match phone.next().await {
                rsipstack::sip::SipMessage::Request(r) if r.method.to_string() == "ACK" => {
                    acked = true;
                }
                rsipstack::sip::SipMessage::Response(r) => {
                    assert_eq!(r.status_code.code(), 200);
                }
                other => panic!("expected the ACK and the NOTIFY's 200, got {other}"),
            }
        }
        assert!(acked);
        let mut seen = Vec::new();
        while seen.last() != Some(&ControllerEvent::CalleeRinging { party: PartyId(1) }) {
            seen.push(call.events.recv().await.unwrap());
        }
        phone.notify(200, "terminated;reason=noresource").await;
        assert_eq!(phone.response().await.status_code.code(), 200);
        seen.push(call.events.recv().await.unwrap());
        assert_eq!(
            seen,
            [
                ControllerEvent::DialingTalker,
                ControllerEvent::TalkerAnswered,
                ControllerEvent::CalleeRinging { party: PartyId(1) },
                ControllerEvent::Connected { party: PartyId(1) },
            ]
        );
        // The next request is the hang-up's BYE: no REFER was ever sent.
        call.hang_up().unwrap();
        let bye = phone.request("BYE").await;
        phone.reply(&bye, 200, "", "").await;
        assert_eq!(
            call.events.recv().await.unwrap(),
            ControllerEvent::Ended {
                reason: EndReason::HungUp
            }
        );
        assert!(call.events.recv().await.is_none());
        controller.shutdown().await;
        return;
    }
    phone.request("ACK").await;
    if script == PhoneScript::ReOffers {
        re_offers(&mut phone, &offer).await;
        call.hang_up().unwrap();
        let bye = phone.request("BYE").await;
        phone.reply(&bye, 200, "", "").await;
        let seen = events_to_the_end(&mut call).await;
        assert_eq!(
            seen.last(),
            Some(&ControllerEvent::Ended {
                reason: EndReason::HungUp
            })
        );
        controller.shutdown().await;
        return;
    }
    if script == PhoneScript::EchoesAnotherParty {
        let bye = phone.request("BYE").await;
        phone.reply(&bye, 200, "", "").await;
        let seen = events_to_the_end(&mut call).await;
        assert_eq!(
            seen,
            [
                ControllerEvent::DialingTalker,
                ControllerEvent::TalkerAnswered,
                ControllerEvent::Ended {
                    reason: EndReason::Error {
                        message: "the talker echoed another party to dial".into()
                    }
                },
            ]
        );
        controller.shutdown().await;
        return;
    }

    // The REFER names the callee, with its own token for that target.
    let refer = phone.request("REFER").await;
    let refer_to = splitdial_sip::headers::first(&refer.headers, "Refer-To")
        .unwrap()
        .to_owned();
    let refer_token = splitdial_sip::headers::first(&refer.headers, call_token::HEADER).unwrap();
    let refer_claims = call_token::verify(
        refer_token,
        &keys,
        &Expectation {
            dialog: &call_id,
            ..expect(Action::Refer, Some(&refer_to))
        },
    )
    .unwrap();
    assert_ne!(
        refer_claims.jti, claims.jti,
        "every transaction a fresh token"
    );
    assert_eq!(refer_claims.target.as_deref(), Some(callee.as_str()));

    // NOTIFY 100 before the 202.
    phone.notify(100, "active;expires=60").await;
    phone.reply(&refer, 202, "", "").await;
    assert_eq!(phone.response().await.status_code.code(), 200);

    let mut seen = Vec::new();
    if script == PhoneScript::HandsOff {
        phone.notify(200, "terminated;reason=noresource").await;
        assert_eq!(phone.response().await.status_code.code(), 200);
        phone.send_request("BYE", "", "").await;
        assert_eq!(phone.response().await.status_code.code(), 200);
        seen.extend(events_to_the_end(&mut call).await);
        assert_eq!(
            seen,
            [
                ControllerEvent::DialingTalker,
                ControllerEvent::TalkerAnswered,
                ControllerEvent::Connected { party: PartyId(1) },
                ControllerEvent::HandedOff,
            ]
        );
    } else {
        phone.notify(180, "active;expires=60").await;
        assert_eq!(phone.response().await.status_code.code(), 200);
        while seen.last() != Some(&ControllerEvent::CalleeRinging { party: PartyId(1) }) {
            seen.push(call.events.recv().await.unwrap());
        }
        call.hang_up().unwrap();
        let bye = phone.request("BYE").await;
        // A NOTIFY crossing the BYE, then one after it: both 200, never 481.
        phone.notify(487, "terminated;reason=noresource").await;
        assert_eq!(phone.response().await.status_code.code(), 200);
        phone.reply(&bye, 200, "", "").await;
        let end = call.events.recv().await.unwrap();
        phone.notify(487, "terminated;reason=noresource").await;
        assert_eq!(phone.response().await.status_code.code(), 200);
        assert_eq!(
            end,
            ControllerEvent::Ended {
                reason: EndReason::HungUp
            }
        );
        assert_eq!(
            seen,
            [
                ControllerEvent::DialingTalker,
                ControllerEvent::TalkerAnswered,
                ControllerEvent::CalleeRinging { party: PartyId(1) },
            ]
        );
    }
    assert!(call.events.recv().await.is_none());
    controller.shutdown().await;
}

/// The `o=` line of an SDP body: (session id, version).
fn origin(sdp: &str) -> (u64, u64) {
    let line = sdp.lines().find(|l| l.starts_with("o=")).unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[1].parse().unwrap(), fields[2].parse().unwrap())
}

/// The talker's re-offers in an answered control leg whose controller offered `first`:
/// every SDP the controller sends keeps `first`'s `o=` session id, its version rises by
/// one exactly when the SDP changes (RFC 3264 §8), a refused stream (port 0) is answered
/// with port 0 (RFC 3264 §6), and a re-INVITE without an offer gets the inactive offer.
async fn re_offers(phone: &mut ScriptedPhone, first: &str) {
    let (id, version) = origin(first);
    assert_eq!(version, 1, "{first}");
    let sdp = "Content-Type: application/sdp\r\n";
    let refused_first = "v=0\r\no=eve 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                         m=audio 0 RTP/AVP 0\r\nm=audio 4002 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n";
    // (offer, the version expected in the controller's SDP)
    for (step, (offer, expected)) in [(refused_first, 2), (refused_first, 2), ("", 3)]
        .into_iter()
        .enumerate()
    {
        let headers = if offer.is_empty() { "" } else { sdp };
        phone.send_request("INVITE", headers, offer).await;
        let ok = phone.response().await;
        assert_eq!(ok.status_code.code(), 200, "step {step}: {ok}");
        let body = String::from_utf8_lossy(&ok.body).into_owned();
        assert_eq!(origin(&body), (id, expected), "step {step}:\n{body}");
        assert!(
            body.contains("a=inactive") && !body.contains("a=sendrecv"),
            "{body}"
        );
        if offer.is_empty() {
            assert!(body.contains("m=audio 9 RTP/AVP 0 8\r\n"), "{body}");
        } else {
            let m_lines: Vec<&str> = body.lines().filter(|l| l.starts_with("m=")).collect();
            assert_eq!(m_lines.len(), 2, "{body}");
            assert!(m_lines[0].starts_with("m=audio 0 RTP/AVP "), "{body}");
            assert!(m_lines[1].starts_with("m=audio 9 RTP/AVP 8"), "{body}");
        }
        // The ACK of a 2xx carries its INVITE's CSeq number (and, after our own
        // offer-less re-INVITE, the answer).
        phone.cseq -= 1;
        let answer = if offer.is_empty() { refused_first } else { "" };
        let headers = if answer.is_empty() { "" } else { sdp };
        phone.send_request("ACK", headers, answer).await;
    }
    // An UPDATE without an offer (a refresh) gets a 200 without SDP.
    phone.send_request("UPDATE", "", "").await;
    let ok = phone.response().await;
    assert_eq!(ok.status_code.code(), 200, "{ok}");
    assert!(ok.body.is_empty(), "{ok}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controllers_sdp_keeps_its_origin_and_answers_a_refused_stream_refused() {
    tokio::time::timeout(
        Duration::from_secs(60),
        scripted_phone(PhoneScript::ReOffers),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_ends_the_control_leg_after_its_transfer_hands_the_call_off() {
    tokio::time::timeout(
        Duration::from_secs(60),
        scripted_phone(PhoneScript::HandsOff),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifies_around_the_hang_up_are_answered_200() {
    tokio::time::timeout(
        Duration::from_secs(60),
        scripted_phone(PhoneScript::NotifiesAfterHangUp),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_talker_that_dials_on_answer_gets_no_refer_and_reports_in_the_control_leg() {
    tokio::time::timeout(
        Duration::from_secs(60),
        scripted_phone(PhoneScript::DialsOnAnswer),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_talker_that_echoes_another_party_to_dial_is_hung_up_not_referred() {
    tokio::time::timeout(
        Duration::from_secs(60),
        scripted_phone(PhoneScript::EchoesAnotherParty),
    )
    .await
    .unwrap();
}

/// RFC 4028 with real talkers: the control leg is refreshed by UPDATE every
/// 45 s, so a call outlives the 90 s session interval (and the talker's 60 s
/// expiry check) with its control leg and media intact, and can still be hung
/// up from the dialer.
///
/// It takes 95 s of real time, so it runs only with the `long-tests` feature
/// (`scripts/test --long`, which CI runs). Paused time cannot shorten it: the
/// talkers are child processes on the real clock. Nor can configuration: the
/// interval is RFC 4028's minimum of 90 s, a constant of the controller and of
/// the agent (`session_timer::MIN_SECS`), not a setting. The controller's side
/// alone runs on paused time below (`a_refresh_answered_481_...`).
#[cfg(feature = "long-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_call_keeps_its_control_leg_by_refreshing_it() {
    let mut rig = Rig::start(
        &[spec("tv-a", "alice", ""), spec("pc-b", "bob", AUTO)],
        true,
    )
    .await;
    let mut call = rig
        .controller
        .place(rig.plan("bob", Duration::from_secs(60)))
        .unwrap();
    let seen = events_until(
        &mut call,
        &ControllerEvent::Connected { party: PartyId(1) },
        Duration::from_secs(40),
        &rig,
    )
    .await;
    assert_connected_in_order(&seen);
    let answered = rig.agents[0].log();
    // The agent's log line (field names may be coloured): a 90 s session.
    assert!(
        answered
            .lines()
            .any(|l| l.contains("control leg answered") && l.contains("Some(90)")),
        "the talker agreed to a 90 s session\n{answered}"
    );
    let a_before = agent_status(&rig.agents[0]).await;
    let b_before = agent_status(&rig.agents[1]).await;

    // Past the session interval: no event at all (no hand-off, no end).
    match tokio::time::timeout(Duration::from_secs(95), call.events.recv()).await {
        Err(_) => {}
        Ok(event) => panic!("{event:?} during the call\n{}", rig.logs()),
    }
    let refreshes = rig.agents[0].log().matches("control leg refreshed").count();
    assert!(refreshes >= 2, "{refreshes} refreshes\n{}", rig.logs());
    // A still holds the same control leg and referred call, and B's call still
    // receives: neither the session timer nor anything else ended them.
    let a_after = agent_status(&rig.agents[0]).await;
    let b_after = agent_status(&rig.agents[1]).await;
    for kind in ["control", "referred"] {
        let (then, now) = (call_of_kind(&a_before, kind), call_of_kind(&a_after, kind));
        assert!(
            now.as_ref().is_some_and(|c| c["state"] == "connected"
                && Some(&c["sip_call_id"]) == then.as_ref().map(|t| &t["sip_call_id"])),
            "A's {kind} call did not last: {a_before} then {a_after}\n{}",
            rig.logs()
        );
    }
    // B's call is the same and still receives: a second apart (an agent copies
    // its media statistics every 0.5 s), it has received more.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let b_later = agent_status(&rig.agents[1]).await;
    let looks = [&b_before, &b_after, &b_later].map(|s| call_of_kind(s, "incoming"));
    let first_id = looks[0].as_ref().map(|c| c["sip_call_id"].clone());
    assert!(
        looks[1..].iter().all(|c| c.as_ref().is_some_and(
            |c| c["state"] == "connected" && Some(c["sip_call_id"].clone()) == first_id
        )) && looks[2].as_ref().map(audio_received) > looks[1].as_ref().map(audio_received),
        "B's call did not go on receiving: {looks:?}\n{}",
        rig.logs()
    );

    call.hang_up().unwrap();
    let end = next_event(&mut call, Duration::from_secs(20), &rig).await;
    assert_eq!(
        end,
        ControllerEvent::Ended {
            reason: EndReason::HungUp
        }
    );
    for agent in &mut rig.agents {
        agent
            .wait_for_output("media summary", Duration::from_secs(15))
            .unwrap();
    }
    let heard_by_b = summary_field(&rig.agents[1].log(), "heard_hz");
    let tone_a = rig.tones[0];
    assert!(
        (heard_by_b - tone_a).abs() < tone_a * 0.02,
        "B heard {heard_by_b} Hz, A sent {tone_a}\n{}",
        rig.logs()
    );
    rig.shutdown().await;
}

/// A talker that forgot the control leg answers the refresh 481: control is
/// lost, and since its party is connected the call is handed off (it goes on
/// between the talkers); the controller sends no BYE.
///
/// On paused time: the controller and the scripted phone share this runtime
/// and talk over loopback; the clock is held still ([`hold_the_clock_still`])
/// and moved by hand, a second at a time, to the refresh 45 s after the answer.
#[tokio::test(start_paused = true)]
async fn a_refresh_answered_481_loses_control_of_the_connected_call() {
    let held = tokio::spawn(hold_the_clock_still(Duration::from_secs(60)));
    let scenario = async {
        let mut phone = ScriptedPhone::bind().await;
        let controller = Controller::start(ControllerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            issuer: CurrentIssuer::new(new_issuer()),
            user_agent: "splitdial-matcher-test".into(),
        })
        .await
        .unwrap();
        let mut call = controller
            .place(CallPlan {
                call_id: "call-refresh".into(),
                server_domain: DOMAIN.into(),
                proxy: phone.local,
                transport: SipTransport::Tcp,
                controller_uri: format!("sip:splitdial@{DOMAIN}"),
                caller_talker_id: "eve-phone".into(),
                caller_target: format!("sip:eve@{}", phone.local),
                callee_uri: format!("sip:bob@{DOMAIN}"),
                talker_answer_timeout: Duration::from_secs(15),
                callee_answer_timeout: Duration::from_secs(60),
                hand_off_after_transfer: false,
            })
            .unwrap();
        let invite = phone.request("INVITE").await;
        let h = &invite.headers;
        assert_eq!(
            splitdial_sip::headers::first(h, "Session-Expires"),
            Some("90;refresher=uac")
        );
        assert_eq!(splitdial_sip::headers::first(h, "Min-SE"), Some("90"));
        assert!(splitdial_sip::session_timer::supported(h), "{invite}");
        let answer = "v=0\r\no=eve 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=inactive\r\n";
        phone
            .reply(
                &invite,
                200,
                &format!(
                    "Contact: <sip:eve@{};transport=tcp>\nAllow: INVITE, ACK, BYE, CANCEL, REFER, NOTIFY, UPDATE\nSession-Expires: 90;refresher=uac\nRequire: timer\nContent-Type: application/sdp\n",
                    phone.local
                ),
                answer,
            )
            .await;
        let answered_at = tokio::time::Instant::now();
        phone.request("ACK").await;
        let refer = phone.request("REFER").await;
        phone.reply(&refer, 202, "", "").await;
        phone.notify(200, "terminated;reason=noresource").await;
        assert_eq!(phone.response().await.status_code.code(), 200);

        // Half the interval after the answer, not sooner: nothing by 44 s, then
        // the clock moves a second at a time until an UPDATE comes, without
        // SDP, naming the interval and its refresher.
        tokio::time::advance(Duration::from_secs(44)).await;
        let early = phone.next_by_wall_clock(Duration::from_millis(200)).await;
        assert!(early.is_none(), "before 44 s: {early:?}");
        let update = loop {
            tokio::time::advance(Duration::from_secs(1)).await;
            if let Some(message) = phone.next_by_wall_clock(Duration::from_millis(200)).await {
                match message {
                    rsipstack::sip::SipMessage::Request(r) if r.method.to_string() == "UPDATE" => {
                        break r;
                    }
                    other => panic!("expected UPDATE, got {other}"),
                }
            }
            assert!(
                answered_at.elapsed() < Duration::from_secs(60),
                "no refresh 60 s after the answer"
            );
        };
        let waited = answered_at.elapsed();
        assert!(
            (Duration::from_secs(44)..=Duration::from_secs(46)).contains(&waited),
            "refreshed after {waited:?}"
        );
        assert!(update.body.is_empty(), "{update}");
        assert_eq!(
            splitdial_sip::headers::first(&update.headers, "Session-Expires"),
            Some("90;refresher=uac"),
            "{update}"
        );
        phone.reply(&update, 481, "", "").await;

        let seen = events_to_the_end(&mut call).await;
        assert_eq!(
            seen,
            [
                ControllerEvent::DialingTalker,
                ControllerEvent::TalkerAnswered,
                ControllerEvent::Connected { party: PartyId(1) },
                ControllerEvent::LostControl,
            ]
        );
        assert!(call.events.recv().await.is_none());
        // No BYE follows the lost leg.
        tokio::time::advance(Duration::from_secs(2)).await;
        let more = phone.next_by_wall_clock(Duration::from_millis(300)).await;
        assert!(more.is_none(), "{more:?}");
        controller.shutdown().await;
    };
    tokio::select! {
        () = scenario => {}
        _ = held => panic!("not done within 60 s of wall-clock time"),
    }
}

/// Keeps a paused clock still, for tests with real sockets: tokio advances a
/// paused clock whenever its runtime would sleep, even with a message already
/// on its way through the kernel, so a timer (a test's or a SIP
/// transaction's) could fire before that message is read. A task that always
/// yields keeps the runtime from sleeping (it still polls its sockets), so the
/// clock moves only by `tokio::time::advance`. Ends after `wall` of
/// wall-clock time, which bounds the test.
async fn hold_the_clock_still(wall: Duration) {
    let started = Instant::now();
    while started.elapsed() < wall {
        tokio::task::yield_now().await;
    }
}
