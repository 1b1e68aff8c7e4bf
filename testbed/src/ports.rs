//! Ports on 127.0.0.1 that nothing uses right now, for programs that must be
//! told their port before they start (sipp, baresip, Kamailio, a matcher
//! restarted on its old address, an address where nothing listens).
//!
//! A port found free can be taken by someone else before the program binds it;
//! the suite's loopback is private to it (`scripts/test`), so that race is
//! between the suite's own tests only and rare enough to accept.

use crate::{Error, Result};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};

/// How many ports the kernel is asked for before giving up.
const ATTEMPTS: usize = 200;

/// Whether `port` on 127.0.0.1 can be bound now for both UDP and TCP.
fn free_for_both(port: u16) -> bool {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
        && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// A port the kernel hands out for UDP on 127.0.0.1 (then released).
fn ephemeral_port() -> Result<u16> {
    Ok(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// A port on 127.0.0.1 free for both UDP and TCP (SIP listens on both).
///
/// # Errors
/// When no such port turns up after many tries, or a socket cannot be opened.
pub fn free_port() -> Result<u16> {
    for _ in 0..ATTEMPTS {
        let port = ephemeral_port()?;
        if free_for_both(port) {
            return Ok(port);
        }
    }
    Err(no_port("a free port"))
}

/// A port on 127.0.0.1 free for UDP and TCP whose next port is free too
/// (baresip binds TLS on its SIP port + 1).
///
/// # Errors
/// When no such pair turns up after many tries, or a socket cannot be opened.
pub fn free_port_pair() -> Result<u16> {
    for _ in 0..ATTEMPTS {
        let port = ephemeral_port()?;
        if port < u16::MAX && free_for_both(port) && free_for_both(port + 1) {
            return Ok(port);
        }
    }
    Err(no_port("two free consecutive ports"))
}

fn no_port(what: &str) -> Error {
    Error::Io(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("no {what} on 127.0.0.1 after {ATTEMPTS} tries"),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Test code: a panic is the failure report.
mod tests {
    use super::*;

    #[test]
    fn a_free_port_binds_for_udp_and_tcp() {
        let port = free_port().unwrap();
        let _udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
        let _tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }

    #[test]
    fn a_pair_binds_both_ports() {
        let port = free_port_pair().unwrap();
        for p in [port, port + 1] {
            let _udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, p)).unwrap();
            let _tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, p)).unwrap();
        }
    }

    #[test]
    fn a_taken_port_is_not_free() {
        let taken = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        assert!(!free_for_both(taken.local_addr().unwrap().port()));
    }
}
