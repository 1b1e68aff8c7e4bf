//! The demo household starts as real processes, the matcher sees every talker
//! online, a call placed through the matcher API connects alice's TV to bob's
//! phone with tones both ways, and everything ends by PID; the same on a
//! plain-HTTP matcher, which only a loopback household may ask for.
//!
//! Needs root (ignored without it); run inside a private network namespace
//! (scripts/test does):
//! `unshare --net -- sh -c 'ip link set lo up && cargo test -p household --offline --test demo_household -- --include-ignored'`.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use household::{Error, Household, HouseholdSpec, MatcherTransport, Placement};
use serde_json::json;
use std::time::Duration;
use testbed::require_root;

fn call_through_the_matcher(home: &Household) {
    let placed = home
        .matcher_request(
            "alice",
            "POST",
            "/v1/calls",
            Some(&json!({"callee": "bob", "talkers": ["tv"]}).to_string()),
        )
        .unwrap();
    assert_eq!(placed.status, 201, "{}\n{}", placed.body, home.logs());
    let call = placed.json()["call"].as_str().unwrap().to_owned();
    home.wait_for("connected call", Duration::from_secs(60), || {
        let shown = home
            .matcher_request("alice", "GET", &format!("/v1/calls/{call}"), None)
            .ok()?;
        (shown.json()["state"] == "connected").then_some(())
    });
    // Tones cross both ways: each side receives packets and hears the other.
    for (listener, speaker) in [("bob-phone", "tv"), ("tv", "bob-phone")] {
        let kind = if listener == "tv" {
            "referred"
        } else {
            "incoming"
        };
        let tone = home.talker(speaker).unwrap().spec.tone_hz;
        home.wait_for("the other's tone", Duration::from_secs(30), || {
            let status = home.talker_status(listener).ok()?;
            let leg = household::call_of_kind(&status, kind)?;
            let heard = leg["media"]["sound"]["dominant_frequency_hz"].as_f64()?;
            let packets = leg["media"]["audio"]["packets_received"].as_u64()?;
            ((heard - tone).abs() < tone * 0.03 && packets > 20).then_some(())
        });
    }
    let hung = home
        .matcher_request("alice", "DELETE", &format!("/v1/calls/{call}"), None)
        .unwrap();
    assert!(matches!(hung.status, 200 | 202), "{}", hung.body);
    for id in ["tv", "bob-phone"] {
        home.wait_for("no calls left", Duration::from_secs(30), || {
            let status = home.talker_status(id).ok()?;
            status["calls"]
                .as_array()
                .is_some_and(Vec::is_empty)
                .then_some(())
        });
    }
}

#[test]
fn the_demo_household_on_loopback_calls_bob() {
    let home = Household::start(HouseholdSpec::demo(), Placement::Loopback).unwrap();
    eprintln!("start-up: {:?}", home.timings());
    // The matcher serves HTTPS with a certificate from the household's own CA, which
    // the talkers and the dialer trust (the checks below go over it).
    assert!(home.matcher_url().starts_with("https://127.0.0.1:"));
    let ca_path = home.matcher_ca().unwrap();
    let ca = std::fs::read_to_string(ca_path).unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    let agent_config = std::fs::read_to_string(home.dir().join("tv.toml")).unwrap();
    assert!(
        agent_config.contains(&format!("matcher_ca = \"{}\"", ca_path.display())),
        "{agent_config}"
    );
    let talkers = home
        .matcher_request("alice", "GET", "/v1/me/talkers", None)
        .unwrap()
        .json();
    let mut ids: Vec<&str> = talkers["talkers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["pc", "phone", "tv"], "{talkers}");
    let contacts = home
        .matcher_request("alice", "GET", "/v1/me/contacts", None)
        .unwrap()
        .json();
    let text = contacts.to_string();
    assert!(text.contains("bob") && text.contains("dave"), "{text}");
    call_through_the_matcher(&home);
    let pids: Vec<u32> = home.processes().iter().map(|(_, p)| p.pid()).collect();
    home.shutdown();
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "process {pid} survived the shutdown"
        );
    }
}

#[test]
fn a_loopback_household_with_a_plain_http_matcher_says_so_and_calls_bob() {
    let mut spec = HouseholdSpec::demo();
    spec.matcher_transport = MatcherTransport::InsecureHttp;
    let home = Household::start(spec, Placement::Loopback).unwrap();
    // Plain HTTP on loopback, no CA handed to anyone, and the matcher says it in its log.
    assert!(home.matcher_url().starts_with("http://127.0.0.1:"));
    assert_eq!(home.matcher_ca(), None);
    let env = home.dialer_env("alice");
    assert!(
        env.iter().all(|(k, _)| k != "SPLITDIAL_MATCHER_CA"),
        "{env:?}"
    );
    let agent_config = std::fs::read_to_string(home.dir().join("tv.toml")).unwrap();
    assert!(
        agent_config.contains(&format!("matcher_url = \"{}\"", home.matcher_url()))
            && !agent_config.contains("matcher_ca"),
        "{agent_config}"
    );
    let (_, matcher) = home
        .processes()
        .into_iter()
        .find(|(label, _)| label == "matcher")
        .unwrap();
    assert!(
        matcher.log().contains("PLAINTEXT HTTP"),
        "{}",
        matcher.log()
    );
    // The agents enrolled and heartbeat over it (the household is up), and a
    // click-to-dial call connects with tones both ways.
    call_through_the_matcher(&home);
    home.shutdown();
}

#[test]
fn a_plain_http_matcher_is_refused_off_loopback() {
    let mut spec = HouseholdSpec::demo();
    spec.matcher_transport = MatcherTransport::InsecureHttp;
    // Refused before anything starts: no LAN is made (so no root is needed to see it).
    let refused = Household::start(spec, Placement::Lan).unwrap_err();
    assert!(
        matches!(&refused, Error::Spec(line) if line.contains("loopback")),
        "{refused}"
    );
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn the_demo_household_on_a_lan_is_reached_from_the_dialer_host() {
    require_root();
    let home = Household::start(HouseholdSpec::demo(), Placement::Lan).unwrap();
    eprintln!("start-up: {:?}", home.timings());
    let lan = home.lan().unwrap();
    assert_eq!(
        home.matcher_addr().ip().to_string(),
        lan.host("cloud").ip().to_string()
    );
    let tv = home.talker("tv").unwrap();
    assert_eq!(
        tv.status_addr.unwrap().ip().to_string(),
        lan.host("tv").ip().to_string()
    );
    let status = home.talker_status("tv").unwrap();
    assert_eq!(status["id"], "tv", "{status}");
    call_through_the_matcher(&home);
    let names: Vec<String> = lan.hosts().iter().map(|h| h.netns().to_owned()).collect();
    home.shutdown();
    let list = testbed::netns::ip(&["netns", "list"]).unwrap();
    for name in names {
        assert!(!list.contains(&name), "{name} still exists");
    }
}
