//! Where a negotiated call leg meets the media engine. Kept apart so the SIP
//! code does not depend on how sessions are built.

use crate::media::{AllocatedPorts, MediaSettings, Negotiated};

/// The media of one call leg while it runs.
pub struct LegMedia {
    _ports: AllocatedPorts,
}

/// Starts the media of a negotiated leg.
pub fn start(plan: &Negotiated, settings: &MediaSettings, ports: AllocatedPorts) -> LegMedia {
    // The GStreamer session is being integrated (media::session); until then
    // the ports stay reserved so the peer's RTP is not sent to a random socket.
    let _ = (plan, settings);
    LegMedia { _ports: ports }
}

/// Stops the media of a leg.
pub fn stop(media: LegMedia) {
    drop(media);
}
