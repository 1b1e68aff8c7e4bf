//! Counters the matcher exposes at `GET /metrics` in Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The matcher's counters (monotonic) — gauges are read live when rendering.
#[derive(Debug, Default)]
pub struct Metrics {
    responses_2xx: AtomicU64,
    responses_4xx: AtomicU64,
    responses_429: AtomicU64,
    responses_5xx: AtomicU64,
    calls_placed: AtomicU64,
    route_queries: AtomicU64,
    heartbeats: AtomicU64,
    enrollments: AtomicU64,
}

/// What `/metrics` adds from live state.
#[derive(Debug, Clone, Copy)]
pub struct Gauges {
    /// Calls this instance steers now.
    pub live_calls: usize,
    /// Call event streams open now.
    pub event_streams: usize,
}

impl Metrics {
    /// Counts one HTTP response by status class.
    pub fn count_status(&self, status: u16) {
        let counter = match status {
            429 => &self.responses_429,
            200..=299 => &self.responses_2xx,
            400..=499 => &self.responses_4xx,
            500..=599 => &self.responses_5xx,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a placed call.
    pub fn call_placed(&self) {
        self.calls_placed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a route query.
    pub fn route_query(&self) {
        self.route_queries.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a heartbeat.
    pub fn heartbeat(&self) {
        self.heartbeats.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an enrollment.
    pub fn enrollment(&self) {
        self.enrollments.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition of every counter and gauge.
    pub fn render(&self, gauges: Gauges) -> String {
        let mut out = String::new();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP matcher_http_responses_total HTTP responses by status class."
        );
        let _ = writeln!(out, "# TYPE matcher_http_responses_total counter");
        for (class, counter) in [
            ("2xx", &self.responses_2xx),
            ("4xx", &self.responses_4xx),
            ("429", &self.responses_429),
            ("5xx", &self.responses_5xx),
        ] {
            let _ = writeln!(
                out,
                "matcher_http_responses_total{{class=\"{class}\"}} {}",
                get(counter)
            );
        }
        for (name, help, counter) in [
            (
                "matcher_calls_placed_total",
                "Calls handed to the controller.",
                &self.calls_placed,
            ),
            (
                "matcher_route_queries_total",
                "Route rankings computed.",
                &self.route_queries,
            ),
            (
                "matcher_heartbeats_total",
                "Talker heartbeats accepted.",
                &self.heartbeats,
            ),
            (
                "matcher_enrollments_total",
                "Talkers enrolled.",
                &self.enrollments,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", get(counter));
        }
        let _ = writeln!(
            out,
            "# HELP matcher_live_calls Calls this instance steers now."
        );
        let _ = writeln!(out, "# TYPE matcher_live_calls gauge");
        let _ = writeln!(out, "matcher_live_calls {}", gauges.live_calls);
        let _ = writeln!(
            out,
            "# HELP matcher_event_streams Call event streams open now."
        );
        let _ = writeln!(out, "# TYPE matcher_event_streams gauge");
        let _ = writeln!(out, "matcher_event_streams {}", gauges.event_streams);
        out
    }
}
