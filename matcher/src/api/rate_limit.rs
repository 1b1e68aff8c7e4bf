//! A per-client token bucket: each client (a bearer token, else an address)
//! may send `rate` requests per second with bursts of twice that.
//!
//! Our own rather than `governor`'s keyed limiter, which cannot look at a
//! budget without spending it ([`RateLimiter::has_room`]) and keeps every key
//! until told to forget (docs/matcher.md, "The rate limiter and `/metrics`
//! are our own, on purpose").

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Most clients tracked at once; the idlest are forgotten beyond this.
const MAX_CLIENTS: usize = 100_000;

/// Request budgets per client.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    /// Clients past which the idle ones are forgotten ([`MAX_CLIENTS`]).
    max_clients: usize,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter allowing `per_second` requests per second per client.
    pub fn new(per_second: u32) -> Self {
        let rate = f64::from(per_second.max(1));
        Self {
            rate,
            burst: rate * 2.0,
            max_clients: MAX_CLIENTS,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `client` has budget left now, without spending any.
    pub fn has_room(&self, client: &str) -> bool {
        let Ok(buckets) = self.buckets.lock() else {
            return true;
        };
        buckets
            .get(client)
            .is_none_or(|(tokens, at)| tokens + at.elapsed().as_secs_f64() * self.rate >= 1.0)
    }

    /// Whether `client` may make a request now (and spends one if so).
    pub fn allow(&self, client: &str) -> bool {
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        let now = Instant::now();
        if buckets.len() >= self.max_clients && !buckets.contains_key(client) {
            let burst = self.burst;
            let rate = self.rate;
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets
            .entry(client.to_owned())
            .or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl RateLimiter {
        fn with_max_clients(per_second: u32, max_clients: usize) -> Self {
            Self {
                max_clients,
                ..Self::new(per_second)
            }
        }

        fn clients(&self) -> usize {
            self.buckets.lock().map_or(0, |b| b.len())
        }
    }

    #[test]
    fn a_burst_passes_then_the_client_is_held_back_alone() {
        let limiter = RateLimiter::new(5);
        let passed = (0..30).filter(|_| limiter.allow("a")).count();
        assert!((10..=12).contains(&passed), "burst of 10, got {passed}");
        assert!(limiter.allow("b"), "another client has its own budget");
    }

    #[test]
    fn looking_at_a_budget_does_not_spend_it() {
        let limiter = RateLimiter::new(1);
        assert!(limiter.has_room("a"), "an unknown client has its burst");
        for _ in 0..10 {
            assert!(limiter.has_room("a"));
        }
        assert!(limiter.allow("a") && limiter.allow("a"));
        assert!(!limiter.has_room("a"), "a burst of 2 is spent");
    }

    #[test]
    fn idle_clients_are_forgotten_past_the_cap() {
        // At this rate a spent request is back within a microsecond, so every
        // bucket but the newest is idle (full) when the cap is reached.
        let limiter = RateLimiter::with_max_clients(u32::MAX, 100);
        for i in 0..=100 {
            assert!(limiter.allow(&format!("t:{i}")));
        }
        assert!(
            limiter.clients() < 100,
            "{} clients held",
            limiter.clients()
        );
    }

    #[test]
    fn forgetting_idle_clients_gives_no_one_a_fresh_budget() {
        let limiter = RateLimiter::with_max_clients(1, 100);
        assert!(limiter.allow("a") && limiter.allow("a"));
        assert!(!limiter.allow("a"), "a burst of 2 is spent");
        // Enough made-up clients to reach the cap and trigger a clean-up
        // (well within the second that gives a a request back).
        for i in 0..100 {
            limiter.allow(&format!("t:{i}"));
        }
        assert!(
            limiter.clients() > 100,
            "the clean-up ran and kept the busy ones"
        );
        assert!(
            !limiter.has_room("a"),
            "a's spent budget survived the clean-up"
        );
    }
}
