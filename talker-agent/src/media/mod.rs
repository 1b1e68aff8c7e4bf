//! Media for the talker's calls: the media worker process (`talker-media`) that runs the
//! GStreamer sessions, and what the agent and the worker agree on. The agent links no
//! GStreamer: it stays small while idle, and a crash in a media pipeline cannot take it down.
//! SDP offers and answers are written in the SIP layer (`splitdial_sip::sdp`); the plans they
//! make ([`Negotiated`]) are what a session runs.
//!
//! * [`settings`] holds sources, sinks and latency knobs parsed from the configuration.
//! * [`ports`] reserves the RTP/RTCP ports that go into `m=` lines.
//! * [`stats`] is what a running session reports (RTP counters, what was heard and seen).
//! * [`protocol`] is the agent ↔ worker exchange: one JSON request or reply per line.
//! * [`worker`] starts the worker when media is first needed, talks to it, and lets it exit
//!   when no media is left; [`worker::RemoteSession`] and [`worker::RemoteConference`] are
//!   the agent's handles on a call leg and a local mix.

pub mod error;
pub mod ports;
pub mod protocol;
pub mod settings;
pub mod stats;
pub mod worker;

pub use error::{MediaError, SettingsError};
pub use ports::{AllocatedPorts, PortNumbers, SocketPair};
pub use splitdial_sip::sdp::{Codec, Direction, Negotiated, StreamPlan};
// The plans' home is the SIP layer's SDP module; the media modules name them through it.
pub use settings::{
    AudioSink, AudioSource, BEEP_MS, MediaSettings, VideoFormat, VideoSink, VideoSource,
};
use splitdial_sip::sdp;
pub use stats::{ConferenceStats, LegId, MediaStats, PictureStats, RtpStats, SoundStats};
pub use worker::{RemoteConference, RemoteSession};
