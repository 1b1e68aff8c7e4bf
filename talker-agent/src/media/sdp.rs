//! SDP offer/answer (RFC 3264 on RFC 8866) for the talker, written and parsed with the pure-Rust
//! `sdp` crate (so the agent links no GStreamer). Opus/48000 is preferred, PCMU/PCMA keep plain SIP phones
//! working, VP8 video is used only when both sides offer it; the control leg is always inactive.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use std::io::Cursor;

use sdp::description::common::{Address, Attribute, ConnectionInformation};
use sdp::description::media::{MediaDescription, MediaName, RangedPort};
use sdp::description::session::{Origin, SessionDescription, TimeDescription};

use super::error::SdpError;
use splitdial_media::plan::{Codec, Direction, Negotiated, StreamPlan};
use splitdial_media::{AllocatedPorts, MediaSettings};

/// Payload type used for Opus in our offers (dynamic, RFC 7587).
pub const OPUS_PAYLOAD_TYPE: u8 = 111;
/// Payload type used for VP8 in our offers (dynamic, RFC 7741).
pub const VP8_PAYLOAD_TYPE: u8 = 96;
/// The discard port put in `m=` lines of inactive streams that never carry media.
const INACTIVE_PORT: u16 = 9;
/// Longest SDP body accepted (a SIP body is far smaller; this bounds parsing work).
const MAX_SDP_LEN: usize = 64 * 1024;

/// One `a=rtpmap` entry.
#[derive(Debug, Clone)]
struct RtpMap {
    pt: u8,
    name: String,
    clock: u32,
}

/// One `m=` section, read into plain values.
#[derive(Debug, Clone)]
struct Section {
    kind: String,
    port: u16,
    proto: String,
    formats: Vec<String>,
    rtpmaps: Vec<RtpMap>,
    direction: Direction,
    address: Option<IpAddr>,
    rtcp: Option<(u16, Option<IpAddr>)>,
}

impl Section {
    fn is_rtp_avp(&self) -> bool {
        self.proto.eq_ignore_ascii_case("RTP/AVP") || self.proto.eq_ignore_ascii_case("RTP/AVPF")
    }

    fn codec_of(&self, format: &str) -> Option<(Codec, u8)> {
        let pt: u8 = format.parse().ok()?;
        if pt > 127 {
            return None;
        }
        match self.rtpmaps.iter().find(|m| m.pt == pt) {
            Some(m) => {
                let name = m.name.to_ascii_lowercase();
                let codec = match (name.as_str(), m.clock) {
                    ("opus", 48_000) => Codec::Opus,
                    ("pcmu", 8_000) => Codec::Pcmu,
                    ("pcma", 8_000) => Codec::Pcma,
                    ("vp8", 90_000) => Codec::Vp8,
                    _ => return None,
                };
                Some((codec, pt))
            }
            None => match pt {
                0 => Some((Codec::Pcmu, 0)),
                8 => Some((Codec::Pcma, 8)),
                _ => None,
            },
        }
    }

    fn codecs(&self) -> impl Iterator<Item = (Codec, u8)> + '_ {
        self.formats.iter().filter_map(|f| self.codec_of(f))
    }

    /// The codec to answer with: Opus first, then G.711 in the offerer's order.
    fn preferred_audio(&self) -> Option<(Codec, u8)> {
        self.codecs().find(|(c, _)| *c == Codec::Opus).or_else(|| {
            self.codecs()
                .find(|(c, _)| matches!(c, Codec::Pcmu | Codec::Pcma))
        })
    }

    fn remote(
        &self,
        session_address: Option<IpAddr>,
    ) -> Result<(SocketAddr, SocketAddr), SdpError> {
        let ip = self.address.or(session_address).ok_or_else(|| {
            SdpError::Malformed(format!(
                "m={} has no c= line (neither in the media nor the session)",
                self.kind
            ))
        })?;
        let rtp = SocketAddr::new(ip, self.port);
        let rtcp = match self.rtcp {
            Some((port, addr)) => SocketAddr::new(addr.unwrap_or(ip), port),
            None => SocketAddr::new(ip, self.port.saturating_add(1)),
        };
        Ok((rtp, rtcp))
    }
}

/// A parsed and checked session description.
#[derive(Debug)]
struct Description {
    address: Option<IpAddr>,
    sections: Vec<Section>,
}

fn malformed(msg: impl Into<String>) -> SdpError {
    SdpError::Malformed(msg.into())
}

fn parse_direction(get: impl Fn(&str) -> bool) -> Option<Direction> {
    [
        Direction::SendRecv,
        Direction::SendOnly,
        Direction::RecvOnly,
        Direction::Inactive,
    ]
    .into_iter()
    .find(|d| get(d.attribute()))
}

fn parse_ip(
    nettype: Option<&str>,
    addrtype: Option<&str>,
    address: Option<&str>,
) -> Result<IpAddr, SdpError> {
    if nettype != Some("IN") {
        return Err(malformed(format!("c= network type {nettype:?} is not IN")));
    }
    let address = address.ok_or_else(|| malformed("c= without an address"))?;
    // Multicast addresses may carry /ttl: keep the address part only.
    let host = address.split('/').next().unwrap_or(address);
    let ip: IpAddr = host
        .parse()
        .map_err(|_| malformed(format!("c= address {address:?} is not an IP address")))?;
    match (addrtype, ip) {
        (Some("IP4"), IpAddr::V4(_)) | (Some("IP6"), IpAddr::V6(_)) => Ok(ip),
        _ => Err(malformed(format!(
            "c= address type {addrtype:?} does not match {address:?}"
        ))),
    }
}

fn parse_rtpmap(value: &str) -> Option<RtpMap> {
    let (pt, rest) = value.trim().split_once(char::is_whitespace)?;
    let pt: u8 = pt.parse().ok()?;
    let mut parts = rest.trim().split('/');
    let name = parts.next()?.to_owned();
    let clock: u32 = parts.next()?.parse().ok()?;
    Some(RtpMap { pt, name, clock })
}

fn parse_rtcp(value: &str) -> Result<(u16, Option<IpAddr>), SdpError> {
    let mut parts = value.split_whitespace();
    let port: u16 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| malformed(format!("a=rtcp:{value} has no valid port")))?;
    let addr = match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => None,
        (nettype, addrtype, addr) => Some(parse_ip(nettype, addrtype, addr)?),
    };
    Ok((port, addr))
}

/// The SDP library refuses a transport it does not know (`TCP/BFCP`, `TCP/MSRP`),
/// failing the whole offer, where RFC 3264 wants that one stream refused with port
/// 0. So every m-line's transport is handed to the library as `RTP/AVP` and the
/// real ones, in m-line order, are kept here.
fn protos_apart(text: &str) -> (String, Vec<String>) {
    let mut protos = Vec::new();
    let mut parseable = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let Some(rest) = line.strip_prefix("m=") else {
            parseable.push_str(line);
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if let Some(proto) = fields.get(2) {
            protos.push((*proto).to_owned());
        }
        match fields.as_slice() {
            [media, port, _, formats @ ..] if !formats.is_empty() => {
                let ending = if line.ends_with("\r\n") { "\r\n" } else { "\n" };
                let ending = if line.ends_with('\n') { ending } else { "" };
                parseable.push_str(&format!(
                    "m={media} {port} RTP/AVP {}{ending}",
                    formats.join(" ")
                ));
            }
            // Too short to be an m-line: the library says what is wrong.
            _ => parseable.push_str(line),
        }
    }
    (parseable, protos)
}

fn parse(text: &str) -> Result<Description, SdpError> {
    if text.trim().is_empty() {
        return Err(malformed("empty body"));
    }
    if text.len() > MAX_SDP_LEN {
        return Err(malformed(format!(
            "body of {} bytes is too long",
            text.len()
        )));
    }
    if text.contains('\0') {
        return Err(malformed("body contains a NUL byte"));
    }
    let (parseable, protos) = protos_apart(text);
    let msg = SessionDescription::unmarshal(&mut Cursor::new(parseable.as_bytes()))
        .map_err(|e| malformed(e.to_string()))?;
    if msg.version != 0 {
        return Err(malformed("missing or unsupported v= line (expected v=0)"));
    }
    let address = connection_ip(msg.connection_information.as_ref())?;
    let session_direction = parse_direction(|a| has_attribute(&msg.attributes, a));
    let mut sections = Vec::new();
    for (index, media) in msg.media_descriptions.iter().enumerate() {
        let name = &media.media_name;
        let kind = Some(name.media.as_str())
            .filter(|k| !k.is_empty())
            .ok_or_else(|| malformed("m= line without a media type"))?
            .to_owned();
        let port = u16::try_from(name.port.value)
            .map_err(|_| malformed(format!("m={kind} port {} out of range", name.port.value)))?;
        let proto = protos
            .get(index)
            .cloned()
            .unwrap_or_else(|| name.protos.join("/"));
        if proto.is_empty() {
            return Err(malformed(format!("m={kind} without a transport protocol")));
        }
        let formats: Vec<String> = name
            .formats
            .iter()
            .filter(|f| !f.trim().is_empty())
            .cloned()
            .collect();
        if formats.is_empty() {
            return Err(malformed(format!("m={kind} lists no formats")));
        }
        let rtpmaps = media
            .attributes
            .iter()
            .filter(|a| a.key == "rtpmap")
            .filter_map(|a| a.value.as_deref().and_then(parse_rtpmap))
            .collect();
        let direction = parse_direction(|a| has_attribute(&media.attributes, a))
            .or(session_direction)
            .unwrap_or(Direction::SendRecv);
        let media_address = connection_ip(media.connection_information.as_ref())?;
        let rtcp = match media.attribute("rtcp") {
            Some(Some(v)) => Some(parse_rtcp(v)?),
            Some(None) => return Err(malformed("a=rtcp without a port")),
            None => None,
        };
        let section = Section {
            kind,
            port,
            proto,
            formats,
            rtpmaps,
            direction,
            address: media_address,
            rtcp,
        };
        if section.port != 0 && section.is_rtp_avp() && section.address.or(address).is_none() {
            return Err(malformed(format!("m={} has no c= line", section.kind)));
        }
        sections.push(section);
    }
    if sections.is_empty() {
        return Err(malformed("no m= line"));
    }
    Ok(Description { address, sections })
}

/// The address of a `c=` line, if there is one with an address.
fn connection_ip(connection: Option<&ConnectionInformation>) -> Result<Option<IpAddr>, SdpError> {
    match connection {
        Some(c) => match &c.address {
            Some(a) => Ok(Some(parse_ip(
                Some(&c.network_type),
                Some(&c.address_type),
                Some(&a.address),
            )?)),
            None => Ok(None),
        },
        None => Ok(None),
    }
}

fn has_attribute(attributes: &[Attribute], key: &str) -> bool {
    attributes.iter().any(|a| a.key == key)
}

fn addr_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

fn new_message(local_ip: IpAddr) -> SessionDescription {
    let connection = ConnectionInformation {
        network_type: "IN".into(),
        address_type: addr_type(local_ip).into(),
        address: Some(Address {
            address: local_ip.to_string(),
            ttl: None,
            range: None,
        }),
    };
    SessionDescription {
        version: 0,
        origin: Origin {
            username: "splitdial".into(),
            session_id: u64::from(rand::random::<u32>()),
            session_version: 1,
            network_type: "IN".into(),
            address_type: addr_type(local_ip).into(),
            unicast_address: local_ip.to_string(),
        },
        session_name: "splitdial".into(),
        connection_information: Some(connection),
        // "t=0 0": a session not bounded in time (RFC 8866 §5.9).
        time_descriptions: vec![TimeDescription::default()],
        ..SessionDescription::default()
    }
}

fn media_line(kind: &str, port: u16, proto: &str) -> MediaDescription {
    MediaDescription {
        media_name: MediaName {
            media: kind.to_owned(),
            port: RangedPort {
                value: isize::try_from(port).unwrap_or(isize::MAX),
                range: None,
            },
            protos: proto.split('/').map(str::to_owned).collect(),
            formats: Vec::new(),
        },
        ..MediaDescription::default()
    }
}

fn add_attribute(m: &mut MediaDescription, key: &str, value: Option<&str>) {
    m.attributes
        .push(Attribute::new(key.to_owned(), value.map(str::to_owned)));
}

fn add_codec(m: &mut MediaDescription, codec: Codec, pt: u8) {
    m.media_name.formats.push(pt.to_string());
    add_attribute(m, "rtpmap", Some(&codec.rtpmap(pt)));
    if codec == Codec::Opus {
        add_attribute(m, "fmtp", Some(&format!("{pt} minptime=10;useinbandfec=1")));
    }
}

fn rejected(section: &Section) -> MediaDescription {
    let mut m = media_line(&section.kind, 0, &section.proto);
    m.media_name.formats.clone_from(&section.formats);
    m
}

fn text(msg: &SessionDescription) -> String {
    msg.marshal()
}

/// Our SDP offer for a call: `m=audio` with Opus/48000 (pt 111) first, then PCMU (0) and
/// PCMA (8); `m=video` with VP8 (pt 96) when `want_video`, the settings allow video and video
/// ports were reserved. Directions follow the configured sources and sinks.
pub fn offer(
    settings: &MediaSettings,
    ports: &AllocatedPorts,
    want_video: bool,
) -> Result<String, SdpError> {
    let mut msg = new_message(settings.local_ip);
    let mut audio = media_line("audio", ports.audio_rtp, "RTP/AVP");
    add_codec(&mut audio, Codec::Opus, OPUS_PAYLOAD_TYPE);
    add_codec(&mut audio, Codec::Pcmu, 0);
    add_codec(&mut audio, Codec::Pcma, 8);
    add_attribute(&mut audio, "ptime", Some("20"));
    add_attribute(
        &mut audio,
        Direction::from_flags(settings.sends_audio(), settings.receives_audio()).attribute(),
        None,
    );
    msg.media_descriptions.push(audio);
    if let (true, true, Some(port)) = (want_video, settings.video_capable(), ports.video_rtp) {
        let mut video = media_line("video", port, "RTP/AVP");
        add_codec(&mut video, Codec::Vp8, VP8_PAYLOAD_TYPE);
        add_attribute(
            &mut video,
            Direction::from_flags(settings.sends_video(), settings.receives_video()).attribute(),
            None,
        );
        msg.media_descriptions.push(video);
    }
    Ok(text(&msg))
}

/// The control leg's offer: one `m=audio` with PCMU/PCMA, the real `c=` address and
/// `a=inactive` (DESIGN.md call flow). It never carries media.
pub fn inactive_offer(local_ip: IpAddr) -> Result<String, SdpError> {
    let mut msg = new_message(local_ip);
    let mut audio = media_line("audio", INACTIVE_PORT, "RTP/AVP");
    add_codec(&mut audio, Codec::Pcmu, 0);
    add_codec(&mut audio, Codec::Pcma, 8);
    add_attribute(&mut audio, "inactive", None);
    msg.media_descriptions.push(audio);
    Ok(text(&msg))
}

/// Answers any offer with every stream `a=inactive` (the control leg, and every later offer on
/// it). Streams the offer accepted keep a non-zero port; refused ones (port 0) stay refused.
pub fn inactive_answer(offer: &str, local_ip: IpAddr) -> Result<String, SdpError> {
    let parsed = parse(offer)?;
    let mut msg = new_message(local_ip);
    for section in &parsed.sections {
        if section.port == 0 {
            msg.media_descriptions.push(rejected(section));
            continue;
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
        add_attribute(&mut m, "inactive", None);
        msg.media_descriptions.push(m);
    }
    Ok(text(&msg))
}

/// Answers an offer for a call this talker accepts: picks Opus if offered, else PCMU/PCMA
/// (offerer's order), and VP8 video only when both sides do video; directions are the offer's
/// intersected with the settings. No usable stream at all → [`SdpError::NoCommonCodec`] (488).
pub fn answer(
    offer: &str,
    settings: &MediaSettings,
    ports: &AllocatedPorts,
) -> Result<(String, Negotiated), SdpError> {
    let parsed = parse(offer)?;
    let mut msg = new_message(settings.local_ip);
    let mut plan = Negotiated::default();
    let mut reasons = Vec::new();
    for section in &parsed.sections {
        let accepted = accept_section(section, &parsed, settings, ports, &plan, &mut reasons)?;
        match accepted {
            Some((stream, port)) => {
                let mut m = media_line(&section.kind, port, &section.proto);
                add_codec(&mut m, stream.codec, stream.payload_type);
                add_attribute(&mut m, stream.direction.attribute(), None);
                msg.media_descriptions.push(m);
                if stream.codec.is_audio() {
                    plan.audio = Some(stream);
                } else {
                    plan.video = Some(stream);
                }
            }
            None => msg.media_descriptions.push(rejected(section)),
        }
    }
    if plan.audio.is_none() && plan.video.is_none() {
        return Err(SdpError::NoCommonCodec(reasons.join("; ")));
    }
    Ok((text(&msg), plan))
}

/// Decides one offered section: the stream plan and our local port, or `None` (refused).
fn accept_section(
    section: &Section,
    parsed: &Description,
    settings: &MediaSettings,
    ports: &AllocatedPorts,
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
    let (chosen, port, can_send, can_recv) = match section.kind.as_str() {
        "audio" if plan.audio.is_none() => (
            section.preferred_audio(),
            ports.audio_rtp,
            settings.sends_audio(),
            settings.receives_audio(),
        ),
        "video" if plan.video.is_none() => {
            let Some(port) = ports.video_rtp.filter(|_| settings.video_capable()) else {
                reasons.push("video is not enabled on this talker".into());
                return Ok(None);
            };
            (
                section.codecs().find(|(c, _)| *c == Codec::Vp8),
                port,
                settings.sends_video(),
                settings.receives_video(),
            )
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
    let (remote_rtp, remote_rtcp) = section.remote(parsed.address)?;
    // c=0.0.0.0 is the old way of putting a call on hold: nothing can be sent there.
    let peer_reachable = !remote_rtp.ip().is_unspecified();
    let direction = Direction::from_flags(
        can_send && section.direction.receives() && peer_reachable,
        can_recv && section.direction.sends(),
    );
    Ok(Some((
        StreamPlan {
            codec,
            payload_type,
            remote_rtp,
            remote_rtcp,
            direction,
        },
        port,
    )))
}

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
        let (remote_rtp, remote_rtcp) = answered.remote(theirs.address)?;
        let peer_reachable = !remote_rtp.ip().is_unspecified();
        let direction = Direction::from_flags(
            offered.direction.sends() && answered.direction.receives() && peer_reachable,
            offered.direction.receives() && answered.direction.sends(),
        );
        let stream = StreamPlan {
            codec,
            payload_type,
            remote_rtp,
            remote_rtcp,
            direction,
        };
        if codec.is_audio() {
            plan.audio = Some(stream);
        } else {
            plan.video = Some(stream);
        }
    }
    Ok(plan)
}

/// Whether an SDP body asks for any media to flow (some accepted stream not `a=inactive`
/// and not on hold at 0.0.0.0). The control leg uses it to spot active re-offers.
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
