//! The signals that end the demo: SIGINT (Ctrl-C), SIGTERM and SIGHUP (the
//! terminal closed), whichever comes first.

use crate::exit::Exit;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// SIGINT, SIGTERM and SIGHUP, caught from the moment this is installed.
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl Signals {
    /// Catches the three signals from now on (they no longer kill the demo).
    pub fn install() -> Result<Self, Exit> {
        let install = |kind| signal(kind).map_err(Exit::io);
        Ok(Self {
            interrupt: install(SignalKind::interrupt())?,
            terminate: install(SignalKind::terminate())?,
            hangup: install(SignalKind::hangup())?,
        })
    }

    /// Waits for the next of them.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
            _ = self.hangup.recv() => {}
        }
    }
}
