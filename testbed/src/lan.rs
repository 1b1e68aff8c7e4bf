//! A simulated home LAN: one bridge namespace and N host namespaces joined by
//! veth links, torn down (processes ended, namespaces deleted) when dropped.
//!
//! ```no_run
//! use testbed::{Lan, Spawn};
//! # fn main() -> testbed::Result<()> {
//! let lan = Lan::builder().host("tv").host("phone").loss("phone", 10.0).build()?;
//! let tv = lan.host("tv");
//! println!("{} is {} / {} in namespace {}", tv.name(), tv.ip(), tv.ipv6(), tv.netns());
//! let mut server = tv.spawn(Spawn::new("sleep").arg("30"))?;
//! # let _ = &mut server;
//! # Ok(()) }
//! ```
//!
//! Layout (FACTS.md): the bridge `br0` (multicast snooping and STP off) lives in
//! its own namespace; each host namespace has `lo` up and an `eth0` whose peer is
//! a bridge port. Both veth ends are created inside namespaces, so nothing ever
//! appears in the namespace the test runs in. Each host gets `10.77.0.N/24` and
//! `fd00:77::N/64` (plus its IPv6 link-local address, usable at once because DAD
//! is off), `rp_filter=0`, and a route `224.0.0.0/4 dev eth0` so plain sockets can
//! send multicast. The subnets exist only inside the LAN.
//!
//! Namespace names carry the creating process's PID (`sdlan<pid>x...`); a new
//! `Lan` first removes LANs left behind by test processes that no longer exist
//! (e.g. killed by a timeout before their `Drop` ran).

use crate::netns::{Namespace, ip};
use crate::process::{Process, Spawn, terminate_pid};
use crate::{Error, Result};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// Prefix of every LAN namespace name.
const PREFIX: &str = "sdlan";
/// The interface name every host sees.
pub const HOST_INTERFACE: &str = "eth0";
/// nftables table used for packet loss when netem is missing.
const LOSS_TABLE: &str = "testbed_loss";
/// Most hosts one LAN can hold (one /24).
pub const MAX_HOSTS: usize = 250;

/// Describes a LAN to build: host names in order and optional packet loss.
#[derive(Debug, Clone, Default)]
pub struct LanBuilder {
    hosts: Vec<(String, Option<f32>)>,
}

impl LanBuilder {
    /// Adds a host named `name` (a short label such as `tv`; unique in the LAN).
    #[must_use]
    pub fn host(mut self, name: impl Into<String>) -> Self {
        self.hosts.push((name.into(), None));
        self
    }

    /// Adds several hosts.
    #[must_use]
    pub fn hosts<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.hosts
            .extend(names.into_iter().map(|n| (n.into(), None)));
        self
    }

    /// Drops `percent` % of the packets host `name` sends (netem), like a poor
    /// Wi-Fi link. The host must have been added before.
    #[must_use]
    pub fn loss(mut self, name: &str, percent: f32) -> Self {
        if let Some(h) = self.hosts.iter_mut().find(|(n, _)| n == name) {
            h.1 = Some(percent);
        }
        self
    }

    /// Creates the namespaces and links. Needs root.
    pub fn build(self) -> Result<Lan> {
        sweep_stale();
        let bridge = Namespace::create(&format!("{PREFIX}{}x", std::process::id()))?;
        let br = |args: &[&str]| -> Result<String> {
            let mut full = vec!["-n", bridge.name()];
            full.extend_from_slice(args);
            ip(&full)
        };
        br(&[
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ])?;
        br(&["link", "set", "br0", "up"])?;
        let mut lan = Lan {
            hosts: Vec::new(),
            bridge,
        };
        for (name, loss) in self.hosts {
            lan.add_host(&name)?;
            if let Some(percent) = loss {
                lan.host(&name).set_loss(percent)?;
            }
        }
        Ok(lan)
    }
}

/// A simulated LAN. Dropping it ends every process inside its namespaces and
/// deletes them (this runs during a panic's unwinding too).
#[derive(Debug)]
pub struct Lan {
    hosts: Vec<LanHost>,
    bridge: Namespace,
}

impl Lan {
    /// Starts describing a LAN.
    pub fn builder() -> LanBuilder {
        LanBuilder::default()
    }

    /// Builds a LAN with the given hosts and no loss.
    pub fn with_hosts<I, S>(names: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::builder().hosts(names).build()
    }

    /// The host named `name`.
    ///
    /// # Panics
    /// When there is no such host (a mistake in the test itself).
    pub fn host(&self, name: &str) -> &LanHost {
        self.try_host(name).unwrap_or_else(|| {
            let known: Vec<&str> = self.hosts.iter().map(LanHost::name).collect();
            panic!("no host {name:?} in this LAN (hosts: {known:?})")
        })
    }

    /// The host named `name`, if any.
    pub fn try_host(&self, name: &str) -> Option<&LanHost> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// Every host, in the order added.
    pub fn hosts(&self) -> &[LanHost] {
        &self.hosts
    }

    /// Name of the namespace holding the bridge.
    pub fn bridge_netns(&self) -> &str {
        self.bridge.name()
    }

    /// Starts `spawn` inside host `name` (shorthand for `lan.host(name).spawn(..)`).
    pub fn spawn(&self, name: &str, spawn: Spawn) -> Result<Process> {
        self.host(name).spawn(spawn)
    }

    /// Adds a host to a running LAN.
    pub fn add_host(&mut self, name: &str) -> Result<&LanHost> {
        if self.try_host(name).is_some() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("host {name:?} already in the LAN"),
            )));
        }
        let index = self.hosts.len();
        if index >= MAX_HOSTS {
            return Err(Error::Io(std::io::Error::other(format!(
                "a LAN holds at most {MAX_HOSTS} hosts"
            ))));
        }
        let number = u8::try_from(index + 1).unwrap_or(u8::MAX);
        let netns = Namespace::create(&format!("{PREFIX}{}x", std::process::id()))?;
        let port = format!("h{index}");
        let ipv4 = Ipv4Addr::new(10, 77, 0, number);
        let ipv6 = Ipv6Addr::new(0xfd00, 0x77, 0, 0, 0, 0, 0, u16::from(number));
        // Before eth0 exists, so it inherits the defaults: no DAD, no reverse-path filter.
        netns.exec(&[
            "sh",
            "-c",
            "echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad && \
             echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad && \
             echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter && \
             echo 0 > /proc/sys/net/ipv4/conf/default/rp_filter",
        ])?;
        let bridge = self.bridge.name();
        ip(&[
            "-n",
            bridge,
            "link",
            "add",
            &port,
            "type",
            "veth",
            "peer",
            "name",
            HOST_INTERFACE,
            "netns",
            netns.name(),
        ])?;
        ip(&["-n", bridge, "link", "set", &port, "master", "br0", "up"])?;
        let script = format!(
            "ip addr add {ipv4}/24 dev {HOST_INTERFACE} && \
             ip -6 addr add {ipv6}/64 dev {HOST_INTERFACE} nodad && \
             ip link set {HOST_INTERFACE} up && \
             ip route add 224.0.0.0/4 dev {HOST_INTERFACE} && \
             echo 0 > /proc/sys/net/ipv4/conf/{HOST_INTERFACE}/rp_filter"
        );
        netns.exec(&["sh", "-c", &script])?;
        tracing::debug!(host = name, netns = netns.name(), %ipv4, "LAN host ready");
        self.hosts.push(LanHost {
            name: name.to_owned(),
            netns,
            ipv4,
            ipv6,
            bridge: bridge.to_owned(),
            port,
        });
        Ok(&self.hosts[index])
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Hosts first (ending their processes), then the bridge.
        self.hosts.clear();
    }
}

/// One host of a [`Lan`]: its own network namespace with `eth0` on the bridge.
#[derive(Debug)]
pub struct LanHost {
    name: String,
    netns: Namespace,
    ipv4: Ipv4Addr,
    ipv6: Ipv6Addr,
    bridge: String,
    port: String,
}

impl LanHost {
    /// The host's label in the LAN (e.g. `tv`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its network namespace, for `ip netns exec` or [`Spawn::in_netns`].
    pub fn netns(&self) -> &str {
        self.netns.name()
    }

    /// Its IPv4 address on the LAN.
    pub fn ip(&self) -> Ipv4Addr {
        self.ipv4
    }

    /// Its unique-local IPv6 address on the LAN (it also has a link-local one).
    pub fn ipv6(&self) -> Ipv6Addr {
        self.ipv6
    }

    /// The interface name inside the host (`eth0`).
    pub fn interface(&self) -> &str {
        HOST_INTERFACE
    }

    /// Starts a program inside this host; the [`Process`] ends it when dropped.
    pub fn spawn(&self, spawn: Spawn) -> Result<Process> {
        spawn.in_netns(self.netns.name()).start()
    }

    /// Runs a command to completion inside this host and returns its stdout.
    pub fn exec(&self, argv: &[&str]) -> Result<String> {
        self.netns.exec(argv)
    }

    /// Runs `f` on a new thread that has joined this host's network namespace and
    /// returns its result. Sockets created inside stay in the namespace, so
    /// `host.run_in(|| UdpSocket::bind(..))` hands back a socket of this host that
    /// any thread may use. (Only that one thread moves: `setns` is per thread.)
    pub fn run_in<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let path = format!("/run/netns/{}", self.netns.name());
        let file = std::fs::File::open(&path)?;
        std::thread::Builder::new()
            .name(format!("netns-{}", self.name))
            .spawn(move || -> Result<T> {
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| Error::Io(e.into()))?;
                Ok(f())
            })?
            .join()
            .map_err(|_| {
                Error::Io(std::io::Error::other(
                    "closure panicked inside the namespace",
                ))
            })?
    }

    /// PIDs of every process inside this host.
    pub fn pids(&self) -> Vec<i32> {
        self.netns.pids()
    }

    /// Drops `percent` % of the packets this host sends (replacing any earlier
    /// setting), like a poor Wi-Fi link: `tc ... netem loss`, or, on kernels
    /// without netem, an nftables rule on the output hook (`numgen random`).
    pub fn set_loss(&self, percent: f32) -> Result<()> {
        self.clear_loss();
        let loss = format!("{percent}%");
        let netem = self.exec(&[
            "tc",
            "qdisc",
            "replace",
            "dev",
            HOST_INTERFACE,
            "root",
            "netem",
            "loss",
            &loss,
        ]);
        let Err(netem_error) = netem else {
            return Ok(());
        };
        let per_10000 = (f64::from(percent.clamp(0.0, 100.0)) * 100.0).round();
        let matcher = if per_10000 >= 10000.0 {
            String::new()
        } else {
            format!("numgen random mod 10000 '<' {per_10000}")
        };
        let script = format!(
            "nft add table inet {LOSS_TABLE} && \
             nft add chain inet {LOSS_TABLE} out '{{ type filter hook output priority 0; }}' && \
             nft add rule inet {LOSS_TABLE} out oifname {HOST_INTERFACE} {matcher} drop"
        );
        self.exec(&["sh", "-c", &script])
            .map(drop)
            .map_err(|nft_error| {
                Error::Io(std::io::Error::other(format!(
                    "cannot simulate loss: netem: {netem_error}; nftables: {nft_error}"
                )))
            })
    }

    /// Removes any packet loss set with [`LanHost::set_loss`].
    pub fn clear_loss(&self) {
        let _ = self.exec(&["tc", "qdisc", "del", "dev", HOST_INTERFACE, "root"]);
        let _ = self.exec(&["nft", "delete", "table", "inet", LOSS_TABLE]);
    }

    /// Plugs the host's cable in or out (its bridge port goes up or down), e.g.
    /// to simulate a device leaving the network without saying goodbye.
    pub fn set_connected(&self, connected: bool) -> Result<()> {
        let state = if connected { "up" } else { "down" };
        ip(&["-n", &self.bridge, "link", "set", &self.port, state]).map(drop)
    }
}

/// Removes LAN namespaces whose creating process is gone (a test killed before
/// its `Drop` ran). Only names this module makes are touched.
fn sweep_stale() {
    let Ok(list) = ip(&["netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('x') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        tracing::info!(
            namespace = name,
            "removing a LAN namespace left by a dead test"
        );
        if let Ok(pids) = ip(&["netns", "pids", name]) {
            for p in pids.lines().filter_map(|l| l.trim().parse().ok()) {
                terminate_pid(p, Duration::from_secs(1));
            }
        }
        let _ = ip(&["netns", "del", name]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::require_root;
    use std::net::{SocketAddr, UdpSocket};

    /// Sends one datagram from `from` to `to` and reports whether it arrived.
    fn udp_reaches(from: &LanHost, to: &LanHost, v6: bool) -> bool {
        let (src, dst): (SocketAddr, SocketAddr) = if v6 {
            ((from.ipv6(), 0).into(), (to.ipv6(), 40001).into())
        } else {
            ((from.ip(), 0).into(), (to.ip(), 40001).into())
        };
        let rx = to.run_in(move || UdpSocket::bind(dst)).unwrap().unwrap();
        rx.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        let tx = from.run_in(move || UdpSocket::bind(src)).unwrap().unwrap();
        // A local drop rule (nftables loss) fails the send itself with EPERM.
        if tx.send_to(b"hello", dst).is_err() {
            return false;
        }
        let mut buf = [0u8; 16];
        matches!(rx.recv_from(&mut buf), Ok((5, _)))
    }

    #[test]
    #[ignore = "needs root: run scripts/test"]
    fn hosts_reach_each_other_and_everything_is_removed() {
        require_root();
        let lan = Lan::with_hosts(["a", "b"]).unwrap();
        let a = lan.host("a");
        let b = lan.host("b");
        assert_eq!(a.ip(), Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(b.ip(), Ipv4Addr::new(10, 77, 0, 2));
        assert!(udp_reaches(a, b, false), "IPv4 a -> b");
        assert!(udp_reaches(b, a, true), "IPv6 b -> a");
        let routes = b.exec(&["ip", "route"]).unwrap();
        assert!(routes.contains("224.0.0.0/4 dev eth0"), "{routes}");

        let mut sleeper = b.spawn(Spawn::new("sleep").arg("60")).unwrap();
        assert!(b.pids().contains(&i32::try_from(sleeper.pid()).unwrap()));
        let names: Vec<String> = lan
            .hosts()
            .iter()
            .map(|h| h.netns().to_owned())
            .chain([lan.bridge_netns().to_owned()])
            .collect();
        drop(lan);
        let list = ip(&["netns", "list"]).unwrap();
        for n in &names {
            assert!(!list.contains(n.as_str()), "{n} still exists");
        }
        // The process inside was ended by the teardown.
        let status = sleeper.try_wait().unwrap();
        assert!(status.is_some(), "process inside survived the teardown");
    }

    #[test]
    #[ignore = "needs root: run scripts/test"]
    fn loss_and_unplugging_apply() {
        require_root();
        let lan = Lan::builder()
            .host("a")
            .host("b")
            .loss("a", 100.0)
            .build()
            .unwrap();
        let a = lan.host("a");
        let b = lan.host("b");
        assert!(!udp_reaches(a, b, false), "100 % loss should drop it");
        a.clear_loss();
        assert!(udp_reaches(a, b, false));
        b.set_connected(false).unwrap();
        assert!(!udp_reaches(a, b, false), "unplugged host still reached");
        b.set_connected(true).unwrap();
        assert!(udp_reaches(a, b, false));
    }
}
