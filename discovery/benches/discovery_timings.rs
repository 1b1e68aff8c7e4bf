//! Discovery timings on the simulated LAN, ours (mdns-sd) and Avahi's as the
//! anchor: appear time, clean-removal time, crash-removal time, and 50 talkers
//! at once. Needs root (it builds its own namespaces):
//!
//! `cargo bench -p discovery --bench discovery_timings`
//!
//! Prints a Markdown table for docs/benchmarks.md.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::{BrowseLog, advertise, at_us, now_us};
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};
use testbed::{AvahiStack, Lan, Process, Spawn};

const ROUNDS: usize = 5;
const CRASH_ROUNDS: usize = 3;
const AVAHI_CRASH_CAP: Duration = Duration::from_secs(150);

struct Stats(Vec<f64>);

impl Stats {
    fn show(&self) -> String {
        if self.0.is_empty() {
            return "n/a".into();
        }
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        let median = v[v.len() / 2];
        format!(
            "{median:.0} ms (min {:.0}, max {:.0}, n={})",
            v[0],
            v[v.len() - 1],
            v.len()
        )
    }
}

fn ms(from_us: u128, to_us: u128) -> f64 {
    to_us.saturating_sub(from_us) as f64 / 1000.0
}

/// Waits for a line of `p`'s output matching `pred`; returns when it was seen (µs).
fn wait_line(p: &Process, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<u128> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if p.log().lines().any(&pred) {
            return Some(now_us());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

fn ours_single() -> (Stats, Stats, Stats) {
    let lan = Lan::with_hosts(["tv", "dialer"]).expect("LAN (needs root)");
    let mut browser = BrowseLog::start(lan.host("dialer"), &[]);
    let (mut appear, mut clean, mut crash) = (Stats(vec![]), Stats(vec![]), Stats(vec![]));
    for round in 0..ROUNDS {
        let id = format!("tv-{round}");
        let from = browser.events().len();
        let t0 = now_us();
        let mut tv = advertise(lan.host("tv"), &id, &format!("TV {round}"), &[]);
        let (_, added) = browser
            .wait_for("added", &id, from, Duration::from_secs(20))
            .unwrap();
        appear.0.push(ms(t0, at_us(&added)));
        std::thread::sleep(Duration::from_millis(1500));
        let from = browser.events().len();
        let t1 = now_us();
        tv.signal(Signal::SIGTERM).unwrap();
        let (_, removed) = browser
            .wait_for("removed", &id, from, Duration::from_secs(20))
            .unwrap();
        clean.0.push(ms(t1, at_us(&removed)));
        let _ = tv.stop(Duration::from_secs(5));
    }
    for round in 0..CRASH_ROUNDS {
        let id = format!("crash-{round}");
        let from = browser.events().len();
        let mut tv = advertise(lan.host("tv"), &id, &format!("Crash {round}"), &[]);
        browser
            .wait_for("added", &id, from, Duration::from_secs(20))
            .unwrap();
        // Land the crash at a different point of the 4 s verify cycle each time.
        std::thread::sleep(Duration::from_millis(1000 + 1300 * round as u64));
        let from = browser.events().len();
        let t2 = now_us();
        tv.kill().unwrap();
        let (_, removed) = browser
            .wait_for("removed", &id, from, Duration::from_secs(60))
            .unwrap();
        crash.0.push(ms(t2, at_us(&removed)));
    }
    (appear, clean, crash)
}

fn ours_fifty() -> (f64, f64) {
    let mut names: Vec<String> = (0..10).map(|i| format!("h{i}")).collect();
    names.push("dialer".into());
    let lan = Lan::with_hosts(names).expect("LAN");
    let mut browser = BrowseLog::start(lan.host("dialer"), &[]);
    let t0 = now_us();
    let mut talkers = Vec::new();
    for i in 0..50 {
        let host = lan.host(&format!("h{}", i % 10));
        talkers.push(
            host.spawn(
                Spawn::new(common::ADVERTISE)
                    .label(format!("adv{i}"))
                    .args(["--interfaces", "eth0", "--id", &format!("t{i}")])
                    .args(["--instance", &format!("Talker {i}")]),
            )
            .unwrap(),
        );
    }
    let mut times = Vec::new();
    for i in 0..50 {
        let (_, e) = browser
            .wait_for("added", &format!("t{i}"), 0, Duration::from_secs(60))
            .unwrap();
        times.push(ms(t0, at_us(&e)));
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[times.len() - 1])
}

fn publish(stack: &AvahiStack, lan: &Lan, host: &str, instance: &str, id: &str) -> Process {
    stack
        .spawn(
            lan.host(host),
            Spawn::new("avahi-publish-service")
                .label("avahi-publish")
                .args([
                    instance,
                    "_splitdial._tcp",
                    "8480",
                    "txtvers=1",
                    &format!("id={id}"),
                    "kind=tv",
                    "media=audio",
                    "state=idle",
                ]),
        )
        .expect("avahi-publish-service starts")
}

fn avahi_browse(stack: &AvahiStack, lan: &Lan, host: &str) -> Process {
    stack
        .spawn(
            lan.host(host),
            Spawn::new("avahi-browse")
                .label("avahi-browse")
                .args(["-r", "-p", "_splitdial._tcp"]),
        )
        .expect("avahi-browse starts")
}

fn resolved(instance: &str) -> impl Fn(&str) -> bool + '_ {
    move |l: &str| l.starts_with("=;") && l.contains(&format!(";{instance};"))
}

fn gone(instance: &str) -> impl Fn(&str) -> bool + '_ {
    move |l: &str| l.starts_with("-;") && l.contains(&format!(";{instance};"))
}

fn avahi_single() -> (Stats, Stats, Stats) {
    let lan = Lan::with_hosts(["tv", "dialer"]).expect("LAN");
    let tv_stack = AvahiStack::start(lan.host("tv")).expect("Avahi on the LAN");
    let dialer_stack = AvahiStack::start(lan.host("dialer")).expect("Avahi on the LAN");
    let browse = avahi_browse(&dialer_stack, &lan, "dialer");
    std::thread::sleep(Duration::from_millis(500));
    let (mut appear, mut clean, mut crash) = (Stats(vec![]), Stats(vec![]), Stats(vec![]));
    for round in 0..ROUNDS {
        let instance = format!("AvahiTV{round}");
        let t0 = now_us();
        let mut p = publish(&tv_stack, &lan, "tv", &instance, &format!("a{round}"));
        let seen = wait_line(&browse, Duration::from_secs(20), resolved(&instance)).unwrap();
        appear.0.push(ms(t0, seen));
        std::thread::sleep(Duration::from_millis(1500));
        let t1 = now_us();
        p.signal(Signal::SIGTERM).unwrap();
        let seen = wait_line(&browse, Duration::from_secs(20), gone(&instance)).unwrap();
        clean.0.push(ms(t1, seen));
        let _ = p.stop(Duration::from_secs(5));
    }
    // Crash: the whole Avahi stack of the publishing host is killed at once.
    drop(tv_stack);
    let crash_stack = AvahiStack::start(lan.host("tv")).expect("Avahi on the LAN");
    let instance = "AvahiCrash";
    let p = publish(&crash_stack, &lan, "tv", instance, "crash");
    wait_line(&browse, Duration::from_secs(20), resolved(instance)).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let t2 = now_us();
    for pid in lan.host("tv").pids() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    }
    match wait_line(&browse, AVAHI_CRASH_CAP, gone(instance)) {
        Some(seen) => crash.0.push(ms(t2, seen)),
        None => eprintln!("avahi crash removal: not removed within {AVAHI_CRASH_CAP:?}"),
    }
    drop(p);
    drop(crash_stack);
    (appear, clean, crash)
}

fn avahi_fifty() -> (f64, f64) {
    let mut names: Vec<String> = (0..10).map(|i| format!("h{i}")).collect();
    names.push("dialer".into());
    let lan = Lan::with_hosts(names).expect("LAN");
    let stacks: Vec<AvahiStack> = (0..10)
        .map(|i| AvahiStack::start(lan.host(&format!("h{i}"))).expect("Avahi on the LAN"))
        .collect();
    let dialer_stack = AvahiStack::start(lan.host("dialer")).expect("Avahi on the LAN");
    let browse = avahi_browse(&dialer_stack, &lan, "dialer");
    std::thread::sleep(Duration::from_millis(500));
    let t0 = now_us();
    let mut publishers = Vec::new();
    for i in 0..50 {
        let host = format!("h{}", i % 10);
        publishers.push(publish(
            &stacks[i % 10],
            &lan,
            &host,
            &format!("Av{i}"),
            &format!("av{i}"),
        ));
    }
    let mut times = Vec::new();
    for i in 0..50 {
        let instance = format!("Av{i}");
        let seen = wait_line(&browse, Duration::from_secs(60), resolved(&instance)).unwrap();
        times.push(ms(t0, seen));
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[times.len() - 1])
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would too: run only for bench.
    if !std::env::args().any(|a| a == "--bench") {
        println!("discovery_timings: run with `cargo bench -p discovery` (needs root)");
        return;
    }
    let started = Instant::now();
    let (appear, clean, crash) = ours_single();
    let (fifty_median, fifty_last) = ours_fifty();
    let (a_appear, a_clean, a_crash) = avahi_single();
    let (a_fifty_median, a_fifty_last) = avahi_fifty();
    println!();
    println!("| measurement | splitdial discovery (mdns-sd) | Avahi 0.8 (anchor) |");
    println!("|---|---|---|");
    println!(
        "| appear (advertiser start -> browser event) | {} | {} |",
        appear.show(),
        a_appear.show()
    );
    println!(
        "| clean removal (SIGTERM -> removed) | {} | {} |",
        clean.show(),
        a_clean.show()
    );
    println!(
        "| crash removal (SIGKILL -> removed) | {} (verify every 4 s, 2 s timeout) | {} |",
        crash.show(),
        if a_crash.0.is_empty() {
            format!("not removed within {} s", AVAHI_CRASH_CAP.as_secs())
        } else {
            a_crash.show()
        }
    );
    println!(
        "| 50 talkers started at once, all seen | median {fifty_median:.0} ms, last {fifty_last:.0} ms | median {a_fifty_median:.0} ms, last {a_fifty_last:.0} ms |"
    );
    println!();
    println!("total bench time {:.0} s", started.elapsed().as_secs_f64());
}
