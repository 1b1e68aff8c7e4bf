//! Calls driven by the dialer's CLI on the simulated LAN, end to end: video,
//! mouth-to-ear latency, hang-up while ringing, hang-up by the callee, a third party, and no shared
//! server. Media is checked where it lands: the talkers' status APIs and their
//! `media summary` log lines.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use household::{AnswerSpec, Household, HouseholdSpec, call_of_kind};
use serde_json::Value;
use splitdial_e2e::{demo_with_carol, dialer, start_on_lan};
use std::time::Duration;

/// The call id on the first JSON line of `splitdial call --json`.
fn call_id(stdout: &str) -> String {
    let first: Value = serde_json::from_str(stdout.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    first["call"].as_str().unwrap().to_owned()
}

/// Waits until the matcher reports `call` ended, and returns its reason.
fn ended_reason(home: &Household, call: &str) -> String {
    home.wait_for(&format!("{call} ended"), Duration::from_secs(30), || {
        let info = home
            .matcher_request("alice", "GET", &format!("/v1/calls/{call}"), None)
            .ok()?
            .json();
        (info["state"] == "ended").then(|| info["reason"].as_str().unwrap_or("").to_owned())
    })
}

/// Waits until talker `id`'s call of `kind` is in `state`; returns it.
fn wait_call_state(home: &Household, id: &str, kind: &str, state: &str) -> Value {
    home.wait_for(
        &format!("{id}'s {kind} call {state}"),
        Duration::from_secs(30),
        || {
            let leg = call_of_kind(&home.talker_status(id).ok()?, kind)?;
            (leg["state"] == state).then_some(leg)
        },
    )
}

/// `user` takes owner action `action` on their talker `id`'s call `leg`, with
/// an owner token from the matcher, as their dialer does.
fn owner_action(home: &Household, user: &str, id: &str, leg: &Value, action: &str) {
    let sip_call_id = leg["sip_call_id"].as_str().unwrap();
    let body = format!(r#"{{"action":"{action}","sip_call_id":"{sip_call_id}"}}"#);
    let issued = home
        .matcher_request(
            user,
            "POST",
            &format!("/v1/talkers/{id}/owner-tokens"),
            Some(&body),
        )
        .unwrap();
    assert!(issued.status < 300, "{}", issued.body);
    let token = issued.json()["token"].as_str().unwrap().to_owned();
    let path = format!("/v1/calls/{}/{action}", leg["id"]);
    let done = home
        .talker_request(id, "POST", &path, Some(&token), Some("{}"))
        .unwrap();
    assert_eq!(done.status, 202, "{action}: {}", done.body);
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_video_call_shows_each_side_the_others_picture_and_tone() {
    let mut spec = HouseholdSpec::demo();
    spec.talker_mut("bob-phone").unwrap().video = true;
    let home = start_on_lan(spec);
    let alice = dialer(&home, "alice");
    alice.expect(&["call", "bob", "--on", "tv", "--video"], 0);
    for (id, kind) in [("tv", "referred"), ("bob-phone", "incoming")] {
        let leg = home.wait_for(
            &format!("{id} seeing a picture"),
            Duration::from_secs(40),
            || {
                let leg = call_of_kind(&home.talker_status(id).ok()?, kind)?;
                let picture = &leg["media"]["picture"];
                (picture["frames"].as_u64()? >= 10 && picture["width"].as_u64()? > 0).then_some(leg)
            },
        );
        eprintln!("{id} sees {}", leg["media"]["picture"]);
    }
    home.wait_hears("bob-phone", "incoming", "tv", 25);
    home.wait_hears("tv", "referred", "bob-phone", 25);
    alice.expect(&["hangup"], 0);
    home.wait_no_calls("tv");
    home.wait_no_calls("bob-phone");
    home.shutdown();
}

/// Both talkers send bursts that start on whole seconds of the (shared) wall
/// clock; each hears them a mouth-to-ear latency past the second, through the
/// whole path: both media workers, the LAN, the jitter buffer. The bound is
/// generous (debug builds, busy cores); `household/benches/mouth_to_ear.rs`
/// reports the figure.
#[test]
#[ignore = "needs root: run scripts/test"]
fn bursts_cross_the_full_path_a_mouth_to_ear_latency_past_each_second() {
    let mut spec = HouseholdSpec::demo();
    for id in ["tv", "bob-phone"] {
        spec.talker_mut(id).unwrap().beeps = true;
    }
    let home = start_on_lan(spec);
    let alice = dialer(&home, "alice");
    alice.expect(&["call", "bob", "--on", "tv"], 0);
    for (id, kind) in [("bob-phone", "incoming"), ("tv", "referred")] {
        // The first onset may be a burst cut short by the call's start: the
        // later ones are whole bursts.
        let onsets = home.wait_for(
            &format!("{id} hearing four bursts"),
            Duration::from_secs(40),
            || {
                let onsets = home.onsets_past_second(id, kind);
                (onsets.len() >= 4).then_some(onsets)
            },
        );
        eprintln!("{id} heard bursts this far past their second (ms): {onsets:.1?}");
        assert!(
            onsets[1..].iter().all(|ms| (1.0..600.0).contains(ms)),
            "{id}: {onsets:?}"
        );
    }
    alice.expect(&["hangup"], 0);
    home.wait_no_calls("tv");
    home.wait_no_calls("bob-phone");
    home.shutdown();
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_call_is_hung_up_while_ringing_and_by_the_callee_and_no_route_is_explained() {
    let mut spec = HouseholdSpec::demo();
    spec.talker_mut("bob-phone").unwrap().answer = AnswerSpec::Manual;
    let home = start_on_lan(spec);
    let alice = dialer(&home, "alice");

    // While bob's phone rings: `call` has returned, `hangup` cancels it.
    let placed = alice.expect(&["call", "bob", "--on", "tv", "--json"], 0);
    let call = call_id(&placed.stdout);
    wait_call_state(&home, "bob-phone", "incoming", "ringing");
    alice.expect(&["hangup"], 0);
    assert_eq!(ended_reason(&home, &call), "hung_up");
    home.wait_no_calls("bob-phone");
    home.wait_no_calls("tv");

    // Bob answers from his side, they talk, and bob hangs up.
    let placed = alice.expect(&["call", "bob", "--on", "tv", "--json"], 0);
    let call = call_id(&placed.stdout);
    let ringing = wait_call_state(&home, "bob-phone", "incoming", "ringing");
    owner_action(&home, "bob", "bob-phone", &ringing, "answer");
    home.wait_hears("bob-phone", "incoming", "tv", 25);
    home.wait_hears("tv", "referred", "bob-phone", 25);
    let connected = wait_call_state(&home, "bob-phone", "incoming", "connected");
    owner_action(&home, "bob", "bob-phone", &connected, "hangup");
    assert_eq!(ended_reason(&home, &call), "callee_hung_up");
    home.wait_no_calls("bob-phone");
    home.wait_no_calls("tv");

    // Dave is only on work.example; alice's phone only on family.example.
    let done = alice.expect(&["call", "dave", "--on", "phone"], 3);
    let line = done.stderr.lines().find(|l| l.starts_with("splitdial: "));
    let line = line.unwrap_or_else(|| panic!("no reason line in {}", done.stderr));
    assert!(
        line.contains("no_shared_server")
            && line.contains("family.example")
            && line.contains("work.example"),
        "{line}"
    );
    home.shutdown();
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_third_party_joins_and_each_party_hears_both_others() {
    let home = start_on_lan(demo_with_carol());
    let alice = dialer(&home, "alice");
    let placed = alice.expect(&["call", "bob", "--on", "tv", "--json"], 0);
    let call = call_id(&placed.stdout);
    home.wait_hears("bob-phone", "incoming", "tv", 25);

    let added = alice.expect(&["add", "carol"], 0);
    assert_eq!(added.stdout.trim(), format!("{call} party 2: carol"));
    home.wait_hears("carol-phone", "incoming", "tv", 25);
    // Dave is only on work.example: he cannot join a call on family.example.
    alice.expect(&["add", "dave"], 3);

    // Let the three tones mix, then hang up: the tv ends both of its calls and
    // every agent logs what it heard.
    std::thread::sleep(Duration::from_secs(4));
    alice.expect(&["hangup"], 0);
    assert_eq!(ended_reason(&home, &call), "hung_up");
    let ids = ["tv", "bob-phone", "carol-phone"];
    for id in ids {
        home.wait_no_calls(id);
    }
    // The tv's conference summary comes after its calls are gone.
    std::thread::sleep(Duration::from_secs(1));
    for listener in ids {
        let log = &home.talker(listener).unwrap().process;
        let heard = home.wait_for(
            &format!("{listener}'s media summary"),
            Duration::from_secs(10),
            || testbed::MediaSummary::last_in(&log.log()).map(|s| s.heard_all()),
        );
        for speaker in ids.iter().filter(|s| **s != listener) {
            let tone = home.talker(speaker).unwrap().spec.tone_hz;
            assert!(
                heard.iter().any(|f| (f - tone).abs() < tone * 0.03),
                "{listener} heard {heard:?}, {speaker} sent {tone} Hz\n{}",
                home.logs()
            );
        }
    }
    home.shutdown();
}
