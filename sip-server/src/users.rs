//! The users file: who may register and call, with their digest secrets.
//!
//! ```toml
//! challenge = "md5"                  # optional: "sha256", "md5-sha256" or "md5"
//! [users.alice]
//! password = "alice-secret"          # or a precomputed H(A1):
//! [users.bob]
//! ha1_md5 = "…"                      # MD5(bob:REALM:password)
//! ha1_sha256 = "…"                   # SHA-256(bob:REALM:password)
//! md5 = true                         # a phone that speaks only MD5 (baresip, sipp)
//! ```
//!
//! MD5 is allowed only for accounts marked `md5 = true` (an entry with only an
//! `ha1_md5` is marked by itself). The realm's challenge set follows from the
//! whole file, never from the user asked about: SHA-256 alone, or MD5 first and
//! SHA-256 second when any account is marked, because the MD5-only clients answer
//! only the first challenge. A realm with a phone built on libre (baresip 1.x)
//! must say `challenge = "md5"`: libre refuses a whole 401 as soon as one of its
//! challenges is not MD5, whatever the order, so that realm is challenged with
//! MD5 alone and every account in it must be marked.

use crate::digest::{Algorithm, ha1};
use serde::Deserialize;
use splitdial_tls::secret_file::SecretFileError;
use std::collections::HashMap;
use std::path::Path;

/// A user's stored secrets: H(A1) per digest algorithm (RFC 8760).
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// MD5 H(A1), hex; kept only for an account marked `md5` (the only ones MD5
    /// may authenticate).
    pub ha1_md5: Option<String>,
    /// SHA-256 H(A1), hex.
    pub ha1_sha256: Option<String>,
}

impl Secrets {
    /// Whether this account may answer an MD5 challenge.
    pub fn md5_allowed(&self) -> bool {
        self.ha1_md5.is_some()
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
    /// The realm's challenge set, in the order sent.
    challenge_set: Vec<Algorithm>,
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
    challenge: Option<ChallengeSet>,
    #[serde(default)]
    users: HashMap<String, UserEntry>,
}

/// The `challenge` a users file may name for its realm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
enum ChallengeSet {
    /// SHA-256 alone: no account may use MD5.
    #[serde(rename = "sha256")]
    Sha256,
    /// MD5 first, SHA-256 second: for phones that answer only the first
    /// challenge and only MD5 (sipp), beside clients that pick SHA-256.
    #[serde(rename = "md5-sha256")]
    Md5ThenSha256,
    /// MD5 alone: for libre-based phones (baresip 1.x), which refuse a 401
    /// carrying any challenge that is not MD5. Every account must be marked.
    #[serde(rename = "md5")]
    Md5,
}

impl ChallengeSet {
    /// The set a file gets when it names none: MD5 is offered only when some
    /// account may answer it.
    fn implied(any_marked: bool) -> Self {
        if any_marked {
            Self::Md5ThenSha256
        } else {
            Self::Sha256
        }
    }

    /// The algorithms, in the order the challenges are sent.
    fn algorithms(self) -> Vec<Algorithm> {
        match self {
            Self::Sha256 => vec![Algorithm::Sha256],
            Self::Md5ThenSha256 => vec![Algorithm::Md5, Algorithm::Sha256],
            Self::Md5 => vec![Algorithm::Md5],
        }
    }

    /// Why the accounts cannot all authenticate under this set, if so.
    fn refusal(self, users: &HashMap<String, Secrets>) -> Option<String> {
        let mut names: Vec<&String> = users.keys().collect();
        names.sort();
        let first = |marked: bool| {
            names
                .iter()
                .find(|n| users.get(n.as_str()).is_some_and(|s| s.md5_allowed()) == marked)
        };
        match self {
            Self::Sha256 => first(true).map(|name| {
                format!("challenge: \"sha256\" offers no MD5, but users.{name} is marked md5")
            }),
            Self::Md5 => first(false).map(|name| {
                format!(
                    "challenge: \"md5\" offers no SHA-256, but users.{name} is not marked md5 = true"
                )
            }),
            Self::Md5ThenSha256 => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    password: Option<String>,
    ha1_md5: Option<String>,
    ha1_sha256: Option<String>,
    md5: Option<bool>,
}

impl UserDirectory {
    /// The realm's one challenge set, the same for every user known or not (a
    /// challenge reveals nothing about who exists): SHA-256 alone, or MD5 first
    /// and SHA-256 second when an account is marked `md5` — sipp answers only
    /// the first challenge, and every other client is expected to pick SHA-256
    /// wherever it stands (RFC 8760 §2.4) — or MD5 alone where the file says
    /// `challenge = "md5"` (libre-based phones).
    pub fn challenge_set(&self) -> &[Algorithm] {
        &self.challenge_set
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
            let secrets = entry.secrets(&name, realm)?;
            users.insert(name, secrets);
        }
        let set = file
            .challenge
            .unwrap_or_else(|| ChallengeSet::implied(users.values().any(Secrets::md5_allowed)));
        if let Some(refusal) = set.refusal(&users) {
            return Err(refusal);
        }
        Ok(Self {
            users,
            challenge_set: set.algorithms(),
        })
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

impl UserEntry {
    /// The secrets of user `name`: H(A1) values from a password or as given, the
    /// MD5 one kept only when the account is marked `md5` (explicitly, or by
    /// having nothing but an `ha1_md5`).
    fn secrets(self, name: &str, realm: &str) -> Result<Secrets, String> {
        let only_md5 = self.password.is_none() && self.ha1_sha256.is_none();
        let md5 = match self.md5 {
            Some(false) if only_md5 && self.ha1_md5.is_some() => {
                return Err(format!(
                    "users.{name}.md5: false, but the account has only `ha1_md5`: add `ha1_sha256` or a `password`"
                ));
            }
            Some(true) if self.password.is_none() && self.ha1_md5.is_none() => {
                return Err(format!(
                    "users.{name}.md5: true needs `password` or `ha1_md5`"
                ));
            }
            Some(marked) => marked,
            None => only_md5,
        };
        let (ha1_md5, ha1_sha256) = match self.password {
            Some(pw) if self.ha1_md5.is_some() || self.ha1_sha256.is_some() => {
                drop(pw);
                return Err(format!(
                    "users.{name}: give `password` or `ha1_md5`/`ha1_sha256`, not both"
                ));
            }
            Some(pw) => (
                Some(ha1(Algorithm::Md5, name, realm, &pw)),
                Some(ha1(Algorithm::Sha256, name, realm, &pw)),
            ),
            None if self.ha1_md5.is_none() && self.ha1_sha256.is_none() => {
                return Err(format!(
                    "users.{name}: needs `password`, `ha1_md5` or `ha1_sha256`"
                ));
            }
            None => (
                self.ha1_md5.map(|s| s.to_ascii_lowercase()),
                self.ha1_sha256.map(|s| s.to_ascii_lowercase()),
            ),
        };
        Ok(Secrets {
            ha1_md5: ha1_md5.filter(|_| md5),
            ha1_sha256,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_passwords_and_ha1s() {
        let dir = UserDirectory::parse(
            "[users.alice]\npassword = \"pw\"\nmd5 = true\n[users.bob]\nha1_md5 = \"0123456789abcdef0123456789ABCDEF\"\n",
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
    fn md5_is_kept_only_for_marked_accounts_and_decides_the_challenge_set() {
        let sha_only = UserDirectory::parse(
            "[users.alice]\npassword = \"pw\"\n[users.bob]\nha1_md5 = \"0123456789abcdef0123456789abcdef\"\nha1_sha256 = \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"\n",
            "r",
        )
        .unwrap();
        // Neither is marked: no MD5 H(A1) kept, SHA-256 alone offered.
        assert!(!sha_only.get("alice").unwrap().md5_allowed());
        assert!(!sha_only.get("bob").unwrap().md5_allowed());
        assert_eq!(sha_only.challenge_set(), [Algorithm::Sha256]);
        // One marked account (explicitly, or by having only ha1_md5) puts MD5 first.
        for marked in [
            "[users.eve]\npassword = \"pw\"\nmd5 = true\n",
            "[users.eve]\nha1_md5 = \"0123456789abcdef0123456789abcdef\"\n",
        ] {
            let text = format!("[users.alice]\npassword = \"pw\"\n{marked}");
            let dir = UserDirectory::parse(&text, "r").unwrap();
            assert!(dir.get("eve").unwrap().md5_allowed(), "{marked}");
            assert!(!dir.get("alice").unwrap().md5_allowed());
            assert_eq!(dir.challenge_set(), [Algorithm::Md5, Algorithm::Sha256]);
        }
        let e = UserDirectory::parse(
            "[users.eve]\nha1_md5 = \"0123456789abcdef0123456789abcdef\"\nmd5 = false\n",
            "r",
        )
        .unwrap_err();
        assert!(e.starts_with("users.eve.md5:"), "{e}");
        let e = UserDirectory::parse(
            "[users.eve]\nha1_sha256 = \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"\nmd5 = true\n",
            "r",
        )
        .unwrap_err();
        assert!(e.starts_with("users.eve.md5:"), "{e}");
    }

    #[test]
    fn a_named_challenge_set_must_fit_the_accounts() {
        const PLAIN: &str = "[users.alice]\npassword = \"pw\"\n";
        const MARKED: &str = "[users.eve]\npassword = \"pw\"\nmd5 = true\n";
        /// The set a file names, its accounts, and the challenges sent or the refusal.
        type Case = (
            &'static str,
            &'static str,
            Result<&'static [Algorithm], &'static str>,
        );
        let cases: [Case; 6] = [
            ("sha256", PLAIN, Ok(&[Algorithm::Sha256])),
            (
                "md5-sha256",
                PLAIN,
                Ok(&[Algorithm::Md5, Algorithm::Sha256]),
            ),
            ("md5", MARKED, Ok(&[Algorithm::Md5])),
            (
                "sha256",
                MARKED,
                Err("challenge: \"sha256\" offers no MD5, but users.eve is marked md5"),
            ),
            (
                "md5",
                PLAIN,
                Err(
                    "challenge: \"md5\" offers no SHA-256, but users.alice is not marked md5 = true",
                ),
            ),
            ("sha1", PLAIN, Err("unknown variant")),
        ];
        for (set, users, expected) in cases {
            let text = format!("challenge = \"{set}\"\n{users}");
            match (UserDirectory::parse(&text, "r"), expected) {
                (Ok(dir), Ok(algorithms)) => assert_eq!(dir.challenge_set(), algorithms, "{text}"),
                (Err(e), Err(wanted)) => assert!(e.contains(wanted), "{text}: {e}"),
                (got, _) => panic!("{text}: {got:?}"),
            }
        }
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
