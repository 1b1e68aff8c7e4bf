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

/// Defines a small enum of TXT words with `as_str`, `FromStr`, `Display` and serde as those words.
macro_rules! txt_words {
    ($(#[$meta:meta])* $name:ident, $field:literal, { $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $word)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word used in the TXT record.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }
        }

        impl FromStr for $name {
            type Err = AdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($word => Ok($name::$variant),)+
                    _ => Err(AdError::BadWord {
                        field: $field,
                        value: s.to_owned(),
                        expected: concat!($($word, " "),+),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

txt_words!(
    /// What kind of device the talker is.
    TalkerKind, "kind", {
        /// A television.
        Tv = "tv",
        /// A desktop or laptop computer.
        Pc = "pc",
        /// A phone.
        Phone = "phone",
        /// A tablet.
        Tablet = "tablet",
        /// A speaker (audio only, typically).
        Speaker = "speaker",
        /// Anything else.
        Other = "other",
    }
);

txt_words!(
    /// Which media the talker can carry.
    Media, "media", {
        /// Voice only.
        Audio = "audio",
        /// Voice and video.
        AudioVideo = "audio,video",
    }
);

txt_words!(
    /// Whether the talker is free to take a call.
    TalkerState, "state", {
        /// Free.
        Idle = "idle",
        /// In a call.
        Busy = "busy",
    }
);

impl Media {
    /// Whether video is included.
    pub fn has_video(self) -> bool {
        self == Media::AudioVideo
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
    /// Media it can carry.
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
        assert_eq!("audio,video".parse::<Media>().unwrap(), Media::AudioVideo);
        assert!("video".parse::<Media>().is_err());
        assert!("Idle".parse::<TalkerState>().is_err());
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
