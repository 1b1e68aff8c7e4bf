//! The SQLite database file holds the token-signing seeds, so it is a secret
//! file: created 0600 in a 0700 directory (where the matcher creates them), and
//! refused, before anything reads it, when its group or others may access it.

use super::StorageError;
use std::fs::{DirBuilder, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
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
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| fail(format!("creating its directory: {e}")))?;
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    let mode = std::fs::metadata(path)
        .map_err(|e| fail(e.to_string()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(fail(format!(
            "readable by group or others (mode {:o}); it holds the signing keys: chmod 600 it",
            mode & 0o777
        )));
    }
    Ok(())
}
