//! The negotiated plan of a call leg: which codec each stream uses, in which direction, and
//! where the peer listens. The agent's SDP offer/answer produces it; the media worker runs
//! exactly what it says ([`crate::protocol::Operation::StartSession`]), so both sides read it
//! the same way.

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// A codec this talker can send and receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Codec {
    /// Opus at 48 kHz (RFC 7587), sent mono.
    Opus,
    /// G.711 µ-law, 8 kHz (static payload type 0).
    Pcmu,
    /// G.711 A-law, 8 kHz (static payload type 8).
    Pcma,
    /// VP8 video, 90 kHz clock (RFC 7741).
    Vp8,
}

impl Codec {
    /// RTP clock rate in Hz.
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            Codec::Pcmu | Codec::Pcma => 8_000,
            Codec::Vp8 => 90_000,
        }
    }

    /// The encoding name used in `a=rtpmap` and in GStreamer RTP caps.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Opus => "OPUS",
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::Vp8 => "VP8",
        }
    }

    /// Whether this is an audio codec.
    pub fn is_audio(self) -> bool {
        !matches!(self, Codec::Vp8)
    }

    /// The value of an `a=rtpmap` attribute for this codec at payload type `pt`
    /// (`111 opus/48000/2`, `0 PCMU/8000`).
    pub fn rtpmap(self, pt: u8) -> String {
        match self {
            Codec::Opus => format!("{pt} opus/48000/2"),
            Codec::Pcmu => format!("{pt} PCMU/8000"),
            Codec::Pcma => format!("{pt} PCMA/8000"),
            Codec::Vp8 => format!("{pt} VP8/90000"),
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Codec::Opus => "opus",
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::Vp8 => "VP8",
        })
    }
}

/// Media direction of a stream (RFC 3264 §5.1), from this talker's point of view in a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// Send and receive.
    SendRecv,
    /// Send only.
    SendOnly,
    /// Receive only.
    RecvOnly,
    /// Neither: the stream is negotiated but carries nothing.
    Inactive,
}

impl Direction {
    /// The direction that sends when `send` and receives when `recv`.
    pub fn from_flags(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether media is sent in this direction.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether media is received in this direction.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The SDP attribute name (`sendrecv`, `sendonly`, `recvonly`, `inactive`).
    pub fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// One negotiated RTP stream: what to send and receive, and where the peer listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPlan {
    /// The codec both sides agreed on.
    pub codec: Codec,
    /// The RTP payload type to send with (and expected on receive).
    pub payload_type: u8,
    /// The peer's RTP address (from `c=` and `m=`).
    pub remote_rtp: SocketAddr,
    /// The peer's RTCP address (`a=rtcp` or RTP port + 1).
    pub remote_rtcp: SocketAddr,
    /// What this talker does with the stream.
    pub direction: Direction,
}

/// The outcome of an offer/answer exchange: at most one audio and one video stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Negotiated {
    /// The audio stream, if accepted.
    pub audio: Option<StreamPlan>,
    /// The video stream, if both sides offered VP8.
    pub video: Option<StreamPlan>,
}

impl Negotiated {
    /// Whether any stream actually carries media in some direction.
    pub fn carries_media(&self) -> bool {
        [&self.audio, &self.video]
            .into_iter()
            .flatten()
            .any(|s| s.direction != Direction::Inactive)
    }
}
