//! Fuzz target: the talker TXT record as mDNS/DNS-SD delivers it (wire bytes)
//! must never panic the codec (`discovery::txt`). A refusal is a `TxtError`
//! naming its reason, no accepted record is over `TXT_MAX_BYTES`, and an
//! accepted record's fields, encoded again with its revision and decoded, are
//! the same fields (servers left out only where `encode` must). The properties
//! are in `fuzz/properties/txt_record.rs`, shared with the stable replay of the
//! seeds in `discovery/tests/fuzz_seeds.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../properties/txt_record.rs"]
mod properties;

fuzz_target!(|data: &[u8]| properties::check(data));
