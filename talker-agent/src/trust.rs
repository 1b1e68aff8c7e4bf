//! What the agent trusts: the matcher keys it pinned, the clock offset to the
//! matcher, and the token ids already used. Every call token passes through
//! [`Trust::check`] before the agent acts on it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::VerifyingKey;
use splitdial_sip::call_token::{
    self, Action, Claims, DEFAULT_SKEW_SECS, Expectation, KeySet, ReplayGuard, TokenError,
    TokenKind,
};
use std::sync::RwLock;

/// The agent's trust anchors and replay memory.
pub struct Trust {
    talker_id: String,
    keys: RwLock<KeySet>,
    /// Keys pinned in the configuration: kept whatever heartbeats announce.
    pinned: RwLock<Vec<(String, VerifyingKey)>>,
    replay: ReplayGuard,
    /// Seconds to add to our clock to get the matcher's (from heartbeats).
    clock_offset: RwLock<i64>,
    /// Tokens issued before this are refused: the replay memory starts empty at
    /// every start, so older tokens could otherwise be replayed after a restart.
    started_at: u64,
}

/// A matcher key given as base64 could not be used.
#[derive(Debug, thiserror::Error)]
#[error("not a base64 Ed25519 public key")]
pub struct BadKey;

/// Decodes a matcher public key given in standard base64 (32 bytes).
pub fn decode_key(key: &str) -> Result<VerifyingKey, BadKey> {
    let bytes: [u8; 32] = STANDARD
        .decode(key.trim())
        .map_err(|_| BadKey)?
        .try_into()
        .map_err(|_| BadKey)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| BadKey)
}

impl Trust {
    /// Trust for talker `talker_id`, with no matcher key yet.
    pub fn new(talker_id: impl Into<String>) -> Self {
        Self {
            talker_id: talker_id.into(),
            keys: RwLock::default(),
            pinned: RwLock::default(),
            replay: ReplayGuard::default(),
            clock_offset: RwLock::new(0),
            started_at: call_token::unix_now(),
        }
    }

    /// The talker id tokens must name as audience.
    pub fn talker_id(&self) -> &str {
        &self.talker_id
    }

    /// Pins a matcher key given in standard base64.
    pub fn pin_base64(&self, key: &str) -> Result<String, BadKey> {
        let key = decode_key(key)?;
        let kid = call_token::key_id(&key);
        if let Ok(mut pinned) = self.pinned.write() {
            pinned.push((kid.clone(), key));
        }
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(kid.clone(), key);
        }
        Ok(kid)
    }

    /// Replaces the matcher keys learnt from the matcher (enrollment, then each
    /// authenticated heartbeat reply) with `keys`; keys pinned in the
    /// configuration stay.
    pub fn set_matcher_keys(&self, keys: &[(String, VerifyingKey)]) {
        let mut set = KeySet::default();
        if let Ok(pinned) = self.pinned.read() {
            for (kid, key) in pinned.iter() {
                set.insert(kid.clone(), *key);
            }
        }
        for (kid, key) in keys {
            set.insert(kid.clone(), *key);
        }
        if let Ok(mut current) = self.keys.write() {
            *current = set;
        }
    }

    /// Sets the offset from our clock to the matcher's, in seconds (from the
    /// `time` of a heartbeat reply). The system clock is never touched.
    pub fn set_clock_offset(&self, seconds: i64) {
        if let Ok(mut offset) = self.clock_offset.write() {
            *offset = seconds;
        }
    }

    /// The current offset from our clock to the matcher's, in seconds.
    pub fn clock_offset(&self) -> i64 {
        self.clock_offset.read().map_or(0, |o| *o)
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
