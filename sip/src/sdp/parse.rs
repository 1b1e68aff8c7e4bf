//! Reading an SDP body into plain values, checked: what every offer, answer and
//! question about a peer's description starts from. Bad text is an [`SdpError`],
//! never a panic (property tests in `sip/tests/sdp.rs` feed it garbage).

use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

use sdp::description::common::{Attribute, ConnectionInformation};
use sdp::description::media::MediaDescription;
use sdp::description::session::SessionDescription;

use super::error::SdpError;
use splitdial_media::{Codec, Direction, StreamPlan};

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
pub(crate) struct Section {
    /// The media type: `audio`, `video`, `application`...
    pub(crate) kind: String,
    /// The port; 0 is a refused (or disabled) stream.
    pub(crate) port: u16,
    /// The transport as written (`RTP/AVP`, `RTP/SAVP`, `TCP/BFCP`...).
    pub(crate) proto: String,
    /// The formats in the offerer's order.
    pub(crate) formats: Vec<String>,
    rtpmaps: Vec<RtpMap>,
    /// The stream's direction (its own attribute, else the session's, else sendrecv).
    pub(crate) direction: Direction,
    /// The stream's own `c=` address.
    pub(crate) address: Option<IpAddr>,
    rtcp: Option<(u16, Option<IpAddr>)>,
}

impl Section {
    /// Whether the stream is plain RTP (`RTP/AVP` or `RTP/AVPF`), the only transports we carry.
    pub(crate) fn is_rtp_avp(&self) -> bool {
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

    /// The offered formats that are codecs we know, in the offerer's order.
    pub(crate) fn codecs(&self) -> impl Iterator<Item = (Codec, u8)> + '_ {
        self.formats.iter().filter_map(|f| self.codec_of(f))
    }

    /// The codec to answer with: Opus first, then G.711 in the offerer's order.
    pub(crate) fn preferred_audio(&self) -> Option<(Codec, u8)> {
        self.codecs().find(|(c, _)| *c == Codec::Opus).or_else(|| {
            self.codecs()
                .find(|(c, _)| matches!(c, Codec::Pcmu | Codec::Pcma))
        })
    }

    /// What runs for this stream, the peer's section, when our side of it is
    /// `ours`: we send only where the peer receives and gave an address we can send to
    /// (`c=0.0.0.0` is the old way of putting a call on hold), and receive only where it
    /// sends.
    pub(crate) fn stream_toward(
        &self,
        session_address: Option<IpAddr>,
        codec: Codec,
        payload_type: u8,
        ours: Direction,
    ) -> Result<StreamPlan, SdpError> {
        let (remote_rtp, remote_rtcp) = self.remote(session_address)?;
        let peer_reachable = !remote_rtp.ip().is_unspecified();
        let direction = Direction::from_flags(
            ours.sends() && self.direction.receives() && peer_reachable,
            ours.receives() && self.direction.sends(),
        );
        Ok(StreamPlan {
            codec,
            payload_type,
            remote_rtp,
            remote_rtcp,
            direction,
        })
    }

    /// The peer's RTP and RTCP addresses for this stream (`c=` of the stream, else of the
    /// session; RTCP from `a=rtcp`, else the RTP port + 1).
    pub(crate) fn remote(
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
pub(crate) struct Description {
    /// The session-level `c=` address.
    pub(crate) address: Option<IpAddr>,
    /// The `m=` sections, in order (at least one).
    pub(crate) sections: Vec<Section>,
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

/// Reads and checks an SDP body: `v=0`, at least one `m=` line, each with formats, a port
/// that fits, and a `c=` address for every live RTP stream.
pub(crate) fn parse(text: &str) -> Result<Description, SdpError> {
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
        let section = read_section(media, protos.get(index), session_direction)?;
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

/// Reads one `m=` section; `proto` is its transport as written (see [`protos_apart`]),
/// `session_direction` the session-level direction attribute, if any.
fn read_section(
    media: &MediaDescription,
    proto: Option<&String>,
    session_direction: Option<Direction>,
) -> Result<Section, SdpError> {
    let name = &media.media_name;
    let kind = Some(name.media.as_str())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| malformed("m= line without a media type"))?
        .to_owned();
    let port = u16::try_from(name.port.value)
        .map_err(|_| malformed(format!("m={kind} port {} out of range", name.port.value)))?;
    let proto = proto.cloned().unwrap_or_else(|| name.protos.join("/"));
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
    let rtcp = match media.attribute("rtcp") {
        Some(Some(v)) => Some(parse_rtcp(v)?),
        Some(None) => return Err(malformed("a=rtcp without a port")),
        None => None,
    };
    Ok(Section {
        kind,
        port,
        proto,
        formats,
        rtpmaps,
        direction,
        address: connection_ip(media.connection_information.as_ref())?,
        rtcp,
    })
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
