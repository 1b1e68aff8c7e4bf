//! `lan::watch` with a real mDNS advertiser. mDNS never runs in the machine's
//! main network namespace (docs/discovery.md): the mDNS test is ignored by a
//! plain `cargo test`, and fails unless its namespace has nothing but loopback.
//! `scripts/test` runs it there, or by hand:
//! `unshare --net -- sh -c 'ip link set lo up &&
//!  cargo test -p splitdial-tui --offline --test lan -- --include-ignored'`.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use discovery::{Advertiser, AdvertiserConfig, InterfaceSelection, Media, TalkerAd, TalkerId};
use discovery::{TalkerKind, TalkerState};
use splitdial_tui::app::Action;
use splitdial_tui::config::Config;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_off_starts_nothing() {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let off = Config {
        discovery: false,
        ..Config::default()
    };
    let watch = splitdial_tui::lan::watch(&off, tx).unwrap();
    assert!(!watch.is_running());
    watch.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: run scripts/test"]
async fn lan_talkers_become_actions() {
    testbed::require_loopback_only_namespace();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let config = Config {
        interfaces: "lo".into(),
        ..Config::default()
    };
    let watch = splitdial_tui::lan::watch(&config, tx).unwrap();
    let ad = TalkerAd {
        id: TalkerId::new("lan-tv").unwrap(),
        instance: "Lan TV".into(),
        kind: TalkerKind::Tv,
        media: Media::Audio,
        servers: vec!["family.example".into()],
        state: TalkerState::Idle,
        addresses: vec!["127.0.0.1".parse().unwrap()],
        port: 8420,
    };
    let advertiser = Advertiser::start(
        ad,
        &AdvertiserConfig::new(InterfaceSelection::named(["lo"])),
    )
    .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(Action::LanTalkerSeen(ad)) = rx.recv().await {
                return ad;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(seen.id.as_str(), "lan-tv");
    assert_eq!(seen.port, 8420);
    advertiser.shutdown().await.unwrap();
    let gone = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(Action::LanTalkerGone(ad)) = rx.recv().await {
                return ad;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(gone.id.as_str(), "lan-tv");
    tokio::time::timeout(Duration::from_secs(10), watch.shutdown())
        .await
        .unwrap();
}
