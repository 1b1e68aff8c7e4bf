//! The API's accept loop: HTTPS by default, plain HTTP only as the loopback exception. Each
//! connection runs in a task of its own, its TLS handshake included and bounded in time, so a
//! peer that opens a connection and never finishes its handshake holds up no one.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use splitdial_tls::server::ReloadableCertificate;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long a client has to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client has to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once; further ones are closed at accept.
const MAX_CONNECTIONS: usize = 4096;
/// How long connections in flight may take to finish once the server stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How the API is served.
#[derive(Debug, Clone)]
pub enum Transport {
    /// HTTPS with this certificate pair (reloaded in place on SIGHUP).
    Tls(Arc<ReloadableCertificate>),
    /// Plain HTTP: development only, on a loopback address (checked where the flags are read).
    InsecureHttp,
}

impl Transport {
    /// `https` or `http`, for the ready line and URLs.
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Tls(_) => "https",
            Self::InsecureHttp => "http",
        }
    }
}

/// Serves `app` on `listener` until `stop` is cancelled; then lets the connections in flight
/// finish for a few seconds at most.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    transport: Transport,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let acceptor = match &transport {
        Transport::Tls(certificate) => Some(tokio_rustls::TlsAcceptor::from(
            certificate.server_config()?,
        )),
        Transport::InsecureHttp => None,
    };
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // A client that gave up, or descriptors short for a moment: the
                        // listener itself is fine.
                        tracing::debug!(%error, "accept failed; retrying");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    tracing::debug!(%peer, "too many connections; closing this one");
                    continue;
                };
                let app = app.clone();
                let stop = stop.clone();
                let acceptor = acceptor.clone();
                connections.spawn(async move {
                    let _permit = permit;
                    match acceptor {
                        None => run_connection(stream, peer, app, stop).await,
                        Some(acceptor) => {
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                Ok(Ok(tls)) => run_connection(tls, peer, app, stop).await,
                                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                            }
                        }
                    }
                });
            }
        }
    }
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
    Ok(())
}

/// Serves HTTP/1.1 on one connection (plain or TLS) until it ends or the server stops.
async fn run_connection<S>(stream: S, peer: SocketAddr, app: Router, stop: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            // The rate limiter and the logs know clients by address, as axum's ConnectInfo.
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut app = app.clone();
            async move { tower_service::Service::call(&mut app, request).await }
        });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    let connection = http.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        done = connection.as_mut() => {
            if let Err(error) = done {
                tracing::debug!(%peer, %error, "connection ended");
            }
            return;
        }
        () = stop.cancelled() => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}
