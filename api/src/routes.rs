//! `GET /v1/routes?callee=C[&talkers=a,b][&media=video]`: the ranked routes
//! from the caller's talkers to one contact, as the dialer may see them — its
//! own talker and account, the shared server, rank and reason; nothing of the
//! callee's devices.

use crate::talker::Media;
use serde::{Deserialize, Serialize};

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routes {
    /// The contact's name, as asked.
    pub callee: String,
    /// The media asked for (`audio` when the query named none).
    pub media: Media,
    /// Best first, ranked 1..=n: the best route per (talker, account, server).
    pub routes: Vec<RouteView>,
}

/// One route as the matcher explains it to the dialer (also the `route` of a
/// call).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteView {
    /// 1-based rank, 1 is best.
    pub rank: usize,
    /// The caller's talker id.
    pub talker: String,
    /// The caller's talker's human name.
    pub talker_name: String,
    /// The caller's account (AOR) that dials.
    pub account: String,
    /// The shared server's domain.
    pub server: String,
    /// The server's cost.
    pub cost: u32,
    /// What the route can carry.
    pub media: Media,
    /// Whether the caller's talker is online on that account.
    pub talker_online: bool,
    /// Whether no end of the route is known to be offline.
    pub online: bool,
    /// Why it ranks where it does ("online · video on both · cost 1").
    pub reason: String,
}
