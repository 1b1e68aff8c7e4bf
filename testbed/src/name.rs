//! Per-run unique names for namespaces, instances and files.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A short name unique to this process and call, starting with `prefix`.
///
/// Linux interface and namespace names are short (interfaces: 15 bytes), so the
/// suffix is compact: the low bits of the PID and the clock plus a counter.
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let salt = (std::process::id() ^ nanos.rotate_left(7)) & 0xffff;
    format!("{prefix}{salt:04x}{n:x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_short() {
        let a = unique_name("sd");
        let b = unique_name("sd");
        assert_ne!(a, b);
        assert!(a.starts_with("sd"));
        assert!(a.len() <= 12, "{a}");
    }
}
