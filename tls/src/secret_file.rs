//! Files that hold secrets (keys, tokens, passwords, signing seeds) and the directories they live
//! in: refused when group or others may access them, and written 0600 in a 0700 directory so a
//! reader never sees a secret with a looser mode or half a file. Every program's check is this
//! one; each maps [`SecretFileError`] into its own error, naming its file and field.

use std::fs::{DirBuilder, File, Metadata, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A secret file or directory that cannot be used: the path, and its mode where that is why.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// Group or others may read the file.
    #[error("{}: readable by group or others (mode {mode:o}); chmod 600 it", .path.display())]
    SharedFile {
        /// The file.
        path: PathBuf,
        /// Its permission bits (`0o777` masked).
        mode: u32,
    },
    /// Group or others may open the directory.
    #[error("{}: open to group or others (mode {mode:o}); chmod 700 it", .path.display())]
    SharedDirectory {
        /// The directory.
        path: PathBuf,
        /// Its permission bits (`0o777` masked).
        mode: u32,
    },
    /// Something that should be a directory is not one.
    #[error("{}: not a directory", .path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// Reading its metadata, creating or writing it failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl SecretFileError {
    /// The file or directory the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::SharedFile { path, .. }
            | Self::SharedDirectory { path, .. }
            | Self::NotADirectory { path }
            | Self::Io { path, .. } => path,
        }
    }

    /// What is wrong, on one line and without the path (for errors that name the path
    /// themselves).
    pub fn problem(&self) -> String {
        match self {
            Self::SharedFile { mode, .. } => {
                format!("readable by group or others (mode {mode:o}); chmod 600 it")
            }
            Self::SharedDirectory { mode, .. } => {
                format!("open to group or others (mode {mode:o}); chmod 700 it")
            }
            Self::NotADirectory { .. } => "not a directory".into(),
            Self::Io { source, .. } => source.to_string().replace('\n', " "),
        }
    }

    /// The I/O error's kind, when the error is one (a caller may treat a missing file as
    /// "not there yet").
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            Self::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Refuses the secret file at `path` when group or others may access it (a key copied with a
/// loose umask, a config file left 0644).
pub fn refuse_shared(path: &Path) -> Result<(), SecretFileError> {
    let meta = std::fs::metadata(path).map_err(SecretFileError::io(path))?;
    refuse_shared_metadata(path, &meta)
}

/// [`refuse_shared`] for a file already open, so the mode checked is that of the file read.
pub fn refuse_shared_open(path: &Path, file: &File) -> Result<(), SecretFileError> {
    let meta = file.metadata().map_err(SecretFileError::io(path))?;
    refuse_shared_metadata(path, &meta)
}

fn refuse_shared_metadata(path: &Path, meta: &Metadata) -> Result<(), SecretFileError> {
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretFileError::SharedFile {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Creates `dir` and its missing parents 0700; an existing one is left as it is.
pub fn create_private_dirs(dir: &Path) -> Result<(), SecretFileError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(SecretFileError::io(dir))
}

/// Creates `dir` 0700 (with its missing parents), or checks that an existing one is a directory
/// that group and others cannot open.
pub fn private_dir(dir: &Path) -> Result<(), SecretFileError> {
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => Err(SecretFileError::NotADirectory {
            path: dir.to_owned(),
        }),
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
            Err(SecretFileError::SharedDirectory {
                path: dir.to_owned(),
                mode: meta.permissions().mode() & 0o777,
            })
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_private_dirs(dir),
        Err(e) => Err(SecretFileError::io(dir)(e)),
    }
}

/// Writes a new file 0600 holding `bytes`, synced; an existing file is an error
/// (`AlreadyExists`, see [`SecretFileError::io_kind`]) and is left untouched.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), SecretFileError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(SecretFileError::io(path))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(SecretFileError::io(path))
}

/// Writes `bytes` to `path` 0600, replacing any file there: through a temporary file in the same
/// directory, synced and renamed over the old one, so a reader sees the old file or the whole new
/// one, never half a key and never a looser mode.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), SecretFileError> {
    // Two writers in one process never share a temporary name; create_new refuses a leftover.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let renamed = write_new(&temp, bytes)
        .and_then(|()| std::fs::rename(&temp, path).map_err(SecretFileError::io(path)));
    if let Err(e) = renamed {
        let _ = std::fs::remove_file(&temp);
        // The error names the file the caller asked for, not the temporary one.
        return Err(match e {
            SecretFileError::Io { source, .. } => SecretFileError::io(path)(source),
            other => other,
        });
    }
    // Make the rename itself durable; a directory that cannot be opened for this is no error.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_file_others_can_read_is_refused_with_its_path_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s").unwrap();
        chmod(&path, 0o644);
        let e = refuse_shared(&path).unwrap_err();
        assert!(
            matches!(&e, SecretFileError::SharedFile { mode: 0o644, path: p } if p == &path),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!(
                "{}: readable by group or others (mode 644); chmod 600 it",
                path.display()
            )
        );
        let open = File::open(&path).unwrap();
        assert!(refuse_shared_open(&path, &open).is_err());
        chmod(&path, 0o640);
        assert!(refuse_shared(&path).is_err());
        chmod(&path, 0o600);
        refuse_shared(&path).unwrap();
        refuse_shared_open(&path, &open).unwrap();
        chmod(&path, 0o400);
        refuse_shared(&path).unwrap();
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing");
        let e = refuse_shared(&path).unwrap_err();
        assert_eq!(e.io_kind(), Some(std::io::ErrorKind::NotFound));
        assert_eq!(e.path(), path);
        assert!(
            e.to_string().starts_with(&path.display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn a_shared_directory_is_refused_and_a_missing_one_made_0700() {
        let base = tempfile::tempdir().unwrap();
        let open = base.path().join("open");
        std::fs::create_dir(&open).unwrap();
        chmod(&open, 0o755);
        let e = private_dir(&open).unwrap_err();
        assert!(
            matches!(e, SecretFileError::SharedDirectory { mode: 0o755, .. }),
            "{e:?}"
        );
        assert!(e.problem().contains("chmod 700"), "{e}");
        chmod(&open, 0o700);
        private_dir(&open).unwrap();
        let made = base.path().join("a/b");
        private_dir(&made).unwrap();
        assert_eq!(mode(&made), 0o700);
        assert_eq!(mode(&base.path().join("a")), 0o700);
        let file = base.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(matches!(
            private_dir(&file),
            Err(SecretFileError::NotADirectory { .. })
        ));
    }

    #[test]
    fn written_files_are_0600_and_new_ones_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write_new(&path, b"first").unwrap();
        assert_eq!(mode(&path), 0o600);
        let e = write_new(&path, b"second").unwrap_err();
        assert_eq!(e.io_kind(), Some(std::io::ErrorKind::AlreadyExists));
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
    }

    #[test]
    fn replace_narrows_a_shared_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        std::fs::write(&path, "old").unwrap();
        chmod(&path, 0o644);
        replace(&path, b"new").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("users.toml")]);
        let e = replace(&dir.path().join("no/such/dir"), b"x").unwrap_err();
        assert!(e.path().ends_with("no/such/dir"), "{e}");
    }
}
