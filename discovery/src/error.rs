//! Errors of the discovery crate.

use crate::ad::AdError;
use crate::txt::TxtError;

/// Errors from advertising or browsing.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The mDNS daemon refused a command or could not start.
    #[error("mDNS daemon: {0}")]
    Mdns(#[from] mdns_sd::Error),
    /// The advertisement has a bad field.
    #[error("invalid talker advertisement: {0}")]
    InvalidAd(#[from] AdError),
    /// The TXT record could not be built.
    #[error("TXT record: {0}")]
    Txt(#[from] TxtError),
    /// The interface selection names no interface or no IP family.
    #[error("no network interface selected (name interfaces, or choose all)")]
    NoInterfaces,
    /// A helper thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    /// The daemon did not confirm a step in time.
    #[error("the mDNS daemon did not confirm {what} within {after:?}")]
    Timeout {
        /// The step.
        what: &'static str,
        /// How long we waited.
        after: std::time::Duration,
    },
    /// `Browser::start` was called outside a tokio runtime.
    #[error("the browser needs a tokio runtime")]
    NoRuntime,
    /// The browser's background task has ended.
    #[error("the browser has stopped")]
    BrowserStopped,
}
