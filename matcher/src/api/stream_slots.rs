//! How many call event streams each user holds open. A stream lasts as long as
//! its call and holds a task and a subscription; without a cap, a token could
//! open them (within its request rate) until the matcher runs out of memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Open event streams per user, up to a cap.
#[derive(Debug)]
pub struct StreamSlots {
    max_per_user: usize,
    open: Mutex<HashMap<i64, usize>>,
}

/// One open stream's place; given back when dropped.
#[derive(Debug)]
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    user: i64,
}

impl StreamSlots {
    /// Room for `max_per_user` open streams per user.
    pub fn new(max_per_user: usize) -> Self {
        Self {
            max_per_user,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one more stream of `user`, or `None` when they hold the
    /// most they may.
    pub fn take(self: &Arc<Self>, user: i64) -> Option<StreamSlot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let held = open.entry(user).or_default();
        if *held >= self.max_per_user {
            return None;
        }
        *held += 1;
        Some(StreamSlot {
            slots: Arc::clone(self),
            user,
        })
    }

    /// Streams open now, all users together.
    pub fn open(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .sum()
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .slots
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = open.get_mut(&self.user) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                open.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_holds_at_most_the_cap_and_a_dropped_slot_is_free_again() {
        let slots = Arc::new(StreamSlots::new(2));
        let a1 = slots.take(1).unwrap();
        let _a2 = slots.take(1).unwrap();
        assert!(slots.take(1).is_none());
        // Another user is not held back by the first.
        let _b1 = slots.take(2).unwrap();
        assert_eq!(slots.open(), 3);
        drop(a1);
        assert_eq!(slots.open(), 2);
        assert!(slots.take(1).is_some());
    }

    #[test]
    fn users_with_nothing_open_are_forgotten() {
        let slots = Arc::new(StreamSlots::new(1));
        for user in 0..1000 {
            drop(slots.take(user));
        }
        assert!(slots.open.lock().unwrap().is_empty());
    }
}
