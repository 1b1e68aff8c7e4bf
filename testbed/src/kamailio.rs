//! Kamailio, the reference SIP server of the interop tests, the household's
//! Kamailio servers and the load benchmarks, started the one way they all
//! need: in the foreground (so the PID we hold is the main process and
//! SIGTERM stops it), logging to stderr (the process log), with its run files
//! in a directory of the caller's.

use crate::process::Spawn;
use std::path::Path;

/// Shared memory enough for a household or an interop test.
pub const KAMAILIO_MEMORY_MB: u32 = 64;
/// Shared memory for load: with 64 MB Kamailio runs out near 1000 calls/s.
pub const KAMAILIO_LOAD_MEMORY_MB: u32 = 256;

/// Kamailio running configuration `cfg` in the foreground, its pid file and
/// working directory in `run_dir`, with `shared_memory_mb` of shared memory
/// and 8 MB per process. Add `-A NAME=VALUE` defines, a label or a namespace
/// to the returned [`Spawn`].
pub fn kamailio(cfg: &Path, run_dir: &Path, shared_memory_mb: u32) -> Spawn {
    Spawn::new("kamailio")
        .arg("-f")
        .arg(cfg)
        // -DD: no fork into the background; -E: log to stderr; -Y: the run
        // directory (control sockets).
        .args(["-DD", "-E", "-Y"])
        .arg(run_dir)
        .arg("-P")
        .arg(run_dir.join("pid"))
        .arg("-w")
        .arg(run_dir)
        .arg("-m")
        .arg(shared_memory_mb.to_string())
        .args(["-M", "8"])
}
