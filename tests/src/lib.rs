//! splitdial end to end: the dialer's CLI (`splitdial`) on the simulated LAN's
//! dialer host → the matcher → a SIP server → the caller's talker agent → the
//! callee's, all real processes of one [`household`], with test tones and
//! patterns as media.
//!
//! The tests live in `tests/tests/`. They need root (network namespaces) and
//! the whole workspace built (`cargo build --workspace`), and they run inside
//! a private network namespace like the rest of the suite:
//! `unshare --net -- sh -c 'ip link set lo up && cargo test -p splitdial-e2e -- --include-ignored'`.
//! Without root they are ignored (`scripts/test` runs them, as root).

use household::dialer::Dialer;
use household::{ContactSpec, Household, HouseholdSpec, Placement, TalkerSpec};
use std::path::PathBuf;
use std::time::Instant;

/// The `splitdial` binary of this build, next to the test executable.
///
/// # Panics
/// When it is not built, saying how to build it.
pub fn splitdial() -> PathBuf {
    testbed::workspace_binary("splitdial")
}

/// `spec` started on a fresh simulated LAN.
///
/// # Panics
/// Without root ([`testbed::NEEDS_ROOT`]), or when the household does not
/// come up.
pub fn start_on_lan(spec: HouseholdSpec) -> Household {
    testbed::require_root();
    let started = Instant::now();
    let home = Household::start(spec, Placement::Lan).expect("the household starts");
    eprintln!(
        "household up in {:?}: {:?}",
        started.elapsed(),
        home.timings()
    );
    home
}

/// A dialer of `home` logged in as `user`.
pub fn dialer<'a>(home: &'a Household, user: &str) -> Dialer<'a> {
    Dialer::as_user(home, splitdial(), user)
}

/// The demo household plus carol: a splitdial user with one phone on
/// `family.example` (tone 1320 Hz) that answers alice at once, in alice's
/// contacts and with alice in hers, so she can join a call of alice's there.
///
/// # Panics
/// Never for the demo household (it has alice and bob's phone).
pub fn demo_with_carol() -> HouseholdSpec {
    let mut spec = HouseholdSpec::demo();
    let mut phone: TalkerSpec = spec
        .talker("bob-phone")
        .expect("the demo household has bob's phone")
        .clone();
    phone.id = "carol-phone".into();
    phone.name = "Carol's phone".into();
    phone.owner = Some("carol".into());
    phone.tone_hz = 1320.0;
    for account in &mut phone.accounts {
        account.user = "carol".into();
    }
    spec.talkers.push(phone);
    let mut carol = spec
        .users
        .iter()
        .find(|u| u.name == "bob")
        .expect("the demo household has bob")
        .clone();
    carol.name = "carol".into();
    carol.display_name = "Carol".into();
    spec.users.push(carol);
    if let Some(alice) = spec.users.iter_mut().find(|u| u.name == "alice") {
        alice.contacts.push(ContactSpec::User {
            name: "carol".into(),
            user: "carol".into(),
        });
    }
    spec
}
