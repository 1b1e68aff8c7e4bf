//! Interop with Avahi, both ways, inside a simulated LAN: avahi-browse sees our
//! talkers with the right TXT record, and our browser sees a talker published
//! with avahi-publish-service. Avahi runs only inside a LAN host namespace, with
//! its own D-Bus and a private /run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{BrowseLog, advertise, heavy_lock, is_event};
use std::time::{Duration, Instant};
use testbed::{AvahiStack, Lan, Spawn};

#[test]
#[ignore = "needs root: run scripts/test"]
fn avahi_and_our_discovery_see_each_other() {
    testbed::require_root();
    testbed::require_program("avahi-daemon", "avahi-daemon");
    let _guard = heavy_lock();
    let lan = Lan::with_hosts(["avahi", "tv", "dialer"]).expect("build LAN (needs root)");
    let avahi = AvahiStack::start(lan.host("avahi")).expect("Avahi on the LAN");

    // Ours -> Avahi.
    let _tv = advertise(
        lan.host("tv"),
        "tv-1",
        "Living room TV",
        &[
            "--kind",
            "tv",
            "--media",
            "audio,video",
            "--servers",
            "pbx.example.com",
            "--port",
            "8123",
        ],
    );
    let expected_txt = [
        "txtvers=1",
        "id=tv-1",
        "kind=tv",
        "media=audio,video",
        "state=idle",
        "servers=pbx.example.com",
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let found = loop {
        let (output, resolved) = avahi
            .browse(lan.host("avahi"), "_splitdial._tcp")
            .expect("avahi-browse starts");
        if let Some(hit) = resolved
            .into_iter()
            .find(|(name, _)| name == "Living room TV")
        {
            break (hit, output);
        }
        assert!(
            Instant::now() < deadline,
            "avahi-browse never resolved our talker; last output:\n{output}\ndaemon:\n{}",
            avahi.daemon_log()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let ((_, txt), output) = found;
    for want in expected_txt {
        assert!(
            txt.iter().any(|s| s == want),
            "avahi-browse TXT {txt:?} lacks {want}\n{output}"
        );
    }
    assert_eq!(txt.len(), expected_txt.len(), "{txt:?}");
    assert!(
        output.contains(";8123;"),
        "port not in SRV as seen by Avahi:\n{output}"
    );
    assert!(
        output.contains(&lan.host("tv").ip().to_string()),
        "address not resolved by Avahi:\n{output}"
    );

    // Avahi -> ours.
    let mut browser = BrowseLog::start(lan.host("dialer"), &[]);
    browser
        .wait_for("added", "tv-1", 0, Duration::from_secs(15))
        .unwrap();
    let mut publish = avahi
        .spawn(
            lan.host("avahi"),
            Spawn::new("avahi-publish-service")
                .label("avahi-publish")
                .args([
                    "Kitchen speaker",
                    "_splitdial._tcp",
                    "8481",
                    "txtvers=1",
                    "id=speaker-1",
                    "kind=speaker",
                    "media=audio",
                    "state=busy",
                    "servers=family.example.net",
                    "colour=blue",
                ]),
        )
        .expect("avahi-publish-service starts");
    let (_, added) = browser
        .wait_for("added", "speaker-1", 0, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}\npublisher: {}", publish.log()));
    let t = &added["talker"];
    assert_eq!(t["instance"], "Kitchen speaker");
    assert_eq!(t["kind"], "speaker");
    assert_eq!(t["media"], "audio");
    assert_eq!(t["state"], "busy");
    assert_eq!(t["port"], 8481);
    assert_eq!(t["servers"], serde_json::json!(["family.example.net"]));
    let avahi_ip = lan.host("avahi").ip().to_string();
    assert!(
        t["addresses"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == avahi_ip.as_str())),
        "{t}"
    );

    // Avahi withdraws the service when its client goes: we see the goodbye.
    let mark = browser.events().len();
    let _ = publish.stop(Duration::from_secs(5));
    browser
        .wait_for("removed", "speaker-1", mark, Duration::from_secs(15))
        .unwrap();
    assert!(
        !browser
            .events()
            .iter()
            .any(|e| is_event(e, "removed", "tv-1")),
        "our own talker was dropped"
    );
}
