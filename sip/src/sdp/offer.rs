//! The `m=` sections of our offers: a call's media, or the control leg's inactive audio.

use sdp::description::media::MediaDescription;

use super::local::LocalMedia;
use super::write::{INACTIVE_PORT, add_attribute, add_codec, media_line};
use super::{OPUS_PAYLOAD_TYPE, VP8_PAYLOAD_TYPE};
use splitdial_media::{Codec, Direction};

/// A call's offer: `m=audio` with Opus/48000 (pt 111) first, then PCMU (0) and PCMA (8),
/// `a=ptime:20`; `m=video` with VP8 (pt 96) when `local` has video. Each direction is what
/// `local` can do.
pub(crate) fn media(local: &LocalMedia) -> Vec<MediaDescription> {
    let mut audio = media_line("audio", local.audio.port, "RTP/AVP");
    add_codec(&mut audio, Codec::Opus, OPUS_PAYLOAD_TYPE);
    add_codec(&mut audio, Codec::Pcmu, 0);
    add_codec(&mut audio, Codec::Pcma, 8);
    add_attribute(&mut audio, "ptime", Some("20"));
    add_attribute(&mut audio, local.audio.direction.attribute(), None);
    let mut sections = vec![audio];
    if let Some(stream) = local.video {
        let mut video = media_line("video", stream.port, "RTP/AVP");
        add_codec(&mut video, Codec::Vp8, VP8_PAYLOAD_TYPE);
        add_attribute(&mut video, stream.direction.attribute(), None);
        sections.push(video);
    }
    sections
}

/// The control leg's offer: one `m=audio` on the discard port with PCMU/PCMA and
/// `a=inactive` (DESIGN.md call flow). It never carries media.
pub(crate) fn inactive() -> Vec<MediaDescription> {
    let mut audio = media_line("audio", INACTIVE_PORT, "RTP/AVP");
    add_codec(&mut audio, Codec::Pcmu, 0);
    add_codec(&mut audio, Codec::Pcma, 8);
    add_attribute(&mut audio, Direction::Inactive.attribute(), None);
    vec![audio]
}
