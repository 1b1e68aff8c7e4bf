//! Shared by the discovery tests and the benchmark: starting the command-line
//! tools inside LAN hosts, reading the browser's JSON events, and an Avahi stack
//! (private D-Bus + avahi-daemon) confined to one LAN host.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
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
        let start = Instant::now();
        loop {
            let events = self.events();
            if let Some((i, e)) = events.iter().enumerate().skip(from).find(|(_, e)| pred(e)) {
                return Ok((i, e.clone()));
            }
            if let Ok(Some(status)) = self.process.try_wait() {
                return Err(format!(
                    "browser exited ({status}):\n{}",
                    self.process.log()
                ));
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "no such event within {timeout:?}; browser output:\n{}",
                    self.process.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
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

/// A private D-Bus system bus and an avahi-daemon on one LAN host (eth0 only),
/// with `/run` replaced by a tmpfs inside a private mount namespace so the
/// machine's own `/run` is never touched.
pub struct AvahiStack {
    daemon: Process,
    dbus: Process,
    bus_address: String,
    dir: tempfile::TempDir,
}

impl AvahiStack {
    /// Starts D-Bus, then avahi-daemon, on `host`, and waits until it is up.
    pub fn start(host: &LanHost) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("avahi-stack-")
            .tempdir()
            .expect("tempdir");
        let socket = dir.path().join("system_bus_socket");
        let bus_config = dir.path().join("bus.conf");
        std::fs::write(
            &bus_config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .expect("write bus config");
        let mut dbus = host
            .spawn(
                Spawn::new("dbus-daemon")
                    .label("dbus")
                    .arg(format!("--config-file={}", bus_config.display()))
                    .args(["--nofork", "--nopidfile", "--print-address"]),
            )
            .expect("start dbus-daemon");
        dbus.wait_for_output("unix:path=", Duration::from_secs(10))
            .expect("dbus-daemon ready");
        let bus_address = format!("unix:path={}", socket.display());

        let host_name = testbed::unique_name("avahi");
        let avahi_config: PathBuf = dir.path().join("avahi-daemon.conf");
        std::fs::write(
            &avahi_config,
            format!(
                "[server]\nhost-name={host_name}\ndomain-name=local\nuse-ipv4=yes\nuse-ipv6=yes\n\
                 allow-interfaces=eth0\nenable-dbus=yes\nratelimit-interval-usec=1000000\n\
                 ratelimit-burst=1000\n[wide-area]\nenable-wide-area=no\n[publish]\n\
                 publish-hinfo=no\npublish-workstation=no\n[reflector]\nenable-reflector=no\n"
            ),
        )
        .expect("write avahi config");
        // `ip netns exec` already runs us in a mount namespace of our own; the
        // nested private one makes the tmpfs on /run visible only to avahi-daemon.
        let script = format!(
            "mount -t tmpfs tmpfs /run && exec avahi-daemon --no-drop-root --no-chroot \
             --no-rlimits -f {}",
            avahi_config.display()
        );
        let mut daemon = host
            .spawn(
                Spawn::new("unshare")
                    .label("avahi-daemon")
                    .env("DBUS_SYSTEM_BUS_ADDRESS", &bus_address)
                    .args(["-m", "--propagation", "private", "sh", "-c", &script]),
            )
            .expect("start avahi-daemon");
        daemon
            .wait_for_output("Server startup complete", Duration::from_secs(20))
            .expect("avahi-daemon ready");
        Self {
            daemon,
            dbus,
            bus_address,
            dir,
        }
    }

    /// Starts an Avahi client (avahi-browse, avahi-publish-service, ...) on `host`
    /// connected to this stack's bus.
    pub fn spawn(&self, host: &LanHost, spawn: Spawn) -> Process {
        host.spawn(spawn.env("DBUS_SYSTEM_BUS_ADDRESS", &self.bus_address))
            .expect("start avahi client")
    }

    /// The D-Bus address clients use.
    pub fn bus_address(&self) -> &str {
        &self.bus_address
    }

    /// The daemon's output so far.
    pub fn daemon_log(&self) -> String {
        self.daemon.log()
    }
}

/// One resolved service line of `avahi-browse -p -r`: (instance, TXT strings).
pub fn avahi_resolved(output: &str) -> Vec<(String, Vec<String>)> {
    output
        .lines()
        .filter(|l| l.starts_with("=;"))
        .filter_map(|l| {
            // =;iface;proto;name;type;domain;host;address;port;txt
            let fields: Vec<&str> = l.splitn(10, ';').collect();
            let name = unescape_avahi(fields.get(3)?);
            let txt = fields
                .get(9)?
                .split("\" \"")
                .map(|s| s.trim_matches('"').to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            Some((name, txt))
        })
        .collect()
}

/// Undoes avahi-browse's `\DDD` escapes in parsable output.
fn unescape_avahi(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes.get(i + 1..i + 4);
        let code = digits
            .filter(|d| bytes[i] == b'\\' && d.iter().all(u8::is_ascii_digit))
            .and_then(|d| {
                let n = d.iter().fold(0u32, |n, b| n * 10 + u32::from(b - b'0'));
                u8::try_from(n).ok()
            });
        if let Some(n) = code {
            out.push(n);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
