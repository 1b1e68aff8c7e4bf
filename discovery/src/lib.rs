//! Talker discovery for splitdial: DNS-SD over mDNS (RFC 6762, RFC 6763).
//!
//! * [`TalkerAd`] is one talker's advertisement; [`txt`] encodes and decodes its
//!   TXT record strictly (`txtvers=1` first, keys of at most 9 characters, at most
//!   400 bytes, bad records repaired or rejected with a reason, never a panic).
//! * [`Advertiser`] announces a talker, updates its state live and withdraws it
//!   with goodbye packets on [`Advertiser::shutdown`].
//! * [`Browser`] streams de-duplicated [`TalkerEvent`]s and verifies known talkers
//!   so a crashed one is removed within seconds, not after the 120 s TTL.
//! * [`InterfaceSelection`]: the interfaces are always chosen by the caller.
//! * [`challenge`]: the signed `splitdial-challenge-v2` message that turns a
//!   discovered talker into a verified one (an advertisement proves nothing).
//!
//! Safety on shared machines: mdns-sd joins the multicast groups on every
//! interface that is up when its daemon starts, before any interface selection
//! applies. Run advertisers and browsers only on networks meant for them (tests:
//! inside network namespaces they created).
//!
//! The record format, the timings and the behaviour without multicast are in
//! `docs/discovery.md`.

pub mod ad;
pub mod advertiser;
pub mod browser;
pub mod challenge;
pub mod error;
pub mod interfaces;
pub mod txt;

pub use ad::{AdError, Media, TalkerAd, TalkerId, TalkerKind, TalkerState};
pub use advertiser::{Advertiser, AdvertiserConfig};
pub use browser::{Browser, BrowserConfig, TalkerEvent};
pub use error::DiscoveryError;
pub use interfaces::InterfaceSelection;

/// The DNS-SD service type talkers advertise.
pub const SERVICE_TYPE: &str = "_splitdial._tcp.local.";
