//! `matcher`: serves the registry, route ranking, call controller and HTTP
//! API, or runs one admin command against the registry.

use anyhow::Context;
use clap::Parser;
use matcher::admin::run_admin;
use matcher::api::ApiSettings;
use matcher::calls::CallTimeouts;
use matcher::cli::{Cli, Command, ServeTransport};
use matcher::http_listener::Transport;
use matcher::server::{MatcherConfig, RunningMatcher};
use splitdial_sip::shutdown::shutdown_signal;
use splitdial_tls::server::ReloadableCertificate;
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() {
    splitdial_tls::install_provider();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rsipstack=warn,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(error) = run(Cli::parse()).await {
        eprintln!("matcher: {error:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(Command::Pki(command)) = cli.command {
        return matcher::pki::run_pki(command, cli.json);
    }
    let db = cli.db.unwrap_or_else(matcher::storage::default_url);
    if let Some(command) = cli.command {
        let store = matcher::storage::Store::open(&db)
            .await
            .context("opening the database")?;
        let result = run_admin(&store, command, cli.json).await;
        store.close().await;
        return result;
    }
    let serve = cli.serve;
    let transport = match serve.transport().map_err(anyhow::Error::msg)? {
        ServeTransport::Tls { certificate, key } => {
            let pair = Arc::new(ReloadableCertificate::load(&certificate, &key)?);
            tokio::spawn(reload_on_sighup(Arc::clone(&pair)));
            Transport::Tls(pair)
        }
        ServeTransport::InsecureHttp => {
            tracing::warn!(
                listen = %serve.listen,
                "PLAINTEXT HTTP (--insecure-http): tokens and credentials cross unencrypted; \
                 development on this machine only"
            );
            Transport::InsecureHttp
        }
    };
    let matcher = RunningMatcher::start(MatcherConfig {
        db,
        listen: serve.listen,
        transport,
        sip_listen: serve.sip_listen,
        instance: serve.instance,
        api: ApiSettings {
            heartbeat_interval: Duration::from_secs(serve.heartbeat_interval),
            max_heartbeat_age: Duration::from_secs(serve.heartbeat_interval * 5 / 2),
            rate_per_second: serve.rate,
            ..ApiSettings::default()
        },
        timeouts: CallTimeouts {
            talker_answer: Duration::from_secs(serve.talker_timeout),
            callee_answer: Duration::from_secs(serve.callee_timeout),
        },
    })
    .await?;
    // `http ADDR` names the API's address whatever its scheme (what scripts parse); `url` says
    // how to reach it.
    println!(
        "matcher ready http {} sip {} url {}",
        matcher.http_addr(),
        matcher.sip_addr(),
        matcher.base_url()
    );
    shutdown_signal()
        .await
        .context("installing the SIGINT and SIGTERM handlers")?;
    tracing::info!("shutting down: ending live calls");
    matcher.shutdown().await;
    Ok(())
}

/// Rereads the certificate pair on every SIGHUP; a bad new pair is one log line and the old one
/// keeps serving.
async fn reload_on_sighup(pair: Arc<ReloadableCertificate>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(error) => {
            tracing::warn!(%error, "no SIGHUP handler: the certificate is not reloadable");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        match pair.reload() {
            Ok(()) => tracing::info!(
                certificate = %pair.certificate_file().display(),
                "SIGHUP: certificate reloaded; new connections get it"
            ),
            Err(error) => tracing::error!(
                %error,
                "SIGHUP: new certificate refused; the old one keeps serving"
            ),
        }
    }
}
