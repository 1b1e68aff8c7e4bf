//! The splitdial talker agent: runs unattended on a household device (TV, PC,
//! phone), registers the device's SIP accounts, answers only its owner's control
//! calls, dials on request and carries the media.
//!
//! * [`agent`] starts everything and shuts it down in order.
//! * [`calls`] lists the live calls (status API, mDNS busy state).
//! * [`config`] reads and checks the TOML configuration.
//! * [`identity`] holds the talker's own Ed25519 key in its state directory.
//! * [`registration`] keeps every SIP account registered, with `+sip.instance`.
//! * [`control`] serves incoming requests: the control leg, its REFERs,
//!   ordinary calls; [`trust`] checks every call token first.
//! * [`referred_call`] places the call a REFER asks for, with the device's own
//!   account; [`media_glue`] starts its media.
//! * [`media_settings`] maps the configuration onto media settings.
//! * [`media`] drives the media worker process (`talker-media`), which runs the
//!   GStreamer sessions: the agent itself links no GStreamer. [`local_media`] says
//!   what a call can carry, for the SDP the SIP layer writes (`splitdial_sip::sdp`).
//! * [`status_api`] serves the local HTTP API (status, challenge, owner actions).
//! * [`advertise`] announces the talker over mDNS, idle or busy.
//! * [`enrollment`] enrolls the talker with the matcher (`talker-agent enroll`);
//!   [`heartbeat`] then reports its state and takes the matcher's keys and clock.

pub mod advertise;
pub mod agent;
pub mod calls;
pub mod config;
pub mod control;
pub mod enrollment;
pub mod heartbeat;
pub mod identity;
pub mod local_media;
pub mod media;
pub mod media_glue;
pub mod media_settings;
pub mod referred_call;
pub mod registration;
pub mod status_api;
pub mod trust;
