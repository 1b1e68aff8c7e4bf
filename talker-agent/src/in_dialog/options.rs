//! OPTIONS (RFC 3261 §11): what the agent can do, asked inside a call or outside one.

use rsipstack::sip::Header;

use super::methods;

/// The headers of our 200 to OPTIONS: `Allow`, `Accept` and `Supported`.
pub fn capabilities() -> Vec<Header> {
    vec![methods::allow(), methods::accept(), methods::supported()]
}
