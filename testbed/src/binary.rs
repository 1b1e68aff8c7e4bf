//! Finding a program of this workspace's build: tests of one package run
//! another package's program (the matcher's tests start talker agents), and a
//! household starts the servers, the matcher and the agents.
//!
//! The programs are looked up next to the running executable, in the target
//! directory it was built into (a test executable's `deps/` counts as its
//! parent), so a debug test runs debug programs and a release bench release
//! ones. Cargo builds a test's own package's binaries before the test, but not
//! other packages': `cargo build --workspace --bins` does (`scripts/test` runs
//! it first).

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Program `name` (e.g. `matcher`, `splitdial`) of this build.
///
/// # Errors
/// [`Error::MissingBinary`] when it is not built, with the command that
/// builds it into that directory; [`Error::Io`] when the running executable
/// cannot be located.
pub fn find_binary(name: &str) -> Result<PathBuf> {
    binary_in(&build_dir()?, name)
}

/// [`find_binary`] for tests and benches, whose failure report is a panic.
///
/// # Panics
/// When the program is not built, saying how to build it.
pub fn workspace_binary(name: &str) -> PathBuf {
    find_binary(name).unwrap_or_else(|e| panic!("{e}"))
}

/// The directory the running executable was built into.
fn build_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    Ok(dir)
}

/// `dir/name` if it is a file, else [`Error::MissingBinary`] with the build
/// command for that directory's profile.
fn binary_in(dir: &Path, name: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    if path.is_file() {
        return Ok(path);
    }
    let release = if dir.ends_with("release") {
        " --release"
    } else {
        ""
    };
    Err(Error::MissingBinary {
        path,
        build: format!("cargo build{release} --bin {name}"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Test code: a panic is the failure report.
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_is_named_with_its_build_command() {
        let dir = tempfile::tempdir().unwrap();
        let release = dir.path().join("release");
        std::fs::create_dir(&release).unwrap();
        let err = binary_in(&release, "matcher").unwrap_err().to_string();
        assert!(err.contains("release/matcher is not built"), "{err}");
        assert!(
            err.contains("`cargo build --release --bin matcher`"),
            "{err}"
        );
        let err = binary_in(dir.path(), "sip-server").unwrap_err().to_string();
        assert!(err.contains("`cargo build --bin sip-server`"), "{err}");
        std::fs::write(release.join("matcher"), "").unwrap();
        assert_eq!(
            binary_in(&release, "matcher").unwrap(),
            release.join("matcher")
        );
    }

    #[test]
    fn the_build_directory_is_above_deps() {
        let dir = build_dir().unwrap();
        assert!(!dir.ends_with("deps"), "{}", dir.display());
        assert!(dir.is_dir(), "{}", dir.display());
    }
}
