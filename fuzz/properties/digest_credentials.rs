//! The `sip_headers` fuzz target's properties for sip-server's digest
//! `Authorization` parser (inputs whose first byte picks `Authorization`, see
//! `sip_headers.rs`): the fuzz target and the stable replay of the seeds in CI
//! (`sip-server/tests/fuzz_seeds.rs`) both include this file. Every check
//! panics on a violation.

use sip_server::digest::{Algorithm, Check, Credentials, DigestAuthority, ha1};
use std::sync::OnceLock;

/// One authority for every input (a fresh one has a fresh random key).
fn authority() -> &'static DigestAuthority {
    static AUTHORITY: OnceLock<DigestAuthority> = OnceLock::new();
    AUTHORITY.get_or_init(|| DigestAuthority::new("home.example"))
}

/// `Credentials::parse` never panics, takes exactly the values whose scheme is
/// `Digest`, reads the values trimmed, and no received
/// header authenticates without our nonce key (a forged nonce is `Invalid`).
pub fn check(value: &str) {
    let digest_scheme = value
        .trim()
        .split_once(char::is_whitespace)
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("Digest"));
    let Some(credentials) = Credentials::parse(value) else {
        assert!(!digest_scheme, "{value:?} refused");
        return;
    };
    assert!(digest_scheme, "{value:?} accepted");
    for name in ["username", "realm", "nonce", "uri", "response", "qop", "nc"] {
        if let Some(v) = credentials.get(name) {
            assert_eq!(v, v.trim(), "{name}");
        }
    }
    let _ = (credentials.username(), credentials.realm());
    let algorithm = credentials.algorithm().unwrap_or(Algorithm::Md5);
    let stored = ha1(algorithm, "alice", "home.example", "pw");
    // The request's URI as the header names it, so only the nonce can fail it.
    let request_uri = credentials.get("uri").unwrap_or_default();
    for method in ["REGISTER", "INVITE"] {
        assert_eq!(
            authority().check(&credentials, method, request_uri, &stored),
            Check::Invalid,
            "{value:?}"
        );
    }
}
