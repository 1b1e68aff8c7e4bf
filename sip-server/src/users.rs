//! The users file: who may register and call, with their digest secrets.
//!
//! ```toml
//! [users.alice]
//! password = "alice-secret"          # or a precomputed H(A1):
//! [users.bob]
//! ha1_md5 = "…"                      # MD5(bob:REALM:password)
//! ha1_sha256 = "…"                   # SHA-256(bob:REALM:password)
//! ```

use crate::digest::{Algorithm, ha1};
use serde::Deserialize;
use splitdial_tls::secret_file::SecretFileError;
use std::collections::HashMap;
use std::path::Path;

/// A user's stored secrets: H(A1) per digest algorithm (RFC 8760).
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// MD5 H(A1), hex.
    pub ha1_md5: Option<String>,
    /// SHA-256 H(A1), hex.
    pub ha1_sha256: Option<String>,
}

impl Secrets {
    /// The algorithms this user can be challenged with, SHA-256 first: a client
    /// answering a challenge we hold no H(A1) for could never succeed (and many,
    /// such as sipp, answer only the first challenge).
    pub fn algorithms(&self) -> Vec<Algorithm> {
        let mut offer = Vec::new();
        if self.ha1_sha256.is_some() {
            offer.push(Algorithm::Sha256);
        }
        if self.ha1_md5.is_some() {
            offer.push(Algorithm::Md5);
        }
        offer
    }

    /// The H(A1) for `algorithm`, if this user has one.
    pub fn ha1(&self, algorithm: Algorithm) -> Option<&str> {
        match algorithm {
            Algorithm::Md5 => self.ha1_md5.as_deref(),
            Algorithm::Sha256 => self.ha1_sha256.as_deref(),
        }
    }
}

/// Every user of the domain with their secrets.
#[derive(Debug, Clone, Default)]
pub struct UserDirectory {
    users: HashMap<String, Secrets>,
}

/// A users file that cannot be used; the message names the file and the field.
#[derive(Debug, thiserror::Error)]
#[error("users file {path}: {problem}")]
pub struct UsersFileError {
    path: String,
    problem: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    users: HashMap<String, UserEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    password: Option<String>,
    ha1_md5: Option<String>,
    ha1_sha256: Option<String>,
}

impl UserDirectory {
    /// The algorithms to challenge `user` with (both for an unknown user, so a
    /// challenge reveals nothing about who exists).
    pub fn algorithms_for(&self, user: &str) -> Vec<Algorithm> {
        self.users.get(user).map_or_else(
            || vec![Algorithm::Sha256, Algorithm::Md5],
            Secrets::algorithms,
        )
    }

    /// Reads a users file; `realm` is the domain the H(A1) values were made for.
    /// The file holds passwords or their hashes: it is refused when its group or
    /// others may access it.
    pub fn load(path: &Path, realm: &str) -> Result<Self, UsersFileError> {
        let fail = |problem: String| UsersFileError {
            path: path.display().to_string(),
            problem,
        };
        splitdial_tls::secret_file::refuse_shared(path).map_err(|e| match e {
            SecretFileError::SharedFile { mode, .. } => fail(format!(
                "readable by group or others (mode {mode:o}); it holds passwords: chmod 600 it"
            )),
            other => fail(other.problem()),
        })?;
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        Self::parse(&text, realm).map_err(fail)
    }

    /// Parses the text of a users file; the error names the field.
    pub fn parse(text: &str, realm: &str) -> Result<Self, String> {
        let file: UsersFile = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        let mut users = HashMap::new();
        for (name, entry) in file.users {
            if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '@' || c == ':')
            {
                return Err(format!("users.{name}: not a valid user name"));
            }
            let check_hex = |field: &str, value: &Option<String>, len: usize| match value {
                Some(v) if v.len() != len || !v.bytes().all(|b| b.is_ascii_hexdigit()) => Err(
                    format!("users.{name}.{field}: expected {len} hexadecimal digits"),
                ),
                _ => Ok(()),
            };
            check_hex("ha1_md5", &entry.ha1_md5, 32)?;
            check_hex("ha1_sha256", &entry.ha1_sha256, 64)?;
            let secrets = match entry.password {
                Some(pw) if entry.ha1_md5.is_some() || entry.ha1_sha256.is_some() => {
                    drop(pw);
                    return Err(format!(
                        "users.{name}: give `password` or `ha1_md5`/`ha1_sha256`, not both"
                    ));
                }
                Some(pw) => Secrets {
                    ha1_md5: Some(ha1(Algorithm::Md5, &name, realm, &pw)),
                    ha1_sha256: Some(ha1(Algorithm::Sha256, &name, realm, &pw)),
                },
                None if entry.ha1_md5.is_none() && entry.ha1_sha256.is_none() => {
                    return Err(format!(
                        "users.{name}: needs `password`, `ha1_md5` or `ha1_sha256`"
                    ));
                }
                None => Secrets {
                    ha1_md5: entry.ha1_md5.map(|s| s.to_ascii_lowercase()),
                    ha1_sha256: entry.ha1_sha256.map(|s| s.to_ascii_lowercase()),
                },
            };
            users.insert(name, secrets);
        }
        Ok(Self { users })
    }

    /// The secrets of `user`, if the user exists.
    pub fn get(&self, user: &str) -> Option<&Secrets> {
        self.users.get(user)
    }

    /// Whether `user` exists.
    pub fn contains(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_passwords_and_ha1s() {
        let dir = UserDirectory::parse(
            "[users.alice]\npassword = \"pw\"\n[users.bob]\nha1_md5 = \"0123456789abcdef0123456789ABCDEF\"\n",
            "home.example",
        )
        .unwrap();
        assert_eq!(
            dir.get("alice").unwrap().ha1(Algorithm::Md5).unwrap(),
            ha1(Algorithm::Md5, "alice", "home.example", "pw")
        );
        assert!(dir.get("bob").unwrap().ha1(Algorithm::Sha256).is_none());
        assert!(!dir.contains("carol"));
    }

    #[test]
    fn a_users_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        std::fs::write(&path, "[users.alice]\npassword = \"pw\"\n").unwrap();
        for shared in [0o644, 0o640, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(shared)).unwrap();
            let e = UserDirectory::load(&path, "r").unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "users file {}: readable by group or others (mode {shared:o}); it holds passwords: chmod 600 it",
                    path.display()
                )
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(UserDirectory::load(&path, "r").unwrap().contains("alice"));
    }

    #[test]
    fn errors_name_the_field() {
        let e = UserDirectory::parse("[users.bob]\nha1_md5 = \"xyz\"\n", "r").unwrap_err();
        assert!(e.contains("users.bob.ha1_md5"), "{e}");
        let e = UserDirectory::parse("[users.eve]\n", "r").unwrap_err();
        assert!(e.contains("users.eve"), "{e}");
        let e = UserDirectory::parse("[users.eve]\npasswd = \"x\"\n", "r").unwrap_err();
        assert!(e.contains("passwd"), "{e}");
    }
}
