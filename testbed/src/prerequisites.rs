//! What a root-only test needs before it starts: root itself (network
//! namespaces, dropping to another user) and the third-party programs it runs
//! (tmux, setpriv, Kamailio, baresip, sipp, Avahi, PostgreSQL).
//!
//! Every such test is `#[ignore = "needs root: run scripts/test"]`, so a plain
//! `cargo test` lists it as ignored, and `scripts/test` runs it with
//! `--include-ignored` as root. There a missing prerequisite is a failure that
//! says what is missing and how to get it, never a silent pass: each test
//! starts with [`require_root`] (or [`require_loopback_only_namespace`] when
//! what it needs is the private namespace root gives) and a
//! [`require_program`] per program.

use std::path::{Path, PathBuf};

/// The reason every root-only test is ignored with, and the message it fails
/// with when run without root.
pub const NEEDS_ROOT: &str = "needs root: run scripts/test";

/// Whether this process runs as root (effective UID 0).
pub fn is_root() -> bool {
    // The effective UID is the second field of the `Uid:` line.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Fails the calling test unless it runs as root.
///
/// # Panics
/// Without root, with [`NEEDS_ROOT`].
pub fn require_root() {
    assert!(is_root(), "{NEEDS_ROOT}");
}

/// Whether this process's network namespace has no interface but loopback
/// (what `scripts/test` runs the suite in): mDNS, Kamailio and baresip can
/// reach no real network from there, whatever else is true.
pub fn only_loopback() -> bool {
    let Ok(dev) = std::fs::read_to_string("/proc/self/net/dev") else {
        return false;
    };
    let names: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|line| line.split(':').next())
        .map(str::trim)
        .collect();
    names == ["lo"]
}

/// Fails the calling test unless its network namespace has nothing but
/// loopback: the tests that run mDNS or a third-party SIP server on loopback
/// never run in the machine's own namespace.
///
/// # Panics
/// In a namespace with any other interface, saying how to run the test.
pub fn require_loopback_only_namespace() {
    assert!(
        only_loopback(),
        "this test runs only in a network namespace with nothing but loopback: \
         {NEEDS_ROOT} (or `unshare --net -- sh -c 'ip link set lo up && cargo test ... \
         -- --include-ignored'` as root)"
    );
}

/// Where `program` is on `PATH` (or `program` itself when it is a path to an
/// existing file).
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).is_file().then(|| PathBuf::from(program));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Fails the calling test unless `program` is installed; the message names the
/// Debian package that brings it (`scripts/install-deps` installs them all).
///
/// # Panics
/// When `program` is not found.
pub fn require_program(program: &str, package: &str) -> PathBuf {
    find_program(program).unwrap_or_else(|| {
        panic!(
            "{program} is not installed: this test needs it (Debian package {package}; \
             scripts/install-deps installs every test prerequisite)"
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Test code: a panic is the failure report.
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_on_the_path_or_by_their_own_path() {
        assert!(find_program("sh").is_some());
        assert_eq!(find_program("/bin/sh"), Some(PathBuf::from("/bin/sh")));
        assert_eq!(find_program("no-such-program-splitdial"), None);
    }

    #[test]
    fn a_missing_program_fails_naming_its_package() {
        let panic = std::panic::catch_unwind(|| {
            require_program("no-such-program-splitdial", "splitdial-nothing")
        })
        .unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(
            message.contains("no-such-program-splitdial is not installed")
                && message.contains("Debian package splitdial-nothing"),
            "{message}"
        );
    }
}
