//! `talker-agent`: the splitdial talker agent.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use talker_agent::agent::Agent;
use talker_agent::config::Config;
use talker_agent::enrollment::{self, EnrollmentError};
use tracing_subscriber::EnvFilter;

/// The splitdial talker agent: registers this device's SIP accounts, answers
/// only its owner's control calls, dials on request and carries the media.
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Args {
    /// The configuration file (TOML; see docs/config.md).
    #[arg(long, required = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Enrolls this talker with the matcher (`matcher_url`) once, using a
    /// one-time enrollment token; writes `state_dir/enrollment.json`.
    Enroll {
        /// The configuration file (TOML; see docs/config.md).
        #[arg(long)]
        config: PathBuf,
        /// The enrollment token (`matcher enroll-token USER`).
        #[arg(long, env = "SPLITDIAL_ENROLL_TOKEN", hide_env_values = true)]
        token: String,
    },
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
    let (path, token) = match (args.command, args.config) {
        (Some(Command::Enroll { config, token }), _) => (config, Some(token)),
        (None, Some(config)) => (config, None),
        (None, None) => {
            eprintln!("talker-agent: --config FILE is required");
            return std::process::ExitCode::from(2);
        }
    };
    let config = match Config::load(&path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("talker-agent: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(token) = token {
        return enroll(&config, &path, &token);
    }
    match run(config, path) {
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
        // The key its status API's certificate carries (public): what a test
        // or a household pins when it reads the status without a registry.
        println!(
            "talker-agent ready id {} sip {} status {} key {}",
            agent.id,
            agent.sip_addr,
            agent.status_addr,
            agent.identity.public_key_base64()
        );
        splitdial_sip::shutdown::shutdown_signal()
            .await
            .context("installing the SIGINT and SIGTERM handlers")?;
        tracing::info!("shutting down");
        agent.shutdown().await;
        Ok(())
    })
}

/// `talker-agent enroll`: exit 0 enrolled, 1 refused or unreachable, 2 the
/// configuration is unusable.
fn enroll(config: &Config, path: &std::path::Path, token: &str) -> std::process::ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the runtime: {e}"))
        .and_then(|runtime| {
            runtime
                .block_on(enrollment::enroll(config, path, token))
                .map_err(anyhow::Error::from)
        });
    match result {
        Ok(enrolled) => {
            println!(
                "enrolled talker {} with {} as {}",
                enrolled.talker_id, enrolled.matcher_url, enrolled.owner
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("talker-agent: enroll: {e}");
            let config_error = matches!(
                e.downcast_ref::<EnrollmentError>(),
                Some(EnrollmentError::Config(_))
            );
            std::process::ExitCode::from(if config_error { 2 } else { 1 })
        }
    }
}
