//! Discovery across a simulated LAN: three talkers on three hosts, browsers on a
//! fourth. Everything mDNS runs inside the LAN's namespaces.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{BrowseLog, advertise, at_us, heavy_lock, is_event, now_us};
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};
use testbed::Lan;

#[test]
#[ignore = "needs root: run scripts/test"]
fn talkers_appear_update_leave_and_crashed_ones_are_verified_away() {
    testbed::require_root();
    let _guard = heavy_lock();
    let lan = Lan::with_hosts(["tv", "pc", "phone", "dialer"]).expect("build LAN (needs root)");

    // Browser A verifies every 2 s; browser B only when asked (SIGUSR1).
    let mut periodic = BrowseLog::start(
        lan.host("dialer"),
        &[
            "--verify-interval-ms",
            "2000",
            "--verify-timeout-ms",
            "2000",
        ],
    );
    let mut on_demand = BrowseLog::start(lan.host("dialer"), &["--verify-interval-ms", "0"]);

    let mut tv = advertise(
        lan.host("tv"),
        "tv-1",
        "Living room TV",
        &[
            "--kind",
            "tv",
            "--media",
            "audio,video",
            "--servers",
            "pbx.example.com,family.example.net",
        ],
    );
    let pc = advertise(lan.host("pc"), "pc-1", "Study PC", &["--kind", "pc"]);
    let mut phone = advertise(
        lan.host("phone"),
        "phone-1",
        "Anna's phone",
        &["--kind", "phone"],
    );

    let appear = Duration::from_secs(15);
    for id in ["tv-1", "pc-1", "phone-1"] {
        periodic.wait_for("added", id, 0, appear).unwrap();
        on_demand.wait_for("added", id, 0, appear).unwrap();
    }
    let (_, added_tv) = periodic.wait_for("added", "tv-1", 0, appear).unwrap();
    let t = &added_tv["talker"];
    assert_eq!(t["instance"], "Living room TV");
    assert_eq!(t["kind"], "tv");
    assert_eq!(t["media"], "audio,video");
    assert_eq!(t["state"], "idle");
    assert_eq!(t["port"], 8480);
    assert_eq!(
        t["servers"],
        serde_json::json!(["pbx.example.com", "family.example.net"])
    );

    // Live state changes reach the browser as updates, flips back to an earlier
    // state included (they once vanished in the browser's cache-flush second).
    let mark = periodic.events().len();
    for (flip, state) in ["busy", "idle", "busy", "idle"].into_iter().enumerate() {
        let seen = periodic.events().len();
        pc.signal(Signal::SIGUSR1).unwrap();
        let printed = Instant::now();
        while pc.log().lines().filter(|l| l.starts_with("state ")).count() <= flip {
            assert!(printed.elapsed() < Duration::from_secs(5), "{}", pc.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            pc.log()
                .lines()
                .filter(|l| l.starts_with("state "))
                .nth(flip)
                == Some(&format!("state {state}"))
        );
        let (_, update) = periodic
            .wait_for_match(seen, Duration::from_secs(10), |e| {
                is_event(e, "updated", "pc-1") && e["talker"]["state"] == state
            })
            .unwrap_or_else(|e| panic!("flip {flip} to {state}: {e}"));
        assert_eq!(update["talker"]["instance"], "Study PC");
    }
    let flips = periodic.events()[mark..]
        .iter()
        .filter(|e| is_event(e, "updated", "pc-1"))
        .count();
    assert_eq!(flips, 4, "one update per change");

    // A clean shutdown sends goodbyes: removed without waiting for verification.
    let mark = periodic.events().len();
    let stopped_at = now_us();
    let status = tv.stop(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "advertiser exit: {status}\n{}", tv.log());
    assert!(tv.log().contains("stopped"));
    let (_, removed) = periodic
        .wait_for("removed", "tv-1", mark, Duration::from_secs(10))
        .unwrap();
    let clean_ms = (at_us(&removed).saturating_sub(stopped_at)) / 1000;
    // The on-demand browser never verifies on its own: only the goodbye can remove it.
    on_demand
        .wait_for("removed", "tv-1", 0, Duration::from_secs(10))
        .unwrap();

    // A crash (SIGKILL) sends nothing: periodic verification removes it.
    let mark = periodic.events().len();
    let mark_b = on_demand.events().len();
    let killed = Instant::now();
    let killed_at = now_us();
    phone.kill().unwrap();
    let (_, removed) = periodic
        .wait_for("removed", "phone-1", mark, Duration::from_secs(30))
        .unwrap();
    let crash_ms = (at_us(&removed).saturating_sub(killed_at)) / 1000;
    assert!(killed.elapsed() < Duration::from_secs(30));
    // Without verification the record would linger (TTL 120 s): browser B still has it.
    assert!(
        !on_demand
            .events()
            .iter()
            .skip(mark_b)
            .any(|e| is_event(e, "removed", "phone-1")),
        "browser without verification dropped the crashed talker on its own"
    );
    // Asking B to verify removes it too.
    on_demand.process.signal(Signal::SIGUSR1).unwrap();
    on_demand
        .wait_for("removed", "phone-1", mark_b, Duration::from_secs(15))
        .unwrap();

    // The live talker survived every verification, and no update was a duplicate.
    let events = periodic.events();
    assert!(
        !events.iter().any(|e| is_event(e, "removed", "pc-1")),
        "a live talker was removed"
    );
    let mut last: std::collections::HashMap<String, serde_json::Value> = Default::default();
    for e in &events {
        let Some(id) = e["talker"]["id"].as_str() else {
            continue;
        };
        if e["event"] == "updated" {
            assert_ne!(last.get(id), Some(&e["talker"]), "duplicate update: {e}");
        }
        last.insert(id.to_owned(), e["talker"].clone());
    }
    eprintln!("clean removal {clean_ms} ms, crash removal {crash_ms} ms");
    drop(pc);
}
