//! Fuzz target: our own parsers of SIP header values and bodies from the
//! network must never panic, and what they accept prints and reads back the
//! same: `sipfrag::parse` (NOTIFY bodies), `Event`, `Subscription-State`,
//! `Session-Expires`, `Min-SE`, `SipUri` (equivalence) and sip-server's digest
//! `Authorization` parser. The first input byte picks the parser, the rest is
//! the value. The properties are in `fuzz/properties/sip_headers.rs` and
//! `digest_credentials.rs`, shared with the stable replay of the seeds in
//! `sip/tests/fuzz_seeds.rs` and `sip-server/tests/fuzz_seeds.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../properties/sip_headers.rs"]
mod sip_headers;

#[path = "../properties/digest_credentials.rs"]
mod digest_credentials;

fuzz_target!(|data: &[u8]| {
    sip_headers::check(data);
    if let Some((sip_headers::Parser::Authorization, value)) = sip_headers::split(data) {
        digest_credentials::check(&String::from_utf8_lossy(value));
    }
});
