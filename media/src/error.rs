//! Errors of the media contract: a source or sink string that cannot be understood, and why a
//! media session could not start or run — in the worker (GStreamer, pipelines, passed sockets) or
//! between the agent and the worker.

use std::net::IpAddr;

/// A media source or sink string from the configuration that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct SettingsError {
    /// Which setting: "audio source", "video sink", ...
    pub what: &'static str,
    /// The value as written.
    pub value: String,
    /// What is wrong and what is accepted.
    pub reason: String,
}

/// Why a media session could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// GStreamer could not be initialised.
    #[error("GStreamer is not usable: {0}")]
    Init(String),
    /// A GStreamer element is not installed.
    #[error(
        "GStreamer element {0:?} is missing (install gstreamer1.0-plugins-base and gstreamer1.0-plugins-good)"
    )]
    MissingElement(String),
    /// No pair of UDP ports (RTP even, RTCP = RTP + 1) could be bound.
    #[error("cannot reserve UDP ports on {ip}: {source}")]
    Ports {
        /// The local address asked for.
        ip: IpAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// The negotiated plan and the reserved ports or settings do not fit together.
    #[error("invalid media plan: {0}")]
    Plan(String),
    /// Building or running the pipeline failed.
    #[error("media pipeline failed: {0}")]
    Pipeline(String),
    /// A conference leg id that is not (or no longer) in the conference.
    #[error("no conference leg {0}")]
    UnknownLeg(u64),
    /// The media worker process could not be started, failed a request or went away.
    #[error("media worker: {0}")]
    Worker(String),
    /// The sockets passed with a request do not match the ports it names.
    #[error("passed sockets: {0}")]
    Passed(String),
}
