//! splitdial's one TLS stack. Every binary calls [`install_provider`] first thing in `main`, so
//! rustls never has to guess a crypto provider (it panics when a graph holds two and none was
//! chosen); the whole dependency graph has only ring (checked by a test, `tests/one_stack.rs`).
//!
//! - [`client`]: every reqwest client is built here, after the provider is installed, with the
//!   verifier of [`verifier`] when it talks to the matcher.
//! - [`verifier`]: roots (system, a CA file, or one pinned certificate) and SPKI pins.
//! - [`pin`]: the SPKI pin of a key.
//! - [`server`]: a server certificate pair reloaded in place.
//! - [`pki`]: the household CA (`matcher pki`).
//! - [`pem`]: PEM files read with one-line errors.
//! - `handshake_signature`: the handshake-signature half that both server-certificate verifiers
//!   ([`verifier`]'s and [`talker`]'s) share.
//! - [`secret_file`]: secret files and their directories: refused when shared, written 0600 in
//!   0700.

pub mod client;
mod handshake_signature;
pub mod pem;
pub mod pin;
pub mod pki;
mod provider;
pub mod secret_file;
pub mod server;
pub mod talker;
pub mod verifier;

pub use client::{
    check_base_url, client_builder, verifying_client_builder, verifying_client_config,
};
pub use pin::SpkiPin;
pub use provider::install_provider;
pub use verifier::{ServerTrust, TrustError, TrustRoots, VerifiedChain, certificate_refusal};
