//! Counters the matcher exposes at `GET /metrics` in Prometheus text format.
//!
//! Written here rather than with `prometheus-client`, whose OpenMetrics text
//! renames the `# TYPE` lines and would change the content type, for a fixed
//! set of counters and gauges with nothing to escape (docs/matcher.md, "The
//! rate limiter and `/metrics` are our own, on purpose").

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_types_and_labels_every_series() {
        let metrics = Metrics::default();
        metrics.count_status(201);
        metrics.count_status(429);
        metrics.count_status(404);
        metrics.enrollment();
        let text = metrics.render(Gauges {
            live_calls: 2,
            event_streams: 1,
        });
        let lines: Vec<&str> = text.lines().collect();
        for (name, kind) in [
            ("matcher_http_responses_total", "counter"),
            ("matcher_calls_placed_total", "counter"),
            ("matcher_route_queries_total", "counter"),
            ("matcher_heartbeats_total", "counter"),
            ("matcher_enrollments_total", "counter"),
            ("matcher_live_calls", "gauge"),
            ("matcher_event_streams", "gauge"),
        ] {
            assert!(
                lines.contains(&format!("# TYPE {name} {kind}").as_str()),
                "{name}: {text}"
            );
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with(&format!("# HELP {name} "))),
                "{name}: {text}"
            );
        }
        // Every class is there from the start, counted apart (429 is not in 4xx).
        for sample in [
            "matcher_http_responses_total{class=\"2xx\"} 1",
            "matcher_http_responses_total{class=\"4xx\"} 1",
            "matcher_http_responses_total{class=\"429\"} 1",
            "matcher_http_responses_total{class=\"5xx\"} 0",
            "matcher_enrollments_total 1",
            "matcher_calls_placed_total 0",
            "matcher_live_calls 2",
            "matcher_event_streams 1",
        ] {
            assert!(lines.contains(&sample), "{sample}: {text}");
        }
        let samples = lines.iter().filter(|l| !l.starts_with('#')).count();
        assert_eq!(samples, 10, "{text}");
    }
}
