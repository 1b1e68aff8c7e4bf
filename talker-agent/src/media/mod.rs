//! Media for the talker's calls: SDP offer/answer here in the agent, and the media worker
//! process (`talker-media`) that runs the GStreamer sessions. The agent links no GStreamer:
//! it stays small while idle, and a crash in a media pipeline cannot take it down.
//!
//! * [`sdp`] writes offers and answers (Opus preferred, G.711 for plain phones, VP8 video).
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
pub mod sdp;
pub mod settings;
pub mod stats;
pub mod worker;

pub use error::{MediaError, SdpError, SettingsError};
pub use ports::{AllocatedPorts, PortNumbers, SocketPair};
pub use sdp::{
    Codec, Direction, Negotiated, StreamPlan, answer, inactive_answer, inactive_offer,
    negotiated_from_answer, offer, offers_active_media,
};
pub use settings::{
    AudioSink, AudioSource, BEEP_MS, MediaSettings, VideoFormat, VideoSink, VideoSource,
};
pub use stats::{ConferenceStats, LegId, MediaStats, PictureStats, RtpStats, SoundStats};
pub use worker::{RemoteConference, RemoteSession};
