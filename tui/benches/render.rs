//! Frame render time of the dialer with 100 talkers and 1000 contacts on
//! ratatui's `TestBackend` (80x24 and 200x60; p50/p99 over many frames), the
//! time from `App::new` to the first frame, and the memory the state holds.
//!
//! Run: `cargo bench -p splitdial-tui --bench render` (release profile).

// The counting allocator below is the only way to know the state's heap size
// without a profiler; it forwards every call to the system allocator.
#![allow(unsafe_code, clippy::unwrap_used, missing_docs)]

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use discovery::{Media, TalkerAd, TalkerId, TalkerKind, TalkerState};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use splitdial_tui::app::{Action, App};
use splitdial_tui::config::{Config, Secret, Theme};
use splitdial_tui::model::{
    Contact, ContactKind, RegisteredAccount, RegisteredTalker, RouteView, Routes,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const TALKERS: usize = 100;
const CONTACTS: usize = 1000;
const FRAMES: usize = 2000;
const SERVERS: [&str; 5] = [
    "family.example",
    "home.example",
    "work.example",
    "pbx.example.com",
    "carrier.example.net",
];

fn config() -> Config {
    Config {
        matcher_url: Some("http://127.0.0.1:8740".into()),
        token: Some(Secret::new("bench")),
        ..Config::default()
    }
}

fn registry() -> Vec<RegisteredTalker> {
    (0..TALKERS)
        .map(|i| RegisteredTalker {
            id: format!("talker-{i}"),
            name: format!("Talker number {i}"),
            kind: [
                TalkerKind::Tv,
                TalkerKind::Pc,
                TalkerKind::Phone,
                TalkerKind::Tablet,
                TalkerKind::Speaker,
            ][i % 5],
            media: Media::with_video(i % 2 == 0),
            public_key: format!("key-{i}"),
            software: Default::default(),
            online: i % 7 != 0,
            last_seen: Some(0),
            accounts: (0..2)
                .map(|k| {
                    let server = SERVERS[(i + k) % SERVERS.len()];
                    RegisteredAccount {
                        aor: format!("sip:t{i}@{server}"),
                        server: server.into(),
                        registered: true,
                    }
                })
                .collect(),
        })
        .collect()
}

fn contacts() -> Vec<Contact> {
    (0..CONTACTS)
        .map(|i| Contact {
            name: format!("Contact {i:04}"),
            kind: ContactKind::User,
            accepted: i % 13 != 0,
            servers: vec![SERVERS[i % SERVERS.len()].into()],
        })
        .collect()
}

fn ad(i: usize) -> TalkerAd {
    TalkerAd {
        id: TalkerId::new(format!("talker-{i}")).unwrap(),
        instance: format!("Talker number {i}"),
        kind: TalkerKind::Tv,
        media: Media::Video,
        servers: vec![],
        state: TalkerState::Idle,
        addresses: vec![IpAddr::V4(Ipv4Addr::new(
            10,
            0,
            (i / 250) as u8,
            (i % 250) as u8 + 1,
        ))],
        port: 8420,
    }
}

fn routes() -> Routes {
    Routes {
        callee: "Contact 0000".into(),
        media: Media::Audio,
        routes: (0..TALKERS)
            .filter(|i| i % 3 == 0)
            .enumerate()
            .map(|(rank, i)| RouteView {
                rank: rank + 1,
                talker: format!("talker-{i}"),
                talker_name: format!("Talker number {i}"),
                account: format!("sip:t{i}@family.example"),
                server: "family.example".into(),
                cost: 1,
                media: Media::Audio,
                talker_online: true,
                online: true,
                reason: "online · cost 1".into(),
            })
            .collect(),
    }
}

fn household(app: &mut App) {
    app.update(Action::RegisteredTalkers(Ok(registry())));
    app.update(Action::Contacts(Ok(contacts())));
    for i in 0..TALKERS {
        let ad = ad(i);
        let dialed = ad.socket_addrs()[0];
        app.update(Action::LanTalkerSeen(ad));
        if i % 4 != 3 {
            app.update(Action::Verified {
                talker_id: format!("talker-{i}"),
                dialed,
                result: Ok(()),
            });
        }
    }
    app.update(Action::Routes {
        callee: "Contact 0000".into(),
        result: Ok(routes()),
    });
    // The talkers pane focused half way down the list.
    app.update(Action::Key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)));
    for _ in 0..TALKERS / 2 {
        app.update(Action::Key(KeyEvent::new(
            KeyCode::Down,
            KeyModifiers::NONE,
        )));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn main() {
    let theme = Theme::default();
    let _unused: SocketAddr = "127.0.0.1:1".parse().unwrap();

    // Start to first frame: state, terminal, one draw (no network, no tty).
    let started = Instant::now();
    let (app, _effects) = App::new(&config());
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal
        .draw(|frame| splitdial_tui::ui::draw(frame, &app, &theme))
        .unwrap();
    let first_frame = started.elapsed();
    drop(app);

    let before = LIVE.load(Ordering::Relaxed);
    let (mut app, _) = App::new(&config());
    household(&mut app);
    let app_bytes = LIVE.load(Ordering::Relaxed) - before;

    println!("dialer render bench: {TALKERS} talkers, {CONTACTS} contacts, {FRAMES} frames");
    println!(
        "first frame (App::new + draw at 80x24): {:.3} ms",
        first_frame.as_secs_f64() * 1e3
    );
    println!(
        "App heap with the household: {:.1} KiB",
        app_bytes as f64 / 1024.0
    );
    for (width, height) in [(80, 24), (200, 60)] {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        let mut times = Vec::with_capacity(FRAMES);
        for frame_number in 0..FRAMES {
            // Alternate the cursor so every frame draws something new.
            let key = if frame_number % 2 == 0 {
                KeyCode::Down
            } else {
                KeyCode::Up
            };
            app.update(Action::Key(KeyEvent::new(key, KeyModifiers::NONE)));
            let t = Instant::now();
            terminal
                .draw(|frame| splitdial_tui::ui::draw(frame, &app, &theme))
                .unwrap();
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "render {width}x{height}: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
        );
    }
    // One update of the state (rows rebuilt, routes checked), for scale.
    let mut updates = Vec::with_capacity(FRAMES);
    for i in 0..FRAMES {
        let key = if i % 2 == 0 {
            KeyCode::Down
        } else {
            KeyCode::Up
        };
        let t = Instant::now();
        app.update(Action::Key(KeyEvent::new(key, KeyModifiers::NONE)));
        updates.push(t.elapsed());
    }
    updates.sort();
    println!(
        "update (one key, rows rebuilt): p50 {:.3} ms, p99 {:.3} ms",
        percentile(&updates, 0.5).as_secs_f64() * 1e3,
        percentile(&updates, 0.99).as_secs_f64() * 1e3,
    );
}
