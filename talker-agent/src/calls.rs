//! The agent's live calls, as the status API and the mDNS `state` (idle/busy)
//! see them. Call handlers register here and keep their entry current.

use splitdial_api::{DTMF_RECEIVED_MAX, Held, TalkerCall, TalkerCallKind, TalkerCallState};
use splitdial_media::MediaStats;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};
use tracing::warn;

/// An action the owner can take on an incoming call (through the status API,
/// with an owner token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerAction {
    /// Answer a ringing call.
    Answer,
    /// Decline a ringing call.
    Decline,
    /// Hang up.
    Hangup,
}

struct Entry {
    info: TalkerCall<MediaStats>,
    actions: Option<mpsc::UnboundedSender<OwnerAction>>,
}

/// All live calls.
#[derive(Clone)]
pub struct Calls {
    inner: Arc<Mutex<BTreeMap<u64, Entry>>>,
    next: Arc<AtomicU64>,
    busy: watch::Sender<bool>,
    /// How many calls are live (shutdown waits for none).
    live: watch::Sender<usize>,
}

impl Default for Calls {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            next: Arc::new(AtomicU64::new(1)),
            busy: watch::channel(false).0,
            live: watch::channel(0).0,
        }
    }
}

/// A call's registration; removes the call when dropped.
pub struct CallEntry {
    calls: Calls,
    id: u64,
}

impl Calls {
    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<u64, Entry>) -> R) -> R {
        let mut map = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let r = f(&mut map);
        // Busy while any call other than a bare control leg is up.
        let busy = map.values().any(|e| e.info.kind != TalkerCallKind::Control);
        self.busy
            .send_if_modified(|b| std::mem::replace(b, busy) != busy);
        let live = map.len();
        self.live
            .send_if_modified(|n| std::mem::replace(n, live) != live);
        r
    }

    /// Registers a call; `actions` receives owner actions (incoming calls).
    pub fn add(
        &self,
        kind: TalkerCallKind,
        state: TalkerCallState,
        sip_call_id: &str,
        peer: &str,
        actions: Option<mpsc::UnboundedSender<OwnerAction>>,
    ) -> CallEntry {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let info = TalkerCall {
            id,
            kind,
            state,
            sip_call_id: sip_call_id.to_owned(),
            peer: peer.to_owned(),
            media: None,
            held: None,
            dtmf_received: String::new(),
        };
        self.with(|m| m.insert(id, Entry { info, actions }));
        CallEntry {
            calls: self.clone(),
            id,
        }
    }

    /// Every live call.
    pub fn list(&self) -> Vec<TalkerCall<MediaStats>> {
        self.with(|m| m.values().map(|e| e.info.clone()).collect())
    }

    /// Sends an owner action to call `id`; false when there is no such call or
    /// it takes no actions.
    pub fn act(&self, id: u64, action: OwnerAction) -> bool {
        self.with(|m| {
            m.get(&id)
                .and_then(|e| e.actions.as_ref())
                .is_some_and(|tx| tx.send(action).is_ok())
        })
    }

    /// Asks every call that takes owner actions to hang up (shutdown).
    pub fn hang_up_all(&self) {
        self.with(|m| {
            for e in m.values() {
                if let Some(tx) = &e.actions {
                    let _ = tx.send(OwnerAction::Hangup);
                }
            }
        });
    }

    /// The SIP Call-ID of call `id` (owner tokens are bound to it).
    pub fn sip_call_id(&self, id: u64) -> Option<String> {
        self.with(|m| m.get(&id).map(|e| e.info.sip_call_id.clone()))
    }

    /// Watches whether the talker is busy (for the mDNS `state`).
    pub fn busy(&self) -> watch::Receiver<bool> {
        self.busy.subscribe()
    }

    /// Returns once no call is live (at once when none is).
    pub async fn all_ended(&self) {
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = self.live.subscribe().wait_for(|live| *live == 0).await;
    }
}

impl CallEntry {
    /// The call's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Updates the state.
    pub fn set_state(&self, state: TalkerCallState) {
        self.calls.with(|m| {
            if let Some(e) = m.get_mut(&self.id) {
                e.info.state = state;
            }
        });
    }

    /// Updates the media statistics.
    pub fn set_media(&self, media: MediaStats) {
        self.calls.with(|m| {
            if let Some(e) = m.get_mut(&self.id) {
                e.info.media = Some(media);
            }
        });
    }

    /// Says whether the call is on hold, and by which end (`None`: resumed).
    pub fn set_held(&self, held: Option<Held>) {
        self.calls.with(|m| {
            if let Some(e) = m.get_mut(&self.id) {
                e.info.held = held;
            }
        });
    }

    /// Adds a DTMF digit received in the call to its status, keeping the
    /// latest [`DTMF_RECEIVED_MAX`]. `a`-`d` are kept as `A`-`D`; anything
    /// else is no DTMF digit and is left out with a warning (the request that
    /// carried it is answered by its own rules, not here).
    pub fn record_dtmf(&self, digit: char) {
        let Some(digit) = dtmf_digit(digit) else {
            warn!(call = self.id, digit = ?digit, "not a DTMF digit: left out of the call's status");
            return;
        };
        self.calls.with(|m| {
            if let Some(e) = m.get_mut(&self.id) {
                let received = &mut e.info.dtmf_received;
                // Digits are ASCII: one byte each, so the oldest is byte 0.
                if received.len() >= DTMF_RECEIVED_MAX {
                    received.drain(..=received.len() - DTMF_RECEIVED_MAX);
                }
                received.push(digit);
            }
        });
    }
}

/// The DTMF digit `c` names (RFC 4733 events 0-15: `0`-`9`, `*`, `#`,
/// `A`-`D`, the letters in either case), or `None`.
fn dtmf_digit(c: char) -> Option<char> {
    match c {
        '0'..='9' | '*' | '#' | 'A'..='D' => Some(c),
        'a'..='d' => Some(c.to_ascii_uppercase()),
        _ => None,
    }
}

impl Drop for CallEntry {
    fn drop(&mut self) {
        let id = self.id;
        self.calls.with(|m| m.remove(&id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn calls_come_and_go_and_drive_busy() {
        let calls = Calls::default();
        let busy = calls.busy();
        let control = calls.add(
            TalkerCallKind::Control,
            TalkerCallState::Connected,
            "c1",
            "sip:ctl@x",
            None,
        );
        assert!(!*busy.borrow(), "a bare control leg is not busy");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let incoming = calls.add(
            TalkerCallKind::Incoming,
            TalkerCallState::Ringing,
            "c2",
            "sip:bob@x",
            Some(tx),
        );
        assert!(*busy.borrow());
        assert!(calls.act(incoming.id(), OwnerAction::Answer));
        assert_eq!(rx.try_recv().unwrap(), OwnerAction::Answer);
        assert!(!calls.act(control.id(), OwnerAction::Hangup));
        incoming.set_state(TalkerCallState::Connected);
        assert_eq!(calls.list().len(), 2);
        drop(incoming);
        assert!(!*busy.borrow());
        drop(control);
        assert!(calls.list().is_empty());
    }

    fn referred(calls: &Calls) -> CallEntry {
        calls.add(
            TalkerCallKind::Referred,
            TalkerCallState::Connected,
            "c1",
            "sip:bob@x",
            None,
        )
    }

    #[test]
    fn a_call_is_held_by_either_end_and_resumed() {
        let calls = Calls::default();
        let call = referred(&calls);
        let other = referred(&calls);
        assert_eq!(calls.list()[0].held, None, "a new call is not held");
        call.set_held(Some(Held::ByPeer));
        assert_eq!(calls.list()[0].held, Some(Held::ByPeer));
        assert_eq!(calls.list()[1].held, None, "only that call");
        call.set_held(Some(Held::ByUs));
        assert_eq!(calls.list()[0].held, Some(Held::ByUs));
        call.set_held(None);
        assert_eq!(calls.list()[0].held, None);
        drop(other);
    }

    #[test]
    fn dtmf_digits_are_recorded_in_order_and_anything_else_is_left_out() {
        let calls = Calls::default();
        let call = referred(&calls);
        for c in "0123456789*#ABCDabcd".chars() {
            call.record_dtmf(c);
        }
        for c in ['e', 'E', ' ', '\n', '+', '½', '\0', '٣'] {
            call.record_dtmf(c);
        }
        assert_eq!(calls.list()[0].dtmf_received, "0123456789*#ABCDABCD");
    }

    #[test]
    fn only_the_latest_dtmf_digits_are_kept() {
        let calls = Calls::default();
        let call = referred(&calls);
        let digits: Vec<char> = "0123456789*#ABCD".chars().collect();
        for i in 0..DTMF_RECEIVED_MAX + 5 {
            call.record_dtmf(digits[i % digits.len()]);
        }
        let received = calls.list()[0].dtmf_received.clone();
        assert_eq!(received.len(), DTMF_RECEIVED_MAX);
        let expected: String = (5..DTMF_RECEIVED_MAX + 5)
            .map(|i| digits[i % digits.len()])
            .collect();
        assert_eq!(received, expected, "the oldest five dropped out");
        call.record_dtmf('9');
        let received = calls.list()[0].dtmf_received.clone();
        assert_eq!(received.len(), DTMF_RECEIVED_MAX);
        assert!(received.ends_with('9'));
    }

    #[tokio::test(start_paused = true)]
    async fn all_ended_returns_when_the_last_call_goes() {
        let calls = Calls::default();
        tokio::time::timeout(Duration::from_secs(1), calls.all_ended())
            .await
            .expect("no call: at once");
        let first = calls.add(
            TalkerCallKind::Control,
            TalkerCallState::Connected,
            "c1",
            "sip:ctl@x",
            None,
        );
        let second = calls.add(
            TalkerCallKind::Referred,
            TalkerCallState::Dialing,
            "c2",
            "sip:bob@x",
            None,
        );
        let waiting = tokio::spawn({
            let calls = calls.clone();
            async move { calls.all_ended().await }
        });
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(first);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(!waiting.is_finished(), "one call is still live");
        drop(second);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("the last call ended")
            .unwrap();
    }
}
