//! The talker's own Ed25519 key, kept in its state directory (created 0700, the
//! key file 0600), generated on first start. The key is what the matcher
//! enrolls and what proves to a dialer that an mDNS advertisement really is
//! this talker (DESIGN.md: the domain-separated challenge).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use discovery::challenge::Challenge;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use splitdial_tls::secret_file::{self, SecretFileError};
use std::fs::OpenOptions;
use std::io::Read;
use std::path::{Path, PathBuf};

const KEY_FILE: &str = "talker.key";

/// Errors handling the state directory or the key.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The state directory or key file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file exists but is not a key, or is readable by others.
    #[error("{path}: {problem}")]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// A key file group or others may read is a bad key; a failed read or write stays an I/O error
/// on its path.
fn secret_file_error(e: SecretFileError) -> IdentityError {
    match e {
        SecretFileError::Io { path, source } => IdentityError::Io { path, source },
        other => IdentityError::BadKey {
            path: other.path().to_owned(),
            problem: other.problem(),
        },
    }
}

/// The talker's key pair.
pub struct Identity {
    key: SigningKey,
}

impl Identity {
    /// Loads the key from `state_dir`, creating the directory and a new key on
    /// first start.
    pub fn load_or_create(state_dir: &Path) -> Result<Self, IdentityError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| IdentityError::Io { path, source }
        };
        secret_file::create_private_dirs(state_dir).map_err(secret_file_error)?;
        let path = state_dir.join(KEY_FILE);
        match OpenOptions::new().read(true).open(&path) {
            Ok(mut file) => {
                secret_file::refuse_shared_open(&path, &file).map_err(secret_file_error)?;
                let mut seed = [0u8; 32];
                let mut extra = [0u8; 1];
                file.read_exact(&mut seed)
                    .map_err(|_| IdentityError::BadKey {
                        path: path.clone(),
                        problem: "not a 32-byte key".into(),
                    })?;
                if file.read(&mut extra).map_err(io(&path))? != 0 {
                    return Err(IdentityError::BadKey {
                        path,
                        problem: "not a 32-byte key".into(),
                    });
                }
                Ok(Self {
                    key: SigningKey::from_bytes(&seed),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let seed: [u8; 32] = rand::random();
                secret_file::write_new(&path, &seed).map_err(secret_file_error)?;
                tracing::info!(path = %path.display(), "generated a new talker key");
                Ok(Self {
                    key: SigningKey::from_bytes(&seed),
                })
            }
            Err(e) => Err(IdentityError::Io { path, source: e }),
        }
    }

    /// The public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key in standard base64 (as enrolled with the matcher).
    pub fn public_key_base64(&self) -> String {
        STANDARD.encode(self.public_key().to_bytes())
    }

    /// The talker id derived from the key: `t-` and 16 hex digits of its SHA-256.
    pub fn derived_id(&self) -> String {
        let digest = Sha256::digest(self.public_key().to_bytes());
        format!("t-{}", hex::encode(&digest[..8]))
    }

    /// Also the `+sip.instance` of every registration: a stable URN per device.
    pub fn instance_urn(&self) -> String {
        let d = Sha256::digest(self.public_key().to_bytes());
        let h = hex::encode(&d[..16]);
        format!(
            "urn:uuid:{}-{}-4{}-8{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }

    /// Signs the dialer's challenge (docs/discovery.md): label, talker id, both
    /// nonces and the channel binding of the TLS connection it came on, so a
    /// signature cannot be replayed elsewhere.
    pub fn sign_challenge(&self, challenge: &Challenge<'_>) -> Signature {
        self.key.sign(&challenge.message())
    }

    /// The status API's TLS configuration: a self-signed certificate for this
    /// key, made now (docs/talker-agent.md, "Local status API").
    pub fn tls_config(
        &self,
    ) -> Result<
        std::sync::Arc<tokio_rustls::rustls::ServerConfig>,
        splitdial_tls::talker::TalkerTlsError,
    > {
        splitdial_tls::talker::server_config(&self.key.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_is_created_once_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let a = Identity::load_or_create(&state).unwrap();
        let b = Identity::load_or_create(&state).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(a.derived_id(), b.derived_id());
        let mode = std::fs::metadata(state.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert!(a.instance_urn().starts_with("urn:uuid:") && a.instance_urn().len() == 45);
    }

    #[test]
    fn refuses_a_shared_or_truncated_key() {
        let dir = tempfile::tempdir().unwrap();
        Identity::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Identity::load_or_create(dir.path()).is_err());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, b"short").unwrap();
        assert!(Identity::load_or_create(dir.path()).is_err());
    }

    #[test]
    fn challenge_signatures_bind_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load_or_create(dir.path()).unwrap();
        let talker_id = id.derived_id();
        let c = Challenge {
            talker_id: &talker_id,
            dialer_nonce: "dn",
            talker_nonce: "tn",
            channel_binding: &[1; 32],
        };
        let sig = id.sign_challenge(&c);
        assert!(c.verify(&id.public_key(), &sig));
        assert!(
            !Challenge {
                channel_binding: &[2; 32],
                ..c.clone()
            }
            .verify(&id.public_key(), &sig)
        );
        assert!(
            !Challenge {
                dialer_nonce: "dn2",
                ..c.clone()
            }
            .verify(&id.public_key(), &sig)
        );
    }
}
