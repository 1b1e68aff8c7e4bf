//! What the dialer shows of a talker that leaves the LAN: first no longer
//! seen (the registry still hears from it), then offline once its heartbeats
//! stop. The other talkers stay verified throughout.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use household::HouseholdSpec;
use household::dialer::row_of;
use splitdial_e2e::{dialer, start_on_lan};
use std::time::{Duration, Instant};

#[test]
fn a_talker_that_leaves_the_lan_is_shown_not_seen_then_offline() {
    let Some(home) = start_on_lan(HouseholdSpec::demo()) else {
        return;
    };
    let alice = dialer(&home, "alice");
    alice.talkers_verified(&["tv", "pc", "phone"]);

    // The PC's cable is pulled: its agent runs on, but nothing reaches it.
    let pulled = Instant::now();
    home.lan().unwrap().host("pc").set_connected(false).unwrap();
    let rows = alice.json(&["talkers", "--json", "--wait-lan", "3"]);
    let pc = row_of(&rows, "pc");
    // Heartbeats come every 5 s and count for 12.5 s: still online, if the
    // browse was quick enough to tell.
    if pulled.elapsed() < Duration::from_secs(10) {
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
