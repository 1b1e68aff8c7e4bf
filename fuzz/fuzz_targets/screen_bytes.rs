//! Fuzz target: `screen_bytes` must never panic, whatever arrives from the network,
//! and what it accepts must survive a round trip through the encoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use splitdial_sip::screen::{Verdict, screen_bytes};
use splitdial_sip::sip::SipMessage;

fuzz_target!(|data: &[u8]| {
    match screen_bytes(data) {
        Verdict::Accept(message) => {
            // What we accept we may forward: neither encoding it nor parsing
            // the encoded form again may panic.
            let bytes = message.to_bytes();
            let _ = SipMessage::try_from(bytes.as_slice());
        }
        Verdict::Reject(request, rejection) => {
            assert!((400..=599).contains(&rejection.status), "{rejection:?}");
            let response = splitdial_sip::wire::response_to(
                &request,
                rejection.status,
                &rejection.reason,
                Vec::new(),
            );
            let _ = response.to_bytes();
        }
        Verdict::Drop(_) => {}
    }
});
