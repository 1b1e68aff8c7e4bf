//! What the agent trusts: the matcher keys it pinned, the keys it learnt from
//! the matcher, the clock offset to the matcher, and the token ids already
//! used. Every call token passes through [`Trust::check`] before the agent
//! acts on it; every heartbeat reply's key set and time pass through
//! [`Trust::take_update`] before the agent believes them
//! (`docs/talker-agent.md`, "Trust").

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use splitdial_api::{KeySetSignature, MatcherKey, revoking_key_set_signing_input, time_ms};
use splitdial_sip::call_token::{
    self, Action, Claims, DEFAULT_SKEW_SECS, Expectation, KeySet, ReplayGuard, TokenError,
    TokenKind,
};
use std::collections::BTreeSet;
use std::sync::RwLock;

/// The most the clock offset to the matcher may move in one heartbeat reply
/// (after the first since the start, which sets it).
pub const MAX_OFFSET_STEP_SECS: i64 = 60;

/// The agent's trust anchors and replay memory.
pub struct Trust {
    talker_id: String,
    keys: RwLock<KeySet>,
    /// Keys pinned in the configuration: kept whatever heartbeats announce,
    /// unless the matcher revokes them.
    pinned: RwLock<Vec<(String, VerifyingKey)>>,
    /// Kids the matcher revoked: never trusted again while the agent runs,
    /// whoever names them (a pin, the enrollment, a later key set).
    revoked: RwLock<BTreeSet<String>>,
    replay: ReplayGuard,
    /// The offset to the matcher's clock (from heartbeats).
    clock: RwLock<ClockOffset>,
    /// Tokens issued before this are refused: the replay memory starts empty at
    /// every start, so older tokens could otherwise be replayed after a restart.
    started_at: u64,
}

/// Seconds to add to our clock to get the matcher's.
#[derive(Debug, Clone, Copy, Default)]
struct ClockOffset {
    seconds: i64,
    /// Whether a heartbeat reply set it since the start; until then any offset
    /// is taken (our clock may be off by any amount), after it each move is
    /// bounded by [`MAX_OFFSET_STEP_SECS`].
    synced: bool,
}

/// A matcher key given as base64 could not be used.
#[derive(Debug, thiserror::Error)]
#[error("not a base64 Ed25519 public key")]
pub struct BadKey;

/// Why a heartbeat reply's key set and time were not taken. Whatever the
/// reason, the keys, the offset and the replay memory stay as they were.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpdateRefused {
    /// The reply names no key.
    #[error("the key set is empty")]
    NoKeys,
    /// The reply carries no signature at all.
    #[error("the key set is not signed")]
    Unsigned,
    /// No signature checks with a key this talker holds.
    #[error("no signature on the key set checks with a matcher key this talker holds")]
    Signature,
    /// A key is not an Ed25519 key, or its `kid` is not its key id.
    #[error("key {kid:?}: {problem}")]
    Key {
        /// The `kid` as sent.
        kid: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The reply's `time` is not a Unix time.
    #[error("time {0} is not a Unix time")]
    Time(f64),
    /// The offset would move more than [`MAX_OFFSET_STEP_SECS`].
    #[error(
        "the clock offset to the matcher would jump from {from} s to {to} s \
         (at most {MAX_OFFSET_STEP_SECS} s per heartbeat); kept {from} s"
    )]
    ClockJump {
        /// The offset in force (kept).
        from: i64,
        /// The offset the reply asked for.
        to: i64,
    },
}

/// A heartbeat reply's trust-relevant part, as received.
#[derive(Debug, Clone, Copy)]
pub struct KeyUpdate<'a> {
    /// The key set that would replace the learnt keys.
    pub keys: &'a [MatcherKey],
    /// The kids the matcher revoked: dropped at once, pinned or learnt.
    pub revoked: &'a [String],
    /// The matcher's signatures over it.
    pub signatures: &'a [KeySetSignature],
    /// The matcher's time, Unix seconds.
    pub time: f64,
}

/// What [`Trust::take_update`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateTaken {
    /// The new clock offset, when it changed.
    pub new_offset: Option<i64>,
    /// The kids this update revoked that the talker had not known revoked.
    pub newly_revoked: Vec<String>,
}

/// Decodes a matcher key given in standard base64 (32 bytes).
pub fn decode_key(key: &str) -> Result<VerifyingKey, BadKey> {
    let bytes: [u8; 32] = STANDARD
        .decode(key.trim())
        .map_err(|_| BadKey)?
        .try_into()
        .map_err(|_| BadKey)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| BadKey)
}

/// Decodes a published matcher key and checks that its `kid` is its key id
/// (`m-` and 16 hex digits of its SHA-256, as the matcher derives it).
pub fn decode_matcher_key(key: &MatcherKey) -> Result<VerifyingKey, String> {
    let decoded = decode_key(&key.public_key).map_err(|e| e.to_string())?;
    let id = call_token::key_id(&decoded);
    if id != key.kid {
        return Err(format!("kid is not the key's id ({id})"));
    }
    Ok(decoded)
}

impl Trust {
    /// Trust for talker `talker_id`, with no matcher key yet.
    pub fn new(talker_id: impl Into<String>) -> Self {
        Self {
            talker_id: talker_id.into(),
            keys: RwLock::default(),
            pinned: RwLock::default(),
            revoked: RwLock::default(),
            replay: ReplayGuard::default(),
            clock: RwLock::default(),
            started_at: call_token::unix_now(),
        }
    }

    /// The talker id tokens must name as audience.
    pub fn talker_id(&self) -> &str {
        &self.talker_id
    }

    /// Pins a matcher key given in standard base64; its kid. A key the matcher
    /// revoked (see [`Trust::revoke_remembered`]) is not pinned: the caller
    /// checks [`Trust::is_revoked`] to say so.
    pub fn pin_base64(&self, key: &str) -> Result<String, BadKey> {
        let key = decode_key(key)?;
        let kid = call_token::key_id(&key);
        if self.is_revoked(&kid) {
            return Ok(kid);
        }
        if let Ok(mut pinned) = self.pinned.write() {
            pinned.push((kid.clone(), key));
        }
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(kid.clone(), key);
        }
        Ok(kid)
    }

    /// Replaces the matcher keys learnt from the matcher (enrollment, then each
    /// heartbeat reply [`Trust::take_update`] accepted) with `keys`; keys
    /// pinned in the configuration stay, a learnt key never takes a pinned
    /// key's `kid`, and a revoked key stays out.
    pub fn set_matcher_keys(&self, keys: &[(String, VerifyingKey)]) {
        let mut set = KeySet::default();
        for kid in self.revoked.read().map(|r| r.clone()).unwrap_or_default() {
            set.revoke(kid);
        }
        let pinned = self.pinned.read().map(|p| p.clone()).unwrap_or_default();
        for (kid, key) in keys {
            if pinned.iter().any(|(p, _)| p == kid) {
                continue;
            }
            set.insert(kid.clone(), *key);
        }
        for (kid, key) in &pinned {
            set.insert(kid.clone(), *key);
        }
        if let Ok(mut current) = self.keys.write() {
            *current = set;
        }
    }

    /// Takes the key set and the time of a heartbeat reply whose midpoint on
    /// our clock was `local_mid` (Unix seconds), all or nothing: the set must
    /// be signed over this talker's id and the reply's time by a key this
    /// talker holds now, every `kid` must be its key's id, a key may not
    /// displace a pinned one, and the offset may move at most
    /// [`MAX_OFFSET_STEP_SECS`] (the first reply since the start sets it).
    /// Each revoked kid is dropped at once, a pinned one too, and refused from
    /// then on; the revocations alone are heeded even from a set that does
    /// not check (they only take trust away).
    pub fn take_update(
        &self,
        update: &KeyUpdate<'_>,
        local_mid: f64,
    ) -> Result<UpdateTaken, UpdateRefused> {
        if update.keys.is_empty() {
            return Err(UpdateRefused::NoKeys);
        }
        let time = time_ms(update.time).ok_or(UpdateRefused::Time(update.time))?;
        if let Err(refused) = self.check_signatures(update, time) {
            // A revocation only takes trust away, so it is heeded even when no
            // key the talker holds vouches for the set: after `matcher key
            // rotate --revoke` of the only key it held, the talker refuses
            // that key's tokens at once, and every token until re-enrolled.
            self.revoke(update.revoked);
            return Err(refused);
        }
        let keys = self.learnt_keys(update.keys, update.revoked)?;
        #[allow(clippy::cast_possible_truncation)] // Rounded seconds, bounded by time_ms.
        let to = (update.time - local_mid).round() as i64;
        let clock = self.clock.read().map(|c| *c).unwrap_or_default();
        if clock.synced && (to - clock.seconds).abs() > MAX_OFFSET_STEP_SECS {
            return Err(UpdateRefused::ClockJump {
                from: clock.seconds,
                to,
            });
        }
        let newly_revoked = self.revoke(update.revoked);
        self.set_matcher_keys(&keys);
        if let Ok(mut current) = self.clock.write() {
            *current = ClockOffset {
                seconds: to,
                synced: true,
            };
        }
        Ok(UpdateTaken {
            new_offset: (!clock.synced || to != clock.seconds).then_some(to),
            newly_revoked,
        })
    }

    /// Applies the revocations an earlier run of the agent learnt (kept in its
    /// enrollment), before anything is pinned or learnt: a revoked key pinned
    /// in the configuration must not come back with a restart.
    pub fn revoke_remembered(&self, kids: &[String]) {
        self.revoke(kids);
    }

    /// Whether the matcher revoked key `kid`.
    pub fn is_revoked(&self, kid: &str) -> bool {
        self.revoked.read().is_ok_and(|r| r.contains(kid))
    }

    /// Every kid the matcher revoked that this agent knows of, in order: what
    /// its enrollment keeps across restarts.
    pub fn revoked_kids(&self) -> Vec<String> {
        self.revoked
            .read()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Marks `kids` revoked and unpins any of them; those not revoked before.
    fn revoke(&self, kids: &[String]) -> Vec<String> {
        let Ok(mut revoked) = self.revoked.write() else {
            return Vec::new();
        };
        let fresh: Vec<String> = kids
            .iter()
            .filter(|kid| revoked.insert((*kid).clone()))
            .cloned()
            .collect();
        if let Ok(mut pinned) = self.pinned.write() {
            pinned.retain(|(kid, _)| !revoked.contains(kid));
        }
        if let Ok(mut keys) = self.keys.write() {
            for kid in kids {
                keys.revoke(kid.clone());
            }
        }
        fresh
    }

    /// One signature over the key set must check with a key held now.
    fn check_signatures(&self, update: &KeyUpdate<'_>, time: i64) -> Result<(), UpdateRefused> {
        if update.signatures.is_empty() {
            return Err(UpdateRefused::Unsigned);
        }
        let input =
            revoking_key_set_signing_input(&self.talker_id, time, update.keys, update.revoked);
        let keys = self.keys.read().map_err(|_| UpdateRefused::Signature)?;
        let checks = |s: &KeySetSignature| {
            // A key this very set revokes cannot vouch for it.
            if update.revoked.contains(&s.kid) {
                return false;
            }
            let Some(key) = keys.get(&s.kid) else {
                return false;
            };
            let Some(bytes) = STANDARD
                .decode(s.signature.trim())
                .ok()
                .and_then(|b| <[u8; 64]>::try_from(b).ok())
            else {
                return false;
            };
            key.verify(&input, &Signature::from_bytes(&bytes)).is_ok()
        };
        if update.signatures.iter().any(checks) {
            Ok(())
        } else {
            Err(UpdateRefused::Signature)
        }
    }

    /// The keys of a signed set, each checked against its `kid`, the pins and
    /// the revoked list.
    fn learnt_keys(
        &self,
        keys: &[MatcherKey],
        revoked: &[String],
    ) -> Result<Vec<(String, VerifyingKey)>, UpdateRefused> {
        let pinned = self.pinned.read().map(|p| p.clone()).unwrap_or_default();
        keys.iter()
            .map(|k| {
                let refused = |problem: String| UpdateRefused::Key {
                    kid: k.kid.clone(),
                    problem,
                };
                let key = decode_matcher_key(k).map_err(refused)?;
                if pinned.iter().any(|(kid, p)| *kid == k.kid && *p != key) {
                    return Err(refused("a pinned key has this kid".into()));
                }
                if revoked.contains(&k.kid) {
                    return Err(refused("published and revoked at once".into()));
                }
                Ok((k.kid.clone(), key))
            })
            .collect()
    }

    /// The current offset from our clock to the matcher's, in seconds.
    pub fn clock_offset(&self) -> i64 {
        self.clock.read().map_or(0, |c| c.seconds)
    }

    /// Now, on the matcher's clock.
    pub fn now(&self) -> u64 {
        call_token::unix_now().saturating_add_signed(self.clock_offset())
    }

    /// Checks a token for `action` in the dialog `call_id` (and, for a REFER, its
    /// Refer-To), and uses it up. Any failure means: 403, do nothing.
    pub fn check(
        &self,
        token: Option<&str>,
        action: Action,
        call_id: &str,
        refer_to: Option<&str>,
    ) -> Result<Claims, TokenError> {
        self.check_kind(TokenKind::Call, token, action, call_id, refer_to)
    }

    /// Checks an owner token (answer, decline, hang up on the local API) for
    /// the call whose SIP Call-ID is `call_id`, and uses it up.
    pub fn check_owner(
        &self,
        token: Option<&str>,
        action: Action,
        call_id: &str,
    ) -> Result<Claims, TokenError> {
        self.check_kind(TokenKind::Owner, token, action, call_id, None)
    }

    fn check_kind(
        &self,
        kind: TokenKind,
        token: Option<&str>,
        action: Action,
        call_id: &str,
        refer_to: Option<&str>,
    ) -> Result<Claims, TokenError> {
        let token = token.ok_or(TokenError::Malformed)?;
        let now = self.now();
        let keys = self.keys.read().map_err(|_| TokenError::UnknownKey)?;
        let claims = call_token::verify(
            token,
            &keys,
            &Expectation {
                kind,
                audience: &self.talker_id,
                action,
                dialog: call_id,
                refer_to,
                now,
                skew: DEFAULT_SKEW_SECS,
            },
        )?;
        // Our start time, on the matcher's clock like `iat`.
        let started_at = self.started_at.saturating_add_signed(self.clock_offset());
        if claims.iat + DEFAULT_SKEW_SECS < started_at {
            return Err(TokenError::Time);
        }
        self.replay.consume(&claims, now)?;
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use splitdial_sip::call_token::{Issuer, TokenError};

    const TALKER: &str = "tv-1";

    /// A matcher key: its issuer (tokens) and its published entry.
    struct MatcherSide {
        signing: SigningKey,
        issuer: Issuer,
        published: MatcherKey,
    }

    fn matcher_key(seed: u8) -> MatcherSide {
        let signing = SigningKey::from_bytes(&[seed; 32]);
        let kid = call_token::key_id(&signing.verifying_key());
        MatcherSide {
            issuer: Issuer::new([seed; 32], kid.clone()),
            published: MatcherKey {
                kid,
                public_key: STANDARD.encode(signing.verifying_key().to_bytes()),
            },
            signing,
        }
    }

    /// A heartbeat reply's key part as received.
    struct Reply {
        keys: Vec<MatcherKey>,
        revoked: Vec<String>,
        signatures: Vec<KeySetSignature>,
        time: f64,
    }

    impl Reply {
        /// `keys` and `revoked` at `time`, signed over them by each of `by`
        /// under its own kid.
        fn signed(
            keys: &[&MatcherSide],
            revoked: &[&MatcherSide],
            by: &[&MatcherSide],
            time: f64,
        ) -> Self {
            let keys: Vec<MatcherKey> = keys.iter().map(|k| k.published.clone()).collect();
            let revoked: Vec<String> = revoked.iter().map(|k| k.published.kid.clone()).collect();
            let signatures = by
                .iter()
                .map(|k| sign(k, &k.published.kid, TALKER, time, &keys, &revoked))
                .collect();
            Self {
                keys,
                revoked,
                signatures,
                time,
            }
        }

        fn update(&self) -> KeyUpdate<'_> {
            KeyUpdate {
                keys: &self.keys,
                revoked: &self.revoked,
                signatures: &self.signatures,
                time: self.time,
            }
        }
    }

    fn sign(
        by: &MatcherSide,
        kid: &str,
        talker: &str,
        time: f64,
        keys: &[MatcherKey],
        revoked: &[String],
    ) -> KeySetSignature {
        let input = revoking_key_set_signing_input(talker, time_ms(time).unwrap(), keys, revoked);
        KeySetSignature {
            kid: kid.into(),
            signature: STANDARD.encode(by.signing.sign(&input).to_bytes()),
        }
    }

    fn now_f64() -> f64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    }

    /// A call token of `issuer` for a control INVITE in dialog `dlg`, on the
    /// matcher's clock `offset` seconds from ours.
    fn token(issuer: &Issuer, dlg: &str, offset: i64) -> String {
        let now = call_token::unix_now().saturating_add_signed(offset);
        issuer.issue(
            TokenKind::Call,
            &Claims {
                aud: TALKER.into(),
                jti: format!("j-{dlg}"),
                iat: now,
                exp: now + 20,
                call: "call-1".into(),
                dlg: dlg.into(),
                act: Action::Control,
                target: None,
            },
        )
    }

    fn accepts(trust: &Trust, issuer: &Issuer, dlg: &str) -> Result<Claims, TokenError> {
        let t = token(issuer, dlg, trust.clock_offset());
        trust.check(Some(&t), Action::Control, dlg, None)
    }

    /// A talker that learnt `old` at enrollment and synced its clock once.
    fn enrolled(old: &MatcherSide) -> Trust {
        let trust = Trust::new(TALKER);
        trust.set_matcher_keys(&[(
            old.published.kid.clone(),
            decode_matcher_key(&old.published).unwrap(),
        )]);
        let time = now_f64();
        let reply = Reply::signed(&[old], &[], &[old], time);
        trust.take_update(&reply.update(), time).unwrap();
        trust
    }

    #[test]
    fn a_rotation_signed_by_the_old_key_is_taken() {
        let (old, new) = (matcher_key(1), matcher_key(2));
        let trust = enrolled(&old);
        // The matcher rotated: both keys published, each signs.
        let time = now_f64();
        let rotated = Reply::signed(&[&new, &old], &[], &[&new, &old], time);
        trust.take_update(&rotated.update(), time).unwrap();
        assert!(accepts(&trust, &new.issuer, "d-new").is_ok());
        assert!(accepts(&trust, &old.issuer, "d-old").is_ok(), "overlap");
        // The overlap ends: the new key alone, signed by itself.
        let alone = Reply::signed(&[&new], &[], &[&new], time);
        trust.take_update(&alone.update(), time).unwrap();
        assert_eq!(
            accepts(&trust, &old.issuer, "d-retired"),
            Err(TokenError::UnknownKey)
        );
    }

    /// What a refused reply carries and why it is refused: what the case
    /// shows, keys, revoked kids, signatures, the refusal.
    type RefusalCase = (
        &'static str,
        Vec<MatcherKey>,
        Vec<String>,
        Vec<KeySetSignature>,
        UpdateRefused,
    );

    /// Every key set that does not check is refused as a whole: the offset
    /// stays, the old key's tokens still pass, the new key's do not. The
    /// cases differ only by what the reply carries.
    #[test]
    fn key_sets_that_do_not_check_are_refused_and_change_nothing() {
        let (old, new) = (matcher_key(1), matcher_key(2));
        let time = now_f64();
        let keys = vec![new.published.clone()];
        let signed_as = |by: &MatcherSide, kid: &str, talker: &str, at: f64, revoked: &[String]| {
            vec![sign(by, kid, talker, at, &keys, revoked)]
        };
        let old_kid = old.published.kid.clone();
        let mut renamed = new.published.clone();
        renamed.kid = "m-0123456789abcdef".into();
        let wrong_id = UpdateRefused::Key {
            kid: renamed.kid.clone(),
            problem: format!("kid is not the key's id ({})", new.published.kid),
        };
        let renamed_keys = vec![renamed];
        let both = UpdateRefused::Key {
            kid: new.published.kid.clone(),
            problem: "published and revoked at once".into(),
        };
        let new_revoked = vec![new.published.kid.clone()];
        #[rustfmt::skip]
        let cases: Vec<RefusalCase> = vec![
            ("unsigned", keys.clone(), vec![], vec![], UpdateRefused::Unsigned),
            ("signed by the new key only", keys.clone(), vec![],
                signed_as(&new, &new.published.kid, TALKER, time, &[]), UpdateRefused::Signature),
            ("a stranger's signature under the old kid", keys.clone(), vec![],
                signed_as(&new, &old_kid, TALKER, time, &[]), UpdateRefused::Signature),
            ("signed for another talker", keys.clone(), vec![],
                signed_as(&old, &old_kid, "pc-1", time, &[]), UpdateRefused::Signature),
            ("signed for another time", keys.clone(), vec![],
                signed_as(&old, &old_kid, TALKER, time + 1.0, &[]), UpdateRefused::Signature),
            ("a garbled signature", keys.clone(), vec![],
                vec![KeySetSignature { kid: old_kid.clone(), signature: "not base64!".into() }],
                UpdateRefused::Signature),
            ("a revocation added after signing", keys.clone(), vec!["m-0000000000000000".into()],
                signed_as(&old, &old_kid, TALKER, time, &[]), UpdateRefused::Signature),
            ("a kid that is not the key's id", renamed_keys.clone(), vec![],
                vec![sign(&old, &old_kid, TALKER, time, &renamed_keys, &[])], wrong_id),
            ("a key published and revoked at once", keys.clone(), new_revoked.clone(),
                signed_as(&old, &old_kid, TALKER, time, &new_revoked), both),
        ];
        for (what, keys, revoked, signatures, expected) in cases {
            let trust = enrolled(&old);
            let offset = trust.clock_offset();
            let update = KeyUpdate {
                keys: &keys,
                revoked: &revoked,
                signatures: &signatures,
                time,
            };
            assert_eq!(
                trust.take_update(&update, now_f64()),
                Err(expected),
                "{what}"
            );
            assert_eq!(trust.clock_offset(), offset, "{what}: offset kept");
            assert!(
                accepts(&trust, &old.issuer, "d-old").is_ok(),
                "{what}: old key kept"
            );
            assert_eq!(
                accepts(&trust, &new.issuer, "d-new"),
                Err(TokenError::UnknownKey),
                "{what}: new key not taken"
            );
        }
    }

    /// A revocation signed by a key still trusted drops the revoked keys at
    /// once, a pinned one too: their unexpired tokens are refused, and naming
    /// them again (as an enrollment would) does not bring them back.
    #[test]
    fn a_revoked_key_is_dropped_at_once_pinned_or_learnt() {
        let (old, new, pinned) = (matcher_key(1), matcher_key(2), matcher_key(3));
        let trust = enrolled(&old);
        trust.pin_base64(&pinned.published.public_key).unwrap();
        let time = now_f64();
        let rotated = Reply::signed(&[&new, &old], &[], &[&old], time);
        trust.take_update(&rotated.update(), time).unwrap();
        // Minted before the revocation, still unexpired after it.
        let by_old = token(&old.issuer, "d-old", 0);
        let by_pinned = token(&pinned.issuer, "d-pinned", 0);
        let revoking = Reply::signed(&[&new], &[&old, &pinned], &[&new], time);
        let taken = trust.take_update(&revoking.update(), time).unwrap();
        assert_eq!(taken.newly_revoked, revoking.revoked);
        for (dlg, t) in [("d-old", &by_old), ("d-pinned", &by_pinned)] {
            assert_eq!(
                trust.check(Some(t), Action::Control, dlg, None),
                Err(TokenError::RevokedKey),
                "{dlg}"
            );
        }
        assert!(accepts(&trust, &new.issuer, "d-new").is_ok());
        let named_again = [&old, &new].map(|k| {
            (
                k.published.kid.clone(),
                decode_matcher_key(&k.published).unwrap(),
            )
        });
        trust.set_matcher_keys(&named_again);
        assert_eq!(
            accepts(&trust, &old.issuer, "d-old-again"),
            Err(TokenError::RevokedKey)
        );
        let again = trust.take_update(&revoking.update(), time).unwrap();
        assert!(again.newly_revoked.is_empty(), "known already");
    }

    /// What one run learnt is revoked stays revoked in the next (the agent keeps
    /// [`Trust::revoked_kids`] in its enrollment): the same key pinned again in
    /// the configuration is not trusted.
    #[test]
    fn a_remembered_revocation_outlives_a_restart_and_a_pin() {
        let (old, new) = (matcher_key(1), matcher_key(2));
        let first_run = enrolled(&old);
        let time = now_f64();
        let rotated = Reply::signed(&[&new, &old], &[], &[&old], time);
        first_run.take_update(&rotated.update(), time).unwrap();
        let revoking = Reply::signed(&[&new], &[&old], &[&new], time);
        first_run.take_update(&revoking.update(), time).unwrap();
        let remembered = first_run.revoked_kids();
        assert_eq!(remembered, std::slice::from_ref(&old.published.kid));

        let next_run = Trust::new(TALKER);
        next_run.revoke_remembered(&remembered);
        let kid = next_run.pin_base64(&old.published.public_key).unwrap();
        assert!(next_run.is_revoked(&kid));
        assert_eq!(
            accepts(&next_run, &old.issuer, "d-old"),
            Err(TokenError::RevokedKey)
        );
    }

    /// `matcher key rotate --revoke` of the only key a talker holds: the new
    /// set cannot vouch for itself, so its keys are not taken, but the
    /// revocation is: the old key's tokens are refused at once.
    #[test]
    fn a_revocation_is_heeded_even_from_a_set_no_held_key_signs() {
        let (old, new) = (matcher_key(1), matcher_key(2));
        let trust = enrolled(&old);
        let by_old = token(&old.issuer, "d-old", 0);
        let time = now_f64();
        let revoking = Reply::signed(&[&new], &[&old], &[&new], time);
        assert_eq!(
            trust.take_update(&revoking.update(), time),
            Err(UpdateRefused::Signature)
        );
        assert_eq!(
            trust.check(Some(&by_old), Action::Control, "d-old", None),
            Err(TokenError::RevokedKey)
        );
        assert_eq!(
            accepts(&trust, &new.issuer, "d-new"),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn a_learnt_key_never_displaces_a_pinned_one() {
        let (pinned, old, new) = (matcher_key(3), matcher_key(1), matcher_key(2));
        let trust = enrolled(&old);
        trust.pin_base64(&pinned.published.public_key).unwrap();
        // Signed by a held key, but claiming the pinned key's kid.
        let mut impostor = new.published.clone();
        impostor.kid = pinned.published.kid.clone();
        let keys = [impostor];
        let time = now_f64();
        let signatures = [sign(&old, &old.published.kid, TALKER, time, &keys, &[])];
        let update = KeyUpdate {
            keys: &keys,
            revoked: &[],
            signatures: &signatures,
            time,
        };
        let refused = trust.take_update(&update, time).unwrap_err();
        assert!(
            matches!(&refused, UpdateRefused::Key { kid, .. } if *kid == pinned.published.kid),
            "{refused}"
        );
        // Learnt directly (as from enrollment) it is dropped, the pin stays.
        trust.set_matcher_keys(&[(pinned.published.kid.clone(), new.issuer.verifying_key())]);
        let impostor = Issuer::new([2; 32], pinned.published.kid.clone());
        assert_eq!(
            accepts(&trust, &impostor, "d-impostor"),
            Err(TokenError::Signature)
        );
        assert!(accepts(&trust, &pinned.issuer, "d-pinned").is_ok());
    }

    /// The first reply sets the offset; later ones move it by 59 s but not by
    /// 61 s (refused with the keys, the old offset kept).
    #[test]
    fn the_clock_offset_moves_at_most_a_minute_per_heartbeat() {
        let (old, new) = (matcher_key(1), matcher_key(2));
        let trust = Trust::new(TALKER);
        trust.set_matcher_keys(&[(
            old.published.kid.clone(),
            decode_matcher_key(&old.published).unwrap(),
        )]);
        let take = |offset: f64| {
            let time = (now_f64() + offset).round();
            let reply = Reply::signed(&[&old, &new], &[], &[&old], time);
            trust.take_update(&reply.update(), time - offset)
        };
        assert_eq!(take(300.0).unwrap().new_offset, Some(300), "first sync");
        assert_eq!(
            take(361.0).unwrap_err(),
            UpdateRefused::ClockJump { from: 300, to: 361 }
        );
        assert_eq!(trust.clock_offset(), 300);
        assert_eq!(
            take(239.0).unwrap_err(),
            UpdateRefused::ClockJump { from: 300, to: 239 }
        );
        assert_eq!(take(359.0).unwrap().new_offset, Some(359));
        assert_eq!(take(359.0).unwrap().new_offset, None);
        assert_eq!(take(300.0).unwrap().new_offset, Some(300));
        assert!(accepts(&trust, &new.issuer, "d-on-time").is_ok());
    }

    /// A used token stays used while the offset moves ahead and back (the
    /// replay memory runs on the local clock).
    #[test]
    fn a_replayed_token_is_refused_after_the_offset_moved() {
        let old = matcher_key(1);
        let trust = enrolled(&old);
        let take = |offset: f64| {
            let time = (now_f64() + offset).round();
            let reply = Reply::signed(&[&old], &[], &[&old], time);
            trust.take_update(&reply.update(), time - offset).unwrap();
        };
        take(0.0);
        let first = token(&old.issuer, "d-1", 0);
        trust
            .check(Some(&first), Action::Control, "d-1", None)
            .unwrap();
        // Ahead by 59 s: another token is used (a purge by the matcher's
        // clock would forget the first here).
        take(59.0);
        assert!(accepts(&trust, &old.issuer, "d-2").is_ok());
        take(0.0);
        assert_eq!(
            trust.check(Some(&first), Action::Control, "d-1", None),
            Err(TokenError::Replay)
        );
    }
}
