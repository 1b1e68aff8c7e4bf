//! Where negotiated call legs meet the media worker (the `talker-media` process
//! that runs GStreamer, see [`super::worker`]): a leg's media starts on its
//! reserved ports, its live statistics are copied into the call registry while
//! it lives, and it ends with one `media summary` log line.
//!
//! A control leg's referred calls share a [`MediaHub`]: the first party gets a
//! plain session (audio and video); when a second party joins, both move into
//! an audio [`RemoteConference`] (each party hears the others and the local voice),
//! on the same ports, so nothing needs renegotiating.

use super::remote::{RemoteConference, RemoteSession};
use crate::calls::CallEntry;
use splitdial_media::{AllocatedPorts, LegId, MediaError, MediaSettings, MediaStats, Negotiated};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

/// How often live statistics are copied into the call registry.
const STATS_EVERY: Duration = Duration::from_millis(500);

/// What was heard during a leg: the analyzer looks only at the latest ~0.3 s,
/// which may already be silence when the call ends.
#[derive(Default)]
struct Heard {
    dominant: Option<f64>,
    all: Vec<f64>,
}

impl Heard {
    fn note(&mut self, stats: &MediaStats) {
        if let Some(sound) = &stats.sound
            && let Some(hz) = sound.dominant_frequency_hz
        {
            self.dominant = Some(hz);
            if !sound.frequencies_hz.is_empty() {
                self.all.clone_from(&sound.frequencies_hz);
            }
        }
    }
}

/// Logs the one-line summary of a leg (what was sent, what arrived, what was heard).
fn log_summary(stats: &MediaStats, heard: &Heard) {
    let all: Vec<String> = heard.all.iter().map(|f| format!("{f:.0}")).collect();
    info!(
        sent = stats.audio.as_ref().map_or(0, |a| a.packets_sent),
        received = stats.audio.as_ref().map_or(0, |a| a.packets_received),
        lost = stats.audio.as_ref().map_or(0, |a| a.packets_lost),
        heard_hz = heard
            .dominant
            .or_else(|| stats.sound.as_ref().and_then(|s| s.dominant_frequency_hz))
            .unwrap_or(0.0),
        heard_all = all.join(","),
        level_dbfs = stats.sound.as_ref().map_or(-120.0, |s| s.level_dbfs),
        video_frames = stats.picture.map_or(0, |p| p.frames),
        video_width = stats.picture.map_or(0, |p| p.width),
        video_height = stats.picture.map_or(0, |p| p.height),
        "media summary"
    );
}

/// The media of one call leg while it runs.
pub struct LegMedia {
    session: Arc<RemoteSession>,
    stop_stats: CancellationToken,
    heard: Arc<Mutex<Heard>>,
}

impl LegMedia {
    /// Runs the leg's media on a new plan (the far end re-offered inside the call: hold,
    /// resume, a new address, another codec), on the same ports; returns once it runs.
    /// On failure the media goes on with its previous plan (docs/media.md, "Updates").
    pub async fn update(&self, plan: &Negotiated) -> Result<(), MediaError> {
        self.session.update(plan).await
    }
}

/// Starts the media of a negotiated leg and keeps `entry`'s statistics current.
pub async fn start(
    plan: &Negotiated,
    settings: &MediaSettings,
    ports: AllocatedPorts,
    entry: Arc<CallEntry>,
) -> Result<LegMedia, MediaError> {
    let session = Arc::new(RemoteSession::start(plan, settings, ports).await?);
    let heard = Arc::new(Mutex::new(Heard::default()));
    let stop_stats = CancellationToken::new();
    let (watched, noted, stop) = (session.clone(), heard.clone(), stop_stats.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(STATS_EVERY) => {
                    match watched.stats().await {
                        Ok(stats) => {
                            if let Ok(mut h) = noted.lock() {
                                h.note(&stats);
                            }
                            entry.set_media(stats);
                        }
                        Err(e) => debug!(error = %e, "no media statistics"),
                    }
                }
            }
        }
    });
    Ok(LegMedia {
        session,
        stop_stats,
        heard,
    })
}

/// Stops the media of a leg (EOS and teardown in the worker), after its summary line.
pub async fn stop(media: LegMedia) {
    let session = finish(media).await;
    session.stop().await;
}

/// Ends a leg's statistics and logs its summary line; its session is left to the caller.
async fn finish(media: LegMedia) -> Arc<RemoteSession> {
    media.stop_stats.cancel();
    let stats = media
        .session
        .stats()
        .await
        .unwrap_or_else(|_| MediaStats::unused(&media.session.plan()));
    if let Ok(heard) = media.heard.lock() {
        log_summary(&stats, &heard);
    }
    media.session
}

/// The media of all referred calls of one control leg.
pub struct MediaHub {
    settings: MediaSettings,
    state: tokio::sync::Mutex<HubState>,
}

enum HubState {
    Idle,
    /// One party: a plain session (audio and video).
    Single {
        key: u64,
        leg: LegMedia,
        plan: Negotiated,
        entry: Arc<CallEntry>,
    },
    /// Several parties mixed locally (audio only).
    Mixed(Mixed),
}

/// The parties of a mix: call entry id → conference leg and its registry entry.
type MixedLegs = BTreeMap<u64, (LegId, Arc<CallEntry>)>;

struct Mixed {
    conference: Arc<RemoteConference>,
    legs: Arc<Mutex<MixedLegs>>,
    heard: Arc<Mutex<Heard>>,
    stop_stats: CancellationToken,
}

fn no_party(key: u64) -> MediaError {
    MediaError::Plan(format!("no media runs for party {key}"))
}

/// A plan without its video stream (the conference mixes audio only).
fn audio_only(plan: &Negotiated) -> Negotiated {
    Negotiated {
        audio: plan.audio.clone(),
        video: None,
    }
}

impl MediaHub {
    /// A hub for one control leg.
    pub fn new(settings: MediaSettings) -> Arc<Self> {
        Arc::new(Self {
            settings,
            state: tokio::sync::Mutex::new(HubState::Idle),
        })
    }

    /// Starts the media of a newly answered party, mixing as soon as there are two.
    pub async fn attach(
        &self,
        plan: &Negotiated,
        ports: AllocatedPorts,
        entry: Arc<CallEntry>,
    ) -> Result<(), MediaError> {
        let mut state = self.state.lock().await;
        match std::mem::replace(&mut *state, HubState::Idle) {
            HubState::Idle => {
                let leg = start(plan, &self.settings, ports, entry.clone()).await?;
                *state = HubState::Single {
                    key: entry.id(),
                    leg,
                    plan: plan.clone(),
                    entry,
                };
                Ok(())
            }
            HubState::Single {
                key,
                leg,
                plan: first_plan,
                entry: first_entry,
            } => {
                info!("a second party joins: mixing locally");
                // The mix starts before the single session stops, so the worker (and its
                // GStreamer) carries on instead of exiting and starting again.
                let conference = match RemoteConference::start(&self.settings).await {
                    Ok(c) => c,
                    Err(e) => {
                        *state = HubState::Single {
                            key,
                            leg,
                            plan: first_plan,
                            entry: first_entry,
                        };
                        return Err(e);
                    }
                };
                // The first party keeps the sockets its peer already sends to: the worker
                // moves them from the session into the mix.
                let first_session = finish(leg).await;
                let added = async {
                    let first_id = conference
                        .add_leg_from_session(&audio_only(&first_plan), &first_session)
                        .await?;
                    let second_id = conference.add_leg(&audio_only(plan), ports).await?;
                    Ok::<_, MediaError>((first_id, second_id))
                }
                .await;
                let (first_id, second_id) = match added {
                    Ok(ids) => ids,
                    Err(e) => {
                        conference.stop().await;
                        return Err(e);
                    }
                };
                let mut legs = BTreeMap::new();
                legs.insert(key, (first_id, first_entry));
                legs.insert(entry.id(), (second_id, entry));
                *state = HubState::Mixed(Mixed::start(conference, legs));
                Ok(())
            }
            HubState::Mixed(mixed) => {
                let result = mixed.conference.add_leg(&audio_only(plan), ports).await;
                if let Ok(id) = &result
                    && let Ok(mut legs) = mixed.legs.lock()
                {
                    legs.insert(entry.id(), (*id, entry));
                }
                *state = HubState::Mixed(mixed);
                result.map(|_| ())
            }
        }
    }

    /// Runs the media of party `key` (as in [`MediaHub::attach`]) on a new plan, once the
    /// far end re-offered: its plain session, or its conference leg (audio only counts
    /// there). On failure the party's media goes on with its previous plan.
    pub async fn update(&self, key: u64, plan: &Negotiated) -> Result<(), MediaError> {
        let mut state = self.state.lock().await;
        match &mut *state {
            HubState::Single {
                key: k,
                leg,
                plan: current,
                ..
            } if *k == key => {
                leg.update(plan).await?;
                // A later move into a mix takes the party's current plan.
                *current = plan.clone();
                Ok(())
            }
            HubState::Mixed(mixed) => {
                let leg = mixed
                    .legs
                    .lock()
                    .ok()
                    .and_then(|legs| legs.get(&key).map(|(id, _)| *id));
                let leg = leg.ok_or_else(|| no_party(key))?;
                mixed.conference.update_leg(leg, &audio_only(plan)).await
            }
            _ => Err(no_party(key)),
        }
    }

    /// Stops the media of a party that left.
    pub async fn detach(&self, key: u64) {
        let mut state = self.state.lock().await;
        match std::mem::replace(&mut *state, HubState::Idle) {
            HubState::Single { key: k, leg, .. } if k == key => stop(leg).await,
            HubState::Mixed(mixed) => {
                let leg = mixed.legs.lock().ok().and_then(|mut l| l.remove(&key));
                let remaining = mixed.legs.lock().map_or(0, |l| l.len());
                if let Some((id, _)) = leg
                    && let Err(e) = mixed.conference.remove_leg(id).await
                {
                    debug!(error = %e, "cannot remove a conference leg");
                }
                if remaining == 0 {
                    mixed.stop().await;
                } else {
                    *state = HubState::Mixed(mixed);
                }
            }
            other => *state = other,
        }
    }
}

impl Mixed {
    fn start(conference: RemoteConference, legs: MixedLegs) -> Self {
        let mixed = Self {
            conference: Arc::new(conference),
            legs: Arc::new(Mutex::new(legs)),
            heard: Arc::new(Mutex::new(Heard::default())),
            stop_stats: CancellationToken::new(),
        };
        let (conference, legs, heard, stop) = (
            mixed.conference.clone(),
            mixed.legs.clone(),
            mixed.heard.clone(),
            mixed.stop_stats.clone(),
        );
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(STATS_EVERY) => {
                        let stats = match conference.stats().await {
                            Ok(stats) => stats,
                            Err(e) => {
                                debug!(error = %e, "no conference statistics");
                                continue;
                            }
                        };
                        if let Ok(mut h) = heard.lock() {
                            h.note(&stats.local);
                        }
                        let Ok(legs) = legs.lock() else { continue };
                        for (leg_id, entry) in legs.values() {
                            if let Some((_, leg_stats)) = stats.legs.iter().find(|(id, _)| id == leg_id) {
                                let mut shown = leg_stats.clone();
                                shown.sound.clone_from(&stats.local.sound);
                                entry.set_media(shown);
                            }
                        }
                    }
                }
            }
        });
        mixed
    }

    async fn stop(self) {
        self.stop_stats.cancel();
        let stats = self.conference.stats().await.unwrap_or_default();
        if let Ok(heard) = self.heard.lock() {
            log_summary(&stats.local, &heard);
        }
        self.conference.stop().await;
    }
}
