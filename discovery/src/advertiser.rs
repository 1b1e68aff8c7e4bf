//! Announcing one talker on the selected interfaces, updating it live, and
//! withdrawing it with goodbye packets.
//!
//! **Call [`Advertiser::shutdown`] (or [`Advertiser::shutdown_blocking`]) before the
//! process exits**, e.g. on SIGINT and SIGTERM: mdns-sd sends no goodbye packets
//! when its daemon is dropped or the process ends, so browsers would keep showing
//! the talker until they verify it (or for the 120 s record TTL). Dropping an
//! `Advertiser` without shutting it down asks the daemon to exit but cannot wait
//! for the goodbyes to leave.

use crate::SERVICE_TYPE;
use crate::ad::{TalkerAd, TalkerState};
use crate::error::DiscoveryError;
use crate::interfaces::InterfaceSelection;
use crate::txt::{self, TalkerTxt};
use mdns_sd::{ServiceDaemon, ServiceInfo, TxtProperty};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Earliest update after the first registration: mdns-sd probes for 750 ms, then
/// announces, and repeats the announcement 1.10 to 1.15 s later.
const FIRST_UPDATE_GAP: Duration = Duration::from_millis(2000);
/// Least time between two registrations. A browser flushes a cached record on
/// a cache-flush announcement only when it got that record over a second ago
/// (RFC 6762 §10.2), and mdns-sd drops a record multicast within the last second
/// (§6) with no repeat scheduled. Spacing registrations by 1.2 s, each with a
/// new `rev` (see [`txt::encode`]), makes every update reach browsers as a new
/// record that replaces the one before.
const UPDATE_GAP: Duration = Duration::from_millis(1200);
/// How long shutdown waits for each daemon confirmation.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);
/// mdns-sd repeats the goodbye 120 ms after the first one; wait for it to leave.
const GOODBYE_REPEAT: Duration = Duration::from_millis(200);

/// Settings for an [`Advertiser`].
#[derive(Debug, Clone)]
pub struct AdvertiserConfig {
    /// Interfaces to announce on (always chosen by the caller).
    pub interfaces: InterfaceSelection,
    /// Host name for the SRV and address records, ending in `.local.`; `None`
    /// derives `splitdial-<talker id>.local.` from the talker id.
    pub host_name: Option<String>,
    /// DNS-SD service type; [`SERVICE_TYPE`] unless a test needs another.
    pub service_type: String,
}

impl AdvertiserConfig {
    /// Announces on `interfaces` with the default host name and service type.
    pub fn new(interfaces: InterfaceSelection) -> Self {
        Self {
            interfaces,
            host_name: None,
            service_type: SERVICE_TYPE.to_owned(),
        }
    }
}

/// The host name derived from a talker id: `splitdial-<id>.local.`, lowercase,
/// `.` and `_` turned into `-`, cut to one DNS label.
pub fn default_host_name(ad: &TalkerAd) -> String {
    let mut label: String = format!("splitdial-{}", ad.id)
        .chars()
        .map(|c| match c {
            '.' | '_' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    label.truncate(63);
    let label = label.trim_end_matches('-');
    format!("{label}.local.")
}

/// One talker announced over mDNS. See the module docs about shutting down.
///
/// Updates are applied by a small worker thread that spaces registrations (see
/// [`Advertiser::update`]); quick flaps are coalesced into the latest state.
pub struct Advertiser {
    daemon: ServiceDaemon,
    ad: TalkerAd,
    /// How many updates were announced (written as `rev`, 0 at start).
    revision: u32,
    fullname: String,
    host_name: String,
    service_type: String,
    updates: Arc<Updates>,
    worker: Option<std::thread::JoinHandle<()>>,
    shut_down: bool,
}

/// The advertisement the worker should make current, and the stop flag.
struct Updates {
    pending: Mutex<Pending>,
    wake: Condvar,
}

struct Pending {
    info: Option<ServiceInfo>,
    stop: bool,
}

fn lock(updates: &Updates) -> std::sync::MutexGuard<'_, Pending> {
    updates
        .pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Registers pending updates, never sooner than the gaps above allow.
fn apply_updates(daemon: &ServiceDaemon, updates: &Updates, registered_at: Instant) {
    let mut next_allowed = registered_at + FIRST_UPDATE_GAP;
    let mut pending = lock(updates);
    loop {
        if pending.stop {
            return;
        }
        if pending.info.is_none() {
            pending = updates
                .wake
                .wait(pending)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            continue;
        }
        let now = Instant::now();
        if now < next_allowed {
            pending = updates
                .wake
                .wait_timeout(pending, next_allowed - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
            continue;
        }
        if let Some(info) = pending.info.take() {
            let fullname = info.get_fullname().to_owned();
            match daemon.register(info) {
                Ok(()) => tracing::debug!(%fullname, "update registered"),
                Err(e) => tracing::warn!(%fullname, error = %e, "update not registered"),
            }
            next_allowed = Instant::now() + UPDATE_GAP;
        }
    }
}

impl std::fmt::Debug for Advertiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Advertiser")
            .field("fullname", &self.fullname)
            .field("state", &self.ad.state)
            .finish_non_exhaustive()
    }
}

impl Advertiser {
    /// Starts an mDNS daemon on the selected interfaces and announces `ad`
    /// (probing the name first, as RFC 6762 §8.1 asks). When `ad.addresses` is
    /// empty, every address of the selected interfaces is announced and kept up
    /// to date.
    pub fn start(ad: TalkerAd, config: &AdvertiserConfig) -> Result<Self, DiscoveryError> {
        ad.validate()?;
        let host_name = config
            .host_name
            .clone()
            .unwrap_or_else(|| default_host_name(&ad));
        // Build the record before starting anything, so bad input fails cleanly.
        let info = service_info(&ad, 0, &host_name, &config.service_type, true)?;
        let fullname = info.get_fullname().to_owned();
        let daemon = config.interfaces.start_daemon()?;
        if let Err(e) = daemon.register(info) {
            let _ = daemon.shutdown();
            return Err(e.into());
        }
        tracing::info!(
            %fullname,
            talker = %ad.id,
            interfaces = %config.interfaces,
            "advertising talker"
        );
        let updates = Arc::new(Updates {
            pending: Mutex::new(Pending {
                info: None,
                stop: false,
            }),
            wake: Condvar::new(),
        });
        let registered_at = Instant::now();
        let worker = {
            let daemon = daemon.clone();
            let updates = updates.clone();
            std::thread::Builder::new()
                .name("mdns-advertiser-updates".into())
                .spawn(move || apply_updates(&daemon, &updates, registered_at))
        };
        let worker = match worker {
            Ok(w) => w,
            Err(e) => {
                let _ = daemon.shutdown();
                return Err(DiscoveryError::Thread(e));
            }
        };
        Ok(Self {
            daemon,
            ad,
            revision: 0,
            fullname,
            host_name,
            service_type: config.service_type.clone(),
            updates,
            worker: Some(worker),
            shut_down: false,
        })
    }

    /// What is currently advertised.
    pub fn ad(&self) -> &TalkerAd {
        &self.ad
    }

    /// The DNS-SD full name, e.g. `Living room TV._splitdial._tcp.local.`.
    pub fn fullname(&self) -> &str {
        &self.fullname
    }

    /// Changes the advertised state (idle or busy).
    pub fn set_state(&mut self, state: TalkerState) -> Result<(), DiscoveryError> {
        let mut ad = self.ad.clone();
        ad.state = state;
        self.update(ad)
    }

    /// Replaces the advertised TXT fields and port live: the same service is
    /// registered again with the new record and announced. The name was probed
    /// at start, so updates skip re-probing. Registrations are spaced (2 s after
    /// the start, then 1.2 s apart) so mdns-sd's per-record rate limit never
    /// swallows one; changes in between are coalesced and the latest one is
    /// announced. Bad input fails here, synchronously. The instance name cannot
    /// change (shut down and start a new advertiser).
    pub fn update(&mut self, mut ad: TalkerAd) -> Result<(), DiscoveryError> {
        ad.validate()?;
        ad.instance.clone_from(&self.ad.instance);
        if ad == self.ad {
            return Ok(());
        }
        let revision = self.revision.wrapping_add(1).max(1);
        let info = service_info(&ad, revision, &self.host_name, &self.service_type, false)?;
        lock(&self.updates).info = Some(info);
        self.updates.wake.notify_all();
        tracing::info!(fullname = %self.fullname, state = %ad.state, revision, "advertisement updated");
        self.ad = ad;
        self.revision = revision;
        Ok(())
    }

    /// Stops the update worker (pending updates are dropped: we are leaving).
    fn stop_worker(&mut self) {
        lock(&self.updates).stop = true;
        self.updates.wake.notify_all();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }

    /// Withdraws the talker (goodbye packets, sent twice) and stops the daemon,
    /// waiting for both to be confirmed.
    pub async fn shutdown(mut self) -> Result<(), DiscoveryError> {
        self.shut_down = true;
        self.stop_worker();
        let unregistered = self.daemon.unregister(&self.fullname)?;
        let status = tokio::time::timeout(CONFIRM_TIMEOUT, unregistered.recv_async()).await;
        if !matches!(status, Ok(Ok(_))) {
            tracing::warn!(fullname = %self.fullname, "unregister not confirmed");
        }
        tokio::time::sleep(GOODBYE_REPEAT).await;
        let stopped = self.daemon.shutdown()?;
        match tokio::time::timeout(CONFIRM_TIMEOUT, stopped.recv_async()).await {
            Ok(_) => Ok(()),
            Err(_) => Err(DiscoveryError::Timeout {
                what: "daemon shutdown",
                after: CONFIRM_TIMEOUT,
            }),
        }
    }

    /// Like [`Advertiser::shutdown`], blocking the calling thread (for code
    /// without an async runtime).
    pub fn shutdown_blocking(mut self) -> Result<(), DiscoveryError> {
        self.shut_down = true;
        self.stop_worker();
        let unregistered = self.daemon.unregister(&self.fullname)?;
        if unregistered.recv_timeout(CONFIRM_TIMEOUT).is_err() {
            tracing::warn!(fullname = %self.fullname, "unregister not confirmed");
        }
        std::thread::sleep(GOODBYE_REPEAT);
        let stopped = self.daemon.shutdown()?;
        stopped
            .recv_timeout(CONFIRM_TIMEOUT)
            .map(|_| ())
            .map_err(|_| DiscoveryError::Timeout {
                what: "daemon shutdown",
                after: CONFIRM_TIMEOUT,
            })
    }
}

impl Drop for Advertiser {
    fn drop(&mut self) {
        self.stop_worker();
        if !self.shut_down {
            tracing::warn!(
                fullname = %self.fullname,
                "advertiser dropped without shutdown(): goodbyes may not be sent"
            );
            let _ = self.daemon.unregister(&self.fullname);
            let _ = self.daemon.shutdown();
        }
    }
}

/// Builds the mdns-sd service for `ad` with the strict TXT record.
fn service_info(
    ad: &TalkerAd,
    revision: u32,
    host_name: &str,
    service_type: &str,
    requires_probe: bool,
) -> Result<ServiceInfo, DiscoveryError> {
    let entries = txt::encode(&TalkerTxt::from(ad), revision)?;
    let props: Vec<TxtProperty> = entries
        .iter()
        .map(|e| TxtProperty::from((e.key.as_str(), e.value.as_deref().unwrap_or_default())))
        .collect();
    let mut info = if ad.addresses.is_empty() {
        ServiceInfo::new(service_type, &ad.instance, host_name, (), ad.port, props)?
            .enable_addr_auto()
    } else {
        ServiceInfo::new(
            service_type,
            &ad.instance,
            host_name,
            &ad.addresses[..],
            ad.port,
            props,
        )?
    };
    info.set_requires_probe(requires_probe);
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ad::{Media, TalkerId, TalkerKind};

    fn ad() -> TalkerAd {
        TalkerAd {
            id: TalkerId::new("Tv_1.home").unwrap(),
            instance: "Living room TV".into(),
            kind: TalkerKind::Tv,
            media: Media::Video,
            servers: vec!["pbx.example.com".into()],
            state: TalkerState::Idle,
            addresses: vec![],
            port: 8080,
        }
    }

    #[test]
    fn host_name_is_one_lowercase_label() {
        assert_eq!(default_host_name(&ad()), "splitdial-tv-1-home.local.");
        let mut long = ad();
        long.id = TalkerId::new("x".repeat(64)).unwrap();
        let name = default_host_name(&long);
        assert!(name.trim_end_matches(".local.").len() <= 63);
    }

    #[test]
    fn service_info_carries_the_strict_txt() {
        let info = service_info(&ad(), 0, "h.local.", SERVICE_TYPE, true).unwrap();
        assert_eq!(info.get_fullname(), "Living room TV._splitdial._tcp.local.");
        let keys: Vec<&str> = info.get_properties().iter().map(|p| p.key()).collect();
        assert_eq!(keys, ["txtvers", "id", "kind", "media", "state", "servers"]);
        assert_eq!(info.get_property_val_str("state"), Some("idle"));
    }
}
