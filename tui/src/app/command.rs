//! What a key press means to the dialer, once the bindings resolved it.

use serde::{Deserialize, Serialize};

/// One thing the user can ask for from the keyboard. Keys resolve to these
/// through [`crate::config::Bindings`]; the state machine only sees commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Move the focus between the contacts and the talkers.
    SwitchPane,
    /// Move the selection up.
    Up,
    /// Move the selection down.
    Down,
    /// Start typing a contact filter.
    Search,
    /// Designate the selected talker, or take it out of the designation.
    Designate,
    /// Call the selected contact on the designated talkers.
    Call,
    /// Ask for video (or audio only) on the next call.
    ToggleVideo,
    /// Hang up the current call.
    HangUp,
    /// Add the selected contact to the current call as another party.
    AddParty,
    /// Answer a call ringing on one of my talkers.
    Answer,
    /// Decline a call ringing on one of my talkers.
    Decline,
    /// Reload the registry, the contacts and the routes now.
    Refresh,
    /// Show or hide the help overlay.
    Help,
    /// Close the help overlay, an error pane, or the finished call.
    Dismiss,
    /// Leave the dialer.
    Quit,
}

impl Command {
    /// Every command, in the order the help overlay lists them.
    pub const ALL: &'static [Command] = &[
        Command::SwitchPane,
        Command::Up,
        Command::Down,
        Command::Search,
        Command::Designate,
        Command::Call,
        Command::ToggleVideo,
        Command::HangUp,
        Command::AddParty,
        Command::Answer,
        Command::Decline,
        Command::Refresh,
        Command::Help,
        Command::Dismiss,
        Command::Quit,
    ];

    /// What the command does, in the words the help overlay uses.
    pub fn describe(self) -> &'static str {
        match self {
            Self::SwitchPane => "switch between contacts and talkers",
            Self::Up => "move up",
            Self::Down => "move down",
            Self::Search => "search contacts (Enter keeps, Esc clears)",
            Self::Designate => "designate / undesignate the talker (in order)",
            Self::Call => "call the selected contact",
            Self::ToggleVideo => "toggle video for the next call",
            Self::HangUp => "hang up",
            Self::AddParty => "add the selected contact to the call",
            Self::Answer => "answer a call ringing on my talker",
            Self::Decline => "decline a call ringing on my talker",
            Self::Refresh => "reload talkers, contacts and routes",
            Self::Help => "show / hide this help",
            Self::Dismiss => "close help, error or finished call",
            Self::Quit => "quit",
        }
    }

    /// A one-word label for the status bar's key hints.
    pub fn hint(self) -> &'static str {
        match self {
            Self::SwitchPane => "pane",
            Self::Up | Self::Down => "move",
            Self::Search => "search",
            Self::Designate => "designate",
            Self::Call => "call",
            Self::ToggleVideo => "video",
            Self::HangUp => "hang up",
            Self::AddParty => "add party",
            Self::Answer => "answer",
            Self::Decline => "decline",
            Self::Refresh => "refresh",
            Self::Help => "help",
            Self::Dismiss => "close",
            Self::Quit => "quit",
        }
    }
}
