//! What every part of the server shares: configuration, the location service,
//! the digest authority, the route signer and a handle on the SIP endpoint.

use crate::digest::DigestAuthority;
use crate::location::Location;
use crate::record_route::RouteSigner;
use crate::users::UserDirectory;
use rsipstack::sip::{HostWithPort, SipMessage, Transport};
use rsipstack::transaction::endpoint::EndpointInner;
use rsipstack::transport::SipAddr;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// How the server is set up.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// UDP and TCP listen address.
    pub listen: SocketAddr,
    /// The SIP domain served (also the digest realm).
    pub domain: String,
    /// Registered users; `None` for open registration (demos and tests).
    pub users: Option<UserDirectory>,
    /// Peers (the matcher's call controller) trusted over TCP.
    pub trusted: Vec<IpAddr>,
    /// Shortest registration granted; shorter asks get 423.
    pub min_expires: u32,
    /// Longest registration granted; longer asks are cut to this.
    pub max_expires: u32,
}

impl ServerConfig {
    /// A config with the usual limits and open registration.
    pub fn new(listen: SocketAddr, domain: impl Into<String>) -> Self {
        Self {
            listen,
            domain: domain.into(),
            users: None,
            trusted: Vec::new(),
            min_expires: 60,
            max_expires: 3600,
        }
    }
}

/// Shared state of a running server.
pub struct Context {
    /// The configuration.
    pub config: ServerConfig,
    /// The address actually bound.
    pub local: SocketAddr,
    /// Where each user's devices are.
    pub location: Location,
    /// Issues and checks digest challenges.
    pub digest: DigestAuthority,
    /// Signs and checks our Record-Route entries.
    pub routes: RouteSigner,
    endpoint: OnceLock<Weak<EndpointInner>>,
}

/// How long a forked INVITE may ring before we give up on it (RFC 3261 Timer C).
pub const RING_LIMIT: Duration = Duration::from_secs(180);

impl Context {
    /// Creates the shared state for a server bound at `local`.
    pub fn new(config: ServerConfig, local: SocketAddr) -> Self {
        Self {
            digest: DigestAuthority::new(&config.domain),
            routes: RouteSigner::new(local, config.domain.clone()),
            location: Location::default(),
            endpoint: OnceLock::new(),
            config,
            local,
        }
    }

    /// Connects the context to its endpoint (done once, at start-up).
    pub fn attach_endpoint(&self, inner: &Arc<EndpointInner>) {
        let _ = self.endpoint.set(Arc::downgrade(inner));
    }

    /// The endpoint, while it runs.
    pub fn endpoint(&self) -> Option<Arc<EndpointInner>> {
        self.endpoint.get().and_then(Weak::upgrade)
    }

    /// Whether a URI host (and port) names this server: our domain, or our
    /// listen address.
    pub fn is_us(&self, hp: &HostWithPort) -> bool {
        self.routes.names_us(hp)
    }

    /// Whether a request came from a trusted peer: over TCP, from a `--trusted`
    /// address (a UDP source address can be forged).
    pub fn is_trusted(&self, transport: Transport, source: Option<&SipAddr>) -> bool {
        if transport != Transport::Tcp {
            return false;
        }
        let Some(source) = source.and_then(|s| s.get_socketaddr().ok()) else {
            return false;
        };
        self.config.trusted.contains(&source.ip())
    }

    /// Our address for `transport`, as rsipstack wants it for Via headers.
    pub fn local_addr(&self, transport: Transport) -> SipAddr {
        SipAddr {
            r#type: Some(transport),
            addr: self.local.into(),
        }
    }

    /// Sends a message outside any transaction to `dest`.
    pub async fn send_stateless(&self, message: SipMessage, dest: &SipAddr) -> crate::Result<()> {
        let endpoint = self.endpoint().ok_or(crate::Error::Stopped)?;
        let (connection, resolved) = endpoint.transport_layer.lookup(dest, None).await?;
        connection.send(message, Some(&resolved)).await?;
        Ok(())
    }

    /// Whether open registration is on (no users file).
    pub fn is_open(&self) -> bool {
        self.config.users.is_none()
    }

    /// Whether the user part names a user that can exist here.
    pub fn user_exists(&self, user: &str) -> bool {
        match &self.config.users {
            Some(users) => users.contains(user),
            None => self.location.is_known(user),
        }
    }

    /// The public address of record of `user`.
    pub fn aor(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.config.domain)
    }
}
