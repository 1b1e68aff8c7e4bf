//! The TUI's "My talkers" and `splitdial talkers` are one merge: fed the same
//! registry, LAN sightings, manual entries and challenge results — the TUI
//! through its actions, the subcommand through its rows — they list the same
//! talkers in the same order, with the same status, address and origin.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use discovery::{Media, TalkerAd, TalkerId, TalkerKind, TalkerState};
use splitdial_tui::app::{Action, App, Effect};
use splitdial_tui::commands::talkers::{TalkerRow, rows};
use splitdial_tui::config::{Config, ManualTalker};
use splitdial_tui::model::{RegisteredAccount, RegisteredTalker, TalkerSoftware};
use splitdial_tui::roster::{Verification, VerifyState};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

fn addr(last_octet: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 1, last_octet)), 8420)
}

fn talker(id: &str, online: bool, software: TalkerSoftware) -> RegisteredTalker {
    RegisteredTalker {
        id: id.to_owned(),
        name: format!("{id} device"),
        kind: TalkerKind::Tv,
        media: Media::Video,
        public_key: format!("key-of-{id}"),
        software,
        online,
        last_seen: Some(1),
        accounts: vec![RegisteredAccount {
            aor: format!("sip:{id}@home.example"),
            server: "home.example".to_owned(),
            registered: online,
        }],
    }
}

fn ad(id: &str, octets: &[u8]) -> TalkerAd {
    TalkerAd {
        id: TalkerId::new(id).unwrap(),
        instance: format!("{id} on the LAN"),
        kind: TalkerKind::Speaker,
        media: Media::Audio,
        servers: vec![],
        state: TalkerState::Busy,
        addresses: octets
            .iter()
            .map(|o| IpAddr::V4(Ipv4Addr::new(192, 168, 1, *o)))
            .collect(),
        port: 8420,
    }
}

/// A household where every rule of the merge has a talker: verified on the
/// LAN and by hand, unverified on each, not on this LAN, offline, SIP phones
/// reached and not, a neighbour's advertisement and a stray manual entry.
struct Household {
    registry: Vec<RegisteredTalker>,
    sightings: Vec<TalkerAd>,
    manual: Vec<ManualTalker>,
    /// What each challenge answered, at the address the dialer dials first.
    answers: Vec<(&'static str, SocketAddr, Result<(), String>)>,
}

fn household() -> Household {
    let agent = TalkerSoftware::Agent;
    let phone = TalkerSoftware::SipPhone;
    let manual = |id: &str, octet| ManualTalker {
        id: id.to_owned(),
        address: addr(octet),
    };
    Household {
        registry: vec![
            talker("tv", true, agent),
            talker("pc", true, agent),
            talker("kitchen", false, agent),
            talker("bedroom", true, agent),
            talker("study", true, agent),
            talker("old", false, agent),
            talker("desk", true, phone),
            talker("attic", false, phone),
        ],
        sightings: vec![
            ad("tv", &[20, 120]),
            ad("pc", &[21]),
            ad("nb-tv", &[30]),
            // A SIP phone has no local API: an advertisement with its id is not its.
            ad("desk", &[22]),
        ],
        manual: vec![
            manual("kitchen", 40),
            manual("bedroom", 41),
            // The LAN wins over a manual entry.
            manual("tv", 42),
            manual("fridge", 43),
        ],
        answers: vec![
            ("tv", addr(20), Ok(())),
            ("pc", addr(21), Err("the signature does not check".into())),
            ("kitchen", addr(40), Ok(())),
            ("bedroom", addr(41), Err("cannot connect".into())),
        ],
    }
}

/// The TUI's rows, in `splitdial talkers`' words, after the TUI challenged
/// what it wanted to and got the household's answers.
fn tui_rows(house: &Household) -> Vec<TalkerRow> {
    let config = Config {
        matcher_url: Some("http://127.0.0.1:8740".to_owned()),
        token: Some(splitdial_tui::config::Secret::new("t")),
        talkers: house.manual.clone(),
        ..Config::default()
    };
    let (mut app, _) = App::new(&config);
    // The challenge each talker has under way (a sighting after the registry
    // moves one from its manual address to its LAN address).
    let mut asked = BTreeMap::new();
    let mut actions = vec![Action::RegisteredTalkers(Ok(house.registry.clone()))];
    actions.extend(house.sightings.iter().cloned().map(Action::LanTalkerSeen));
    for action in actions {
        for effect in app.update(action) {
            if let Effect::Verify {
                talker_id, dialed, ..
            } = effect
            {
                asked.insert(talker_id, dialed);
            }
        }
    }
    let answered: BTreeMap<String, SocketAddr> = house
        .answers
        .iter()
        .map(|(id, at, _)| ((*id).to_owned(), *at))
        .collect();
    assert_eq!(
        asked, answered,
        "the TUI challenges what the household answers"
    );
    for (id, dialed, result) in &house.answers {
        app.update(Action::Verified {
            talker_id: (*id).to_owned(),
            dialed: *dialed,
            result: result.clone(),
        });
    }
    app.rows
        .iter()
        .map(|row| TalkerRow::of(row, &house.registry))
        .collect()
}

/// `splitdial talkers`' rows from the same household and answers.
fn cli_rows(house: &Household) -> Vec<TalkerRow> {
    let sightings: BTreeMap<String, TalkerAd> = house
        .sightings
        .iter()
        .map(|ad| (ad.instance.clone(), ad.clone()))
        .collect();
    let key = |id: &str| {
        house
            .registry
            .iter()
            .find(|t| t.id == id)
            .unwrap()
            .public_key
            .clone()
    };
    let verifications: BTreeMap<String, Verification> = house
        .answers
        .iter()
        .map(|(id, dialed, result)| {
            let state = match result {
                Ok(()) => VerifyState::Verified,
                Err(why) => VerifyState::Failed(why.clone()),
            };
            let verification = Verification {
                dialed: *dialed,
                public_key: key(id),
                state,
            };
            ((*id).to_owned(), verification)
        })
        .collect();
    rows(&house.registry, &sightings, &house.manual, &verifications)
}

#[test]
fn the_tui_and_splitdial_talkers_list_the_same_talkers_the_same_way() {
    let house = household();
    let cli = cli_rows(&house);
    assert_eq!(tui_rows(&house), cli);
    let listed: Vec<(&str, &str, Option<SocketAddr>, Option<&str>)> = cli
        .iter()
        .map(|r| (r.id.as_str(), r.status, r.address, r.seen))
        .collect();
    assert_eq!(
        listed,
        [
            ("tv", "verified", Some(addr(20)), Some("lan")),
            ("pc", "unverified", Some(addr(21)), Some("lan")),
            ("kitchen", "verified", Some(addr(40)), Some("manual")),
            ("bedroom", "unverified", Some(addr(41)), Some("manual")),
            ("study", "not_on_lan", None, None),
            ("old", "offline", None, None),
            ("desk", "sip_phone", None, None),
            ("attic", "offline", None, None),
            ("fridge", "not_mine", Some(addr(43)), Some("manual")),
            ("nb-tv", "not_mine", Some(addr(30)), Some("lan")),
        ]
    );
    let row = |id: &str| cli.iter().find(|r| r.id == id).unwrap();
    assert_eq!(
        row("pc").reason.as_deref(),
        Some("the signature does not check")
    );
    assert_eq!(row("tv").state.as_deref(), Some("busy"), "advertised state");
    assert_eq!((row("tv").online, row("nb-tv").online), (Some(true), None));
    assert_eq!(
        (row("nb-tv").name.as_str(), row("nb-tv").kind.as_str()),
        ("nb-tv on the LAN", "speaker")
    );
    assert_eq!(row("kitchen").accounts.len(), 1);
}
