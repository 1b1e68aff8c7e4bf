//! The typed talker advertisement and its field types.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// Longest talker id accepted, in bytes.
pub const TALKER_ID_MAX_LEN: usize = 64;
/// Longest instance name accepted, in bytes (one DNS label).
pub const INSTANCE_MAX_LEN: usize = 63;
/// Longest SIP server domain accepted, in bytes.
pub const DOMAIN_MAX_LEN: usize = 253;

/// Why a field of a talker advertisement is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdError {
    /// The talker id is empty, too long or has characters outside `[A-Za-z0-9._-]`.
    #[error("bad talker id {0:?}: 1 to 64 characters of A-Z a-z 0-9 . _ -")]
    BadId(String),
    /// The instance name is empty, longer than 63 bytes or has control characters.
    #[error("bad instance name {0:?}: 1 to 63 bytes, no control characters")]
    BadInstance(String),
    /// A server domain is not a plain host name.
    #[error("bad server domain {0:?}: letters, digits, '-' and '.', at most 253 bytes")]
    BadServer(String),
    /// A value is not one of the allowed words.
    #[error("bad {field} {value:?}: expected one of {expected}")]
    BadWord {
        /// The field, e.g. `kind`.
        field: &'static str,
        /// What was given.
        value: String,
        /// The accepted values.
        expected: &'static str,
    },
    /// Port 0 cannot be dialed.
    #[error("port 0 cannot be advertised")]
    ZeroPort,
}

/// A talker's stable id, as the matcher's registry knows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TalkerId(String);

impl TalkerId {
    /// Checks and wraps an id: 1 to 64 characters of `A-Z a-z 0-9 . _ -`.
    pub fn new(id: impl Into<String>) -> Result<Self, AdError> {
        let id = id.into();
        let ok = !id.is_empty()
            && id.len() <= TALKER_ID_MAX_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(id))
        } else {
            Err(AdError::BadId(id))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TalkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TalkerId {
    type Err = AdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for TalkerId {
    type Error = AdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<TalkerId> for String {
    fn from(id: TalkerId) -> Self {
        id.0
    }
}

pub use splitdial_api::{Media, TalkerKind, TalkerState};

/// A `kind=` or `state=` word that is not one of its set.
impl From<splitdial_api::UnknownWord> for AdError {
    fn from(e: splitdial_api::UnknownWord) -> Self {
        AdError::BadWord {
            field: e.field,
            value: e.word,
            expected: e.expected,
        }
    }
}

/// The `media=` word of the TXT record: `audio`, or `audio,video` for
/// [`Media::Video`] (DNS-SD lists what a talker carries; the API names the
/// richest).
pub fn media_word(media: Media) -> &'static str {
    match media {
        Media::Audio => "audio",
        Media::Video => "audio,video",
    }
}

/// Reads a `media=` word: `audio` or `audio,video`.
pub fn parse_media_word(word: &str) -> Result<Media, AdError> {
    match word {
        "audio" => Ok(Media::Audio),
        "audio,video" => Ok(Media::Video),
        _ => Err(AdError::BadWord {
            field: "media",
            value: word.to_owned(),
            expected: "audio audio,video",
        }),
    }
}

/// Serde of a [`Media`] as its TXT word (`discovery-browse` prints
/// advertisements with the words the record carries).
mod media_as_txt_word {
    use super::{Media, media_word, parse_media_word};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(media: &Media, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(media_word(*media))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Media, D::Error> {
        let word = String::deserialize(deserializer)?;
        parse_media_word(&word).map_err(serde::de::Error::custom)
    }
}

/// Checks an instance name: 1 to 63 bytes of UTF-8 without control characters.
pub fn check_instance(name: &str) -> Result<(), AdError> {
    if name.is_empty() || name.len() > INSTANCE_MAX_LEN || name.chars().any(char::is_control) {
        return Err(AdError::BadInstance(name.to_owned()));
    }
    Ok(())
}

/// Checks a SIP server domain: a host name (or IPv4 literal) of letters, digits,
/// `-` and `.`, labels of 1 to 63 bytes not starting or ending with `-`.
pub fn check_server(domain: &str) -> Result<(), AdError> {
    let bad = || AdError::BadServer(domain.to_owned());
    if domain.is_empty() || domain.len() > DOMAIN_MAX_LEN {
        return Err(bad());
    }
    for label in domain.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

/// One talker as advertised over DNS-SD: the TXT fields plus what SRV and A/AAAA carry.
///
/// `instance`, `addresses` and `port` travel in the PTR, SRV and address records;
/// everything else in the TXT record (see [`crate::txt`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TalkerAd {
    /// The talker's id in the matcher's registry.
    pub id: TalkerId,
    /// The human name, used as the DNS-SD instance name (e.g. "Living room TV").
    pub instance: String,
    /// Device kind.
    pub kind: TalkerKind,
    /// Media it can carry (`media=audio` or `audio,video`).
    #[serde(with = "media_as_txt_word")]
    pub media: Media,
    /// SIP server domains it has accounts on (may be left out of the TXT record when
    /// it would not fit; the matcher's registry is authoritative).
    pub servers: Vec<String>,
    /// Idle or busy.
    pub state: TalkerState,
    /// Its addresses, IPv4 first, sorted. Empty when advertising means "all
    /// addresses of the selected interfaces".
    pub addresses: Vec<IpAddr>,
    /// The agent's local status HTTP port.
    pub port: u16,
}

impl TalkerAd {
    /// Checks every field that will be advertised.
    pub fn validate(&self) -> Result<(), AdError> {
        check_instance(&self.instance)?;
        for server in &self.servers {
            check_server(server)?;
        }
        if self.port == 0 {
            return Err(AdError::ZeroPort);
        }
        Ok(())
    }

    /// Socket addresses to reach the talker's local API, IPv4 first.
    pub fn socket_addrs(&self) -> Vec<SocketAddr> {
        self.addresses
            .iter()
            .map(|ip| SocketAddr::new(*ip, self.port))
            .collect()
    }
}

/// Sorts addresses IPv4 first, then IPv6, each ascending, without duplicates.
pub fn sort_addresses(addresses: &mut Vec<IpAddr>) {
    addresses.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    addresses.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(TalkerId::new("tv-1.home_A").is_ok());
        assert!(TalkerId::new("").is_err());
        assert!(TalkerId::new("a b").is_err());
        assert!(TalkerId::new("é").is_err());
        assert!(TalkerId::new("x".repeat(64)).is_ok());
        assert!(TalkerId::new("x".repeat(65)).is_err());
    }

    #[test]
    fn words_round_trip() {
        for k in TalkerKind::ALL {
            assert_eq!(k.as_str().parse::<TalkerKind>().unwrap(), *k);
        }
        assert_eq!(parse_media_word("audio,video").unwrap(), Media::Video);
        assert_eq!(
            parse_media_word(media_word(Media::Audio)).unwrap(),
            Media::Audio
        );
        assert!(parse_media_word("video").is_err());
        assert!(matches!(
            "Idle".parse::<TalkerState>().map_err(AdError::from),
            Err(AdError::BadWord { field: "state", .. })
        ));
    }

    #[test]
    fn servers_and_instances_are_checked() {
        assert!(check_server("sip.example.com").is_ok());
        assert!(check_server("192.168.1.10").is_ok());
        assert!(check_server("-bad.example").is_err());
        assert!(check_server("a..b").is_err());
        assert!(check_server("a,b").is_err());
        assert!(check_instance("Living room TV").is_ok());
        assert!(check_instance("Télé du salon").is_ok());
        assert!(check_instance("").is_err());
        assert!(check_instance("a\nb").is_err());
        assert!(check_instance(&"x".repeat(64)).is_err());
    }

    #[test]
    fn addresses_sort_ipv4_first() {
        let mut a: Vec<IpAddr> = vec![
            "fe80::1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
        ];
        sort_addresses(&mut a);
        assert_eq!(a.len(), 3);
        assert!(a[0].is_ipv4() && a[1].is_ipv4() && a[2].is_ipv6());
    }
}
