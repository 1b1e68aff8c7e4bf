//! What the dialer may see of a route: its own talker and account, the shared
//! server, the rank and the reason — nothing of the callee's devices.

use super::ranking::Route;
pub use splitdial_api::RouteView;

impl From<&Route> for RouteView {
    /// The dialer's view of one route, keeping its rank.
    fn from(route: &Route) -> Self {
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
            let mut view = RouteView::from(route);
            view.rank = views.len() + 1;
            views.push(view);
        }
    }
    views
}
