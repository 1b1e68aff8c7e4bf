//! What a peer's SDP tells us: the plan its answer to our offer makes, and whether a
//! body asks for media at all.

use std::net::{IpAddr, Ipv4Addr};

use super::error::SdpError;
use super::parse::parse;
use splitdial_media::{Codec, Direction, Negotiated};

/// The plan for the side that made `offer`, once `answer` arrived: codecs from the answer,
/// the peer's addresses, and directions narrowed by both. An answer that does not fit the
/// offer (other m-line count or kinds, codecs never offered) → [`SdpError::AnswerMismatch`].
pub fn negotiated_from_answer(offer: &str, answer: &str) -> Result<Negotiated, SdpError> {
    let ours = parse(offer)?;
    let theirs = parse(answer)?;
    if ours.sections.len() != theirs.sections.len() {
        return Err(SdpError::AnswerMismatch(format!(
            "{} m-lines offered, {} answered",
            ours.sections.len(),
            theirs.sections.len()
        )));
    }
    let mut plan = Negotiated::default();
    for (offered, answered) in ours.sections.iter().zip(&theirs.sections) {
        if offered.kind != answered.kind {
            return Err(SdpError::AnswerMismatch(format!(
                "m={} answered as m={}",
                offered.kind, answered.kind
            )));
        }
        if answered.port == 0 || offered.port == 0 {
            continue;
        }
        let slot_free = match offered.kind.as_str() {
            "audio" => plan.audio.is_none(),
            "video" => plan.video.is_none(),
            _ => false,
        };
        if !slot_free {
            continue;
        }
        let offered_codecs: Vec<Codec> = offered.codecs().map(|(c, _)| c).collect();
        let Some((codec, payload_type)) = answered
            .codecs()
            .find(|(c, _)| offered_codecs.contains(c) && c.is_audio() == (offered.kind == "audio"))
        else {
            return Err(SdpError::AnswerMismatch(format!(
                "m={} answered with formats {} that were not offered",
                answered.kind,
                answered.formats.join(" ")
            )));
        };
        let stream =
            answered.stream_toward(theirs.address, codec, payload_type, offered.direction)?;
        if codec.is_audio() {
            plan.audio = Some(stream);
        } else {
            plan.video = Some(stream);
        }
    }
    Ok(plan)
}

/// Whether an SDP body asks for any media to flow (some accepted stream not `a=inactive`
/// and not on hold at 0.0.0.0): an inactive answer of ours never does.
pub fn offers_active_media(sdp: &str) -> Result<bool, SdpError> {
    let parsed = parse(sdp)?;
    Ok(parsed.sections.iter().any(|s| {
        s.port != 0
            && s.direction != Direction::Inactive
            && !s
                .address
                .or(parsed.address)
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
                .is_unspecified()
    }))
}

/// Whether an offer from the peer puts us on hold: no accepted stream on which the peer
/// receives (every one `a=sendonly` or `a=inactive`, or at the old hold address 0.0.0.0).
/// An offer that refuses every stream holds nobody.
pub fn holds_us(offer: &str) -> Result<bool, SdpError> {
    let parsed = parse(offer)?;
    let mut accepted = parsed.sections.iter().filter(|s| s.port != 0).peekable();
    if accepted.peek().is_none() {
        return Ok(false);
    }
    Ok(!accepted.any(|s| {
        let at = s
            .address
            .or(parsed.address)
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        s.direction.receives() && !at.is_unspecified()
    }))
}
