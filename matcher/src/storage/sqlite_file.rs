//! The SQLite database file holds the token-signing seeds, so it is a secret
//! file: created 0600 in a 0700 directory (where the matcher creates them), and
//! refused, before anything reads it, when its group or others may access it.

use super::StorageError;
use splitdial_tls::secret_file::{self, SecretFileError};
use std::io::ErrorKind;
use std::path::Path;

/// Makes sure the database at `path` is private: creates its missing
/// directories 0700 and the file itself 0600 when it does not exist yet;
/// refuses an existing file that its group or others may access.
pub(super) fn make_private(path: &Path) -> Result<(), StorageError> {
    let fail = |problem: String| StorageError::SecretFile {
        path: path.display().to_string(),
        problem,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        secret_file::create_private_dirs(dir)
            .map_err(|e| fail(format!("creating its directory: {}", e.problem())))?;
    }
    match secret_file::write_new(path, b"") {
        Ok(()) => return Ok(()),
        Err(e) if e.io_kind() == Some(ErrorKind::AlreadyExists) => {}
        Err(e) => return Err(fail(e.problem())),
    }
    secret_file::refuse_shared(path).map_err(|e| match e {
        SecretFileError::SharedFile { mode, .. } => fail(format!(
            "readable by group or others (mode {mode:o}); it holds the signing keys: chmod 600 it"
        )),
        other => fail(other.problem()),
    })
}
