//! `splitdial talkers [--json] [--wait-lan SECONDS]`: my talkers as the
//! registry holds them, merged with what the LAN shows during a short browse
//! and with the configured manual entries, each LAN or manual address verified
//! with the signed challenge against the registry's key.
//!
//! Each row's `status`: `verified` (it signed the challenge at `address`),
//! `unverified` (seen at an address that did not prove it), `not_on_lan`
//! (registry online, not seen here), `sip_phone` (a third-party SIP phone the
//! matcher reaches; never challenged: it has no key), `offline` (registry
//! heartbeats or probes stopped), `not_mine` (advertised on the LAN with an id
//! my registry does not hold).

use super::{matcher, print_json, print_table};
use crate::cli::Exit;
use crate::config::Config;
use crate::model::{RegisteredAccount, RegisteredTalker, TalkerSoftware};
use crate::talker_client::TalkerClient;
use discovery::{Browser, BrowserConfig, TalkerAd, TalkerEvent};
use futures_util::future::join_all;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// The longest LAN browse accepted.
const MAX_WAIT_LAN: f64 = 30.0;

/// One talker as `talkers` shows it (the `--json` array's element).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TalkerRow {
    /// Talker id.
    pub id: String,
    /// Human name (the registry's; the mDNS instance name for `not_mine`).
    pub name: String,
    /// Device kind.
    pub kind: String,
    /// `audio` or `video`.
    pub media: String,
    /// `verified`, `unverified`, `not_on_lan`, `sip_phone`, `offline` or
    /// `not_mine`.
    pub status: &'static str,
    /// The registry's heartbeat view (`null` for `not_mine`).
    pub online: Option<bool>,
    /// Where it was seen: `lan` or `manual` (`null` when not seen).
    pub seen: Option<&'static str>,
    /// The address verified, or the first one tried.
    pub address: Option<SocketAddr>,
    /// `idle` or `busy`, from its advertisement.
    pub state: Option<String>,
    /// Why it is not verified, when it was tried.
    pub reason: Option<String>,
    /// Its SIP accounts (registry).
    pub accounts: Vec<RegisteredAccount>,
}

/// Lists my talkers.
pub async fn run(config: &Config, json: bool, wait_lan: f64) -> Result<(), Exit> {
    let registry = matcher(config)?.talkers().await?;
    let lan = if config.discovery && wait_lan > 0.0 {
        browse(config, Duration::from_secs_f64(wait_lan.min(MAX_WAIT_LAN))).await
    } else {
        Vec::new()
    };
    let client = TalkerClient::new()?;
    let rows = merge(&client, &registry, &lan, config).await;
    if json {
        return print_json(&rows);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let servers: Vec<&str> = r.accounts.iter().map(|a| a.server.as_str()).collect();
            vec![
                r.id.clone(),
                r.name.clone(),
                r.kind.clone(),
                match r.status {
                    "verified" => "verified ✓".to_owned(),
                    other => other.replace('_', " "),
                },
                r.state.clone().unwrap_or_else(|| "-".into()),
                r.address.map_or_else(|| "-".into(), |a| a.to_string()),
                if servers.is_empty() {
                    "-".into()
                } else {
                    servers.join(",")
                },
            ]
        })
        .collect();
    print_table(
        &[
            "ID", "NAME", "KIND", "STATUS", "STATE", "ADDRESS", "SERVERS",
        ],
        &table,
    );
    for row in rows.iter().filter(|r| r.reason.is_some()) {
        eprintln!(
            "{}: not verified: {}",
            row.id,
            row.reason.as_deref().unwrap_or_default()
        );
    }
    Ok(())
}

/// Browses for `wait`, returning the talkers present at the end. A browser
/// that cannot start is a warning: the registry still answers.
async fn browse(config: &Config, wait: Duration) -> Vec<TalkerAd> {
    let interfaces = match config.interface_selection() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("splitdial: LAN discovery off: interfaces: {e}");
            return Vec::new();
        }
    };
    let mut browser = match Browser::start(BrowserConfig::new(interfaces)) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("splitdial: LAN discovery off: {e}");
            return Vec::new();
        }
    };
    let mut seen: BTreeMap<String, TalkerAd> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, browser.next_event()).await {
        match event {
            TalkerEvent::Added(ad) | TalkerEvent::Updated(ad) => {
                seen.insert(ad.instance.clone(), ad);
            }
            TalkerEvent::Removed(ad) => {
                seen.remove(&ad.instance);
            }
        }
    }
    if let Err(e) = browser.shutdown().await {
        tracing::warn!(error = %e, "stopping the mDNS browser");
    }
    seen.into_values().collect()
}

/// Tries each address in turn; the first that verifies wins.
async fn verify_any(
    client: &TalkerClient,
    id: &str,
    key: &str,
    addresses: &[SocketAddr],
) -> (Option<SocketAddr>, Result<(), String>) {
    let mut last = Err("no address".to_owned());
    for address in addresses {
        match client.verify(id, *address, key).await {
            Ok(()) => return (Some(*address), Ok(())),
            Err(e) => last = Err(e.to_string()),
        }
    }
    (addresses.first().copied(), last)
}

/// Merges the registry, the LAN and the manual entries into rows, verifying
/// every address concurrently.
pub async fn merge(
    client: &TalkerClient,
    registry: &[RegisteredTalker],
    lan: &[TalkerAd],
    config: &Config,
) -> Vec<TalkerRow> {
    let checks = registry.iter().map(|talker| async move {
        let ad = lan.iter().find(|ad| ad.id.as_str() == talker.id);
        let manual: Vec<SocketAddr> = config
            .talkers
            .iter()
            .filter(|m| m.id == talker.id)
            .map(|m| m.address)
            .collect();
        let mut row = TalkerRow {
            id: talker.id.clone(),
            name: talker.name.clone(),
            kind: talker.kind.clone(),
            media: talker.media.clone(),
            status: if talker.online {
                "not_on_lan"
            } else {
                "offline"
            },
            online: Some(talker.online),
            seen: None,
            address: None,
            state: ad.map(|ad| ad.state.as_str().to_owned()),
            reason: None,
            accounts: talker.accounts.clone(),
        };
        if talker.software == TalkerSoftware::SipPhone {
            // No key to challenge: the matcher's probes are all there is.
            row.status = if talker.online {
                "sip_phone"
            } else {
                "offline"
            };
            return row;
        }
        let (seen, addresses) = match ad {
            Some(ad) => ("lan", ad.socket_addrs()),
            None if !manual.is_empty() => ("manual", manual),
            None => return row,
        };
        row.seen = Some(seen);
        let (address, verified) =
            verify_any(client, &talker.id, &talker.public_key, &addresses).await;
        row.address = address;
        match verified {
            Ok(()) => row.status = "verified",
            Err(reason) => {
                row.status = "unverified";
                row.reason = Some(reason);
            }
        }
        row
    });
    let mut rows = join_all(checks).await;
    for ad in lan {
        if registry.iter().all(|t| t.id != ad.id.as_str()) {
            rows.push(TalkerRow {
                id: ad.id.as_str().to_owned(),
                name: ad.instance.clone(),
                kind: ad.kind.as_str().to_owned(),
                media: if ad.media.has_video() {
                    "video"
                } else {
                    "audio"
                }
                .to_owned(),
                status: "not_mine",
                online: None,
                seen: Some("lan"),
                address: ad.socket_addrs().first().copied(),
                state: Some(ad.state.as_str().to_owned()),
                reason: None,
                accounts: Vec::new(),
            });
        }
    }
    rows
}
