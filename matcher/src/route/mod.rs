//! Route ranking: through which SIP server, and from which of the caller's
//! designated talkers and accounts, a call can reach the callee — best first.
//!
//! A pure module (no I/O, no clock of its own): the API reads the registry,
//! builds a [`CallerSide`], a [`CalleeSide`], the server list and a
//! [`RouteQuery`] carrying `now`, and calls [`rank_routes`]. The dialer gets
//! [`dialer_views`] (its own talker, account, the shared server, rank and
//! reason); the call controller gets the best [`Route`], which alone holds the
//! callee's account.
//!
//! A candidate is (caller talker, caller account, callee talker or address,
//! callee account, server) with both accounts on the same server. It is only
//! ever built from a talker the caller owns **and** designated, and only through
//! a server the registry knows whose controller trust is not `none`.
//! Rank order, each rule breaking the ties of the one before:
//!
//! 1. online: routes with no end known offline first, then one end offline,
//!    then both (an end is online when its account is registered and its talker's
//!    last heartbeat is at most [`RouteQuery::max_heartbeat_age_s`] old; a plain
//!    SIP address has an unknown state, which never demotes a route);
//! 2. the media asked for is carried (video needs video on both ends);
//! 3. server cost, lower first;
//! 4. the caller's designation order;
//! 5. the callee's talker preference order (the order given);
//! 6. then caller AOR, callee AOR, server domain and talker ids, only so that
//!    equal routes always come out in the same order.
//!
//! No shared server is [`RouteError::NoSharedServer`] naming the servers of each
//! side (the API's `409 no_shared_server`); shared servers that the controller
//! cannot use are [`RouteError::NoUsableServer`].

mod error;
mod ranking;
mod side;
mod view;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use error::RouteError;
pub use ranking::{CalleeEnd, Route, RouteQuery, rank_routes};
pub use side::{CalleeSide, CallerSide, TalkerAccounts, account_online, heartbeat_fresh};
pub use view::{RouteView, dialer_views};
