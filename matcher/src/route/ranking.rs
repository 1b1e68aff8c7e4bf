//! Building the candidate routes and putting them in rank order.

use super::error::RouteError;
use super::side::{CalleeAccount, CalleeSide, CallerSide, UsableTalker, account_online};
use crate::registry::{Account, ControllerTrust, Media, Server, Talker};
use std::cmp::Reverse;

/// What the dialer asks for, and the clock that decides who is online.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteQuery {
    /// The media the call asks for.
    pub media: Media,
    /// The matcher's current Unix time in seconds.
    pub now: i64,
    /// A talker whose last heartbeat is older than this many seconds is offline.
    pub max_heartbeat_age_s: i64,
}

/// The callee's end of a route. Kept by the matcher to place the call; never
/// shown to the dialer (see [`RouteView`](super::RouteView)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalleeEnd {
    /// The callee's talker id; `None` when the callee is a plain SIP address.
    pub talker: Option<String>,
    /// The address the caller's talker dials (the REFER target).
    pub aor: String,
    /// Domain of the server that address lives on (the route's server).
    pub server: String,
    /// What the callee's end can carry.
    pub media: Media,
    /// 0-based position of its talker in the callee's preference order.
    pub preference: usize,
    /// Whether it is online; `None` when unknown (a plain SIP address).
    pub online: Option<bool>,
}

/// One ranked way to place a call: the caller's talker and account, the server
/// both accounts are on, and the callee's account there.
///
/// Deliberately not `Serialize`: it holds the callee's devices. The dialer gets
/// [`RouteView`](super::RouteView)s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// 1-based rank, 1 is best.
    pub rank: usize,
    /// The caller's designated talker that will carry the call.
    pub caller_talker: Talker,
    /// Its account on `server` that dials the callee.
    pub caller_account: Account,
    /// Whether the caller's talker is online on that account.
    pub caller_online: bool,
    /// 0-based position of the caller's talker in the designation order.
    pub designation: usize,
    /// The server both accounts are on.
    pub server: Server,
    /// The callee's account on that server.
    pub callee: CalleeEnd,
    /// What the route can carry: video only when both ends carry video.
    pub media: Media,
    /// Whether `media` covers what the query asked for.
    pub media_supported: bool,
    /// Why it ranks where it does, for the dialer
    /// (`online · video on both · cost 1 · your 1st choice`).
    pub explanation: String,
}

impl Route {
    /// How many ends are known to be offline (0, 1 or 2); an unknown callee
    /// state counts as not offline.
    pub fn offline_ends(&self) -> u8 {
        u8::from(!self.caller_online) + u8::from(self.callee.online == Some(false))
    }

    /// Whether no end is known to be offline.
    pub fn is_online(&self) -> bool {
        self.offline_ends() == 0
    }

    /// The sort key: each rule breaks the ties of the one before; the last
    /// fields only make the order total and stable.
    #[allow(clippy::type_complexity)]
    fn rank_key(
        &self,
    ) -> (
        u8,
        Reverse<bool>,
        u32,
        usize,
        usize,
        &str,
        &str,
        &str,
        &str,
        Option<&str>,
    ) {
        (
            self.offline_ends(),
            Reverse(self.media_supported),
            self.server.cost,
            self.designation,
            self.callee.preference,
            &self.caller_account.aor,
            &self.callee.aor,
            &self.server.domain,
            &self.caller_talker.id,
            self.callee.talker.as_deref(),
        )
    }
}

/// Ranks every way `caller` can reach `callee` through a server both have an
/// account on, best first (see the [module docs](super) for the rules).
///
/// A candidate through a server that is missing from `servers` or whose
/// controller trust is `none` is dropped, and so is one whose caller and callee
/// talker are the same device.
pub fn rank_routes(
    caller: &CallerSide,
    callee: &CalleeSide,
    servers: &[Server],
    query: &RouteQuery,
) -> Result<Vec<Route>, RouteError> {
    let caller_talkers = caller.usable_talkers();
    if caller_talkers.is_empty() {
        return Err(RouteError::NoDesignatedTalker);
    }
    let callee_accounts = callee.accounts();

    let mut shared_servers: Vec<&str> = Vec::new();
    let mut routes: Vec<Route> = Vec::new();
    for usable in &caller_talkers {
        for account in &usable.accounts {
            for end in &callee_accounts {
                let same_device = end.talker.is_some_and(|other| other.id == usable.talker.id);
                if end.server != account.server || same_device {
                    continue;
                }
                shared_servers.push(end.server);
                let usable_server = servers
                    .iter()
                    .find(|server| server.domain == end.server)
                    .filter(|server| server.trust != ControllerTrust::None);
                if let Some(server) = usable_server {
                    routes.push(candidate(usable, account, end, server, query));
                }
            }
        }
    }

    if shared_servers.is_empty() {
        return Err(RouteError::NoSharedServer {
            caller_servers: sorted_domains(
                caller_talkers
                    .iter()
                    .flat_map(|usable| usable.accounts.iter().map(|account| &*account.server)),
            ),
            callee_servers: sorted_domains(callee_accounts.iter().map(|end| end.server)),
        });
    }
    if routes.is_empty() {
        return Err(RouteError::NoUsableServer {
            shared_servers: sorted_domains(shared_servers.into_iter()),
        });
    }
    put_in_rank_order(&mut routes, query.media);
    Ok(routes)
}

impl RouteQuery {
    /// Whether `talker` is online on `account` by this query's clock.
    fn online(&self, talker: &Talker, account: &Account) -> bool {
        account_online(talker, account, self.now, self.max_heartbeat_age_s)
    }
}

/// The route from the caller's `account` of talker `usable` to the callee's
/// `end` through `server` (both accounts are on it), not yet ranked.
fn candidate(
    usable: &UsableTalker<'_>,
    account: &Account,
    end: &CalleeAccount<'_>,
    server: &Server,
    query: &RouteQuery,
) -> Route {
    let talker = usable.talker;
    let media = talker.media.min(end.media);
    Route {
        rank: 0,
        caller_talker: talker.clone(),
        caller_account: account.clone(),
        caller_online: query.online(talker, account),
        designation: usable.preference,
        server: server.clone(),
        callee: CalleeEnd {
            talker: end.talker.map(|other| other.id.clone()),
            aor: end.aor.to_owned(),
            server: end.server.to_owned(),
            media: end.media,
            preference: end.preference,
            online: end
                .talker
                .zip(end.account)
                .map(|(other, other_account)| query.online(other, other_account))
                .or(end.reachable),
        },
        media,
        media_supported: media.covers(query.media),
        explanation: String::new(),
    }
}

/// Sorts `routes` by their rank key, numbers them from 1 and explains each
/// for a call that asks for `wanted`.
fn put_in_rank_order(routes: &mut [Route], wanted: Media) {
    routes.sort_by(|a, b| a.rank_key().cmp(&b.rank_key()));
    for (index, route) in routes.iter_mut().enumerate() {
        route.rank = index + 1;
        route.explanation = explain(route, wanted);
    }
}

/// The distinct domains, sorted.
fn sorted_domains<'a>(domains: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut domains: Vec<String> = domains.map(str::to_owned).collect();
    domains.sort();
    domains.dedup();
    domains
}

/// Says, in the rule order, why a route ranks where it does. It names nothing
/// of the callee's devices, so the last rule (the callee's preferred talker)
/// never shows.
fn explain(route: &Route, wanted: Media) -> String {
    let presence = match (route.caller_online, route.callee.online) {
        (true, Some(true)) => "online",
        (true, None) => "your talker online",
        (true, Some(false)) => "callee offline",
        (false, Some(false)) => "both offline",
        (false, _) => "your talker offline",
    };
    let media = match (wanted, route.media) {
        (Media::Video, Media::Video) => "video on both",
        (Media::Video, Media::Audio) => "audio only",
        (Media::Audio, _) => "audio",
    };
    format!(
        "{presence} · {media} · cost {} · your {} choice",
        route.server.cost,
        ordinal(route.designation + 1)
    )
}

/// `1st`, `2nd`, `3rd`, `4th`, ..., `11th`, `12th`, `13th`, `21st`, ...
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod ordinal_tests {
    use super::ordinal;

    #[test]
    fn ordinals_have_english_suffixes() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111]
            .into_iter()
            .map(ordinal)
            .collect();
        assert_eq!(
            got,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd",
                "101st", "111th"
            ]
        );
    }
}
