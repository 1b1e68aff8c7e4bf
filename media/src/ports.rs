//! UDP ports for one call leg, reserved (bound) by the agent before the SDP is written,
//! so the port in `m=` is really ours and nothing else can take it before the call starts.
//! The bound sockets themselves go to the media worker with the request that starts the
//! call's media (see [`crate::passing`]), so the ports are never free in between.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::OwnedFd;

use serde::{Deserialize, Serialize};

use crate::error::MediaError;

/// How many random even ports are tried before giving up.
const ATTEMPTS: usize = 64;

/// One RTP socket and its RTCP companion (port + 1), both bound to the local address.
#[derive(Debug)]
pub struct SocketPair {
    /// The RTP socket (even port).
    pub rtp: UdpSocket,
    /// The RTCP socket (RTP port + 1).
    pub rtcp: UdpSocket,
}

impl SocketPair {
    /// Another handle on the same two sockets (the ports stay bound while either lives).
    pub fn try_clone(&self) -> std::io::Result<Self> {
        Ok(Self {
            rtp: self.rtp.try_clone()?,
            rtcp: self.rtcp.try_clone()?,
        })
    }
}

/// The numbers of a reservation, as named in a request to the media worker; the sockets
/// themselves travel beside the request ([`AllocatedPorts::into_passed`]). A worker driven
/// over a plain pipe, where no socket can travel, binds these numbers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortNumbers {
    /// The address the ports are bound to.
    pub local_ip: IpAddr,
    /// Audio RTP port (audio RTCP is `audio_rtp + 1`).
    pub audio_rtp: u16,
    /// Video RTP port, when video was reserved.
    pub video_rtp: Option<u16>,
}

impl PortNumbers {
    /// Binds these ports again (see [`AllocatedPorts::rebind`]).
    pub fn bind(self) -> Result<AllocatedPorts, MediaError> {
        AllocatedPorts::rebind(self.local_ip, self.audio_rtp, self.video_rtp)
    }
}

/// Bound UDP ports for a call leg: RTP on an even port, RTCP on the next one (RFC 3550 §11).
/// Created by [`AllocatedPorts::reserve`]; handed to a session, which then owns the sockets.
#[derive(Debug)]
pub struct AllocatedPorts {
    /// Audio RTP port (audio RTCP is `audio_rtp + 1`).
    pub audio_rtp: u16,
    /// Video RTP port when video was reserved (video RTCP is `video_rtp + 1`).
    pub video_rtp: Option<u16>,
    local_ip: IpAddr,
    audio: SocketPair,
    video: Option<SocketPair>,
}

impl AllocatedPorts {
    /// Binds an RTP/RTCP pair for audio (and one for video when `video` is true) on `local_ip`.
    /// Nothing is sent or received until a session starts on them.
    pub fn reserve(local_ip: IpAddr, video: bool) -> Result<Self, MediaError> {
        let audio = bind_pair(local_ip)?;
        let video = if video {
            Some(bind_pair(local_ip)?)
        } else {
            None
        };
        Ok(Self {
            audio_rtp: local_port(&audio.rtp),
            video_rtp: video.as_ref().map(|p| local_port(&p.rtp)),
            local_ip,
            audio,
            video,
        })
    }

    /// Other handles on the same sockets (the ports stay bound while either lives): the
    /// agent keeps them when it hands a reservation to a worker that may fail with it.
    pub fn try_clone(&self) -> std::io::Result<Self> {
        Ok(Self {
            audio_rtp: self.audio_rtp,
            video_rtp: self.video_rtp,
            local_ip: self.local_ip,
            audio: self.audio.try_clone()?,
            video: self.video.as_ref().map(SocketPair::try_clone).transpose()?,
        })
    }

    /// The address the sockets are bound to.
    pub fn local_ip(&self) -> IpAddr {
        self.local_ip
    }

    /// The numbers and the bound sockets, to hand to the media worker: audio RTP, audio
    /// RTCP, then video RTP and RTCP when reserved (the order
    /// [`AllocatedPorts::from_passed`] expects).
    pub fn into_passed(self) -> (PortNumbers, Vec<OwnedFd>) {
        let numbers = PortNumbers {
            local_ip: self.local_ip,
            audio_rtp: self.audio_rtp,
            video_rtp: self.video_rtp,
        };
        let mut sockets = vec![
            OwnedFd::from(self.audio.rtp),
            OwnedFd::from(self.audio.rtcp),
        ];
        if let Some(video) = self.video {
            sockets.extend([OwnedFd::from(video.rtp), OwnedFd::from(video.rtcp)]);
        }
        (numbers, sockets)
    }

    /// The reservation the agent passed (see [`AllocatedPorts::into_passed`]): the sockets
    /// must be UDP sockets bound to exactly the numbered ports, in that order.
    pub fn from_passed(numbers: PortNumbers, sockets: Vec<OwnedFd>) -> Result<Self, MediaError> {
        let expected = if numbers.video_rtp.is_some() { 4 } else { 2 };
        if sockets.len() != expected {
            return Err(MediaError::Passed(format!(
                "{} sockets for {expected} ports",
                sockets.len()
            )));
        }
        let mut sockets = sockets.into_iter().map(UdpSocket::from);
        let mut pair = |rtp_port: u16| -> Result<SocketPair, MediaError> {
            let (Some(rtp), Some(rtcp)) = (sockets.next(), sockets.next()) else {
                return Err(MediaError::Passed("a socket is missing".into()));
            };
            for (socket, port) in [(&rtp, rtp_port), (&rtcp, rtp_port.wrapping_add(1))] {
                let bound = socket.local_addr().ok();
                if bound != Some(SocketAddr::new(numbers.local_ip, port)) {
                    return Err(MediaError::Passed(format!(
                        "a socket bound to {bound:?} passed for {}:{port}",
                        numbers.local_ip
                    )));
                }
            }
            Ok(SocketPair { rtp, rtcp })
        };
        let audio = pair(numbers.audio_rtp)?;
        let video = numbers.video_rtp.map(&mut pair).transpose()?;
        Ok(Self {
            audio_rtp: numbers.audio_rtp,
            video_rtp: numbers.video_rtp,
            local_ip: numbers.local_ip,
            audio,
            video,
        })
    }

    /// An audio-only reservation made of sockets that are already bound (a party moving
    /// into a conference keeps the sockets its peer sends to).
    pub fn from_audio_sockets(audio: SocketPair) -> Result<Self, MediaError> {
        let bound = audio
            .rtp
            .local_addr()
            .map_err(|e| MediaError::Passed(format!("an unbound socket: {e}")))?;
        Ok(Self {
            audio_rtp: bound.port(),
            video_rtp: None,
            local_ip: bound.ip(),
            audio,
            video: None,
        })
    }

    /// The bound sockets, for the media pipeline that takes them over: audio, then video.
    pub fn into_sockets(self) -> (SocketPair, Option<SocketPair>) {
        (self.audio, self.video)
    }

    /// Binds exactly the given audio (and video) RTP ports, with their RTCP neighbours: what
    /// a worker driven over a plain pipe does, since no socket can travel there. Retries for
    /// a moment while a previous owner's sockets close.
    pub fn rebind(
        local_ip: IpAddr,
        audio_rtp: u16,
        video_rtp: Option<u16>,
    ) -> Result<Self, MediaError> {
        let pair = |port: u16| -> Result<SocketPair, MediaError> {
            let mut last = std::io::Error::other("port still in use");
            for _ in 0..50 {
                match (
                    UdpSocket::bind(SocketAddr::new(local_ip, port)),
                    UdpSocket::bind(SocketAddr::new(local_ip, port.saturating_add(1))),
                ) {
                    (Ok(rtp), Ok(rtcp)) => return Ok(SocketPair { rtp, rtcp }),
                    (Err(e), _) | (_, Err(e)) => last = e,
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(MediaError::Ports {
                ip: local_ip,
                source: last,
            })
        };
        let audio = pair(audio_rtp)?;
        let video = video_rtp.map(pair).transpose()?;
        Ok(Self {
            audio_rtp,
            video_rtp,
            local_ip,
            audio,
            video,
        })
    }
}

fn local_port(socket: &UdpSocket) -> u16 {
    socket.local_addr().map(|a| a.port()).unwrap_or(0)
}

fn bind_pair(ip: IpAddr) -> Result<SocketPair, MediaError> {
    let mut last_error = std::io::Error::other("no even port pair found");
    for _ in 0..ATTEMPTS {
        // Let the kernel pick an ephemeral port, then insist on even + the odd neighbour.
        let rtp = match UdpSocket::bind(SocketAddr::new(ip, 0)) {
            Ok(s) => s,
            Err(e) => return Err(MediaError::Ports { ip, source: e }),
        };
        let port = local_port(&rtp);
        if port == 0 || !port.is_multiple_of(2) || port == u16::MAX {
            continue;
        }
        match UdpSocket::bind(SocketAddr::new(ip, port + 1)) {
            Ok(rtcp) => return Ok(SocketPair { rtp, rtcp }),
            Err(e) => last_error = e,
        }
    }
    Err(MediaError::Ports {
        ip,
        source: last_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn reserves_even_pairs_on_the_given_address() {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let ports = AllocatedPorts::reserve(ip, true).expect("ports on loopback");
        assert_eq!(ports.audio_rtp % 2, 0);
        let video = ports.video_rtp.expect("video ports");
        assert_eq!(video % 2, 0);
        assert_ne!(video, ports.audio_rtp);
        assert_eq!(
            ports.audio.rtcp.local_addr().ok(),
            Some(SocketAddr::new(ip, ports.audio_rtp + 1))
        );
        // The port is really taken.
        assert!(UdpSocket::bind(SocketAddr::new(ip, ports.audio_rtp)).is_err());
    }

    #[test]
    fn passed_sockets_are_checked_against_their_numbers() {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let (numbers, sockets) = AllocatedPorts::reserve(ip, true)
            .expect("ports on loopback")
            .into_passed();
        assert_eq!(sockets.len(), 4);
        let back = AllocatedPorts::from_passed(numbers, sockets).expect("the same sockets");
        assert_eq!(
            (back.audio_rtp, back.video_rtp),
            (numbers.audio_rtp, numbers.video_rtp)
        );
        // Still bound: nothing was closed on the way.
        assert!(UdpSocket::bind(SocketAddr::new(ip, numbers.audio_rtp + 1)).is_err());

        let (other, sockets) = AllocatedPorts::reserve(ip, false)
            .expect("ports on loopback")
            .into_passed();
        let wrong = PortNumbers {
            audio_rtp: other.audio_rtp + 2,
            ..other
        };
        assert!(AllocatedPorts::from_passed(wrong, sockets).is_err());
        let (numbers, mut sockets) = AllocatedPorts::reserve(ip, false)
            .expect("ports on loopback")
            .into_passed();
        sockets.pop();
        assert!(AllocatedPorts::from_passed(numbers, sockets).is_err());
    }
}
