//! Talkers on the LAN: a [`discovery::Browser`] on the configured interfaces
//! whose events become [`Action::LanTalkerSeen`] / [`Action::LanTalkerGone`].
//!
//! An advertisement proves nothing: what arrives here is a hint for the
//! roster, which verifies each talker with the signed challenge before it is
//! callable. With `discovery = false` nothing starts (registry and manual
//! entries only).

use crate::app::Action;
use crate::config::Config;
use discovery::{Browser, BrowserConfig, TalkerEvent};
use tokio::sync::{mpsc::UnboundedSender, oneshot};
use tokio::task::JoinHandle;

/// Why LAN discovery could not start (the runtime shows it as
/// [`Action::DiscoveryFailed`]; the registry still lists the talkers).
#[derive(Debug, thiserror::Error)]
pub enum LanError {
    /// `interfaces` does not parse.
    #[error("interfaces: {0}")]
    Interfaces(String),
    /// The mDNS daemon or the browse did not start.
    #[error("mDNS: {0}")]
    Discovery(#[from] discovery::DiscoveryError),
}

/// A running LAN watch; stop it with [`LanWatch::shutdown`].
#[derive(Debug)]
pub struct LanWatch {
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl LanWatch {
    /// Whether a browser is running (false when discovery is off).
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Stops browsing and waits for the mDNS daemon to stop.
    pub async fn shutdown(self) {
        if let Some((stop, task)) = self.running {
            let _ = stop.send(());
            if let Err(error) = task.await {
                tracing::warn!(%error, "the LAN watch task failed");
            }
        }
    }
}

/// Starts browsing when `config.discovery` is on (inside a tokio runtime),
/// forwarding events to `actions` until [`LanWatch::shutdown`] or until the
/// receiver is dropped.
pub fn watch(config: &Config, actions: UnboundedSender<Action>) -> Result<LanWatch, LanError> {
    if !config.discovery {
        tracing::info!("LAN discovery is off");
        return Ok(LanWatch { running: None });
    }
    let interfaces = config.interface_selection().map_err(LanError::Interfaces)?;
    let mut browser = Browser::start(BrowserConfig::new(interfaces))?;
    let (stop, mut stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                event = browser.next_event() => {
                    let Some(event) = event else { break };
                    let action = match event {
                        TalkerEvent::Added(ad) | TalkerEvent::Updated(ad) => Action::LanTalkerSeen(ad),
                        TalkerEvent::Removed(ad) => Action::LanTalkerGone(ad),
                    };
                    if actions.send(action).is_err() {
                        break;
                    }
                }
            }
        }
        if let Err(error) = browser.shutdown().await {
            tracing::warn!(%error, "stopping the mDNS browser");
        }
    });
    Ok(LanWatch {
        running: Some((stop, task)),
    })
}
