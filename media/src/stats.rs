//! Live statistics of a call's media as the media worker reports them: RTP counters per
//! stream, what an `analyze` sink measured, and a conference's view per leg. They reach the
//! status API and the `media summary` log line.
//!
//! A dialer reads them from a talker's status API, and the agent there may be older or newer
//! than the dialer: a field it adds is ignored (none of these types denies unknown fields),
//! and a count or measurement it lacks reads as zero or empty (`#[serde(default)]`), which the
//! worker, built with its agent, never relies on. What says what a report is has no neutral
//! value and stays required: a stream's `codec` and `direction`, a sound's `level_dbfs`
//! (0 dBFS would be full scale, not silence). docs/dialer.md, "Media statistics".

use serde::{Deserialize, Serialize};

use crate::plan::{Codec, Direction, Negotiated, StreamPlan};

/// Identifies one leg of a conference.
pub type LegId = u64;

/// RTP counters of one stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RtpStats {
    /// The negotiated codec.
    pub codec: Codec,
    /// What this side does with the stream.
    pub direction: Direction,
    /// RTP packets sent.
    #[serde(default)]
    pub packets_sent: u64,
    /// RTP packets received.
    #[serde(default)]
    pub packets_received: u64,
    /// Packets lost on the way in (from sequence numbers, RFC 3550 A.3).
    #[serde(default)]
    pub packets_lost: u64,
    /// Interarrival jitter of what arrives, in milliseconds (RFC 3550 A.8).
    #[serde(default)]
    pub jitter_ms: f64,
}

impl RtpStats {
    /// Zero counters for a stream that has not carried anything (yet).
    pub fn unused(plan: &StreamPlan) -> Self {
        Self {
            codec: plan.codec,
            direction: plan.direction,
            packets_sent: 0,
            packets_received: 0,
            packets_lost: 0,
            jitter_ms: 0.0,
        }
    }
}

/// Live statistics of a session, for the status API and tests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MediaStats {
    /// Audio RTP counters, when an audio stream was negotiated.
    pub audio: Option<RtpStats>,
    /// Video RTP counters, when a video stream was negotiated.
    pub video: Option<RtpStats>,
    /// What an `analyze` audio sink measured.
    pub sound: Option<SoundStats>,
    /// What an `analyze` video sink counted.
    pub picture: Option<PictureStats>,
    /// Errors the pipeline reported so far (the session keeps what still works running).
    #[serde(default)]
    pub errors: Vec<String>,
}

impl MediaStats {
    /// The statistics of a plan whose streams never ran (all counters zero, nothing measured).
    pub fn unused(plan: &Negotiated) -> Self {
        Self {
            audio: plan.audio.as_ref().map(RtpStats::unused),
            video: plan.video.as_ref().map(RtpStats::unused),
            ..Self::default()
        }
    }

    /// Replaces numbers JSON cannot carry (NaN, infinities) so a report always crosses
    /// the worker's pipe: levels become silence, jitter and frequencies zero.
    pub fn make_finite(&mut self) {
        fn finite(value: &mut f64, fallback: f64) {
            if !value.is_finite() {
                *value = fallback;
            }
        }
        for rtp in [&mut self.audio, &mut self.video].into_iter().flatten() {
            finite(&mut rtp.jitter_ms, 0.0);
        }
        if let Some(sound) = &mut self.sound {
            finite(&mut sound.level_dbfs, -120.0);
            if sound.dominant_frequency_hz.is_some_and(|f| !f.is_finite()) {
                sound.dominant_frequency_hz = None;
            }
            sound.frequencies_hz.retain(|f| f.is_finite());
            sound.onsets_past_second_ms.retain(|ms| ms.is_finite());
        }
    }
}

/// What an `analyze` audio sink measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SoundStats {
    /// RMS level of the last 100 ms in dBFS (a full-scale sine is -3 dBFS); -120 for silence.
    pub level_dbfs: f64,
    /// The strongest frequency of the last ~0.3 s, in Hz (none in silence).
    pub dominant_frequency_hz: Option<f64>,
    /// The distinct strong frequencies (within 26 dB of the strongest), strongest first.
    #[serde(default)]
    pub frequencies_hz: Vec<f64>,
    /// Samples received so far.
    #[serde(default)]
    pub samples: u64,
    /// Sample rate of what arrives, in Hz.
    #[serde(default)]
    pub sample_rate: u32,
    /// How far past its whole wall-clock second each recent sound onset was played, in ms,
    /// oldest first (at most [`SoundStats::MAX_ONSETS`]). From a `beeps:` sender on a clock
    /// in sync with this one, each is a mouth-to-ear latency.
    #[serde(default)]
    pub onsets_past_second_ms: Vec<f64>,
}

impl SoundStats {
    /// How many recent onsets [`SoundStats::onsets_past_second_ms`] keeps.
    pub const MAX_ONSETS: usize = 16;
}

/// What an `analyze` video sink counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PictureStats {
    /// Decoded frames received.
    #[serde(default)]
    pub frames: u64,
    /// Width of the last frame in pixels.
    #[serde(default)]
    pub width: u32,
    /// Height of the last frame in pixels.
    #[serde(default)]
    pub height: u32,
}

/// Statistics of a conference: the local sink and every leg.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConferenceStats {
    /// What the local sink gets (the mix of all parties); `sound` is set for `analyze`.
    pub local: MediaStats,
    /// Each leg's RTP counters, in the order the legs were added.
    pub legs: Vec<(LegId, MediaStats)>,
}

impl ConferenceStats {
    /// [`MediaStats::make_finite`] on the local sink and every leg.
    pub fn make_finite(&mut self) {
        self.local.make_finite();
        for (_, leg) in &mut self.legs {
            leg.make_finite();
        }
    }
}
