//! Table tests: one per ranking rule, the filters, the errors and the dialer's view.

use super::*;
use crate::registry::{
    Account, ControllerTrust, Media, Server, Talker, TalkerKind, Transport, UserId,
};

const NOW: i64 = 1_764_170_000;
const MAX_AGE: i64 = 90;
const ALICE: UserId = 1;
const BOB: UserId = 2;
const MALLORY: UserId = 3;

fn server(domain: &str, cost: u32) -> Server {
    Server {
        domain: domain.to_owned(),
        proxy: "127.0.0.1:5060".to_owned(),
        transport: Transport::Tcp,
        cost,
        trust: ControllerTrust::Address,
    }
}

fn untrusted(domain: &str, cost: u32) -> Server {
    Server {
        trust: ControllerTrust::None,
        ..server(domain, cost)
    }
}

fn talker(id: &str, owner: UserId, media: Media) -> Talker {
    Talker {
        id: id.to_owned(),
        owner,
        name: format!("{id} name"),
        kind: TalkerKind::Other,
        media,
        public_key: String::new(),
        software: crate::registry::TalkerSoftware::Agent,
        instance: None,
        last_seen: Some(NOW - 10),
    }
}

fn seen(mut talker: Talker, last_seen: Option<i64>) -> Talker {
    talker.last_seen = last_seen;
    talker
}

fn account(talker: &Talker, user: &str, server: &str, registered: bool) -> Account {
    Account {
        talker: talker.id.clone(),
        aor: format!("sip:{user}@{server}"),
        server: server.to_owned(),
        registered,
        gruu: None,
    }
}

/// A talker with one registered account per listed server, `sip:<id>@<server>`.
fn on(talker: Talker, servers: &[&str]) -> TalkerAccounts {
    let accounts = servers
        .iter()
        .map(|domain| account(&talker, &talker.id, domain, true))
        .collect();
    TalkerAccounts { talker, accounts }
}

fn caller(designated: &[&str], talkers: Vec<TalkerAccounts>) -> CallerSide {
    CallerSide {
        user: ALICE,
        designated: designated.iter().map(|id| (*id).to_owned()).collect(),
        talkers,
    }
}

fn bob(talkers: Vec<TalkerAccounts>) -> CalleeSide {
    CalleeSide::User { user: BOB, talkers }
}

fn query(media: Media) -> RouteQuery {
    RouteQuery {
        media,
        now: NOW,
        max_heartbeat_age_s: MAX_AGE,
    }
}

/// `caller talker -> callee aor via server` for each route, in rank order.
fn order(routes: &[Route]) -> Vec<String> {
    routes
        .iter()
        .map(|route| {
            format!(
                "{} -> {} via {}",
                route.caller_talker.id, route.callee.aor, route.server.domain
            )
        })
        .collect()
}

fn rank(
    caller: &CallerSide,
    callee: &CalleeSide,
    servers: &[Server],
    media: Media,
) -> Result<Vec<Route>, RouteError> {
    rank_routes(caller, callee, servers, &query(media))
}

#[test]
fn online_talkers_rank_before_offline_ones_whatever_the_cost() {
    let servers = [server("cheap.example", 0), server("dear.example", 9)];
    let unregistered = TalkerAccounts {
        accounts: vec![account(
            &talker("unreg", ALICE, Media::Audio),
            "unreg",
            "cheap.example",
            false,
        )],
        talker: talker("unreg", ALICE, Media::Audio),
    };
    let stale = on(
        seen(
            talker("stale", ALICE, Media::Audio),
            Some(NOW - MAX_AGE - 1),
        ),
        &["cheap.example"],
    );
    let never = on(
        seen(talker("never", ALICE, Media::Audio), None),
        &["cheap.example"],
    );
    let edge = on(
        seen(talker("edge", ALICE, Media::Audio), Some(NOW - MAX_AGE)),
        &["dear.example"],
    );
    let caller = caller(
        &["unreg", "stale", "never", "edge"],
        vec![unregistered, stale, never, edge],
    );
    let callee = bob(vec![on(
        talker("bobphone", BOB, Media::Audio),
        &["cheap.example", "dear.example"],
    )]);
    let routes = rank(&caller, &callee, &servers, Media::Audio).expect("routes");
    assert_eq!(
        order(&routes),
        [
            "edge -> sip:bobphone@dear.example via dear.example",
            "unreg -> sip:bobphone@cheap.example via cheap.example",
            "stale -> sip:bobphone@cheap.example via cheap.example",
            "never -> sip:bobphone@cheap.example via cheap.example",
        ]
    );
    let online: Vec<bool> = routes.iter().map(|route| route.caller_online).collect();
    assert_eq!(online, [true, false, false, false]);
    assert_eq!(
        routes[0].explanation,
        "online · audio · cost 9 · your 4th choice"
    );
    assert_eq!(
        routes[1].explanation,
        "your talker offline · audio · cost 0 · your 1st choice"
    );
}

#[test]
fn an_offline_callee_talker_ranks_after_an_online_one_and_one_offline_end_before_two() {
    let servers = [server("s.example", 1)];
    let caller = caller(
        &["tv", "pc"],
        vec![
            on(talker("tv", ALICE, Media::Video), &["s.example"]),
            on(
                seen(talker("pc", ALICE, Media::Video), None),
                &["s.example"],
            ),
        ],
    );
    // Bob prefers his (offline) desk phone to his (online) mobile.
    let callee = bob(vec![
        on(
            seen(talker("desk", BOB, Media::Audio), None),
            &["s.example"],
        ),
        on(talker("mobile", BOB, Media::Audio), &["s.example"]),
    ]);
    let routes = rank(&caller, &callee, &servers, Media::Audio).expect("routes");
    assert_eq!(
        order(&routes),
        [
            "tv -> sip:mobile@s.example via s.example",
            "tv -> sip:desk@s.example via s.example",
            "pc -> sip:mobile@s.example via s.example",
            "pc -> sip:desk@s.example via s.example",
        ]
    );
    let ends: Vec<u8> = routes.iter().map(Route::offline_ends).collect();
    assert_eq!(ends, [0, 1, 1, 2]);
    let explanations: Vec<&str> = routes.iter().map(|r| r.explanation.as_str()).collect();
    assert_eq!(
        explanations,
        [
            "online · audio · cost 1 · your 1st choice",
            "callee offline · audio · cost 1 · your 1st choice",
            "your talker offline · audio · cost 1 · your 2nd choice",
            "both offline · audio · cost 1 · your 2nd choice",
        ]
    );
}

#[test]
fn video_asked_puts_video_on_both_ends_before_cost() {
    let servers = [server("cheap.example", 0), server("dear.example", 5)];
    let caller = caller(
        &["phone", "tv"],
        vec![
            on(talker("phone", ALICE, Media::Audio), &["cheap.example"]),
            on(talker("tv", ALICE, Media::Video), &["dear.example"]),
        ],
    );
    let callee = bob(vec![on(
        talker("bobtv", BOB, Media::Video),
        &["cheap.example", "dear.example"],
    )]);

    let video = rank(&caller, &callee, &servers, Media::Video).expect("routes");
    assert_eq!(
        order(&video),
        [
            "tv -> sip:bobtv@dear.example via dear.example",
            "phone -> sip:bobtv@cheap.example via cheap.example",
        ]
    );
    assert_eq!(video[0].media, Media::Video);
    assert!(video[0].media_supported);
    assert_eq!(video[1].media, Media::Audio);
    assert!(!video[1].media_supported);
    assert_eq!(
        video[0].explanation,
        "online · video on both · cost 5 · your 2nd choice"
    );
    assert_eq!(
        video[1].explanation,
        "online · audio only · cost 0 · your 1st choice"
    );

    // Asked for audio, both routes carry it: cost decides.
    let audio = rank(&caller, &callee, &servers, Media::Audio).expect("routes");
    assert_eq!(
        order(&audio),
        [
            "phone -> sip:bobtv@cheap.example via cheap.example",
            "tv -> sip:bobtv@dear.example via dear.example",
        ]
    );
}

#[test]
fn video_needs_video_on_both_ends() {
    let servers = [server("s.example", 1)];
    let caller = caller(
        &["tv"],
        vec![on(talker("tv", ALICE, Media::Video), &["s.example"])],
    );
    let callee = bob(vec![on(
        talker("bobphone", BOB, Media::Audio),
        &["s.example"],
    )]);
    let routes = rank(&caller, &callee, &servers, Media::Video).expect("routes");
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].media, Media::Audio);
    assert!(!routes[0].media_supported);
}

#[test]
fn lower_server_cost_ranks_first() {
    let servers = [
        server("a.example", 7),
        server("b.example", 2),
        server("c.example", 4),
    ];
    let caller = caller(
        &["pc"],
        vec![on(
            talker("pc", ALICE, Media::Audio),
            &["a.example", "b.example", "c.example"],
        )],
    );
    let callee = bob(vec![on(
        talker("bobpc", BOB, Media::Audio),
        &["a.example", "b.example", "c.example"],
    )]);
    let routes = rank(&caller, &callee, &servers, Media::Audio).expect("routes");
    let costs: Vec<u32> = routes.iter().map(|route| route.server.cost).collect();
    assert_eq!(costs, [2, 4, 7]);
    let ranks: Vec<usize> = routes.iter().map(|route| route.rank).collect();
    assert_eq!(ranks, [1, 2, 3]);
}

#[test]
fn the_callers_designation_order_breaks_equal_cost() {
    let servers = [server("s.example", 1)];
    let talkers = || {
        vec![
            on(talker("kitchen", ALICE, Media::Audio), &["s.example"]),
            on(talker("tv", ALICE, Media::Audio), &["s.example"]),
            on(talker("pc", ALICE, Media::Audio), &["s.example"]),
        ]
    };
    let callee = bob(vec![on(talker("bobpc", BOB, Media::Audio), &["s.example"])]);
    for designated in [["tv", "pc", "kitchen"], ["kitchen", "pc", "tv"]] {
        let routes = rank(
            &caller(&designated, talkers()),
            &callee,
            &servers,
            Media::Audio,
        )
        .expect("routes");
        let used: Vec<&str> = routes
            .iter()
            .map(|route| route.caller_talker.id.as_str())
            .collect();
        assert_eq!(used, designated);
        let designations: Vec<usize> = routes.iter().map(|route| route.designation).collect();
        assert_eq!(designations, [0, 1, 2]);
    }
}

#[test]
fn the_callees_preferred_talker_breaks_the_remaining_ties() {
    let servers = [server("s.example", 1)];
    let caller = caller(
        &["pc"],
        vec![on(talker("pc", ALICE, Media::Audio), &["s.example"])],
    );
    let desk = || on(talker("desk", BOB, Media::Audio), &["s.example"]);
    let mobile = || on(talker("mobile", BOB, Media::Audio), &["s.example"]);

    let routes = rank(
        &caller,
        &bob(vec![mobile(), desk()]),
        &servers,
        Media::Audio,
    )
    .expect("routes");
    assert_eq!(
        order(&routes),
        [
            "pc -> sip:mobile@s.example via s.example",
            "pc -> sip:desk@s.example via s.example",
        ]
    );
    let routes = rank(
        &caller,
        &bob(vec![desk(), mobile()]),
        &servers,
        Media::Audio,
    )
    .expect("routes");
    assert_eq!(
        order(&routes),
        [
            "pc -> sip:desk@s.example via s.example",
            "pc -> sip:mobile@s.example via s.example",
        ]
    );
    assert_eq!(routes[0].callee.preference, 0);
    assert_eq!(routes[0].callee.talker.as_deref(), Some("desk"));
}

#[test]
fn equal_routes_break_ties_by_aor_whatever_the_input_order() {
    let servers = [server("s.example", 1)];
    let pc = talker("pc", ALICE, Media::Audio);
    let accounts = vec![
        account(&pc, "zed", "s.example", true),
        account(&pc, "amy", "s.example", true),
        account(&pc, "kim", "s.example", true),
    ];
    let callee = bob(vec![on(talker("bobpc", BOB, Media::Audio), &["s.example"])]);
    let mut reversed = accounts.clone();
    reversed.reverse();
    for accounts in [accounts, reversed] {
        let caller = caller(
            &["pc"],
            vec![TalkerAccounts {
                talker: pc.clone(),
                accounts,
            }],
        );
        let routes = rank(&caller, &callee, &servers, Media::Audio).expect("routes");
        let aors: Vec<&str> = routes
            .iter()
            .map(|route| route.caller_account.aor.as_str())
            .collect();
        assert_eq!(
            aors,
            [
                "sip:amy@s.example",
                "sip:kim@s.example",
                "sip:zed@s.example"
            ]
        );
    }
}

#[test]
fn never_uses_another_users_talker_or_an_undesignated_one() {
    let servers = [server("s.example", 0)];
    let caller = caller(
        &["stolen", "mine"],
        vec![
            // Another user's talker, designated by id: never used.
            on(talker("stolen", MALLORY, Media::Video), &["s.example"]),
            // The caller's own but undesignated talker: never used.
            on(talker("spare", ALICE, Media::Video), &["s.example"]),
            on(
                seen(talker("mine", ALICE, Media::Audio), None),
                &["s.example"],
            ),
        ],
    );
    let callee = bob(vec![on(talker("bobtv", BOB, Media::Video), &["s.example"])]);
    let routes = rank(&caller, &callee, &servers, Media::Video).expect("routes");
    assert_eq!(
        order(&routes),
        ["mine -> sip:bobtv@s.example via s.example"]
    );
    // "mine" is the first usable designation.
    assert_eq!(routes[0].designation, 0);
}

#[test]
fn a_callee_talker_of_someone_else_is_never_a_target() {
    let servers = [server("s.example", 0)];
    let caller = caller(
        &["pc"],
        vec![on(talker("pc", ALICE, Media::Audio), &["s.example"])],
    );
    let callee = bob(vec![
        on(talker("notbobs", MALLORY, Media::Audio), &["s.example"]),
        on(talker("bobs", BOB, Media::Audio), &["s.example"]),
    ]);
    let routes = rank(&caller, &callee, &servers, Media::Audio).expect("routes");
    assert_eq!(order(&routes), ["pc -> sip:bobs@s.example via s.example"]);
    // Preference counts Bob's own talkers only.
    assert_eq!(routes[0].callee.preference, 0);
}

#[test]
fn only_designating_other_talkers_is_no_designated_talker() {
    let servers = [server("s.example", 0)];
    let callee = bob(vec![on(talker("bobpc", BOB, Media::Audio), &["s.example"])]);
    for caller in [
        caller(
            &["stolen"],
            vec![on(talker("stolen", MALLORY, Media::Audio), &["s.example"])],
        ),
        caller(
            &[],
            vec![on(talker("pc", ALICE, Media::Audio), &["s.example"])],
        ),
        caller(&["ghost"], vec![]),
    ] {
        let error = rank(&caller, &callee, &servers, Media::Audio).expect_err("no talker");
        assert_eq!(error, RouteError::NoDesignatedTalker);
        assert_eq!(error.code(), "no_designated_talker");
    }
}

#[test]
fn accounts_of_another_talker_and_duplicates_count_once_or_not_at_all() {
    let servers = [server("s.example", 0), server("t.example", 0)];
    let pc = talker("pc", ALICE, Media::Audio);
    let foreign = talker("mallorys", MALLORY, Media::Audio);
    let caller = CallerSide {
        user: ALICE,
        designated: vec!["pc".into(), "pc".into(), "tv".into()],
        talkers: vec![
            TalkerAccounts {
                talker: pc.clone(),
                accounts: vec![
                    account(&pc, "pc", "s.example", true),
                    account(&pc, "pc", "s.example", true),
                    // Listed under pc but belongs to another talker: ignored.
                    account(&foreign, "mallory", "t.example", true),
                ],
            },
            // A second entry for the same id counts nowhere.
            on(pc.clone(), &["t.example"]),
            on(talker("tv", ALICE, Media::Audio), &["s.example"]),
        ],
    };
    let callee = bob(vec![on(
        talker("bobpc", BOB, Media::Audio),
        &["s.example", "t.example"],
    )]);
    let routes = rank(&caller, &callee, &servers, Media::Audio).expect("routes");
    assert_eq!(
        order(&routes),
        [
            "pc -> sip:bobpc@s.example via s.example",
            "tv -> sip:bobpc@s.example via s.example",
        ]
    );
    assert_eq!(routes[1].designation, 1);
}

#[test]
fn no_shared_server_names_the_servers_of_each_side() {
    let servers = [
        server("home.example", 0),
        server("work.example", 1),
        server("carrier.example", 2),
    ];
    let caller = caller(
        &["pc", "tv"],
        vec![
            on(talker("pc", ALICE, Media::Audio), &["work.example"]),
            on(talker("tv", ALICE, Media::Audio), &["home.example"]),
        ],
    );
    let callee = bob(vec![on(
        talker("bobpc", BOB, Media::Audio),
        &["carrier.example"],
    )]);
    let error = rank(&caller, &callee, &servers, Media::Audio).expect_err("no shared server");
    assert_eq!(
        error,
        RouteError::NoSharedServer {
            caller_servers: vec!["home.example".into(), "work.example".into()],
            callee_servers: vec!["carrier.example".into()],
        }
    );
    assert_eq!(error.code(), "no_shared_server");
    assert_eq!(
        error.to_string(),
        "no shared server: your talkers are on [home.example, work.example], \
         the callee is on [carrier.example]"
    );
    let json = serde_json::to_value(&error).expect("json");
    assert_eq!(
        json,
        serde_json::json!({
            "code": "no_shared_server",
            "caller_servers": ["home.example", "work.example"],
            "callee_servers": ["carrier.example"],
        })
    );

    // A callee without any talker or account is reachable nowhere.
    let error = rank(&caller, &bob(vec![]), &servers, Media::Audio).expect_err("nowhere");
    assert_eq!(
        error,
        RouteError::NoSharedServer {
            caller_servers: vec!["home.example".into(), "work.example".into()],
            callee_servers: vec![],
        }
    );
}

#[test]
fn shared_servers_the_controller_cannot_use_are_no_usable_server() {
    let caller = caller(
        &["pc"],
        vec![on(
            talker("pc", ALICE, Media::Audio),
            &["closed.example", "unknown.example"],
        )],
    );
    let callee = bob(vec![on(
        talker("bobpc", BOB, Media::Audio),
        &["closed.example", "unknown.example"],
    )]);
    // unknown.example is missing from the registry's server list.
    let error = rank(
        &caller,
        &callee,
        &[untrusted("closed.example", 0)],
        Media::Audio,
    )
    .expect_err("no usable server");
    assert_eq!(
        error,
        RouteError::NoUsableServer {
            shared_servers: vec!["closed.example".into(), "unknown.example".into()],
        }
    );
    assert_eq!(error.code(), "no_usable_server");

    // With one usable shared server, only it is used, even though it costs more.
    let routes = rank(
        &caller,
        &callee,
        &[untrusted("closed.example", 0), server("unknown.example", 9)],
        Media::Audio,
    )
    .expect("routes");
    assert_eq!(
        order(&routes),
        ["pc -> sip:bobpc@unknown.example via unknown.example"]
    );
}

#[test]
fn a_plain_address_ranks_by_the_callers_side_and_carries_audio_unless_told() {
    let servers = [server("office.example", 1), server("home.example", 0)];
    let caller = caller(
        &["tv", "pc", "phone"],
        vec![
            on(
                seen(talker("tv", ALICE, Media::Video), None),
                &["office.example"],
            ),
            on(talker("pc", ALICE, Media::Video), &["office.example"]),
            on(
                talker("phone", ALICE, Media::Audio),
                &["office.example", "home.example"],
            ),
        ],
    );
    let desk = CalleeSide::address("sip:desk@office.example", "office.example");
    let routes = rank(&caller, &desk, &servers, Media::Video).expect("routes");
    assert_eq!(
        order(&routes),
        [
            "pc -> sip:desk@office.example via office.example",
            "phone -> sip:desk@office.example via office.example",
            "tv -> sip:desk@office.example via office.example",
        ]
    );
    assert!(routes.iter().all(|route| route.callee.online.is_none()));
    assert!(routes.iter().all(|route| route.callee.talker.is_none()));
    assert!(routes.iter().all(|route| route.media == Media::Audio));
    assert_eq!(
        routes[0].explanation,
        "your talker online · audio only · cost 1 · your 2nd choice"
    );
    assert!(routes[0].is_online());
    assert!(!routes[2].is_online());

    // Told that the address carries video, the video talker wins among online ones.
    let video_desk = CalleeSide::Address {
        aor: "sip:desk@office.example".into(),
        server: "office.example".into(),
        media: Media::Video,
        reachable: None,
    };
    let routes = rank(&caller, &video_desk, &servers, Media::Video).expect("routes");
    assert_eq!(routes[0].caller_talker.id, "pc");
    assert_eq!(routes[0].media, Media::Video);
    assert_eq!(
        routes[0].explanation,
        "your talker online · video on both · cost 1 · your 2nd choice"
    );

    let elsewhere = CalleeSide::address("sip:x@far.example", "far.example");
    let error = rank(&caller, &elsewhere, &servers, Media::Audio).expect_err("no shared");
    assert_eq!(
        error,
        RouteError::NoSharedServer {
            caller_servers: vec!["home.example".into(), "office.example".into()],
            callee_servers: vec!["far.example".into()],
        }
    );
}

#[test]
fn a_talker_never_calls_itself() {
    let servers = [server("s.example", 0)];
    let talkers = || {
        vec![
            on(talker("tv", ALICE, Media::Audio), &["s.example"]),
            on(talker("pc", ALICE, Media::Audio), &["s.example"]),
        ]
    };
    let caller = caller(&["tv"], talkers());
    let me = CalleeSide::User {
        user: ALICE,
        talkers: talkers(),
    };
    let routes = rank(&caller, &me, &servers, Media::Audio).expect("routes");
    assert_eq!(order(&routes), ["tv -> sip:pc@s.example via s.example"]);
}

#[test]
fn the_dialer_sees_one_view_per_talker_account_and_server_and_nothing_of_the_callee() {
    let servers = [server("s.example", 1), server("t.example", 2)];
    let caller = caller(
        &["pc"],
        vec![on(
            talker("pc", ALICE, Media::Audio),
            &["s.example", "t.example"],
        )],
    );
    let callee = bob(vec![
        on(
            talker("desk", BOB, Media::Audio),
            &["s.example", "t.example"],
        ),
        on(talker("mobile", BOB, Media::Audio), &["s.example"]),
        on(talker("tablet", BOB, Media::Audio), &["s.example"]),
    ]);
    let routes = rank(&caller, &callee, &servers, Media::Audio).expect("routes");
    assert_eq!(routes.len(), 4);
    let views = dialer_views(&routes);
    let json = serde_json::to_value(&views).expect("json");
    assert_eq!(
        json,
        serde_json::json!([
            {
                "rank": 1, "talker": "pc", "talker_name": "pc name",
                "account": "sip:pc@s.example", "server": "s.example", "cost": 1,
                "media": "audio", "talker_online": true, "online": true,
                "reason": "online · audio · cost 1 · your 1st choice",
            },
            {
                "rank": 2, "talker": "pc", "talker_name": "pc name",
                "account": "sip:pc@t.example", "server": "t.example", "cost": 2,
                "media": "audio", "talker_online": true, "online": true,
                "reason": "online · audio · cost 2 · your 1st choice",
            },
        ])
    );
    let text = json.to_string();
    for secret in ["desk", "mobile", "tablet", "bob"] {
        assert!(!text.contains(secret), "{secret} leaked in {text}");
    }
    assert_eq!(RouteView::from(&routes[3]).rank, 4);
}

#[test]
fn the_same_input_gives_the_same_ranking() {
    let servers = [server("s.example", 1), server("t.example", 1)];
    let build = |reverse: bool| {
        let mut talkers = vec![
            on(
                talker("tv", ALICE, Media::Video),
                &["s.example", "t.example"],
            ),
            on(
                talker("pc", ALICE, Media::Video),
                &["t.example", "s.example"],
            ),
        ];
        if reverse {
            talkers.reverse();
            for entry in &mut talkers {
                entry.accounts.reverse();
            }
        }
        caller(&["pc", "tv"], talkers)
    };
    let callee = bob(vec![on(
        talker("bobtv", BOB, Media::Video),
        &["s.example", "t.example"],
    )]);
    let forward = rank(&build(false), &callee, &servers, Media::Video).expect("routes");
    let backward = rank(&build(true), &callee, &servers, Media::Video).expect("routes");
    assert_eq!(forward, backward);
    assert_eq!(
        order(&forward),
        [
            "pc -> sip:bobtv@s.example via s.example",
            "pc -> sip:bobtv@t.example via t.example",
            "tv -> sip:bobtv@s.example via s.example",
            "tv -> sip:bobtv@t.example via t.example",
        ]
    );
}
