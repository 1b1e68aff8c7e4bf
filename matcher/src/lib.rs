//! The splitdial matcher: the registry of users, talkers, accounts and servers;
//! route ranking that finds a SIP server caller and callee share; the call
//! controller that has that server connect their talkers; and the HTTP API the
//! dialer and the talkers use.

pub mod admin;
pub mod api;
pub mod auth;
pub mod calls;
pub mod cli;
pub mod controller;
pub mod http_listener;
pub mod metrics;
pub mod pki;
pub mod presence;
pub mod registry;
pub mod route;
pub mod route_query;
pub mod server;
pub mod signing;
pub mod storage;
