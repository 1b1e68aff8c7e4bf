//! The agent's side of its calls' media. The agent negotiates SDP and links no GStreamer:
//! every pipeline runs in the media worker process (`talker-media`), so the agent stays small
//! while idle and a crash in a media pipeline cannot take it down. What the two agree on —
//! requests and replies, settings, negotiated plans, statistics, reserved ports, errors — is
//! the `splitdial-media` crate, re-exported here.
//!
//! * [`sdp`] writes offers and answers (Opus preferred, G.711 for plain phones, VP8 video).
//! * [`settings`] makes the media settings from the configuration.
//! * [`hub`] connects call legs to the worker: a leg's media, and one control leg's parties
//!   mixed as soon as there are two ([`hub::MediaHub`]); statistics into the call registry.
//! * [`remote`] holds the handles on what runs in the worker: [`RemoteSession`] (a call leg)
//!   and [`RemoteConference`] (a local mix).
//! * [`worker`] starts the worker process when media is first needed, carries its requests
//!   and replies, and lets it exit when no media is left.

pub mod error;
pub mod hub;
pub mod remote;
pub mod sdp;
pub mod settings;
pub mod worker;

pub use error::SdpError;
pub use remote::{RemoteConference, RemoteSession};
pub use sdp::{
    answer, inactive_answer, inactive_offer, negotiated_from_answer, offer, offers_active_media,
};
pub use settings::{
    AudioSink, AudioSource, BEEP_MS, MediaSettings, VideoFormat, VideoSink, VideoSource,
};
pub use splitdial_media::{
    AllocatedPorts, Codec, ConferenceStats, Direction, LegId, MediaError, MediaStats, Negotiated,
    PictureStats, PortNumbers, RtpStats, SettingsError, SocketPair, SoundStats, StreamPlan,
};
