//! splitdial's embedded SIP server: a registrar and stateful proxy for one domain,
//! for the household demo and the tests (Kamailio plays this part in production).
//!
//! Layout, in the order a request meets it:
//! * [`gatekeeper`] screens every message before rsipstack's transaction layer,
//!   answers invalid requests with a 4xx, and does the stateless forwarding a
//!   proxy still needs (ACK of a 2xx, 2xx retransmissions).
//! * [`registrar`] handles REGISTER: [`digest`] authentication against the
//!   [`users`] file, bindings in the [`location`] service, GRUUs.
//! * [`proxy`] forwards everything else: authentication of callers, [`hints`]
//!   (auto-answer headers, asserted identity), forking, CANCEL, best response.
//! * [`routing`] and [`record_route`] hold the loose-routing rules and our signed
//!   Record-Route entries; [`context`] is the state they all share.

pub mod context;
pub mod digest;
pub mod gatekeeper;
pub mod hints;
pub mod location;
pub mod proxy;
pub mod record_route;
pub mod registrar;
pub mod routing;
pub mod users;

pub use context::{Context, ServerConfig};

use rsipstack::sip::Method;
use splitdial_sip::endpoint::{self, EndpointConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

/// Errors of the SIP server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SIP layer failed.
    #[error(transparent)]
    Sip(#[from] splitdial_sip::Error),
    /// rsipstack failed.
    #[error("SIP stack: {0}")]
    Stack(#[from] rsipstack::Error),
    /// A message could not be routed.
    #[error("routing: {0}")]
    Routing(String),
    /// The server is shutting down.
    #[error("server stopped")]
    Stopped,
}

/// Result type of the SIP server.
pub type Result<T> = std::result::Result<T, Error>;

/// A running server; dropping it does not stop it, [`RunningServer::shutdown`] does.
pub struct RunningServer {
    context: Arc<Context>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// The address the server listens on (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.context.local
    }

    /// The shared state (location service and configuration), for tests and tools.
    pub fn context(&self) -> &Arc<Context> {
        &self.context
    }

    /// Stops accepting work and waits (briefly) for the server task to end.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
    }
}

/// Binds the sockets and starts serving.
pub async fn start(config: ServerConfig) -> Result<RunningServer> {
    let cancel = CancellationToken::new();
    // The gatekeeper needs the context, which needs the bound address: bind
    // first with a late-bound context slot.
    let slot: Arc<std::sync::OnceLock<Arc<Context>>> = Arc::default();
    let bound = endpoint::bind(EndpointConfig {
        listen: config.listen,
        user_agent: format!("splitdial-sip-server/{}", env!("CARGO_PKG_VERSION")),
        proxy: true,
        inspector: Some(Box::new(LateGatekeeper(slot.clone()))),
        cancel: cancel.clone(),
        // A proxy resolves no names at all: it routes by IP to its own users.
        known_domains: Vec::new(),
    })
    .await?;
    let context = Arc::new(Context::new(config, bound.local));
    let _ = slot.set(context.clone());
    context.attach_endpoint(&bound.endpoint.inner);
    if context.is_open() {
        tracing::warn!("no users file: open registration, anyone may register and call");
    }

    let incoming = bound.endpoint.incoming_transactions()?;
    let handler_context = context.clone();
    let serving = endpoint::serve_transactions(bound.endpoint, incoming, move |tx| {
        let context = handler_context.clone();
        async move {
            if tx.original.method == Method::Register {
                registrar::handle(&context, tx).await;
            } else {
                proxy::handle(context, tx).await;
            }
        }
    });
    let serve_context = context.clone();
    let serve_cancel = cancel.clone();
    let task = tokio::spawn(async move {
        tokio::pin!(serving);
        let mut purge = tokio::time::interval(Duration::from_secs(30));
        loop {
            tokio::select! {
                () = &mut serving => break,
                () = serve_cancel.cancelled() => break,
                _ = purge.tick() => {
                    let dropped = serve_context.location.purge();
                    if dropped > 0 { debug!(dropped, "expired bindings purged"); }
                }
            }
        }
        // The endpoint's own token: it stops too when serving ended otherwise.
        serve_cancel.cancel();
        info!("sip-server stopped");
    });
    Ok(RunningServer {
        context,
        cancel,
        task,
    })
}

/// Forwards to the gatekeeper once the context exists (messages that arrive
/// before that, in the first microseconds, are dropped).
struct LateGatekeeper(Arc<std::sync::OnceLock<Arc<Context>>>);

#[async_trait::async_trait]
impl rsipstack::transaction::endpoint::TransportEventInspector for LateGatekeeper {
    async fn handle(
        &self,
        event: rsipstack::transport::TransportEvent,
    ) -> Option<rsipstack::transport::TransportEvent> {
        let context = self.0.get()?.clone();
        gatekeeper::Gatekeeper::new(context).handle(event).await
    }
}
