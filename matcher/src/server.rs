//! A running matcher: storage, keys, the call controller and the HTTPS API wired
//! together, with an orderly shutdown (stop accepting, BYE the live control
//! legs, close the database).

use crate::api::{self, ApiSettings, AppState, RateLimiter, StreamSlots};
use crate::calls::{CallService, CallTimeouts};
use crate::controller::{Controller, ControllerConfig};
use crate::http_listener::{self, Transport};
use crate::metrics::Metrics;
use crate::presence::{Presence, run_prober};
use crate::signing::KeyRing;
use crate::storage::Store;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How to run a matcher.
#[derive(Debug, Clone)]
pub struct MatcherConfig {
    /// Database URL.
    pub db: String,
    /// HTTP API address.
    pub listen: SocketAddr,
    /// HTTPS with a certificate, or the plain-HTTP exception on loopback.
    pub transport: Transport,
    /// The controller's SIP address.
    pub sip_listen: SocketAddr,
    /// Instance name (owner of its calls).
    pub instance: String,
    /// API settings.
    pub api: ApiSettings,
    /// Call timeouts.
    pub timeouts: CallTimeouts,
}

/// A matcher serving HTTPS (or plain HTTP on loopback) and SIP.
pub struct RunningMatcher {
    http: SocketAddr,
    scheme: &'static str,
    sip: SocketAddr,
    calls: CallService,
    store: Store,
    stop: CancellationToken,
    server: JoinHandle<()>,
}

impl RunningMatcher {
    /// Opens the database, loads the keys, starts the controller and the API.
    pub async fn start(config: MatcherConfig) -> anyhow::Result<Self> {
        let store = Store::open(&config.db)
            .await
            .with_context(|| format!("opening the database {}", redact(&config.db)))?;
        let keys = KeyRing::load(&store)
            .await
            .context("loading signing keys")?;
        let controller = Controller::start(ControllerConfig {
            listen: config.sip_listen,
            issuer: keys.issuer(),
            user_agent: format!("splitdial-matcher/{}", env!("CARGO_PKG_VERSION")),
        })
        .await
        .with_context(|| format!("starting the call controller on {}", config.sip_listen))?;
        let sip = controller.local_addr();
        let prober = controller.prober();
        let calls =
            CallService::start(store.clone(), controller, &config.instance, config.timeouts)
                .await
                .context("recovering call records")?;
        let presence = Arc::new(Presence::default());
        let stop = CancellationToken::new();
        keys.keep_current(store.clone(), stop.clone());
        tokio::spawn(run_prober(
            store.clone(),
            prober,
            Arc::clone(&presence),
            config.api.heartbeat_interval,
            stop.clone(),
        ));
        let state = AppState {
            presence,
            store: store.clone(),
            keys,
            calls: calls.clone(),
            metrics: Arc::new(Metrics::default()),
            limiter: Arc::new(RateLimiter::new(config.api.rate_per_second)),
            auth_failures: Arc::new(RateLimiter::new(config.api.rate_per_second)),
            streams: Arc::new(StreamSlots::new(config.api.max_streams_per_user)),
            stopping: stop.clone(),
            settings: config.api,
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding the HTTP API to {}", config.listen))?;
        let http = listener.local_addr()?;
        let app = api::router(state);
        let stopped = stop.clone();
        let scheme = config.transport.scheme();
        let server = tokio::spawn(async move {
            if let Err(error) = http_listener::serve(listener, app, config.transport, stopped).await
            {
                tracing::error!(error = format!("{error:#}"), "HTTP server failed");
            }
        });
        Ok(Self {
            http,
            scheme,
            sip,
            calls,
            store,
            stop,
            server,
        })
    }

    /// The HTTP API's address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// The API's base URL: `https://IP:PORT`, or `http://` on the loopback exception.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.http)
    }

    /// The controller's SIP address.
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip
    }

    /// Stops: the controller BYEs every live control leg (their calls end as
    /// `ended`/`hung_up`), the API stops, the database closes.
    pub async fn shutdown(self) {
        self.calls.shutdown().await;
        // Ends the event streams too (their clients reconnect, to another
        // instance if there is one), so the server is free to stop.
        self.stop.cancel();
        // A connection in the middle of a slow request could still hold it; do not wait for
        // ever. (Aborting the server task would not end that connection: axum runs each
        // connection in a task of its own.)
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), self.server).await;
        self.store.close().await;
    }
}

/// A database URL fit for logs (no password).
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}
