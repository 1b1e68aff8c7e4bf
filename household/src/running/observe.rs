//! Waiting for what a running household does, as tests and benchmarks ask:
//! a condition polled within a bound, and the talkers' calls read from their
//! status APIs. A failed wait panics with every process's log, because its
//! callers are tests whose failure report is that panic.

use super::Household;
use serde_json::Value;
use std::time::Duration;

/// The first call of `kind` (`incoming`, `referred` or `control`) in a
/// talker's `GET /v1/status` answer.
pub fn call_of_kind(status: &Value, kind: &str) -> Option<Value> {
    status["calls"]
        .as_array()?
        .iter()
        .find(|c| c["kind"] == kind)
        .cloned()
}

impl Household {
    /// Polls `f` until it gives `Some` ([`testbed::wait_until`]).
    ///
    /// # Panics
    /// When `within` passes first, with the household's logs.
    pub fn wait_for<T>(&self, what: &str, within: Duration, f: impl Fn() -> Option<T>) -> T {
        testbed::wait_until(what, within, f).unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    /// Waits until `listener`'s call of `kind` is connected, has received at
    /// least `min_packets` audio packets, and hears `speaker`'s tone (its
    /// analyzer, within 3 %); returns that call's status.
    ///
    /// # Panics
    /// After 40 s without it, or when either talker is not in the household.
    pub fn wait_hears(&self, listener: &str, kind: &str, speaker: &str, min_packets: u64) -> Value {
        let tone = self
            .talker(speaker)
            .unwrap_or_else(|| panic!("no talker {speaker:?}"))
            .spec
            .tone_hz;
        self.wait_for(
            &format!("{listener} hearing {speaker}'s {tone} Hz"),
            Duration::from_secs(40),
            || {
                let status = self.talker_status(listener).ok()?;
                let leg = call_of_kind(&status, kind)?;
                let heard = leg["media"]["sound"]["dominant_frequency_hz"].as_f64()?;
                let packets = leg["media"]["audio"]["packets_received"]
                    .as_u64()
                    .unwrap_or(0);
                (leg["state"] == "connected"
                    && (heard - tone).abs() < tone * 0.03
                    && packets >= min_packets)
                    .then_some(leg)
            },
        )
    }

    /// How far past its whole wall-clock second each recent sound onset was played in
    /// `listener`'s call of `kind`, in ms, oldest first (the agent's
    /// `onsets_past_second_ms`: with a [`crate::TalkerSpec::beeps`] speaker,
    /// mouth-to-ear latencies). Empty while there is no such call or sound.
    pub fn onsets_past_second(&self, listener: &str, kind: &str) -> Vec<f64> {
        self.talker_status(listener)
            .ok()
            .and_then(|status| call_of_kind(&status, kind))
            .and_then(|leg| {
                leg["media"]["sound"]["onsets_past_second_ms"]
                    .as_array()
                    .map(|onsets| onsets.iter().filter_map(Value::as_f64).collect())
            })
            .unwrap_or_default()
    }

    /// Waits until talker `id` reports no call at all.
    ///
    /// # Panics
    /// After 30 s with calls still there.
    pub fn wait_no_calls(&self, id: &str) {
        self.wait_for(
            &format!("{id} without calls"),
            Duration::from_secs(30),
            || {
                let status = self.talker_status(id).ok()?;
                status["calls"]
                    .as_array()
                    .is_some_and(Vec::is_empty)
                    .then_some(())
            },
        );
    }
}
