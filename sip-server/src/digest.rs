//! HTTP digest authentication for SIP (RFC 3261 §22, RFC 8760 for SHA-256):
//! challenges with stateless, signed nonces, and verification of credentials.
//! A nonce needs no state until it is used; its uses are then remembered, so a
//! captured `Authorization` cannot be replayed while the nonce lives.

use crate::users::{Secrets, UserDirectory};
use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};
use splitdial_sip::uri_match::SipUri;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a nonce stays valid; after that the client is told `stale=true`.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// How many used (nonce, user, cnonce) triples are remembered at most. Only valid
/// responses are recorded, so only real users fill it; past this, the oldest
/// are forgotten and nonces as old as those are answered `stale`.
const MAX_REMEMBERED_USES: usize = 65_536;

/// A digest hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5 (RFC 2617), still what most phones speak.
    Md5,
    /// SHA-256 (RFC 8760), offered first.
    Sha256,
}

impl Algorithm {
    /// The token used in `algorithm=`.
    pub fn token(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha256 => "SHA-256",
        }
    }

    fn from_token(token: &str) -> Option<Self> {
        if token.eq_ignore_ascii_case("MD5") {
            Some(Self::Md5)
        } else if token.eq_ignore_ascii_case("SHA-256") {
            Some(Self::Sha256)
        } else {
            None
        }
    }

    fn hash(self, input: &str) -> String {
        match self {
            Self::Md5 => hex::encode(Md5::digest(input.as_bytes())),
            Self::Sha256 => hex::encode(Sha256::digest(input.as_bytes())),
        }
    }
}

/// H(A1) = H(user:realm:password), hex.
pub fn ha1(algorithm: Algorithm, user: &str, realm: &str, password: &str) -> String {
    algorithm.hash(&format!("{user}:{realm}:{password}"))
}

/// Credentials as sent in an `Authorization` or `Proxy-Authorization` header.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    params: HashMap<String, String>,
}

impl Credentials {
    /// Parses `Digest k=v, k="v", ...`; `None` when it is not a digest header.
    pub fn parse(value: &str) -> Option<Self> {
        let rest = value.trim();
        let (scheme, rest) = rest.split_once(char::is_whitespace)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let mut params = HashMap::new();
        let mut chars = rest.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
                chars.next();
            }
            let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
            if name.trim().is_empty() {
                break;
            }
            let mut val = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                let mut escaped = false;
                for c in chars.by_ref() {
                    match c {
                        _ if escaped => {
                            val.push(c);
                            escaped = false;
                        }
                        '\\' => escaped = true,
                        '"' => break,
                        _ => val.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.peek() {
                    if *c == ',' {
                        break;
                    }
                    val.push(*c);
                    chars.next();
                }
            }
            params.insert(name.trim().to_ascii_lowercase(), val.trim().to_owned());
        }
        Some(Self { params })
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// The user name the client claims.
    pub fn username(&self) -> Option<&str> {
        self.get("username")
    }

    /// The realm the credentials are for.
    pub fn realm(&self) -> Option<&str> {
        self.get("realm")
    }

    /// The algorithm (MD5 when absent); `None` when unknown.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.get("algorithm")
            .map_or(Some(Algorithm::Md5), Algorithm::from_token)
    }
}

/// Issues and checks nonces, and verifies digest responses.
pub struct DigestAuthority {
    realm: String,
    key: [u8; 32],
    uses: Mutex<NonceUses>,
}

/// The highest nonce count accepted for each (nonce, user, cnonce) still alive,
/// keyed by the nonce's issue time first so that the oldest go first.
#[derive(Default)]
struct NonceUses {
    highest_count: BTreeMap<(u64, String, String), u64>,
    /// Nonces issued at or before this second were forgotten to stay bounded.
    forgotten_through: Option<u64>,
}

impl NonceUses {
    /// Records a use with count `nc`; false when that count (or a later one)
    /// was already used: a replay, or a client that lost count.
    fn record(&mut self, issued: u64, nonce: &str, client: &str, nc: u64, now: u64) -> bool {
        if self.forgotten_through.is_some_and(|t| issued <= t) {
            return false;
        }
        let oldest_alive = now.saturating_sub(NONCE_LIFETIME.as_secs());
        while let Some(entry) = self.highest_count.first_entry() {
            if entry.key().0 >= oldest_alive {
                break;
            }
            entry.remove();
        }
        let key = (issued, nonce.to_owned(), client.to_owned());
        if self.highest_count.get(&key).is_some_and(|&seen| nc <= seen) {
            return false;
        }
        self.highest_count.insert(key, nc);
        while self.highest_count.len() > MAX_REMEMBERED_USES {
            if let Some(((forgotten, _, _), _)) = self.highest_count.pop_first() {
                self.forgotten_through = Some(forgotten);
            }
        }
        true
    }
}

/// The outcome of checking credentials.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// The response matches: the user is authenticated.
    Valid,
    /// The response is right but the nonce expired: challenge again with `stale=true`.
    Stale,
    /// Wrong, malformed or for another realm.
    Invalid,
    /// The `uri` parameter is not the request's Request-URI (RFC 3261 §22.4):
    /// answer 400, the credentials were made for another request.
    UriMismatch,
}

impl DigestAuthority {
    /// Creates an authority for `realm` with a fresh random nonce key.
    pub fn new(realm: &str) -> Self {
        Self {
            realm: realm.to_owned(),
            key: rand::random(),
            uses: Mutex::new(NonceUses::default()),
        }
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    fn sign(&self, stamp: &str) -> String {
        // The key is 32 bytes, which HMAC always accepts.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(stamp.as_bytes());
        mac.update(self.realm.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..12])
    }

    /// A new nonce: a timestamp and a random salt, signed with our key, so no
    /// state is kept until it is used. The salt makes every challenge's nonce its
    /// own, so two clients challenged in the same second never share one.
    pub fn nonce(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let stamp = format!("{now:x}-{:016x}", rand::random::<u64>());
        format!("{stamp}.{}", self.sign(&stamp))
    }

    /// Challenge header values for the algorithms in `offer`, in that order
    /// (callers put SHA-256 first, RFC 8760 §2.4).
    pub fn challenges(&self, stale: bool, offer: &[Algorithm]) -> Vec<String> {
        let nonce = self.nonce();
        offer
            .iter()
            .map(|alg| {
                format!(
                    "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{}",
                    self.realm,
                    alg.token(),
                    if stale { ", stale=true" } else { "" }
                )
            })
            .collect()
    }

    /// When `nonce` was issued, if it is ours.
    fn nonce_issued(&self, nonce: &str) -> Option<u64> {
        let (stamp, sig) = nonce.split_once('.')?;
        if !constant_time_eq(self.sign(stamp).as_bytes(), sig.as_bytes()) {
            return None;
        }
        let (issued, _salt) = stamp.split_once('-')?;
        u64::from_str_radix(issued, 16).ok()
    }

    /// Checks `credentials` for a request with `method` and `request_uri`, given
    /// the user's H(A1) for the algorithm the client chose.
    pub fn check(
        &self,
        credentials: &Credentials,
        method: &str,
        request_uri: &str,
        ha1: &str,
    ) -> Check {
        let (Some(nonce), Some(uri), Some(response), Some(algorithm)) = (
            credentials.get("nonce"),
            credentials.get("uri"),
            credentials.get("response"),
            credentials.algorithm(),
        ) else {
            return Check::Invalid;
        };
        if credentials.realm() != Some(self.realm.as_str()) {
            return Check::Invalid;
        }
        if !same_uri(uri, request_uri) {
            return Check::UriMismatch;
        }
        let Some(issued) = self.nonce_issued(nonce) else {
            return Check::Invalid;
        };
        let ha2 = algorithm.hash(&format!("{method}:{uri}"));
        // Without qop there is no count: such a response is good for one request.
        let (expected, cnonce, count) = match credentials.get("qop") {
            Some(qop) if qop.eq_ignore_ascii_case("auth") => {
                let (Some(nc), Some(cnonce)) = (credentials.get("nc"), credentials.get("cnonce"))
                else {
                    return Check::Invalid;
                };
                // RFC 7616 §3.4: eight hex digits.
                let Some(count) = (nc.len() == 8)
                    .then(|| u64::from_str_radix(nc, 16).ok())
                    .flatten()
                else {
                    return Check::Invalid;
                };
                let expected = algorithm.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
                (expected, cnonce, count)
            }
            Some(_) => return Check::Invalid,
            None => (algorithm.hash(&format!("{ha1}:{nonce}:{ha2}")), "", 1),
        };
        if !constant_time_eq(
            expected.as_bytes(),
            response.to_ascii_lowercase().as_bytes(),
        ) {
            return Check::Invalid;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if now.saturating_sub(issued) > NONCE_LIFETIME.as_secs() {
            return Check::Stale;
        }
        // A poisoned lock only means another check panicked mid-way; the map is still sound.
        let mut uses = self
            .uses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // The user is part of the key: a user's count says nothing about another's.
        let client = format!("{}\n{cnonce}", credentials.username().unwrap_or_default());
        if uses.record(issued, nonce, &client, count, now) {
            Check::Valid
        } else {
            // A replay, or a client that reused its count: a fresh nonce sorts out
            // the honest one, and the replayer cannot answer it.
            Check::Stale
        }
    }
}

/// Whether the digest `uri` names the Request-URI: equivalent by RFC 3261
/// §19.1.4 (clients may print it differently), or the same text when either is
/// not a SIP URI.
fn same_uri(digest_uri: &str, request_uri: &str) -> bool {
    match (SipUri::parse(digest_uri), SipUri::parse(request_uri)) {
        (Ok(a), Ok(b)) => a.equivalent(&b),
        _ => digest_uri == request_uri,
    }
}

/// The reason phrase of the 403 that refuses an MD5 answer from an account not
/// marked `md5`.
pub const MD5_REFUSED: &str = "MD5 Not Allowed For This Account";

/// Whether `credentials` answer with MD5 for an account that may not use it.
/// An unknown user is refused the same way as a known one, so the answer says
/// nothing about who exists; and nothing is computed, so a client that could
/// answer MD5 learns nothing about the password either.
pub fn md5_refused(users: &UserDirectory, credentials: &Credentials) -> bool {
    credentials.algorithm() == Some(Algorithm::Md5)
        && !users
            .get(credentials.username().unwrap_or_default())
            .is_some_and(Secrets::md5_allowed)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Request-URI the test answers are made for.
    const URI: &str = "sip:home.example";

    #[test]
    fn the_uri_must_be_the_request_uri() {
        let auth = DigestAuthority::new("home.example");
        let stored = ha1(Algorithm::Sha256, "alice", "home.example", "pw");
        let good = answer(&auth, Algorithm::Sha256, "pw");
        // Another request's URI: refused before anything else, even with a
        // right response for the URI it names.
        assert_eq!(
            auth.check(&good, "REGISTER", "sip:other.example", &stored),
            Check::UriMismatch
        );
        assert_eq!(
            auth.check(&good, "REGISTER", "sip:home.example;transport=tcp", &stored),
            Check::UriMismatch
        );
        // The same URI printed otherwise is the same URI (RFC 3261 §19.1.4).
        assert_eq!(
            auth.check(&good, "REGISTER", "sip:HOME.example", &stored),
            Check::Valid
        );
    }

    fn answer(auth: &DigestAuthority, alg: Algorithm, pw: &str) -> Credentials {
        answer_with(&auth.nonce(), alg, pw, 1, "abc")
    }

    fn answer_with(nonce: &str, alg: Algorithm, pw: &str, nc: u32, cnonce: &str) -> Credentials {
        let h1 = ha1(alg, "alice", "home.example", pw);
        let h2 = alg.hash("REGISTER:sip:home.example");
        let resp = alg.hash(&format!("{h1}:{nonce}:{nc:08x}:{cnonce}:auth:{h2}"));
        Credentials::parse(&format!(
            "Digest username=\"alice\", realm=\"home.example\", nonce=\"{nonce}\", uri=\"sip:home.example\", response=\"{resp}\", algorithm={}, qop=auth, nc={nc:08x}, cnonce=\"{cnonce}\"",
            alg.token()
        ))
        .unwrap()
    }

    #[test]
    fn a_used_count_is_never_accepted_again() {
        let auth = DigestAuthority::new("home.example");
        let stored = ha1(Algorithm::Md5, "alice", "home.example", "pw");
        let nonce = auth.nonce();
        let first = answer_with(&nonce, Algorithm::Md5, "pw", 1, "abc");
        assert_eq!(auth.check(&first, "REGISTER", URI, &stored), Check::Valid);
        // The same Authorization again: a replay.
        assert_eq!(auth.check(&first, "REGISTER", URI, &stored), Check::Stale);
        // The client's next count on the same nonce is fine; going back is not.
        let third = answer_with(&nonce, Algorithm::Md5, "pw", 3, "abc");
        assert_eq!(auth.check(&third, "REGISTER", URI, &stored), Check::Valid);
        let second = answer_with(&nonce, Algorithm::Md5, "pw", 2, "abc");
        assert_eq!(auth.check(&second, "REGISTER", URI, &stored), Check::Stale);
        // Another client nonce counts on its own.
        let other = answer_with(&nonce, Algorithm::Md5, "pw", 1, "xyz");
        assert_eq!(auth.check(&other, "REGISTER", URI, &stored), Check::Valid);
        // A count that is not eight hex digits is refused outright.
        let odd = Credentials::parse(&format!(
            "Digest username=\"alice\", realm=\"home.example\", nonce=\"{nonce}\", uri=\"sip:home.example\", response=\"0\", qop=auth, nc=1, cnonce=\"q\""
        ))
        .unwrap();
        assert_eq!(auth.check(&odd, "REGISTER", URI, &stored), Check::Invalid);
    }

    #[test]
    fn remembered_uses_stay_bounded_and_forgotten_nonces_go_stale() {
        let mut uses = NonceUses::default();
        let now = 1_000_000;
        for i in 0..MAX_REMEMBERED_USES as u64 + 10 {
            // Issue times climb so the first ones are the oldest.
            assert!(uses.record(now - 200 + i / 1000, "n", &i.to_string(), 1, now));
        }
        assert_eq!(uses.highest_count.len(), MAX_REMEMBERED_USES);
        // The oldest second was forgotten: a use of a nonce that old is not trusted.
        assert!(!uses.record(now - 200, "n", "new", 1, now));
        // Uses of nonces past their lifetime are dropped on the next record.
        assert!(uses.record(now + 400, "later", "c", 1, now + 400));
        assert_eq!(uses.highest_count.len(), 1);
    }

    #[test]
    fn verifies_md5_and_sha256() {
        let auth = DigestAuthority::new("home.example");
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            let good = answer(&auth, alg, "pw");
            let stored = ha1(alg, "alice", "home.example", "pw");
            assert_eq!(auth.check(&good, "REGISTER", URI, &stored), Check::Valid);
            let bad = answer(&auth, alg, "wrong");
            assert_eq!(auth.check(&bad, "REGISTER", URI, &stored), Check::Invalid);
        }
    }

    #[test]
    fn refuses_foreign_nonces() {
        let ours = DigestAuthority::new("home.example");
        let theirs = DigestAuthority::new("home.example");
        let creds = answer(&theirs, Algorithm::Md5, "pw");
        let stored = ha1(Algorithm::Md5, "alice", "home.example", "pw");
        assert_eq!(ours.check(&creds, "REGISTER", URI, &stored), Check::Invalid);
    }

    #[test]
    fn parses_odd_headers_without_panicking() {
        assert!(Credentials::parse("Basic abc").is_none());
        let c = Credentials::parse("Digest username=\"a\\\"b\",realm=x,,nonce=").unwrap();
        assert_eq!(c.username(), Some("a\"b"));
        assert_eq!(c.realm(), Some("x"));
        assert!(Credentials::parse("Digest").is_none());
    }
}
