//! The household PKI: a private CA (a key and a self-signed certificate in a directory of its
//! own) that issues server and client certificates. Every file is written 0600 in a 0700
//! directory ([`crate::secret_file`]); an existing CA is never overwritten.

use crate::secret_file::{self, SecretFileError};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// The CA's certificate file in its directory.
pub const CA_CERTIFICATE: &str = "ca.crt";
/// The CA's key file in its directory.
pub const CA_KEY: &str = "ca.key";
/// How long the CA is valid (ten years: a household does not rotate it often).
const CA_VALIDITY: Duration = Duration::days(3650);
/// How long an issued certificate is valid (about 13 months, the most browsers accept).
pub const ISSUED_VALIDITY: Duration = Duration::days(397);

/// A PKI operation that failed: the file or directory, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file or directory cannot be used.
    #[error("{path}: {problem}")]
    File {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong, one line.
        problem: String,
    },
    /// rcgen could not make the key or the certificate.
    #[error("making {what}: {problem}")]
    Generate {
        /// What was being made.
        what: String,
        /// rcgen's error.
        problem: String,
    },
}

fn file_error(path: &Path, problem: impl std::fmt::Display) -> PkiError {
    PkiError::File {
        path: path.to_owned(),
        problem: problem.to_string().replace('\n', " "),
    }
}

impl From<SecretFileError> for PkiError {
    fn from(e: SecretFileError) -> Self {
        file_error(e.path(), e.problem())
    }
}

fn generate_error(what: &str) -> impl Fn(rcgen::Error) -> PkiError + '_ {
    move |e| PkiError::Generate {
        what: what.to_owned(),
        problem: e.to_string(),
    }
}

/// What an issued certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// A TLS server (the matcher, a talker's status API).
    Server,
    /// A TLS client authenticating itself.
    Client,
}

/// A certificate and its key, as PEM text.
#[derive(Clone)]
pub struct IssuedPair {
    /// The certificate (PEM).
    pub certificate_pem: String,
    /// The private key (PKCS#8 PEM). A secret.
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedPair")
            .field("certificate_pem", &self.certificate_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// The household CA, loaded from its directory.
pub struct HouseholdCa {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for HouseholdCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HouseholdCa")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl HouseholdCa {
    /// Makes a new CA named `name` in `dir` (created 0700 if missing; an existing one must not be
    /// readable by group or others). Refuses to overwrite a CA already there.
    pub fn init(dir: &Path, name: &str) -> Result<Self, PkiError> {
        secret_file::private_dir(dir)?;
        for file in [CA_CERTIFICATE, CA_KEY] {
            let path = dir.join(file);
            if path.exists() {
                return Err(file_error(
                    &path,
                    "a CA is already there; it is not overwritten (remove it to start again)",
                ));
            }
        }
        let key = KeyPair::generate().map_err(generate_error("the CA key"))?;
        let mut params = CertificateParams::default();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, name);
        subject.push(DnType::OrganizationName, "splitdial household");
        params.distinguished_name = subject;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + CA_VALIDITY;
        let certificate = params
            .self_signed(&key)
            .map_err(generate_error("the CA certificate"))?;
        secret_file::write_new(&dir.join(CA_KEY), key.serialize_pem().as_bytes())?;
        secret_file::write_new(&dir.join(CA_CERTIFICATE), certificate.pem().as_bytes())?;
        Self::open(dir)
    }

    /// Loads the CA in `dir`; its key file must not be readable by group or others.
    pub fn open(dir: &Path) -> Result<Self, PkiError> {
        let key_path = dir.join(CA_KEY);
        let certificate_path = dir.join(CA_CERTIFICATE);
        secret_file::refuse_shared(&key_path)?;
        let key_pem = std::fs::read_to_string(&key_path).map_err(|e| file_error(&key_path, e))?;
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| file_error(&key_path, format!("not a PEM private key: {e}")))?;
        let certificate_pem = std::fs::read_to_string(&certificate_path)
            .map_err(|e| file_error(&certificate_path, e))?;
        let issuer = Issuer::from_ca_cert_pem(&certificate_pem, key).map_err(|e| {
            file_error(
                &certificate_path,
                format!("not a usable CA certificate: {e}"),
            )
        })?;
        Ok(Self {
            dir: dir.to_owned(),
            issuer,
        })
    }

    /// The CA's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate's file (what clients name as their CA).
    pub fn certificate_path(&self) -> PathBuf {
        self.dir.join(CA_CERTIFICATE)
    }

    /// Issues a certificate for `name` with these subject alternative names (host names or IP
    /// addresses; `name` itself when empty), valid from now for [`ISSUED_VALIDITY`].
    pub fn issue(&self, name: &str, usage: Usage, sans: &[String]) -> Result<IssuedPair, PkiError> {
        let now = OffsetDateTime::now_utc();
        self.issue_valid(
            name,
            usage,
            sans,
            now - Duration::hours(1),
            now + ISSUED_VALIDITY,
        )
    }

    /// Issues a certificate valid between two times (tests make expired ones with it).
    pub fn issue_valid(
        &self,
        name: &str,
        usage: Usage,
        sans: &[String],
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<IssuedPair, PkiError> {
        let key = KeyPair::generate().map_err(generate_error("the key"))?;
        self.issue_for_key(name, usage, sans, &key, not_before, not_after)
    }

    /// Issues a certificate for an existing key (a renewal that keeps the key).
    pub fn issue_for_key(
        &self,
        name: &str,
        usage: Usage,
        sans: &[String],
        key: &KeyPair,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<IssuedPair, PkiError> {
        let sans = if sans.is_empty() {
            vec![name.to_owned()]
        } else {
            sans.to_vec()
        };
        let what = format!("the certificate of {name}");
        let mut params = CertificateParams::new(sans).map_err(generate_error(&what))?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        params.use_authority_key_identifier_extension = true;
        params.not_before = not_before;
        params.not_after = not_after;
        let certificate = params
            .signed_by(key, &self.issuer)
            .map_err(generate_error(&what))?;
        Ok(IssuedPair {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Issues a certificate and writes it as `NAME.crt` and `NAME.key` in the CA's directory
    /// (0600, replacing an older pair of that name: a renewal). Returns the two paths.
    pub fn issue_files(
        &self,
        name: &str,
        usage: Usage,
        sans: &[String],
    ) -> Result<(PathBuf, PathBuf), PkiError> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || name.starts_with('.')
        {
            return Err(file_error(
                &self.dir,
                format!("{name:?} is not a usable file name (letters, digits, - _ .)"),
            ));
        }
        let pair = self.issue(name, usage, sans)?;
        let key_path = self.dir.join(format!("{name}.key"));
        let certificate_path = self.dir.join(format!("{name}.crt"));
        secret_file::replace(&key_path, pair.key_pem.as_bytes())?;
        secret_file::replace(&certificate_path, pair.certificate_pem.as_bytes())?;
        Ok((certificate_path, key_path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn init_writes_private_files_and_never_overwrites() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("pki");
        let ca = HouseholdCa::init(&dir, "test household").unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(CA_KEY)), 0o600);
        assert_eq!(mode(&dir.join(CA_CERTIFICATE)), 0o600);
        let before = std::fs::read(dir.join(CA_KEY)).unwrap();
        let e = HouseholdCa::init(&dir, "again").unwrap_err().to_string();
        assert!(e.contains("already") && e.contains("ca."), "{e}");
        assert_eq!(std::fs::read(dir.join(CA_KEY)).unwrap(), before);
        let (certificate, key) = ca
            .issue_files(
                "matcher",
                Usage::Server,
                &["127.0.0.1".into(), "m.home".into()],
            )
            .unwrap();
        assert_eq!(mode(&certificate), 0o600);
        assert_eq!(mode(&key), 0o600);
        // A renewal replaces the pair.
        ca.issue_files("matcher", Usage::Server, &[]).unwrap();
        assert!(ca.issue_files("../x", Usage::Server, &[]).is_err());
    }

    #[test]
    fn refuses_a_shared_directory_and_a_shared_key() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("open");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = HouseholdCa::init(&dir, "x").unwrap_err().to_string();
        assert!(e.contains("chmod 700"), "{e}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        HouseholdCa::init(&dir, "x").unwrap();
        std::fs::set_permissions(dir.join(CA_KEY), std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = HouseholdCa::open(&dir).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }
}
