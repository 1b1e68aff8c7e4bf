//! Secrets the matcher hands out — users' API tokens, one-time enrollment
//! tokens, talkers' heartbeat credentials — and how they are stored: only as
//! SHA-256 hashes, so the database alone grants nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The kinds of secret, each with its own visible prefix so a leaked one is
/// recognisable (and a talker credential is never mistaken for a user token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// A user's API bearer token.
    UserToken,
    /// A one-time talker enrollment token.
    Enrollment,
    /// A talker's heartbeat credential.
    TalkerCredential,
}

impl SecretKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::UserToken => "sdu_",
            Self::Enrollment => "sde_",
            Self::TalkerCredential => "sdt_",
        }
    }
}

/// A new random secret of `kind`: its prefix and 32 random bytes, base64url.
pub fn new_secret(kind: SecretKind) -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a secret: SHA-256, hex. The secret must carry `kind`'s
/// prefix; anything else hashes to `None` and so matches nothing.
pub fn secret_hash(kind: SecretKind, secret: &str) -> Option<String> {
    secret
        .starts_with(kind.prefix())
        .then(|| hex::encode(Sha256::digest(secret.as_bytes())))
}

/// Hex digits of a stored hash that name a secret to an operator (listing and
/// revoking API tokens): enough to tell a user's tokens apart, and, being a
/// piece of a hash, nothing that helps anyone guess the token.
pub const FINGERPRINT_LEN: usize = 12;

/// The fingerprint of a stored hash: its first [`FINGERPRINT_LEN`] hex digits.
pub fn fingerprint(hash: &str) -> &str {
    hash.get(..FINGERPRINT_LEN).unwrap_or(hash)
}

/// The bearer token of an `Authorization` header value, if it is one.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_hashed_per_kind() {
        let a = new_secret(SecretKind::UserToken);
        let b = new_secret(SecretKind::UserToken);
        assert_ne!(a, b);
        assert!(a.starts_with("sdu_") && a.len() > 40);
        let hash = secret_hash(SecretKind::UserToken, &a);
        assert_eq!(hash.as_deref().map(str::len), Some(64));
        assert_eq!(secret_hash(SecretKind::TalkerCredential, &a), None);
        let hash = hash.unwrap_or_default();
        assert_eq!(fingerprint(&hash), &hash[..FINGERPRINT_LEN]);
        assert_eq!(fingerprint("abc"), "abc");
    }

    #[test]
    fn bearer_reads_only_the_bearer_scheme() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer(""), None);
    }
}
