//! The `txt_record` fuzz target's properties over its seed corpus
//! (`fuzz/corpus/txt_record/`), on stable in CI, which has no cargo-fuzz: the
//! properties are the target's own (`fuzz/properties/txt_record.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[path = "../../fuzz/properties/txt_record.rs"]
mod properties;

/// Decoding never panics, a refusal is a `TxtError`, nothing over
/// `TXT_MAX_BYTES` is accepted, and an accepted record encodes and decodes
/// again to the same fields.
#[test]
fn the_fuzz_seeds_keep_the_fuzz_targets_properties() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/txt_record");
    let (mut accepted, mut refused) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        eprintln!("{}", path.display());
        properties::check(&bytes);
        match discovery::txt::decode_wire(&bytes) {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
    }
    // Both sides of the properties are exercised: round trips and refusals.
    assert!(accepted >= 3 && refused >= 2, "seeds in {}", dir.display());
}
