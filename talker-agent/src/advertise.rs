//! Announcing the talker over mDNS / DNS-SD with the `discovery` crate
//! (`docs/discovery.md`): its name, id, kind, media and SIP servers, the port
//! of its status API, and its state (idle or busy) kept current from the live
//! calls. [`Advertising::shutdown`] withdraws it with goodbye packets.

use crate::config::Config;
use discovery::ad::check_server;
use discovery::{
    AdError, Advertiser, AdvertiserConfig, DiscoveryError, InterfaceSelection, TalkerAd, TalkerId,
    TalkerState,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Why the talker could not be advertised.
#[derive(Debug, thiserror::Error)]
pub enum AdvertiseError {
    /// A field of the advertisement is not acceptable (name, id, port).
    #[error("mDNS advertisement: {0}")]
    Ad(#[from] AdError),
    /// The mDNS daemon could not start or refused the service.
    #[error("mDNS: {0}")]
    Discovery(#[from] DiscoveryError),
    /// [`Advertising::start`] was called outside a tokio runtime.
    #[error("mDNS advertising needs a tokio runtime")]
    NoRuntime,
}

/// The talker's mDNS advertisement while it runs; a no-op handle when
/// advertising is disabled in the configuration.
///
/// Call [`Advertising::shutdown`] before the process exits: only that sends
/// the goodbye packets that make browsers drop the talker at once.
pub struct Advertising {
    running: Option<Running>,
}

struct Running {
    fullname: String,
    stop: CancellationToken,
    task: JoinHandle<Advertiser>,
}

impl Advertising {
    /// Starts advertising the talker `talker_id` described by `config`, with
    /// its status API on `status_port`, on the interfaces
    /// `config.discovery.interfaces` (empty: all). The advertised state
    /// follows `busy` (true: busy). Must run inside a tokio runtime. Returns a
    /// handle that does nothing when `config.discovery.enabled` is false.
    pub fn start(
        config: &Config,
        talker_id: &str,
        status_port: u16,
        mut busy: watch::Receiver<bool>,
    ) -> Result<Self, AdvertiseError> {
        if !config.discovery.enabled {
            info!("mDNS advertising disabled in the configuration");
            return Ok(Self { running: None });
        }
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| AdvertiseError::NoRuntime)?;
        let ad = talker_ad(config, talker_id, status_port, *busy.borrow_and_update())?;
        let interfaces = if config.discovery.interfaces.is_empty() {
            InterfaceSelection::all()
        } else {
            InterfaceSelection::named(config.discovery.interfaces.iter().cloned())
        };
        let advertiser = Advertiser::start(ad, &AdvertiserConfig::new(interfaces))?;
        let fullname = advertiser.fullname().to_owned();
        let stop = CancellationToken::new();
        let task = runtime.spawn(follow_busy(advertiser, busy, stop.clone()));
        Ok(Self {
            running: Some(Running {
                fullname,
                stop,
                task,
            }),
        })
    }

    /// Whether the talker is being advertised (false when disabled).
    pub fn is_active(&self) -> bool {
        self.running.is_some()
    }

    /// The DNS-SD name announced, e.g. `Living room TV._splitdial._tcp.local.`.
    pub fn fullname(&self) -> Option<&str> {
        self.running.as_ref().map(|r| r.fullname.as_str())
    }

    /// Withdraws the advertisement (goodbye packets) and stops the mDNS
    /// daemon; returns within a few seconds even if the daemon does not answer.
    pub async fn shutdown(mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        running.stop.cancel();
        match running.task.await {
            Ok(advertiser) => match advertiser.shutdown().await {
                Ok(()) => info!(fullname = %running.fullname, "mDNS advertisement withdrawn"),
                Err(e) => {
                    warn!(fullname = %running.fullname, error = %e, "mDNS goodbye incomplete");
                }
            },
            Err(e) => warn!(error = %e, "mDNS state task failed; no goodbye sent"),
        }
    }
}

impl Drop for Advertising {
    fn drop(&mut self) {
        // Without shutdown(): end the state task; dropping its advertiser asks
        // the daemon to unregister and exit (best effort, no waiting).
        if let Some(running) = &self.running {
            running.stop.cancel();
        }
    }
}

/// Keeps the advertised state equal to `busy` until `stop`; hands the
/// advertiser back for its goodbye.
async fn follow_busy(
    mut advertiser: Advertiser,
    mut busy: watch::Receiver<bool>,
    stop: CancellationToken,
) -> Advertiser {
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            changed = busy.changed() => {
                if changed.is_err() {
                    // Nobody reports calls any more: keep the last state.
                    stop.cancelled().await;
                    break;
                }
                let state = if *busy.borrow_and_update() {
                    TalkerState::Busy
                } else {
                    TalkerState::Idle
                };
                if let Err(e) = advertiser.set_state(state) {
                    warn!(error = %e, %state, "mDNS state not updated");
                }
            }
        }
    }
    advertiser
}

/// The advertisement for `config`: instance = the talker's name, its kind and
/// media, the SIP server domains of its accounts (each once; a domain DNS-SD
/// cannot carry is left out with a log line), idle or busy. The address is
/// the one the status API listens on (`status.listen`); an unspecified one
/// (`0.0.0.0`, `::`) means every address of the selected interfaces.
pub fn talker_ad(
    config: &Config,
    talker_id: &str,
    status_port: u16,
    busy: bool,
) -> Result<TalkerAd, AdError> {
    let mut servers: Vec<String> = Vec::new();
    for account in &config.accounts {
        let domain = account.server.to_ascii_lowercase();
        if servers.contains(&domain) {
            continue;
        }
        match check_server(&domain) {
            Ok(()) => servers.push(domain),
            Err(e) => warn!(error = %e, "server left out of the mDNS advertisement"),
        }
    }
    let listen = config.status.listen.ip();
    let addresses = if listen.is_unspecified() {
        Vec::new()
    } else {
        if listen.is_loopback() {
            warn!(%listen, "the status API listens on loopback only: other devices cannot reach it (set status.listen)");
        }
        vec![listen]
    };
    let ad = TalkerAd {
        id: TalkerId::new(talker_id)?,
        instance: config.name.clone(),
        kind: config.kind,
        media: config.carried_media(),
        servers,
        state: if busy {
            TalkerState::Busy
        } else {
            TalkerState::Idle
        },
        addresses,
        port: status_port,
    };
    ad.validate()?;
    Ok(ad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use discovery::{Media, TalkerKind};
    use std::path::Path;

    const CONFIG: &str = r#"
name = "Living room TV"
kind = "tv"
media = ["audio", "video"]
state_dir = "/nonexistent"

[[accounts]]
server = "home.example"
proxy = "127.0.0.1:5060"
user = "alice"
password = "pw"

[[accounts]]
server = "PBX.example.com"
proxy = "127.0.0.1:5061"
user = "tv"
password = "pw"

[[accounts]]
server = "home.example"
proxy = "127.0.0.1:5060"
user = "bob"
password = "pw"

[[accounts]]
server = "bad_domain.example"
proxy = "127.0.0.1:5062"
user = "x"
password = "pw"
"#;

    fn config(extra: &str) -> Config {
        Config::parse(&format!("{CONFIG}\n{extra}"), Path::new("tv.toml")).unwrap()
    }

    #[test]
    fn the_ad_carries_kind_media_and_each_server_once() {
        let ad = talker_ad(&config(""), "tv-1", 8480, false).unwrap();
        assert_eq!(ad.id.as_str(), "tv-1");
        assert_eq!(ad.instance, "Living room TV");
        assert_eq!(ad.kind, TalkerKind::Tv);
        assert_eq!(ad.media, Media::Video);
        assert_eq!(ad.servers, ["home.example", "pbx.example.com"]);
        assert_eq!(ad.state, TalkerState::Idle);
        assert_eq!(ad.port, 8480);
        let busy = talker_ad(&config(""), "tv-1", 8480, true).unwrap();
        assert_eq!(busy.state, TalkerState::Busy);
        let audio = Config::parse(
            &CONFIG.replace("media = [\"audio\", \"video\"]", "media = [\"audio\"]"),
            Path::new("tv.toml"),
        )
        .unwrap();
        assert_eq!(
            talker_ad(&audio, "tv-1", 1, false).unwrap().media,
            Media::Audio
        );
    }

    #[test]
    fn the_ad_names_the_address_the_status_api_listens_on() {
        let ad = |status: &str| talker_ad(&config(status), "tv-1", 8480, false).unwrap();
        assert_eq!(
            ad("[status]\nlisten = \"10.0.0.5:8420\"\n").addresses,
            ["10.0.0.5".parse::<std::net::IpAddr>().unwrap()]
        );
        assert!(
            ad("[status]\nlisten = \"0.0.0.0:0\"\n")
                .addresses
                .is_empty()
        );
        assert!(
            ad("[status]\nlisten = \"[::]:8420\"\n")
                .addresses
                .is_empty()
        );
    }

    #[test]
    fn bad_ids_and_port_zero_are_refused() {
        assert!(talker_ad(&config(""), "tv 1", 8480, false).is_err());
        assert!(talker_ad(&config(""), "tv-1", 0, false).is_err());
    }

    #[tokio::test]
    async fn disabled_advertising_starts_nothing() {
        // No mDNS daemon may start here (this test runs in whatever namespace
        // the suite runs in): a disabled configuration must not touch the network.
        let config = config("[discovery]\nenabled = false\n");
        let (_tx, rx) = watch::channel(false);
        let advertising = Advertising::start(&config, "tv-1", 8480, rx).unwrap();
        assert!(!advertising.is_active());
        assert_eq!(advertising.fullname(), None);
        advertising.shutdown().await;
    }

    #[test]
    fn starting_outside_a_runtime_is_an_error_not_a_panic() {
        let mut config = config("");
        // An empty interface name is refused before any daemon starts, but the
        // runtime check comes first.
        config.discovery.enabled = true;
        config.discovery.interfaces = vec![String::new()];
        let (_tx, rx) = watch::channel(false);
        match Advertising::start(&config, "tv-1", 8480, rx) {
            Err(AdvertiseError::NoRuntime) => {}
            Err(other) => panic!("expected NoRuntime, got {other}"),
            Ok(_) => panic!("started without a runtime"),
        }
    }
}
