//! Click-to-dial set-up time against a direct call between the same two
//! talkers through the same server (issue 5 and 7 measurements).
//!
//! The demo household runs on loopback (no mDNS: discovery is off there).
//! Alice's TV calls Bob's phone on `family.example`, which answers Alice at
//! once, two ways in turn:
//!
//! - **click-to-dial**: the dialer's own matcher client sends `POST /v1/calls`
//!   (over the connection its earlier requests opened), and the matcher has the
//!   server connect the TV (control INVITE naming Bob), which calls Bob;
//! - **direct**: the TV's own dialing code (`talker_agent::referred_call`) with
//!   the TV's account and media, run in this process, INVITEs Bob through the
//!   same server.
//!
//! Both are timed from the request to Bob's log lines: `incoming call ringing`
//! (the callee rings) and `receiving media` (the first audio left his jitter
//! buffer). Run (release binaries next to the bench, in a private network
//! namespace for good measure):
//!
//! ```text
//! cargo build --release --bins
//! unshare --net -- sh -c 'ip link set lo up && cargo bench -p splitdial-e2e --bench setup'
//! ```
//!
//! `SETUP_BENCH_ROUNDS=N` sets the calls of each kind (15); `SETUP_BENCH_LOGS=FILE` prints each
//! click-to-dial request's time and writes every program's log to FILE at the end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use household::{Household, HouseholdSpec, Placement};
use rsipstack::dialog::dialog_layer::DialogLayer;
use splitdial_sip::endpoint::{EndpointConfig, bind};
use splitdial_tui::config::Secret;
use splitdial_tui::matcher_client::MatcherClient;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use talker_agent::media::hub::MediaHub;
use talker_agent::referred_call::{DialAccount, Dialer};
use tokio_util::sync::CancellationToken;

/// Calls of each kind, unless `SETUP_BENCH_ROUNDS` says otherwise.
const ROUNDS: usize = 15;
/// Pause before each timed call (see [`settle`]).
const SETTLE: Duration = Duration::from_millis(250);
const CALLER: &str = "tv";
const CALLEE: &str = "bob-phone";
const TARGET: &str = "sip:bob@family.example";

/// When Bob's agent logged what we wait for, in ms after `t0`.
#[derive(Debug, Clone, Copy)]
struct SetUp {
    ringing_ms: f64,
    media_ms: f64,
}

/// The matcher's states of one click-to-dial call, in ms after the request
/// (its events carry millisecond times).
type Steps = Vec<(String, f64)>;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("setup: bench");
        return;
    }
    let started = Instant::now();
    let home = Household::start(HouseholdSpec::demo(), Placement::Loopback)
        .expect("start the demo household (binaries built with `cargo build --release --bins`?)");
    eprintln!("household up in {:?}", started.elapsed());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let direct = runtime.block_on(DirectCaller::start(&home));
    let token = Secret::new(home.token("alice").expect("alice's API token"));
    let dialer = MatcherClient::new(&home.matcher_url(), token, &home.matcher_trust()).unwrap();
    // What the dialer asks before a call can be placed: it opens the connection the call reuses.
    runtime
        .block_on(dialer.routes("bob", &[CALLER.to_owned()], false))
        .unwrap();

    let (mut click, mut plain, mut steps) = (Vec::new(), Vec::new(), Vec::new());
    // One of each first, not counted: caches, first GStreamer pipeline.
    click_to_dial(&home, &runtime, &dialer);
    runtime.block_on(direct.call(&home));
    let rounds = std::env::var("SETUP_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(ROUNDS);
    for _ in 0..rounds {
        settle();
        let (set_up, call_steps) = click_to_dial(&home, &runtime, &dialer);
        click.push(set_up);
        steps.push(call_steps);
        settle();
        plain.push(runtime.block_on(direct.call(&home)));
    }
    direct.stop();
    if let Some(path) = std::env::var_os("SETUP_BENCH_LOGS") {
        // Every program's log, to line each call's steps up against the request times above.
        std::fs::write(&path, home.logs()).unwrap();
    }
    home.shutdown();

    println!("click-to-dial vs direct call, {rounds} calls each (ms from the request)");
    println!("| step | click-to-dial p50 | p90 | direct p50 | p90 | ratio of p50 |");
    println!("|---|---|---|---|---|---|");
    for (step, pick) in [
        (
            "callee ringing",
            (|s: &SetUp| s.ringing_ms) as fn(&SetUp) -> f64,
        ),
        ("media flowing", |s: &SetUp| s.media_ms),
    ] {
        let c: Vec<f64> = click.iter().map(pick).collect();
        let d: Vec<f64> = plain.iter().map(pick).collect();
        let (c50, c90, d50, d90) = (
            percentile(&c, 50),
            percentile(&c, 90),
            percentile(&d, 50),
            percentile(&d, 90),
        );
        println!(
            "| {step} | {c50:.1} | {c90:.1} | {d50:.1} | {d90:.1} | {:.2}× |",
            c50 / d50
        );
    }

    println!();
    println!("click-to-dial, the matcher's states (ms from the request, p50 of {rounds})");
    println!("| state | p50 |");
    println!("|---|---|");
    for state in [
        "matching",
        "dialing_talker",
        "talker_answered",
        "callee_ringing",
        "connected",
    ] {
        let at: Vec<f64> = steps
            .iter()
            .filter_map(|s| s.iter().find(|(name, _)| name == state).map(|(_, ms)| *ms))
            .collect();
        if !at.is_empty() {
            println!("| {state} | {:.1} |", percentile(&at, 50));
        }
    }
}

/// A fixed pause before each timed call, which gives the last call's media workers time to
/// exit (they were gone within about 150 ms of the hang-up in the logs): a call placed in a
/// quiet home, not one sharing the two cores with the previous call's teardown.
fn settle() {
    std::thread::sleep(SETTLE);
}

fn percentile(values: &[f64], p: usize) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = (sorted.len() * p / 100).min(sorted.len() - 1);
    sorted[index]
}

/// One click-to-dial call as the dialer places it (its own matcher client, whose connection is
/// open from the dialer's earlier requests), timed, then hung up.
fn click_to_dial(
    home: &Household,
    runtime: &tokio::runtime::Runtime,
    dialer: &MatcherClient,
) -> (SetUp, Steps) {
    let mark = callee_log_len(home);
    let t0 = wall_clock();
    if std::env::var_os("SETUP_BENCH_LOGS").is_some() {
        eprintln!("click-to-dial request at {t0:.6}");
    }
    let placed = runtime
        .block_on(dialer.place_call("bob", &[CALLER.to_owned()], false))
        .unwrap();
    let set_up = wait_set_up(home, mark, t0);
    let call = placed.call;
    runtime.block_on(dialer.hang_up(&call)).unwrap();
    home.wait_no_calls(CALLEE);
    home.wait_no_calls(CALLER);
    // The call is over: its event stream replays every state and closes.
    let events = home
        .matcher_request("alice", "GET", &format!("/v1/calls/{call}/events"), None)
        .unwrap();
    let steps = events
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<serde_json::Value>(data.trim()).ok())
        .filter_map(|e| {
            let at = e["at"].as_str().and_then(time_of_day)?;
            Some((e["state"].as_str()?.to_owned(), since_ms(at, t0)))
        })
        .collect();
    (set_up, steps)
}

/// The TV's dialing code with the TV's account and media, in this process.
struct DirectCaller {
    dialer: Arc<Dialer>,
    hub: Arc<MediaHub>,
    cancel: CancellationToken,
}

impl DirectCaller {
    async fn start(home: &Household) -> Self {
        let path = home.dir().join(format!("{CALLER}.toml"));
        let config = talker_agent::config::Config::load(&path).unwrap();
        let accounts: Vec<DialAccount> = config
            .accounts
            .iter()
            .enumerate()
            .map(|(i, a)| DialAccount::new(a, a.load_password(&path, i).unwrap()))
            .collect();
        let cancel = CancellationToken::new();
        let bound = bind(EndpointConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            user_agent: "setup-bench".into(),
            proxy: false,
            inspector: None,
            cancel: cancel.clone(),
            known_domains: accounts
                .iter()
                .map(|a| (a.domain.clone(), a.proxy))
                .collect(),
        })
        .await
        .unwrap();
        let dialogs = Arc::new(DialogLayer::new(bound.endpoint.inner.clone()));
        let mut incoming = bound.endpoint.incoming_transactions().unwrap();
        let endpoint = bound.endpoint;
        tokio::spawn(async move { endpoint.serve().await });
        // In-dialog requests (Bob's answers to our BYE come as responses; a BYE
        // from Bob would come here).
        let serving = dialogs.clone();
        tokio::spawn(async move {
            while let Some(mut tx) = incoming.recv().await {
                if let Some(mut dialog) = serving.match_dialog(&tx) {
                    let _ = dialog.handle(&mut tx).await;
                }
            }
        });
        let media = talker_agent::media::settings::from_config(&config, &path).unwrap();
        Self {
            dialer: Arc::new(Dialer {
                dialogs,
                accounts,
                local: bound.local,
                flows: bound.flows,
                media: media.clone(),
                calls: talker_agent::calls::Calls::default(),
            }),
            hub: MediaHub::new(media),
            cancel,
        }
    }

    /// One direct call, timed, then hung up.
    async fn call(&self, home: &Household) -> SetUp {
        let mark = callee_log_len(home);
        let t0 = wall_clock();
        let (progress, _reports) = tokio::sync::mpsc::unbounded_channel();
        let hang_up = CancellationToken::new();
        let call = tokio::spawn(self.dialer.clone().call(
            TARGET.to_owned(),
            None,
            progress,
            self.hub.clone(),
            hang_up.clone(),
        ));
        let set_up = tokio::task::block_in_place(|| wait_set_up(home, mark, t0));
        hang_up.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), call).await;
        tokio::task::block_in_place(|| home.wait_no_calls(CALLEE));
        set_up
    }

    fn stop(&self) {
        self.cancel.cancel();
    }
}

fn callee_log_len(home: &Household) -> usize {
    home.talker(CALLEE).unwrap().process.log().len()
}

/// Seconds since the epoch, now.
fn wall_clock() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Waits (at most 20 s, polling every 2 ms) for Bob's log, after byte `mark`,
/// to show the call ringing and then media arriving.
fn wait_set_up(home: &Household, mark: usize, t0: f64) -> SetUp {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = home.talker(CALLEE).unwrap().process.log();
        let new = log.get(mark..).unwrap_or_default();
        if let (Some(ringing), Some(media)) = (
            logged_at(new, "incoming call ringing"),
            logged_at(new, "receiving media"),
        ) {
            return SetUp {
                ringing_ms: since_ms(ringing, t0),
                media_ms: since_ms(media, t0),
            };
        }
        assert!(
            Instant::now() < deadline,
            "no set-up within 20 s:\n{}",
            home.logs()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Milliseconds from `t0` (epoch seconds) to a log time of day (seconds since
/// midnight UTC), across midnight too.
fn since_ms(time_of_day: f64, t0: f64) -> f64 {
    let t0_of_day = t0.rem_euclid(86_400.0);
    (time_of_day - t0_of_day).rem_euclid(86_400.0) * 1000.0
}

/// The UTC time of day (seconds) of the first log line containing `needle`.
/// Lines start with an RFC 3339 timestamp, maybe wrapped in ANSI colours.
fn logged_at(log: &str, needle: &str) -> Option<f64> {
    time_of_day(log.lines().find(|l| l.contains(needle))?)
}

/// The time of day (seconds since midnight UTC) of the first RFC 3339 UTC
/// timestamp in `text`.
fn time_of_day(text: &str) -> Option<f64> {
    let start = text.find('T')? + 1;
    let clock = text.get(start..)?.split('Z').next()?;
    let mut parts = clock.split(':');
    let hours: f64 = parts.next()?.parse().ok()?;
    let minutes: f64 = parts.next()?.parse().ok()?;
    let seconds: f64 = parts.next()?.parse().ok()?;
    Some(hours * 3600.0 + minutes * 60.0 + seconds)
}
