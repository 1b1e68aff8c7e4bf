//! The matcher's token-signing keys as it publishes them to talkers (in the
//! enrollment reply and every heartbeat reply): talkers check call and owner
//! tokens with them.

use serde::{Deserialize, Serialize};

/// One published key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatcherKey {
    /// The key id tokens name in their `kid` (`m-` and 16 hex digits).
    pub kid: String,
    /// The Ed25519 public key, standard base64 of its 32 bytes.
    pub public_key: String,
}
