//! The `splitdial` subcommands against a real household on the simulated LAN
//! (`household` crate: two `sip-server`s, the `matcher`, enrolled talker
//! agents advertising over mDNS, each on its own host): the binary runs on
//! the LAN's `dialer` host, configured through the environment only.
//! Checked: `talkers` and `contacts` JSON shapes and tables, `config`'s
//! redaction, the documented exit codes (docs/dialer.md, "Subcommands"), a
//! call the callee's agent answers with tones crossing both ways, and
//! `hangup` (of the last call, of a named call, of an unknown one).
//!
//! Needs root (network namespaces) and the workspace built
//! (`cargo build --workspace`); run inside a private network namespace:
//! `unshare --net -- sh -c 'ip link set lo up && cargo test -p splitdial-tui --offline --test cli'`.
//! Without root they are ignored (`scripts/test` runs them, as root).

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use household::dialer::{Dialer, row_of};
use household::oneshot::Finished;
use household::{Household, HouseholdSpec, Placement};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use testbed::require_root;

/// The demo household on a fresh simulated LAN, with bob's phone at alice's
/// home too (so the LAN shows a talker that is not hers).
fn start_household() -> Household {
    let mut spec = HouseholdSpec::demo();
    spec.talker_mut("bob-phone").unwrap().at_home = true;
    let started = Instant::now();
    let home = Household::start(spec, Placement::Lan).unwrap();
    eprintln!(
        "household up in {:?}: {:?}",
        started.elapsed(),
        home.timings()
    );
    home
}

/// A dialer running this package's `splitdial` on the household's `dialer` host.
fn dialer<'a>(home: &'a Household, user: &str) -> Dialer<'a> {
    Dialer::as_user(home, env!("CARGO_BIN_EXE_splitdial"), user)
}

/// `talkers --json` rows by id.
fn row<'v>(rows: &'v Value, id: &str) -> &'v Value {
    let r = row_of(rows, id);
    assert!(!r.is_null(), "no row {id} in {rows:#}");
    r
}

/// The matcher's view of a call, as alice.
fn matcher_call(home: &Household, call: &str) -> Value {
    home.matcher_request("alice", "GET", &format!("/v1/calls/{call}"), None)
        .unwrap()
        .json()
}

/// Asserts the documented one-line failure on stderr.
fn assert_reason(done: &Finished, needles: &[&str]) {
    let line = done.stderr.lines().find(|l| l.starts_with("splitdial: "));
    let line = line.unwrap_or_else(|| panic!("no `splitdial: ` line in:\n{}", done.stderr));
    for needle in needles {
        assert!(line.contains(needle), "{needle:?} not in {line:?}");
    }
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn talkers_and_contacts_print_their_documented_shapes() {
    require_root();
    let home = start_household();
    let lan = home.lan().unwrap();
    let alice = dialer(&home, "alice");

    // Every talker of alice's is seen on the LAN and verified at its
    // advertised address; bob's phone, advertised there too, is not hers.
    let rows = alice.talkers_verified(&["tv", "pc", "phone"]);
    for id in ["tv", "pc", "phone"] {
        let r = row(&rows, id);
        let spec = home.spec().talker(id).unwrap();
        assert_eq!(r["name"], spec.name.as_str(), "{r}");
        assert_eq!(r["kind"], spec.kind.as_str(), "{r}");
        assert_eq!(
            r["media"],
            if spec.video { "video" } else { "audio" },
            "{r}"
        );
        assert_eq!(r["status"], "verified", "{r}");
        assert_eq!(r["online"], true, "{r}");
        assert_eq!(r["seen"], "lan", "{r}");
        assert_eq!(r["state"], "idle", "{r}");
        assert_eq!(r["reason"], Value::Null, "{r}");
        let address = format!("{}:8420", lan.host(id).ip());
        assert_eq!(r["address"], address.as_str(), "{r}");
        let accounts: Vec<(String, String, bool)> = r["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["aor"].as_str().unwrap().to_owned(),
                    a["server"].as_str().unwrap().to_owned(),
                    a["registered"].as_bool().unwrap(),
                )
            })
            .collect();
        let expected: Vec<(String, String, bool)> = spec
            .accounts
            .iter()
            .map(|a| (a.aor(), a.server.clone(), true))
            .collect();
        assert_eq!(accounts, expected, "{r}");
    }
    let bob_phone = row(&rows, "bob-phone");
    assert_eq!(bob_phone["status"], "not_mine", "{bob_phone}");
    assert_eq!(bob_phone["online"], Value::Null, "{bob_phone}");
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["id"] != "dave-phone"),
        "dave's phone is not at alice's home: {rows:#}"
    );

    // Without discovery: the registry's view only.
    let rows = alice.json(&["talkers", "--json", "--no-discovery"]);
    assert_eq!(rows.as_array().unwrap().len(), 3, "{rows:#}");
    for id in ["tv", "pc", "phone"] {
        let r = row(&rows, id);
        assert_eq!(r["status"], "not_on_lan", "{r}");
        assert_eq!(r["seen"], Value::Null, "{r}");
        assert_eq!(r["address"], Value::Null, "{r}");
    }

    // The table: documented columns, one line per talker.
    let table = alice.expect(&["talkers", "--wait-lan", "3"], 0).stdout;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID", "NAME", "KIND", "STATUS", "STATE", "ADDRESS", "SERVERS"
        ]
    );
    let tv_line = table.lines().find(|l| l.starts_with("tv ")).unwrap();
    assert!(tv_line.contains("Living-room TV"), "{table}");
    assert!(tv_line.contains("family.example,work.example"), "{table}");

    // Contacts: names, kinds and servers, never devices.
    let contacts = alice.json(&["contacts", "--json"]);
    let list = contacts.as_array().unwrap();
    assert_eq!(list.len(), 2, "{contacts:#}");
    let bob = list.iter().find(|c| c["name"] == "bob").unwrap();
    assert_eq!(bob["kind"], "user", "{bob}");
    assert_eq!(bob["accepted"], true, "{bob}");
    assert_eq!(
        bob["servers"],
        serde_json::json!(["family.example"]),
        "{bob}"
    );
    let dave = list.iter().find(|c| c["name"] == "dave").unwrap();
    assert_eq!(dave["kind"], "address", "{dave}");
    assert_eq!(
        dave["servers"],
        serde_json::json!(["work.example"]),
        "{dave}"
    );
    let text = contacts.to_string();
    assert!(!text.contains("phone") && !text.contains("sip:"), "{text}");
    let table = alice.expect(&["contacts"], 0).stdout;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "KIND", "ACCEPTED", "SERVERS"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("bob ") && l.contains("family.example")),
        "{table}"
    );

    // `config`: the effective settings, the token never shown.
    let token = home.token("alice").unwrap();
    let config = alice.expect(&["config"], 0).stdout;
    assert!(config.contains(&home.matcher_url()), "{config}");
    assert!(config.contains("<redacted>"), "{config}");
    assert!(!config.contains(token), "the token leaked:\n{config}");

    // bob sees his own phone only.
    let bob = dialer(&home, "bob");
    let rows = bob.json(&["talkers", "--json", "--no-discovery"]);
    let ids: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["bob-phone"], "{rows:#}");
    home.shutdown();
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn failures_exit_with_their_documented_codes_and_reasons() {
    require_root();
    let home = start_household();
    let alice = dialer(&home, "alice");

    // 3: no shared server, both sides named (the pc is on work.example only,
    // bob on family.example only).
    let done = alice.expect(&["call", "bob", "--on", "pc"], 3);
    assert_reason(
        &done,
        &["no_shared_server", "work.example", "family.example"],
    );
    // 7: no such contact; no last call to hang up; no such call.
    let done = alice.expect(&["call", "zed"], 7);
    assert_reason(&done, &["zed"]);
    alice.expect(&["hangup"], 7);
    alice.expect(&["hangup", "c_00000000000000000000000000000000"], 7);
    // 6: a token the matcher does not know.
    let mut env = home.dialer_env("alice");
    env.retain(|(k, _)| k != "SPLITDIAL_TOKEN");
    env.push(("SPLITDIAL_TOKEN".into(), "sdu_not-a-real-token".into()));
    Dialer::with_env(&home, env!("CARGO_BIN_EXE_splitdial"), env)
        .expect(&["contacts", "--json"], 6);
    // 2: no matcher URL, or no token.
    let mut env = home.dialer_env("alice");
    env.retain(|(k, _)| k != "SPLITDIAL_MATCHER_URL");
    Dialer::with_env(&home, env!("CARGO_BIN_EXE_splitdial"), env).expect(&["contacts"], 2);
    let mut env = home.dialer_env("alice");
    env.retain(|(k, _)| k != "SPLITDIAL_TOKEN");
    Dialer::with_env(&home, env!("CARGO_BIN_EXE_splitdial"), env)
        .expect(&["talkers", "--no-discovery"], 2);
    // 2: a usage error (clap).
    alice.expect(&["call"], 2);
    // 5: nothing listens at the matcher URL (the dialer's own host, port 9).
    let mut env = home.dialer_env("alice");
    env.retain(|(k, _)| k != "SPLITDIAL_MATCHER_URL");
    let nowhere = format!("https://{}:9", home.lan().unwrap().host("dialer").ip());
    env.push(("SPLITDIAL_MATCHER_URL".into(), nowhere));
    Dialer::with_env(&home, env!("CARGO_BIN_EXE_splitdial"), env.clone()).expect(&["contacts"], 5);
    // 2: plain http:// to a host that is not loopback is a configuration error,
    // never a connection in clear.
    let mut env = home.dialer_env("alice");
    env.retain(|(k, _)| k != "SPLITDIAL_MATCHER_URL");
    env.push((
        "SPLITDIAL_MATCHER_URL".into(),
        home.matcher_url().replace("https://", "http://"),
    ));
    let done =
        Dialer::with_env(&home, env!("CARGO_BIN_EXE_splitdial"), env).expect(&["contacts"], 2);
    assert!(done.stderr.contains("loopback"), "{}", done.stderr);
    home.shutdown();
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_call_is_answered_by_the_callee_agent_with_tones_both_ways_then_hung_up() {
    require_root();
    let home = start_household();
    let alice = dialer(&home, "alice");

    // Without --wait the command returns once bob's phone rings or answers.
    let started = Instant::now();
    let done = alice.expect(&["call", "bob", "--on", "tv"], 0);
    let mut lines = done.stdout.lines();
    let call = lines.next().unwrap().trim().to_owned();
    assert!(!call.is_empty() && !call.contains(' '), "{}", done.stdout);
    let states: Vec<&str> = lines
        .map(|l| l.split_whitespace().nth(1).unwrap_or_default())
        .collect();
    assert_eq!(states.first().copied(), Some("matching"), "{}", done.stdout);
    let last = states.last().copied().unwrap_or_default();
    assert!(
        matches!(last, "callee_ringing" | "connected"),
        "{}",
        done.stdout
    );
    for line in done.stdout.lines().skip(1) {
        assert!(line.trim_start().starts_with('+'), "timed lines: {line:?}");
    }

    // Bob's agent answered (auto, alice's tv account as asserted by
    // family.example); each side hears the other's tone.
    let bob_leg = home.wait_hears("bob-phone", "incoming", "tv", 25);
    let peer = bob_leg["peer"].as_str().unwrap_or_default();
    assert!(peer.contains("sip:alice-tv@family.example"), "{bob_leg}");
    home.wait_hears("tv", "referred", "bob-phone", 25);
    eprintln!("call to tones both ways: {:?}", started.elapsed());
    assert_eq!(matcher_call(&home, &call)["state"], "connected");
    // The tv is busy now, and says so on the LAN.
    let rows = alice.talkers_verified(&["tv"]);
    assert_eq!(row(&rows, "tv")["state"], "busy", "{rows:#}");

    // `hangup` without an argument ends the last call placed.
    let done = alice.expect(&["hangup"], 0);
    assert_eq!(done.stdout.trim(), format!("{call} hanging up"));
    home.wait_for("the call ended", Duration::from_secs(30), || {
        let shown = matcher_call(&home, &call);
        (shown["state"] == "ended").then_some(shown)
    });
    assert_eq!(matcher_call(&home, &call)["reason"], "hung_up");
    home.wait_no_calls("tv");
    home.wait_no_calls("bob-phone");
    // Each leg's media summary says what it heard.
    for (listener, speaker) in [("bob-phone", "tv"), ("tv", "bob-phone")] {
        let log = home.talker(listener).unwrap().process.log();
        let tone = home.talker(speaker).unwrap().spec.tone_hz;
        let summary = testbed::MediaSummary::last_in(&log)
            .unwrap_or_else(|| panic!("no media summary from {listener}:\n{log}"));
        assert!(
            summary.heard(tone),
            "{listener}: {summary:?}, {speaker} sent {tone}"
        );
    }
    // Hanging up again: already over, still exit 0.
    let done = alice.expect(&["hangup", &call], 0);
    assert_eq!(
        done.stdout.trim(),
        format!("{call} already over (ended hung_up)")
    );
    home.shutdown();
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn call_wait_follows_a_call_to_a_plain_sip_phone_until_it_is_hung_up() {
    require_root();
    let home = start_household();
    let alice = dialer(&home, "alice");

    // dave is only an address on work.example: the pc reaches him there.
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("stdout");
    let err = out_dir.path().join("stderr");
    let mut waiting = alice.command(&["call", "dave", "--on", "pc", "--wait", "--json"]);
    let mut child = waiting
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let json_lines = |p: &Path| -> Vec<Value> {
        read(p)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let connected = home.wait_for("connected on stdout", Duration::from_secs(60), || {
        let lines = json_lines(&out);
        lines
            .iter()
            .any(|e| e["state"] == "connected")
            .then_some(lines)
    });
    let call = connected[0]["call"].as_str().unwrap().to_owned();
    assert!(connected[0]["route"].is_object(), "{:#}", connected[0]);
    assert_eq!(connected[0]["route"]["server"], "work.example");
    home.wait_hears("dave-phone", "incoming", "pc", 25);
    home.wait_hears("pc", "referred", "dave-phone", 25);

    let done = alice.expect(&["hangup", &call], 0);
    assert_eq!(done.stdout.trim(), format!("{call} hanging up"));
    // The waiting `call` sees the end and exits 0 (it was connected).
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`call --wait` did not end:\n{}\n{}", read(&out), read(&err));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(0), "{}\n{}", read(&out), read(&err));
    let events = json_lines(&out);
    let states: Vec<&str> = events[1..]
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.first().copied(), Some("matching"), "{states:?}");
    assert_eq!(states.last().copied(), Some("ended"), "{states:?}");
    assert_eq!(events.last().unwrap()["detail"]["reason"], "hung_up");
    let seqs: Vec<i64> = events[1..]
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    home.wait_no_calls("pc");
    home.wait_no_calls("dave-phone");
    home.shutdown();
}
