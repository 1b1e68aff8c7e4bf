//! How the bound UDP sockets travel from the agent to its media worker. The agent makes the
//! worker's stdin one end of a Unix `SOCK_SEQPACKET` pair ([`request_socket_pair`]): each
//! request is one packet, and a request that starts media carries the sockets the agent
//! reserved for the SDP as `SCM_RIGHTS` ancillary data (audio RTP, audio RTCP, then video RTP
//! and RTCP; see [`crate::ports::AllocatedPorts::into_passed`]), so a port stays bound from the
//! SDP to the pipeline. [`send_with_sockets`] is the agent's half, [`receive_with_sockets`]
//! the worker's.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

/// A connected pair of packet sockets, both close-on-exec: the agent keeps the first and
/// gives the second to the worker as its stdin.
pub fn request_socket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Whether `socket` is a packet socket, i.e. the worker's stdin was made by the agent (and not
/// a plain pipe from someone driving the worker by hand).
pub fn is_packet_socket(socket: impl AsFd) -> bool {
    rustix::net::sockopt::socket_type(socket).is_ok_and(|kind| kind == SocketType::SEQPACKET)
}

/// Most sockets one request carries (audio and video, RTP and RTCP each).
pub const MAX_PASSED_SOCKETS: usize = 4;

/// Sends one request `packet` on a packet socket with `sockets` beside it as `SCM_RIGHTS`,
/// without blocking and without SIGPIPE (a worker that died fails the request, it does not stop
/// the agent). A packet socket takes all of a packet or nothing: anything less is an error.
pub fn send_with_sockets(
    socket: impl AsFd,
    packet: &[u8],
    sockets: &[impl AsFd],
) -> io::Result<()> {
    if sockets.len() > MAX_PASSED_SOCKETS {
        return Err(io::Error::other("too many sockets for one request"));
    }
    let borrowed: Vec<_> = sockets.iter().map(AsFd::as_fd).collect();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_PASSED_SOCKETS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !borrowed.is_empty() && !control.push(SendAncillaryMessage::ScmRights(&borrowed)) {
        return Err(io::Error::other("no room for the passed sockets"));
    }
    let sent = rustix::net::sendmsg(
        socket,
        &[IoSlice::new(packet)],
        &mut control,
        SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
    )?;
    if sent == packet.len() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "sent {sent} of {} bytes",
            packet.len()
        )))
    }
}
/// One packet as [`receive_with_sockets`] read it.
#[derive(Debug)]
pub struct ReceivedPacket {
    /// How many bytes of the packet are in the buffer (0 with no sockets: the peer closed).
    pub len: usize,
    /// The packet was longer than the buffer; the rest of it is lost.
    pub truncated: bool,
    /// The sockets passed beside it, in the order they were sent.
    pub sockets: Vec<OwnedFd>,
    /// More sockets came than [`MAX_PASSED_SOCKETS`]: the kernel closed the surplus, and the
    /// ones that did arrive are dropped too (a request never passes that many).
    pub sockets_dropped: bool,
}

impl ReceivedPacket {
    /// Whether this is the end of the requests: the peer closed its end.
    pub fn is_end(&self) -> bool {
        self.len == 0 && self.sockets.is_empty()
    }
}

/// Reads one packet from a packet socket into `buffer`, with the sockets passed beside it
/// (close-on-exec), blocking until one arrives; retried when a signal interrupts the wait.
pub fn receive_with_sockets(socket: impl AsFd, buffer: &mut [u8]) -> io::Result<ReceivedPacket> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_PASSED_SOCKETS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = loop {
        let mut data = [IoSliceMut::new(buffer)];
        match rustix::net::recvmsg(
            socket.as_fd(),
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
    let sockets_dropped = received.flags.contains(ReturnFlags::CTRUNC);
    if sockets_dropped {
        sockets.clear();
    }
    Ok(ReceivedPacket {
        len: received.bytes.min(buffer.len()),
        truncated: received.flags.contains(ReturnFlags::TRUNC),
        sockets,
        sockets_dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    fn bound() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").expect("a UDP socket on loopback")
    }

    #[test]
    fn a_packet_arrives_whole_with_its_sockets_in_order() {
        let (agent, worker) = request_socket_pair().expect("a socket pair");
        assert!(is_packet_socket(&agent) && is_packet_socket(&worker));
        let (rtp, rtcp) = (bound(), bound());
        send_with_sockets(&agent, b"{\"id\":1}\n", &[&rtp, &rtcp]).expect("sent");
        send_with_sockets(&agent, b"{\"id\":2}\n", &[] as &[&UdpSocket]).expect("sent");

        let mut buffer = [0; 64];
        let first = receive_with_sockets(&worker, &mut buffer).expect("received");
        assert_eq!(&buffer[..first.len], b"{\"id\":1}\n");
        assert!(!first.truncated && !first.sockets_dropped && !first.is_end());
        let passed: Vec<_> = first
            .sockets
            .into_iter()
            .map(|fd| UdpSocket::from(fd).local_addr().ok())
            .collect();
        assert_eq!(passed, vec![rtp.local_addr().ok(), rtcp.local_addr().ok()]);

        let second = receive_with_sockets(&worker, &mut buffer).expect("received");
        assert_eq!(&buffer[..second.len], b"{\"id\":2}\n");
        assert!(second.sockets.is_empty());

        drop(agent);
        assert!(
            receive_with_sockets(&worker, &mut buffer)
                .expect("received")
                .is_end()
        );
    }

    #[test]
    fn a_packet_longer_than_the_buffer_is_marked_truncated() {
        let (agent, worker) = request_socket_pair().expect("a socket pair");
        send_with_sockets(&agent, &[b'x'; 100], &[] as &[&UdpSocket]).expect("sent");
        let mut buffer = [0; 10];
        let packet = receive_with_sockets(&worker, &mut buffer).expect("received");
        assert!(packet.truncated);
        assert_eq!(packet.len, 10);
    }

    #[test]
    fn no_request_passes_more_sockets_than_allowed() {
        let (agent, _worker) = request_socket_pair().expect("a socket pair");
        let many: Vec<UdpSocket> = (0..=MAX_PASSED_SOCKETS).map(|_| bound()).collect();
        assert!(send_with_sockets(&agent, b"{}\n", &many).is_err());
    }

    #[test]
    fn a_stream_or_a_datagram_socket_is_not_a_packet_socket() {
        let (stream, _other) = std::os::unix::net::UnixStream::pair().expect("a stream pair");
        assert!(!is_packet_socket(&stream));
        assert!(!is_packet_socket(bound()));
    }
}
