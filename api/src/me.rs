//! `GET /v1/me`: who a bearer token belongs to.

use serde::{Deserialize, Serialize};

/// The user behind the request's token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// The user's numeric id in the registry.
    pub id: i64,
    /// Unique login-like name (`alice`).
    pub name: String,
    /// Name shown to others (`Alice Example`); the matcher always sends it.
    #[serde(default)]
    pub display_name: Option<String>,
}
