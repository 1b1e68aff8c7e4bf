//! This talker's media in SDP terms: what its media settings and the ports reserved for a
//! call let it offer and accept ([`splitdial_sip::sdp::LocalMedia`]). The SIP layer writes
//! the SDP; only the agent knows its devices.

use crate::media::{AllocatedPorts, Direction, MediaSettings};
use splitdial_sip::sdp::{LocalMedia, LocalStream};

/// What a call with `settings` can carry on `ports`: audio always, video when the talker
/// does video and video ports were reserved (they are reserved only for a call that wants
/// video). Each direction follows the configured sources and sinks.
pub fn for_call(settings: &MediaSettings, ports: &AllocatedPorts) -> LocalMedia {
    LocalMedia {
        audio: LocalStream {
            port: ports.audio_rtp,
            direction: Direction::from_flags(settings.sends_audio(), settings.receives_audio()),
        },
        video: ports
            .video_rtp
            .filter(|_| settings.video_capable())
            .map(|port| LocalStream {
                port,
                direction: Direction::from_flags(settings.sends_video(), settings.receives_video()),
            }),
    }
}
