//! The route mark of each talker for the selected contact: the server it
//! shares with them and its rank, or why it cannot reach them — from the
//! matcher's `GET /v1/routes` answer (or its refusal).

use super::{Presence, RosterRow, Sources};
use crate::model::{Contact, Media, Problem, RouteView, Routes};

/// For the selected contact: whether this talker can reach them, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMark {
    /// No contact selected (or the talker is not mine): no mark.
    None,
    /// The routes are being asked for.
    Loading,
    /// It shares a server with the contact: the best route through it.
    Shared {
        /// The matcher's rank (1 is best).
        rank: usize,
        /// The shared server.
        server: String,
        /// Whether the route carries what was asked (video asked, audio-only route: false).
        media_ok: bool,
        /// Whether no end of the route is known offline.
        online: bool,
        /// The matcher's explanation.
        reason: String,
    },
    /// Others are designated and this one is not: it takes no part.
    NotDesignated,
    /// It cannot reach the contact: why.
    Unreachable(String),
    /// The routes could not be read: why.
    Unknown(String),
}

/// The routes answer the marks are drawn from.
#[derive(Debug, Clone, Copy)]
pub enum RouteSource<'a> {
    /// No contact selected.
    NoContact,
    /// A contact is selected, its routes are on their way.
    Loading(&'a Contact),
    /// The routes of the selected contact.
    Loaded(&'a Contact, &'a Routes),
    /// The routes could not be read.
    Failed(&'a Contact, &'a Problem),
}

pub(super) fn mark(row: &RosterRow, sources: &Sources<'_>, route: RouteSource<'_>) -> RouteMark {
    if matches!(row.presence, Presence::NotMine | Presence::AwaitingRegistry) {
        return RouteMark::None;
    }
    let designated_elsewhere = !sources.designated.is_empty() && row.designation.is_none();
    match route {
        RouteSource::NoContact => RouteMark::None,
        RouteSource::Loading(_) if designated_elsewhere => RouteMark::NotDesignated,
        RouteSource::Loading(_) => RouteMark::Loading,
        RouteSource::Loaded(contact, routes) => {
            if let Some(best) = best_route(&row.id, &routes.routes) {
                shared_mark(best, routes.media)
            } else if designated_elsewhere {
                RouteMark::NotDesignated
            } else {
                RouteMark::Unreachable(unreachable_reason(row, contact))
            }
        }
        RouteSource::Failed(contact, problem) => match problem {
            Problem::Refused { code, .. } if code == "no_shared_server" => {
                if designated_elsewhere {
                    RouteMark::NotDesignated
                } else {
                    RouteMark::Unreachable(unreachable_reason(row, contact))
                }
            }
            other => RouteMark::Unknown(other.to_string()),
        },
    }
}

/// The best (lowest rank) route of one talker.
fn best_route<'r>(talker: &str, routes: &'r [RouteView]) -> Option<&'r RouteView> {
    routes
        .iter()
        .filter(|r| r.talker == talker)
        .min_by_key(|r| r.rank)
}

fn shared_mark(route: &RouteView, asked: Media) -> RouteMark {
    RouteMark::Shared {
        rank: route.rank,
        server: route.server.clone(),
        media_ok: route.media.covers(asked),
        online: route.online,
        reason: route.reason.clone(),
    }
}

/// Why a talker has no route to a contact, from the servers on both sides
/// (the contract's "no shared server: TV on a, b; Bob on c").
pub fn unreachable_reason(row: &RosterRow, contact: &Contact) -> String {
    let shared: Vec<&String> = row
        .servers
        .iter()
        .filter(|s| contact.servers.contains(s))
        .collect();
    if contact.servers.is_empty() {
        return format!("no shared server: {} has no known server", contact.name);
    }
    if row.servers.is_empty() {
        return format!("no shared server: {} has no account", row.name);
    }
    if shared.is_empty() {
        return format!(
            "no shared server: {} on {}; {} on {}",
            row.name,
            row.servers.join(", "),
            contact.name,
            contact.servers.join(", ")
        );
    }
    if matches!(row.presence, Presence::Offline) {
        return format!("offline (shares {})", join_refs(&shared));
    }
    format!(
        "shares {} but the server takes no calls from the matcher",
        join_refs(&shared)
    )
}

fn join_refs(items: &[&String]) -> String {
    items
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
