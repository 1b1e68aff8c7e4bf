//! Presence of plain SIP addresses: contacts and SIP-phone talkers run no
//! talker agent and send no heartbeats, so the matcher asks their server with
//! OPTIONS, now and then. Route ranking uses the answer for a contact (unknown
//! when stale); for a SIP-phone talker the answer is stored as its heartbeat
//! (account registered or not, talker seen now), so every reader of talkers
//! sees one notion of online.

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

/// Probes every address contact's AOR and every SIP-phone talker's account
/// through its server each `interval` until `stop`.
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
    let phone_accounts = store.sip_phone_accounts().await?;
    let mut addresses = store.address_contacts().await?;
    addresses.extend(phone_accounts.iter().cloned());
    let phones: std::collections::HashSet<String> =
        phone_accounts.into_iter().map(|(aor, _)| aor).collect();
    addresses.sort_unstable();
    addresses.dedup();
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
                if phones.contains(&aor)
                    && let Err(error) = store.record_sip_phone_probe(&aor, reachable).await
                {
                    tracing::warn!(aor, %error, "recording a SIP phone's probe failed");
                }
            }
            Err(error) => tracing::debug!(aor, %error, "presence probe failed"),
        }
    }
    Ok(())
}
