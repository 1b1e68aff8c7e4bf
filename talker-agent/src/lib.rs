//! The splitdial talker agent: runs unattended on a household device (TV, PC,
//! phone), registers the device's SIP accounts, answers only its owner's control
//! calls, dials on request and carries the media.
//!
//! * [`agent`] starts everything and shuts it down in order.
//! * [`config`] reads and checks the TOML configuration.
//! * [`identity`] holds the talker's own Ed25519 key in its state directory.
//! * [`registration`] keeps every SIP account registered, with `+sip.instance`.
//! * [`media`] negotiates SDP and runs the GStreamer sessions.

pub mod agent;
pub mod config;
pub mod identity;
pub mod media;
pub mod registration;
