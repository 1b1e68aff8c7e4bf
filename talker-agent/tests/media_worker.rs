//! The agent's media worker end to end: two sessions run in the real `talker-media` process
//! (found beside the test binary's build directory), each hears the other's tone through the
//! worker's statistics, the worker exits once the last session stops, and reserved ports
//! stay bound from the SDP into the worker's pipelines; a call's media follows a new plan
//! through the agent's API (hold and resume, a move, a referred party held in its mix).
//! Needs the workspace built (`cargo build --workspace --all-targets`) and GStreamer
//! installed. The tests share the agent's one worker, so they run one at a time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use splitdial_api::{TalkerCallKind, TalkerCallState};
use splitdial_media::{
    AllocatedPorts, AudioSink, AudioSource, Direction, MediaSettings, MediaStats, Negotiated,
};
use splitdial_sip::sdp::{LocalMedia, SdpSession, negotiated_from_answer};
use talker_agent::calls::{CallEntry, Calls};
use talker_agent::media::hub::{self, MediaHub};
use talker_agent::media::worker::{MediaWorker, worker_binary};
use talker_agent::media::{RemoteConference, RemoteSession};

/// One test at a time: they share the agent's worker and watch it start and exit.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn settings(tone_hz: f64) -> MediaSettings {
    let mut s = MediaSettings::new(LOCALHOST);
    s.audio_source = AudioSource::Tone {
        frequency_hz: tone_hz,
    };
    s.audio_sink = AudioSink::Analyze;
    s
}

fn hears(stats: &MediaStats, hz: f64) -> bool {
    stats
        .sound
        .as_ref()
        .is_some_and(|s| s.frequencies_hz.iter().any(|f| (f - hz).abs() < 5.0))
}

/// Two sessions that hear each other: (A, B).
async fn talking_pair(tone_a: f64, tone_b: f64) -> (RemoteSession, RemoteSession) {
    let (a, b) = (settings(tone_a), settings(tone_b));
    let a_ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    let b_ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    let o = SdpSession::new(LOCALHOST).offer(&LocalMedia::for_call(&a, &a_ports));
    let (ans, b_plan) = SdpSession::new(LOCALHOST)
        .answer(&o, &LocalMedia::for_call(&b, &b_ports))
        .unwrap();
    let a_plan = negotiated_from_answer(&o, &ans).unwrap();
    let sa = RemoteSession::start(&a_plan, &a, a_ports).await.unwrap();
    let sb = RemoteSession::start(&b_plan, &b, b_ports).await.unwrap();
    (sa, sb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_run_in_the_worker_which_exits_when_the_media_ends() {
    let _serial = SERIAL.lock().await;
    let binary = worker_binary().expect("talker-media built: cargo build --workspace");
    assert!(binary.is_file(), "{}", binary.display());
    let (a, b) = (settings(520.0), settings(880.0));
    let a_ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    let b_ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    let o = SdpSession::new(LOCALHOST).offer(&LocalMedia::for_call(&a, &a_ports));
    let (ans, b_plan) = SdpSession::new(LOCALHOST)
        .answer(&o, &LocalMedia::for_call(&b, &b_ports))
        .unwrap();
    let a_plan = negotiated_from_answer(&o, &ans).unwrap();
    assert!(!MediaWorker::shared().is_running());

    let sa = RemoteSession::start(&a_plan, &a, a_ports).await.unwrap();
    let pid = MediaWorker::shared()
        .worker_pid()
        .expect("a worker process");
    let sb = RemoteSession::start(&b_plan, &b, b_ports).await.unwrap();

    let heard = testbed::wait_until_async(
        "each session hearing the other's tone through the worker",
        Duration::from_secs(15),
        || async {
            let (at_a, at_b) = (sa.stats().await.unwrap(), sb.stats().await.unwrap());
            (hears(&at_a, 880.0) && hears(&at_b, 520.0)).then_some(at_a)
        },
    )
    .await;
    let at_a = match heard {
        Ok(at_a) => at_a,
        Err(e) => panic!(
            "{e}: A {:?} B {:?}",
            sa.stats().await.unwrap(),
            sb.stats().await.unwrap()
        ),
    };
    let sent = at_a.audio.as_ref().map_or(0, |r| r.packets_sent);
    assert!(sent > 0, "{at_a:?}");

    // One session left: the worker stays; none left: it exits.
    sa.stop().await;
    assert!(MediaWorker::shared().is_running());
    assert!(
        sa.stats().await.unwrap().sound.is_none(),
        "a stopped session reports nothing"
    );
    sb.stop().await;
    assert!(!MediaWorker::shared().is_running());
    // The process itself ends (and is reaped), so its memory is returned.
    let process = std::path::PathBuf::from(format!("/proc/{pid}"));
    testbed::wait_until_async(
        &format!("worker {pid} gone from /proc"),
        Duration::from_secs(5),
        || std::future::ready((!process.exists()).then_some(())),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    // A worker that dies takes only the media: requests fail at once, stopping is
    // prompt, and the next call gets a fresh worker.
    let (sa, sb) = talking_pair(610.0, 990.0).await;
    let pid = MediaWorker::shared().worker_pid().expect("a new worker");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    testbed::wait_until_async(
        "statistics refused once the worker is dead",
        Duration::from_secs(5),
        || async { sa.stats().await.is_err().then_some(()) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let stopping = Instant::now();
    sa.stop().await;
    sb.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(2),
        "{:?}",
        stopping.elapsed()
    );
    let (sa, sb) = talking_pair(610.0, 990.0).await;
    let fresh = MediaWorker::shared().worker_pid().expect("a fresh worker");
    assert_ne!(fresh, pid);

    // The sockets reserved for the SDP go to the worker themselves, so their ports are
    // never free for another process: not while a session starts on them, nor while a
    // party moves from its session into a conference. A watcher tries to take them
    // all along.
    let a_port = sb.plan().audio.as_ref().unwrap().remote_rtp.port();
    let c = settings(700.0);
    let c_ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    let c_port = c_ports.audio_rtp;
    let watcher = PortWatcher::start(vec![a_port, a_port + 1, c_port, c_port + 1]);
    let (c_plan, c_ports) = {
        let o = SdpSession::new(LOCALHOST).offer(&LocalMedia::for_call(&c, &c_ports));
        let d_ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
        let (ans, _) = SdpSession::new(LOCALHOST)
            .answer(&o, &LocalMedia::for_call(&settings(800.0), &d_ports))
            .unwrap();
        (negotiated_from_answer(&o, &ans).unwrap(), c_ports)
    };
    let sc = RemoteSession::start(&c_plan, &c, c_ports).await.unwrap();
    let mix = RemoteConference::start(&settings(610.0)).await.unwrap();
    mix.add_leg_from_session(&sa.plan().clone(), &sa)
        .await
        .expect("A's party moves into the mix");
    // The session is over (the worker ended it): stopping it again does nothing.
    sa.stop().await;
    // B still hears A's side, now through the mix, on the ports B already sends to.
    let through_the_mix = testbed::wait_until_async(
        "B hearing A's side through the mix, its one leg",
        Duration::from_secs(15),
        || async {
            let heard = hears(&sb.stats().await.unwrap(), 610.0);
            (heard && mix.stats().await.is_ok_and(|m| m.legs.len() == 1)).then_some(())
        },
    )
    .await;
    if let Err(e) = through_the_mix {
        panic!("{e}: B lost A's side: {:?}", sb.stats().await.unwrap());
    }
    let taken = watcher.stop();
    assert!(taken.is_empty(), "ports free for a moment: {taken:?}");
    mix.stop().await;
    sc.stop().await;
    sb.stop().await;
    assert!(!MediaWorker::shared().is_running());
}

/// Our plan toward a peer and the peer's plan toward us, with both reservations.
fn negotiate(
    ours: &MediaSettings,
    theirs: &MediaSettings,
) -> (Negotiated, AllocatedPorts, Negotiated, AllocatedPorts) {
    let our_ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    let their_ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    let o = SdpSession::new(LOCALHOST).offer(&LocalMedia::for_call(ours, &our_ports));
    let (ans, their_plan) = SdpSession::new(LOCALHOST)
        .answer(&o, &LocalMedia::for_call(theirs, &their_ports))
        .unwrap();
    let our_plan = negotiated_from_answer(&o, &ans).unwrap();
    (our_plan, our_ports, their_plan, their_ports)
}

fn with_direction(plan: &Negotiated, direction: Direction) -> Negotiated {
    let mut plan = plan.clone();
    if let Some(audio) = plan.audio.as_mut() {
        audio.direction = direction;
    }
    plan
}

/// Packets a peer session received so far.
async fn received(peer: &RemoteSession) -> u64 {
    peer.stats()
        .await
        .unwrap()
        .audio
        .map_or(0, |a| a.packets_received)
}

/// Nothing more reaches `peer` for over a second.
async fn peer_gets_nothing(peer: &RemoteSession, what: &str) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = received(peer).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = received(peer).await;
    assert!(after <= before, "{what}: {before} -> {after} packets");
}

/// `peer` hears each of `tones` within 15 s.
async fn peer_hears(peer: &RemoteSession, tones: &[f64], what: &str) {
    let heard = testbed::wait_until_async(what, Duration::from_secs(15), || async {
        let stats = peer.stats().await.unwrap();
        tones.iter().all(|hz| hears(&stats, *hz)).then_some(())
    })
    .await;
    if let Err(e) = heard {
        panic!("{e}: {:?}", peer.stats().await.unwrap());
    }
}

fn entry(calls: &Calls) -> Arc<CallEntry> {
    Arc::new(calls.add(
        TalkerCallKind::Referred,
        TalkerCallState::Connected,
        "update-test",
        "sip:peer@example.test",
        None,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calls_media_follows_new_plans_through_the_agents_api() {
    let _serial = SERIAL.lock().await;
    let calls = Calls::default();
    let (ours, theirs) = (settings(440.0), settings(660.0));

    // An ordinary call's media (LegMedia): held by the peer, then resumed.
    let (plan, ports, peer_plan, peer_ports) = negotiate(&ours, &theirs);
    let peer = RemoteSession::start(&peer_plan, &theirs, peer_ports)
        .await
        .unwrap();
    let leg = hub::start(&plan, &ours, ports, entry(&calls))
        .await
        .unwrap();
    peer_hears(&peer, &[440.0], "the peer hears our tone").await;
    leg.update(&with_direction(&plan, Direction::RecvOnly))
        .await
        .unwrap();
    peer_gets_nothing(&peer, "held (recvonly)").await;
    let heard_here = testbed::wait_until_async(
        "our side still hearing the held peer, and saying it is recvonly",
        Duration::from_secs(15),
        || async {
            calls.list().into_iter().find_map(|c| {
                c.media.filter(|m| {
                    hears(m, 660.0)
                        && m.audio.as_ref().map(|a| a.direction) == Some(Direction::RecvOnly)
                })
            })
        },
    )
    .await;
    if let Err(e) = heard_here {
        panic!("{e}: {:?}", calls.list());
    }
    leg.update(&plan).await.unwrap();
    let before = received(&peer).await;
    testbed::wait_until_async(
        "packets reach the peer again once resumed",
        Duration::from_secs(10),
        || async { (received(&peer).await > before + 10).then_some(()) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    hub::stop(leg).await;
    peer.stop().await;

    // A referred call's parties (MediaHub): the first held as a plain session, then both
    // mixed and the first held as a conference leg while the second hears the mix.
    let media = MediaHub::new(ours.clone());
    let (plan1, ports1, p1_plan, p1_ports) = negotiate(&ours, &settings(550.0));
    let (plan2, ports2, p2_plan, p2_ports) = negotiate(&ours, &settings(770.0));
    let party1 = RemoteSession::start(&p1_plan, &settings(550.0), p1_ports)
        .await
        .unwrap();
    let party2 = RemoteSession::start(&p2_plan, &settings(770.0), p2_ports)
        .await
        .unwrap();
    let (entry1, entry2) = (entry(&calls), entry(&calls));
    let (key1, key2) = (entry1.id(), entry2.id());
    media.attach(&plan1, ports1, entry1).await.unwrap();
    peer_hears(&party1, &[440.0], "party 1 hears us").await;
    media
        .update(key1, &with_direction(&plan1, Direction::Inactive))
        .await
        .unwrap();
    peer_gets_nothing(&party1, "party 1 on hold (inactive)").await;
    assert!(
        media.update(key2, &plan2).await.is_err(),
        "no such party yet"
    );
    // A second party joins while the first is on hold: the held party's leg carries
    // nothing until it resumes.
    media.attach(&plan2, ports2, entry2).await.unwrap();
    peer_hears(&party2, &[440.0], "party 2 hears us").await;
    peer_gets_nothing(&party1, "party 1 still on hold, in the mix").await;
    assert!(
        !hears(&party2.stats().await.unwrap(), 550.0),
        "party 2 hears the held party"
    );
    media.update(key1, &plan1).await.unwrap();
    peer_hears(&party2, &[440.0, 550.0], "party 2 hears us and party 1").await;
    media
        .update(key1, &with_direction(&plan1, Direction::RecvOnly))
        .await
        .unwrap();
    peer_gets_nothing(&party1, "party 1's leg on hold (recvonly)").await;
    peer_hears(
        &party2,
        &[440.0, 550.0],
        "party 2 still hears the whole mix",
    )
    .await;
    media.update(key1, &plan1).await.unwrap();
    peer_hears(&party1, &[440.0, 770.0], "party 1 hears the mix again").await;
    media.detach(key1).await;
    media.detach(key2).await;
    party1.stop().await;
    party2.stop().await;
    assert!(!MediaWorker::shared().is_running());
}

/// Tries to bind some UDP ports on loopback, over and over, until stopped.
struct PortWatcher {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<u16>>,
}

impl PortWatcher {
    fn start(ports: Vec<u16>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut taken = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                for port in &ports {
                    if UdpSocket::bind((LOCALHOST, *port)).is_ok() {
                        taken.push(*port);
                    }
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            taken
        });
        Self { stop, thread }
    }

    /// The ports it could bind, each time it could.
    fn stop(self) -> Vec<u16> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}
