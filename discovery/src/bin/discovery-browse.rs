//! Browses for talkers and prints one JSON line per event until SIGTERM or SIGINT.
//!
//! Each line is `{"at_us": <unix time in µs>, "event": "added"|"updated"|"removed",
//! "talker": {...}}`; the first line is `{"at_us": ..., "event": "started"}`.
//! SIGUSR1 verifies every known talker at once. Used by the discovery tests and
//! benchmark inside simulated LAN namespaces.

use anyhow::Context;
use clap::Parser;
use discovery::{Browser, BrowserConfig, InterfaceSelection};
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::signal::unix::{SignalKind, signal};

#[path = "../../tools/netns_guard.rs"]
mod netns_guard;

/// Browse for splitdial talkers over mDNS.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Interfaces: `all`, or names separated by commas (e.g. `eth0`).
    #[arg(long)]
    interfaces: InterfaceSelection,
    /// Milliseconds between verifications of every known talker; 0 turns them off.
    #[arg(long, default_value_t = 4000)]
    verify_interval_ms: u64,
    /// Milliseconds a talker has to answer a verification.
    #[arg(long, default_value_t = 2000)]
    verify_timeout_ms: u64,
    /// Run even in the machine's main network namespace.
    #[arg(long)]
    allow_host_netns: bool,
}

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

fn emit(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    splitdial_tls::install_provider();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    netns_guard::refuse_host_netns(args.allow_host_netns)?;
    let mut config = BrowserConfig::new(args.interfaces);
    config.verify_interval =
        (args.verify_interval_ms > 0).then(|| Duration::from_millis(args.verify_interval_ms));
    config.verify_timeout = Duration::from_millis(args.verify_timeout_ms);
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut usr1 = signal(SignalKind::user_defined1()).context("SIGUSR1 handler")?;
    let mut browser = Browser::start(config).context("cannot browse")?;
    emit(&serde_json::json!({"at_us": now_us(), "event": "started"}));
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = usr1.recv() => browser.verify_all().context("verify")?,
            event = browser.next_event() => {
                let Some(event) = event else { break };
                let mut line = serde_json::to_value(&event).context("event to JSON")?;
                if let Some(obj) = line.as_object_mut() {
                    obj.insert("at_us".into(), serde_json::json!(now_us()));
                }
                emit(&line);
            }
        }
    }
    browser.shutdown().await.context("shutdown")?;
    Ok(())
}
