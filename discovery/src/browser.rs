//! Browsing for talkers: a de-duplicated stream of `Added / Updated / Removed`
//! events, with verification so a talker that stopped answering goes away long
//! before its 120 s record TTL.
//!
//! mdns-sd resolves the same instance several times (for instance when an IPv6
//! address joins); the browser keeps the last advertisement per instance and
//! reports [`TalkerEvent::Updated`] only when something changed. Every
//! `verify_interval` it asks the daemon to re-confirm each known talker
//! (RFC 6762 §10.4); one that does not answer within `verify_timeout` is flushed
//! and reported [`TalkerEvent::Removed`]. After any removal the browser queries
//! the service type again, so a live talker removed by a lost packet comes back.

use crate::SERVICE_TYPE;
use crate::ad::{TalkerAd, check_instance, sort_addresses};
use crate::error::DiscoveryError;
use crate::interfaces::InterfaceSelection;
use crate::txt::{self, TxtEntry};
use mdns_sd::{ResolvedService, ServiceDaemon, ServiceEvent};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// Re-browse at most this often (each re-browse is one PTR query plus the
/// daemon's usual back-off schedule).
const REBROWSE_MIN_GAP: Duration = Duration::from_secs(5);
/// Delay between a removal and the re-browse it triggers.
const REBROWSE_DELAY: Duration = Duration::from_millis(300);

/// Settings for a [`Browser`].
#[derive(Debug, Clone)]
pub struct BrowserConfig {
    /// Interfaces to browse on (always chosen by the caller).
    pub interfaces: InterfaceSelection,
    /// DNS-SD service type; [`SERVICE_TYPE`] unless a test needs another.
    pub service_type: String,
    /// How often every known talker is re-confirmed; `None` only on demand
    /// ([`Browser::verify_all`], [`Browser::verify`]).
    pub verify_interval: Option<Duration>,
    /// How long a talker has to answer a verification before it is removed.
    /// mdns-sd queries at once and again after 1 s, so keep this at 2 s or more
    /// on lossy links.
    pub verify_timeout: Duration,
    /// Events buffered for a slow reader before the browser waits for it.
    pub event_capacity: usize,
    /// Most talkers tracked at once; further instances are ignored with a log line.
    pub max_talkers: usize,
    /// How long to gather further daemon events before reporting a change, so
    /// that one announcement (IPv4, then IPv6 addresses, ...) gives one event.
    pub settle: Duration,
}

impl BrowserConfig {
    /// Browses on `interfaces` with the defaults: verify every 4 s with a 2 s
    /// timeout (a crashed talker goes within about 4 to 7 s).
    pub fn new(interfaces: InterfaceSelection) -> Self {
        Self {
            interfaces,
            service_type: SERVICE_TYPE.to_owned(),
            verify_interval: Some(Duration::from_secs(4)),
            verify_timeout: Duration::from_secs(2),
            event_capacity: 256,
            max_talkers: 512,
            settle: Duration::from_millis(30),
        }
    }
}

/// A change in the set of talkers on the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", content = "talker", rename_all = "lowercase")]
pub enum TalkerEvent {
    /// A talker appeared.
    Added(TalkerAd),
    /// A known talker's advertisement changed (state, addresses, ...).
    Updated(TalkerAd),
    /// A talker left (goodbye, failed verification, or a record that no longer
    /// decodes); carries its last advertisement.
    Removed(TalkerAd),
}

impl TalkerEvent {
    /// The talker the event is about.
    pub fn talker(&self) -> &TalkerAd {
        match self {
            TalkerEvent::Added(t) | TalkerEvent::Updated(t) | TalkerEvent::Removed(t) => t,
        }
    }
}

enum Control {
    VerifyAll,
    Verify(String),
    Shutdown,
}

type TalkerMap = Arc<Mutex<BTreeMap<String, TalkerAd>>>;

/// Browses for talkers; read events with [`Browser::next_event`]. Keep reading:
/// when the event buffer is full the browser waits for the reader.
pub struct Browser {
    events: mpsc::Receiver<TalkerEvent>,
    control: mpsc::UnboundedSender<Control>,
    talkers: TalkerMap,
    task: Option<JoinHandle<()>>,
    daemon: ServiceDaemon,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("talkers", &self.talkers().len())
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts an mDNS daemon on the selected interfaces and browses. Must be
    /// called inside a tokio runtime.
    pub fn start(config: BrowserConfig) -> Result<Self, DiscoveryError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| DiscoveryError::NoRuntime)?;
        let daemon = config.interfaces.start_daemon()?;
        let receiver = match daemon.browse(&config.service_type) {
            Ok(r) => r,
            Err(e) => {
                let _ = daemon.shutdown();
                return Err(e.into());
            }
        };
        tracing::info!(
            service_type = %config.service_type,
            interfaces = %config.interfaces,
            "browsing for talkers"
        );
        let (events_tx, events) = mpsc::channel(config.event_capacity.max(1));
        let (control, control_rx) = mpsc::unbounded_channel();
        let talkers = TalkerMap::default();
        let state = BrowseTask {
            daemon: daemon.clone(),
            config,
            events: events_tx,
            talkers: talkers.clone(),
            known: HashMap::new(),
            last_bad_txt: HashMap::new(),
            last_rebrowse: Instant::now(),
            rebrowse_at: None,
        };
        let task = runtime.spawn(state.run(receiver, control_rx));
        Ok(Self {
            events,
            control,
            talkers,
            task: Some(task),
            daemon,
        })
    }

    /// The next change; `None` once the browser has stopped.
    pub async fn next_event(&mut self) -> Option<TalkerEvent> {
        self.events.recv().await
    }

    /// The talkers known right now, by DNS-SD full name.
    pub fn talkers(&self) -> Vec<TalkerAd> {
        self.talkers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Re-confirms every known talker now (e.g. when the user opens the picker).
    pub fn verify_all(&self) -> Result<(), DiscoveryError> {
        self.control
            .send(Control::VerifyAll)
            .map_err(|_| DiscoveryError::BrowserStopped)
    }

    /// Re-confirms one talker now, by instance name or full name (e.g. after a
    /// connection to it failed).
    pub fn verify(&self, instance: &str) -> Result<(), DiscoveryError> {
        self.control
            .send(Control::Verify(instance.to_owned()))
            .map_err(|_| DiscoveryError::BrowserStopped)
    }

    /// Stops browsing and shuts the daemon down.
    pub async fn shutdown(mut self) -> Result<(), DiscoveryError> {
        let _ = self.control.send(Control::Shutdown);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let stopped = self.daemon.shutdown()?;
        tokio::time::timeout(Duration::from_secs(2), stopped.recv_async())
            .await
            .map(|_| ())
            .map_err(|_| DiscoveryError::Timeout {
                what: "daemon shutdown",
                after: Duration::from_secs(2),
            })
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = self.daemon.shutdown();
        }
    }
}

struct Known {
    fullname: String,
    ad: TalkerAd,
}

struct BrowseTask {
    daemon: ServiceDaemon,
    config: BrowserConfig,
    events: mpsc::Sender<TalkerEvent>,
    talkers: TalkerMap,
    /// Keyed by the lowercased full name.
    known: HashMap<String, Known>,
    /// The last undecodable TXT per instance, so each bad record is logged once.
    last_bad_txt: HashMap<String, Vec<TxtEntry>>,
    last_rebrowse: Instant,
    rebrowse_at: Option<Instant>,
}

async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl BrowseTask {
    async fn run(
        mut self,
        mut receiver: mdns_sd::Receiver<ServiceEvent>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        let mut verify = self.config.verify_interval.map(|every| {
            let mut i = tokio::time::interval_at(Instant::now() + every, every);
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            i
        });
        loop {
            tokio::select! {
                event = receiver.recv_async() => match event {
                    Ok(event) => {
                        if !self.handle_batch(event, &receiver).await {
                            break;
                        }
                    }
                    Err(_) => {
                        // The subscription ended (daemon gone, or its channel overflowed).
                        tracing::warn!("mDNS browse subscription ended; browsing again");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        match self.daemon.browse(&self.config.service_type) {
                            Ok(r) => receiver = r,
                            Err(e) => {
                                tracing::error!(error = %e, "cannot browse again; browser stops");
                                break;
                            }
                        }
                    }
                },
                () = tick(&mut verify) => self.verify_all(),
                () = sleep_until(self.rebrowse_at) => {
                    self.rebrowse_at = None;
                    self.last_rebrowse = Instant::now();
                    match self.daemon.browse(&self.config.service_type) {
                        Ok(r) => receiver = r,
                        Err(e) => tracing::warn!(error = %e, "re-browse failed"),
                    }
                }
                ctl = control.recv() => match ctl {
                    Some(Control::VerifyAll) => self.verify_all(),
                    Some(Control::Verify(name)) => self.verify_one(&name),
                    Some(Control::Shutdown) | None => break,
                },
            }
        }
        let _ = self.daemon.stop_browse(&self.config.service_type);
    }

    /// Applies `first` and every event that follows within `settle`, then
    /// reports the net change per talker; `false` when the reader is gone.
    async fn handle_batch(
        &mut self,
        first: ServiceEvent,
        receiver: &mdns_sd::Receiver<ServiceEvent>,
    ) -> bool {
        let mut before: Vec<(String, Option<TalkerAd>)> = Vec::new();
        // A removal is final: report it at once; resolutions come in bursts.
        let settle = if matches!(first, ServiceEvent::ServiceRemoved(..)) {
            Duration::ZERO
        } else {
            self.config.settle
        };
        self.apply(first, &mut before);
        let deadline = Instant::now() + settle;
        while let Ok(Ok(event)) = tokio::time::timeout_at(deadline, receiver.recv_async()).await {
            self.apply(event, &mut before);
        }
        for (key, previous) in before {
            let current = self.known.get(&key).map(|k| k.ad.clone());
            let change = match (previous, current) {
                (None, Some(now)) => TalkerEvent::Added(now),
                (Some(was), Some(now)) if was != now => TalkerEvent::Updated(now),
                (Some(was), None) => TalkerEvent::Removed(was),
                _ => continue,
            };
            if self.events.send(change).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Applies one daemon event to the known talkers, noting in `before` the
    /// state of each talker it touches as it was before the batch.
    fn apply(&mut self, event: ServiceEvent, before: &mut Vec<(String, Option<TalkerAd>)>) {
        let (key, new) = match event {
            ServiceEvent::ServiceResolved(resolved) => {
                let key = resolved.fullname.to_ascii_lowercase();
                match self.decode(&key, &resolved) {
                    Some(ad) => (key, Some((resolved.fullname.clone(), ad))),
                    None => (key, None),
                }
            }
            ServiceEvent::ServiceRemoved(_, fullname) => (fullname.to_ascii_lowercase(), None),
            other => {
                tracing::trace!(event = ?other, "mDNS browse event");
                return;
            }
        };
        if new.is_none() && !self.known.contains_key(&key) {
            return;
        }
        if new.is_some()
            && !self.known.contains_key(&key)
            && self.known.len() >= self.config.max_talkers
        {
            tracing::warn!(%key, max = self.config.max_talkers, "too many talkers; ignoring this one");
            return;
        }
        if !before.iter().any(|(k, _)| *k == key) {
            before.push((key.clone(), self.known.get(&key).map(|k| k.ad.clone())));
        }
        let mut talkers = self.talkers.lock().unwrap_or_else(PoisonError::into_inner);
        match new {
            Some((fullname, ad)) => {
                talkers.insert(key.clone(), ad.clone());
                self.known.insert(key, Known { fullname, ad });
            }
            None => {
                talkers.remove(&key);
                if let Some(known) = self.known.remove(&key) {
                    tracing::info!(fullname = %known.fullname, "talker removed");
                }
                // A live talker dropped by a lost packet answers the next query.
                if self.rebrowse_at.is_none() {
                    let earliest = self.last_rebrowse + REBROWSE_MIN_GAP;
                    self.rebrowse_at = Some(earliest.max(Instant::now() + REBROWSE_DELAY));
                }
            }
        }
    }

    /// Decodes a resolved service, logging repairs, and a rejection once per record.
    fn decode(&mut self, key: &str, resolved: &ResolvedService) -> Option<TalkerAd> {
        match talker_from(resolved, &self.config.service_type) {
            Ok((ad, repairs)) => {
                self.last_bad_txt.remove(key);
                if !repairs.is_empty() && self.known.get(key).is_none_or(|k| k.ad != ad) {
                    for repair in &repairs {
                        tracing::debug!(fullname = %resolved.fullname, %repair, "TXT record repaired");
                    }
                }
                Some(ad)
            }
            Err(reason) => {
                let entries = txt::entries_from_properties(&resolved.txt_properties);
                if self.last_bad_txt.get(key) != Some(&entries) {
                    tracing::warn!(fullname = %resolved.fullname, %reason, "skipping talker record");
                    if self.last_bad_txt.len() < self.config.max_talkers {
                        self.last_bad_txt.insert(key.to_owned(), entries);
                    }
                }
                None
            }
        }
    }

    fn verify_all(&self) {
        for known in self.known.values() {
            self.send_verify(&known.fullname);
        }
    }

    fn verify_one(&self, name: &str) {
        let lower = name.to_ascii_lowercase();
        let found = self.known.get(&lower).or_else(|| {
            self.known
                .values()
                .find(|k| k.ad.instance.eq_ignore_ascii_case(name))
        });
        match found {
            Some(known) => self.send_verify(&known.fullname),
            None => tracing::debug!(name, "verify: no such talker"),
        }
    }

    fn send_verify(&self, fullname: &str) {
        let timeout = self.config.verify_timeout;
        for attempt in 0..3 {
            match self.daemon.verify(fullname.to_owned(), timeout) {
                Ok(()) => return,
                // The daemon's command queue (100) is full: let it drain.
                Err(mdns_sd::Error::Again) if attempt < 2 => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => {
                    tracing::warn!(fullname, error = %e, "verify not sent");
                    return;
                }
            }
        }
    }
}

/// The instance part of `fullname` (`<instance>.<service type>`).
pub fn instance_of<'a>(fullname: &'a str, service_type: &str) -> Option<&'a str> {
    let cut = fullname.len().checked_sub(service_type.len() + 1)?;
    let (instance, rest) = (fullname.get(..cut)?, fullname.get(cut..)?);
    let rest = rest.strip_prefix('.')?;
    rest.eq_ignore_ascii_case(service_type).then_some(instance)
}

/// Builds a talker from a resolved service, or says why it cannot.
fn talker_from(
    resolved: &ResolvedService,
    service_type: &str,
) -> Result<(TalkerAd, Vec<txt::Repair>), String> {
    let instance = instance_of(&resolved.fullname, service_type)
        .ok_or_else(|| format!("full name {:?} is not of {service_type}", resolved.fullname))?;
    check_instance(instance).map_err(|e| e.to_string())?;
    let decoded = txt::decode(&txt::entries_from_properties(&resolved.txt_properties))
        .map_err(|e| e.to_string())?;
    let mut addresses: Vec<_> = resolved
        .addresses
        .iter()
        .map(mdns_sd::ScopedIp::to_ip_addr)
        .collect();
    sort_addresses(&mut addresses);
    if resolved.port == 0 {
        return Err("SRV port 0".into());
    }
    let t = decoded.txt;
    Ok((
        TalkerAd {
            id: t.id,
            instance: instance.to_owned(),
            kind: t.kind,
            media: t.media,
            servers: t.servers,
            state: t.state,
            addresses,
            port: resolved.port,
        },
        decoded.repairs,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_come_from_full_names() {
        let ty = SERVICE_TYPE;
        assert_eq!(
            instance_of("Living room TV._splitdial._tcp.local.", ty),
            Some("Living room TV")
        );
        assert_eq!(
            instance_of("Télé.Salon._SPLITDIAL._tcp.local.", ty),
            Some("Télé.Salon")
        );
        assert_eq!(instance_of("._splitdial._tcp.local.", ty), Some(""));
        assert_eq!(instance_of("x._other._tcp.local.", ty), None);
        assert_eq!(instance_of("short", ty), None);
        assert_eq!(instance_of("é_splitdial._tcp.local.", ty), None);
    }

    #[test]
    fn events_serialize_as_tagged_json() {
        let ad = TalkerAd {
            id: crate::TalkerId::new("tv-1").unwrap(),
            instance: "TV".into(),
            kind: crate::TalkerKind::Tv,
            media: crate::Media::Audio,
            servers: vec![],
            state: crate::TalkerState::Busy,
            addresses: vec!["10.0.0.1".parse().unwrap()],
            port: 80,
        };
        let json = serde_json::to_value(TalkerEvent::Updated(ad)).unwrap();
        assert_eq!(json["event"], "updated");
        assert_eq!(json["talker"]["state"], "busy");
        assert_eq!(json["talker"]["media"], "audio");
        assert_eq!(json["talker"]["id"], "tv-1");
    }
}
