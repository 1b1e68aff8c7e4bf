//! A UDP socket that looks at each datagram's raw bytes before rsipstack parses
//! it. rsipstack's parser forgives a malformed Request-Line (extra spaces, `<>`
//! around the Request-URI) and stops silently at a header line that is not
//! UTF-8; only the raw bytes show these, so a proxy answers them 400 here.

use crate::screen;
use crate::wire;
use async_trait::async_trait;
use rsipstack::sip::{Request, SipMessage};
use std::net::SocketAddr;
use tracing::debug;

/// A tokio UDP socket whose receive side answers raw-level defects itself.
pub struct ScreenedUdpSocket {
    socket: tokio::net::UdpSocket,
}

/// Receive buffer asked for (the kernel caps it at `net.core.rmem_max`). The
/// default (~200 KiB) overflows in a burst when the one task reading the socket
/// is starved of CPU: the kernel then drops datagrams, and a peer that answers a
/// retransmitted INVITE strictly (sipp does) gives up on the call.
pub const RECEIVE_BUFFER_BYTES: usize = 4 * 1024 * 1024;

impl ScreenedUdpSocket {
    /// Binds to `addr` with a large receive buffer.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if let Err(e) = socket.set_recv_buffer_size(RECEIVE_BUFFER_BYTES) {
            debug!(error = %e, "could not enlarge the UDP receive buffer");
        }
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        Ok(Self {
            socket: tokio::net::UdpSocket::from_std(socket.into())?,
        })
    }

    /// Answers a datagram with a raw-level defect, when it can be answered.
    async fn answer_defect(&self, bytes: &[u8], reason: &str, source: SocketAddr) {
        let Ok(SipMessage::Request(request)) = SipMessage::try_from(bytes) else {
            return;
        };
        if !answerable(&request) {
            return;
        }
        let response = wire::response_to(&request, 400, reason, Vec::new());
        if let Err(e) = self.socket.send_to(&response.to_bytes(), source).await {
            debug!(error = %e, "could not answer a malformed datagram");
        }
    }
}

fn answerable(request: &Request) -> bool {
    request.method != rsipstack::sip::Method::Ack
        && ["Via", "From", "To", "Call-ID", "CSeq"]
            .iter()
            .all(|n| crate::headers::count(&request.headers, n) > 0)
}

#[async_trait]
impl rsipstack::platform::net::UdpSocket for ScreenedUdpSocket {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        loop {
            let (len, source) = self.socket.recv_from(buf).await?;
            match screen::raw_request_problem(&buf[..len]) {
                None => return Ok((len, source)),
                Some(reason) => {
                    debug!(%source, reason, "malformed datagram");
                    self.answer_defect(&buf[..len], reason, source).await;
                }
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        Ok(self.socket.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
}
