//! Keys and network results in, state changes and effects out: the dialer's
//! state machine without a terminal.

#![allow(clippy::unwrap_used)]

mod scenes;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use scenes::*;
use serde_json::json;
use splitdial_tui::app::{
    Action, App, Connection, Effect, ErrorPane, OwnerAction, Pane, REGISTRY_POLL_MS,
};
use splitdial_tui::config::{Config, ManualTalker};
use splitdial_tui::model::{AgentCall, CallState, Problem, TalkerCallKind, TalkerCallState};
use splitdial_tui::roster::{Presence, RouteMark};

fn loads_routes(effects: &[Effect]) -> Vec<(String, Vec<String>, bool)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::LoadRoutes {
                callee,
                talkers,
                video,
            } => Some((callee.clone(), talkers.clone(), *video)),
            _ => None,
        })
        .collect()
}

#[test]
fn start_loads_me_talkers_and_contacts() {
    let (app, effects) = App::new(&config());
    assert_eq!(
        effects,
        vec![Effect::LoadMe, Effect::LoadTalkers, Effect::LoadContacts]
    );
    assert_eq!(app.connection, Connection::Connecting);
}

#[test]
fn without_a_matcher_nothing_is_asked_and_the_pane_says_why() {
    let (mut app, effects) = App::new(&Config::default());
    assert!(effects.is_empty());
    assert_eq!(app.top_error(), Some(&ErrorPane::NotConfigured));
    assert!(app.update(Action::Tick).is_empty());
    assert!(app.update(ch('r')).is_empty());
}

#[test]
fn first_contact_gets_its_routes_once() {
    let mut scene = Scene::new();
    let effects = scene.apply([Action::Contacts(Ok(contacts()))]);
    assert_eq!(loads_routes(&effects), vec![("Bob".into(), vec![], false)]);
    // Nothing changed: no second request.
    assert!(loads_routes(&scene.apply([Action::Tick])).is_empty());
}

#[test]
fn moving_fast_asks_only_for_the_latest_routes() {
    let mut scene = Scene::household();
    // Bob's routes are loaded; j j j while the first request is in flight.
    let first = scene.apply([ch('j')]);
    assert_eq!(loads_routes(&first), vec![("Carol".into(), vec![], false)]);
    assert!(loads_routes(&scene.apply([ch('j'), ch('j')])).is_empty());
    assert_eq!(scene.app.selected_contact().unwrap().name, "Pizzeria");
    // Carol's answer arrives: it is stale, and Pizzeria's is asked now.
    let next = scene.apply([Action::Routes {
        callee: "Carol".into(),
        result: Ok(bob_routes(false)),
    }]);
    assert_eq!(
        loads_routes(&next),
        vec![("Pizzeria".into(), vec![], false)]
    );
}

#[test]
fn tab_switches_panes_and_arrows_move_within_them() {
    let mut scene = Scene::household();
    assert_eq!(scene.app.focus, Pane::Contacts);
    scene.apply([key(KeyCode::Down), ch('j'), ch('k')]);
    assert_eq!(scene.app.contact_cursor, 1);
    scene.apply([
        key(KeyCode::Tab),
        ch('j'),
        ch('j'),
        ch('j'),
        ch('j'),
        ch('j'),
        ch('j'),
    ]);
    assert_eq!(scene.app.focus, Pane::Talkers);
    assert_eq!(
        scene.app.talker_cursor,
        scene.app.rows.len() - 1,
        "stops at the end"
    );
    scene.apply([key(KeyCode::BackTab)]);
    assert_eq!(scene.app.focus, Pane::Contacts);
    scene.apply([key(KeyCode::Up), key(KeyCode::Up)]);
    assert_eq!(scene.app.contact_cursor, 0, "stops at the top");
}

#[test]
fn search_filters_contacts_and_esc_clears() {
    let mut scene = Scene::household();
    scene.apply([ch('/'), ch('P'), ch('i'), ch('z')]);
    assert!(scene.app.search.active);
    let names: Vec<_> = scene
        .app
        .visible_contacts()
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, vec!["Pizzeria"]);
    // Keys bound to commands are text while typing: 'q' does not quit.
    scene.apply([ch('q')]);
    assert!(!scene.app.should_quit);
    assert_eq!(scene.app.search.query, "Pizq");
    scene.apply([key(KeyCode::Backspace), key(KeyCode::Enter)]);
    assert!(!scene.app.search.active);
    assert_eq!(scene.app.search.query, "Piz");
    // Servers match too.
    scene.apply([
        key(KeyCode::Esc),
        ch('/'),
        ch('w'),
        ch('o'),
        ch('r'),
        ch('k'),
    ]);
    assert_eq!(scene.app.selected_contact().unwrap().name, "Carol");
    scene.apply([key(KeyCode::Esc)]);
    assert!(!scene.app.search.active);
    assert_eq!(scene.app.visible_contacts().len(), 4);
}

#[test]
fn designation_is_ordered_refuses_uncallable_talkers_and_reloads_routes() {
    let mut scene = Scene::household();
    scene.apply([key(KeyCode::Tab)]);
    // Study PC (not on LAN, online) first, then the TV.
    let effects = scene.apply([ch('j'), ch(' ')]);
    assert_eq!(
        loads_routes(&effects),
        vec![("Bob".into(), vec!["pc".into()], false)]
    );
    scene.apply([Action::Routes {
        callee: "Bob".into(),
        result: Ok(bob_routes(false)),
    }]);
    let effects = scene.apply([ch('k'), ch(' ')]);
    assert_eq!(scene.app.designated, vec!["pc".to_owned(), "tv".to_owned()]);
    assert_eq!(
        loads_routes(&effects),
        vec![("Bob".into(), vec!["pc".into(), "tv".into()], false)]
    );
    assert_eq!(scene.app.rows[0].designation, Some(2));
    assert_eq!(scene.app.rows[1].designation, Some(1));
    // The kitchen speaker is still being verified: refused, with the reason.
    scene.apply([ch('j'), ch('j'), ch(' ')]);
    assert_eq!(scene.app.designated.len(), 2);
    let notice = scene.app.notice.clone().unwrap();
    assert!(
        notice.error && notice.text.contains("being verified"),
        "{notice:?}"
    );
    // The neighbour's talker: never.
    scene.apply([ch('j'), ch('j'), ch(' ')]);
    assert_eq!(scene.app.designated.len(), 2);
    // Space again on the PC takes it out; the TV moves up.
    scene.apply([ch('k'), ch('k'), ch('k'), ch('k'), ch('j'), ch(' ')]);
    assert_eq!(scene.app.designated, vec!["tv".to_owned()]);
}

#[test]
fn video_toggle_reloads_routes_with_video() {
    let mut scene = Scene::household();
    let effects = scene.apply([ch('v')]);
    assert!(scene.app.video);
    assert_eq!(loads_routes(&effects), vec![("Bob".into(), vec![], true)]);
}

#[test]
fn a_registry_talker_seen_on_the_lan_is_verified_with_the_registry_key() {
    let mut scene = Scene::new();
    // Seen before the registry answered: nothing to check it with yet.
    let effects = scene.apply([Action::LanTalkerSeen(tv_ad())]);
    assert!(!effects.iter().any(|e| matches!(e, Effect::Verify { .. })));
    let effects = scene.apply([Action::RegisteredTalkers(Ok(registry()))]);
    assert_eq!(
        effects,
        vec![Effect::Verify {
            talker_id: "tv".into(),
            dialed: addr(20),
            public_key: "key-of-tv".into(),
        }]
    );
    // Seen again at the same address: no second challenge.
    assert!(scene.apply([Action::LanTalkerSeen(tv_ad())]).is_empty());
    // A neighbour's talker is never challenged.
    assert!(
        scene
            .apply([Action::LanTalkerSeen(stranger_ad())])
            .is_empty()
    );
    scene.apply([Action::Verified {
        talker_id: "tv".into(),
        dialed: addr(20),
        result: Ok(()),
    }]);
    assert_eq!(
        scene.app.rows[0].presence,
        Presence::Verified { manual: false }
    );
    // It moves: challenged again there, not callable until it answers.
    let mut moved = tv_ad();
    moved.addresses = vec![addr(44).ip()];
    let effects = scene.apply([Action::LanTalkerSeen(moved)]);
    assert_eq!(
        effects,
        vec![Effect::Verify {
            talker_id: "tv".into(),
            dialed: addr(44),
            public_key: "key-of-tv".into(),
        }]
    );
    assert_eq!(scene.app.rows[0].presence, Presence::Verifying);
    // A late answer for the old address changes nothing.
    scene.apply([Action::Verified {
        talker_id: "tv".into(),
        dialed: addr(20),
        result: Ok(()),
    }]);
    assert_eq!(scene.app.rows[0].presence, Presence::Verifying);
    scene.apply([Action::Verified {
        talker_id: "tv".into(),
        dialed: addr(44),
        result: Err("bad signature".into()),
    }]);
    assert_eq!(
        scene.app.rows[0].presence,
        Presence::Unverified("bad signature".into())
    );
    // Gone from the LAN: back to "not on LAN" (the registry says online).
    let mut gone = tv_ad();
    gone.addresses = vec![addr(44).ip()];
    scene.apply([Action::LanTalkerGone(gone)]);
    assert_eq!(scene.app.rows[0].presence, Presence::NotOnLan);
}

#[test]
fn manual_entries_are_verified_after_the_registry_answers() {
    let config = Config {
        talkers: vec![ManualTalker {
            id: "old".into(),
            address: addr(77),
        }],
        ..config()
    };
    let mut scene = Scene::with_config(&config);
    let effects = scene.apply([Action::RegisteredTalkers(Ok(registry()))]);
    assert_eq!(
        effects,
        vec![Effect::Verify {
            talker_id: "old".into(),
            dialed: addr(77),
            public_key: "key-of-old".into(),
        }]
    );
    scene.apply([Action::Verified {
        talker_id: "old".into(),
        dialed: addr(77),
        result: Ok(()),
    }]);
    let old = scene.app.rows.iter().find(|r| r.id == "old").unwrap();
    assert_eq!(old.presence, Presence::Verified { manual: true });
}

#[test]
fn polls_registry_every_10_s_and_verified_talkers_every_2_s_without_piling_up() {
    let mut scene = Scene::household();
    let polls = |effects: &[Effect]| {
        (
            effects
                .iter()
                .filter(|e| **e == Effect::LoadTalkers)
                .count(),
            effects
                .iter()
                .filter(|e| {
                    matches!(e, Effect::PollStatus { talker_id, public_key, .. }
                    if talker_id == "tv" && public_key == "key-of-tv")
                })
                .count(),
        )
    };
    // The verified TV is polled at the first tick; the registry answered at T0.
    scene.at(1000);
    assert_eq!(polls(&scene.apply([Action::Tick])), (0, 1));
    // Its answer has not come: no second poll at +3 s.
    scene.at(3000);
    assert_eq!(polls(&scene.apply([Action::Tick])), (0, 0));
    scene.apply([Action::TalkerStatus {
        talker_id: "tv".into(),
        result: Ok(status("tv", "Living room TV", vec![])),
    }]);
    scene.at(3100);
    assert_eq!(polls(&scene.apply([Action::Tick])), (0, 1));
    scene.apply([Action::TalkerStatus {
        talker_id: "tv".into(),
        result: Ok(status("tv", "Living room TV", vec![])),
    }]);
    scene.at(4200);
    assert_eq!(
        polls(&scene.apply([Action::Tick])),
        (0, 0),
        "2 s not over yet"
    );
    scene.at(REGISTRY_POLL_MS);
    assert_eq!(polls(&scene.apply([Action::Tick])).0, 1);
    scene.at(REGISTRY_POLL_MS + 5000);
    assert_eq!(polls(&scene.apply([Action::Tick])).0, 0, "still in flight");
}

#[test]
fn during_a_call_status_is_polled_every_second() {
    let mut scene = Scene::calling();
    scene.apply([Action::CallPlaced(Ok(call_info()))]);
    for second in 1..=3 {
        scene.at(second * 1000);
        let effects = scene.apply([Action::Tick]);
        assert!(
            effects
                .iter()
                .any(|e| matches!(e, Effect::PollStatus { .. })),
            "second {second}: {effects:?}"
        );
        scene.apply([Action::TalkerStatus {
            talker_id: "tv".into(),
            result: Ok(status("tv", "Living room TV", vec![])),
        }]);
    }
}

#[test]
fn enter_places_the_call_and_follows_it() {
    let mut scene = Scene::household();
    // No designation: every callable talker in list order.
    let effects = scene.apply([key(KeyCode::Enter)]);
    assert_eq!(
        effects,
        vec![Effect::PlaceCall {
            callee: "Bob".into(),
            talkers: vec!["tv".into(), "pc".into()],
            video: false,
        }]
    );
    // A second Enter while it runs places nothing.
    assert!(scene.apply([key(KeyCode::Enter)]).is_empty());
    let effects = scene.apply([Action::CallPlaced(Ok(call_info()))]);
    assert_eq!(effects, vec![Effect::FollowCall { call: "c-1".into() }]);
    scene.apply([
        event(1, CallState::Matching, 0, json!({})),
        event(2, CallState::DialingTalker, 100, json!({})),
        event(2, CallState::DialingTalker, 100, json!({})),
        event(3, CallState::TalkerAnswered, 800, json!({})),
        event(4, CallState::CalleeRinging, 1200, json!({})),
        event(5, CallState::Connected, 4000, json!({})),
    ]);
    let call = scene.app.call.as_ref().unwrap();
    assert_eq!(call.timeline.len(), 5, "a replayed event counts once");
    assert_eq!(call.state(), Some(CallState::Connected));
    scene.at(64_000);
    assert_eq!(
        scene
            .app
            .call
            .as_ref()
            .unwrap()
            .connected_for(scene.app.now),
        Some(64_000)
    );
    // An event of another call is not ours.
    scene.apply([Action::CallEvent(splitdial_tui::model::CallEvent {
        call: "c-2".into(),
        seq: 6,
        state: CallState::Ended,
        at: at(5000),
        detail: serde_json::from_value(json!({"reason": "hung_up"})).unwrap(),
    })]);
    assert!(scene.app.call_is_live());
    let effects = scene.apply([ch('h')]);
    assert_eq!(effects, vec![Effect::HangUp { call: "c-1".into() }]);
    assert!(scene.apply([ch('h')]).is_empty(), "one hang-up at a time");
    scene.apply([event(
        6,
        CallState::Ended,
        64_500,
        json!({"reason": "hung_up"}),
    )]);
    let call = scene.app.call.as_ref().unwrap();
    assert!(call.is_over());
    assert_eq!(
        call.timeline.last().unwrap().reason.as_deref(),
        Some("hung_up")
    );
    // Esc clears the finished call.
    scene.apply([key(KeyCode::Esc)]);
    assert!(scene.app.call.is_none());
}

#[test]
fn hang_up_before_the_matcher_answered_goes_out_with_the_answer() {
    let mut scene = Scene::calling();
    assert!(scene.apply([ch('h')]).is_empty());
    let effects = scene.apply([Action::CallPlaced(Ok(call_info()))]);
    assert_eq!(
        effects,
        vec![
            Effect::FollowCall { call: "c-1".into() },
            Effect::HangUp { call: "c-1".into() }
        ]
    );
}

#[test]
fn add_party_asks_for_the_selected_contact() {
    let mut scene = Scene::calling();
    scene.apply([Action::CallPlaced(Ok(call_info()))]);
    // Bob is already in it.
    scene.apply([key(KeyCode::Tab)]);
    assert!(scene.apply([ch('p')]).is_empty());
    let effects: Vec<Effect> = scene
        .apply([ch('j'), ch('p')])
        .into_iter()
        .filter(|e| !matches!(e, Effect::LoadRoutes { .. }))
        .collect();
    assert_eq!(
        effects,
        vec![Effect::AddParty {
            call: "c-1".into(),
            callee: "Carol".into(),
        }]
    );
    scene.apply([Action::PartyAdded(Ok(2))]);
    assert_eq!(scene.app.call.as_ref().unwrap().parties[0].number, Some(2));
}

#[test]
fn a_call_refused_for_no_shared_server_opens_its_pane() {
    let mut scene = Scene::household();
    scene.apply([key(KeyCode::Enter)]);
    scene.apply([Action::CallPlaced(Err(Problem::Refused {
        status: 409,
        code: "no_shared_server".into(),
        message: "no shared server".into(),
        caller_servers: vec!["family.example".into()],
        callee_servers: vec!["home.example".into()],
    }))]);
    assert!(matches!(
        scene.app.top_error(),
        Some(ErrorPane::NoSharedServer { callee, .. }) if callee == "Bob"
    ));
    assert!(!scene.app.call_is_live());
    scene.apply([key(KeyCode::Esc)]);
    assert!(scene.app.top_error().is_none());
    // The failed call stays visible until a second Esc.
    assert!(scene.app.call.is_some());
}

#[test]
fn an_unreachable_matcher_opens_one_pane_until_it_answers_again() {
    let mut scene = Scene::new();
    scene.apply([Action::RegisteredTalkers(Err(unreachable()))]);
    assert!(matches!(
        scene.app.top_error(),
        Some(ErrorPane::MatcherUnreachable { .. })
    ));
    scene.apply([key(KeyCode::Esc)]);
    // Failing again while still down does not reopen it.
    scene.apply([Action::Contacts(Err(unreachable()))]);
    assert!(scene.app.top_error().is_none());
    assert!(matches!(scene.app.connection, Connection::Unreachable(_)));
    // Down, then up: the pane goes by itself.
    scene.apply([Action::RegisteredTalkers(Ok(registry()))]);
    assert_eq!(scene.app.connection, Connection::Online);
    scene.apply([Action::Contacts(Err(unreachable()))]);
    assert!(scene.app.top_error().is_some());
    scene.apply([Action::Contacts(Ok(contacts()))]);
    assert!(scene.app.top_error().is_none());
}

#[test]
fn a_refused_token_opens_its_pane() {
    let mut scene = Scene::new();
    scene.apply([Action::Me(Err(Problem::Refused {
        status: 401,
        code: "unauthorized".into(),
        message: "token expired".into(),
        caller_servers: vec![],
        callee_servers: vec![],
    }))]);
    assert!(matches!(
        scene.app.top_error(),
        Some(ErrorPane::Unauthorized { .. })
    ));
    assert!(matches!(scene.app.connection, Connection::Unauthorized(_)));
}

#[test]
fn discovery_failure_opens_its_pane_and_keeps_the_registry() {
    let mut scene = Scene::household();
    scene.apply([Action::DiscoveryFailed("no such interface".into())]);
    assert!(matches!(
        scene.app.top_error(),
        Some(ErrorPane::DiscoveryFailed { .. })
    ));
    assert!(scene.app.rows.iter().any(|r| r.callable()));
}

#[test]
fn incoming_calls_are_answered_and_declined_on_their_talker() {
    let mut scene = Scene::household();
    let ringing = AgentCall {
        id: 3,
        kind: TalkerCallKind::Incoming,
        state: TalkerCallState::Ringing,
        sip_call_id: "a84b4c76e66710".into(),
        peer: "sip:carol@family.example".into(),
        media: None,
        held: None,
        dtmf_received: String::new(),
    };
    // Nothing rings yet.
    assert!(scene.apply([ch('a')]).is_empty());
    scene.apply([Action::TalkerStatus {
        talker_id: "tv".into(),
        result: Ok(status("tv", "Living room TV", vec![ringing])),
    }]);
    assert_eq!(scene.app.incoming_calls().len(), 1);
    let answer = Effect::OwnerAction {
        talker_id: "tv".into(),
        dialed: addr(20),
        // The key it was verified with: the owner token goes only over a
        // connection whose handshake proves it again.
        public_key: "key-of-tv".into(),
        call_id: 3,
        sip_call_id: "a84b4c76e66710".into(),
        action: OwnerAction::Answer,
    };
    assert_eq!(scene.apply([ch('a')]), vec![answer]);
    // Sent once until it is answered.
    assert!(scene.apply([ch('d')]).is_empty());
    scene.apply([Action::OwnerActionDone {
        talker_id: "tv".into(),
        action: OwnerAction::Answer,
        result: Err(Problem::Refused {
            status: 409,
            code: "action_not_applicable".into(),
            message: "already connected".into(),
            caller_servers: vec![],
            callee_servers: vec![],
        }),
    }]);
    assert!(scene.app.notice.as_ref().unwrap().error);
    let effects = scene.apply([ch('d')]);
    assert!(matches!(
        effects.as_slice(),
        [Effect::OwnerAction {
            action: OwnerAction::Decline,
            ..
        }]
    ));
}

#[test]
fn marks_follow_the_routes_answer() {
    let scene = Scene::household();
    let marks: Vec<_> = scene
        .app
        .rows
        .iter()
        .map(|r| (r.id.as_str(), &r.mark))
        .collect();
    assert!(matches!(
        marks[0],
        ("tv", RouteMark::Shared { rank: 1, .. })
    ));
    assert!(
        matches!(marks[1], ("pc", RouteMark::Unreachable(r)) if r.starts_with("no shared server: Study PC on work.example; Bob on home.example"))
    );
    assert!(matches!(marks[4], ("nb-tv", RouteMark::None)));
}

#[test]
fn help_swallows_keys_until_closed_and_quit_keys_quit() {
    let mut scene = Scene::household();
    scene.apply([ch('?')]);
    assert!(scene.app.help);
    assert!(scene.apply([key(KeyCode::Enter)]).is_empty());
    assert!(scene.app.call.is_none());
    scene.apply([key(KeyCode::Esc)]);
    assert!(!scene.app.help);
    scene.apply([ch('q')]);
    assert!(scene.app.should_quit);

    let mut scene = Scene::household();
    scene.apply([Action::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    ))]);
    assert!(scene.app.should_quit);
    let mut scene = Scene::household();
    scene.apply([Action::Quit]);
    assert!(scene.app.should_quit);
}

#[test]
fn configured_bindings_replace_the_defaults() {
    let config = Config {
        keys: toml::from_str("call = \"c\"\nquit = \"x\"").unwrap(),
        ..config()
    };
    let mut scene = Scene::with_config(&config);
    scene.apply([
        Action::RegisteredTalkers(Ok(registry())),
        Action::Contacts(Ok(contacts())),
        Action::LanTalkerSeen(tv_ad()),
        Action::Verified {
            talker_id: "tv".into(),
            dialed: addr(20),
            result: Ok(()),
        },
    ]);
    assert!(scene.apply([key(KeyCode::Enter)]).is_empty());
    assert!(matches!(
        scene.apply([ch('c')]).as_slice(),
        [Effect::PlaceCall { .. }]
    ));
    scene.apply([ch('q')]);
    assert!(!scene.app.should_quit);
    scene.apply([ch('x')]);
    assert!(scene.app.should_quit);
}
