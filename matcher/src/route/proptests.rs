//! Property tests of the ranking's invariants over random registries: small
//! pools of ids, AORs and servers so that collisions, duplicates, foreign
//! talkers, unknown and untrusted servers all turn up often.

use super::*;
use crate::registry::{
    Account, ControllerTrust, Media, Server, Talker, TalkerKind, Transport, UserId,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::collections::BTreeSet;

const NOW: i64 = 1_764_170_000;
const MAX_AGE: i64 = 60;
const CALLER: UserId = 1;
const CALLEE: UserId = 2;
const STRANGER: UserId = 3;
/// The last domain is never in the server list (an account on a server the
/// registry does not know).
const DOMAINS: [&str; 5] = [
    "a.example",
    "b.example",
    "c.example",
    "d.example",
    "gone.example",
];

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::with_cases(256)
    }
}

fn media() -> impl Strategy<Value = Media> {
    prop_oneof![Just(Media::Audio), Just(Media::Video)]
}

fn servers() -> impl Strategy<Value = Vec<Server>> {
    proptest::collection::vec((0u32..4, prop::bool::weighted(0.8)), 4).prop_map(|specs| {
        specs
            .into_iter()
            .zip(DOMAINS)
            .map(|((cost, trusted), domain)| Server {
                domain: domain.to_owned(),
                proxy: "127.0.0.1:5060".to_owned(),
                transport: Transport::Tcp,
                cost,
                trust: if trusted {
                    ControllerTrust::Address
                } else {
                    ControllerTrust::None
                },
            })
            .collect()
    })
}

/// An index into [`DOMAINS`], mostly one of the first two so that the two
/// sides often share a server.
fn domain() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 0usize..2, 1 => 2..DOMAINS.len()]
}

/// A talker id: its owner's letter and a number, so one id always has one owner.
fn talker_id(owner: UserId, number: u8) -> String {
    let letter = match owner {
        CALLER => 'c',
        CALLEE => 'e',
        _ => 's',
    };
    format!("{letter}{number}")
}

/// A talker of one of `owners` with one to three accounts; some accounts claim
/// to be another talker's, and AORs may repeat.
fn talker_accounts(owners: &'static [UserId]) -> impl Strategy<Value = TalkerAccounts> {
    let account = (
        0u8..3,
        domain(),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.1),
    );
    (
        prop::sample::select(owners),
        0u8..3,
        media(),
        prop::option::weighted(0.9, -5i64..(MAX_AGE + 30)),
        proptest::collection::vec(account, 1..4),
    )
        .prop_map(|(owner, number, media, age, accounts)| {
            let id = talker_id(owner, number);
            let accounts = accounts
                .into_iter()
                .map(|(user, domain, registered, foreign)| Account {
                    talker: if foreign { "x9".to_owned() } else { id.clone() },
                    aor: format!("sip:{}{user}@{}", &id[..1], DOMAINS[domain]),
                    server: DOMAINS[domain].to_owned(),
                    registered,
                    gruu: None,
                })
                .collect();
            TalkerAccounts {
                talker: Talker {
                    id: id.clone(),
                    owner,
                    name: format!("{id} name"),
                    kind: TalkerKind::Other,
                    media,
                    public_key: String::new(),
                    software: crate::registry::TalkerSoftware::Agent,
                    instance: None,
                    last_seen: age.map(|age| NOW - age),
                },
                accounts,
            }
        })
}

/// The caller, user 1, with talkers of theirs and of a stranger.
fn caller_side() -> impl Strategy<Value = CallerSide> {
    proptest::collection::vec(
        talker_accounts(&[CALLER, CALLER, CALLER, CALLER, CALLER, STRANGER]),
        1..6,
    )
    .prop_flat_map(|talkers| {
        // Mostly ids of listed talkers (the stranger's too), sometimes an
        // unknown one; now and then nothing designated at all.
        let ids: Vec<String> = talkers.iter().map(|e| e.talker.id.clone()).collect();
        let id = prop_oneof![
            8 => prop::sample::select(ids),
            1 => Just(talker_id(CALLER, 9)),
            1 => Just(talker_id(STRANGER, 9)),
        ];
        let designated = prop_oneof![
            1 => Just(Vec::new()),
            9 => proptest::collection::vec(id, 1..5),
        ];
        (designated, Just(talkers))
    })
    .prop_map(|(designated, talkers)| CallerSide {
        user: CALLER,
        designated,
        talkers,
    })
}

/// The callee: user 2 with talkers (some a stranger's), or a plain address.
fn callee_side() -> impl Strategy<Value = CalleeSide> {
    prop_oneof![
        3 => proptest::collection::vec(talker_accounts(&[CALLEE, CALLEE, CALLEE, STRANGER]), 1..6)
            .prop_map(|talkers| CalleeSide::User { user: CALLEE, talkers }),
        1 => (0u8..3, domain(), media()).prop_map(|(user, domain, media)| {
            CalleeSide::Address {
                aor: format!("sip:desk{user}@{}", DOMAINS[domain]),
                server: DOMAINS[domain].to_owned(),
                media,
                reachable: None,
            }
        }),
    ]
}

/// One valid candidate as the oracle sees it, with the flags it must carry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Expected {
    caller_talker: String,
    caller_aor: String,
    callee_talker: Option<String>,
    callee_aor: String,
    server: String,
    caller_online: bool,
    callee_online: Option<bool>,
    media: Media,
    designation: usize,
    preference: usize,
}

fn expected_of(route: &Route) -> Expected {
    Expected {
        caller_talker: route.caller_talker.id.clone(),
        caller_aor: route.caller_account.aor.clone(),
        callee_talker: route.callee.talker.clone(),
        callee_aor: route.callee.aor.clone(),
        server: route.server.domain.clone(),
        caller_online: route.caller_online,
        callee_online: route.callee.online,
        media: route.media,
        designation: route.designation,
        preference: route.callee.preference,
    }
}

fn fresh(talker: &Talker) -> bool {
    talker.last_seen.is_some_and(|seen| NOW - seen <= MAX_AGE)
}

/// The talker's own accounts, first occurrence of each AOR.
fn own_accounts(entry: &TalkerAccounts) -> Vec<&Account> {
    let mut kept: Vec<&Account> = Vec::new();
    for account in &entry.accounts {
        if account.talker == entry.talker.id && kept.iter().all(|k| k.aor != account.aor) {
            kept.push(account);
        }
    }
    kept
}

/// (talker, its accounts, preference) for the caller, written plainly from the rules.
fn oracle_caller(caller: &CallerSide) -> Vec<(&TalkerAccounts, Vec<&Account>, usize)> {
    let mut usable: Vec<(&TalkerAccounts, Vec<&Account>, usize)> = Vec::new();
    for id in &caller.designated {
        if usable.iter().any(|(entry, _, _)| &entry.talker.id == id) {
            continue;
        }
        let first = caller.talkers.iter().find(|entry| &entry.talker.id == id);
        if let Some(entry) = first.filter(|entry| entry.talker.owner == caller.user) {
            let preference = usable.len();
            usable.push((entry, own_accounts(entry), preference));
        }
    }
    usable
}

/// (talker id, aor, server, media, online, preference) for the callee.
type CalleeTuple = (Option<String>, String, String, Media, Option<bool>, usize);

fn oracle_callee(callee: &CalleeSide) -> Vec<CalleeTuple> {
    match callee {
        CalleeSide::Address {
            aor, server, media, ..
        } => {
            vec![(None, aor.clone(), server.clone(), *media, None, 0)]
        }
        CalleeSide::User { user, talkers } => {
            let mut seen: Vec<&str> = Vec::new();
            let mut out = Vec::new();
            for entry in talkers {
                if entry.talker.owner != *user || seen.contains(&entry.talker.id.as_str()) {
                    continue;
                }
                let preference = seen.len();
                seen.push(&entry.talker.id);
                for account in own_accounts(entry) {
                    out.push((
                        Some(entry.talker.id.clone()),
                        account.aor.clone(),
                        account.server.clone(),
                        entry.talker.media,
                        Some(account.registered && fresh(&entry.talker)),
                        preference,
                    ));
                }
            }
            out
        }
    }
}

/// The oracle's answer: the valid candidates, or the error expected.
fn oracle(
    caller: &CallerSide,
    callee: &CalleeSide,
    servers: &[Server],
) -> Result<Vec<Expected>, RouteError> {
    let usable = oracle_caller(caller);
    if usable.is_empty() {
        return Err(RouteError::NoDesignatedTalker);
    }
    let ends = oracle_callee(callee);
    let mut shared = BTreeSet::new();
    let mut valid = Vec::new();
    for (entry, accounts, designation) in &usable {
        for account in accounts {
            for (callee_talker, callee_aor, server, callee_media, callee_online, preference) in
                &ends
            {
                if *server != account.server || callee_talker.as_ref() == Some(&entry.talker.id) {
                    continue;
                }
                shared.insert(server.clone());
                let trusted = servers
                    .iter()
                    .any(|s| &s.domain == server && s.trust == ControllerTrust::Address);
                if trusted {
                    valid.push(Expected {
                        caller_talker: entry.talker.id.clone(),
                        caller_aor: account.aor.clone(),
                        callee_talker: callee_talker.clone(),
                        callee_aor: callee_aor.clone(),
                        server: server.clone(),
                        caller_online: account.registered && fresh(&entry.talker),
                        callee_online: *callee_online,
                        media: entry.talker.media.min(*callee_media),
                        designation: *designation,
                        preference: *preference,
                    });
                }
            }
        }
    }
    if shared.is_empty() {
        let caller_servers: BTreeSet<String> = usable
            .iter()
            .flat_map(|(_, accounts, _)| accounts.iter().map(|a| a.server.clone()))
            .collect();
        let callee_servers: BTreeSet<String> = ends.iter().map(|end| end.2.clone()).collect();
        return Err(RouteError::NoSharedServer {
            caller_servers: caller_servers.into_iter().collect(),
            callee_servers: callee_servers.into_iter().collect(),
        });
    }
    if valid.is_empty() {
        return Err(RouteError::NoUsableServer {
            shared_servers: shared.into_iter().collect(),
        });
    }
    valid.sort();
    Ok(valid)
}

fn query(media: Media) -> RouteQuery {
    RouteQuery {
        media,
        now: NOW,
        max_heartbeat_age_s: MAX_AGE,
    }
}

/// Ranks, and fails the case unless the result is a route list.
fn ranked_routes(
    caller: &CallerSide,
    callee: &CalleeSide,
    servers: &[Server],
    media: Media,
) -> Vec<Route> {
    rank_routes(caller, callee, servers, &query(media)).unwrap_or_default()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_result_is_a_permutation_of_the_valid_candidates_or_the_right_error(
        caller in caller_side(), callee in callee_side(), servers in servers(), wanted in media(),
    ) {
        let got = rank_routes(&caller, &callee, &servers, &query(wanted));
        match oracle(&caller, &callee, &servers) {
            Ok(expected) => {
                let routes = got.map_err(|error| TestCaseError::fail(error.to_string()))?;
                let mut candidates: Vec<Expected> = routes.iter().map(expected_of).collect();
                candidates.sort();
                prop_assert_eq!(candidates, expected);
            }
            Err(error) => prop_assert_eq!(got, Err(error)),
        }
    }

    #[test]
    fn a_route_never_spans_two_servers_nor_an_unusable_one(
        caller in caller_side(), callee in callee_side(), servers in servers(), wanted in media(),
    ) {
        for route in ranked_routes(&caller, &callee, &servers, wanted) {
            prop_assert_eq!(&route.caller_account.server, &route.server.domain);
            prop_assert_eq!(&route.callee.server, &route.server.domain);
            prop_assert_eq!(route.server.trust, ControllerTrust::Address);
            prop_assert!(servers.contains(&route.server));
        }
    }

    #[test]
    fn a_route_only_uses_the_callers_own_designated_talkers(
        caller in caller_side(), callee in callee_side(), servers in servers(), wanted in media(),
    ) {
        for route in ranked_routes(&caller, &callee, &servers, wanted) {
            prop_assert_eq!(route.caller_talker.owner, CALLER);
            prop_assert!(caller.designated.contains(&route.caller_talker.id));
            prop_assert_eq!(&route.caller_account.talker, &route.caller_talker.id);
            if let CalleeSide::User { talkers, .. } = &callee {
                let target = route.callee.talker.as_deref().unwrap_or("none");
                prop_assert!(talkers
                    .iter()
                    .any(|entry| entry.talker.id == target && entry.talker.owner == CALLEE));
            }
        }
    }

    #[test]
    fn every_offline_route_ranks_after_every_online_route(
        caller in caller_side(), callee in callee_side(), servers in servers(), wanted in media(),
    ) {
        let routes = ranked_routes(&caller, &callee, &servers, wanted);
        for pair in routes.windows(2) {
            prop_assert!(pair[0].offline_ends() <= pair[1].offline_ends());
        }
        if let Some(first_offline) = routes.iter().position(|route| !route.is_online()) {
            prop_assert!(routes[first_offline..].iter().all(|route| !route.is_online()));
        }
    }

    #[test]
    fn video_only_when_both_ends_do_video_and_it_comes_first_among_equally_online_routes(
        caller in caller_side(), callee in callee_side(), servers in servers(), wanted in media(),
    ) {
        let routes = ranked_routes(&caller, &callee, &servers, wanted);
        for route in &routes {
            let both_video =
                route.caller_talker.media == Media::Video && route.callee.media == Media::Video;
            prop_assert_eq!(route.media == Media::Video, both_video);
            prop_assert_eq!(route.media_supported, route.media.covers(wanted));
        }
        for pair in routes.windows(2) {
            if pair[0].offline_ends() == pair[1].offline_ends() && wanted == Media::Video {
                prop_assert!(
                    pair[0].media == Media::Video || pair[1].media == Media::Audio,
                    "audio-only {:?} before video {:?}", pair[0].explanation, pair[1].explanation
                );
            }
        }
    }

    #[test]
    fn the_order_follows_the_rules_and_ranks_are_one_to_n(
        caller in caller_side(), callee in callee_side(), servers in servers(), wanted in media(),
    ) {
        let routes = ranked_routes(&caller, &callee, &servers, wanted);
        let ranks: Vec<usize> = routes.iter().map(|route| route.rank).collect();
        prop_assert_eq!(ranks, (1..=routes.len()).collect::<Vec<_>>());
        let keys: Vec<_> = routes
            .iter()
            .map(|route| {
                (
                    route.offline_ends(),
                    !route.media_supported,
                    route.server.cost,
                    route.designation,
                    route.callee.preference,
                )
            })
            .collect();
        for pair in keys.windows(2) {
            prop_assert!(pair[0] <= pair[1], "{:?} ranked before {:?}", pair[0], pair[1]);
        }
    }

    #[test]
    fn the_ranking_does_not_depend_on_the_order_of_the_callers_talkers_and_accounts(
        caller in caller_side(), callee in callee_side(), servers in servers(), wanted in media(),
    ) {
        // Reordering only means nothing when every id and every AOR appears once.
        let ids: BTreeSet<&str> = caller.talkers.iter().map(|e| e.talker.id.as_str()).collect();
        let unique_aors = caller.talkers.iter().all(|entry| {
            let aors: BTreeSet<&str> = entry.accounts.iter().map(|a| a.aor.as_str()).collect();
            aors.len() == entry.accounts.len()
        });
        prop_assume!(ids.len() == caller.talkers.len() && unique_aors);
        let mut reordered = caller.clone();
        reordered.talkers.reverse();
        for entry in &mut reordered.talkers {
            entry.accounts.reverse();
        }
        prop_assert_eq!(
            rank_routes(&caller, &callee, &servers, &query(wanted)),
            rank_routes(&reordered, &callee, &servers, &query(wanted))
        );
    }

    #[test]
    fn the_dialer_views_are_the_best_route_per_talker_account_and_server(
        caller in caller_side(), callee in callee_side(), servers in servers(), wanted in media(),
    ) {
        let routes = ranked_routes(&caller, &callee, &servers, wanted);
        let views = dialer_views(&routes);
        let triples: BTreeSet<(&str, &str, &str)> = routes
            .iter()
            .map(|r| (r.caller_talker.id.as_str(), r.caller_account.aor.as_str(), r.server.domain.as_str()))
            .collect();
        prop_assert_eq!(views.len(), triples.len());
        for (index, view) in views.iter().enumerate() {
            prop_assert_eq!(view.rank, index + 1);
            let best = routes
                .iter()
                .find(|r| {
                    r.caller_talker.id == view.talker
                        && r.caller_account.aor == view.account
                        && r.server.domain == view.server
                })
                .map(|route| RouteView { rank: view.rank, ..RouteView::from(route) });
            prop_assert_eq!(Some(view.clone()), best);
        }
    }
}
