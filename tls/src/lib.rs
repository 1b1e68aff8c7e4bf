//! splitdial's one TLS stack. Every binary calls [`install_provider`] first thing in `main`, so
//! rustls never has to guess a crypto provider (it panics when a graph holds two and none was
//! chosen); the whole dependency graph has only ring (checked by a test, `tests/one_stack.rs`).

mod provider;
pub mod talker;

pub use provider::install_provider;
