//! An rsipstack endpoint bound to UDP and TCP on one address, with splitdial's
//! defaults: our Call-ID suffix, our User-Agent, no DNS, and TCP without
//! Nagle's algorithm ([`crate::tcp_flow`]); and the loop that serves it,
//! handing each incoming transaction to the element's handler.

use crate::screened_socket::ScreenedUdpSocket;
use crate::tcp_flow::OutboundFlows;
use async_trait::async_trait;
use rsipstack::EndpointBuilder;
use rsipstack::sip::{Host, HostWithPort};
use rsipstack::transaction::endpoint::{EndpointOption, TransportEventInspector};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::{Endpoint, TransactionReceiver};
use rsipstack::transport::transport_layer::DomainResolver;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, TransportLayer};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio_util::sync::CancellationToken;

/// The suffix of Call-IDs we generate (rsipstack's default names its vendor).
pub const CALL_ID_SUFFIX: &str = "splitdial.invalid";

/// How to build an endpoint.
pub struct EndpointConfig {
    /// Address for both the UDP socket and the TCP listener; port 0 picks one.
    pub listen: SocketAddr,
    /// User-Agent / Server header value.
    pub user_agent: String,
    /// Proxy behaviour: client INVITE transactions do not ACK 2xx (RFC 3261 §16).
    pub proxy: bool,
    /// Sees every transport event before the transaction layer (proxies use it
    /// for stateless forwarding and for screening requests).
    pub inspector: Option<Box<dyn TransportEventInspector>>,
    /// Cancelling it stops the endpoint.
    pub cancel: CancellationToken,
    /// Domains we may send to, and where (a SIP account's server and its proxy
    /// address): the only names this endpoint ever "resolves".
    pub known_domains: Vec<(String, SocketAddr)>,
}

/// A bound endpoint and the address it listens on.
pub struct BoundEndpoint {
    /// The rsipstack endpoint; call `serve()` to run it.
    pub endpoint: Endpoint,
    /// The actual local address (the port is resolved when 0 was asked for).
    pub local: SocketAddr,
    /// Opens TCP connections to proxies with Nagle's algorithm off; call
    /// [`OutboundFlows::ensure`] before sending a request over TCP.
    pub flows: OutboundFlows,
}

/// Binds UDP and TCP on the same address and builds the endpoint.
pub async fn bind(config: EndpointConfig) -> crate::Result<BoundEndpoint> {
    let transport = TransportLayer::new_with_domain_resolver(
        config.cancel.clone(),
        Box::new(NoDnsResolver::with_domains(config.known_domains)),
    );
    let (udp, tcp, local) = bind_pair(config.listen, &config.cancel).await?;
    // Only UDP is registered as a listener: rsipstack would bind and accept TCP
    // itself, with Nagle's algorithm on. Where it needs our TCP address (Via,
    // Contact) it takes the first listener's with the transport swapped, which
    // is the same address.
    transport.add_transport(udp.into());

    let option = EndpointOption {
        callid_suffix: Some(CALL_ID_SUFFIX.into()),
        auto_ack_2xx: !config.proxy,
        ..EndpointOption::default()
    };
    let mut builder = EndpointBuilder::new();
    builder
        .with_user_agent(&config.user_agent)
        .with_transport_layer(transport)
        .with_cancel_token(config.cancel.clone())
        .with_option(option);
    if let Some(inspector) = config.inspector {
        builder.with_transport_inspector(inspector);
    }
    builder.with_inspector(Box::new(crate::digest_names::DigestAlgorithmNames));
    let endpoint = builder.build();
    let weak = std::sync::Arc::downgrade(&endpoint.inner);
    tokio::spawn(crate::tcp_flow::serve_accepts(
        tcp,
        local,
        weak.clone(),
        config.cancel.clone(),
    ));
    Ok(BoundEndpoint {
        endpoint,
        local,
        flows: OutboundFlows::new(weak, config.cancel),
    })
}

/// Binds UDP and a TCP listener on the same address.
async fn bind_pair(
    listen: SocketAddr,
    cancel: &CancellationToken,
) -> crate::Result<(UdpConnection, tokio::net::TcpListener, SocketAddr)> {
    let mut last_error = None;
    // With port 0 the UDP port is random; TCP may find it taken: try a few.
    for _ in 0..8 {
        let socket = ScreenedUdpSocket::bind(listen).await?;
        let udp =
            UdpConnection::from_socket(std::sync::Arc::new(socket), None, Some(cancel.clone()))
                .await?;
        let local = udp.get_addr().get_socketaddr()?;
        match tcp_listener(local) {
            Ok(tcp) => return Ok((udp, tcp, local)),
            Err(e) if listen.port() == 0 => last_error = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last_error
        .unwrap_or_else(|| std::io::Error::other("no free port for UDP and TCP"))
        .into())
}

/// A TCP listener on `local`, reusable right after a restart (SO_REUSEADDR).
fn tcp_listener(local: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(local),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&local.into())?;
    socket.listen(128)?;
    tokio::net::TcpListener::from_std(socket.into())
}

/// Runs `endpoint` (its transports and transaction timers) and hands every
/// transaction from `incoming` (its [`Endpoint::incoming_transactions`]) to
/// `handle`, each in a task of its own so that a slow one holds up no other,
/// until the endpoint stops (its cancel token) or stops delivering
/// transactions.
pub async fn serve_transactions<H, F>(
    endpoint: Endpoint,
    mut incoming: TransactionReceiver,
    handle: H,
) where
    H: Fn(Transaction) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let serve = endpoint.serve();
    tokio::pin!(serve);
    loop {
        tokio::select! {
            () = &mut serve => break,
            tx = incoming.recv() => {
                let Some(tx) = tx else { break };
                tokio::spawn(handle(tx));
            }
        }
    }
}

/// A resolver that never asks DNS: IP literals pass, `localhost` is loopback,
/// the domains of our own accounts map to their configured proxies, and every
/// other name is refused. SIP elements of splitdial must never resolve domains
/// they do not serve (no relaying toward the outside world).
#[derive(Debug, Default)]
pub struct NoDnsResolver {
    domains: Vec<(String, SocketAddr)>,
}

impl NoDnsResolver {
    /// A resolver that knows these `(domain, proxy address)` pairs.
    pub fn with_domains(domains: Vec<(String, SocketAddr)>) -> Self {
        Self { domains }
    }
}

#[async_trait]
impl DomainResolver for NoDnsResolver {
    async fn resolve(&self, target: &SipAddr) -> rsipstack::Result<SipAddr> {
        match &target.addr.host {
            Host::IpAddr(_) => Ok(target.clone()),
            Host::Domain(d) if d.to_string().eq_ignore_ascii_case("localhost") => Ok(SipAddr {
                r#type: target.r#type,
                addr: HostWithPort {
                    host: Host::IpAddr(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                    port: target.addr.port,
                },
            }),
            Host::Domain(d) => {
                let name = d.to_string();
                match self
                    .domains
                    .iter()
                    .find(|(known, _)| known.eq_ignore_ascii_case(&name))
                {
                    Some((_, proxy)) => Ok(SipAddr {
                        r#type: target.r#type,
                        addr: (*proxy).into(),
                    }),
                    None => Err(rsipstack::Error::DnsResolutionError(format!(
                        "{name}: domain names are not resolved"
                    ))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_udp_and_tcp_on_one_port() {
        let bound = bind(EndpointConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            user_agent: "test".into(),
            proxy: false,
            inspector: None,
            cancel: CancellationToken::new(),
            known_domains: Vec::new(),
        })
        .await
        .unwrap();
        assert_ne!(bound.local.port(), 0);
        assert!(bound.local.ip().is_loopback());
    }

    #[tokio::test]
    async fn refuses_to_resolve_domains() {
        let target =
            SipAddr::try_from(&rsipstack::sip::Uri::try_from("sip:example.com").unwrap()).unwrap();
        assert!(NoDnsResolver::default().resolve(&target).await.is_err());
        let ours = NoDnsResolver::with_domains(vec![(
            "Home.Example".into(),
            "127.0.0.1:5070".parse().unwrap(),
        )]);
        let home =
            SipAddr::try_from(&rsipstack::sip::Uri::try_from("sip:bob@home.example").unwrap())
                .unwrap();
        assert_eq!(
            ours.resolve(&home)
                .await
                .unwrap()
                .get_socketaddr()
                .unwrap()
                .to_string(),
            "127.0.0.1:5070"
        );
        assert!(ours.resolve(&target).await.is_err());
        let local =
            SipAddr::try_from(&rsipstack::sip::Uri::try_from("sip:localhost:5060").unwrap())
                .unwrap();
        let resolved = NoDnsResolver::default().resolve(&local).await.unwrap();
        assert_eq!(
            resolved.get_socketaddr().unwrap().to_string(),
            "127.0.0.1:5060"
        );
    }
}
