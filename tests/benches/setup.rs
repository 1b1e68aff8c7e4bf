//! Click-to-dial set-up time over HTTPS against plain HTTP to the matcher
//! (issue 16), and against a direct call between the same two talkers through
//! the same server (issues 5 and 7).
//!
//! Two demo households run on loopback at once (no mDNS: discovery is off
//! there): one whose matcher serves HTTPS with the household's own CA, as every
//! household does, and one started with `MatcherTransport::InsecureHttp`
//! (`matcher --insecure-http`: the dialer and the agents get an `http://` URL).
//! In each, Alice's TV calls Bob's phone on `family.example`, which answers
//! Alice at once. Each round places, in turn:
//!
//! - **click-to-dial over HTTPS** and **over plain HTTP** (their order swapped
//!   every round): the dialer's own matcher client sends `POST /v1/calls` over
//!   the connection its earlier requests opened (warm: no TCP or TLS handshake
//!   in the timed request, as in the dialer), and the matcher has the server
//!   connect the TV (control INVITE naming Bob), which calls Bob;
//! - **direct**, in the HTTPS household: the TV's own dialing code
//!   (`talker_agent::referred_call`) with the TV's account and media, run in
//!   this process, INVITEs Bob through the same server.
//!
//! Both households run the whole time, rather than one after the other, so
//! that the two transports are measured side by side under the same load (the
//! two cores are shared with whatever else runs, which drifts over minutes);
//! an idle household costs a heartbeat per talker every 5 s.
//!
//! Every call is timed from the request to Bob's log lines: `incoming call
//! ringing` (the callee rings) and `receiving media` (the first audio left his
//! jitter buffer). Run (release binaries next to the bench, in a private
//! network namespace for good measure):
//!
//! ```text
//! cargo build --release --bins
//! SETUP_BENCH_ROUNDS=100 unshare --net -- sh -c 'ip link set lo up && cargo bench -p splitdial-e2e --bench setup --offline'
//! ```
//!
//! `SETUP_BENCH_ROUNDS=N` sets the calls of each kind (15); `SETUP_BENCH_LOGS=FILE` prints each
//! click-to-dial request's time and writes every program's log, of both households, to FILE at
//! the end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use household::{Household, HouseholdSpec, MatcherTransport, Placement};
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
/// The matcher's call states, in the order a call goes through them.
const STATES: [&str; 5] = [
    "matching",
    "dialing_talker",
    "talker_answered",
    "callee_ringing",
    "connected",
];

/// When Bob's agent logged what we wait for, in ms after `t0`.
#[derive(Debug, Clone, Copy)]
struct SetUp {
    ringing_ms: f64,
    media_ms: f64,
}

/// How one step's time is read from a [`SetUp`].
type StepTime = fn(&SetUp) -> f64;

/// The two steps every table shows.
const STEPS: [(&str, StepTime); 2] = [
    ("callee ringing", |s| s.ringing_ms),
    ("media flowing", |s| s.media_ms),
];

/// The matcher's states of one click-to-dial call, in ms after the request
/// (its events carry millisecond times).
type Steps = Vec<(String, f64)>;

/// One household and the dialer's client of its matcher, with what its calls measured.
struct ClickToDial {
    /// `HTTPS` or `plain HTTP`.
    transport: &'static str,
    home: Household,
    dialer: MatcherClient,
    set_ups: Vec<SetUp>,
    steps: Vec<Steps>,
}

impl ClickToDial {
    /// Starts the demo household with its matcher on `transport`, and a dialer's client of it
    /// whose connection is open (the request a dialer makes before it places a call).
    fn start(transport: MatcherTransport, runtime: &tokio::runtime::Runtime) -> Self {
        let started = Instant::now();
        let mut spec = HouseholdSpec::demo();
        spec.matcher_transport = transport;
        let home = Household::start(spec, Placement::Loopback).expect(
            "start the demo household (binaries built with `cargo build --release --bins`?)",
        );
        let transport = match transport {
            MatcherTransport::Https => "HTTPS",
            MatcherTransport::InsecureHttp => "plain HTTP",
        };
        eprintln!(
            "household ({transport}, {}) up in {:?}",
            home.matcher_url(),
            started.elapsed()
        );
        let token = Secret::new(home.token("alice").expect("alice's API token"));
        let dialer = MatcherClient::new(&home.matcher_url(), token, &home.matcher_trust()).unwrap();
        runtime
            .block_on(dialer.routes("bob", &[CALLER.to_owned()], false))
            .unwrap();
        Self {
            transport,
            home,
            dialer,
            set_ups: Vec::new(),
            steps: Vec::new(),
        }
    }

    /// One timed call, kept.
    fn measure(&mut self, runtime: &tokio::runtime::Runtime) {
        let (set_up, steps) = click_to_dial(self.transport, &self.home, runtime, &self.dialer);
        self.set_ups.push(set_up);
        self.steps.push(steps);
    }

    /// The p50 of `state` over the calls, when the matcher reported it.
    fn state_p50(&self, state: &str) -> Option<f64> {
        let at: Vec<f64> = self
            .steps
            .iter()
            .filter_map(|s| s.iter().find(|(name, _)| name == state).map(|(_, ms)| *ms))
            .collect();
        (!at.is_empty()).then(|| percentile(&at, 50))
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("setup: bench");
        return;
    }
    splitdial_tls::install_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut https = ClickToDial::start(MatcherTransport::Https, &runtime);
    let mut plain = ClickToDial::start(MatcherTransport::InsecureHttp, &runtime);
    let direct = runtime.block_on(DirectCaller::start(&https.home));

    // One of each first, not counted: caches, first GStreamer pipeline.
    click_to_dial(https.transport, &https.home, &runtime, &https.dialer);
    click_to_dial(plain.transport, &plain.home, &runtime, &plain.dialer);
    runtime.block_on(direct.call(&https.home));
    let rounds = std::env::var("SETUP_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(ROUNDS);
    let mut direct_set_ups = Vec::new();
    for round in 0..rounds {
        // Neither transport always follows the direct call.
        let (first, second) = if round % 2 == 0 {
            (&mut https, &mut plain)
        } else {
            (&mut plain, &mut https)
        };
        settle();
        first.measure(&runtime);
        settle();
        second.measure(&runtime);
        settle();
        direct_set_ups.push(runtime.block_on(direct.call(&https.home)));
    }
    direct.stop();
    if let Some(path) = std::env::var_os("SETUP_BENCH_LOGS") {
        // Every program's log, to line each call's steps up against the request times above.
        let logs = [&https, &plain]
            .iter()
            .map(|c| {
                format!(
                    "===== household, matcher on {}\n{}",
                    c.transport,
                    c.home.logs()
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&path, logs).unwrap();
    }
    print_tables(rounds, &https, &plain, &direct_set_ups);
    https.home.shutdown();
    plain.home.shutdown();
}

/// The three tables: HTTPS against plain HTTP, HTTPS against the direct call, and the
/// matcher's states under each transport.
fn print_tables(rounds: usize, https: &ClickToDial, plain: &ClickToDial, direct: &[SetUp]) {
    println!("click-to-dial over HTTPS vs plain HTTP, {rounds} calls each (ms from the request)");
    compare(&https.set_ups, "HTTPS", &plain.set_ups, "plain HTTP");
    println!();
    println!("click-to-dial (HTTPS) vs direct call, {rounds} calls each (ms from the request)");
    compare(&https.set_ups, "click-to-dial", direct, "direct");
    println!();
    println!("click-to-dial, the matcher's states (ms from the request, p50 of {rounds})");
    println!("| state | HTTPS p50 | plain HTTP p50 |");
    println!("|---|---|---|");
    for state in STATES {
        if let (Some(a), Some(b)) = (https.state_p50(state), plain.state_p50(state)) {
            println!("| {state} | {a:.1} | {b:.1} |");
        }
    }
}

/// One table of `a` against `b`: p50 and p90 of each step, and the ratio of the p50s.
fn compare(a: &[SetUp], a_name: &str, b: &[SetUp], b_name: &str) {
    println!("| step | {a_name} p50 | p90 | {b_name} p50 | p90 | ratio of p50 |");
    println!("|---|---|---|---|---|---|");
    for (step, pick) in STEPS {
        let a: Vec<f64> = a.iter().map(pick).collect();
        let b: Vec<f64> = b.iter().map(pick).collect();
        let (a50, a90, b50, b90) = (
            percentile(&a, 50),
            percentile(&a, 90),
            percentile(&b, 50),
            percentile(&b, 90),
        );
        println!(
            "| {step} | {a50:.1} | {a90:.1} | {b50:.1} | {b90:.1} | {:.2}× |",
            a50 / b50
        );
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
    transport: &str,
    home: &Household,
    runtime: &tokio::runtime::Runtime,
    dialer: &MatcherClient,
) -> (SetUp, Steps) {
    let mark = callee_log_len(home);
    let t0 = wall_clock();
    if std::env::var_os("SETUP_BENCH_LOGS").is_some() {
        eprintln!("click-to-dial ({transport}) request at {t0:.6}");
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
