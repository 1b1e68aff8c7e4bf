//! The talker list: the matcher's registry (the authority on which talkers
//! are mine and with which key), what mDNS sees on the LAN, the
//! signed-challenge results, and the manual entries of the config, merged
//! into one row per talker — the one merge behind the TUI's "My talkers" and
//! `splitdial talkers` — with, for the selected contact, the mark of the
//! server each talker shares with them or the reason it cannot reach them
//! ([`mark`]).
//!
//! The rule, in [`rows`]:
//! - rows: my registry's talkers in its order, then the talkers seen (on the
//!   LAN or entered by hand) whose id it does not hold, by id;
//! - a talker's addresses ([`addresses_of`]): every address its LAN
//!   advertisements carry (IPv4 first) when mDNS sees it at one, else its
//!   manual entries in config order;
//! - a SIP phone of my registry is never challenged (it has no key): a SIP
//!   phone while the matcher reaches it, else offline;
//! - an agent of my registry with addresses is verified, still being
//!   verified, or unverified by the challenge made at one of them with the key
//!   my registry holds now (none yet: being verified); without addresses it
//!   is not on this LAN while its heartbeats are fresh, else offline;
//! - a talker my registry does not hold is not mine (checking, before the
//!   registry answered).
//!
//! Pure functions of plain data, so every rule is a unit test.

pub mod mark;

pub use mark::{RouteMark, RouteSource, unreachable_reason};

use crate::config::ManualTalker;
use crate::model::{
    Media, RegisteredTalker, TalkerCallKind, TalkerCallState, TalkerKind, TalkerSoftware,
    TalkerStatus,
};
use discovery::{TalkerAd, TalkerState};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Where the dialer stands with one talker's signed challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyState {
    /// Asked; no answer yet.
    Pending,
    /// The talker signed with the registry's key at this address.
    Verified,
    /// The answer did not check (or nothing answered): why.
    Failed(String),
}

/// The challenge of one talker at one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The address the dialer dialed (and the talker signed).
    pub dialed: SocketAddr,
    /// The registry key it was checked with (a new key means a new check).
    pub public_key: String,
    /// How it went.
    pub state: VerifyState,
}

/// How the dialer knows a talker is there, and whether it may use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// Mine, reached at its address and proven by its signature.
    Verified {
        /// Reached through a manual config entry rather than mDNS.
        manual: bool,
    },
    /// Seen (LAN or manual entry), the signed challenge is under way.
    Verifying,
    /// Seen, but its answer did not prove it is mine: why.
    Unverified(String),
    /// Seen on the LAN before the registry answered: cannot tell yet.
    AwaitingRegistry,
    /// In my registry and heartbeating, but not seen on this LAN (multicast
    /// blocked, or another room); calls go through the matcher anyway.
    NotOnLan,
    /// In my registry as a third-party SIP phone that the matcher reaches:
    /// it has no key to prove itself with, so it is never challenged; calls
    /// on it are handed off once it has transferred them.
    SipPhone,
    /// In my registry; heartbeats stopped.
    Offline,
    /// On the LAN (or in the config) but not in my registry.
    NotMine,
}

impl Presence {
    /// Whether the talker may be designated and used for a call.
    pub fn callable(&self) -> bool {
        matches!(
            self,
            Self::Verified { .. } | Self::NotOnLan | Self::SipPhone
        )
    }

    /// The word the list shows.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Verified { manual: false } => "verified",
            Self::Verified { manual: true } => "verified (manual)",
            Self::Verifying => "verifying",
            Self::Unverified(_) => "unverified",
            Self::AwaitingRegistry => "checking",
            Self::NotOnLan => "not on LAN",
            Self::SipPhone => "SIP phone",
            Self::Offline => "offline",
            Self::NotMine => "not mine",
        }
    }
}

/// What a talker is doing, from its status API, its advertisement or the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Free.
    Idle,
    /// In a call (advertised busy).
    Busy,
    /// A call rings on it.
    Ringing,
    /// Its call is connected.
    InCall,
    /// Its call is connected and on hold (by either end).
    Held,
    /// Not reachable at all.
    Offline,
    /// Nothing known.
    Unknown,
}

impl Activity {
    /// The word the list shows.
    pub fn label(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Busy => "busy",
            Self::Ringing => "ringing",
            Self::InCall => "in call",
            Self::Held => "held",
            Self::Offline => "offline",
            Self::Unknown => "—",
        }
    }
}

/// Where the dialer found a talker's addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// mDNS on the LAN.
    Lan,
    /// A manual entry of the config.
    Manual,
}

impl Seen {
    /// `lan` or `manual`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lan => "lan",
            Self::Manual => "manual",
        }
    }
}

/// One line of the talkers list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRow {
    /// Talker id.
    pub id: String,
    /// Human name (the registry's; the advertised instance name, or the id of
    /// a manual entry, for a talker not in it).
    pub name: String,
    /// Device kind.
    pub kind: TalkerKind,
    /// Whether it carries video.
    pub video: bool,
    /// Verified, unverified, not on LAN, offline, not mine.
    pub presence: Presence,
    /// Idle, busy, ringing...
    pub activity: Activity,
    /// Whether my registry sees its heartbeats (`None`: not in my registry).
    pub online: Option<bool>,
    /// Where its addresses came from (`None`: not seen).
    pub seen: Option<Seen>,
    /// What its advertisement says, when mDNS sees it.
    pub advertised: Option<TalkerState>,
    /// Where its local API answers: the address its challenge was made at,
    /// else its first address.
    pub address: Option<SocketAddr>,
    /// The SIP server domains of its accounts.
    pub servers: Vec<String>,
    /// Its place in my designation (1 = first choice).
    pub designation: Option<usize>,
    /// Its mark for the selected contact.
    pub mark: RouteMark,
}

impl RosterRow {
    /// Whether it may be designated and called with.
    pub fn callable(&self) -> bool {
        self.presence.callable()
    }

    /// The reason this row cannot be designated, in one line.
    pub fn not_callable_reason(&self) -> Option<String> {
        match &self.presence {
            Presence::Verified { .. } | Presence::NotOnLan | Presence::SipPhone => None,
            Presence::Verifying => Some(format!("{} is still being verified", self.name)),
            Presence::Unverified(why) => Some(format!("{} is not verified: {why}", self.name)),
            Presence::AwaitingRegistry => Some(format!(
                "{}: waiting for the registry to check it",
                self.name
            )),
            Presence::Offline => Some(format!("{} is offline", self.name)),
            Presence::NotMine => Some(format!("{} is not one of my talkers", self.name)),
        }
    }
}

/// Everything the rows are built from.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// My registry, `None` until it answered.
    pub registry: Option<&'a [RegisteredTalker]>,
    /// mDNS sightings by instance name.
    pub sightings: &'a BTreeMap<String, TalkerAd>,
    /// Manual entries of the config.
    pub manual: &'a [ManualTalker],
    /// Challenge results by talker id.
    pub verifications: &'a BTreeMap<String, Verification>,
    /// Last status by talker id.
    pub statuses: &'a BTreeMap<String, TalkerStatus>,
    /// My designated talkers, in order.
    pub designated: &'a [String],
}

/// Every address the dialer may reach a talker's local API at, best first,
/// and where they came from: the addresses of its LAN advertisements (IPv4
/// first, advertisements in instance order) when mDNS sees it at one, else its
/// manual entries in config order.
pub fn addresses_of(id: &str, sources: &Sources<'_>) -> Option<(Seen, Vec<SocketAddr>)> {
    let mut lan: Vec<SocketAddr> = Vec::new();
    for ad in sources.sightings.values().filter(|ad| ad.id.as_str() == id) {
        for address in ad.socket_addrs() {
            if !lan.contains(&address) {
                lan.push(address);
            }
        }
    }
    if !lan.is_empty() {
        return Some((Seen::Lan, lan));
    }
    let manual: Vec<SocketAddr> = sources
        .manual
        .iter()
        .filter(|m| m.id == id)
        .map(|m| m.address)
        .collect();
    (!manual.is_empty()).then_some((Seen::Manual, manual))
}

/// The address the dialer challenges (and polls) a talker at: the first of
/// [`addresses_of`].
pub fn address_of(id: &str, sources: &Sources<'_>) -> Option<SocketAddr> {
    addresses_of(id, sources).and_then(|(_, addresses)| addresses.first().copied())
}

fn seen_on_lan<'a>(id: &str, sightings: &'a BTreeMap<String, TalkerAd>) -> Option<&'a TalkerAd> {
    sightings.values().find(|ad| ad.id.as_str() == id)
}

/// Builds the rows by the rule of this module: my registry's talkers in its
/// order, then talkers that are seen (LAN or manual) but not in it, by id.
pub fn rows(sources: &Sources<'_>, route: RouteSource<'_>) -> Vec<RosterRow> {
    let mut rows = Vec::new();
    let registry = sources.registry.unwrap_or_default();
    for talker in registry {
        rows.push(registered_row(talker, sources));
    }
    // Seen, but not (or not yet) in my registry.
    let known = |id: &str| registry.iter().any(|t| t.id == id);
    let mut strangers: BTreeMap<String, RosterRow> = BTreeMap::new();
    for ad in sources.sightings.values() {
        let id = ad.id.as_str();
        if known(id) || strangers.contains_key(id) {
            continue;
        }
        strangers.insert(id.to_owned(), lan_only_row(ad, sources));
    }
    for manual in sources.manual {
        if known(&manual.id) || strangers.contains_key(&manual.id) {
            continue;
        }
        strangers.insert(
            manual.id.clone(),
            RosterRow {
                id: manual.id.clone(),
                name: manual.id.clone(),
                kind: TalkerKind::Other,
                video: false,
                presence: stranger(sources),
                activity: Activity::Unknown,
                online: None,
                seen: Some(Seen::Manual),
                advertised: None,
                address: Some(manual.address),
                servers: Vec::new(),
                designation: None,
                mark: RouteMark::None,
            },
        );
    }
    rows.extend(strangers.into_values());
    for row in &mut rows {
        row.designation = sources
            .designated
            .iter()
            .position(|id| *id == row.id)
            .map(|i| i + 1);
        row.mark = mark::mark(row, sources, route);
    }
    rows
}

/// A talker my registry does not hold: not mine, once it answered.
fn stranger(sources: &Sources<'_>) -> Presence {
    if sources.registry.is_some() {
        Presence::NotMine
    } else {
        Presence::AwaitingRegistry
    }
}

fn registered_row(talker: &RegisteredTalker, sources: &Sources<'_>) -> RosterRow {
    let ad = seen_on_lan(&talker.id, sources.sightings);
    // A SIP phone has no key and no local API: no address or challenge applies to it.
    let reach = if talker.software == TalkerSoftware::SipPhone {
        None
    } else {
        addresses_of(&talker.id, sources)
    };
    let (presence, address) = match &reach {
        _ if talker.software == TalkerSoftware::SipPhone => {
            let presence = if talker.online {
                Presence::SipPhone
            } else {
                Presence::Offline
            };
            (presence, None)
        }
        Some((seen, addresses)) => challenged(talker, *seen, addresses, sources),
        None if talker.online => (Presence::NotOnLan, None),
        None => (Presence::Offline, None),
    };
    let mut servers: Vec<String> = Vec::new();
    for account in &talker.accounts {
        if !servers.contains(&account.server) {
            servers.push(account.server.clone());
        }
    }
    let activity = activity(
        sources.statuses.get(&talker.id),
        ad.map(|ad| ad.state),
        talker.online || address.is_some(),
    );
    RosterRow {
        id: talker.id.clone(),
        name: talker.name.clone(),
        kind: talker.kind,
        video: talker.media == Media::Video,
        presence,
        activity,
        online: Some(talker.online),
        seen: reach.map(|(seen, _)| seen),
        advertised: ad.map(|ad| ad.state),
        address,
        servers,
        designation: None,
        mark: RouteMark::None,
    }
}

/// An agent of my registry seen at `addresses`: what its challenge says, and
/// the address it speaks for. Only a challenge made at one of its addresses
/// with the key my registry holds now counts.
fn challenged(
    talker: &RegisteredTalker,
    seen: Seen,
    addresses: &[SocketAddr],
    sources: &Sources<'_>,
) -> (Presence, Option<SocketAddr>) {
    let current = sources
        .verifications
        .get(&talker.id)
        .filter(|v| addresses.contains(&v.dialed) && v.public_key == talker.public_key);
    let Some(verification) = current else {
        // Seen at addresses not (yet) challenged there.
        return (Presence::Verifying, addresses.first().copied());
    };
    let presence = match &verification.state {
        VerifyState::Verified => Presence::Verified {
            manual: seen == Seen::Manual,
        },
        VerifyState::Pending => Presence::Verifying,
        VerifyState::Failed(why) => Presence::Unverified(why.clone()),
    };
    (presence, Some(verification.dialed))
}

fn lan_only_row(ad: &TalkerAd, sources: &Sources<'_>) -> RosterRow {
    RosterRow {
        id: ad.id.as_str().to_owned(),
        name: ad.instance.clone(),
        kind: ad.kind,
        video: ad.media == Media::Video,
        presence: stranger(sources),
        activity: activity(None, Some(ad.state), true),
        online: None,
        seen: Some(Seen::Lan),
        advertised: Some(ad.state),
        address: ad.socket_addrs().into_iter().next(),
        servers: ad.servers.clone(),
        designation: None,
        mark: RouteMark::None,
    }
}

fn activity(
    status: Option<&TalkerStatus>,
    advertised: Option<TalkerState>,
    reachable: bool,
) -> Activity {
    if let Some(status) = status {
        if status
            .calls
            .iter()
            .any(|c| c.kind == TalkerCallKind::Incoming && c.state == TalkerCallState::Ringing)
        {
            return Activity::Ringing;
        }
        let mut connected = status
            .calls
            .iter()
            .filter(|c| c.state == TalkerCallState::Connected);
        // The control leg never carries media, so only a leg that does can be
        // on hold; a hold is what the owner most needs to see.
        if connected.clone().any(|c| c.held.is_some()) {
            return Activity::Held;
        }
        if connected.next().is_some() {
            return Activity::InCall;
        }
        if !status.calls.is_empty() {
            return Activity::Busy;
        }
        return Activity::Idle;
    }
    match advertised {
        Some(TalkerState::Busy) => Activity::Busy,
        Some(TalkerState::Idle) => Activity::Idle,
        None if reachable => Activity::Unknown,
        None => Activity::Offline,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::{
        AgentCall, Contact, ContactKind, Held, Problem, RegisteredAccount, RouteView, Routes,
    };
    use discovery::TalkerId;
    use std::net::{IpAddr, Ipv4Addr};

    fn talker(id: &str, name: &str, online: bool, servers: &[&str]) -> RegisteredTalker {
        RegisteredTalker {
            id: id.to_owned(),
            name: name.to_owned(),
            kind: TalkerKind::Tv,
            media: Media::Video,
            public_key: format!("key-{id}"),
            software: Default::default(),
            online,
            last_seen: None,
            accounts: servers
                .iter()
                .map(|s| RegisteredAccount {
                    aor: format!("sip:{id}@{s}"),
                    server: (*s).to_owned(),
                    registered: online,
                })
                .collect(),
        }
    }

    fn ad(id: &str, instance: &str, last_octet: u8) -> TalkerAd {
        TalkerAd {
            id: TalkerId::new(id).unwrap(),
            instance: instance.to_owned(),
            kind: TalkerKind::Speaker,
            media: Media::Audio,
            servers: vec![],
            state: TalkerState::Idle,
            addresses: vec![IpAddr::V4(Ipv4Addr::new(192, 168, 1, last_octet))],
            port: 8420,
        }
    }

    fn addr(last_octet: u8) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 1, last_octet)), 8420)
    }

    fn contact(name: &str, servers: &[&str]) -> Contact {
        Contact {
            name: name.to_owned(),
            kind: ContactKind::User,
            accepted: true,
            servers: servers.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    struct World {
        registry: Option<Vec<RegisteredTalker>>,
        sightings: BTreeMap<String, TalkerAd>,
        manual: Vec<ManualTalker>,
        verifications: BTreeMap<String, Verification>,
        statuses: BTreeMap<String, TalkerStatus>,
        designated: Vec<String>,
    }

    impl World {
        fn new(registry: Option<Vec<RegisteredTalker>>) -> Self {
            Self {
                registry,
                sightings: BTreeMap::new(),
                manual: vec![],
                verifications: BTreeMap::new(),
                statuses: BTreeMap::new(),
                designated: vec![],
            }
        }
        fn see(&mut self, ad: TalkerAd) {
            self.sightings.insert(ad.instance.clone(), ad);
        }
        fn verify(&mut self, id: &str, at: SocketAddr, state: VerifyState) {
            self.verifications.insert(
                id.to_owned(),
                Verification {
                    dialed: at,
                    public_key: format!("key-{id}"),
                    state,
                },
            );
        }
        fn sources(&self) -> Sources<'_> {
            Sources {
                registry: self.registry.as_deref(),
                sightings: &self.sightings,
                manual: &self.manual,
                verifications: &self.verifications,
                statuses: &self.statuses,
                designated: &self.designated,
            }
        }
        fn rows(&self, route: RouteSource<'_>) -> Vec<RosterRow> {
            rows(&self.sources(), route)
        }
    }

    #[test]
    fn presence_follows_the_contract() {
        let mut world = World::new(Some(vec![
            talker("tv", "TV", true, &["family.example"]),
            talker("pc", "PC", true, &["work.example"]),
            talker("tab", "Tablet", true, &["family.example"]),
            talker("old", "Old phone", false, &["family.example"]),
            talker("bad", "Fake", true, &["family.example"]),
        ]));
        world.see(ad("tv", "TV", 20));
        world.verify("tv", addr(20), VerifyState::Verified);
        world.see(ad("tab", "Tablet", 21)); // not challenged yet
        world.see(ad("bad", "Fake", 22));
        world.verify("bad", addr(22), VerifyState::Failed("bad signature".into()));
        world.see(ad("stranger", "Neighbour TV", 30));
        let rows = world.rows(RouteSource::NoContact);
        let presence: Vec<(&str, &Presence)> =
            rows.iter().map(|r| (r.id.as_str(), &r.presence)).collect();
        assert_eq!(
            presence,
            vec![
                ("tv", &Presence::Verified { manual: false }),
                ("pc", &Presence::NotOnLan),
                ("tab", &Presence::Verifying),
                ("old", &Presence::Offline),
                ("bad", &Presence::Unverified("bad signature".into())),
                ("stranger", &Presence::NotMine),
            ]
        );
        let callable: Vec<bool> = rows.iter().map(RosterRow::callable).collect();
        assert_eq!(callable, vec![true, true, false, false, false, false]);
        assert_eq!(rows[0].address, Some(addr(20)));
    }

    #[test]
    fn a_new_address_is_not_verified_by_the_old_answer() {
        let mut world = World::new(Some(vec![talker("tv", "TV", true, &["a.example"])]));
        world.see(ad("tv", "TV", 40));
        world.verify("tv", addr(20), VerifyState::Verified);
        assert_eq!(
            world.rows(RouteSource::NoContact)[0].presence,
            Presence::Verifying
        );
    }

    #[test]
    fn manual_entries_are_verified_like_lan_ones() {
        let mut world = World::new(None);
        world.manual.push(ManualTalker {
            id: "tv".into(),
            address: addr(20),
        });
        world.manual.push(ManualTalker {
            id: "ghost".into(),
            address: addr(99),
        });
        let rows = world.rows(RouteSource::NoContact);
        assert!(
            rows.iter()
                .all(|r| r.presence == Presence::AwaitingRegistry)
        );
        world.registry = Some(vec![talker("tv", "TV", false, &["a.example"])]);
        world.verify("tv", addr(20), VerifyState::Verified);
        let rows = world.rows(RouteSource::NoContact);
        assert_eq!(rows[0].presence, Presence::Verified { manual: true });
        assert_eq!(rows[1].id, "ghost");
        assert_eq!(rows[1].presence, Presence::NotMine);
        assert!(!rows[1].callable());
    }

    #[test]
    fn marks_name_the_shared_server_or_the_reason() {
        let mut world = World::new(Some(vec![
            talker("tv", "TV", true, &["family.example", "work.example"]),
            talker("pc", "PC", true, &["home.example"]),
            talker("old", "Old phone", false, &["home.example"]),
        ]));
        world.see(ad("stranger", "Neighbour", 30));
        let bob = contact("Bob", &["home.example"]);
        let routes = Routes {
            callee: "Bob".into(),
            media: Media::Video,
            routes: vec![RouteView {
                rank: 1,
                talker: "pc".into(),
                talker_name: "PC".into(),
                account: "sip:pc@home.example".into(),
                server: "home.example".into(),
                cost: 1,
                media: Media::Audio,
                talker_online: true,
                online: true,
                reason: "online · cost 1".into(),
            }],
        };
        let rows = world.rows(RouteSource::Loaded(&bob, &routes));
        assert_eq!(
            rows[0].mark,
            RouteMark::Unreachable(
                "no shared server: TV on family.example, work.example; Bob on home.example".into()
            )
        );
        assert_eq!(
            rows[1].mark,
            RouteMark::Shared {
                rank: 1,
                server: "home.example".into(),
                media_ok: false,
                online: true,
                reason: "online · cost 1".into()
            }
        );
        assert_eq!(
            rows[2].mark,
            RouteMark::Unreachable("offline (shares home.example)".into())
        );
        assert_eq!(rows[3].mark, RouteMark::None, "not mine: no mark");

        world.designated = vec!["pc".into()];
        let rows = world.rows(RouteSource::Loaded(&bob, &routes));
        assert_eq!(rows[0].mark, RouteMark::NotDesignated);
        assert_eq!(rows[1].designation, Some(1));

        let refused = Problem::Refused {
            status: 409,
            code: "no_shared_server".into(),
            message: "no shared server".into(),
            caller_servers: vec![],
            callee_servers: vec![],
        };
        world.designated.clear();
        let rows = world.rows(RouteSource::Failed(&bob, &refused));
        assert!(
            matches!(&rows[0].mark, RouteMark::Unreachable(r) if r.starts_with("no shared server"))
        );
        let down = Problem::Unreachable {
            what: "matcher".into(),
            message: "connection refused".into(),
        };
        let rows = world.rows(RouteSource::Failed(&bob, &down));
        assert!(matches!(&rows[0].mark, RouteMark::Unknown(_)));
        let rows = world.rows(RouteSource::Loading(&bob));
        assert_eq!(rows[0].mark, RouteMark::Loading);
    }

    #[test]
    fn activity_prefers_the_status_api() {
        let mut world = World::new(Some(vec![talker("tv", "TV", true, &["a.example"])]));
        world.see(ad("tv", "TV", 20));
        world.verify("tv", addr(20), VerifyState::Verified);
        assert_eq!(
            world.rows(RouteSource::NoContact)[0].activity,
            Activity::Idle
        );
        world.statuses.insert(
            "tv".into(),
            TalkerStatus {
                id: "tv".into(),
                name: "TV".into(),
                kind: TalkerKind::Tv,
                media: vec![],
                accounts: vec![],
                calls: vec![AgentCall {
                    id: 3,
                    kind: TalkerCallKind::Incoming,
                    state: TalkerCallState::Ringing,
                    sip_call_id: "x".into(),
                    peer: String::new(),
                    media: None,
                    held: None,
                    dtmf_received: String::new(),
                }],
            },
        );
        assert_eq!(
            world.rows(RouteSource::NoContact)[0].activity,
            Activity::Ringing
        );
        let calls = &mut world.statuses.get_mut("tv").unwrap().calls;
        calls[0].state = TalkerCallState::Connected;
        assert_eq!(
            world.rows(RouteSource::NoContact)[0].activity,
            Activity::InCall
        );
        for held in [Held::ByPeer, Held::ByUs] {
            world.statuses.get_mut("tv").unwrap().calls[0].held = Some(held);
            assert_eq!(
                world.rows(RouteSource::NoContact)[0].activity,
                Activity::Held,
                "{held:?}"
            );
        }
    }

    #[test]
    fn a_challenge_counts_at_any_of_the_talkers_addresses_with_the_current_key() {
        let mut world = World::new(Some(vec![talker("tv", "TV", true, &["a.example"])]));
        let mut tv = ad("tv", "TV", 20);
        tv.addresses
            .push(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 21)));
        world.see(tv);
        // The second address answered (the first did not): that is where it speaks.
        world.verify("tv", addr(21), VerifyState::Verified);
        let row = &world.rows(RouteSource::NoContact)[0];
        assert_eq!(row.presence, Presence::Verified { manual: false });
        assert_eq!((row.address, row.seen), (Some(addr(21)), Some(Seen::Lan)));
        assert_eq!(address_of("tv", &world.sources()), Some(addr(20)));
        // A challenge checked with a key the registry no longer holds proves nothing.
        world.registry.as_mut().unwrap()[0].public_key = "key-new".into();
        let row = &world.rows(RouteSource::NoContact)[0];
        assert_eq!(row.presence, Presence::Verifying);
        assert_eq!(row.address, Some(addr(20)));
    }

    #[test]
    fn lan_addresses_come_before_manual_ones_and_sip_phones_have_none() {
        let mut world = World::new(Some(vec![
            talker("tv", "TV", true, &["a.example"]),
            talker("desk", "Desk phone", true, &["a.example"]),
        ]));
        world.registry.as_mut().unwrap()[1].software = TalkerSoftware::SipPhone;
        for (id, octet) in [("tv", 50), ("tv", 51), ("desk", 52), ("fridge", 53)] {
            world.manual.push(ManualTalker {
                id: id.into(),
                address: addr(octet),
            });
        }
        assert_eq!(
            addresses_of("tv", &world.sources()),
            Some((Seen::Manual, vec![addr(50), addr(51)]))
        );
        world.see(ad("tv", "TV", 20));
        assert_eq!(
            addresses_of("tv", &world.sources()),
            Some((Seen::Lan, vec![addr(20)]))
        );
        world.see(ad("desk", "Desk phone", 22));
        let rows = world.rows(RouteSource::NoContact);
        let by_id = |id: &str| rows.iter().find(|r| r.id == id).unwrap();
        assert_eq!(by_id("desk").presence, Presence::SipPhone);
        assert_eq!((by_id("desk").address, by_id("desk").seen), (None, None));
        // A manual entry my registry does not hold is listed, as not mine.
        let fridge = by_id("fridge");
        assert_eq!(fridge.presence, Presence::NotMine);
        assert_eq!(
            (fridge.seen, fridge.address, fridge.online),
            (Some(Seen::Manual), Some(addr(53)), None)
        );
        assert_eq!(by_id("tv").online, Some(true));
        assert_eq!(by_id("tv").advertised, Some(TalkerState::Idle));
    }
}
