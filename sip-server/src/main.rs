//! `sip-server`: the embedded SIP registrar and stateful proxy.

use anyhow::Context as _;
use clap::Parser;
use sip_server::ServerConfig;
use sip_server::users::UserDirectory;
use splitdial_sip::shutdown::shutdown_signal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

/// splitdial's embedded SIP registrar and stateful proxy for one domain.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// UDP and TCP listen address.
    #[arg(long, default_value = "127.0.0.1:5060")]
    listen: SocketAddr,
    /// The SIP domain served (also the digest realm).
    #[arg(long)]
    domain: String,
    /// Users file (TOML); without it registration is open to anyone.
    #[arg(long)]
    users: Option<PathBuf>,
    /// A peer (the matcher's call controller) allowed to reach any user without
    /// authentication, over TCP only. Repeatable.
    #[arg(long = "trusted")]
    trusted: Vec<IpAddr>,
    /// Shortest registration granted, in seconds (shorter asks get 423).
    #[arg(long, default_value_t = 60)]
    min_expires: u32,
    /// Longest registration granted, in seconds.
    #[arg(long, default_value_t = 3600)]
    max_expires: u32,
}

fn main() -> std::process::ExitCode {
    splitdial_tls::install_provider();
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,rsipstack=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sip-server: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    if args.min_expires > args.max_expires {
        anyhow::bail!("--min-expires must not exceed --max-expires");
    }
    let users = args
        .users
        .as_deref()
        .map(|path| UserDirectory::load(path, &args.domain))
        .transpose()?;
    let config = ServerConfig {
        listen: args.listen,
        domain: args.domain.clone(),
        users,
        trusted: args.trusted,
        min_expires: args.min_expires,
        max_expires: args.max_expires,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let server = sip_server::start(config)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        println!(
            "sip-server ready udp+tcp {} domain {}",
            server.local_addr(),
            args.domain
        );
        shutdown_signal()
            .await
            .context("installing the SIGINT and SIGTERM handlers")?;
        tracing::info!("shutting down");
        server.shutdown().await;
        Ok(())
    })
}
