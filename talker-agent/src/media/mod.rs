//! The agent's side of its calls' media. The agent negotiates SDP (written by the SIP layer,
//! `splitdial_sip::sdp`) and links no GStreamer:
//! every pipeline runs in the media worker process (`talker-media`), so the agent stays small
//! while idle and a crash in a media pipeline cannot take it down. What the two agree on —
//! requests and replies, settings, negotiated plans, statistics, reserved ports, errors — is
//! the `splitdial-media` crate, which the agent's code names directly.
//!
//! * [`settings`] makes the media settings from the configuration.
//! * [`hub`] connects call legs to the worker: a leg's media, and one control leg's parties
//!   mixed as soon as there are two ([`hub::MediaHub`]); statistics into the call registry.
//! * [`remote`] holds the handles on what runs in the worker: [`RemoteSession`] (a call leg)
//!   and [`RemoteConference`] (a local mix).
//! * [`worker`] starts the worker process when media is first needed, carries its requests
//!   and replies, and lets it exit when no media is left.

pub mod hub;
pub mod remote;
pub mod settings;
pub mod worker;

pub use remote::{RemoteConference, RemoteSession};
