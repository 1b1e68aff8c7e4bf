//! Hostile input on the wire: crafted talker records with bad TXT data,
//! malformed DNS messages, mutated and random packets, sent from a plain UDP
//! socket on another LAN host. The browser must survive, report only the valid
//! (or repairable) talkers, and still resolve a real talker afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{BrowseLog, NOISE, advertise, heavy_lock};
use std::time::Duration;
use testbed::{Lan, Spawn};

#[test]
#[ignore = "needs root: run scripts/test"]
fn browser_survives_hostile_packets_and_keeps_resolving() {
    testbed::require_root();
    let _guard = heavy_lock();
    let lan = Lan::with_hosts(["noise", "tv", "dialer"]).expect("build LAN (needs root)");
    let mut browser = BrowseLog::start(lan.host("dialer"), &[]);

    let noise_host = lan.host("noise");
    let mut noise = noise_host
        .spawn(Spawn::new(NOISE).label("mdns-noise").args([
            "--ip",
            &noise_host.ip().to_string(),
            "--count",
            "3000",
            "--seed",
            "7",
        ]))
        .unwrap();
    noise
        .wait_for_output("sent ", Duration::from_secs(60))
        .unwrap();
    // It prints its count just before it exits: give it a moment to do so.
    let started = std::time::Instant::now();
    let status = loop {
        match noise.try_wait().unwrap() {
            Some(status) => break Some(status),
            None if started.elapsed() > Duration::from_secs(10) => break None,
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    assert!(status.is_some_and(|s| s.success()), "{}", noise.log());

    // Positive controls: the noise did reach the browser, and repairable records
    // are repaired the way RFC 6763 asks.
    let (_, valid) = browser
        .wait_for("added", "noise-valid", 0, Duration::from_secs(15))
        .unwrap();
    assert_eq!(valid["talker"]["instance"], "Noise valid");
    let (_, repaired) = browser
        .wait_for("added", "noise-repaired", 0, Duration::from_secs(15))
        .unwrap();
    let t = &repaired["talker"];
    assert_eq!(t["kind"], "other", "unknown kind becomes other: {t}");
    assert_eq!(t["state"], "busy");
    assert_eq!(t["media"], "audio,video");
    assert_eq!(t["servers"], serde_json::json!(["ok.example"]));

    // The browser is alive and resolves a real talker after the storm.
    assert!(
        browser.process.try_wait().unwrap().is_none(),
        "browser died"
    );
    let _tv = advertise(lan.host("tv"), "tv-1", "Living room TV", &["--kind", "tv"]);
    browser
        .wait_for("added", "tv-1", 0, Duration::from_secs(15))
        .unwrap();

    // Records that must be rejected never became talkers.
    let bad_instances = [
        "Noise txtvers2",
        "Noise badid",
        "Noise binstate",
        "Noise oversize",
        "Noise notxtvers",
        "Noise port0",
        "Noise zerolen",
    ];
    for e in browser.events() {
        let instance = e["talker"]["instance"].as_str().unwrap_or_default();
        assert!(
            !bad_instances.contains(&instance),
            "a bad record became a talker: {e}"
        );
        if let Some(id) = e["talker"]["id"].as_str() {
            assert!(
                ![
                    "noise-v2",
                    "noise-bin",
                    "noise-big",
                    "noise-nov",
                    "someone-else"
                ]
                .contains(&id),
                "bad record accepted: {e}"
            );
        }
    }
    // And the rejections were logged with a reason.
    let log = browser.process.log();
    for reason in [
        "unsupported txtvers",
        "bad talker id",
        "not UTF-8",
        "over the 400-byte limit",
        "no txtvers key",
    ] {
        assert!(
            log.contains(reason),
            "no log line saying {reason:?}:\n{log}"
        );
    }
    assert!(
        browser.process.try_wait().unwrap().is_none(),
        "browser died"
    );
}
