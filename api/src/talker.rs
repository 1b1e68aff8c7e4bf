//! What a talker is, in the words every part uses: its kind of device, the
//! media it carries (or a call asks for), and the software that runs on it.
//! The matcher stores these words, the agent reads them from its
//! configuration and advertises them over DNS-SD, the dialer shows them.

use crate::word::wire_words;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

wire_words! {
    /// What sort of device a talker is (JSON, the database, DNS-SD `kind=`).
    #[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
    pub enum TalkerKind as "kind" {
        /// A television.
        Tv = "tv",
        /// A desktop or laptop computer.
        Pc = "pc",
        /// A phone.
        Phone = "phone",
        /// A tablet.
        Tablet = "tablet",
        /// A smart speaker (audio only, typically).
        Speaker = "speaker",
        /// Anything else.
        Other = "other",
    }
}

wire_words! {
    /// The media a talker can carry, or a call asks for. Ordered: video
    /// includes audio (DNS-SD writes it `audio,video`).
    #[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
    pub enum Media as "media" {
        /// Voice only.
        Audio = "audio",
        /// Voice and video.
        Video = "video",
    }
}

impl Media {
    /// Whether a talker with these capabilities can carry `wanted`.
    pub fn covers(self, wanted: Media) -> bool {
        self >= wanted
    }

    /// `Video` when `video` is true, else `Audio`.
    pub fn with_video(video: bool) -> Self {
        if video { Self::Video } else { Self::Audio }
    }
}

/// What runs on a talker: splitdial's agent, or a third-party SIP phone.
///
/// A reader takes a word it does not know as [`TalkerSoftware::Unknown`]
/// (and treats the talker as an agent), so a newer matcher's talkers still
/// list; the matcher itself never stores or sends `Unknown`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TalkerSoftware {
    /// An enrolled `talker-agent`: it has a key, sends heartbeats, proves itself
    /// to the dialer and keeps the control leg until every call is over.
    #[default]
    Agent,
    /// A SIP phone an admin added (`matcher talker add`): no key and no
    /// heartbeats (OPTIONS probes through its server stand in for them), and it
    /// carries a call as a blind transfer (RFC 5589), after which the
    /// controller lets go of it: the call is handed off.
    SipPhone,
    /// A word this reader does not know.
    #[serde(other)]
    Unknown,
}

impl TalkerSoftware {
    /// The word used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::SipPhone => "sip_phone",
            Self::Unknown => "unknown",
        }
    }

    /// Parses `agent` or `sip_phone`; `None` for anything else (`unknown`
    /// included: it is never stored).
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "agent" => Some(Self::Agent),
            "sip_phone" => Some(Self::SipPhone),
            _ => None,
        }
    }
}

impl FromStr for TalkerSoftware {
    type Err = crate::UnknownWord;
    fn from_str(word: &str) -> Result<Self, Self::Err> {
        Self::parse(word)
            .ok_or_else(|| crate::UnknownWord::new("software", word, "agent sip_phone"))
    }
}

impl fmt::Display for TalkerSoftware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
