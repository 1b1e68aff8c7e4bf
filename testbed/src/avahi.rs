//! Avahi, the reference mDNS stack, inside one simulated LAN host: a private
//! D-Bus system bus and an avahi-daemon limited to the host's `eth0`, for
//! interop tests (avahi-browse seeing our talkers, avahi-publish-service
//! publishing one for our browser). Nothing of it touches the machine's own
//! network namespace, D-Bus or `/run`.

use crate::{LanHost, Process, Result, Spawn};
use std::path::PathBuf;
use std::time::Duration;

/// A private D-Bus system bus and an avahi-daemon on one LAN host (eth0 only),
/// with `/run` replaced by a tmpfs inside a private mount namespace so the
/// machine's own `/run` is never touched.
pub struct AvahiStack {
    // Dropped in this order: the daemon, then its bus, then their files.
    daemon: Process,
    _dbus: Process,
    bus_address: String,
    _dir: tempfile::TempDir,
}

impl AvahiStack {
    /// Starts D-Bus, then avahi-daemon, on `host`, and waits until it is up.
    ///
    /// # Errors
    /// When a file cannot be written or either daemon does not come up.
    pub fn start(host: &LanHost) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("avahi-stack-").tempdir()?;
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
        )?;
        let mut dbus = host.spawn(
            Spawn::new("dbus-daemon")
                .label("dbus")
                .arg(format!("--config-file={}", bus_config.display()))
                .args(["--nofork", "--nopidfile", "--print-address"]),
        )?;
        dbus.wait_for_output("unix:path=", Duration::from_secs(10))?;
        let bus_address = format!("unix:path={}", socket.display());

        let host_name = crate::unique_name("avahi");
        let avahi_config: PathBuf = dir.path().join("avahi-daemon.conf");
        std::fs::write(
            &avahi_config,
            format!(
                "[server]\nhost-name={host_name}\ndomain-name=local\nuse-ipv4=yes\nuse-ipv6=yes\n\
                 allow-interfaces=eth0\nenable-dbus=yes\nratelimit-interval-usec=1000000\n\
                 ratelimit-burst=1000\n[wide-area]\nenable-wide-area=no\n[publish]\n\
                 publish-hinfo=no\npublish-workstation=no\n[reflector]\nenable-reflector=no\n"
            ),
        )?;
        // `ip netns exec` already runs us in a mount namespace of our own; the
        // nested private one makes the tmpfs on /run visible only to avahi-daemon.
        let script = format!(
            "mount -t tmpfs tmpfs /run && exec avahi-daemon --no-drop-root --no-chroot \
             --no-rlimits -f {}",
            avahi_config.display()
        );
        let mut daemon = host.spawn(
            Spawn::new("unshare")
                .label("avahi-daemon")
                .env("DBUS_SYSTEM_BUS_ADDRESS", &bus_address)
                .args(["-m", "--propagation", "private", "sh", "-c", &script]),
        )?;
        daemon.wait_for_output("Server startup complete", Duration::from_secs(20))?;
        Ok(Self {
            daemon,
            _dbus: dbus,
            bus_address,
            _dir: dir,
        })
    }

    /// Starts an Avahi client (avahi-browse, avahi-publish-service, ...) on `host`
    /// connected to this stack's bus.
    ///
    /// # Errors
    /// When it cannot start.
    pub fn spawn(&self, host: &LanHost, spawn: Spawn) -> Result<Process> {
        host.spawn(spawn.env("DBUS_SYSTEM_BUS_ADDRESS", &self.bus_address))
    }

    /// One `avahi-browse -r -t -p SERVICE_TYPE` on `host`, run to its end (it
    /// ends by itself once the cache is listed and resolved; bounded at 10 s):
    /// its output and the services it resolved.
    ///
    /// # Errors
    /// When avahi-browse cannot start.
    pub fn browse(&self, host: &LanHost, service_type: &str) -> Result<(String, Vec<Resolved>)> {
        let mut browse = self.spawn(
            host,
            Spawn::new("timeout").label("avahi-browse").args([
                "10",
                "avahi-browse",
                "-r",
                "-t",
                "-p",
                service_type,
            ]),
        )?;
        let started = std::time::Instant::now();
        while browse.try_wait()?.is_none() && started.elapsed() < Duration::from_secs(12) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = browse.stop(Duration::from_secs(1));
        let output = browse.log();
        let resolved = avahi_resolved(&output);
        Ok((output, resolved))
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

/// A service `avahi-browse -r` resolved: its instance name and TXT strings.
pub type Resolved = (String, Vec<String>);

/// The resolved service lines of `avahi-browse -p -r` output.
pub fn avahi_resolved(output: &str) -> Vec<Resolved> {
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
