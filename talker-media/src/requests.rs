//! Where the worker's requests come from. The agent makes stdin a Unix packet socket: one
//! request per packet, with the UDP sockets a request starts media on passed beside it
//! ([`splitdial_media::passing`]). A worker started by hand reads newline-delimited requests
//! from a plain stream and gets no sockets ([`splitdial_media::lines`]).

use std::io::{self, BufRead};
use std::os::fd::OwnedFd;

use splitdial_media::lines::{Line, LineBuffer, MAX_LINE_BYTES, read_line};
use splitdial_media::passing::{is_packet_socket, receive_with_sockets};
use tracing::warn;

/// One request as it arrived.
#[derive(Debug)]
pub struct Incoming {
    /// Its text (or that it was too long).
    pub line: Line,
    /// The sockets passed with it, in the order the agent sent them.
    pub sockets: Vec<OwnedFd>,
}

/// A source of requests, read one at a time.
pub trait Requests {
    /// The next request; `Ok(None)` when the agent closed its end.
    fn next_request(&mut self) -> io::Result<Option<Incoming>>;
}

/// Newline-delimited requests from a byte stream; no sockets can travel there.
pub struct StreamRequests<R> {
    input: R,
    lines: LineBuffer,
}

impl<R: BufRead> StreamRequests<R> {
    /// Requests read from `input`.
    pub fn new(input: R) -> Self {
        Self {
            input,
            lines: LineBuffer::new(MAX_LINE_BYTES),
        }
    }
}

impl<R: BufRead> Requests for StreamRequests<R> {
    fn next_request(&mut self) -> io::Result<Option<Incoming>> {
        Ok(
            read_line(&mut self.input, &mut self.lines)?.map(|line| Incoming {
                line,
                sockets: Vec::new(),
            }),
        )
    }
}

/// One request per packet of a `SOCK_SEQPACKET` socket, with passed sockets.
pub struct PacketRequests {
    socket: OwnedFd,
    buffer: Vec<u8>,
}

impl PacketRequests {
    /// Requests from `socket`, if it is a packet socket (`None` for anything else).
    pub fn from_socket(socket: OwnedFd) -> Option<Self> {
        is_packet_socket(&socket).then(|| Self {
            socket,
            // One byte more than a request may have, so an overlong one shows as truncated.
            buffer: vec![0; MAX_LINE_BYTES + 2],
        })
    }
}

impl Requests for PacketRequests {
    fn next_request(&mut self) -> io::Result<Option<Incoming>> {
        let packet = receive_with_sockets(&self.socket, &mut self.buffer)?;
        if packet.sockets_dropped {
            // The agent never passes more than the contract allows; the kernel closed the rest.
            warn!("a request passed more sockets than allowed: they are ignored");
        }
        if packet.is_end() {
            return Ok(None);
        }
        let text = &self.buffer[..packet.len];
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        let line = if packet.truncated || text.len() > MAX_LINE_BYTES {
            Line::TooLong
        } else {
            Line::Complete(text.to_vec())
        };
        Ok(Some(Incoming {
            line,
            sockets: packet.sockets,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use splitdial_media::passing::{request_socket_pair, send_with_sockets};
    use std::net::UdpSocket;

    fn send(socket: &OwnedFd, packet: &[u8], sockets: &[&UdpSocket]) {
        send_with_sockets(socket, packet, sockets).expect("the packet is sent whole");
    }

    #[test]
    fn each_packet_is_one_request_with_the_sockets_passed_beside_it() {
        let (agent, worker) = request_socket_pair().expect("a socket pair");
        let mut requests = PacketRequests::from_socket(worker).expect("a packet socket");
        let rtp = UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
        let rtcp = UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
        send(&agent, b"{\"id\":1}\n", &[&rtp, &rtcp]);
        send(&agent, b"{\"id\":2}\n", &[]);
        let first = requests.next_request().expect("reads").expect("a request");
        assert_eq!(first.line, Line::Complete(b"{\"id\":1}".to_vec()));
        let passed: Vec<_> = first
            .sockets
            .into_iter()
            .map(|fd| UdpSocket::from(fd).local_addr().ok())
            .collect();
        assert_eq!(passed, vec![rtp.local_addr().ok(), rtcp.local_addr().ok()]);
        let second = requests.next_request().expect("reads").expect("a request");
        assert_eq!(second.line, Line::Complete(b"{\"id\":2}".to_vec()));
        assert!(second.sockets.is_empty());
        drop(agent);
        assert!(requests.next_request().expect("reads").is_none());
    }

    #[test]
    fn a_stream_is_not_taken_for_packets() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("a stream pair");
        assert!(PacketRequests::from_socket(OwnedFd::from(a)).is_none());
    }
}
