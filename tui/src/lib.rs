//! The splitdial dialer: pick the room to talk in, call, and follow the call.
//!
//! Layout, from the outside in:
//! - [`model`]: what the network tells us, as plain data (the wire contracts);
//! - [`app`]: the state machine — [`app::Action`]s in, state changes and
//!   [`app::Effect`]s out — with no terminal and no network;
//! - the drawing, the clients of the matcher and of the talkers, the runtime
//!   that connects them, and the scriptable subcommands.

pub mod app;
pub mod cli;
pub mod commands;
pub mod config;
pub mod effects;
pub mod lan;
pub mod matcher_client;
pub mod model;
pub mod roster;
pub mod runtime;
pub mod sse;
pub mod talker_client;
pub mod terminal;
pub mod ui;
