//! Calls with independent implementations in the path: Kamailio 5.6 (Debian's
//! package) as both of the household's SIP servers instead of splitdial's own
//! `sip-server`, and baresip 1.0 as the callee's phone.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use household::{HouseholdSpec, ServerSoftware, TalkerSoftware};
use splitdial_e2e::{dialer, start_on_lan};

#[test]
fn the_main_call_goes_through_kamailio_with_tones_both_ways() {
    let mut spec = HouseholdSpec::demo();
    for server in &mut spec.servers {
        server.software = ServerSoftware::Kamailio;
    }
    let Some(home) = start_on_lan(spec) else {
        return;
    };
    let alice = dialer(&home, "alice");
    alice.talkers_verified(&["tv", "pc", "phone"]);
    alice.expect(&["call", "bob", "--on", "tv"], 0);
    home.wait_hears("bob-phone", "incoming", "tv", 25);
    home.wait_hears("tv", "referred", "bob-phone", 25);
    alice.expect(&["hangup"], 0);
    home.wait_no_calls("tv");
    home.wait_no_calls("bob-phone");

    // Kamailio carried it: the control INVITE and the REFER came from the
    // matcher (trusted by address), the TV's INVITE to bob was authenticated.
    let family = home
        .servers()
        .iter()
        .find(|s| s.domain == "family.example")
        .unwrap();
    let log = family.process.log();
    let requests: Vec<&str> = log.lines().filter(|l| l.contains("request ")).collect();
    for method in [
        "INVITE sip:alice-tv@family.example",
        "REFER ",
        "INVITE sip:bob@family.example",
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
fn alices_pc_calls_a_baresip_phone_and_hears_it() {
    let mut spec = HouseholdSpec::demo();
    spec.talker_mut("dave-phone").unwrap().software = TalkerSoftware::Baresip;
    let Some(home) = start_on_lan(spec) else {
        return;
    };
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
