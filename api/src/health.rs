//! `GET /healthz`: the matcher is serving and its database answers.

use serde::{Deserialize, Serialize};

/// The 200 answer, `{"status": "ok"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Always `ok` (a failing database is a 503 error body instead).
    pub status: String,
}

impl Health {
    /// The answer of a healthy matcher.
    pub fn ok() -> Self {
        Self {
            status: "ok".to_owned(),
        }
    }
}
