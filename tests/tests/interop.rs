//! Calls with independent implementations in the path: Kamailio 5.6 (Debian's
//! package) as both of the household's SIP servers instead of splitdial's own
//! `sip-server`; baresip 1.0 as the callee's phone, and as the caller's talker
//! (a SIP phone alice added to her talkers), whose call is handed off; baresip
//! holding and resuming a call it carries.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use household::{
    AccountSpec, AnswerSpec, HouseholdSpec, ServerSoftware, TalkerSoftware, TalkerSpec,
};
use splitdial_e2e::{dialer, start_on_lan};
use std::time::Duration;

#[test]
#[ignore = "needs root: run scripts/test"]
fn the_main_call_goes_through_kamailio_with_tones_both_ways() {
    testbed::require_program("kamailio", "kamailio");
    let mut spec = HouseholdSpec::demo();
    for server in &mut spec.servers {
        server.software = ServerSoftware::Kamailio;
    }
    let home = start_on_lan(spec);
    let alice = dialer(&home, "alice");
    alice.talkers_verified(&["tv", "pc", "phone"]);
    alice.expect(&["call", "bob", "--on", "tv"], 0);
    home.wait_hears("bob-phone", "incoming", "tv", 25);
    home.wait_hears("tv", "referred", "bob-phone", 25);
    alice.expect(&["hangup"], 0);
    home.wait_no_calls("tv");
    home.wait_no_calls("bob-phone");

    // Kamailio carried it: the control INVITE (naming bob: the TV dials on
    // answer, so no REFER) came from the matcher (trusted by address), the TV's
    // INVITE to bob was authenticated, and the TV's NOTIFYs reached the matcher.
    let family = home
        .servers()
        .iter()
        .find(|s| s.domain == "family.example")
        .unwrap();
    let log = family.process.log();
    let requests: Vec<&str> = log.lines().filter(|l| l.contains("request ")).collect();
    for method in [
        "INVITE sip:alice-tv@family.example",
        "INVITE sip:bob@family.example",
        "NOTIFY sip:splitdial@",
    ] {
        assert!(
            requests
                .iter()
                .any(|r| r.contains(&format!("request {method}"))),
            "no {method} in Kamailio's log:\n{}",
            requests.join("\n")
        );
    }
    home.shutdown();
}

/// Dave's desk phone is baresip, a third-party SIP phone (registered with MD5
/// digest): alice calls him as a plain SIP contact, her PC and the phone hear
/// each other, and her hang-up ends the phone's call.
#[test]
#[ignore = "needs root: run scripts/test"]
fn alices_pc_calls_a_baresip_phone_and_hears_it() {
    testbed::require_program("baresip", "baresip-core");
    let mut spec = HouseholdSpec::demo();
    spec.talker_mut("dave-phone").unwrap().software = TalkerSoftware::Baresip;
    let home = start_on_lan(spec);
    let alice = dialer(&home, "alice");
    alice.expect(&["call", "dave", "--on", "pc"], 0);
    home.wait_hears("pc", "referred", "dave-phone", 25);
    alice.expect(&["hangup"], 0);
    home.wait_no_calls("pc");
    let dave = home.talker("dave-phone").unwrap().process.log();
    // baresip answered alice's PC, received its audio, and took the BYE
    // (libre reports a remote BYE as "Connection reset by peer").
    for line in [
        "Call established: sip:alice-pc@work.example",
        "incoming rtp for 'audio' established",
        "sip:alice-pc@work.example: session closed",
    ] {
        assert!(dave.contains(line), "baresip did not log {line:?}:\n{dave}");
    }
    home.shutdown();
}

/// Dave's baresip phone puts alice's call on hold and resumes it (re-INVITEs with
/// `a=sendonly`, then `a=sendrecv`): her PC's status says the call is held by its peer
/// (what the dialer's call pane shows as "held by dave"), it sends nothing while held,
/// and both directions flow again after the resume.
#[test]
#[ignore = "needs root: run scripts/test"]
fn dave_holds_alices_call_and_resumes_it() {
    testbed::require_program("baresip", "baresip-core");
    let mut spec = HouseholdSpec::demo();
    spec.talker_mut("dave-phone").unwrap().software = TalkerSoftware::Baresip;
    let home = start_on_lan(spec);
    let alice = dialer(&home, "alice");
    alice.expect(&["call", "dave", "--on", "pc"], 0);
    home.wait_hears("pc", "referred", "dave-phone", 25);
    let pc_call = || household::call_of_kind(&home.talker_status("pc").ok()?, "referred");
    let audio = |leg: &serde_json::Value, counter: &str| {
        leg["media"]["audio"][counter].as_u64().unwrap_or(0)
    };

    home.phone_command("dave-phone", "hold").unwrap();
    home.wait_for("pc's call held by dave", Duration::from_secs(15), || {
        pc_call().filter(|leg| {
            leg["held"] == "by_peer" && leg["media"]["audio"]["direction"] == "RecvOnly"
        })
    });
    // The status shows statistics up to 500 ms old: from 800 ms on they are all newer
    // than the hold.
    std::thread::sleep(Duration::from_millis(800));
    let before = pc_call().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let during = pc_call().unwrap();
    assert_eq!(
        audio(&during, "packets_sent"),
        audio(&before, "packets_sent"),
        "the PC kept sending while held: {before} → {during}"
    );

    home.phone_command("dave-phone", "resume").unwrap();
    home.wait_for(
        "pc's call resumed, both ways",
        Duration::from_secs(15),
        || {
            pc_call().filter(|leg| {
                leg["held"].is_null()
                    && leg["media"]["audio"]["direction"] == "SendRecv"
                    && audio(leg, "packets_sent") >= audio(&during, "packets_sent") + 25
                    && audio(leg, "packets_received") >= audio(&during, "packets_received") + 25
            })
        },
    );
    alice.expect(&["hangup"], 0);
    home.wait_no_calls("pc");
    home.shutdown();
}

/// Alice's desk phone is baresip, added to her talkers as a SIP phone. She
/// calls bob on it from the dialer: the phone answers the control leg,
/// carries out the REFER as a blind transfer, the controller lets go of it
/// (RFC 5589: baresip waits for the transferor's BYE) and the call is
/// `handed_off`, while bob's phone and the desk phone go on hearing each other.
#[test]
#[ignore = "needs root: run scripts/test"]
fn a_baresip_desk_phone_carries_alices_call_and_it_is_handed_off() {
    testbed::require_program("baresip", "baresip-core");
    let mut spec = HouseholdSpec::demo();
    spec.talkers.push(TalkerSpec {
        id: "desk".into(),
        name: "Desk phone".into(),
        owner: Some("alice".into()),
        kind: "phone".into(),
        video: false,
        accounts: vec![AccountSpec {
            server: "family.example".into(),
            user: "alice-desk".into(),
        }],
        answer: AnswerSpec::Manual,
        tone_hz: 770.0,
        beeps: false,
        at_home: false,
        software: TalkerSoftware::Baresip,
    });
    let home = start_on_lan(spec);
    let alice = dialer(&home, "alice");
    let listed = alice.json(&["talkers", "--json", "--no-discovery"]);
    let desk = household::dialer::row_of(&listed, "desk");
    assert_eq!(desk["status"], "sip_phone", "{listed}");

    let placed = alice.expect(&["call", "bob", "--on", "desk", "--wait"], 0);
    let states: Vec<&str> = placed
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        // bob answers at once; baresip reports no ringing before that.
        .filter(|s| *s != "callee_ringing")
        .collect();
    assert_eq!(
        states,
        [
            "matching",
            "dialing_talker",
            "talker_answered",
            "connected",
            "handed_off"
        ],
        "{}",
        placed.stdout
    );
    // The conversation goes on without the controller.
    home.wait_hears("bob-phone", "incoming", "desk", 25);
    let desk_log = || home.talker("desk").unwrap().process.log();
    home.wait_for(
        "the desk phone's control leg closed",
        std::time::Duration::from_secs(10),
        || {
            desk_log()
                .contains("sip:splitdial-matcher@family.example: session closed")
                .then_some(())
        },
    );
    assert!(
        desk_log().contains("Call established: sip:bob@family.example"),
        "{}",
        desk_log()
    );
    // Nothing left for the dialer to hang up.
    let after = alice.expect(&["hangup"], 0);
    assert!(after.stdout.contains("already over"), "{after:?}");
    home.shutdown();
}
