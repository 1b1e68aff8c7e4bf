//! What one side can carry before an offer/answer exchange ([`LocalMedia`]): the input
//! of our offers and answers, as [`splitdial_media::Negotiated`] is their outcome.

use splitdial_media::{AllocatedPorts, Direction, MediaSettings};

/// One medium this side can carry in a call: the RTP port it receives on (RTCP on the
/// next one) and the directions its devices allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalStream {
    /// The local RTP port written into the `m=` line (reserved before the SDP is written).
    pub port: u16,
    /// What this side can do: send when it has a source, receive when it has a sink.
    pub direction: Direction,
}

/// What this side can carry in a call with media, as offers and answers need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalMedia {
    /// Audio: always offered, and accepted when the peer offers a codec we know.
    pub audio: LocalStream,
    /// Video (VP8), when this side does video and ports were reserved for it.
    pub video: Option<LocalStream>,
}

impl LocalMedia {
    /// What a talker with `settings` can carry in a call on `ports`: audio always, video
    /// when the talker does video and video ports were reserved (they are reserved only
    /// for a call that wants video). Each direction follows the configured sources and
    /// sinks.
    pub fn for_call(settings: &MediaSettings, ports: &AllocatedPorts) -> Self {
        Self {
            audio: LocalStream {
                port: ports.audio_rtp,
                direction: Direction::from_flags(settings.sends_audio(), settings.receives_audio()),
            },
            video: ports
                .video_rtp
                .filter(|_| settings.video_capable())
                .map(|port| LocalStream {
                    port,
                    direction: Direction::from_flags(
                        settings.sends_video(),
                        settings.receives_video(),
                    ),
                }),
        }
    }
}
