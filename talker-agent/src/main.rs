//! `talker-agent`: the splitdial talker agent.

use anyhow::Context as _;
use clap::Parser;
use std::path::PathBuf;
use talker_agent::agent::Agent;
use talker_agent::config::Config;
use tracing_subscriber::EnvFilter;

/// The splitdial talker agent: registers this device's SIP accounts, answers
/// only its owner's control calls, dials on request and carries the media.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The configuration file (TOML; see docs/config.md).
    #[arg(long)]
    config: PathBuf,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,rsipstack=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("talker-agent: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(config, args.config) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("talker-agent: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn run(config: Config, path: PathBuf) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let agent = Agent::start(config, &path).await?;
        println!(
            "talker-agent ready id {} sip {} status {}",
            agent.id, agent.sip_addr, agent.status_addr
        );
        shutdown_signal().await?;
        tracing::info!("shutting down");
        agent.shutdown().await;
        Ok(())
    })
}

async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
