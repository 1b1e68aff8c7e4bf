//! The agent's media worker end to end: two sessions run in the real `talker-media` process
//! (found beside the test binary's build directory), each hears the other's tone through the
//! worker's statistics, and the worker exits once the last session stops. Needs the workspace
//! built (`cargo build --workspace --all-targets`) and GStreamer installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use talker_agent::media::worker::{MediaWorker, worker_binary};
use talker_agent::media::{
    AllocatedPorts, AudioSink, AudioSource, MediaSettings, MediaStats, RemoteSession, answer,
    negotiated_from_answer, offer,
};

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
    let o = offer(&a, &a_ports, false).unwrap();
    let (ans, b_plan) = answer(&o, &b, &b_ports).unwrap();
    let a_plan = negotiated_from_answer(&o, &ans).unwrap();
    let sa = RemoteSession::start(&a_plan, &a, a_ports).await.unwrap();
    let sb = RemoteSession::start(&b_plan, &b, b_ports).await.unwrap();
    (sa, sb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_run_in_the_worker_which_exits_when_the_media_ends() {
    let binary = worker_binary().expect("talker-media built: cargo build --workspace");
    assert!(binary.is_file(), "{}", binary.display());
    let (a, b) = (settings(520.0), settings(880.0));
    let a_ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    let b_ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    let o = offer(&a, &a_ports, false).unwrap();
    let (ans, b_plan) = answer(&o, &b, &b_ports).unwrap();
    let a_plan = negotiated_from_answer(&o, &ans).unwrap();
    assert!(!MediaWorker::shared().is_running());

    let sa = RemoteSession::start(&a_plan, &a, a_ports).await.unwrap();
    let pid = MediaWorker::shared()
        .worker_pid()
        .expect("a worker process");
    let sb = RemoteSession::start(&b_plan, &b, b_ports).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (at_a, at_b) = (sa.stats().await.unwrap(), sb.stats().await.unwrap());
        if hears(&at_a, 880.0) && hears(&at_b, 520.0) {
            let sent = at_a.audio.as_ref().map_or(0, |r| r.packets_sent);
            assert!(sent > 0, "{at_a:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no tones through the worker: A {at_a:?} B {at_b:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

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
    let deadline = Instant::now() + Duration::from_secs(5);
    while process.exists() {
        assert!(Instant::now() < deadline, "worker {pid} did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A worker that dies takes only the media: requests fail at once, stopping is
    // prompt, and the next call gets a fresh worker.
    let (sa, sb) = talking_pair(610.0, 990.0).await;
    let pid = MediaWorker::shared().worker_pid().expect("a new worker");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while sa.stats().await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "statistics still served by a dead worker"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    sa.stop().await;
    sb.stop().await;
}
