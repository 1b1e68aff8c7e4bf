//! What the splitdial talker agent and its media worker agree on. The agent (`talker-agent`)
//! negotiates SDP and links no GStreamer; every pipeline runs in the worker (`talker-media`),
//! a child process the agent starts while it has media. This crate is the contract between
//! the two, and all either side needs of the other: it pulls in no SIP, HTTP, mDNS, async
//! runtime or GStreamer.
//!
//! A call's media, in the order the contract sees it:
//!
//! 1. **Settings** ([`settings`]): what the talker sends and plays — sources, sinks and the
//!    latency knobs — parsed from the configuration strings (`tone:440`, `analyze`, ...).
//! 2. **Ports** ([`ports`]): before it writes its SDP, the agent binds an RTP/RTCP pair per
//!    stream ([`AllocatedPorts::reserve`]), so the port in `m=` is really its own.
//! 3. **Plan** ([`plan`]): the offer/answer exchange yields a [`Negotiated`] plan — codec,
//!    direction and the peer's addresses per stream — which the worker runs as it is.
//! 4. **Requests** ([`protocol`]): the agent asks the worker to start a session or a
//!    conference, add or remove a leg, run a session or leg on a new plan (the far end
//!    re-offered inside the call), report statistics or stop. Each request is one JSON
//!    object ([`lines`]) in one packet on the worker's stdin, and a request that starts media
//!    carries the reserved sockets beside it ([`passing`]): the ports stay bound from the SDP
//!    to the pipeline ([`AllocatedPorts::into_passed`], [`AllocatedPorts::from_passed`]).
//! 5. **Replies** ([`protocol`]): one JSON line each on the worker's stdout, matched to the
//!    request by its id; statistics ([`stats`]) come back this way, every number finite.
//! 6. **Errors** ([`error`]): [`SettingsError`] for a source or sink that cannot be
//!    understood, [`MediaError`] for media that could not start or run, on either side.
//!
//! The worker exits when its stdin closes: when the agent has no media left, or when the
//! agent dies.

pub mod error;
pub mod lines;
pub mod passing;
pub mod plan;
pub mod ports;
pub mod protocol;
pub mod settings;
pub mod stats;

pub use error::{MediaError, SettingsError};
pub use plan::{Codec, Direction, Negotiated, StreamPlan};
pub use ports::{AllocatedPorts, PortNumbers, SocketPair};
pub use settings::{
    AudioSink, AudioSource, BEEP_MS, MediaSettings, VideoFormat, VideoSink, VideoSource,
};
pub use stats::{ConferenceStats, LegId, MediaStats, PictureStats, RtpStats, SoundStats};
