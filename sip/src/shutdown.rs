//! How a SIP element's process is asked to stop: SIGINT (a terminal's Ctrl-C)
//! or SIGTERM (a service manager, a test ending it by PID). Every element ends
//! gracefully on either (BYEs its dialogs, un-registers, closes its
//! transports), so each binary waits here instead of dying on the signal.

use tokio::signal::unix::{SignalKind, signal};

/// Waits until the process receives SIGINT or SIGTERM.
///
/// # Errors
/// When a signal handler cannot be installed.
pub async fn shutdown_signal() -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
