//! The running dialer: one loop that turns terminal events, a 1 s tick,
//! network results and SIGTERM/SIGINT into [`Action`]s, applies them to the
//! [`App`], hands the [`Effect`]s to [`Network`] (each runs in its own task,
//! so the screen never waits for the network), and draws after every batch.

use crate::app::{Action, App, Effect};
use crate::config::Config;
use crate::effects::Network;
use crate::lan;
use crate::terminal::TerminalGuard;
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::StreamExt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// Actions applied before one redraw at most (a burst of mDNS answers or
/// key repeats costs one frame, not one per action).
const BATCH: usize = 256;

/// How long the LAN watch gets to send its goodbyes on the way out.
const LAN_SHUTDOWN: Duration = Duration::from_secs(2);

/// The wall clock in Unix milliseconds (the state gets it injected).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Runs the dialer until the user quits or a signal arrives; restores the
/// terminal on every way out.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    let network = Network::new(&config)?;
    let theme = if config.no_color {
        config.theme.without_color()
    } else {
        config.theme.clone()
    };
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let (actions, mut inbox) = unbounded_channel();

    let (mut app, effects) = App::new(&config);
    app.set_now(now_ms());
    let mut guard = TerminalGuard::enter()?;
    guard
        .terminal()
        .draw(|frame| crate::ui::draw(frame, &app, &theme))?;
    tracing::info!(
        first_frame_ms = started.elapsed().as_secs_f64() * 1000.0,
        "first frame drawn"
    );
    perform(&network, effects, &actions);
    let lan_watch = match lan::watch(&config, actions.clone()) {
        Ok(watch) => Some(watch),
        Err(error) => {
            tracing::warn!(%error, "LAN discovery did not start");
            let _ = actions.send(Action::DiscoveryFailed(error.to_string()));
            None
        }
    };

    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let outcome: anyhow::Result<()> = loop {
        let first = tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) => terminal_action(&event),
                Some(Err(error)) => break Err(error.into()),
                // The terminal went away (SSH closed): nothing left to draw on.
                None => Some(Action::Quit),
            },
            _ = tick.tick() => Some(Action::Tick),
            action = inbox.recv() => action,
            _ = terminate.recv() => Some(Action::Quit),
            _ = interrupt.recv() => Some(Action::Quit),
            _ = hangup.recv() => Some(Action::Quit),
        };
        let Some(first) = first else { continue };
        apply_batch(&mut app, first, &mut inbox, &network, &actions);
        if app.should_quit {
            break Ok(());
        }
        if let Err(error) = guard
            .terminal()
            .draw(|frame| crate::ui::draw(frame, &app, &theme))
        {
            break Err(error.into());
        }
    };
    guard.restore();
    if let Some(watch) = lan_watch
        && tokio::time::timeout(LAN_SHUTDOWN, watch.shutdown())
            .await
            .is_err()
    {
        tracing::warn!("the LAN watch did not stop in time");
    }
    outcome
}

/// Applies `first` and whatever else is already waiting (up to [`BATCH`]).
fn apply_batch(
    app: &mut App,
    first: Action,
    inbox: &mut UnboundedReceiver<Action>,
    network: &Network,
    actions: &UnboundedSender<Action>,
) {
    let mut next = Some(first);
    let mut applied = 0;
    while let Some(action) = next.take() {
        app.set_now(now_ms());
        let effects = app.update(action);
        perform(network, effects, actions);
        applied += 1;
        if app.should_quit || applied >= BATCH {
            break;
        }
        next = inbox.try_recv().ok();
    }
}

fn perform(network: &Network, effects: Vec<Effect>, actions: &UnboundedSender<Action>) {
    for effect in effects {
        tracing::debug!(?effect, "effect");
        network.spawn(effect, actions.clone());
    }
}

/// The action a terminal event stands for (key releases and mouse moves: none).
pub fn terminal_action(event: &Event) -> Option<Action> {
    match *event {
        Event::Key(key) if key.kind != KeyEventKind::Release => Some(Action::Key(key)),
        Event::Resize(width, height) => Some(Action::Resize(width, height)),
        _ => None,
    }
}
