//! Mouth-to-ear latency in the full path (issue 7): the demo household on the
//! simulated LAN, alice's TV calling Bob's phone through the dialer's CLI
//! (`splitdial call bob --on tv`), both agents sending `beeps:` sources whose
//! bursts start on whole seconds of the wall clock. Each side's `analyze` sink
//! notes where in its second every burst was played: that is the latency from
//! the sender's capture to the receiver's playback, through both agents' media
//! workers, the jitter buffer and the LAN's bridge. The agents share this
//! machine's clock, so no clock offset enters.
//!
//! Run as root (network namespaces), release binaries next to the bench:
//!
//! ```text
//! cargo build --release --bins
//! unshare --net -- sh -c 'ip link set lo up && cargo bench -p household --bench mouth_to_ear'
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use household::dialer::Dialer;
use household::{Household, HouseholdSpec, Placement};
use std::time::{Duration, Instant};

/// Calls measured; each gives up to `SoundStats::MAX_ONSETS` (16) bursts per direction.
const CALLS: usize = 3;
/// How long a call runs after its first burst was heard: long enough that
/// the kept onsets are all whole bursts (the first may have been cut by the
/// call's start).
const LISTEN: Duration = Duration::from_millis(17_500);
const CALLER: &str = "tv";
const CALLEE: &str = "bob-phone";

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("mouth_to_ear: bench");
        return;
    }
    if !testbed::is_root() {
        println!("skipped: the simulated LAN needs root");
        return;
    }
    let mut spec = HouseholdSpec::demo();
    for id in [CALLER, CALLEE] {
        spec.talker_mut(id).expect("a demo talker").beeps = true;
    }
    let started = Instant::now();
    let home = Household::start(spec, Placement::Lan)
        .expect("start the demo household (binaries built with `cargo build --release --bins`?)");
    eprintln!("household up in {:?}", started.elapsed());
    let splitdial = testbed::workspace_binary("splitdial");
    let alice = Dialer::as_user(&home, splitdial, "alice");

    let (mut to_callee, mut to_caller) = (Vec::new(), Vec::new());
    for call in 1..=CALLS {
        alice.expect(&["call", "bob", "--on", CALLER], 0);
        home.wait_for("the first bursts heard", Duration::from_secs(30), || {
            let heard = !home.onsets_past_second(CALLEE, "incoming").is_empty()
                && !home.onsets_past_second(CALLER, "referred").is_empty();
            heard.then_some(())
        });
        std::thread::sleep(LISTEN);
        let (a, b) = (
            home.onsets_past_second(CALLEE, "incoming"),
            home.onsets_past_second(CALLER, "referred"),
        );
        eprintln!("call {call}: TV → Bob {a:.1?}; Bob → TV {b:.1?}");
        to_callee.extend(a);
        to_caller.extend(b);
        alice.expect(&["hangup"], 0);
        home.wait_no_calls(CALLEE);
        home.wait_no_calls(CALLER);
    }
    home.shutdown();

    println!("mouth-to-ear in the full path, {CALLS} calls (ms from capture to playback)");
    println!("| direction | median | min | p90 | max | n |");
    println!("|---|---|---|---|---|---|");
    for (direction, values) in [
        ("TV → Bob's phone", to_callee),
        ("Bob's phone → TV", to_caller),
    ] {
        let mut sorted = values;
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            println!("| {direction} | — | — | — | — | 0 |");
            continue;
        }
        let at = |p: usize| sorted[(sorted.len() * p / 100).min(sorted.len() - 1)];
        println!(
            "| {direction} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            at(50),
            sorted[0],
            at(90),
            sorted[sorted.len() - 1],
            sorted.len()
        );
    }
}
