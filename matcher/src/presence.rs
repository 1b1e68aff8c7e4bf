//! Presence of plain SIP addresses: contacts that run no talker agent send no
//! heartbeats, so the matcher asks their server with OPTIONS, now and then, and
//! route ranking uses the answer (unknown when stale).

use crate::controller::{Prober, Reachability, SipTransport};
use crate::registry::{Server, Transport};
use crate::storage::Store;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Most addresses probed per round (bounds a round's cost).
const MAX_PER_ROUND: usize = 500;

/// What the last probes found, per address.
#[derive(Debug, Default)]
pub struct Presence {
    seen: RwLock<HashMap<String, (bool, i64)>>,
}

impl Presence {
    /// Whether `aor` was reachable at its last probe, if that was at most
    /// `max_age_s` before `now`.
    pub fn reachable(&self, aor: &str, now: i64, max_age_s: i64) -> Option<bool> {
        let seen = self.seen.read().ok()?;
        let (reachable, at) = seen.get(aor)?;
        (now.saturating_sub(*at) <= max_age_s).then_some(*reachable)
    }

    /// Records a probe result.
    pub fn record(&self, aor: &str, reachable: bool, at: i64) {
        if let Ok(mut seen) = self.seen.write() {
            seen.insert(aor.to_owned(), (reachable, at));
        }
    }
}

/// Probes every address contact's AOR through its server each `interval`
/// until `stop`.
pub async fn run_prober(
    store: Store,
    prober: Prober,
    presence: Arc<Presence>,
    interval: Duration,
    stop: CancellationToken,
) {
    loop {
        if let Err(error) = probe_round(&store, &prober, &presence, interval).await {
            tracing::warn!(%error, "presence probe round failed");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

async fn probe_round(
    store: &Store,
    prober: &Prober,
    presence: &Presence,
    interval: Duration,
) -> Result<(), crate::storage::StorageError> {
    let addresses = store.address_contacts().await?;
    let servers: HashMap<String, Server> = store
        .servers()
        .await?
        .into_iter()
        .map(|s| (s.domain.clone(), s))
        .collect();
    let timeout = interval.min(Duration::from_secs(5));
    for (aor, domain) in addresses.into_iter().take(MAX_PER_ROUND) {
        let Some(server) = servers.get(&domain) else {
            continue;
        };
        let Ok(proxy) = server.proxy.parse::<SocketAddr>() else {
            continue;
        };
        let transport = match server.transport {
            Transport::Tcp => SipTransport::Tcp,
            Transport::Udp => SipTransport::Udp,
        };
        let from = format!("sip:splitdial-matcher@{domain}");
        match prober.probe(proxy, transport, &from, &aor, timeout).await {
            Ok(Reachability::Unknown) => tracing::debug!(aor, "presence probe not allowed"),
            Ok(found) => {
                let reachable = found == Reachability::Reachable;
                tracing::debug!(aor, reachable, "presence probe");
                presence.record(&aor, reachable, crate::storage::now_secs());
            }
            Err(error) => tracing::debug!(aor, %error, "presence probe failed"),
        }
    }
    Ok(())
}
