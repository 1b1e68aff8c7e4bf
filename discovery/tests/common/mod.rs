//! Shared by the discovery tests and the benchmark: starting the command-line
//! tools inside LAN hosts and reading the browser's JSON events. (The Avahi
//! stack they use is `testbed::AvahiStack`.)

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use testbed::{LanHost, Process, Spawn};

/// The advertiser tool.
pub const ADVERTISE: &str = env!("CARGO_BIN_EXE_discovery-advertise");
/// The browser tool.
pub const BROWSE: &str = env!("CARGO_BIN_EXE_discovery-browse");
/// The hostile packet sender.
pub const NOISE: &str = env!("CARGO_BIN_EXE_discovery-mdns-noise");

static HEAVY: Mutex<()> = Mutex::new(());

/// Serializes the heavy LAN tests of one test binary (two busy cores).
pub fn heavy_lock() -> MutexGuard<'static, ()> {
    HEAVY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Microseconds since the Unix epoch (the browser stamps events the same way).
pub fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

/// Starts the advertiser on `host` and waits for its ready line.
pub fn advertise(host: &LanHost, id: &str, instance: &str, extra: &[&str]) -> Process {
    let mut p = host
        .spawn(
            Spawn::new(ADVERTISE)
                .label(format!("advertise-{id}"))
                .args(["--interfaces", "eth0", "--id", id, "--instance", instance])
                .args(extra.iter().copied()),
        )
        .expect("start advertiser");
    p.wait_for_output("ready ", Duration::from_secs(10))
        .expect("advertiser ready");
    p
}

/// A running browser and the events it printed.
pub struct BrowseLog {
    /// The browser process.
    pub process: Process,
}

impl BrowseLog {
    /// Starts the browser on `host` (eth0) with extra arguments.
    pub fn start(host: &LanHost, extra: &[&str]) -> Self {
        let mut process = host
            .spawn(
                Spawn::new(BROWSE)
                    .label("browse")
                    .env("RUST_LOG", "discovery=debug")
                    .args(["--interfaces", "eth0"])
                    .args(extra.iter().copied()),
            )
            .expect("start browser");
        process
            .wait_for_output("\"started\"", Duration::from_secs(10))
            .expect("browser started");
        Self { process }
    }

    /// Every JSON event line printed so far.
    pub fn events(&self) -> Vec<Value> {
        self.process
            .log()
            .lines()
            .filter(|l| l.starts_with('{'))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits for an event `kind` (`added`, `updated`, `removed`) about talker `id`
    /// whose position is at least `from` in [`BrowseLog::events`]; returns it and
    /// its position.
    pub fn wait_for(
        &mut self,
        kind: &str,
        id: &str,
        from: usize,
        timeout: Duration,
    ) -> Result<(usize, Value), String> {
        self.wait_for_match(from, timeout, |e| is_event(e, kind, id))
    }

    /// Waits for any event matching `pred` at position `from` or later.
    pub fn wait_for_match(
        &mut self,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<(usize, Value), String> {
        let found = testbed::wait_until("the event", timeout, || {
            let events = self.events();
            if let Some((i, e)) = events.iter().enumerate().skip(from).find(|(_, e)| pred(e)) {
                return Some(Ok((i, e.clone())));
            }
            self.process.try_wait().ok().flatten().map(Err)
        });
        match found {
            Ok(Ok(event)) => Ok(event),
            Ok(Err(status)) => Err(format!(
                "browser exited ({status}):\n{}",
                self.process.log()
            )),
            Err(e) => Err(format!("{e}; browser output:\n{}", self.process.log())),
        }
    }
}

/// Whether `e` is event `kind` about talker `id`.
pub fn is_event(e: &Value, kind: &str, id: &str) -> bool {
    e["event"] == kind && e["talker"]["id"] == id
}

/// The event's timestamp in µs.
pub fn at_us(e: &Value) -> u128 {
    e["at_us"].as_u64().map_or(0, u128::from)
}
