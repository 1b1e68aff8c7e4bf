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
//! * [`in_dialog`] serves every request inside a call (re-INVITE, UPDATE, OPTIONS,
//!   INFO) the same way for every kind of call, and runs its session timer.
//! * [`referred_call`] places the call a REFER asks for, with the device's own
//!   account; [`media::hub`] starts its media.
//! * [`media`] is the agent's media side: the settings made from the
//!   configuration, and the media worker process (`talker-media`) that runs the
//!   GStreamer sessions, through the `splitdial-media` contract: the agent itself
//!   links no GStreamer.
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
pub mod in_dialog;
pub mod media;
pub mod referred_call;
pub mod registration;
pub mod status_api;
pub mod trust;
