//! Every screen state of the dialer, drawn on ratatui's `TestBackend` at
//! 80x24 (the smallest supported terminal) and at 160x48, compared with the
//! committed snapshots in `tests/snapshots/`.

#![allow(clippy::unwrap_used)]

mod scenes;

use crossterm::event::KeyCode;
use ratatui::style::Color;
use scenes::*;
use serde_json::json;
use splitdial_tui::app::{Action, Effect};
use splitdial_tui::config::{Config, Theme};
use splitdial_tui::model::{AgentCall, CallState, Held, Problem, TalkerCallKind, TalkerCallState};

/// Snapshots one scene at both sizes.
fn snap(name: &str, scene: &Scene) {
    for (width, height) in [(80, 24), (160, 48)] {
        insta::assert_snapshot!(
            format!("{name}@{width}x{height}"),
            scene.render(width, height)
        );
    }
}

#[test]
fn empty() {
    let mut scene = Scene::new();
    scene.apply([
        Action::RegisteredTalkers(Ok(vec![])),
        Action::Contacts(Ok(vec![])),
    ]);
    snap("empty", &scene);
}

#[test]
fn discovering() {
    let mut scene = Scene::new();
    // The LAN answers before the registry: the talker cannot be judged yet.
    scene.apply([Action::LanTalkerSeen(tv_ad())]);
    snap("discovering", &scene);
}

#[test]
fn talkers_with_shared_server_marks() {
    let mut scene = Scene::household();
    scene.apply([key(KeyCode::Tab)]);
    snap("shared_server_marks", &scene);
}

#[test]
fn marks_with_a_designation_and_video() {
    let mut scene = Scene::household();
    scene.apply([key(KeyCode::Tab), ch(' '), ch('v')]);
    // The designation's answer comes first; the video change was waiting for it.
    scene.apply([
        Action::Routes {
            callee: "Bob".to_owned(),
            result: Ok(bob_routes(false)),
        },
        Action::Routes {
            callee: "Bob".to_owned(),
            result: Ok(bob_routes(true)),
        },
    ]);
    snap("designated_video", &scene);
}

#[test]
fn no_shared_server_marks() {
    let mut scene = Scene::household();
    // Carol: family.example and work.example.
    scene.apply([ch('j')]);
    scene.apply([Action::Routes {
        callee: "Carol".to_owned(),
        result: Ok(splitdial_tui::model::Routes {
            callee: "Carol".to_owned(),
            media: splitdial_tui::model::Media::Audio,
            routes: vec![
                route(
                    1,
                    "tv",
                    "Living room TV",
                    "family.example",
                    "audio",
                    "online · cost 1",
                ),
                route(
                    2,
                    "pc",
                    "Study PC",
                    "work.example",
                    "audio",
                    "online · cost 2",
                ),
            ],
        }),
    }]);
    scene.apply([key(KeyCode::Tab), ch('j'), ch('j')]);
    snap("no_shared_server_marks", &scene);
}

#[test]
fn unverified_talker() {
    let mut scene = Scene::household();
    scene.apply([
        Action::Verified {
            talker_id: "kitchen".to_owned(),
            dialed: addr(21),
            result: Err("signature does not match the registry key".to_owned()),
        },
        key(KeyCode::Tab),
        ch('j'),
        ch('j'),
    ]);
    snap("unverified_talker", &scene);
}

#[test]
fn not_mine_talker() {
    let mut scene = Scene::household();
    scene.apply([key(KeyCode::Tab), ch('j'), ch('j'), ch('j'), ch('j')]);
    snap("not_mine_talker", &scene);
}

#[test]
fn sip_phone_talker() {
    // A desk phone added with `matcher talker add`: never challenged, online
    // by the matcher's probes, designated like any other talker.
    let mut registry = scenes::registry();
    let mut desk = registry[0].clone();
    desk.id = "desk".to_owned();
    desk.name = "Desk phone".to_owned();
    desk.kind = splitdial_tui::model::TalkerKind::Phone;
    desk.media = splitdial_tui::model::Media::Audio;
    desk.public_key = String::new();
    desk.software = splitdial_tui::model::TalkerSoftware::SipPhone;
    registry.push(desk);
    let mut scene = Scene::household();
    scene.apply([Action::RegisteredTalkers(Ok(registry))]);
    let effects = scene.apply([
        key(KeyCode::Tab),
        ch('j'),
        ch('j'),
        ch('j'),
        ch('j'),
        ch(' '),
    ]);
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::Verify { talker_id, .. } if talker_id == "desk")),
        "a SIP phone is never challenged: {effects:?}"
    );
    snap("sip_phone_talker", &scene);
}

#[test]
fn search() {
    let mut scene = Scene::household();
    scene.apply([ch('/'), ch('c'), ch('a')]);
    snap("search", &scene);
}

#[test]
fn call_requesting() {
    let scene = Scene::calling();
    snap("call_requesting", &scene);
}

fn placed() -> Scene {
    let mut scene = Scene::calling();
    scene.at(150);
    scene.apply([Action::CallPlaced(Ok(call_info()))]);
    scene.at(200);
    scene.apply([
        event(1, CallState::Matching, 0, json!({})),
        event(2, CallState::DialingTalker, 120, json!({})),
    ]);
    scene
}

#[test]
fn call_talker_answered() {
    let mut scene = placed();
    scene.at(900);
    scene.apply([event(3, CallState::TalkerAnswered, 870, json!({}))]);
    snap("call_talker_answered", &scene);
}

fn ringing() -> Scene {
    let mut scene = placed();
    scene.at(1500);
    scene.apply([
        event(3, CallState::TalkerAnswered, 870, json!({})),
        event(4, CallState::CalleeRinging, 1430, json!({})),
    ]);
    scene
}

#[test]
fn call_callee_ringing() {
    snap("call_callee_ringing", &ringing());
}

fn connected() -> Scene {
    let mut scene = ringing();
    scene.at(4200);
    scene.apply([event(5, CallState::Connected, 4100, json!({}))]);
    scene.at(4200 + 42_000);
    scene.apply([Action::Tick]);
    scene
}

#[test]
fn call_connected() {
    snap("call_connected", &connected());
}

#[test]
fn call_statistics() {
    let mut scene = connected();
    scene.apply([Action::TalkerStatus {
        talker_id: "tv".to_owned(),
        result: Ok(status(
            "tv",
            "Living room TV",
            vec![bob_leg(Some(media_stats()), None, "")],
        )),
    }]);
    snap("call_statistics", &scene);
}

/// The connected call to Bob, with the TV reporting its leg as `leg`.
fn connected_with_leg(leg: AgentCall) -> Scene {
    let mut scene = connected();
    scene.apply([Action::TalkerStatus {
        talker_id: "tv".to_owned(),
        result: Ok(status("tv", "Living room TV", vec![leg])),
    }]);
    scene
}

#[test]
fn call_held_by_the_callee_who_pressed_keys() {
    let scene = connected_with_leg(bob_leg(Some(media_stats()), Some(Held::ByPeer), "12#"));
    let screen = scene.render(80, 24);
    assert!(screen.contains("held by Bob"), "{screen}");
    assert!(screen.contains("keys 1 2 #"), "{screen}");
    assert!(screen.contains(" held "), "the TV's state column: {screen}");
    snap("call_held_by_peer", &scene);
}

#[test]
fn call_on_hold_by_my_talker() {
    let scene = connected_with_leg(bob_leg(None, Some(Held::ByUs), ""));
    let screen = scene.render(80, 24);
    assert!(screen.contains("on hold"), "{screen}");
    assert!(
        !screen.contains("held by") && !screen.contains("keys"),
        "{screen}"
    );
    snap("call_on_hold", &scene);
}

#[test]
fn many_keys_show_the_latest_that_fit() {
    let scene = connected_with_leg(bob_leg(
        Some(media_stats()),
        None,
        "0123456789*#ABCD0123456789*#ABCD",
    ));
    let screen = scene.render(80, 24);
    assert!(!screen.contains("held"), "not held: {screen}");
    assert!(screen.contains("keys … "), "{screen}");
    assert!(
        screen.contains("A B C D│") || screen.contains("A B C D "),
        "{screen}"
    );
    snap("call_many_keys", &scene);
}

#[test]
fn a_resumed_or_finished_call_shows_no_hold() {
    let mut scene = connected_with_leg(bob_leg(None, Some(Held::ByPeer), "5"));
    assert!(scene.render(80, 24).contains("held by Bob"));
    // Resumed: the next status says so.
    scene.apply([Action::TalkerStatus {
        talker_id: "tv".to_owned(),
        result: Ok(status(
            "tv",
            "Living room TV",
            vec![bob_leg(None, None, "5")],
        )),
    }]);
    let screen = scene.render(80, 24);
    assert!(!screen.contains("held"), "{screen}");
    assert!(screen.contains("in call"), "{screen}");
    assert!(
        screen.contains("keys 5"),
        "the keys stay with the call: {screen}"
    );
    // Held again, then the call ends before the talker's status catches up.
    scene.apply([Action::TalkerStatus {
        talker_id: "tv".to_owned(),
        result: Ok(status(
            "tv",
            "Living room TV",
            vec![bob_leg(None, Some(Held::ByPeer), "5")],
        )),
    }]);
    scene.at(4200 + 65_000);
    scene.apply([event(
        6,
        CallState::Ended,
        4100 + 64_300,
        json!({"reason": "callee_hung_up"}),
    )]);
    let screen = scene.render(80, 24);
    assert!(screen.contains("ended: the callee hung up"), "{screen}");
    assert!(
        !screen.contains("held by") && !screen.contains("keys"),
        "{screen}"
    );
}

#[test]
fn call_ended_with_reason() {
    let mut scene = connected();
    scene.at(4200 + 65_000);
    scene.apply([event(
        6,
        CallState::Ended,
        4100 + 64_300,
        json!({"reason": "callee_hung_up"}),
    )]);
    snap("call_ended", &scene);
}

#[test]
fn call_ended_busy() {
    let mut scene = ringing();
    scene.at(3000);
    scene.apply([event(
        5,
        CallState::Ended,
        2950,
        json!({"reason": "callee_busy", "sip_code": 486}),
    )]);
    snap("call_ended_busy", &scene);
}

#[test]
fn incoming_call_on_my_talker() {
    let mut scene = Scene::household();
    scene.apply([Action::TalkerStatus {
        talker_id: "tv".to_owned(),
        result: Ok(status(
            "tv",
            "Living room TV",
            vec![AgentCall {
                id: 3,
                kind: TalkerCallKind::Incoming,
                state: TalkerCallState::Ringing,
                sip_call_id: "a84b4c76e66710".to_owned(),
                peer: "sip:carol@family.example".into(),
                media: None,
                held: None,
                dtmf_received: String::new(),
            }],
        )),
    }]);
    snap("incoming_call", &scene);
}

#[test]
fn an_answered_incoming_call_held_by_its_caller() {
    let mut scene = Scene::household();
    scene.apply([Action::TalkerStatus {
        talker_id: "tv".to_owned(),
        result: Ok(status(
            "tv",
            "Living room TV",
            vec![AgentCall {
                id: 3,
                kind: TalkerCallKind::Incoming,
                state: TalkerCallState::Connected,
                sip_call_id: "a84b4c76e66710".to_owned(),
                peer: "sip:carol@family.example".into(),
                media: None,
                held: Some(Held::ByPeer),
                dtmf_received: "4#".to_owned(),
            }],
        )),
    }]);
    let screen = scene.render(80, 24);
    assert!(screen.contains("held by the caller"), "{screen}");
    snap("incoming_call_held", &scene);
}

#[test]
fn error_not_configured() {
    let scene = Scene::with_config(&Config::default());
    snap("error_not_configured", &scene);
}

#[test]
fn error_matcher_unreachable() {
    let mut scene = Scene::new();
    scene.apply([
        Action::LanTalkerSeen(tv_ad()),
        Action::RegisteredTalkers(Err(unreachable())),
        Action::Contacts(Err(unreachable())),
    ]);
    snap("error_matcher_unreachable", &scene);
}

#[test]
fn error_token_refused() {
    let mut scene = Scene::new();
    scene.apply([Action::RegisteredTalkers(Err(Problem::Refused {
        status: 401,
        code: "unauthorized".to_owned(),
        message: "token expired or unknown".to_owned(),
        caller_servers: vec![],
        callee_servers: vec![],
    }))]);
    snap("error_token_refused", &scene);
}

#[test]
fn error_no_shared_server() {
    let mut scene = Scene::household();
    scene.apply([ch('j'), ch('j'), ch('j'), key(KeyCode::Enter)]);
    scene.apply([Action::CallPlaced(Err(Problem::Refused {
        status: 409,
        code: "no_shared_server".to_owned(),
        message: "no server shared with Pizzeria".to_owned(),
        caller_servers: vec![
            "family.example".to_owned(),
            "home.example".to_owned(),
            "work.example".to_owned(),
        ],
        callee_servers: vec!["pizza.example".to_owned()],
    }))]);
    snap("error_no_shared_server", &scene);
}

#[test]
fn error_discovery_failed() {
    let mut scene = Scene::household();
    scene.apply([Action::DiscoveryFailed(
        "mDNS on eth0: no such interface".to_owned(),
    )]);
    snap("error_discovery_failed", &scene);
}

#[test]
fn help_overlay() {
    let mut scene = Scene::household();
    scene.apply([ch('?')]);
    snap("help", &scene);
}

#[test]
fn help_lists_the_effective_bindings() {
    let config: Config = Config {
        keys: toml::from_str("call = [\"c\", \"enter\"]\nquit = \"ctrl-q\"").unwrap(),
        ..config()
    };
    let mut scene = Scene::with_config(&config);
    scene.apply([ch('?')]);
    insta::assert_snapshot!("help_custom_keys@80x24", scene.render(80, 24));
}

#[test]
fn no_color() {
    let mut scene = connected();
    scene.apply([Action::TalkerStatus {
        talker_id: "tv".to_owned(),
        result: Ok(status("tv", "Living room TV", vec![])),
    }]);
    let theme = Theme::default().without_color();
    let terminal = terminal(&scene.app, 80, 24, &theme);
    let buffer = terminal.backend().buffer();
    for cell in &buffer.content {
        assert!(
            matches!(cell.fg, Color::Reset) && matches!(cell.bg, Color::Reset),
            "a coloured cell under NO_COLOR: {cell:?}"
        );
    }
    // The text is the same as in colour; the styles are modifiers only.
    assert_eq!(
        terminal.backend().to_string(),
        scene.render(80, 24),
        "NO_COLOR changes no text"
    );
    insta::assert_debug_snapshot!("no_color_styles@80x24", buffer);
}

#[test]
fn tiny_terminal_does_not_panic() {
    let scene = connected();
    for (width, height) in [(1, 1), (10, 3), (20, 5), (40, 10), (79, 23)] {
        let _ = scene.render(width, height);
    }
}
