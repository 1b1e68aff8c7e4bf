//! Strict encode and decode of the talker TXT record (RFC 6763 §6, DESIGN.md).
//!
//! Record layout, in this order: `txtvers=1`, `id=`, `kind=`, `media=`, `state=`,
//! `rev=` after the first update, and `servers=` only when the whole record still
//! fits in [`TXT_MAX_BYTES`].
//! Keys are at most [`KEY_MAX_LEN`] characters. Decoding never panics: it either
//! repairs a record (and says what it repaired, see [`Repair`]) or rejects it with
//! a [`TxtError`] naming the reason.

use crate::ad::{
    AdError, Media, TalkerAd, TalkerId, TalkerKind, TalkerState, check_server, media_word,
    parse_media_word,
};
use std::collections::HashSet;
use std::fmt;

/// The only record version this crate writes and reads.
pub const TXTVERS: &str = "1";
/// Hard limit for the whole TXT record on the wire, in bytes.
pub const TXT_MAX_BYTES: usize = 400;
/// Longest key this crate writes (RFC 6763 §6.4 recommends at most 9).
pub const KEY_MAX_LEN: usize = 9;
/// Longest single TXT string (length byte excluded).
pub const STRING_MAX_BYTES: usize = 255;

/// One `key[=value]` string of a TXT record. `value` is `None` for a boolean key
/// (no `=`), and raw bytes otherwise (RFC 6763 values need not be UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtEntry {
    /// The key as received (compare case-insensitively).
    pub key: String,
    /// The value bytes, if there was an `=`.
    pub value: Option<Vec<u8>>,
}

impl TxtEntry {
    /// An entry with a text value.
    pub fn new(key: &str, value: &str) -> Self {
        Self {
            key: key.to_owned(),
            value: Some(value.as_bytes().to_vec()),
        }
    }

    /// Bytes this entry takes on the wire, its length byte included.
    pub fn wire_len(&self) -> usize {
        1 + self.key.len() + self.value.as_ref().map_or(0, |v| 1 + v.len())
    }
}

/// Bytes a list of entries takes on the wire (an empty record is one zero byte).
pub fn wire_len(entries: &[TxtEntry]) -> usize {
    entries.iter().map(TxtEntry::wire_len).sum::<usize>().max(1)
}

/// The part of a [`TalkerAd`] that travels in the TXT record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TalkerTxt {
    /// Talker id.
    pub id: TalkerId,
    /// Device kind.
    pub kind: TalkerKind,
    /// Media.
    pub media: Media,
    /// Idle or busy.
    pub state: TalkerState,
    /// SIP server domains (empty when the record left them out).
    pub servers: Vec<String>,
}

impl From<&TalkerAd> for TalkerTxt {
    fn from(ad: &TalkerAd) -> Self {
        Self {
            id: ad.id.clone(),
            kind: ad.kind,
            media: ad.media,
            state: ad.state,
            servers: ad.servers.clone(),
        }
    }
}

/// Why a TXT record was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxtError {
    /// The record is larger than [`TXT_MAX_BYTES`].
    #[error("record is {0} bytes, over the {TXT_MAX_BYTES}-byte limit")]
    Oversize(usize),
    /// No `txtvers` key.
    #[error("no txtvers key")]
    MissingTxtvers,
    /// A `txtvers` other than 1.
    #[error("unsupported txtvers {0:?}")]
    UnsupportedTxtvers(String),
    /// A required key is missing.
    #[error("missing key {0}")]
    MissingKey(&'static str),
    /// A required key has no `=value`.
    #[error("key {0} has no value")]
    MissingValue(&'static str),
    /// A required value is not UTF-8.
    #[error("value of {0} is not UTF-8")]
    NotUtf8(&'static str),
    /// A value is not acceptable.
    #[error(transparent)]
    BadField(#[from] AdError),
    /// A length byte points past the end of the record.
    #[error("string at offset {offset} claims {len} bytes but only {left} are left")]
    Truncated {
        /// Offset of the length byte.
        offset: usize,
        /// The claimed length.
        len: usize,
        /// Bytes actually left.
        left: usize,
    },
}

/// Something decoding fixed or ignored instead of rejecting the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// A zero-length string was skipped.
    EmptyString,
    /// An `=value` string (empty key) was ignored (RFC 6763 §6.4).
    EmptyKey,
    /// A key with characters outside printable ASCII was ignored.
    BadKey(String),
    /// A repeated key was ignored; the first occurrence wins (RFC 6763 §6.4).
    DuplicateKey(String),
    /// A key this version does not know was ignored.
    UnknownKey(String),
    /// `txtvers` was present but not the first string.
    TxtversNotFirst,
    /// An unknown `kind` was read as `other`.
    UnknownKind(String),
    /// A `servers` value that was not UTF-8 was dropped.
    ServersNotUtf8,
    /// A server domain that is not a plain host name was dropped.
    BadServer(String),
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repair::EmptyString => write!(f, "skipped a zero-length string"),
            Repair::EmptyKey => write!(f, "ignored a string with an empty key"),
            Repair::BadKey(k) => write!(f, "ignored key {k:?}: not printable ASCII"),
            Repair::DuplicateKey(k) => write!(f, "ignored repeated key {k:?} (first wins)"),
            Repair::UnknownKey(k) => write!(f, "ignored unknown key {k:?}"),
            Repair::TxtversNotFirst => write!(f, "txtvers was not the first string"),
            Repair::UnknownKind(k) => write!(f, "read unknown kind {k:?} as other"),
            Repair::ServersNotUtf8 => write!(f, "dropped servers: value not UTF-8"),
            Repair::BadServer(s) => write!(f, "dropped bad server domain {s:?}"),
        }
    }
}

/// A decoded record and what decoding had to repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The talker fields.
    pub txt: TalkerTxt,
    /// Everything fixed or ignored on the way (empty for a clean record).
    pub repairs: Vec<Repair>,
}

/// Encodes the TXT fields in the fixed order. `revision` counts the advertiser's
/// updates: from 1 on it is written as `rev=`, so that every update is a record
/// no browser has cached yet. (A flip back to an earlier record, e.g. idle ->
/// busy -> idle, would otherwise match the old record still in a browser's cache
/// during its RFC 6762 §10.2 one-second flush and be taken as a mere TTL
/// refresh: mdns-sd then reports no change.) The `servers` key is left out
/// whole (with a log line) when it would push the record over [`TXT_MAX_BYTES`]
/// or one string over 255 bytes. Fails only on a bad server domain.
pub fn encode(txt: &TalkerTxt, revision: u32) -> Result<Vec<TxtEntry>, TxtError> {
    let mut entries = vec![
        TxtEntry::new("txtvers", TXTVERS),
        TxtEntry::new("id", txt.id.as_str()),
        TxtEntry::new("kind", txt.kind.as_str()),
        TxtEntry::new("media", media_word(txt.media)),
        TxtEntry::new("state", txt.state.as_str()),
    ];
    if revision > 0 {
        entries.push(TxtEntry::new("rev", &revision.to_string()));
    }
    if !txt.servers.is_empty() {
        for server in &txt.servers {
            check_server(server)?;
        }
        let servers = TxtEntry::new("servers", &txt.servers.join(","));
        let fits = servers.wire_len() - 1 <= STRING_MAX_BYTES
            && wire_len(&entries) + servers.wire_len() <= TXT_MAX_BYTES;
        if fits {
            entries.push(servers);
        } else {
            tracing::info!(
                talker = %txt.id,
                servers = txt.servers.len(),
                "servers left out of the TXT record: it would not fit in {TXT_MAX_BYTES} bytes"
            );
        }
    }
    Ok(entries)
}

/// The wire form of entries: each string prefixed by its length byte (an empty
/// record is a single zero byte, RFC 6763 §6.1).
pub fn to_wire(entries: &[TxtEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(wire_len(entries));
    for e in entries {
        let mut s = e.key.as_bytes().to_vec();
        if let Some(v) = &e.value {
            s.push(b'=');
            s.extend_from_slice(v);
        }
        s.truncate(STRING_MAX_BYTES);
        out.push(u8::try_from(s.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&s);
    }
    if out.is_empty() {
        out.push(0);
    }
    out
}

/// Splits wire bytes into entries. Zero-length strings are kept as entries with an
/// empty key and no value so that [`decode`] can report them; a length byte that
/// runs past the end is an error.
pub fn parse_wire(bytes: &[u8]) -> Result<Vec<TxtEntry>, TxtError> {
    let mut entries = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let len = usize::from(bytes[offset]);
        let start = offset + 1;
        let left = bytes.len() - start;
        if len > left {
            return Err(TxtError::Truncated { offset, len, left });
        }
        let s = &bytes[start..start + len];
        let (key, value) = match s.iter().position(|&b| b == b'=') {
            Some(i) => (&s[..i], Some(s[i + 1..].to_vec())),
            None => (s, None),
        };
        entries.push(TxtEntry {
            key: String::from_utf8_lossy(key).into_owned(),
            value,
        });
        offset = start + len;
    }
    // A lone zero byte is the canonical empty record, not a zero-length string.
    if bytes == [0] {
        entries.clear();
    }
    Ok(entries)
}

/// Parses and decodes wire bytes (see [`decode`]).
pub fn decode_wire(bytes: &[u8]) -> Result<Decoded, TxtError> {
    if bytes.len() > TXT_MAX_BYTES {
        return Err(TxtError::Oversize(bytes.len()));
    }
    // The size limit is checked on the bytes as received, not on the entries:
    // a key that is not UTF-8 grows when read as text (each bad byte becomes a
    // three-byte U+FFFD), and such a key is only ignored, never a reason to
    // refuse a record that fits.
    decode_fitting(&parse_wire(bytes)?)
}

fn is_printable_ascii(key: &str) -> bool {
    key.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b'=')
}

/// Which known key an entry is, for [`decode`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Known {
    Txtvers,
    Id,
    Kind,
    Media,
    State,
    Servers,
}

/// Decodes entries into talker fields, repairing what RFC 6763 says to ignore and
/// rejecting what cannot be trusted. Keys compare case-insensitively.
pub fn decode(entries: &[TxtEntry]) -> Result<Decoded, TxtError> {
    let size = wire_len(entries);
    if size > TXT_MAX_BYTES {
        return Err(TxtError::Oversize(size));
    }
    decode_fitting(entries)
}

/// [`decode`] for entries whose record is known to fit in [`TXT_MAX_BYTES`].
fn decode_fitting(entries: &[TxtEntry]) -> Result<Decoded, TxtError> {
    let mut repairs = Vec::new();
    let mut seen = HashSet::new();
    let mut found: Vec<(Known, usize, Option<&[u8]>)> = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        if entry.key.is_empty() {
            repairs.push(if entry.value.is_some() {
                Repair::EmptyKey
            } else {
                Repair::EmptyString
            });
            continue;
        }
        if !is_printable_ascii(&entry.key) {
            repairs.push(Repair::BadKey(entry.key.clone()));
            continue;
        }
        let key = entry.key.to_ascii_lowercase();
        if !seen.insert(key.clone()) {
            repairs.push(Repair::DuplicateKey(key));
            continue;
        }
        let known = match key.as_str() {
            "txtvers" => Known::Txtvers,
            "id" => Known::Id,
            "kind" => Known::Kind,
            "media" => Known::Media,
            "state" => Known::State,
            "servers" => Known::Servers,
            // Only makes each update a new record; its value means nothing to a reader.
            "rev" => continue,
            _ => {
                repairs.push(Repair::UnknownKey(key));
                continue;
            }
        };
        found.push((known, index, entry.value.as_deref()));
    }
    let lookup = |k: Known| found.iter().find(|(known, _, _)| *known == k);
    let text = |k: Known, name: &'static str| -> Result<&str, TxtError> {
        let (_, _, value) = lookup(k).ok_or(TxtError::MissingKey(name))?;
        let value = value.ok_or(TxtError::MissingValue(name))?;
        std::str::from_utf8(value).map_err(|_| TxtError::NotUtf8(name))
    };

    let (_, txtvers_index, txtvers) = lookup(Known::Txtvers).ok_or(TxtError::MissingTxtvers)?;
    let txtvers = txtvers.ok_or(TxtError::MissingValue("txtvers"))?;
    if txtvers != TXTVERS.as_bytes() {
        return Err(TxtError::UnsupportedTxtvers(
            String::from_utf8_lossy(txtvers).into_owned(),
        ));
    }
    let first_real = entries
        .iter()
        .position(|e| !e.key.is_empty())
        .unwrap_or_default();
    if *txtvers_index != first_real {
        repairs.push(Repair::TxtversNotFirst);
    }

    let id = TalkerId::new(text(Known::Id, "id")?)?;
    let kind_word = text(Known::Kind, "kind")?;
    let kind = kind_word.parse().unwrap_or_else(|_| {
        repairs.push(Repair::UnknownKind(kind_word.to_owned()));
        TalkerKind::Other
    });
    let media: Media = parse_media_word(text(Known::Media, "media")?)?;
    let state: TalkerState = text(Known::State, "state")?
        .parse()
        .map_err(AdError::from)?;

    let mut servers = Vec::new();
    if let Some((_, _, value)) = lookup(Known::Servers) {
        match std::str::from_utf8(value.unwrap_or_default()) {
            Ok(list) => {
                for server in list.split(',').filter(|s| !s.is_empty()) {
                    if check_server(server).is_ok() {
                        servers.push(server.to_owned());
                    } else {
                        repairs.push(Repair::BadServer(server.to_owned()));
                    }
                }
            }
            Err(_) => repairs.push(Repair::ServersNotUtf8),
        }
    }

    Ok(Decoded {
        txt: TalkerTxt {
            id,
            kind,
            media,
            state,
            servers,
        },
        repairs,
    })
}

/// Converts mdns-sd's received TXT properties into entries for [`decode`].
/// (mdns-sd already dropped non-UTF-8 keys and repeated keys, first one kept.)
pub fn entries_from_properties(props: &mdns_sd::TxtProperties) -> Vec<TxtEntry> {
    props
        .iter()
        .map(|p| TxtEntry {
            key: p.key().to_owned(),
            value: p.val().map(<[u8]>::to_vec),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TalkerTxt {
        TalkerTxt {
            id: TalkerId::new("tv-1").unwrap(),
            kind: TalkerKind::Tv,
            media: Media::Video,
            state: TalkerState::Idle,
            servers: vec!["pbx.example.com".into(), "family.example.net".into()],
        }
    }

    #[test]
    fn encodes_in_order_with_txtvers_first() {
        let wire = to_wire(&encode(&sample(), 0).unwrap());
        let expected: &[&str] = &[
            "txtvers=1",
            "id=tv-1",
            "kind=tv",
            "media=audio,video",
            "state=idle",
            "servers=pbx.example.com,family.example.net",
        ];
        let strings: Vec<String> = parse_wire(&wire)
            .unwrap()
            .into_iter()
            .map(|e| format!("{}={}", e.key, String::from_utf8(e.value.unwrap()).unwrap()))
            .collect();
        assert_eq!(strings, expected);
        for e in encode(&sample(), 0).unwrap() {
            assert!(e.key.len() <= KEY_MAX_LEN);
        }
    }

    #[test]
    fn an_update_revision_is_written_after_state_and_read_as_nothing() {
        let entries = encode(&sample(), 7).unwrap();
        let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            ["txtvers", "id", "kind", "media", "state", "rev", "servers"]
        );
        assert_eq!(entries[5].value.as_deref(), Some(&b"7"[..]));
        let d = decode(&entries).unwrap();
        assert_eq!(d.txt, sample());
        assert!(d.repairs.is_empty(), "{:?}", d.repairs);
        assert_ne!(entries, encode(&sample(), 8).unwrap());
    }

    #[test]
    fn round_trips() {
        let d = decode_wire(&to_wire(&encode(&sample(), 0).unwrap())).unwrap();
        assert_eq!(d.txt, sample());
        assert!(d.repairs.is_empty(), "{:?}", d.repairs);
    }

    #[test]
    fn servers_left_out_whole_when_too_long() {
        let mut t = sample();
        t.servers = (0..40).map(|i| format!("server{i}.example.com")).collect();
        let entries = encode(&t, 0).unwrap();
        assert!(entries.iter().all(|e| e.key != "servers"));
        assert!(wire_len(&entries) <= TXT_MAX_BYTES);
        let d = decode(&entries).unwrap();
        assert!(d.txt.servers.is_empty());
    }

    #[test]
    fn rejects_bad_records_with_reasons() {
        let base = encode(&sample(), 0).unwrap();
        let mut no_vers = base.clone();
        no_vers.remove(0);
        assert_eq!(decode(&no_vers), Err(TxtError::MissingTxtvers));

        let mut v2 = base.clone();
        v2[0] = TxtEntry::new("txtvers", "2");
        assert!(matches!(decode(&v2), Err(TxtError::UnsupportedTxtvers(_))));

        let mut bad_id = base.clone();
        bad_id[1] = TxtEntry::new("id", "no spaces");
        assert!(matches!(
            decode(&bad_id),
            Err(TxtError::BadField(AdError::BadId(_)))
        ));

        let mut bin_state = base.clone();
        bin_state[4].value = Some(vec![0xff, 0xfe]);
        assert_eq!(decode(&bin_state), Err(TxtError::NotUtf8("state")));

        let mut bool_media = base.clone();
        bool_media[3].value = None;
        assert_eq!(decode(&bool_media), Err(TxtError::MissingValue("media")));

        let mut big = base;
        big.push(TxtEntry::new("pad", &"x".repeat(250)));
        big.push(TxtEntry::new("pad2", &"x".repeat(250)));
        assert!(matches!(decode(&big), Err(TxtError::Oversize(_))));

        assert!(matches!(
            parse_wire(&[5, b'a', b'b']),
            Err(TxtError::Truncated { .. })
        ));
    }

    #[test]
    fn repairs_what_rfc_6763_says_to_ignore() {
        let mut entries = vec![
            TxtEntry::new("", "sneaky"),
            TxtEntry::new("id", "tv-1"),
            TxtEntry::new("TXTVERS", "1"),
            TxtEntry::new("ID", "other-id"),
            TxtEntry::new("kind", "fridge"),
            TxtEntry::new("media", "audio"),
            TxtEntry::new("state", "busy"),
            TxtEntry::new("servers", "ok.example,bad domain,,x.example"),
            TxtEntry::new("future", "whatever"),
            TxtEntry::new("k\u{e9}y", "v"),
        ];
        entries.push(TxtEntry {
            key: String::new(),
            value: None,
        });
        let d = decode(&entries).unwrap();
        assert_eq!(d.txt.id.as_str(), "tv-1");
        assert_eq!(d.txt.kind, TalkerKind::Other);
        assert_eq!(d.txt.state, TalkerState::Busy);
        assert_eq!(d.txt.servers, vec!["ok.example", "x.example"]);
        for r in [
            Repair::EmptyKey,
            Repair::EmptyString,
            Repair::TxtversNotFirst,
            Repair::DuplicateKey("id".into()),
            Repair::UnknownKind("fridge".into()),
            Repair::BadServer("bad domain".into()),
            Repair::UnknownKey("future".into()),
            Repair::BadKey("k\u{e9}y".into()),
        ] {
            assert!(d.repairs.contains(&r), "missing {r}: {:?}", d.repairs);
        }
    }

    /// Found by the `txt_record` fuzz target: a 202-byte record was refused
    /// as `Oversize(...)` over 400, its keys that are not UTF-8 counted after
    /// they had grown into U+FFFD.
    #[test]
    fn keys_that_are_not_utf8_do_not_make_a_record_oversize() {
        let mut wire = to_wire(&encode(&sample(), 3).unwrap());
        wire.push(200);
        wire.extend(std::iter::repeat_n(0xff, 200));
        assert!(wire.len() <= TXT_MAX_BYTES, "{}", wire.len());
        let d = decode_wire(&wire).unwrap();
        assert_eq!(d.txt, sample());
        assert!(
            matches!(d.repairs.as_slice(), [Repair::BadKey(_)]),
            "{:?}",
            d.repairs
        );
        wire.push(0);
        wire.extend(std::iter::repeat_n(0xff, TXT_MAX_BYTES));
        assert_eq!(decode_wire(&wire), Err(TxtError::Oversize(wire.len())));
    }

    #[test]
    fn empty_record_is_one_zero_byte() {
        assert_eq!(to_wire(&[]), vec![0]);
        assert!(parse_wire(&[0]).unwrap().is_empty());
        assert_eq!(decode_wire(&[0]), Err(TxtError::MissingTxtvers));
    }
}
