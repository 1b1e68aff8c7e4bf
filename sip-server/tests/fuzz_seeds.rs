//! The `sip_headers` fuzz target's properties for the digest `Authorization`
//! parser over its seeds (`fuzz/corpus/sip_headers/`, the inputs whose first
//! byte picks `Authorization`), on stable in CI, which has no cargo-fuzz: the
//! properties are the target's own (`fuzz/properties/digest_credentials.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

// Only `split` and `Parser` are used here: the rest of the file is the
// splitdial-sip side, replayed in `sip/tests/fuzz_seeds.rs`.
#[allow(dead_code)]
#[path = "../../fuzz/properties/sip_headers.rs"]
mod sip_headers;

#[path = "../../fuzz/properties/digest_credentials.rs"]
mod digest_credentials;

/// Parsing never panics, takes exactly `Digest` values, and nothing received
/// authenticates without our nonce key.
#[test]
fn the_fuzz_seeds_keep_the_fuzz_targets_properties() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/sip_headers");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if let Some((sip_headers::Parser::Authorization, value)) = sip_headers::split(&bytes) {
            eprintln!("{}", path.display());
            digest_credentials::check(&String::from_utf8_lossy(value));
            seen += 1;
        }
    }
    assert!(seen >= 2, "Authorization seeds in {}", dir.display());
}
