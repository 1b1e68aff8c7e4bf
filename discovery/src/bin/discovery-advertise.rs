//! Advertises one talker until SIGTERM or SIGINT, then withdraws it with goodbyes.
//!
//! Prints `ready <fullname>` once registered, `state <idle|busy>` after each
//! change (SIGUSR1 toggles idle and busy), and `stopped` after a clean shutdown.
//! Used by the discovery tests and benchmark inside simulated LAN namespaces.

use anyhow::Context;
use clap::Parser;
use discovery::{
    Advertiser, AdvertiserConfig, InterfaceSelection, Media, TalkerAd, TalkerId, TalkerKind,
    TalkerState,
};
use tokio::signal::unix::{SignalKind, signal};

#[path = "../../tools/netns_guard.rs"]
mod netns_guard;

/// Advertise one splitdial talker over mDNS.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Interfaces: `all`, or names separated by commas (e.g. `eth0`).
    #[arg(long)]
    interfaces: InterfaceSelection,
    /// Talker id.
    #[arg(long)]
    id: TalkerId,
    /// Instance (human) name.
    #[arg(long)]
    instance: String,
    /// Device kind: tv, pc, phone, tablet, speaker or other.
    #[arg(long, default_value = "other")]
    kind: TalkerKind,
    /// Media: `audio` or `audio,video`.
    #[arg(long, default_value = "audio", value_parser = discovery::ad::parse_media_word)]
    media: Media,
    /// SIP server domains, comma-separated.
    #[arg(long, value_delimiter = ',')]
    servers: Vec<String>,
    /// Initial state.
    #[arg(long, default_value = "idle")]
    state: TalkerState,
    /// Port of the talker's local API.
    #[arg(long, default_value_t = 8480)]
    port: u16,
    /// Host name (ending in `.local.`); derived from the id when absent.
    #[arg(long)]
    host_name: Option<String>,
    /// Run even in the machine's main network namespace.
    #[arg(long)]
    allow_host_netns: bool,
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
    let ad = TalkerAd {
        id: args.id,
        instance: args.instance,
        kind: args.kind,
        media: args.media,
        servers: args.servers,
        state: args.state,
        addresses: Vec::new(),
        port: args.port,
    };
    let mut config = AdvertiserConfig::new(args.interfaces);
    config.host_name = args.host_name;
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut usr1 = signal(SignalKind::user_defined1()).context("SIGUSR1 handler")?;
    let mut advertiser = Advertiser::start(ad, &config).context("cannot advertise")?;
    println!("ready {}", advertiser.fullname());
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = usr1.recv() => {
                let next = match advertiser.ad().state {
                    TalkerState::Idle => TalkerState::Busy,
                    TalkerState::Busy => TalkerState::Idle,
                };
                advertiser.set_state(next).context("cannot update state")?;
                println!("state {next}");
            }
        }
    }
    advertiser.shutdown().await.context("shutdown")?;
    println!("stopped");
    Ok(())
}
