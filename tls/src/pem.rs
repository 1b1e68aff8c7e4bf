//! Certificate and key files in PEM, read with errors that name the file and say what is wrong
//! on one line.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};

/// A certificate or key file that cannot be used: the file and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct PemFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it, one line.
    pub problem: String,
}

impl PemFileError {
    fn new(path: &Path, problem: impl std::fmt::Display) -> Self {
        Self {
            path: path.to_owned(),
            problem: problem.to_string().replace('\n', " "),
        }
    }
}

/// Reads every certificate of a PEM file, in order (a chain: the end entity first); a file
/// without one is an error.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemFileError> {
    let text = std::fs::read(path).map_err(|e| PemFileError::new(path, e))?;
    let certificates = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PemFileError::new(path, format!("not PEM certificates: {e}")))?;
    if certificates.is_empty() {
        return Err(PemFileError::new(path, "holds no CERTIFICATE block"));
    }
    Ok(certificates)
}

/// Reads the one private key of a PEM file (PKCS#8, PKCS#1 or SEC1). The key file must not be
/// readable by group or others.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemFileError> {
    crate::secret_file::refuse_shared(path).map_err(|e| PemFileError::new(path, e.problem()))?;
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => {
            PemFileError::new(path, "holds no PRIVATE KEY block")
        }
        other => PemFileError::new(path, format!("not a PEM private key: {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn names_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = load_certificates(&empty).unwrap_err().to_string();
        assert!(
            e.starts_with(&empty.display().to_string()) && e.contains("CERTIFICATE"),
            "{e}"
        );
        let e = load_private_key(&empty).unwrap_err().to_string();
        assert!(e.contains("PRIVATE KEY"), "{e}");
        let missing = dir.path().join("missing.pem");
        let e = load_certificates(&missing).unwrap_err().to_string();
        assert!(e.contains("missing.pem") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn refuses_a_key_others_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let pair = rcgen::KeyPair::generate().unwrap();
        std::fs::write(&key, pair.serialize_pem()).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_private_key(&key).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load_private_key(&key).is_ok());
    }
}
