//! `splitdial talkers [--json] [--wait-lan SECONDS]`: my talkers as the
//! registry holds them, merged with what the LAN shows during a short browse
//! and with the configured manual entries — by the TUI's own merge,
//! [`crate::roster::rows`] — each LAN or manual address challenged with the
//! registry's key until one verifies.
//!
//! Each row's `status`: `verified` (it signed the challenge at `address`),
//! `unverified` (seen at addresses none of which proved it), `not_on_lan`
//! (registry online, not seen here), `sip_phone` (a third-party SIP phone the
//! matcher reaches; never challenged: it has no key), `offline` (registry
//! heartbeats or probes stopped), `not_mine` (seen on the LAN or entered by
//! hand with an id my registry does not hold).

use super::{matcher, print_json, print_table};
use crate::cli::Exit;
use crate::config::{Config, ManualTalker};
use crate::model::{RegisteredAccount, RegisteredTalker, TalkerSoftware};
use crate::roster::{self, Presence, RosterRow, RouteSource, Sources, Verification, VerifyState};
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
    /// Human name (the registry's; the mDNS instance name, or the id of a
    /// manual entry, for `not_mine`).
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

impl TalkerRow {
    /// The row of one merged talker; `registry` gives its accounts.
    pub fn of(row: &RosterRow, registry: &[RegisteredTalker]) -> Self {
        Self {
            id: row.id.clone(),
            name: row.name.clone(),
            kind: row.kind.as_str().to_owned(),
            media: if row.video { "video" } else { "audio" }.to_owned(),
            status: status_word(&row.presence),
            online: row.online,
            seen: row.seen.map(roster::Seen::as_str),
            address: row.address,
            state: row.advertised.map(|s| s.as_str().to_owned()),
            reason: match &row.presence {
                Presence::Unverified(why) => Some(why.clone()),
                _ => None,
            },
            accounts: registry
                .iter()
                .find(|t| t.id == row.id)
                .map(|t| t.accounts.clone())
                .unwrap_or_default(),
        }
    }
}

/// The `status` word of a presence. (`verifying` and `checking` do not occur
/// here: every challenge has its answer, and the registry has answered.)
pub fn status_word(presence: &Presence) -> &'static str {
    match presence {
        Presence::Verified { .. } => "verified",
        Presence::Verifying => "verifying",
        Presence::Unverified(_) => "unverified",
        Presence::AwaitingRegistry => "checking",
        Presence::NotOnLan => "not_on_lan",
        Presence::SipPhone => "sip_phone",
        Presence::Offline => "offline",
        Presence::NotMine => "not_mine",
    }
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

/// Challenges the talker at each address in turn; the first that verifies
/// wins, else the verification fails at the first with the last reason.
async fn verify_any(
    client: &TalkerClient,
    talker: &RegisteredTalker,
    addresses: &[SocketAddr],
) -> Option<Verification> {
    let mut failed = "no address".to_owned();
    for address in addresses {
        match client
            .verify(&talker.id, *address, &talker.public_key)
            .await
        {
            Ok(()) => {
                return Some(Verification {
                    dialed: *address,
                    public_key: talker.public_key.clone(),
                    state: VerifyState::Verified,
                });
            }
            Err(e) => failed = e.to_string(),
        }
    }
    Some(Verification {
        dialed: *addresses.first()?,
        public_key: talker.public_key.clone(),
        state: VerifyState::Failed(failed),
    })
}

/// The rows of the registry, the sightings and the manual entries, given the
/// challenges' results: the TUI's talker list, in `--json`'s words.
pub fn rows(
    registry: &[RegisteredTalker],
    sightings: &BTreeMap<String, TalkerAd>,
    manual: &[ManualTalker],
    verifications: &BTreeMap<String, Verification>,
) -> Vec<TalkerRow> {
    let sources = Sources {
        registry: Some(registry),
        sightings,
        manual,
        verifications,
        statuses: &BTreeMap::new(),
        designated: &[],
    };
    roster::rows(&sources, RouteSource::NoContact)
        .iter()
        .map(|row| TalkerRow::of(row, registry))
        .collect()
}

/// Merges the registry, the LAN and the manual entries into rows, challenging
/// every agent of the registry at its addresses (the talkers concurrently).
pub async fn merge(
    client: &TalkerClient,
    registry: &[RegisteredTalker],
    lan: &[TalkerAd],
    config: &Config,
) -> Vec<TalkerRow> {
    let sightings: BTreeMap<String, TalkerAd> = lan
        .iter()
        .map(|ad| (ad.instance.clone(), ad.clone()))
        .collect();
    let unverified = BTreeMap::new();
    let sources = Sources {
        registry: Some(registry),
        sightings: &sightings,
        manual: &config.talkers,
        verifications: &unverified,
        statuses: &BTreeMap::new(),
        designated: &[],
    };
    // A SIP phone has no key to challenge: the matcher's probes are all there is.
    let checks = registry
        .iter()
        .filter(|talker| talker.software != TalkerSoftware::SipPhone)
        .filter_map(|talker| Some((talker, roster::addresses_of(&talker.id, &sources)?.1)))
        .map(|(talker, addresses)| async move {
            let verification = verify_any(client, talker, &addresses).await;
            verification.map(|v| (talker.id.clone(), v))
        });
    let verifications: BTreeMap<String, Verification> =
        join_all(checks).await.into_iter().flatten().collect();
    rows(registry, &sightings, &config.talkers, &verifications)
}
