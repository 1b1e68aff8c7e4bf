//! One dialog's SDP, seen from our side (RFC 3264 §8): every offer and answer we send in a
//! dialog carries the same `o=` session id; its version stays when what we send is unchanged
//! and goes up by one when it changes.

use std::net::IpAddr;

use sdp::description::media::MediaDescription;

use super::error::SdpError;
use super::local::LocalMedia;
use super::parse::parse;
use super::write::{self, OriginLine};
use super::{answer, offer};
use splitdial_media::Negotiated;

/// Our side of one dialog's offer/answer exchanges: it writes every offer and answer we
/// send in that dialog, so their `o=` lines follow RFC 3264 §8. Create one per dialog
/// (the control leg, a referred call, an ordinary call) and keep it as long as the dialog.
#[derive(Debug, Clone)]
pub struct SdpSession {
    local_ip: IpAddr,
    session_id: u64,
    /// The version of the last description sent (0 before the first).
    version: u64,
    /// The last description sent, written with version 0: what "unchanged" compares.
    last: Option<String>,
    /// The `m=` sections of the last description sent, to send it again unchanged.
    last_media: Vec<MediaDescription>,
}

impl SdpSession {
    /// A new dialog's session at `local_ip` (the `o=` and `c=` address), with a fresh
    /// random session id.
    pub fn new(local_ip: IpAddr) -> Self {
        Self {
            local_ip,
            session_id: u64::from(rand::random::<u32>()),
            version: 0,
            last: None,
            last_media: Vec::new(),
        }
    }

    /// The `o=` session id of every description this session writes.
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// The `o=` version of the last description written (0 before the first).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Our offer for a call with media (see [`LocalMedia`]).
    pub fn offer(&mut self, local: &LocalMedia) -> String {
        self.seal(offer::media(local))
    }

    /// The control leg's offer: one inactive `m=audio` (PCMU, PCMA) on the discard port.
    pub fn inactive_offer(&mut self) -> String {
        self.seal(offer::inactive())
    }

    /// Our answer to `offer` for a call we accept, and the plan it makes. Nothing is
    /// recorded when the offer is refused.
    pub fn answer(
        &mut self,
        offer: &str,
        local: &LocalMedia,
    ) -> Result<(String, Negotiated), SdpError> {
        let (media, plan) = answer::media(&parse(offer)?, local)?;
        Ok((self.seal(media), plan))
    }

    /// Our answer to any offer on a leg that never carries media: every stream inactive,
    /// refused streams (port 0) kept refused.
    pub fn inactive_answer(&mut self, offer: &str) -> Result<String, SdpError> {
        let media = answer::inactive(&parse(offer)?);
        Ok(self.seal(media))
    }

    /// The last description we sent, again and unchanged (same version): the body of a
    /// session refresh by re-INVITE (RFC 4028 §7.4). `None` before the first.
    pub fn current(&mut self) -> Option<String> {
        self.last.as_ref()?;
        Some(self.seal(self.last_media.clone()))
    }

    /// Writes `media` under our session lines, with the version RFC 3264 §8 wants.
    fn seal(&mut self, media: Vec<MediaDescription>) -> String {
        let origin = |version| OriginLine {
            ip: self.local_ip,
            session_id: self.session_id,
            version,
        };
        let unversioned = write::body(origin(0), media.clone());
        if self.last.as_deref() != Some(unversioned.as_str()) {
            self.version += 1;
            self.last = Some(unversioned);
            self.last_media = media.clone();
        }
        write::body(origin(self.version), media)
    }
}
