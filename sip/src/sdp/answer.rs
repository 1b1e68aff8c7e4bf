//! The `m=` sections of our answers (RFC 3264 §6): one per offered section, in order;
//! a stream we cannot or will not carry, and one the offer refused (port 0), is answered
//! with port 0.

use sdp::description::media::MediaDescription;

use super::error::SdpError;
use super::local::LocalMedia;
use super::parse::{Description, Section};
use super::write::{INACTIVE_PORT, add_attribute, add_codec, media_line, refused};
use splitdial_media::{Codec, Direction, Negotiated, StreamPlan};

/// Answers an offer for a call we accept: Opus if offered, else PCMU/PCMA (offerer's
/// order), and VP8 video only when both sides do video; directions are the offer's
/// intersected with `local`. No usable stream at all → [`SdpError::NoCommonCodec`] (488).
pub(crate) fn media(
    offer: &Description,
    local: &LocalMedia,
) -> Result<(Vec<MediaDescription>, Negotiated), SdpError> {
    let mut sections = Vec::with_capacity(offer.sections.len());
    let mut plan = Negotiated::default();
    let mut reasons = Vec::new();
    for section in &offer.sections {
        match accept(section, offer, local, &plan, &mut reasons)? {
            Some((stream, port)) => {
                let mut m = media_line(&section.kind, port, &section.proto);
                add_codec(&mut m, stream.codec, stream.payload_type);
                add_attribute(&mut m, stream.direction.attribute(), None);
                sections.push(m);
                if stream.codec.is_audio() {
                    plan.audio = Some(stream);
                } else {
                    plan.video = Some(stream);
                }
            }
            None => sections.push(refused(section)),
        }
    }
    if plan.audio.is_none() && plan.video.is_none() {
        return Err(SdpError::NoCommonCodec(reasons.join("; ")));
    }
    Ok((sections, plan))
}

/// Decides one offered section: the stream plan and our local port, or `None` (refused).
fn accept(
    section: &Section,
    offer: &Description,
    local: &LocalMedia,
    plan: &Negotiated,
    reasons: &mut Vec<String>,
) -> Result<Option<(StreamPlan, u16)>, SdpError> {
    if section.port == 0 {
        return Ok(None);
    }
    if !section.is_rtp_avp() {
        reasons.push(format!(
            "m={} transport {} is not supported",
            section.kind, section.proto
        ));
        return Ok(None);
    }
    let (chosen, ours) = match section.kind.as_str() {
        "audio" if plan.audio.is_none() => (section.preferred_audio(), local.audio),
        "video" if plan.video.is_none() => {
            let Some(ours) = local.video else {
                reasons.push("video is not enabled on this talker".into());
                return Ok(None);
            };
            (section.codecs().find(|(c, _)| *c == Codec::Vp8), ours)
        }
        other => {
            reasons.push(format!("m={other} is not supported here"));
            return Ok(None);
        }
    };
    let Some((codec, payload_type)) = chosen else {
        reasons.push(format!(
            "m={} offers none of our codecs ({})",
            section.kind,
            section.formats.join(" ")
        ));
        return Ok(None);
    };
    let stream = section.stream_toward(offer.address, codec, payload_type, ours.direction)?;
    Ok(Some((stream, ours.port)))
}

/// Answers any offer with every stream `a=inactive` (the control leg, and every later offer
/// on it). Streams the offer accepted keep a non-zero port (the discard port); refused ones
/// (port 0) stay refused.
pub(crate) fn inactive(offer: &Description) -> Vec<MediaDescription> {
    offer
        .sections
        .iter()
        .map(|section| {
            if section.port == 0 {
                return refused(section);
            }
            let mut m = media_line(&section.kind, INACTIVE_PORT, &section.proto);
            let known = if section.kind == "audio" {
                section.preferred_audio()
            } else {
                section.codecs().next()
            };
            match known {
                Some((codec, pt)) => add_codec(&mut m, codec, pt),
                None => {
                    // Echo the first offered format; the stream is inactive either way.
                    if let Some(f) = section.formats.first() {
                        m.media_name.formats.push(f.clone());
                    }
                }
            }
            add_attribute(&mut m, Direction::Inactive.attribute(), None);
            m
        })
        .collect()
}
