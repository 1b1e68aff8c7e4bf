//! SIP over TCP with Nagle's algorithm off.
//!
//! SIP elements write small messages back to back on one connection: an ACK
//! and then a REFER, a 202 and then a NOTIFY. With Nagle's algorithm on, the
//! second message waits until the peer acknowledges the first, and the peer
//! delays that acknowledgement (about 40 ms on Linux). A click-to-dial set-up
//! met that wait several times. rsipstack opens and accepts its TCP
//! connections itself and never sets `TCP_NODELAY`, so splitdial does both
//! here and hands the streams to rsipstack's connection table:
//!
//! - [`serve_accepts`] accepts on the endpoint's TCP port (see
//!   [`crate::endpoint::bind`]);
//! - [`OutboundFlows::ensure`] opens the connection to a proxy before a
//!   request is sent there, so rsipstack finds it instead of dialing one.

use rsipstack::transaction::endpoint::EndpointInner;
use rsipstack::transport::tcp::TcpConnection;
use rsipstack::transport::{SipAddr, SipConnection};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// How long opening an outbound connection may take before rsipstack is left
/// to try on its own.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How soon [`OutboundFlows::keep_open`] tries again after a connection closed
/// or could not be opened (a server restart): sooner than a registration's
/// retry, so the re-registration finds our connection rather than dialing one.
const REOPEN_AFTER: Duration = Duration::from_millis(500);

/// A SIP-over-TCP address of `addr`, as rsipstack keys its connections.
fn tcp_addr(addr: SocketAddr) -> SipAddr {
    SipAddr {
        r#type: Some(rsipstack::sip::Transport::Tcp),
        addr: addr.into(),
    }
}

/// Accepts TCP connections on `listener` until `cancel` fires, turns Nagle's
/// algorithm off on each and gives it to the endpoint, which reads it from
/// then on and answers on it.
pub(crate) async fn serve_accepts(
    listener: TcpListener,
    local: SocketAddr,
    endpoint: Weak<EndpointInner>,
    cancel: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and the like: back off rather than spin.
                tracing::warn!(error = %e, %local, "cannot accept a SIP TCP connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(endpoint) = endpoint.upgrade() else {
            return;
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, %peer, "TCP_NODELAY not set");
        }
        match TcpConnection::from_stream(stream, tcp_addr(local), Some(cancel.child_token())) {
            Ok(connection) => {
                tracing::debug!(%peer, %local, "SIP TCP connection accepted");
                endpoint
                    .transport_layer
                    .add_connection(SipConnection::Tcp(connection));
            }
            Err(e) => tracing::warn!(error = %e, %peer, "accepted SIP TCP connection dropped"),
        }
    }
}

/// The TCP connections this endpoint opened itself, one per proxy, each with
/// Nagle's algorithm off. Cloning shares them.
#[derive(Clone)]
pub struct OutboundFlows {
    endpoint: Weak<EndpointInner>,
    cancel: CancellationToken,
    open: Arc<tokio::sync::Mutex<HashMap<SocketAddr, TcpConnection>>>,
}

impl std::fmt::Debug for OutboundFlows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundFlows").finish_non_exhaustive()
    }
}

impl OutboundFlows {
    pub(crate) fn new(endpoint: Weak<EndpointInner>, cancel: CancellationToken) -> Self {
        Self {
            endpoint,
            cancel,
            open: Arc::default(),
        }
    }

    /// Makes sure a live TCP connection to `proxy` exists, opening one when
    /// there is none or the last one closed. Call it before sending a request
    /// over TCP to `proxy`. It never fails: when the connection cannot be
    /// opened here, rsipstack dials when the request is sent and reports the
    /// transport error there, where the caller already handles it.
    pub async fn ensure(&self, proxy: SocketAddr) {
        let mut open = self.open.lock().await;
        if let Some(connection) = open.get(&proxy) {
            // rsipstack cancels a connection's token when it retires it.
            let retired = connection
                .cancel_token
                .as_ref()
                .is_some_and(CancellationToken::is_cancelled);
            if !retired {
                return;
            }
            open.remove(&proxy);
        }
        let Some(endpoint) = self.endpoint.upgrade() else {
            return;
        };
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(proxy)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, %proxy, "cannot open a SIP TCP connection");
                return;
            }
            Err(_) => {
                tracing::debug!(%proxy, "opening a SIP TCP connection timed out");
                return;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, %proxy, "TCP_NODELAY not set");
        }
        let local = match stream.local_addr() {
            Ok(local) => local,
            Err(e) => {
                tracing::debug!(error = %e, %proxy, "new SIP TCP connection has no local address");
                return;
            }
        };
        match TcpConnection::from_stream(stream, tcp_addr(local), Some(self.cancel.child_token())) {
            Ok(connection) => {
                tracing::debug!(%proxy, %local, "SIP TCP connection opened");
                endpoint
                    .transport_layer
                    .add_connection(SipConnection::Tcp(connection.clone()));
                open.insert(proxy, connection);
            }
            Err(e) => tracing::debug!(error = %e, %proxy, "new SIP TCP connection dropped"),
        }
    }

    /// Keeps a connection to `proxy` open until `stop`: opens it, and opens it
    /// again whenever it closes. For a talker's registration flow, which its
    /// server also uses to reach the talker.
    pub async fn keep_open(&self, proxy: SocketAddr, stop: CancellationToken) {
        loop {
            self.ensure(proxy).await;
            let closed = self
                .open
                .lock()
                .await
                .get(&proxy)
                .and_then(|connection| connection.cancel_token.clone());
            if let Some(closed) = closed {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = closed.cancelled() => {}
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(REOPEN_AFTER) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::endpoint::{BoundEndpoint, EndpointConfig, bind};
    use std::time::Instant;

    use super::*;

    async fn endpoint(cancel: &CancellationToken) -> BoundEndpoint {
        bind(EndpointConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            user_agent: "tcp-flow-test".into(),
            proxy: false,
            inspector: None,
            cancel: cancel.clone(),
            known_domains: Vec::new(),
        })
        .await
        .unwrap()
    }

    async fn wait_for_connections(bound: &BoundEndpoint, count: usize) {
        let start = Instant::now();
        while bound.endpoint.inner.transport_layer.connections_count() != count {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{} connections, not {count}",
                bound.endpoint.inner.transport_layer.connections_count()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn the_opened_flow_is_the_one_rsipstack_sends_on_and_the_peer_accepts_it() {
        let cancel = CancellationToken::new();
        let server = endpoint(&cancel).await;
        let client = endpoint(&cancel).await;
        client.flows.ensure(server.local).await;
        client.flows.ensure(server.local).await;
        wait_for_connections(&client, 1).await;
        wait_for_connections(&server, 1).await;

        let ours = client.flows.open.lock().await.get(&server.local).cloned();
        let ours = SipConnection::Tcp(ours.expect("a flow to the server"));
        let (found, _) = client
            .endpoint
            .inner
            .transport_layer
            .lookup(&tcp_addr(server.local), None)
            .await
            .unwrap();
        // Our flow's local port is its own: the same address means the same flow.
        assert_eq!(
            found.get_addr(),
            ours.get_addr(),
            "rsipstack dialed its own"
        );
        assert_eq!(client.endpoint.inner.transport_layer.connections_count(), 1);
        cancel.cancel();
    }

    #[tokio::test]
    async fn a_closed_flow_is_opened_again() {
        let cancel = CancellationToken::new();
        let server_cancel = CancellationToken::new();
        let server = endpoint(&server_cancel).await;
        let client = endpoint(&cancel).await;
        let keeper = {
            let (flows, proxy, stop) = (client.flows.clone(), server.local, cancel.clone());
            tokio::spawn(async move { flows.keep_open(proxy, stop).await })
        };
        wait_for_connections(&server, 1).await;
        let first = client.flows.open.lock().await.get(&server.local).cloned();
        let first = first.expect("a flow");

        // The server goes away: the flow closes; a new server on the same port
        // gets a new flow without anyone sending anything.
        let port = server.local;
        server_cancel.cancel();
        drop(server);
        let closed = first.cancel_token.clone().expect("a token");
        tokio::time::timeout(Duration::from_secs(5), closed.cancelled())
            .await
            .expect("the flow closes with its server");
        let again = CancellationToken::new();
        let restarted = bind(EndpointConfig {
            listen: port,
            user_agent: "tcp-flow-test".into(),
            proxy: false,
            inspector: None,
            cancel: again.clone(),
            known_domains: Vec::new(),
        })
        .await
        .unwrap();
        wait_for_connections(&restarted, 1).await;
        cancel.cancel();
        again.cancel();
        tokio::time::timeout(Duration::from_secs(2), keeper)
            .await
            .expect("keep_open stops with its token")
            .unwrap();
    }
}
