//! Where a negotiated call leg meets the media engine: the GStreamer session is
//! built on a blocking thread (pipeline set-up and state changes block), and its
//! statistics are copied into the call registry while the leg lives.

use crate::calls::CallEntry;
use crate::media::{AllocatedPorts, MediaError, MediaSession, MediaSettings, Negotiated};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// How often live statistics are copied into the call registry.
const STATS_EVERY: Duration = Duration::from_millis(500);

/// The media of one call leg while it runs.
pub struct LegMedia {
    session: Arc<Mutex<Option<MediaSession>>>,
    stop_stats: CancellationToken,
    /// The last tone heard (the analyzer only looks at the latest ~0.3 s, which
    /// may already be silence when the call ends).
    heard_hz: Arc<Mutex<Option<f64>>>,
}

/// Starts the media of a negotiated leg and keeps `entry`'s statistics current.
pub async fn start(
    plan: &Negotiated,
    settings: &MediaSettings,
    ports: AllocatedPorts,
    entry: Arc<CallEntry>,
) -> Result<LegMedia, MediaError> {
    let (plan, settings) = (plan.clone(), settings.clone());
    let session = tokio::task::spawn_blocking(move || MediaSession::start(&plan, &settings, ports))
        .await
        .map_err(|e| MediaError::Pipeline(e.to_string()))??;
    let stop_stats = CancellationToken::new();
    let session = Arc::new(Mutex::new(Some(session)));
    let (watched, stop) = (session.clone(), stop_stats.clone());
    let heard_hz = Arc::new(Mutex::new(None));
    let heard = heard_hz.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(STATS_EVERY) => {
                    let stats = watched.lock().ok().and_then(|s| s.as_ref().map(MediaSession::stats));
                    if let Some(stats) = stats {
                        if let Some(hz) = stats.sound.as_ref().and_then(|s| s.dominant_frequency_hz)
                            && let Ok(mut h) = heard.lock()
                        {
                            *h = Some(hz);
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
        heard_hz,
    })
}

/// Stops the media of a leg (EOS and teardown on a blocking thread).
pub async fn stop(media: LegMedia) {
    media.stop_stats.cancel();
    let session = media.session.lock().ok().and_then(|mut s| s.take());
    if let Some(session) = &session {
        // One structured line per leg: what was sent and what arrived.
        let stats = session.stats();
        let sound = stats.sound.as_ref();
        tracing::info!(
            sent = stats.audio.as_ref().map_or(0, |a| a.packets_sent),
            received = stats.audio.as_ref().map_or(0, |a| a.packets_received),
            lost = stats.audio.as_ref().map_or(0, |a| a.packets_lost),
            heard_hz = media
                .heard_hz
                .lock()
                .ok()
                .and_then(|h| *h)
                .or_else(|| sound.and_then(|s| s.dominant_frequency_hz))
                .unwrap_or(0.0),
            level_dbfs = sound.map_or(-120.0, |s| s.level_dbfs),
            video_frames = stats.picture.map_or(0, |p| p.frames),
            video_width = stats.picture.map_or(0, |p| p.width),
            video_height = stats.picture.map_or(0, |p| p.height),
            "media summary"
        );
    }
    if let Some(session) = session
        && let Err(e) = tokio::task::spawn_blocking(move || session.stop()).await
    {
        warn!(error = %e, "media teardown failed");
    }
}
