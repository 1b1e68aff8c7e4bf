//! A household as the dialer sees it, built action by action, for the
//! snapshot and key tests: four registered talkers (two seen on the LAN),
//! a neighbour's talker, four contacts, routes to Bob.

#![allow(dead_code, clippy::unwrap_used)]

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use discovery::{Media, TalkerAd, TalkerId, TalkerKind, TalkerState};
use splitdial_tui::app::{Action, App, Effect};
use splitdial_tui::config::{Config, Theme};
use splitdial_tui::model::{
    AgentCall, CallEvent, CallInfo, CallState, Codec, Contact, Direction, Held, Me, MediaStats,
    PictureStats, Problem, RegisteredAccount, RegisteredTalker, RouteView, Routes, RtpStats,
    SoundStats, TalkerCallKind, TalkerCallState, TalkerStatus,
};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// 2025-03-01T12:00:00Z: every scene starts here.
pub const T0: i64 = 1_740_830_400_000;

pub fn config() -> Config {
    Config {
        matcher_url: Some("http://127.0.0.1:8740".to_owned()),
        token: Some(splitdial_tui::config::Secret::new("test-token")),
        ..Config::default()
    }
}

pub fn addr(last_octet: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 1, last_octet)), 8420)
}

fn talker(
    id: &str,
    name: &str,
    kind: &str,
    media: &str,
    online: bool,
    servers: &[&str],
) -> RegisteredTalker {
    RegisteredTalker {
        id: id.to_owned(),
        name: name.to_owned(),
        kind: kind.parse().unwrap(),
        media: media.parse().unwrap(),
        public_key: format!("key-of-{id}"),
        software: Default::default(),
        online,
        last_seen: Some(T0 / 1000 - 5),
        accounts: servers
            .iter()
            .map(|s| RegisteredAccount {
                aor: format!("sip:alice-{id}@{s}"),
                server: (*s).to_owned(),
                registered: online,
            })
            .collect(),
    }
}

pub fn registry() -> Vec<RegisteredTalker> {
    vec![
        talker(
            "tv",
            "Living room TV",
            "tv",
            "video",
            true,
            &["family.example", "home.example"],
        ),
        talker("pc", "Study PC", "pc", "video", true, &["work.example"]),
        talker(
            "kitchen",
            "Kitchen speaker",
            "speaker",
            "audio",
            true,
            &["home.example"],
        ),
        talker(
            "old",
            "Old phone",
            "phone",
            "audio",
            false,
            &["home.example"],
        ),
    ]
}

pub fn ad(id: &str, instance: &str, kind: TalkerKind, media: Media, last_octet: u8) -> TalkerAd {
    TalkerAd {
        id: TalkerId::new(id).unwrap(),
        instance: instance.to_owned(),
        kind,
        media,
        servers: vec![],
        state: TalkerState::Idle,
        addresses: vec![IpAddr::V4(Ipv4Addr::new(192, 168, 1, last_octet))],
        port: 8420,
    }
}

pub fn tv_ad() -> TalkerAd {
    ad("tv", "Living room TV", TalkerKind::Tv, Media::Video, 20)
}

pub fn kitchen_ad() -> TalkerAd {
    ad(
        "kitchen",
        "Kitchen speaker",
        TalkerKind::Speaker,
        Media::Audio,
        21,
    )
}

pub fn stranger_ad() -> TalkerAd {
    ad("nb-tv", "Neighbour's TV", TalkerKind::Tv, Media::Video, 30)
}

pub fn contact(name: &str, kind: &str, accepted: bool, servers: &[&str]) -> Contact {
    Contact {
        name: name.to_owned(),
        kind: kind.parse().unwrap(),
        accepted,
        servers: servers.iter().map(|s| (*s).to_owned()).collect(),
    }
}

pub fn contacts() -> Vec<Contact> {
    vec![
        contact("Bob", "user", true, &["home.example"]),
        contact("Carol", "user", true, &["family.example", "work.example"]),
        contact("Dave", "user", false, &[]),
        contact("Pizzeria", "address", true, &["pizza.example"]),
    ]
}

pub fn route(
    rank: usize,
    talker: &str,
    name: &str,
    server: &str,
    media: &str,
    reason: &str,
) -> RouteView {
    RouteView {
        rank,
        talker: talker.to_owned(),
        talker_name: name.to_owned(),
        account: format!("sip:alice-{talker}@{server}"),
        server: server.to_owned(),
        cost: 1,
        media: media.parse().unwrap(),
        talker_online: true,
        online: true,
        reason: reason.to_owned(),
    }
}

pub fn bob_routes(video: bool) -> Routes {
    Routes {
        callee: "Bob".to_owned(),
        media: Media::with_video(video),
        routes: vec![
            route(
                1,
                "tv",
                "Living room TV",
                "home.example",
                "video",
                "online · video on both · cost 1",
            ),
            route(
                2,
                "kitchen",
                "Kitchen speaker",
                "home.example",
                "audio",
                "online · cost 1",
            ),
        ],
    }
}

pub fn key(code: KeyCode) -> Action {
    Action::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub fn ch(c: char) -> Action {
    key(KeyCode::Char(c))
}

pub fn at(offset_ms: i64) -> String {
    // RFC 3339 of T0 + offset, the way the matcher writes it.
    let ms = T0 + offset_ms;
    let secs = ms / 1000 - T0 / 1000;
    let millis = ms % 1000;
    format!(
        "2025-03-01T12:{:02}:{:02}.{millis:03}Z",
        secs / 60,
        secs % 60
    )
}

pub fn event(seq: i64, state: CallState, offset_ms: i64, detail: serde_json::Value) -> Action {
    Action::CallEvent(CallEvent {
        call: "c-1".to_owned(),
        seq,
        state,
        at: at(offset_ms),
        detail: serde_json::from_value(detail).unwrap(),
    })
}

pub fn call_info() -> CallInfo {
    CallInfo {
        call: "c-1".to_owned(),
        state: CallState::Matching,
        reason: None,
        media: Media::Audio,
        route: Some(route(
            1,
            "tv",
            "Living room TV",
            "home.example",
            "video",
            "online",
        )),
        created_at: T0 / 1000,
        ended_at: None,
        events: "/v1/calls/c-1/events".to_owned(),
    }
}

pub fn unreachable() -> Problem {
    Problem::Unreachable {
        what: "matcher".to_owned(),
        message: "connect to 127.0.0.1:8740: connection refused".to_owned(),
    }
}

pub fn status(id: &str, name: &str, calls: Vec<AgentCall>) -> TalkerStatus {
    TalkerStatus {
        id: id.to_owned(),
        name: name.to_owned(),
        kind: TalkerKind::Tv,
        media: vec![Media::Audio, Media::Video],
        accounts: vec![],
        calls,
    }
}

/// The TV's connected leg to Bob, as its status reports it.
pub fn bob_leg(media: Option<MediaStats>, held: Option<Held>, dtmf_received: &str) -> AgentCall {
    AgentCall {
        id: 7,
        kind: TalkerCallKind::Referred,
        state: TalkerCallState::Connected,
        sip_call_id: "abc@tv".to_owned(),
        peer: "sip:bob@home.example".into(),
        media,
        held,
        dtmf_received: dtmf_received.to_owned(),
    }
}

pub fn media_stats() -> MediaStats {
    MediaStats {
        audio: Some(RtpStats {
            codec: Codec::Opus,
            direction: Direction::SendRecv,
            packets_sent: 2100,
            packets_received: 2096,
            packets_lost: 4,
            jitter_ms: 2.4,
        }),
        video: Some(RtpStats {
            codec: Codec::Vp8,
            direction: Direction::SendRecv,
            packets_sent: 3150,
            packets_received: 3149,
            packets_lost: 1,
            jitter_ms: 6.0,
        }),
        sound: Some(SoundStats {
            level_dbfs: -23.5,
            dominant_frequency_hz: Some(440.0),
            frequencies_hz: vec![440.0],
            samples: 2_016_000,
            sample_rate: 48_000,
            onsets_past_second_ms: vec![],
        }),
        picture: Some(PictureStats {
            frames: 1259,
            width: 640,
            height: 480,
        }),
        errors: vec![],
    }
}

/// An app and every effect it asked for so far.
pub struct Scene {
    pub app: App,
    pub effects: Vec<Effect>,
}

impl Scene {
    /// Started with the scenes' config at T0.
    pub fn new() -> Self {
        Self::with_config(&config())
    }

    pub fn with_config(config: &Config) -> Self {
        let (mut app, effects) = App::new(config);
        app.set_now(T0);
        Self { app, effects }
    }

    /// Applies actions; returns the effects they asked for.
    pub fn apply(&mut self, actions: impl IntoIterator<Item = Action>) -> Vec<Effect> {
        let mut out = Vec::new();
        for action in actions {
            out.extend(self.app.update(action));
        }
        self.effects.extend(out.clone());
        out
    }

    pub fn at(&mut self, offset_ms: i64) -> &mut Self {
        self.app.set_now(T0 + offset_ms);
        self
    }

    /// Registry, contacts, me, LAN (TV verified, kitchen being verified, a
    /// neighbour's talker), and Bob's routes answered.
    pub fn household() -> Self {
        let mut scene = Self::new();
        scene.apply([
            Action::Me(Ok(Me {
                id: 1,
                name: "alice".to_owned(),
                display_name: Some("Alice".to_owned()),
            })),
            Action::LanTalkerSeen(tv_ad()),
            Action::LanTalkerSeen(kitchen_ad()),
            Action::LanTalkerSeen(stranger_ad()),
            Action::RegisteredTalkers(Ok(registry())),
            Action::Contacts(Ok(contacts())),
            Action::Verified {
                talker_id: "tv".to_owned(),
                dialed: addr(20),
                result: Ok(()),
            },
            Action::Routes {
                callee: "Bob".to_owned(),
                result: Ok(bob_routes(false)),
            },
        ]);
        scene
    }

    /// The household with a call to Bob placed on the TV.
    pub fn calling() -> Self {
        let mut scene = Self::household();
        scene.apply([key(KeyCode::Tab), ch(' ')]);
        // The routes of the designation answer before Enter.
        scene.apply([Action::Routes {
            callee: "Bob".to_owned(),
            result: Ok(Routes {
                routes: bob_routes(false).routes.into_iter().take(1).collect(),
                ..bob_routes(false)
            }),
        }]);
        scene.apply([key(KeyCode::Enter)]);
        scene
    }

    pub fn render(&self, width: u16, height: u16) -> String {
        self.render_with(width, height, &Theme::default())
    }

    pub fn render_with(&self, width: u16, height: u16, theme: &Theme) -> String {
        render(&self.app, width, height, theme)
    }
}

pub fn terminal(
    app: &App,
    width: u16,
    height: u16,
    theme: &Theme,
) -> ratatui::Terminal<ratatui::backend::TestBackend> {
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| splitdial_tui::ui::draw(frame, app, theme))
        .unwrap();
    terminal
}

pub fn render(app: &App, width: u16, height: u16, theme: &Theme) -> String {
    terminal(app, width, height, theme).backend().to_string()
}
