//! Where the worker's requests come from. The agent makes stdin a Unix packet socket: one
//! request per packet, with the UDP sockets a request starts media on passed beside it
//! (`SCM_RIGHTS`). A worker started by hand reads newline-delimited requests from a plain
//! stream and gets no sockets (see [`talker_agent::media::protocol`]).

use std::io::{self, BufRead, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SocketType};
use talker_agent::media::protocol::{
    Line, LineBuffer, MAX_LINE_BYTES, MAX_PASSED_SOCKETS, read_line,
};
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
        let packets = rustix::net::sockopt::socket_type(&socket)
            .is_ok_and(|kind| kind == SocketType::SEQPACKET);
        packets.then(|| Self {
            socket,
            // One byte more than a request may have, so an overlong one shows as truncated.
            buffer: vec![0; MAX_LINE_BYTES + 2],
        })
    }
}

impl Requests for PacketRequests {
    fn next_request(&mut self) -> io::Result<Option<Incoming>> {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_PASSED_SOCKETS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let received = loop {
            let mut data = [IoSliceMut::new(&mut self.buffer)];
            match rustix::net::recvmsg(
                self.socket.as_fd(),
                &mut data,
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            ) {
                Err(Errno::INTR) => {}
                other => break other?,
            }
        };
        let mut sockets = Vec::new();
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(passed) = message {
                sockets.extend(passed);
            }
        }
        if received.flags.contains(ReturnFlags::CTRUNC) {
            // The agent never passes more than MAX_PASSED_SOCKETS; the kernel closed the rest.
            warn!("a request passed more sockets than allowed: they are ignored");
            sockets.clear();
        }
        if received.bytes == 0 && sockets.is_empty() {
            return Ok(None);
        }
        let text = &self.buffer[..received.bytes.min(self.buffer.len())];
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        let line = if received.flags.contains(ReturnFlags::TRUNC) || text.len() > MAX_LINE_BYTES {
            Line::TooLong
        } else {
            Line::Complete(text.to_vec())
        };
        Ok(Some(Incoming { line, sockets }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::net::{AddressFamily, SocketFlags};
    use std::net::UdpSocket;
    use talker_agent::media::protocol::send_with_sockets;

    fn send(socket: &OwnedFd, packet: &[u8], sockets: &[&UdpSocket]) {
        send_with_sockets(socket, packet, sockets).expect("the packet is sent whole");
    }

    #[test]
    fn each_packet_is_one_request_with_the_sockets_passed_beside_it() {
        let (agent, worker) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .expect("a socket pair");
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
