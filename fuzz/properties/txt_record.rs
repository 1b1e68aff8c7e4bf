//! The `txt_record` fuzz target's properties, in one place: the fuzz target
//! (`fuzz/fuzz_targets/txt_record.rs`) and the stable replay of its seeds in CI
//! (`discovery/tests/fuzz_seeds.rs`) both include this file, so the two cannot
//! drift apart. Every check panics on a violation.

use discovery::txt::{self, Decoded, STRING_MAX_BYTES, TXT_MAX_BYTES, TxtEntry, TxtError};

/// Checks every property of the TXT codec on one received record (wire bytes,
/// as mDNS hands them over): splitting, decoding, size limit and round trip.
pub fn check(data: &[u8]) {
    let split = txt::parse_wire(data);
    if let Err(error) = &split {
        // Splitting can only fail on a length byte pointing past the end.
        assert!(matches!(error, TxtError::Truncated { .. }), "{error:?}");
    }
    let decoded = txt::decode_wire(data);
    if let Err(TxtError::Oversize(size)) = &decoded {
        // A record refused for its size is over the limit, and the error
        // names its real size.
        assert!(
            data.len() > TXT_MAX_BYTES,
            "{} bytes refused as {size}",
            data.len()
        );
        assert_eq!(*size, data.len());
    }
    if let Ok(entries) = &split
        && txt::wire_len(entries) == data.len()
    {
        // `decode_wire` is `parse_wire` then `decode` (the decoder of the
        // mdns-sd path), whose size is that of the entries: where the two
        // sizes agree (keys read as UTF-8 may grow), so do the answers.
        assert_eq!(decoded, txt::decode(entries));
    }
    match decoded {
        Ok(accepted) => {
            assert!(data.len() <= TXT_MAX_BYTES, "accepted {} bytes", data.len());
            // (Its entries may count more: keys that are not UTF-8 grow as
            // text, and are ignored.)
            let entries = split.expect("an accepted record splits");
            check_accepted(&entries, &accepted);
        }
        Err(error) => check_error(&error),
    }
}

/// A refusal names its reason on one line (it goes into a log line).
fn check_error(error: &TxtError) {
    let text = error.to_string();
    assert!(
        !text.is_empty() && !text.contains('\n'),
        "{error:?}: {text:?}"
    );
}

/// An accepted record's fields, encoded again with the record's own revision
/// (as an advertiser would) and decoded, are the same fields: clean (no
/// repairs), within the size limit, and with the servers left out only when
/// `encode` had to (they would push the record over [`TXT_MAX_BYTES`]; a
/// repaired `kind` is written as the longer `other`, so this can happen).
fn check_accepted(entries: &[TxtEntry], first: &Decoded) {
    let revision = revision(entries);
    let again = txt::encode(&first.txt, revision).expect("decoded servers are valid domains");
    assert!(txt::wire_len(&again) <= TXT_MAX_BYTES, "{again:?}");
    let wire = txt::to_wire(&again);
    assert_eq!(wire.len(), txt::wire_len(&again), "no string was cut");
    let second = txt::decode_wire(&wire).expect("what we encode decodes");
    assert!(second.repairs.is_empty(), "{:?}", second.repairs);
    let mut expected = first.txt.clone();
    if !again.iter().any(|e| e.key == "servers") && !expected.servers.is_empty() {
        let servers = TxtEntry::new("servers", &expected.servers.join(","));
        let fits = servers.wire_len() - 1 <= STRING_MAX_BYTES
            && txt::wire_len(&again) + servers.wire_len() <= TXT_MAX_BYTES;
        assert!(!fits, "servers left out though they fit: {first:?}");
        expected.servers.clear();
    }
    assert_eq!(second.txt, expected);
    let rev = again.iter().find(|e| e.key == "rev");
    assert_eq!(rev.is_some(), revision > 0, "{again:?}");
}

/// The record's `rev=` as the decoder reads keys (case-insensitive, first one
/// wins), or 0 when absent or not a number.
fn revision(entries: &[TxtEntry]) -> u32 {
    entries
        .iter()
        .find(|e| e.key.eq_ignore_ascii_case("rev"))
        .and_then(|e| e.value.as_deref())
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
