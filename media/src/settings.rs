//! What a talker sends and plays: sources, sinks and the latency knobs, parsed from the
//! configuration strings (`auto`, `tone:440`, `beeps:440`, `file:/path`, `pattern`, `analyze`,
//! `none`).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::SettingsError;

/// How long each burst of a `beeps:` source sounds, from its whole second, in ms.
pub const BEEP_MS: u32 = 250;

/// Where the talker's voice comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum AudioSource {
    /// The default capture device (`auto`); silence with a warning when there is none.
    Auto,
    /// A sine tone at this frequency (`tone:440`), e.g. for tests and demos.
    Tone {
        /// Tone frequency in Hz (1..=20000).
        frequency_hz: f64,
    },
    /// The same sine in bursts (`beeps:440`): each sounds for [`BEEP_MS`] from a whole second
    /// of the wall clock (`CLOCK_REALTIME`), in capture time. A receiver on a synchronised
    /// clock reads its mouth-to-ear latency as how far past the second each burst arrives.
    Beeps {
        /// Tone frequency in Hz (1..=20000).
        frequency_hz: f64,
    },
    /// A sound file decoded in real time (`file:/path/to/voice.wav`); ends at its end.
    File(PathBuf),
    /// Send no audio (`none`): the stream is receive-only.
    None,
}

/// Where the received voice goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum AudioSink {
    /// The default playback device (`auto`); discarded with a warning when there is none.
    Auto,
    /// Measure what arrives (`analyze`): dominant frequency, level, onset time.
    Analyze,
    /// Write a WAV file (`file:/path/out.wav`), finalised when the session stops.
    File(PathBuf),
    /// Play nothing (`none`): the stream is send-only.
    None,
}

/// Where the talker's picture comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum VideoSource {
    /// The default camera (`auto`); a black picture with a warning when there is none.
    Auto,
    /// GStreamer's test pattern (`pattern`).
    TestPattern,
    /// A video file decoded in real time (`file:/path/clip.webm`).
    File(PathBuf),
    /// Send no picture (`none`) while still receiving one.
    None,
}

/// Where the received picture goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum VideoSink {
    /// A window on the local display (X11), discarded with a warning when there is none.
    /// Never `autovideosink` (it crashes headless on Debian 12 through dfbvideosink).
    Auto,
    /// Count frames and read their size (`analyze`).
    Analyze,
    /// Write the received VP8 into a WebM file (`file:/path/in.webm`) without re-encoding.
    File(PathBuf),
    /// Show nothing (`none`): the stream is send-only.
    None,
}

/// Picture size and rate sent by the video sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoFormat {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
}

impl Default for VideoFormat {
    fn default() -> Self {
        Self {
            width: 640,
            height: 480,
            fps: 30,
        }
    }
}

/// What this talker can send and receive, with which devices, and the latency knobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaSettings {
    /// Where the voice comes from.
    pub audio_source: AudioSource,
    /// Where the received voice goes.
    pub audio_sink: AudioSink,
    /// `None`: no video capability at all (no m=video offered or accepted).
    /// `Some(VideoSource::None)`: video is received but nothing is sent.
    pub video_source: Option<VideoSource>,
    /// Where the received picture goes.
    pub video_sink: VideoSink,
    /// Size and rate of the picture sent.
    pub video_format: VideoFormat,
    /// Jitter-buffer latency in milliseconds (LAN default 20; GStreamer's own default is 200).
    pub jitter_ms: u32,
    /// Opus frame duration in milliseconds: 5, 10, 20, 40 or 60 (default 20: 10 ms frames
    /// save ~10 ms of latency but cost ~20 % more CPU).
    pub opus_frame_ms: u32,
    /// Capture and playback buffer period in milliseconds (default 10); 0 keeps each element's default.
    pub audio_buffer_ms: u32,
    /// The local address RTP/RTCP are bound to and that goes into `c=`.
    pub local_ip: IpAddr,
}

impl MediaSettings {
    /// Settings tuned for a LAN: devices `auto`, no video, 20 ms jitter buffer, 20 ms Opus frames
    /// and 10 ms device buffers.
    pub fn new(local_ip: IpAddr) -> Self {
        Self {
            audio_source: AudioSource::Auto,
            audio_sink: AudioSink::Auto,
            video_source: None,
            video_sink: VideoSink::None,
            video_format: VideoFormat::default(),
            jitter_ms: 20,
            opus_frame_ms: 20,
            audio_buffer_ms: 10,
            local_ip,
        }
    }

    /// GStreamer's own defaults for the latency knobs (200 ms jitter buffer, 20 ms Opus frames,
    /// element-default buffers), for comparison in benchmarks.
    pub fn with_gstreamer_defaults(mut self) -> Self {
        self.jitter_ms = 200;
        self.opus_frame_ms = 20;
        self.audio_buffer_ms = 0;
        self
    }

    /// Whether this talker takes part in video at all.
    pub fn video_capable(&self) -> bool {
        self.video_source.is_some()
    }

    /// Whether this talker sends audio.
    pub fn sends_audio(&self) -> bool {
        self.audio_source != AudioSource::None
    }

    /// Whether this talker plays or records received audio.
    pub fn receives_audio(&self) -> bool {
        self.audio_sink != AudioSink::None
    }

    /// Whether this talker sends video.
    pub fn sends_video(&self) -> bool {
        matches!(&self.video_source, Some(s) if *s != VideoSource::None)
    }

    /// Whether this talker shows or records received video.
    pub fn receives_video(&self) -> bool {
        self.video_capable() && self.video_sink != VideoSink::None
    }
}

fn file_path(what: &'static str, value: &str, rest: &str) -> Result<PathBuf, SettingsError> {
    if rest.is_empty() {
        return Err(SettingsError {
            what,
            value: value.to_owned(),
            reason: "file: needs a path, e.g. file:/var/lib/talker/voice.wav".into(),
        });
    }
    Ok(PathBuf::from(rest))
}

fn unknown(what: &'static str, value: &str, accepted: &str) -> SettingsError {
    SettingsError {
        what,
        value: value.to_owned(),
        reason: format!("expected one of {accepted}"),
    }
}

impl FromStr for AudioSource {
    type Err = SettingsError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        const WHAT: &str = "audio source";
        let v = value.trim();
        for (prefix, beeps) in [("tone:", false), ("beeps:", true)] {
            let Some(rest) = v.strip_prefix(prefix) else {
                continue;
            };
            let frequency_hz: f64 = rest.trim().parse().map_err(|_| SettingsError {
                what: WHAT,
                value: value.to_owned(),
                reason: format!("{prefix} needs a frequency in Hz, e.g. {prefix}440"),
            })?;
            if !(1.0..=20_000.0).contains(&frequency_hz) {
                return Err(SettingsError {
                    what: WHAT,
                    value: value.to_owned(),
                    reason: "tone frequency must be between 1 and 20000 Hz".into(),
                });
            }
            return Ok(if beeps {
                AudioSource::Beeps { frequency_hz }
            } else {
                AudioSource::Tone { frequency_hz }
            });
        }
        if let Some(rest) = v.strip_prefix("file:") {
            return file_path(WHAT, value, rest).map(AudioSource::File);
        }
        match v {
            "auto" => Ok(AudioSource::Auto),
            "none" => Ok(AudioSource::None),
            _ => Err(unknown(
                WHAT,
                value,
                "auto, tone:HZ, beeps:HZ, file:PATH, none",
            )),
        }
    }
}

impl FromStr for AudioSink {
    type Err = SettingsError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        const WHAT: &str = "audio sink";
        let v = value.trim();
        if let Some(rest) = v.strip_prefix("file:") {
            return file_path(WHAT, value, rest).map(AudioSink::File);
        }
        match v {
            "auto" => Ok(AudioSink::Auto),
            "analyze" => Ok(AudioSink::Analyze),
            "none" => Ok(AudioSink::None),
            _ => Err(unknown(WHAT, value, "auto, analyze, file:PATH, none")),
        }
    }
}

impl FromStr for VideoSource {
    type Err = SettingsError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        const WHAT: &str = "video source";
        let v = value.trim();
        if let Some(rest) = v.strip_prefix("file:") {
            return file_path(WHAT, value, rest).map(VideoSource::File);
        }
        match v {
            "auto" => Ok(VideoSource::Auto),
            "pattern" => Ok(VideoSource::TestPattern),
            "none" => Ok(VideoSource::None),
            _ => Err(unknown(WHAT, value, "auto, pattern, file:PATH, none")),
        }
    }
}

impl FromStr for VideoSink {
    type Err = SettingsError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        const WHAT: &str = "video sink";
        let v = value.trim();
        if let Some(rest) = v.strip_prefix("file:") {
            return file_path(WHAT, value, rest).map(VideoSink::File);
        }
        match v {
            "auto" => Ok(VideoSink::Auto),
            "analyze" => Ok(VideoSink::Analyze),
            "none" => Ok(VideoSink::None),
            _ => Err(unknown(WHAT, value, "auto, analyze, file:PATH, none")),
        }
    }
}

impl fmt::Display for AudioSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AudioSource::Auto => f.write_str("auto"),
            AudioSource::Tone { frequency_hz } => write!(f, "tone:{frequency_hz}"),
            AudioSource::Beeps { frequency_hz } => write!(f, "beeps:{frequency_hz}"),
            AudioSource::File(p) => write!(f, "file:{}", p.display()),
            AudioSource::None => f.write_str("none"),
        }
    }
}

impl fmt::Display for AudioSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AudioSink::Auto => f.write_str("auto"),
            AudioSink::Analyze => f.write_str("analyze"),
            AudioSink::File(p) => write!(f, "file:{}", p.display()),
            AudioSink::None => f.write_str("none"),
        }
    }
}

impl fmt::Display for VideoSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VideoSource::Auto => f.write_str("auto"),
            VideoSource::TestPattern => f.write_str("pattern"),
            VideoSource::File(p) => write!(f, "file:{}", p.display()),
            VideoSource::None => f.write_str("none"),
        }
    }
}

impl fmt::Display for VideoSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VideoSink::Auto => f.write_str("auto"),
            VideoSink::Analyze => f.write_str("analyze"),
            VideoSink::File(p) => write!(f, "file:{}", p.display()),
            VideoSink::None => f.write_str("none"),
        }
    }
}

macro_rules! string_conversions {
    ($($t:ty),*) => {$(
        impl TryFrom<String> for $t {
            type Error = SettingsError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                value.parse()
            }
        }
        impl From<$t> for String {
            fn from(value: $t) -> String {
                value.to_string()
            }
        }
    )*};
}
string_conversions!(AudioSource, AudioSink, VideoSource, VideoSink);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        assert_eq!(
            "tone:440".parse::<AudioSource>().ok(),
            Some(AudioSource::Tone {
                frequency_hz: 440.0
            })
        );
        assert_eq!(
            "beeps:1000".parse::<AudioSource>().ok(),
            Some(AudioSource::Beeps {
                frequency_hz: 1000.0
            })
        );
        assert_eq!(
            AudioSource::Beeps {
                frequency_hz: 440.0
            }
            .to_string(),
            "beeps:440"
        );
        assert_eq!("auto".parse::<AudioSource>().ok(), Some(AudioSource::Auto));
        assert_eq!("none".parse::<AudioSource>().ok(), Some(AudioSource::None));
        assert_eq!(
            "file:/tmp/a.wav".parse::<AudioSource>().ok(),
            Some(AudioSource::File("/tmp/a.wav".into()))
        );
        assert_eq!(
            "analyze".parse::<AudioSink>().ok(),
            Some(AudioSink::Analyze)
        );
        assert_eq!(
            "pattern".parse::<VideoSource>().ok(),
            Some(VideoSource::TestPattern)
        );
        assert_eq!(
            "file:/tmp/v.webm".parse::<VideoSink>().ok(),
            Some(VideoSink::File("/tmp/v.webm".into()))
        );
    }

    #[test]
    fn errors_name_the_value() {
        let e = "tone:loud"
            .parse::<AudioSource>()
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref().is_some_and(|e| e.contains("tone:loud")),
            "{e:?}"
        );
        let e = "speaker".parse::<AudioSink>().err().map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("speaker") && e.contains("analyze"))
        );
        assert!("tone:0".parse::<AudioSource>().is_err());
        assert!("beeps:30000".parse::<AudioSource>().is_err());
        let e = "beeps:".parse::<AudioSource>().err().map(|e| e.to_string());
        assert!(
            e.as_deref().is_some_and(|e| e.contains("beeps:440")),
            "{e:?}"
        );
        assert!("file:".parse::<VideoSource>().is_err());
        assert!("autovideosink".parse::<VideoSink>().is_err());
    }

    #[test]
    fn serde_round_trips_through_strings() {
        #[derive(Deserialize, Serialize)]
        struct Devices {
            source: AudioSource,
            sink: AudioSink,
        }
        let d: Devices = toml::from_str("source = \"tone:1234.5\"\nsink = \"analyze\"\n")
            .expect("valid devices");
        assert_eq!(
            d.source,
            AudioSource::Tone {
                frequency_hz: 1234.5
            }
        );
        assert_eq!(
            toml::to_string(&d).ok().as_deref(),
            Some("source = \"tone:1234.5\"\nsink = \"analyze\"\n")
        );
        let bad = toml::from_str::<Devices>("source = \"mic\"\nsink = \"auto\"\n");
        assert!(bad.err().is_some_and(|e| e.to_string().contains("mic")));
    }
}
