//! splitdial's SIP layer, built on rsipstack's transactions and transports.
//!
//! Every SIP element of splitdial (the embedded `sip-server`, the talker agent and
//! the matcher's call controller) starts here, so rsipstack's rough edges are
//! wrapped once:
//!
//! * [`endpoint`] binds UDP and TCP on one address with safe defaults: our own
//!   Call-ID suffix, and a resolver that never looks up a domain name in DNS;
//!   and serves it, each incoming transaction in a task of its own.
//! * [`digest_names`] lets rsipstack's digest client speak RFC 8760's
//!   `SHA-256` (it only knows a non-standard spelling).
//! * [`digest_choice`] keeps only the challenges our client should answer: the
//!   account's realm, and SHA-256 whenever a server offers it, in any order.
//! * [`screen`] checks a parsed request the way a careful proxy must before acting
//!   on it (RFC 3261 §16.3, RFC 4475's invalid and application-level cases) and
//!   says which 4xx to answer.
//! * [`screened_socket`] lets the raw bytes of each UDP datagram be checked
//!   before rsipstack's forgiving parser sees them.
//! * [`wire`] sends stateless responses and forwards messages hop by hop.
//! * [`headers`] reads and edits headers by name, case-insensitively and with
//!   compact forms, without caring which rsipstack variant holds them.
//! * [`call_token`] mints and verifies the signed, single-use tokens without
//!   which a talker never answers, dials out or obeys an owner action.
//! * [`uri_match`] compares SIP URIs by RFC 3261 §19.1.4 (a REFER's target
//!   against its token).
//! * [`sipfrag`] reads and writes REFER's `message/sipfrag` NOTIFY bodies, with
//!   standard reason phrases (never rsipstack's Debug form).
//! * [`subscription`] parses and builds `Subscription-State` (active, pending,
//!   terminated; reason, expires, retry-after).
//! * [`event`] parses and builds `Event`, including `refer;id=<CSeq>` for the
//!   NOTIFYs of a dialog's later REFERs (RFC 3515 §2.4.6).
//! * [`merged`] detects merged requests for a UAS (RFC 3261 §8.2.2.2: 482), in
//!   bounded memory.
//! * [`session_timer`] parses and builds RFC 4028's `Session-Expires` and
//!   `Min-SE`, and says when to refresh and when to give up.
//! * [`sdp`] writes and reads SDP offers and answers (RFC 3264), one
//!   [`sdp::SdpSession`] per dialog.
//! * [`shutdown`] is how an element's process is asked to stop (SIGINT,
//!   SIGTERM), so that it can end its dialogs first.

pub mod call_token;
pub mod digest_choice;
pub mod digest_names;
pub mod endpoint;
pub mod event;
pub mod headers;
pub mod merged;
pub mod screen;
pub mod screened_socket;
pub mod sdp;
pub mod session_timer;
pub mod shutdown;
pub mod sipfrag;
pub mod subscription;
pub mod tcp_flow;
pub mod uri_match;
pub mod wire;

pub use rsipstack;
pub use rsipstack::sip;

/// Errors of the SIP layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// rsipstack reported an error.
    #[error("SIP stack: {0}")]
    Stack(#[from] rsipstack::Error),
    /// A message could not be parsed.
    #[error("SIP parse: {0}")]
    Parse(String),
    /// A socket could not be bound or used.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Result type of the SIP layer.
pub type Result<T> = std::result::Result<T, Error>;
