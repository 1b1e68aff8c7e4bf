//! The location service: where each user's devices can be reached right now.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One registered contact of a user (one device, usually).
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The contact URI requests are sent to, e.g. `sip:alice@127.0.0.1:5062;transport=tcp`.
    pub uri: String,
    /// The device's `+sip.instance` (RFC 5626), without quotes or angle brackets.
    pub instance: Option<String>,
    /// Call-ID of the REGISTER that made the binding.
    pub call_id: String,
    /// CSeq number of that REGISTER.
    pub cseq: u32,
    /// When the binding lapses.
    pub expires_at: Instant,
    /// Preference (`q`), 1.0 when absent.
    pub q: f32,
}

impl Binding {
    /// Seconds until the binding lapses, rounded up (a binding granted for 3600 s
    /// reads 3600 right after the REGISTER, not 3599).
    pub fn remaining(&self, now: Instant) -> u64 {
        self.expires_at
            .saturating_duration_since(now)
            .as_millis()
            .div_ceil(1000)
            .try_into()
            .unwrap_or(u64::MAX)
    }
}

/// A change asked for by one Contact of a REGISTER.
#[derive(Debug, Clone)]
pub struct ContactUpdate {
    /// The contact URI.
    pub uri: String,
    /// Its `+sip.instance`, if any.
    pub instance: Option<String>,
    /// Granted lifetime; zero removes the binding.
    pub expires: Duration,
    /// Preference.
    pub q: f32,
}

/// Why a REGISTER's updates were refused.
#[derive(Debug, PartialEq, Eq)]
pub enum UpdateError {
    /// Same Call-ID with a CSeq that is not higher (RFC 3261 §10.3 step 7): a
    /// stale or reordered REGISTER.
    OutOfOrder,
}

/// All bindings of all users, in memory.
#[derive(Debug, Default)]
pub struct Location {
    inner: Mutex<LocationState>,
}

#[derive(Debug, Default)]
struct LocationState {
    bindings: HashMap<String, Vec<Binding>>,
    /// Users that have registered at least once (tells 480 from 404 in open mode).
    known: HashSet<String>,
}

impl Location {
    fn state(&self) -> std::sync::MutexGuard<'_, LocationState> {
        // A poisoned lock only means another task panicked mid-update; the map
        // itself is still consistent enough to serve.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies the contacts of one REGISTER for `user` atomically.
    pub fn update(
        &self,
        user: &str,
        call_id: &str,
        cseq: u32,
        updates: &[ContactUpdate],
    ) -> Result<(), UpdateError> {
        let now = Instant::now();
        let mut state = self.state();
        state.known.insert(user.to_owned());
        let list = state.bindings.entry(user.to_owned()).or_default();
        list.retain(|b| b.expires_at > now);
        for u in updates {
            if let Some(existing) = list.iter().find(|b| same_binding(b, u))
                && existing.call_id == call_id
                && existing.cseq >= cseq
            {
                return Err(UpdateError::OutOfOrder);
            }
        }
        for u in updates {
            list.retain(|b| !same_binding(b, u));
            if !u.expires.is_zero() {
                list.push(Binding {
                    uri: u.uri.clone(),
                    instance: u.instance.clone(),
                    call_id: call_id.to_owned(),
                    cseq,
                    expires_at: now + u.expires,
                    q: u.q,
                });
            }
        }
        Ok(())
    }

    /// Removes every binding of `user` (`Contact: *`).
    pub fn remove_all(&self, user: &str) {
        let mut state = self.state();
        state.known.insert(user.to_owned());
        state.bindings.remove(user);
    }

    /// The live bindings of `user`, highest `q` first.
    pub fn lookup(&self, user: &str) -> Vec<Binding> {
        let now = Instant::now();
        let state = self.state();
        let mut live: Vec<Binding> = state
            .bindings
            .get(user)
            .map(|l| l.iter().filter(|b| b.expires_at > now).cloned().collect())
            .unwrap_or_default();
        live.sort_by(|a, b| b.q.total_cmp(&a.q));
        live
    }

    /// Whether `user` has ever registered.
    pub fn is_known(&self, user: &str) -> bool {
        self.state().known.contains(user)
    }

    /// Drops lapsed bindings; returns how many were dropped.
    pub fn purge(&self) -> usize {
        let now = Instant::now();
        let mut state = self.state();
        let mut dropped = 0;
        state.bindings.retain(|_, list| {
            let before = list.len();
            list.retain(|b| b.expires_at > now);
            dropped += before - list.len();
            !list.is_empty()
        });
        dropped
    }
}

/// A binding is replaced by an update for the same device: the same instance
/// when both name one (GRUU, RFC 5627 §6), otherwise the same contact URI.
fn same_binding(b: &Binding, u: &ContactUpdate) -> bool {
    match (&b.instance, &u.instance) {
        (Some(a), Some(c)) => a == c,
        _ => b.uri == u.uri,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upd(uri: &str, instance: Option<&str>, secs: u64) -> ContactUpdate {
        ContactUpdate {
            uri: uri.into(),
            instance: instance.map(Into::into),
            expires: Duration::from_secs(secs),
            q: 1.0,
        }
    }

    #[test]
    fn keeps_several_contacts_and_removes_one() {
        let loc = Location::default();
        loc.update("bob", "c1", 1, &[upd("sip:bob@10.0.0.1", None, 60)])
            .unwrap();
        loc.update("bob", "c2", 1, &[upd("sip:bob@10.0.0.2", None, 60)])
            .unwrap();
        assert_eq!(loc.lookup("bob").len(), 2);
        loc.update("bob", "c1", 2, &[upd("sip:bob@10.0.0.1", None, 0)])
            .unwrap();
        assert_eq!(loc.lookup("bob").len(), 1);
        assert!(loc.is_known("bob"));
        assert!(!loc.is_known("carol"));
    }

    #[test]
    fn same_instance_replaces_old_binding() {
        let loc = Location::default();
        loc.update(
            "bob",
            "c1",
            1,
            &[upd("sip:bob@10.0.0.1", Some("urn:uuid:1"), 60)],
        )
        .unwrap();
        loc.update(
            "bob",
            "c9",
            1,
            &[upd("sip:bob@10.0.0.9", Some("urn:uuid:1"), 60)],
        )
        .unwrap();
        let b = loc.lookup("bob");
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].uri, "sip:bob@10.0.0.9");
    }

    #[test]
    fn refuses_reordered_register() {
        let loc = Location::default();
        loc.update("bob", "c1", 5, &[upd("sip:bob@10.0.0.1", None, 60)])
            .unwrap();
        assert_eq!(
            loc.update("bob", "c1", 4, &[upd("sip:bob@10.0.0.1", None, 60)]),
            Err(UpdateError::OutOfOrder)
        );
    }
}
