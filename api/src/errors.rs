//! The error body every splitdial HTTP API answers with (the matcher's and a
//! talker's local API alike): `{"error": {"code": "...", "message": "..."}}`,
//! plus the servers of each side on the matcher's route errors.

use serde::{Deserialize, Serialize};

/// The whole error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The `error` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code (`unauthorized`, `no_shared_server`, ...).
    pub code: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// With `no_shared_server`: the server domains of the caller's designated
    /// talkers, sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_servers: Option<Vec<String>>,
    /// With `no_shared_server`: the server domains the callee can be reached
    /// on, sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callee_servers: Option<Vec<String>>,
    /// With `no_usable_server`: the shared server domains, none of which lets
    /// the matcher place calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_servers: Option<Vec<String>>,
}

impl ErrorBody {
    /// An error with a code and a message and nothing else.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
                caller_servers: None,
                callee_servers: None,
                shared_servers: None,
            },
        }
    }
}
