//! `splitdial demo`: the household in a box (docs/dialer.md, "Demo") lives in
//! a program of its own, `splitdial-demo`, so that the dialer links no
//! household, test rig or namespace code. This runs the one next to this
//! executable in this process's place (Unix `exec`): the same PID and
//! terminal, so SIGINT, SIGTERM and SIGHUP reach the demo, and its stderr
//! lines and exit code are the command's.

use crate::cli::{Exit, ExitCode};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Command;

/// The demo's program name, next to `splitdial`.
pub const PROGRAM: &str = "splitdial-demo";

/// The demo's options (`splitdial demo --help`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DemoOptions {
    /// Start the household only, print how to reach it, wait for a signal.
    pub no_tui: bool,
    /// Print stage timings, PIDs, namespaces and the scratch directory.
    pub timings: bool,
}

/// Replaces this process with the demo. Returns only when that failed: why,
/// in one line naming the program and the command that builds it (exit 1).
pub fn exec(options: DemoOptions) -> Exit {
    let program = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name(PROGRAM),
        Err(e) => {
            return Exit::new(
                ExitCode::Failure,
                format!("demo: cannot find the splitdial executable: {e}"),
            );
        }
    };
    let error = demo_command(&program, options).exec();
    Exit::new(ExitCode::Failure, cannot_run(&program, &error))
}

/// `PROGRAM [--no-tui] [--timings]`: the demo brings its own configuration,
/// so none of the dialer's global flags are passed on.
fn demo_command(program: &Path, options: DemoOptions) -> Command {
    let mut command = Command::new(program);
    if options.no_tui {
        command.arg("--no-tui");
    }
    if options.timings {
        command.arg("--timings");
    }
    command
}

/// Why the demo did not start, with the build command for the directory's
/// profile.
fn cannot_run(program: &Path, error: &std::io::Error) -> String {
    let release = if program.parent().is_some_and(|dir| dir.ends_with("release")) {
        " --release"
    } else {
        ""
    };
    format!(
        "demo: cannot run {}: {error}; build it with `cargo build{release} -p {PROGRAM}` (`sudo scripts/demo` builds and runs it)",
        program.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_gets_only_its_own_flags() {
        let args = |options| {
            demo_command(Path::new("/x/splitdial-demo"), options)
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        assert!(args(DemoOptions::default()).is_empty());
        assert_eq!(
            args(DemoOptions {
                no_tui: true,
                timings: true
            }),
            ["--no-tui", "--timings"]
        );
        assert_eq!(
            args(DemoOptions {
                no_tui: false,
                timings: true
            }),
            ["--timings"]
        );
    }

    #[test]
    fn a_missing_demo_is_named_with_its_build_command() {
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        let release = cannot_run(Path::new("/t/release/splitdial-demo"), &missing);
        assert!(
            release.contains("/t/release/splitdial-demo")
                && release.contains("`cargo build --release -p splitdial-demo`"),
            "{release}"
        );
        let debug = cannot_run(Path::new("/t/debug/splitdial-demo"), &missing);
        assert!(debug.contains("`cargo build -p splitdial-demo`"), "{debug}");
        assert!(!debug.contains('\n'), "{debug}");
    }
}
