//! Which network interfaces mDNS runs on: always chosen explicitly by the caller.

use crate::error::DiscoveryError;
use mdns_sd::{DaemonEvent, IfKind, ServiceDaemon};
use std::fmt;
use std::str::FromStr;

/// The interfaces (by name, or all of them) and IP families an mDNS daemon uses.
///
/// Parse one from text with [`FromStr`]: `all`, or a comma-separated list of
/// interface names such as `eth0,wlan0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceSelection {
    names: Option<Vec<String>>,
    ipv4: bool,
    ipv6: bool,
}

impl InterfaceSelection {
    /// Every interface of the host, loopback included, IPv4 and IPv6.
    pub fn all() -> Self {
        Self {
            names: None,
            ipv4: true,
            ipv6: true,
        }
    }

    /// Only the named interfaces (e.g. `["eth0"]`), IPv4 and IPv6.
    pub fn named<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            names: Some(names.into_iter().map(Into::into).collect()),
            ipv4: true,
            ipv6: true,
        }
    }

    /// Restricts to IPv4.
    #[must_use]
    pub fn ipv4_only(mut self) -> Self {
        self.ipv4 = true;
        self.ipv6 = false;
        self
    }

    /// Restricts to IPv6.
    #[must_use]
    pub fn ipv6_only(mut self) -> Self {
        self.ipv4 = false;
        self.ipv6 = true;
        self
    }

    /// The interface names, or `None` for all.
    pub fn names(&self) -> Option<&[String]> {
        self.names.as_deref()
    }

    /// Whether IPv4 is used.
    pub fn uses_ipv4(&self) -> bool {
        self.ipv4
    }

    /// Whether IPv6 is used.
    pub fn uses_ipv6(&self) -> bool {
        self.ipv6
    }

    /// Creates an mDNS daemon restricted to this selection.
    ///
    /// Right after `ServiceDaemon::new()` every interface is disabled, then only the
    /// selected ones are enabled. (mdns-sd may already have joined the multicast
    /// groups on every interface that was up during `new()`: run it only in a
    /// network you mean to talk to.) Daemon errors and name changes are logged.
    pub fn start_daemon(&self) -> Result<ServiceDaemon, DiscoveryError> {
        if matches!(&self.names, Some(n) if n.is_empty() || n.iter().any(String::is_empty)) {
            return Err(DiscoveryError::NoInterfaces);
        }
        if !self.ipv4 && !self.ipv6 {
            return Err(DiscoveryError::NoInterfaces);
        }
        let daemon = ServiceDaemon::new()?;
        let configured = self.configure(&daemon);
        if let Err(e) = configured {
            let _ = daemon.shutdown();
            return Err(e);
        }
        match daemon.monitor() {
            Ok(events) => {
                std::thread::Builder::new()
                    .name("mdns-monitor".into())
                    .spawn(move || {
                        // Ends when the daemon shuts down and drops the sender.
                        while let Ok(event) = events.recv() {
                            log_daemon_event(&event);
                        }
                    })
                    .map_err(DiscoveryError::Thread)?;
            }
            Err(e) => tracing::warn!(error = %e, "cannot monitor the mDNS daemon"),
        }
        Ok(daemon)
    }

    fn configure(&self, daemon: &ServiceDaemon) -> Result<(), DiscoveryError> {
        daemon.disable_interface(IfKind::All)?;
        match &self.names {
            None => daemon.enable_interface(IfKind::All)?,
            Some(names) => {
                let kinds: Vec<IfKind> = names.iter().map(|n| IfKind::Name(n.clone())).collect();
                daemon.enable_interface(kinds)?;
            }
        }
        if !self.ipv4 {
            daemon.disable_interface(IfKind::IPv4)?;
        }
        if !self.ipv6 {
            daemon.disable_interface(IfKind::IPv6)?;
        }
        Ok(())
    }
}

fn log_daemon_event(event: &DaemonEvent) {
    match event {
        DaemonEvent::Error(e) => tracing::warn!(error = %e, "mDNS daemon error"),
        DaemonEvent::NameChange(change) => tracing::warn!(
            original = %change.original,
            new_name = %change.new_name,
            "mDNS name conflict: renamed"
        ),
        DaemonEvent::IpAdd(ip) => tracing::debug!(%ip, "mDNS address added"),
        DaemonEvent::IpDel(ip) => tracing::debug!(%ip, "mDNS address removed"),
        other => tracing::trace!(event = ?other, "mDNS daemon event"),
    }
}

impl FromStr for InterfaceSelection {
    type Err = DiscoveryError;

    /// `all`, or interface names separated by commas.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(Self::all());
        }
        let names: Vec<String> = s
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        if names.is_empty() {
            return Err(DiscoveryError::NoInterfaces);
        }
        Ok(Self::named(names))
    }
}

impl fmt::Display for InterfaceSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.names {
            None => f.write_str("all")?,
            Some(names) => f.write_str(&names.join(","))?,
        }
        match (self.ipv4, self.ipv6) {
            (true, false) => f.write_str(" (IPv4 only)"),
            (false, true) => f.write_str(" (IPv6 only)"),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_and_names() {
        assert_eq!(
            "all".parse::<InterfaceSelection>().unwrap(),
            InterfaceSelection::all()
        );
        let s: InterfaceSelection = "eth0, wlan0".parse().unwrap();
        assert_eq!(s.names().unwrap(), ["eth0", "wlan0"]);
        assert!(" , ".parse::<InterfaceSelection>().is_err());
        assert_eq!(s.to_string(), "eth0,wlan0");
        assert_eq!(s.ipv6_only().to_string(), "eth0,wlan0 (IPv6 only)");
    }

    #[test]
    fn refuses_an_empty_selection_before_starting_anything() {
        let empty = InterfaceSelection::named(Vec::<String>::new());
        assert!(matches!(
            empty.start_daemon(),
            Err(DiscoveryError::NoInterfaces)
        ));
    }
}
