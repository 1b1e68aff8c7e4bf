//! The talkers on the LAN: what the dialer shows of a talker that leaves it
//! (first no longer seen while the registry still hears from it, then offline
//! once its heartbeats stop), and Avahi seeing the demo's talkers.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use household::dialer::row_of;
use household::{HouseholdSpec, TalkerSpec};
use splitdial_e2e::{dialer, start_on_lan};
use std::time::{Duration, Instant};
use testbed::AvahiStack;

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_talker_that_leaves_the_lan_is_shown_not_seen_then_offline() {
    let home = start_on_lan(HouseholdSpec::demo());
    let alice = dialer(&home, "alice");
    alice.talkers_verified(&["tv", "pc", "phone"]);

    // The PC's cable is pulled: its agent runs on, but nothing reaches it.
    let pulled = Instant::now();
    home.lan().unwrap().host("pc").set_connected(false).unwrap();
    let rows = alice.json(&["talkers", "--json", "--wait-lan", "3"]);
    let pc = row_of(&rows, "pc");
    // Heartbeats come every 5 s and count for 12.5 s: the last one is at most
    // 5 s older than the pull, so within 7 s of it the PC is surely still
    // online (a slower browse cannot tell).
    if pulled.elapsed() < Duration::from_secs(7) {
        assert_eq!(pc["status"], "not_on_lan", "{rows:#}");
        assert_eq!(pc["online"], true, "{rows:#}");
    }
    assert_eq!(pc["seen"], serde_json::Value::Null, "{rows:#}");
    for id in ["tv", "phone"] {
        assert_eq!(row_of(&rows, id)["status"], "verified", "{rows:#}");
    }

    // Once its heartbeats are too old, the registry calls it offline.
    let offline = home.wait_for("the pc offline", Duration::from_secs(40), || {
        let rows = alice.json(&["talkers", "--json", "--wait-lan", "0"]);
        let pc = row_of(&rows, "pc").clone();
        (pc["status"] == "offline").then_some(pc)
    });
    assert_eq!(offline["online"], false, "{offline:#}");
    eprintln!(
        "pc offline {:?} after the cable was pulled",
        pulled.elapsed()
    );
    home.shutdown();
}

/// Avahi, the reference mDNS stack, on the dialer's host sees every one of the
/// demo's talkers at home, under its name and with its TXT record.
#[test]
#[ignore = "needs root: run scripts/test"]
fn avahi_sees_the_demo_talkers() {
    testbed::require_program("avahi-daemon", "avahi-daemon");
    let home = start_on_lan(HouseholdSpec::demo());
    let host = home.lan().unwrap().host(household::spec::DIALER_HOST);
    let avahi = AvahiStack::start(host).unwrap();
    let at_home: Vec<_> = home
        .spec()
        .talkers
        .iter()
        .filter(|t| t.at_home)
        .cloned()
        .collect();
    assert_eq!(at_home.len(), 3);
    let seen = |resolved: &[(String, Vec<String>)], talker: &TalkerSpec| {
        resolved.iter().any(|(name, txt)| {
            *name == talker.name
                && txt.iter().any(|s| *s == format!("id={}", talker.id))
                && txt.iter().any(|s| s == "txtvers=1")
                && txt.iter().any(|s| *s == format!("kind={}", talker.kind))
        })
    };
    let mut last = Vec::new();
    testbed::wait_until(
        "Avahi resolving the talkers at home",
        Duration::from_secs(40),
        || {
            let (_, resolved) = avahi.browse(host, "_splitdial._tcp").unwrap();
            let all = at_home.iter().all(|talker| seen(&resolved, talker));
            last = resolved;
            all.then_some(())
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}: Avahi resolved {last:#?}\nexpected {:?}\n{}",
            at_home.iter().map(|t| &t.name).collect::<Vec<_>>(),
            avahi.daemon_log()
        )
    });
    home.shutdown();
}
