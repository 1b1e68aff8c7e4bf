//! SDP offer/answer (RFC 3264 on RFC 8866) for every splitdial SIP element, written and
//! parsed with the pure-Rust `sdp` crate: the talker agent's calls and control legs, and
//! the matcher's control legs. Opus/48000 is preferred, PCMU/PCMA keep plain SIP phones
//! working, VP8 video is used only when both sides offer it; a control leg is always
//! inactive.
//!
//! * [`SdpSession`] (`session.rs`) is our side of one dialog: it writes every offer and
//!   answer we send in it, with the `o=` line RFC 3264 §8 wants (one session id; the
//!   version raised only when what we send changes).
//! * [`LocalMedia`] says what we can carry (ports, directions: `local.rs`); [`Negotiated`]
//!   is what an exchange decided, stream by stream — the plan the media worker runs, defined
//!   with the media contract (`splitdial_media::plan`) and re-exported here.
//! * [`negotiated_from_answer`], [`offers_active_media`] and [`holds_us`] read a peer's SDP
//!   (`peer.rs`).
//! * `offer.rs` and `answer.rs` decide the `m=` sections; `parse.rs` reads a body into
//!   checked values (bad text is an [`SdpError`], never a panic); `write.rs` writes ours.

mod answer;
mod error;
mod local;
mod offer;
mod parse;
mod peer;
mod session;
mod write;

pub use error::SdpError;
pub use local::{LocalMedia, LocalStream};
pub use peer::{holds_us, negotiated_from_answer, offers_active_media};
pub use session::SdpSession;
pub use splitdial_media::{Codec, Direction, Negotiated, StreamPlan};

/// Payload type used for Opus in our offers (dynamic, RFC 7587).
pub const OPUS_PAYLOAD_TYPE: u8 = 111;
/// Payload type used for VP8 in our offers (dynamic, RFC 7741).
pub const VP8_PAYLOAD_TYPE: u8 = 96;
