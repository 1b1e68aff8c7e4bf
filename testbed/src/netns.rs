//! Network namespaces owned by a test: created with a unique name, removed on drop.

use crate::{Error, Result, unique_name};
use std::process::Command;

/// A network namespace created by this test run; removed (after ending every
/// process still inside it) when dropped.
#[derive(Debug)]
pub struct Namespace {
    name: String,
}

impl Namespace {
    /// Creates a fresh namespace named `prefix` plus a unique suffix, with `lo` up.
    pub fn create(prefix: &str) -> Result<Self> {
        let name = unique_name(prefix);
        ip(&["netns", "add", &name])?;
        let ns = Self { name };
        ns.exec(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs a command to completion inside the namespace and fails if it fails.
    pub fn exec(&self, argv: &[&str]) -> Result<String> {
        let mut full = vec!["netns", "exec", self.name.as_str()];
        full.extend_from_slice(argv);
        ip(&full)
    }

    /// PIDs of every process currently inside the namespace.
    pub fn pids(&self) -> Vec<i32> {
        ip(&["netns", "pids", &self.name])
            .map(|out| out.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // `ip netns del` does not end the processes inside: end them first.
        for pid in self.pids() {
            crate::process::terminate_pid(pid, std::time::Duration::from_secs(2));
        }
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            tracing::warn!(namespace = %self.name, error = %e, "could not remove namespace");
        }
    }
}

/// Runs `ip ARGS...` and returns its stdout, or an error carrying its stderr.
pub fn ip(args: &[&str]) -> Result<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| Error::Spawn {
            program: "ip".into(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Ip {
            command: format!("ip {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}
