//! Call tokens and owner tokens: compact JWS (RFC 7515) signed with EdDSA
//! (Ed25519), carried in the `Splitdial-Token` header, in the spirit of RFC 8225
//! PASSporT. A talker acts on a control INVITE, a REFER or an owner action only
//! with a token that passes every check in [`verify`].

use crate::uri_match::SipUri;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// The SIP header that carries a token.
pub const HEADER: &str = "Splitdial-Token";
/// Dial on answer: a control INVITE may name the first party to call in this header (a
/// `Refer-To` value), with that party's `refer` token in [`DIAL_TOKEN_HEADER`]. A talker that
/// dials at once echoes the header in its 200; one that does not is sent a REFER as usual.
pub const DIAL_HEADER: &str = "Splitdial-Dial";
/// The `refer` token for the party named in [`DIAL_HEADER`].
pub const DIAL_TOKEN_HEADER: &str = "Splitdial-Dial-Token";
/// The longest lifetime a token may have (`exp - iat`).
pub const MAX_LIFETIME_SECS: u64 = 30;
/// Clock difference tolerated between the matcher and the talker.
pub const DEFAULT_SKEW_SECS: u64 = 5;

/// What a token may be used for; its `typ` keeps kinds from being swapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Control INVITE and REFER tokens, minted for the call controller.
    Call,
    /// Owner actions on a talker's local API (answer, decline, hang up).
    Owner,
}

impl TokenKind {
    /// The JOSE `typ` value.
    pub fn typ(self) -> &'static str {
        match self {
            Self::Call => "splitdial-call+jwt",
            Self::Owner => "splitdial-owner+jwt",
        }
    }
}

/// The action a token authorises (`act` claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Auto-answer the control INVITE.
    Control,
    /// Act on a REFER: call its target.
    Refer,
    /// Answer a ringing call (owner).
    Answer,
    /// Decline a ringing call (owner).
    Decline,
    /// Hang up a call (owner).
    Hangup,
}

/// The claims of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Audience: the talker id.
    pub aud: String,
    /// Unique token id; accepted once.
    pub jti: String,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expires at (Unix seconds), at most [`MAX_LIFETIME_SECS`] after `iat`.
    pub exp: u64,
    /// The matcher's call id.
    pub call: String,
    /// The SIP Call-ID the token is bound to (the control leg's, or the call's).
    pub dlg: String,
    /// The authorised action.
    pub act: Action,
    /// For `refer`: the only Refer-To target allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct JoseHeader {
    alg: String,
    typ: String,
    kid: String,
}

/// Why a token is refused. Every variant means: answer 403, do nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts of JSON.
    #[error("malformed token")]
    Malformed,
    /// `alg` is not EdDSA.
    #[error("algorithm not allowed")]
    Algorithm,
    /// `typ` is not the kind expected here.
    #[error("wrong token type")]
    Kind,
    /// `kid` names no key we hold.
    #[error("unknown key")]
    UnknownKey,
    /// `kid` names a key the matcher revoked: refused whatever the token's
    /// `exp` says.
    #[error("key revoked")]
    RevokedKey,
    /// The signature does not verify.
    #[error("bad signature")]
    Signature,
    /// Issued in the future, expired, or living longer than allowed.
    #[error("token not valid now")]
    Time,
    /// Meant for another talker.
    #[error("wrong audience")]
    Audience,
    /// For another action.
    #[error("wrong action")]
    Action,
    /// Bound to another SIP dialog.
    #[error("wrong dialog")]
    Dialog,
    /// The REFER target does not match, or is not acceptable.
    #[error("wrong target")]
    Target,
    /// Already used.
    #[error("token replayed")]
    Replay,
}

/// Mints tokens with the matcher's key.
pub struct Issuer {
    key: SigningKey,
    kid: String,
}

impl Issuer {
    /// An issuer with the 32-byte Ed25519 seed `seed`, known to talkers as `kid`.
    pub fn new(seed: [u8; 32], kid: impl Into<String>) -> Self {
        Self {
            key: SigningKey::from_bytes(&seed),
            kid: kid.into(),
        }
    }

    /// The public key talkers pin.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `claims` as a token of `kind`.
    pub fn issue(&self, kind: TokenKind, claims: &Claims) -> String {
        let header = JoseHeader {
            alg: "EdDSA".into(),
            typ: kind.typ().into(),
            kid: self.kid.clone(),
        };
        // Serialising these plain structs cannot fail.
        let header = serde_json::to_vec(&header).unwrap_or_default();
        let claims = serde_json::to_vec(claims).unwrap_or_default();
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let signature = self.key.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }
}

/// The issuer a long-lived signer (the matcher's call controller) uses now:
/// clones share it, and [`CurrentIssuer::set`] swaps the key for every one of
/// them at once, so a key rotation reaches calls without a restart.
#[derive(Clone)]
pub struct CurrentIssuer {
    issuer: Arc<RwLock<Arc<Issuer>>>,
}

impl std::fmt::Debug for CurrentIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key itself never reaches a log.
        f.debug_struct("CurrentIssuer")
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

impl CurrentIssuer {
    /// Starts with `issuer`.
    pub fn new(issuer: Issuer) -> Self {
        Self {
            issuer: Arc::new(RwLock::new(Arc::new(issuer))),
        }
    }

    /// The issuer in force now.
    pub fn get(&self) -> Arc<Issuer> {
        // A poisoned lock still holds a whole issuer (it is swapped in one store).
        match self.issuer.read() {
            Ok(issuer) => Arc::clone(&issuer),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Makes `issuer` sign from now on.
    pub fn set(&self, issuer: Issuer) {
        let issuer = Arc::new(issuer);
        match self.issuer.write() {
            Ok(mut current) => *current = issuer,
            Err(poisoned) => *poisoned.into_inner() = issuer,
        }
    }

    /// The key id of the issuer in force now.
    pub fn kid(&self) -> String {
        self.get().kid().to_owned()
    }

    /// Signs `claims` as a token of `kind` with the issuer in force now.
    pub fn issue(&self, kind: TokenKind, claims: &Claims) -> String {
        self.get().issue(kind, claims)
    }
}

/// The matcher keys a talker accepts, by key id (several during a rotation),
/// and the ids of keys the matcher revoked, which it never accepts again.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, VerifyingKey>,
    revoked: HashSet<String>,
}

impl KeySet {
    /// Adds (or replaces) a key; a revoked `kid` is not added.
    pub fn insert(&mut self, kid: impl Into<String>, key: VerifyingKey) {
        let kid = kid.into();
        if !self.revoked.contains(&kid) {
            self.keys.insert(kid, key);
        }
    }

    /// Drops the key `kid` and refuses it from now on ([`TokenError::RevokedKey`]),
    /// even if it is inserted again.
    pub fn revoke(&mut self, kid: impl Into<String>) {
        let kid = kid.into();
        self.keys.remove(&kid);
        self.revoked.insert(kid);
    }

    /// Whether `kid` was revoked.
    pub fn is_revoked(&self, kid: &str) -> bool {
        self.revoked.contains(kid)
    }

    /// Removes a retired key.
    pub fn remove(&mut self, kid: &str) {
        self.keys.remove(kid);
    }

    /// The key named `kid`, if held.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }
}

/// What the receiver requires of a token.
#[derive(Debug, Clone)]
pub struct Expectation<'a> {
    /// The token kind.
    pub kind: TokenKind,
    /// This talker's id.
    pub audience: &'a str,
    /// The action being taken.
    pub action: Action,
    /// The SIP Call-ID of the dialog the request belongs to.
    pub dialog: &'a str,
    /// For REFER: the Refer-To value, compared by RFC 3261 §19.1.4.
    pub refer_to: Option<&'a str>,
    /// Current time, Unix seconds (the talker's clock corrected by its offset).
    pub now: u64,
    /// Allowed clock skew in seconds.
    pub skew: u64,
}

/// The key id of a matcher key: `m-` and 16 hex digits of its SHA-256, so both
/// sides derive the same id from the key alone.
pub fn key_id(key: &VerifyingKey) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.to_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("m-{hex}")
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Checks a token completely (except single use: see [`ReplayGuard`]).
pub fn verify(token: &str, keys: &KeySet, expect: &Expectation<'_>) -> Result<Claims, TokenError> {
    let mut parts = token.trim().split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let decode = |p: &str| URL_SAFE_NO_PAD.decode(p).map_err(|_| TokenError::Malformed);
    let header: JoseHeader =
        serde_json::from_slice(&decode(h)?).map_err(|_| TokenError::Malformed)?;
    if header.alg != "EdDSA" {
        return Err(TokenError::Algorithm);
    }
    if header.typ != expect.kind.typ() {
        return Err(TokenError::Kind);
    }
    if keys.is_revoked(&header.kid) {
        return Err(TokenError::RevokedKey);
    }
    let key = keys.keys.get(&header.kid).ok_or(TokenError::UnknownKey)?;
    let signature: [u8; 64] = decode(s)?.try_into().map_err(|_| TokenError::Malformed)?;
    key.verify(
        format!("{h}.{c}").as_bytes(),
        &Signature::from_bytes(&signature),
    )
    .map_err(|_| TokenError::Signature)?;
    let claims: Claims = serde_json::from_slice(&decode(c)?).map_err(|_| TokenError::Malformed)?;

    if claims.exp < claims.iat
        || claims.exp - claims.iat > MAX_LIFETIME_SECS
        || claims.iat > expect.now + expect.skew
        || claims.exp + expect.skew < expect.now
    {
        return Err(TokenError::Time);
    }
    if claims.aud != expect.audience {
        return Err(TokenError::Audience);
    }
    if claims.act != expect.action {
        return Err(TokenError::Action);
    }
    if claims.dlg != expect.dialog {
        return Err(TokenError::Dialog);
    }
    if expect.action == Action::Refer {
        check_refer_target(claims.target.as_deref(), expect.refer_to)?;
    }
    Ok(claims)
}

/// A REFER target must be a plain SIP URI (no embedded headers, no `method`)
/// equivalent to the token's `target`.
fn check_refer_target(target: Option<&str>, refer_to: Option<&str>) -> Result<(), TokenError> {
    let (Some(target), Some(refer_to)) = (target, refer_to) else {
        return Err(TokenError::Target);
    };
    let refer_to = SipUri::parse(refer_to).map_err(|_| TokenError::Target)?;
    if !refer_to.headers.is_empty() || refer_to.params.contains_key("method") {
        return Err(TokenError::Target);
    }
    let target = SipUri::parse(target).map_err(|_| TokenError::Target)?;
    if target.equivalent(&refer_to) {
        Ok(())
    } else {
        Err(TokenError::Target)
    }
}

/// Remembers used token ids, so each is accepted once. An id is kept until a
/// deadline on the local monotonic clock (the token's remaining lifetime and
/// twice the skew, counted from its use), never by the matcher's clock: a
/// clock offset that moves (it follows heartbeat replies) cannot empty the
/// store early. A forgotten id's `exp` raises a floor below which every token
/// counts as used, so not even an offset that moves back revives one.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    memory: Mutex<ReplayMemory>,
}

#[derive(Debug, Default)]
struct ReplayMemory {
    /// Used ids with the local instant until which each is kept, and its `exp`.
    seen: HashMap<String, (tokio::time::Instant, u64)>,
    /// The latest `exp` of a forgotten id: tokens expiring no later are refused.
    forgotten_through: u64,
}

impl ReplayGuard {
    /// Marks `claims.jti` used, `now` being the matcher's time (Unix seconds);
    /// `Err(Replay)` if it was already, or if it expires no later than an id
    /// already forgotten.
    pub fn consume(&self, claims: &Claims, now: u64) -> Result<(), TokenError> {
        let mut memory = self
            .memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let local = tokio::time::Instant::now();
        let ReplayMemory {
            seen,
            forgotten_through,
        } = &mut *memory;
        seen.retain(|_, (deadline, exp)| {
            let keep = *deadline > local;
            if !keep {
                *forgotten_through = (*forgotten_through).max(*exp);
            }
            keep
        });
        if claims.exp <= *forgotten_through || seen.contains_key(&claims.jti) {
            return Err(TokenError::Replay);
        }
        // Bounded by the longest lifetime, whatever `now` says.
        let remaining = (claims.exp + DEFAULT_SKEW_SECS * 2)
            .saturating_sub(now)
            .min(MAX_LIFETIME_SECS + DEFAULT_SKEW_SECS * 2);
        let deadline = local + std::time::Duration::from_secs(remaining);
        seen.insert(claims.jti.clone(), (deadline, claims.exp));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Issuer, KeySet) {
        let issuer = Issuer::new([7; 32], "m1");
        let mut keys = KeySet::default();
        keys.insert("m1", issuer.verifying_key());
        (issuer, keys)
    }

    fn claims(act: Action, now: u64) -> Claims {
        Claims {
            aud: "tv".into(),
            jti: "j1".into(),
            iat: now,
            exp: now + 20,
            call: "c1".into(),
            dlg: "dlg-1".into(),
            act,
            target: (act == Action::Refer).then(|| "sip:bob@work.example".into()),
        }
    }

    fn expect(act: Action, now: u64, refer_to: Option<&str>) -> Expectation<'_> {
        Expectation {
            kind: TokenKind::Call,
            audience: "tv",
            action: act,
            dialog: "dlg-1",
            refer_to,
            now,
            skew: DEFAULT_SKEW_SECS,
        }
    }

    #[test]
    fn a_valid_token_passes_once() {
        let (issuer, keys) = setup();
        let now = 1_000_000;
        let t = issuer.issue(TokenKind::Call, &claims(Action::Control, now));
        let c = verify(&t, &keys, &expect(Action::Control, now + 3, None)).unwrap();
        let guard = ReplayGuard::default();
        guard.consume(&c, now).unwrap();
        assert_eq!(guard.consume(&c, now), Err(TokenError::Replay));
    }

    /// A revoked key's token is refused although it is unexpired and signed
    /// well, and inserting the key again does not bring it back.
    #[test]
    fn a_revoked_keys_tokens_are_refused_before_they_expire() {
        let (issuer, mut keys) = setup();
        let now = 1_000_000;
        let t = issuer.issue(TokenKind::Call, &claims(Action::Control, now));
        let e = expect(Action::Control, now, None);
        assert!(verify(&t, &keys, &e).is_ok());
        keys.revoke("m1");
        assert_eq!(verify(&t, &keys, &e), Err(TokenError::RevokedKey));
        keys.insert("m1", issuer.verifying_key());
        assert_eq!(verify(&t, &keys, &e), Err(TokenError::RevokedKey));
        assert!(keys.get("m1").is_none());
    }

    #[test]
    fn the_current_issuer_signs_with_the_key_set_last() {
        let current = CurrentIssuer::new(Issuer::new([7; 32], "m1"));
        let copy = current.clone();
        let now = 1_000_000;
        let kid = |t: &str| {
            let header = t.split('.').next().unwrap_or_default();
            let header: JoseHeader =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
            header.kid
        };
        let before = copy.issue(TokenKind::Call, &claims(Action::Control, now));
        current.set(Issuer::new([8; 32], "m2"));
        let after = copy.issue(TokenKind::Call, &claims(Action::Control, now));
        assert_eq!((kid(&before), kid(&after)), ("m1".into(), "m2".into()));
        assert_eq!(copy.kid(), "m2");
    }

    #[test]
    fn every_check_refuses_what_it_should() {
        let (issuer, keys) = setup();
        let now = 1_000_000;
        let good = claims(Action::Control, now);
        let t = issuer.issue(TokenKind::Call, &good);
        let e = expect(Action::Control, now, None);
        assert_eq!(
            verify(
                &t,
                &keys,
                &Expectation {
                    kind: TokenKind::Owner,
                    ..e.clone()
                }
            ),
            Err(TokenError::Kind)
        );
        assert_eq!(
            verify(
                &t,
                &keys,
                &Expectation {
                    audience: "pc",
                    ..e.clone()
                }
            ),
            Err(TokenError::Audience)
        );
        assert_eq!(
            verify(
                &t,
                &keys,
                &Expectation {
                    action: Action::Hangup,
                    ..e.clone()
                }
            ),
            Err(TokenError::Action)
        );
        assert_eq!(
            verify(
                &t,
                &keys,
                &Expectation {
                    dialog: "other",
                    ..e.clone()
                }
            ),
            Err(TokenError::Dialog)
        );
        assert_eq!(
            verify(
                &t,
                &keys,
                &Expectation {
                    now: now + 60,
                    ..e.clone()
                }
            ),
            Err(TokenError::Time)
        );
        assert_eq!(
            verify(
                &t,
                &keys,
                &Expectation {
                    now: now - 60,
                    ..e.clone()
                }
            ),
            Err(TokenError::Time)
        );
        let long = Claims {
            exp: now + 31,
            ..good.clone()
        };
        assert_eq!(
            verify(&issuer.issue(TokenKind::Call, &long), &keys, &e),
            Err(TokenError::Time)
        );
        let stranger = Issuer::new([9; 32], "m1");
        assert_eq!(
            verify(&stranger.issue(TokenKind::Call, &good), &keys, &e),
            Err(TokenError::Signature)
        );
        let unknown = Issuer::new([7; 32], "m2");
        assert_eq!(
            verify(&unknown.issue(TokenKind::Call, &good), &keys, &e),
            Err(TokenError::UnknownKey)
        );
        // A tampered payload breaks the signature.
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        let mut tampered = good;
        tampered.aud = "pc".into();
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&tampered).unwrap());
        assert_eq!(
            verify(
                &parts.join("."),
                &keys,
                &Expectation {
                    audience: "pc",
                    ..e.clone()
                }
            ),
            Err(TokenError::Signature)
        );
        // alg=none is refused before anything else.
        let none_header =
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"splitdial-call+jwt","kid":"m1"}"#);
        assert_eq!(
            verify(&format!("{none_header}.{}.", parts[1]), &keys, &e),
            Err(TokenError::Algorithm)
        );
        assert_eq!(verify("a.b", &keys, &e), Err(TokenError::Malformed));
    }

    #[test]
    fn refer_target_is_compared_by_rfc3261_rules() {
        let (issuer, keys) = setup();
        let now = 1_000_000;
        let t = issuer.issue(TokenKind::Call, &claims(Action::Refer, now));
        let ok = |refer_to| verify(&t, &keys, &expect(Action::Refer, now, Some(refer_to)));
        assert!(ok("<sip:bob@WORK.example>").is_ok());
        assert_eq!(ok("<sip:eve@work.example>"), Err(TokenError::Target));
        assert_eq!(
            ok("<sip:bob@work.example?Replaces=x>"),
            Err(TokenError::Target)
        );
        assert_eq!(
            ok("<sip:bob@work.example;method=BYE>"),
            Err(TokenError::Target)
        );
        assert_eq!(ok("<tel:+1234>"), Err(TokenError::Target));
        assert_eq!(ok("<sip:bob@work.example:5060>"), Err(TokenError::Target));
    }

    /// On paused time: a used id stays used while the matcher's clock (the
    /// offset) jumps ahead and back, until its local deadline; after that the
    /// floor still refuses it, and a later token is taken.
    #[tokio::test(start_paused = true)]
    async fn used_ids_are_kept_by_the_local_clock_not_the_matchers() {
        let guard = ReplayGuard::default();
        let now = 1_000_000;
        let first = claims(Action::Control, now);
        guard.consume(&first, now).unwrap();
        // The offset jumps 100 s ahead (a purge by the matcher's clock would
        // forget the first id here) while another token is used.
        let second = Claims {
            jti: "j2".into(),
            ..claims(Action::Control, now)
        };
        guard.consume(&second, now + 100).unwrap();
        // Back to the old offset: the first token is still remembered.
        assert_eq!(guard.consume(&first, now + 1), Err(TokenError::Replay));

        // Past its local deadline (20 s of life and 10 s of skew) it is
        // forgotten, but tokens expiring no later than it stay refused.
        tokio::time::advance(std::time::Duration::from_secs(31)).await;
        assert_eq!(guard.consume(&first, now + 1), Err(TokenError::Replay));
        let older = Claims {
            jti: "j3".into(),
            ..claims(Action::Control, now - 5)
        };
        assert_eq!(guard.consume(&older, now + 1), Err(TokenError::Replay));
        let later = Claims {
            jti: "j4".into(),
            ..claims(Action::Control, now + 31)
        };
        guard.consume(&later, now + 31).unwrap();
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(s in ".{0,300}") {
            let (_, keys) = setup();
            let _ = verify(&s, &keys, &expect(Action::Control, 1, None));
        }
    }
}
