//! Property tests of the TXT codec: round trips of valid records, and decoding
//! of arbitrary bytes and arbitrary entry lists never panics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use discovery::txt::{self, TXT_MAX_BYTES, TalkerTxt, TxtEntry};
use discovery::{Media, TalkerId, TalkerKind, TalkerState};
use proptest::prelude::*;

fn id() -> impl Strategy<Value = TalkerId> {
    "[A-Za-z0-9._-]{1,64}".prop_map(|s| TalkerId::new(s).unwrap())
}

fn domain() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", 1..4).prop_map(|l| l.join("."))
}

fn talker_txt() -> impl Strategy<Value = TalkerTxt> {
    (
        id(),
        prop::sample::select(TalkerKind::ALL.to_vec()),
        prop::sample::select(Media::ALL.to_vec()),
        prop::sample::select(TalkerState::ALL.to_vec()),
        prop::collection::vec(domain(), 0..30),
    )
        .prop_map(|(id, kind, media, state, servers)| TalkerTxt {
            id,
            kind,
            media,
            state,
            servers,
        })
}

fn entry() -> impl Strategy<Value = TxtEntry> {
    let key = prop_oneof![
        Just("txtvers".to_owned()),
        Just("id".to_owned()),
        Just("ID".to_owned()),
        Just("kind".to_owned()),
        Just("media".to_owned()),
        Just("state".to_owned()),
        Just("servers".to_owned()),
        Just(String::new()),
        ".{0,12}",
    ];
    let value = prop::option::of(prop_oneof![
        Just(b"1".to_vec()),
        Just(b"tv".to_vec()),
        Just(b"audio,video".to_vec()),
        Just(b"idle".to_vec()),
        prop::collection::vec(any::<u8>(), 0..80),
    ]);
    (key, value).prop_map(|(key, value)| TxtEntry { key, value })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_records_round_trip(t in talker_txt(), revision in any::<u32>()) {
        let entries = txt::encode(&t, revision).unwrap();
        let wire = txt::to_wire(&entries);
        prop_assert!(wire.len() <= TXT_MAX_BYTES);
        prop_assert_eq!(&entries[0].key, "txtvers");
        prop_assert!(entries.iter().all(|e| e.key.len() <= txt::KEY_MAX_LEN));
        let decoded = txt::decode_wire(&wire).unwrap();
        prop_assert!(decoded.repairs.is_empty(), "{:?}", decoded.repairs);
        let servers_kept = entries.iter().any(|e| e.key == "servers");
        let mut expected = t.clone();
        if !servers_kept {
            // Left out whole, never cut: only when it could not fit.
            let full = t.servers.join(",").len() + "servers=".len() + 1;
            prop_assert!(t.servers.is_empty() || txt::wire_len(&entries) + full > TXT_MAX_BYTES
                || full - 1 > 255);
            expected.servers.clear();
        }
        prop_assert_eq!(decoded.txt, expected);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..700)) {
        if let Ok(decoded) = txt::decode_wire(&bytes) {
            // Whatever is accepted re-encodes to a record that decodes the same.
            let again = txt::decode_wire(&txt::to_wire(&txt::encode(&decoded.txt, 0).unwrap())).unwrap();
            prop_assert_eq!(again.txt, decoded.txt);
        }
    }

    #[test]
    fn arbitrary_entries_never_panic(entries in prop::collection::vec(entry(), 0..12)) {
        if let Ok(decoded) = txt::decode(&entries) {
            prop_assert!(TalkerId::new(decoded.txt.id.as_str()).is_ok());
            prop_assert!(txt::wire_len(&entries) <= TXT_MAX_BYTES);
        }
    }

    #[test]
    fn mutated_records_never_panic(
        t in talker_txt(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut wire = txt::to_wire(&txt::encode(&t, 0).unwrap());
        for (at, byte) in flips {
            let i = at.index(wire.len());
            wire[i] = byte;
        }
        wire.truncate(cut.index(wire.len() + 1));
        let _ = txt::decode_wire(&wire);
    }
}
