//! Where negotiated call legs meet the media engine. GStreamer work (pipeline
//! set-up, state changes, teardown) blocks, so it runs on blocking threads;
//! live statistics are copied into the call registry while a leg lives, and
//! each leg ends with one `media summary` log line.
//!
//! A control leg's referred calls share a [`MediaHub`]: the first party gets a
//! plain session (audio and video); when a second party joins, both move into
//! an audio [`Conference`] (each party hears the others and the local voice),
//! on the same ports, so nothing needs renegotiating.

use crate::calls::CallEntry;
use crate::media::{
    AllocatedPorts, Conference, LegId, MediaError, MediaSession, MediaSettings, MediaStats,
    Negotiated,
};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

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

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MediaError> + Send + 'static,
) -> Result<T, MediaError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| MediaError::Pipeline(e.to_string()))?
}

/// The media of one call leg while it runs.
pub struct LegMedia {
    session: Arc<Mutex<Option<MediaSession>>>,
    stop_stats: CancellationToken,
    heard: Arc<Mutex<Heard>>,
}

/// Starts the media of a negotiated leg and keeps `entry`'s statistics current.
pub async fn start(
    plan: &Negotiated,
    settings: &MediaSettings,
    ports: AllocatedPorts,
    entry: Arc<CallEntry>,
) -> Result<LegMedia, MediaError> {
    let (plan, settings) = (plan.clone(), settings.clone());
    let session = blocking(move || MediaSession::start(&plan, &settings, ports)).await?;
    let session = Arc::new(Mutex::new(Some(session)));
    let heard = Arc::new(Mutex::new(Heard::default()));
    let stop_stats = CancellationToken::new();
    let (watched, noted, stop) = (session.clone(), heard.clone(), stop_stats.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(STATS_EVERY) => {
                    let stats = watched.lock().ok().and_then(|s| s.as_ref().map(MediaSession::stats));
                    if let Some(stats) = stats {
                        if let Ok(mut h) = noted.lock() {
                            h.note(&stats);
                        }
                        entry.set_media(stats);
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

/// Stops the media of a leg (EOS and teardown on a blocking thread).
pub async fn stop(media: LegMedia) {
    media.stop_stats.cancel();
    let session = media.session.lock().ok().and_then(|mut s| s.take());
    if let Some(session) = session {
        if let Ok(heard) = media.heard.lock() {
            log_summary(&session.stats(), &heard);
        }
        if let Err(e) = tokio::task::spawn_blocking(move || session.stop()).await {
            warn!(error = %e, "media teardown failed");
        }
    }
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
        audio_rtp: u16,
        entry: Arc<CallEntry>,
    },
    /// Several parties mixed locally (audio only).
    Mixed(Mixed),
}

/// The parties of a mix: call entry id → conference leg and its registry entry.
type MixedLegs = BTreeMap<u64, (LegId, Arc<CallEntry>)>;

struct Mixed {
    conference: Arc<Mutex<Option<Conference>>>,
    legs: Arc<Mutex<MixedLegs>>,
    heard: Arc<Mutex<Heard>>,
    stop_stats: CancellationToken,
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
                let audio_rtp = ports.audio_rtp;
                let leg = start(plan, &self.settings, ports, entry.clone()).await?;
                *state = HubState::Single {
                    key: entry.id(),
                    leg,
                    plan: plan.clone(),
                    audio_rtp,
                    entry,
                };
                Ok(())
            }
            HubState::Single {
                key,
                leg,
                plan: first_plan,
                audio_rtp,
                entry: first_entry,
            } => {
                info!("a second party joins: mixing locally");
                stop(leg).await;
                let settings = self.settings.clone();
                let ip: IpAddr = settings.local_ip;
                let (first, second) = (audio_only(&first_plan), audio_only(plan));
                let (conference, first_id, second_id) = blocking(move || {
                    let mut conference = Conference::new(&settings)?;
                    let first_ports = AllocatedPorts::rebind(ip, audio_rtp, None)?;
                    let first_id = conference.add_leg(&first, first_ports)?;
                    let second_id = conference.add_leg(&second, ports)?;
                    Ok((conference, first_id, second_id))
                })
                .await?;
                let mut legs = BTreeMap::new();
                legs.insert(key, (first_id, first_entry));
                legs.insert(entry.id(), (second_id, entry));
                *state = HubState::Mixed(Mixed::start(conference, legs));
                Ok(())
            }
            HubState::Mixed(mixed) => {
                let conference = mixed.conference.clone();
                let plan = audio_only(plan);
                let result = blocking(move || {
                    let mut guard = conference
                        .lock()
                        .map_err(|_| MediaError::Pipeline("conference lock".into()))?;
                    let conference = guard
                        .as_mut()
                        .ok_or_else(|| MediaError::Pipeline("conference stopped".into()))?;
                    conference.add_leg(&plan, ports)
                })
                .await;
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

    /// Stops the media of a party that left.
    pub async fn detach(&self, key: u64) {
        let mut state = self.state.lock().await;
        match std::mem::replace(&mut *state, HubState::Idle) {
            HubState::Single { key: k, leg, .. } if k == key => stop(leg).await,
            HubState::Mixed(mixed) => {
                let leg = mixed.legs.lock().ok().and_then(|mut l| l.remove(&key));
                let remaining = mixed.legs.lock().map_or(0, |l| l.len());
                if let Some((id, _)) = leg {
                    let conference = mixed.conference.clone();
                    let _ = blocking(move || {
                        if let Ok(mut guard) = conference.lock()
                            && let Some(c) = guard.as_mut()
                        {
                            c.remove_leg(id)?;
                        }
                        Ok(())
                    })
                    .await;
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
    fn start(conference: Conference, legs: MixedLegs) -> Self {
        let mixed = Self {
            conference: Arc::new(Mutex::new(Some(conference))),
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
                        let stats = conference.lock().ok().and_then(|c| c.as_ref().map(Conference::stats));
                        let Some(stats) = stats else { continue };
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
        let conference = self.conference.lock().ok().and_then(|mut c| c.take());
        if let Some(conference) = conference {
            if let Ok(heard) = self.heard.lock() {
                log_summary(&conference.stats().local, &heard);
            }
            if let Err(e) = tokio::task::spawn_blocking(move || conference.stop()).await {
                warn!(error = %e, "conference teardown failed");
            }
        }
    }
}
