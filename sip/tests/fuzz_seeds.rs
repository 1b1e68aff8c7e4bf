//! The `sip_headers` fuzz target's properties over its seed corpus
//! (`fuzz/corpus/sip_headers/`), on stable in CI, which has no cargo-fuzz: the
//! properties are the target's own (`fuzz/properties/sip_headers.rs`). Seeds
//! for sip-server's `Authorization` parser are replayed in
//! `sip-server/tests/fuzz_seeds.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

#[path = "../../fuzz/properties/sip_headers.rs"]
mod properties;

/// No parser panics, and whatever one accepts prints and reads back the same.
#[test]
fn the_fuzz_seeds_keep_the_fuzz_targets_properties() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/sip_headers");
    let mut parsers = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        eprintln!("{}", path.display());
        properties::check(&bytes);
        if let Some((parser, _)) = properties::split(&bytes) {
            parsers.insert(format!("{parser:?}"));
        }
    }
    // Every parser has seeds (Authorization's are checked by sip-server).
    assert_eq!(parsers.len(), 7, "seeds in {}: {parsers:?}", dir.display());
}
