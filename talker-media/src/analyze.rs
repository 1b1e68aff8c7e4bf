//! The `analyze` sinks: what arrives is measured, never played. Audio: level (RMS, dBFS), the
//! strongest spectral peaks (Hann-windowed FFT with parabolic interpolation) and the onset time
//! of sound after silence; video: frames and their size.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use splitdial_media::{PictureStats, SoundStats};

/// Below this level (dBFS) the signal counts as silence: no frequency is reported.
const SILENCE_DBFS: f64 = -55.0;
/// Sound onset threshold (dBFS) for [`SoundAnalyzer::onset`].
const ONSET_DBFS: f64 = -40.0;
/// Spectral peaks more than this many dB below the strongest are ignored.
const PEAK_RANGE_DB: f64 = 26.0;
/// Peaks closer than this (Hz) to a stronger one are the same tone.
const PEAK_SEPARATION_HZ: f64 = 30.0;
/// Lowest frequency reported (Hz): below it is hum and DC.
const LOWEST_HZ: f64 = 40.0;
/// At most this many peaks are reported.
const MAX_PEAKS: usize = 4;

struct SoundState {
    rate: u32,
    ring: VecDeque<f32>,
    samples: u64,
    sounding: bool,
    onset: Option<Instant>,
    onsets_past_second_ms: VecDeque<f64>,
    fft: Option<(usize, Arc<dyn Fft<f32>>)>,
}

/// Collects decoded audio (mono f32) and measures it on demand. Shared between the streaming
/// thread (which pushes) and the session (which reads).
pub struct SoundAnalyzer {
    state: Mutex<SoundState>,
}

impl Default for SoundAnalyzer {
    fn default() -> Self {
        Self::new()
    }
}

fn fft_len(rate: u32) -> usize {
    // About 0.3 s: ~3 Hz bins at 48 kHz, interpolated to well under 1 Hz for a pure tone.
    ((f64::from(rate) * 0.3) as usize)
        .next_power_of_two()
        .max(1024)
}

fn dbfs(rms: f64) -> f64 {
    if rms <= 1e-6 {
        -120.0
    } else {
        (20.0 * rms.log10()).max(-120.0)
    }
}

fn rms<'a>(samples: impl Iterator<Item = &'a f32>) -> f64 {
    let (sum, n) = samples.fold((0.0f64, 0usize), |(s, n), x| {
        (s + f64::from(*x) * f64::from(*x), n + 1)
    });
    if n == 0 { 0.0 } else { (sum / n as f64).sqrt() }
}

impl SoundAnalyzer {
    /// An analyzer that has seen nothing yet.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(SoundState {
                rate: 0,
                ring: VecDeque::new(),
                samples: 0,
                sounding: false,
                onset: None,
                onsets_past_second_ms: VecDeque::new(),
                fft: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SoundState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds mono samples (full scale ±1.0) that arrived at `rate` Hz and play now.
    pub fn push(&self, samples: &[f32], rate: u32) {
        self.push_played_at(samples, rate, SystemTime::now());
    }

    /// Adds mono samples (full scale ±1.0) at `rate` Hz whose first one played at `played`
    /// (wall clock).
    pub fn push_played_at(&self, samples: &[f32], rate: u32, played: SystemTime) {
        if rate == 0 || samples.is_empty() {
            return;
        }
        let mut s = self.lock();
        if s.rate != rate {
            s.rate = rate;
            s.ring.clear();
        }
        let cap = fft_len(rate);
        s.ring.extend(samples.iter().copied());
        let excess = s.ring.len().saturating_sub(cap);
        s.ring.drain(..excess);
        s.samples += samples.len() as u64;
        let level = dbfs(rms(samples.iter()));
        if level > ONSET_DBFS && !s.sounding {
            s.sounding = true;
            s.onset = Some(Instant::now());
            // The onset to the sample: the first one as loud as the threshold's RMS.
            let threshold = 10f32.powf(ONSET_DBFS as f32 / 20.0);
            let first_loud = samples.iter().position(|x| x.abs() >= threshold);
            let offset_s = first_loud.unwrap_or(0) as f64 / f64::from(rate);
            if let Some(past) = past_whole_second_ms(played, offset_s) {
                if s.onsets_past_second_ms.len() == SoundStats::MAX_ONSETS {
                    s.onsets_past_second_ms.pop_front();
                }
                s.onsets_past_second_ms.push_back(past);
            }
        } else if level < ONSET_DBFS - 6.0 {
            s.sounding = false;
        }
    }

    /// When sound last began after silence (monotonic clock), as seen by the sink.
    pub fn onset(&self) -> Option<Instant> {
        self.lock().onset
    }

    /// Measures the recent signal.
    pub fn stats(&self) -> SoundStats {
        let mut s = self.lock();
        let rate = s.rate;
        let mut out = SoundStats {
            level_dbfs: -120.0,
            dominant_frequency_hz: None,
            frequencies_hz: Vec::new(),
            samples: s.samples,
            sample_rate: rate,
            onsets_past_second_ms: s.onsets_past_second_ms.iter().copied().collect(),
        };
        if rate == 0 || s.ring.is_empty() {
            return out;
        }
        let recent = (rate as usize / 10).min(s.ring.len());
        out.level_dbfs = dbfs(rms(s.ring.iter().skip(s.ring.len() - recent)));
        let n = fft_len(rate);
        if out.level_dbfs < SILENCE_DBFS || s.ring.len() < n / 2 {
            return out;
        }
        let fft = match &s.fft {
            Some((len, f)) if *len == n => Arc::clone(f),
            _ => {
                let f = FftPlanner::<f32>::new().plan_fft_forward(n);
                s.fft = Some((n, Arc::clone(&f)));
                f
            }
        };
        let len = s.ring.len();
        let mut buf: Vec<Complex<f32>> = (0..n)
            .map(|i| {
                // Zero-pad at the front when fewer than n samples arrived yet.
                let x = if i + len >= n {
                    s.ring[i + len - n]
                } else {
                    0.0
                };
                let w = 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / n as f32).cos();
                Complex::new(x * w, 0.0)
            })
            .collect();
        drop(s);
        fft.process(&mut buf);
        out.frequencies_hz = peaks(&buf[..n / 2], rate, n);
        out.dominant_frequency_hz = out.frequencies_hz.first().copied();
        out
    }
}

/// How far past its whole second (wall clock, ms) the moment `offset_s` after `at` is.
fn past_whole_second_ms(at: SystemTime, offset_s: f64) -> Option<f64> {
    let since_epoch = at.duration_since(UNIX_EPOCH).ok()?;
    let subsec_s = f64::from(since_epoch.subsec_nanos()) / 1e9 + offset_s;
    Some(subsec_s.rem_euclid(1.0) * 1000.0)
}

/// The distinct strong peaks of a half spectrum, strongest first, in Hz.
fn peaks(spectrum: &[Complex<f32>], rate: u32, n: usize) -> Vec<f64> {
    let bin_hz = f64::from(rate) / n as f64;
    let mag: Vec<f64> = spectrum
        .iter()
        .map(|c| f64::from(c.norm()).max(1e-12))
        .collect();
    let first = ((LOWEST_HZ / bin_hz).ceil() as usize).max(1);
    if mag.len() < first + 2 {
        return Vec::new();
    }
    let max = mag[first..mag.len() - 1]
        .iter()
        .copied()
        .fold(0.0f64, f64::max);
    let floor = max * 10f64.powf(-PEAK_RANGE_DB / 20.0);
    let mut candidates: Vec<(f64, f64)> = (first..mag.len() - 1)
        .filter(|&k| mag[k] > floor && mag[k] > mag[k - 1] && mag[k] >= mag[k + 1])
        .map(|k| {
            let (a, b, c) = (mag[k - 1].ln(), mag[k].ln(), mag[k + 1].ln());
            let denom = a - 2.0 * b + c;
            let p = if denom.abs() > 1e-12 {
                0.5 * (a - c) / denom
            } else {
                0.0
            };
            ((k as f64 + p.clamp(-0.5, 0.5)) * bin_hz, mag[k])
        })
        .collect();
    candidates.sort_by(|x, y| y.1.total_cmp(&x.1));
    let mut chosen: Vec<f64> = Vec::new();
    for (f, _) in candidates {
        if chosen.iter().all(|c| (c - f).abs() > PEAK_SEPARATION_HZ) {
            chosen.push(f);
            if chosen.len() == MAX_PEAKS {
                break;
            }
        }
    }
    chosen
}

/// Counts decoded video frames and remembers their size.
#[derive(Default)]
pub struct PictureCounter {
    frames: AtomicU64,
    width: AtomicU32,
    height: AtomicU32,
}

impl PictureCounter {
    /// Records one decoded frame of the given size.
    pub fn frame(&self, width: u32, height: u32) {
        self.width.store(width, Ordering::Relaxed);
        self.height.store(height, Ordering::Relaxed);
        self.frames.fetch_add(1, Ordering::Relaxed);
    }

    /// What was counted so far.
    pub fn stats(&self) -> PictureStats {
        PictureStats {
            frames: self.frames.load(Ordering::Relaxed),
            width: self.width.load(Ordering::Relaxed),
            height: self.height.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freqs: &[f64], rate: u32, seconds: f64) -> Vec<f32> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                freqs
                    .iter()
                    .map(|f| 0.25 * (2.0 * std::f64::consts::PI * f * t).sin())
                    .sum::<f64>() as f32
            })
            .collect()
    }

    #[test]
    fn finds_a_single_tone_within_a_hertz() {
        for (f, rate) in [
            (440.0, 48_000),
            (1234.5, 48_000),
            (697.0, 8_000),
            (3100.0, 8_000),
        ] {
            let a = SoundAnalyzer::new();
            for chunk in tone(&[f], rate, 0.5).chunks(480) {
                a.push(chunk, rate);
            }
            let s = a.stats();
            let got = s.dominant_frequency_hz.expect("a frequency");
            assert!((got - f).abs() < 1.0, "{f} Hz at {rate}: got {got}");
            assert!(
                (s.level_dbfs - (-15.05)).abs() < 0.5,
                "level {}",
                s.level_dbfs
            );
            assert!(a.onset().is_some());
        }
    }

    #[test]
    fn finds_both_tones_of_a_mix_and_nothing_in_silence() {
        let a = SoundAnalyzer::new();
        a.push(&tone(&[523.0, 1789.0], 48_000, 0.4), 48_000);
        let s = a.stats();
        assert_eq!(s.frequencies_hz.len(), 2, "{s:?}");
        assert!(s.frequencies_hz.iter().any(|f| (f - 523.0).abs() < 1.0));
        assert!(s.frequencies_hz.iter().any(|f| (f - 1789.0).abs() < 1.0));

        let quiet = SoundAnalyzer::new();
        quiet.push(&vec![0.0; 48_000], 48_000);
        let s = quiet.stats();
        assert_eq!(s.dominant_frequency_hz, None);
        assert!(s.level_dbfs <= -119.0);
        assert!(quiet.onset().is_none());
    }

    #[test]
    fn an_onset_is_placed_in_its_second_to_the_sample() {
        let a = SoundAnalyzer::new();
        let second = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        // 10 ms buffers at 8 kHz: silence until 40 ms past the second, then a tone that
        // starts 5 ms (40 samples) into the buffer played at 40 ms.
        for k in 0..4u64 {
            let at = second + std::time::Duration::from_millis(10 * k);
            a.push_played_at(&[0.0; 80], 8_000, at);
        }
        let mut buffer = vec![0.0f32; 40];
        buffer.extend(tone(&[440.0], 8_000, 0.005).iter().map(|x| x * 2.0 + 0.2));
        a.push_played_at(
            &buffer,
            8_000,
            second + std::time::Duration::from_millis(40),
        );
        let s = a.stats();
        assert_eq!(s.onsets_past_second_ms.len(), 1, "{s:?}");
        assert!(
            (s.onsets_past_second_ms[0] - 45.0).abs() < 0.2,
            "{:?}",
            s.onsets_past_second_ms
        );
        // Sound that goes on is no new onset; one after silence is, up to MAX_ONSETS kept.
        for k in 0..40u64 {
            let at = second + std::time::Duration::from_millis(1000 * k + 1_050);
            a.push_played_at(&[0.5; 80], 8_000, at);
            a.push_played_at(&[0.5; 80], 8_000, at);
            a.push_played_at(&[0.0; 80], 8_000, at);
        }
        let s = a.stats();
        assert_eq!(s.onsets_past_second_ms.len(), SoundStats::MAX_ONSETS);
        assert!(
            s.onsets_past_second_ms
                .iter()
                .all(|ms| (ms - 50.0).abs() < 0.01)
        );
    }
}
