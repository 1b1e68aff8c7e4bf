//! Why no route exists.

use serde::Serialize;

/// Why no route could be found; the API answers each with its [`code`](Self::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum RouteError {
    /// None of the designated talkers is one of the caller's own talkers.
    #[error("none of the designated talkers is one of your talkers")]
    NoDesignatedTalker,
    /// Caller and callee have no SIP server in common (HTTP 409).
    #[error(
        "no shared server: your talkers are on [{}], the callee is on [{}]",
        caller_servers.join(", "),
        callee_servers.join(", ")
    )]
    NoSharedServer {
        /// Server domains of the designated talkers' accounts, sorted.
        caller_servers: Vec<String>,
        /// Server domains the callee can be reached on, sorted.
        callee_servers: Vec<String>,
    },
    /// Caller and callee share servers, but the call controller may place calls
    /// through none of them (controller trust `none`, or a server the registry
    /// does not know).
    #[error(
        "the shared servers [{}] do not let the matcher place calls",
        shared_servers.join(", ")
    )]
    NoUsableServer {
        /// The shared server domains, sorted.
        shared_servers: Vec<String>,
    },
}

impl RouteError {
    /// The stable error code for the API's `{"error": {"code": ...}}`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoDesignatedTalker => "no_designated_talker",
            Self::NoSharedServer { .. } => "no_shared_server",
            Self::NoUsableServer { .. } => "no_usable_server",
        }
    }
}
