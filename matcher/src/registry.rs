//! The registry's vocabulary: users, their talkers, each talker's SIP accounts,
//! the SIP servers those accounts live on, and contacts. Plain data shared by
//! storage, route ranking, the HTTP API and the call controller. The words a
//! talker is described by (kind, media, software) are the wire contract's,
//! from `splitdial-api`.

use serde::{Deserialize, Serialize};
pub use splitdial_api::{Media, TalkerKind, TalkerSoftware};

/// A user's numeric id in the registry (stable, never reused).
pub type UserId = i64;

/// A person or household member who owns talkers and contacts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Registry id.
    pub id: UserId,
    /// Unique login-like name (`alice`).
    pub name: String,
    /// Name shown to others (`Alice Example`).
    pub display_name: String,
}

/// A device that carries calls, enrolled by its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Talker {
    /// The talker's id (derived from its Ed25519 key by the agent).
    pub id: String,
    /// Owner's user id.
    pub owner: UserId,
    /// Human name (`Living-room TV`), also its DNS-SD instance name.
    pub name: String,
    /// Device kind.
    pub kind: TalkerKind,
    /// `Video` when it carries video as well as audio.
    pub media: Media,
    /// Its Ed25519 public key, standard base64 of the 32 bytes; empty for a
    /// SIP phone, which has none.
    pub public_key: String,
    /// What runs on it.
    pub software: TalkerSoftware,
    /// Its RFC 5626 instance URN (`urn:uuid:...`), when known.
    pub instance: Option<String>,
    /// Unix seconds of its last heartbeat, if any.
    pub last_seen: Option<i64>,
}

/// How the matcher's call controller is trusted by a SIP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControllerTrust {
    /// The server trusts the controller's source address (sip-server `--trusted`,
    /// Kamailio `permissions`): no digest challenge.
    Address,
    /// Unknown or none: the controller cannot place calls through this server.
    None,
}

impl ControllerTrust {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Address => "address",
            Self::None => "none",
        }
    }

    /// Parses the stored word.
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "address" => Some(Self::Address),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

/// Transport the controller uses toward a server's proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// SIP over TCP (the default: control requests carry a token and exceed 1300 bytes).
    Tcp,
    /// SIP over UDP.
    Udp,
}

impl Transport {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }

    /// Parses `tcp` / `udp`.
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "tcp" => Some(Self::Tcp),
            "udp" => Some(Self::Udp),
            _ => None,
        }
    }
}

/// A SIP server (registrar + proxy) that accounts live on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    /// The domain it serves (`family.example`), unique.
    pub domain: String,
    /// Where its proxy listens (`127.0.0.1:5060`).
    pub proxy: String,
    /// Transport toward the proxy.
    pub transport: Transport,
    /// Relative cost of a call through it; lower is preferred.
    pub cost: u32,
    /// How it trusts the controller.
    pub trust: ControllerTrust,
}

/// One SIP account of a talker: an address of record on one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Owning talker's id.
    pub talker: String,
    /// Address of record, `sip:user@domain`.
    pub aor: String,
    /// Domain of the server it belongs to.
    pub server: String,
    /// Whether the talker last reported it registered.
    pub registered: bool,
    /// The talker's public GRUU for this account, when the server gave one.
    pub gruu: Option<String>,
}

/// Someone a user may call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContactTarget {
    /// Another splitdial user, reachable on the servers where their talkers have
    /// accounts (only once both have accepted each other).
    User {
        /// That user's id.
        user: UserId,
    },
    /// A plain SIP address on a known server (a colleague's desk phone).
    Address {
        /// The address, `sip:user@domain`.
        aor: String,
        /// Domain of its server.
        server: String,
    },
}

/// A contact in a user's address book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Contact id, unique within the registry.
    pub id: i64,
    /// The user whose address book holds it.
    pub owner: UserId,
    /// Name the owner calls it by (`bob`, `office`).
    pub name: String,
    /// Who it is.
    pub target: ContactTarget,
}

/// Longest id, name or address the registry takes.
pub const MAX_FIELD: usize = 256;

/// Whether `value` may be stored as an id, name or address: 1 to
/// [`MAX_FIELD`] bytes, no control characters.
pub fn printable_field(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_FIELD && !value.chars().any(char::is_control)
}

/// The domain of a `sip:user@domain` address of record, when it is one.
pub fn aor_domain(aor: &str) -> Option<&str> {
    let rest = aor.strip_prefix("sip:")?;
    let (user, domain) = rest.split_once('@')?;
    let ok =
        !user.is_empty() && !domain.is_empty() && !domain.contains([';', '?', '>', '<', ' ', '@']);
    ok.then_some(domain)
}
