//! The agent's media settings: what its calls send and play, made from the configuration's
//! `[audio]` and `[video]` sections. The settings themselves, and how each source or sink
//! string is read, are the `splitdial-media` contract (the worker runs them as they are);
//! this module only maps the configuration onto them, a bad value being a configuration
//! error that names its field.

use crate::config::{Config, ConfigError};
use splitdial_media::settings::{AudioSink, AudioSource, MediaSettings, VideoSink, VideoSource};
use std::path::Path;
use std::str::FromStr;

/// The media settings a configuration asks for.
pub fn from_config(config: &Config, path: &Path) -> Result<MediaSettings, ConfigError> {
    fn field<T: FromStr>(path: &Path, name: &str, value: &str) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        value.parse().map_err(|e: T::Err| ConfigError {
            path: path.display().to_string(),
            field: name.into(),
            problem: e.to_string(),
        })
    }
    let mut settings = MediaSettings::new(config.sip_ip());
    settings.audio_source = field::<AudioSource>(path, "audio.source", &config.audio.source)?;
    settings.audio_sink = field::<AudioSink>(path, "audio.sink", &config.audio.sink)?;
    settings.jitter_ms = config.audio.jitter_ms;
    settings.video_source = if config.has_video() {
        Some(field::<VideoSource>(
            path,
            "video.source",
            &config.video.source,
        )?)
    } else {
        None
    };
    settings.video_sink = field::<VideoSink>(path, "video.sink", &config.video.sink)?;
    Ok(settings)
}
