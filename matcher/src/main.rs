//! `matcher`: serves the registry, route ranking, call controller and HTTP
//! API, or runs one admin command against the registry.

use anyhow::Context;
use clap::Parser;
use matcher::admin::run_admin;
use matcher::api::ApiSettings;
use matcher::calls::CallTimeouts;
use matcher::cli::Cli;
use matcher::server::{MatcherConfig, RunningMatcher};
use splitdial_sip::shutdown::shutdown_signal;
use std::time::Duration;

#[tokio::main]
async fn main() {
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
    let matcher = RunningMatcher::start(MatcherConfig {
        db,
        listen: serve.listen,
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
    println!(
        "matcher ready http {} sip {}",
        matcher.http_addr(),
        matcher.sip_addr()
    );
    shutdown_signal()
        .await
        .context("installing the SIGINT and SIGTERM handlers")?;
    tracing::info!("shutting down: ending live calls");
    matcher.shutdown().await;
    Ok(())
}
