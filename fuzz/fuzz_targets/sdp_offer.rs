//! Fuzz target: the SDP handling of a body that arrives from the network
//! (`splitdial_sip::sdp`, used by the talker agent and the matcher) must never
//! panic. Whatever the text, answering it as an offer (`SdpSession::answer`,
//! `inactive_answer`), reading it as an answer to our own offer
//! (`negotiated_from_answer`) and asking whether it wants media
//! (`offers_active_media`) return a value or an `SdpError` with a 4xx; and an
//! answer we write is itself SDP we can read back. The properties are in
//! `fuzz/properties/sdp_offer.rs`, shared with the stable replay of the seeds in
//! `sip/tests/sdp.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../properties/sdp_offer.rs"]
mod sdp_offer;

fuzz_target!(|data: &[u8]| sdp_offer::check(data));
