//! Writing SDP with the `sdp` crate: the session lines every body of ours shares, and the
//! building blocks of its `m=` sections.

use std::net::IpAddr;

use sdp::description::common::{Address, Attribute, ConnectionInformation};
use sdp::description::media::{MediaDescription, MediaName, RangedPort};
use sdp::description::session::{Origin, SessionDescription, TimeDescription};

use super::parse::Section;
use splitdial_media::Codec;

/// The discard port put in `m=` lines of inactive streams that never carry media.
pub(crate) const INACTIVE_PORT: u16 = 9;

/// The `o=` line's fields that [`super::SdpSession`] keeps for a dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OriginLine {
    /// Our address (also the `c=` address).
    pub(crate) ip: IpAddr,
    /// The session id, fixed for the dialog.
    pub(crate) session_id: u64,
    /// The version of this description.
    pub(crate) version: u64,
}

fn addr_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

/// A whole body: our session lines (`v=`, `o=`, `s=`, `c=`, `t=`) and `media`.
pub(crate) fn body(origin: OriginLine, media: Vec<MediaDescription>) -> String {
    let ip = origin.ip;
    let connection = ConnectionInformation {
        network_type: "IN".into(),
        address_type: addr_type(ip).into(),
        address: Some(Address {
            address: ip.to_string(),
            ttl: None,
            range: None,
        }),
    };
    SessionDescription {
        version: 0,
        origin: Origin {
            username: "splitdial".into(),
            session_id: origin.session_id,
            session_version: origin.version,
            network_type: "IN".into(),
            address_type: addr_type(ip).into(),
            unicast_address: ip.to_string(),
        },
        session_name: "splitdial".into(),
        connection_information: Some(connection),
        // "t=0 0": a session not bounded in time (RFC 8866 §5.9).
        time_descriptions: vec![TimeDescription::default()],
        media_descriptions: media,
        ..SessionDescription::default()
    }
    .marshal()
}

/// An `m=` line without formats or attributes yet.
pub(crate) fn media_line(kind: &str, port: u16, proto: &str) -> MediaDescription {
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

/// Adds `a=key` or `a=key:value`.
pub(crate) fn add_attribute(m: &mut MediaDescription, key: &str, value: Option<&str>) {
    m.attributes
        .push(Attribute::new(key.to_owned(), value.map(str::to_owned)));
}

/// Adds a codec's format, its `a=rtpmap` and (for Opus) its `a=fmtp`.
pub(crate) fn add_codec(m: &mut MediaDescription, codec: Codec, pt: u8) {
    m.media_name.formats.push(pt.to_string());
    add_attribute(m, "rtpmap", Some(&codec.rtpmap(pt)));
    if codec == Codec::Opus {
        add_attribute(m, "fmtp", Some(&format!("{pt} minptime=10;useinbandfec=1")));
    }
}

/// The answer to a stream we refuse, or that the offer refused: port 0, the offered formats
/// (RFC 3264 §6: a refused stream stays in the answer, at port 0).
pub(crate) fn refused(section: &Section) -> MediaDescription {
    let mut m = media_line(&section.kind, 0, &section.proto);
    m.media_name.formats.clone_from(&section.formats);
    m
}
