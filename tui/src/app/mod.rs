//! The dialer's state machine: no terminal, no network.
//!
//! [`App`] is plain data; [`App::update`] applies one [`Action`] and returns
//! the [`Effect`]s it asks for; keys resolve to [`Command`]s through the
//! configured bindings first.

mod action;
pub mod clock;
mod command;
mod state;
mod update;

pub use action::{Action, Effect, OwnerAction};
pub use command::Command;
pub use state::{
    App, Connection, CurrentCall, ErrorPane, IncomingCall, LanState, Notice, Pane, Party, Polls,
    RoutesKey, RoutesState, RoutesView, Search, TimelineEntry,
};
pub use update::{NOTICE_MS, REGISTRY_POLL_MS, STATUS_POLL_IN_CALL_MS, STATUS_POLL_MS};
