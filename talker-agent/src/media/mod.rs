//! Media for the talker's calls: SDP offer/answer and GStreamer sessions.
//!
//! * [`sdp`] writes offers and answers (Opus preferred, G.711 for plain phones, VP8 video).
//! * [`settings`] holds sources, sinks and latency knobs parsed from the configuration.
//! * [`ports`] reserves the RTP/RTCP ports that go into `m=` lines.
//! * [`session`] runs one call leg on `rtpbin`; [`conference`] mixes several legs.
//! * [`analyze`] measures what arrives at an `analyze` sink.
//!
//! GStreamer is initialised only when SDP is handled or a session starts, never at idle.

pub mod analyze;
mod chains;
pub mod conference;
pub mod error;
pub mod ports;
pub mod sdp;
pub mod session;
pub mod settings;

pub use analyze::{PictureStats, SoundStats};
pub use conference::{Conference, ConferenceStats, LegId};
pub use error::{MediaError, SdpError, SettingsError};
pub use ports::AllocatedPorts;
pub use sdp::{
    Codec, Direction, Negotiated, StreamPlan, answer, inactive_answer, inactive_offer,
    negotiated_from_answer, offer, offers_active_media,
};
pub use session::{MediaSession, MediaStats, RtpStats};
pub use settings::{AudioSink, AudioSource, MediaSettings, VideoFormat, VideoSink, VideoSource};
