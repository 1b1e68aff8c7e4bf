//! What the dialer may see of a route: its own talker and account, the shared
//! server, the rank and the reason — nothing of the callee's devices.

use super::ranking::Route;
use crate::registry::Media;
use serde::Serialize;

/// A route as the API serializes it for the dialer (`GET /v1/routes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteView {
    /// 1-based rank among the views, 1 is best.
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
    /// Why it ranks where it does.
    pub reason: String,
}

impl RouteView {
    /// The dialer's view of one route, keeping its rank.
    pub fn of(route: &Route) -> Self {
        Self {
            rank: route.rank,
            talker: route.caller_talker.id.clone(),
            talker_name: route.caller_talker.name.clone(),
            account: route.caller_account.aor.clone(),
            server: route.server.domain.clone(),
            cost: route.server.cost,
            media: route.media,
            talker_online: route.caller_online,
            online: route.is_online(),
            reason: route.explanation.clone(),
        }
    }
}

/// The dialer's views of ranked routes: the best route for each (talker,
/// account, server), in rank order and re-ranked 1..=n, so that how many
/// devices the callee has on a server never shows.
pub fn dialer_views(routes: &[Route]) -> Vec<RouteView> {
    let mut ranked: Vec<&Route> = routes.iter().collect();
    ranked.sort_by_key(|route| route.rank);
    let mut views: Vec<RouteView> = Vec::new();
    for route in ranked {
        let seen = views.iter().any(|view| {
            view.talker == route.caller_talker.id
                && view.account == route.caller_account.aor
                && view.server == route.server.domain
        });
        if !seen {
            let mut view = RouteView::of(route);
            view.rank = views.len() + 1;
            views.push(view);
        }
    }
    views
}
