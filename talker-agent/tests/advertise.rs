//! The agent's mDNS advertisement across a simulated LAN (`testbed::Lan`): a
//! browser on one host sees the talker advertised from another with the right
//! TXT record, follows its idle/busy state as calls come and go, and sees it
//! leave after `shutdown`. Everything mDNS runs inside the LAN's namespaces:
//! each side runs on a thread that joined its host's namespace, with a
//! current-thread runtime, so every thread it starts (mdns-sd's daemon) and
//! every socket stays there.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a panic is the failure report.

use discovery::{
    Browser, BrowserConfig, InterfaceSelection, Media, TalkerEvent, TalkerKind, TalkerState,
};
use splitdial_api::{TalkerCallKind, TalkerCallState};
use std::net::IpAddr;
use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use talker_agent::advertise::Advertising;
use talker_agent::calls::Calls;
use talker_agent::config::Config;
use testbed::{Lan, LanHost};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const TALKER: &str = "tv-1";
const PORT: u16 = 8480;

/// Runs `body` on a new thread inside `host`'s network namespace, on a
/// current-thread tokio runtime.
fn in_host<F, Fut>(host: &LanHost, body: F) -> std::thread::JoinHandle<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let name = format!("in-{}", host.name());
    host.run_in(move || {
        // Started from a thread inside the namespace, so it is inside too.
        std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(body());
            })
            .unwrap()
    })
    .expect("join the host's namespace")
}

enum Command {
    /// Start (true) or end (false) an ordinary call, as the call handlers do.
    Busy(bool),
    /// Shut the advertisement down; reply when done.
    Shutdown(std_mpsc::Sender<Duration>),
}

fn wait_for(
    events: &std_mpsc::Receiver<TalkerEvent>,
    what: &str,
    within: Duration,
    mut accept: impl FnMut(&TalkerEvent) -> bool,
) -> TalkerEvent {
    testbed::wait_until(what, within, || {
        // Everything that arrived; an event that is not the one awaited is only noted.
        while let Ok(event) = events.try_recv() {
            if accept(&event) {
                return Some(event);
            }
            eprintln!("(passing over {event:?})");
        }
        None
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn the_browser_sees_the_talker_its_state_and_its_goodbye() {
    testbed::require_root();
    let lan = Lan::with_hosts(["tv", "dialer"]).expect("build LAN (needs root)");

    // The browser, on the dialer host.
    let (event_tx, events) = std_mpsc::channel();
    let stop_browser = CancellationToken::new();
    let browser_thread = {
        let stop = stop_browser.clone();
        in_host(lan.host("dialer"), move || async move {
            let mut config = BrowserConfig::new(InterfaceSelection::named(["eth0"]));
            config.verify_interval = None;
            let mut browser = Browser::start(config).unwrap();
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    event = browser.next_event() => match event {
                        Some(event) => { let _ = event_tx.send(event); }
                        None => break,
                    },
                }
            }
            let _ = browser.shutdown().await;
        })
    };

    // The advertising talker, on the tv host, its state driven by real call entries.
    let config = Config::parse(
        r#"
name = "Living room TV"
kind = "tv"
media = ["audio", "video"]
state_dir = "/nonexistent"

[[accounts]]
server = "home.example"
proxy = "10.77.0.9:5060"
user = "alice"
password = "pw"

[[accounts]]
server = "pbx.example.com"
proxy = "10.77.0.9:5070"
user = "tv"
password = "pw"

[[accounts]]
server = "home.example"
proxy = "10.77.0.9:5060"
user = "bob"
password = "pw"

[discovery]
interfaces = ["eth0"]

[status]
listen = "0.0.0.0:8480"
"#,
        Path::new("tv.toml"),
    )
    .unwrap();
    let (commands, mut command_rx) = mpsc::unbounded_channel::<Command>();
    let talker_thread = in_host(lan.host("tv"), move || async move {
        let calls = Calls::default();
        let advertising = Advertising::start(&config, TALKER, PORT, calls.busy()).unwrap();
        assert!(advertising.is_active());
        assert_eq!(
            advertising.fullname(),
            Some("Living room TV._splitdial._tcp.local.")
        );
        let mut call = None;
        while let Some(command) = command_rx.recv().await {
            match command {
                Command::Busy(true) => {
                    call = Some(calls.add(
                        TalkerCallKind::Incoming,
                        TalkerCallState::Ringing,
                        "call-1@x",
                        "sip:carol@home.example",
                        None,
                    ));
                }
                Command::Busy(false) => call = None,
                Command::Shutdown(done) => {
                    let start = Instant::now();
                    advertising.shutdown().await;
                    let _ = done.send(start.elapsed());
                    break;
                }
            }
        }
        drop(call);
    });

    let is_tv = |e: &TalkerEvent| e.talker().id.as_str() == TALKER;
    let started = Instant::now();
    let added = wait_for(&events, "Added", Duration::from_secs(20), |e| {
        matches!(e, TalkerEvent::Added(_)) && is_tv(e)
    });
    let appeared = started.elapsed();
    let ad = added.talker();
    assert_eq!(ad.instance, "Living room TV");
    assert_eq!(ad.kind, TalkerKind::Tv);
    assert_eq!(ad.media, Media::Video);
    assert_eq!(ad.servers, ["home.example", "pbx.example.com"]);
    assert_eq!(ad.state, TalkerState::Idle);
    assert_eq!(ad.port, PORT);
    let tv_ip = IpAddr::V4(lan.host("tv").ip());
    assert!(ad.addresses.contains(&tv_ip), "{:?}", ad.addresses);
    assert!(
        ad.addresses.iter().all(|a| !a.is_loopback()),
        "advertised beyond eth0: {:?}",
        ad.addresses
    );

    // A call comes: busy. It ends: idle again.
    commands.send(Command::Busy(true)).unwrap();
    wait_for(
        &events,
        "busy",
        Duration::from_secs(15),
        |e| matches!(e, TalkerEvent::Updated(ad) if ad.id.as_str() == TALKER && ad.state == TalkerState::Busy),
    );
    commands.send(Command::Busy(false)).unwrap();
    let idle = wait_for(
        &events,
        "idle again",
        Duration::from_secs(15),
        |e| matches!(e, TalkerEvent::Updated(ad) if ad.id.as_str() == TALKER && ad.state == TalkerState::Idle),
    );
    assert_eq!(idle.talker().servers, ["home.example", "pbx.example.com"]);

    // Shutdown sends goodbyes: the browser drops the talker within seconds
    // (no verification runs in this browser, so only a goodbye can do it).
    let (done_tx, done) = std_mpsc::channel();
    commands.send(Command::Shutdown(done_tx)).unwrap();
    let shutdown_took = done.recv_timeout(Duration::from_secs(15)).unwrap();
    let removed_at = Instant::now();
    wait_for(&events, "Removed", Duration::from_secs(10), |e| {
        matches!(e, TalkerEvent::Removed(_)) && is_tv(e)
    });
    eprintln!(
        "appeared after {appeared:?}; shutdown took {shutdown_took:?}; removed {:?} after it",
        removed_at.elapsed()
    );
    talker_thread.join().unwrap();
    stop_browser.cancel();
    browser_thread.join().unwrap();
}
