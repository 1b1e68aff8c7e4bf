//! The "My talkers" list: the matcher's registry (the authority on which
//! talkers are mine and with which key), what mDNS sees on the LAN, the
//! signed-challenge results, and the manual entries of the config, merged
//! into one row per talker — with, for the selected contact, the mark of the
//! server each talker shares with them or the reason it cannot reach them.
//!
//! Pure functions of plain data, so every rule is a unit test.

use crate::config::ManualTalker;
use crate::model::{
    Contact, Problem, RegisteredTalker, RouteView, Routes, TalkerSoftware, TalkerStatus,
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
            Self::Offline => "offline",
            Self::Unknown => "—",
        }
    }
}

/// For the selected contact: whether this talker can reach them, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMark {
    /// No contact selected (or the talker is not mine): no mark.
    None,
    /// The routes are being asked for.
    Loading,
    /// It shares a server with the contact: the best route through it.
    Shared {
        /// The matcher's rank (1 is best).
        rank: usize,
        /// The shared server.
        server: String,
        /// Whether the route carries what was asked (video asked, audio-only route: false).
        media_ok: bool,
        /// Whether no end of the route is known offline.
        online: bool,
        /// The matcher's explanation.
        reason: String,
    },
    /// Others are designated and this one is not: it takes no part.
    NotDesignated,
    /// It cannot reach the contact: why.
    Unreachable(String),
    /// The routes could not be read: why.
    Unknown(String),
}

/// One line of the talkers list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRow {
    /// Talker id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Device kind (`tv`, `pc`, ...).
    pub kind: String,
    /// Whether it carries video.
    pub video: bool,
    /// Verified, unverified, not on LAN, offline, not mine.
    pub presence: Presence,
    /// Idle, busy, ringing...
    pub activity: Activity,
    /// Where its local API answers (LAN or manual), when known.
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

/// The routes answer the marks are drawn from.
#[derive(Debug, Clone, Copy)]
pub enum RouteSource<'a> {
    /// No contact selected.
    NoContact,
    /// A contact is selected, its routes are on their way.
    Loading(&'a Contact),
    /// The routes of the selected contact.
    Loaded(&'a Contact, &'a Routes),
    /// The routes could not be read.
    Failed(&'a Contact, &'a Problem),
}

/// The address the dialer should verify (and poll) a talker at: its LAN
/// address when mDNS sees it, else its manual entry.
pub fn address_of(id: &str, sources: &Sources<'_>) -> Option<SocketAddr> {
    lan_address(id, sources.sightings).or_else(|| {
        sources
            .manual
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.address)
    })
}

fn lan_address(id: &str, sightings: &BTreeMap<String, TalkerAd>) -> Option<SocketAddr> {
    sightings
        .values()
        .filter(|ad| ad.id.as_str() == id)
        .find_map(|ad| ad.socket_addrs().into_iter().next())
}

fn seen_on_lan<'a>(id: &str, sightings: &'a BTreeMap<String, TalkerAd>) -> Option<&'a TalkerAd> {
    sightings.values().find(|ad| ad.id.as_str() == id)
}

/// Builds the rows: my registry's talkers in its order, then talkers that
/// are seen (LAN or manual) but not in it.
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
        let presence = if sources.registry.is_some() {
            Presence::NotMine
        } else {
            Presence::AwaitingRegistry
        };
        strangers.insert(
            manual.id.clone(),
            RosterRow {
                id: manual.id.clone(),
                name: manual.id.clone(),
                kind: "other".to_owned(),
                video: false,
                presence,
                activity: Activity::Unknown,
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
        row.mark = mark(row, sources, route);
    }
    rows
}

fn registered_row(talker: &RegisteredTalker, sources: &Sources<'_>) -> RosterRow {
    let ad = seen_on_lan(&talker.id, sources.sightings);
    let manual = sources.manual.iter().find(|m| m.id == talker.id);
    let address = address_of(&talker.id, sources);
    // A SIP phone has no key, so no LAN sighting or verification applies to it.
    let presence = match (address, sources.verifications.get(&talker.id)) {
        _ if talker.software == TalkerSoftware::SipPhone => {
            if talker.online {
                Presence::SipPhone
            } else {
                Presence::Offline
            }
        }
        (Some(address), Some(v)) if v.dialed == address => match &v.state {
            VerifyState::Verified => Presence::Verified {
                manual: ad.is_none() && manual.is_some(),
            },
            VerifyState::Pending => Presence::Verifying,
            VerifyState::Failed(why) => Presence::Unverified(why.clone()),
        },
        // Seen at an address not (yet) challenged there.
        (Some(_), _) => Presence::Verifying,
        (None, _) if talker.online => Presence::NotOnLan,
        (None, _) => Presence::Offline,
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
        kind: talker.kind.clone(),
        video: talker.media.contains("video"),
        presence,
        activity,
        address,
        servers,
        designation: None,
        mark: RouteMark::None,
    }
}

fn lan_only_row(ad: &TalkerAd, sources: &Sources<'_>) -> RosterRow {
    let presence = if sources.registry.is_some() {
        Presence::NotMine
    } else {
        Presence::AwaitingRegistry
    };
    RosterRow {
        id: ad.id.as_str().to_owned(),
        name: ad.instance.clone(),
        kind: ad.kind.as_str().to_owned(),
        video: ad.media.has_video(),
        presence,
        activity: activity(None, Some(ad.state), true),
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
            .any(|c| c.kind == "incoming" && c.state == "ringing")
        {
            return Activity::Ringing;
        }
        if status.calls.iter().any(|c| c.state == "connected") {
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

fn mark(row: &RosterRow, sources: &Sources<'_>, route: RouteSource<'_>) -> RouteMark {
    if matches!(row.presence, Presence::NotMine | Presence::AwaitingRegistry) {
        return RouteMark::None;
    }
    let designated_elsewhere = !sources.designated.is_empty() && row.designation.is_none();
    match route {
        RouteSource::NoContact => RouteMark::None,
        RouteSource::Loading(_) if designated_elsewhere => RouteMark::NotDesignated,
        RouteSource::Loading(_) => RouteMark::Loading,
        RouteSource::Loaded(contact, routes) => {
            if let Some(best) = best_route(&row.id, &routes.routes) {
                shared_mark(best, &routes.media)
            } else if designated_elsewhere {
                RouteMark::NotDesignated
            } else {
                RouteMark::Unreachable(unreachable_reason(row, contact))
            }
        }
        RouteSource::Failed(contact, problem) => match problem {
            Problem::Refused { code, .. } if code == "no_shared_server" => {
                if designated_elsewhere {
                    RouteMark::NotDesignated
                } else {
                    RouteMark::Unreachable(unreachable_reason(row, contact))
                }
            }
            other => RouteMark::Unknown(other.to_string()),
        },
    }
}

/// The best (lowest rank) route of one talker.
fn best_route<'r>(talker: &str, routes: &'r [RouteView]) -> Option<&'r RouteView> {
    routes
        .iter()
        .filter(|r| r.talker == talker)
        .min_by_key(|r| r.rank)
}

fn shared_mark(route: &RouteView, asked: &str) -> RouteMark {
    RouteMark::Shared {
        rank: route.rank,
        server: route.server.clone(),
        media_ok: asked != "video" || route.media == "video",
        online: route.online,
        reason: route.reason.clone(),
    }
}

/// Why a talker has no route to a contact, from the servers on both sides
/// (the contract's "no shared server: TV on a, b; Bob on c").
pub fn unreachable_reason(row: &RosterRow, contact: &Contact) -> String {
    let shared: Vec<&String> = row
        .servers
        .iter()
        .filter(|s| contact.servers.contains(s))
        .collect();
    if contact.servers.is_empty() {
        return format!("no shared server: {} has no known server", contact.name);
    }
    if row.servers.is_empty() {
        return format!("no shared server: {} has no account", row.name);
    }
    if shared.is_empty() {
        return format!(
            "no shared server: {} on {}; {} on {}",
            row.name,
            row.servers.join(", "),
            contact.name,
            contact.servers.join(", ")
        );
    }
    if matches!(row.presence, Presence::Offline) {
        return format!("offline (shares {})", join_refs(&shared));
    }
    format!(
        "shares {} but the server takes no calls from the matcher",
        join_refs(&shared)
    )
}

fn join_refs(items: &[&String]) -> String {
    items
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::RegisteredAccount;
    use discovery::{Media, TalkerId, TalkerKind};
    use std::net::{IpAddr, Ipv4Addr};

    fn talker(id: &str, name: &str, online: bool, servers: &[&str]) -> RegisteredTalker {
        RegisteredTalker {
            id: id.to_owned(),
            name: name.to_owned(),
            kind: "tv".to_owned(),
            media: "video".to_owned(),
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
            kind: "user".to_owned(),
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
            media: "video".into(),
            routes: vec![RouteView {
                rank: 1,
                talker: "pc".into(),
                talker_name: "PC".into(),
                account: "sip:pc@home.example".into(),
                server: "home.example".into(),
                cost: 1,
                media: "audio".into(),
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
        use crate::model::AgentCall;
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
                kind: "tv".into(),
                media: vec![],
                accounts: vec![],
                calls: vec![AgentCall {
                    id: 3,
                    kind: "incoming".into(),
                    state: "ringing".into(),
                    sip_call_id: "x".into(),
                    peer: None,
                    media: None,
                }],
            },
        );
        assert_eq!(
            world.rows(RouteSource::NoContact)[0].activity,
            Activity::Ringing
        );
    }
}
