//! A server's certificate, read from a certificate file and a key file and swapped in place when
//! they are read again (SIGHUP): handshakes after the swap get the new pair, those before it
//! finish with the old one, and a bad new pair leaves the old one serving.

use crate::pem::{PemFileError, load_certificates, load_private_key};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The certificate pair a server presents, reloadable from its files.
#[derive(Debug)]
pub struct ReloadableCertificate {
    certificate_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

/// A certificate pair that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerCertificateError {
    /// A file cannot be read or holds no usable PEM.
    #[error(transparent)]
    File(#[from] PemFileError),
    /// The key does not go with the certificate, or rustls cannot use it.
    #[error("{key}: not the key of {certificate}: {problem}")]
    Mismatch {
        /// The certificate file.
        certificate: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        problem: String,
    },
}

impl ReloadableCertificate {
    /// Reads the pair; fails with one line naming the file at fault.
    pub fn load(certificate_file: &Path, key_file: &Path) -> Result<Self, ServerCertificateError> {
        let pair = read_pair(certificate_file, key_file)?;
        Ok(Self {
            certificate_file: certificate_file.to_owned(),
            key_file: key_file.to_owned(),
            current: RwLock::new(pair),
        })
    }

    /// Reads the files again and serves the new pair; on an error the old pair keeps serving.
    pub fn reload(&self) -> Result<(), ServerCertificateError> {
        let pair = read_pair(&self.certificate_file, &self.key_file)?;
        if let Ok(mut current) = self.current.write() {
            *current = pair;
        }
        Ok(())
    }

    /// The certificate file.
    pub fn certificate_file(&self) -> &Path {
        &self.certificate_file
    }

    /// A rustls server configuration presenting this certificate, HTTP/1.1 by ALPN.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
        crate::install_provider();
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .ok_or_else(|| rustls::Error::General("no crypto provider installed".into()))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for ReloadableCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|pair| Arc::clone(&pair))
    }
}

fn read_pair(
    certificate_file: &Path,
    key_file: &Path,
) -> Result<Arc<CertifiedKey>, ServerCertificateError> {
    crate::install_provider();
    let chain = load_certificates(certificate_file)?;
    let key = load_private_key(key_file)?;
    let mismatch = |problem: String| ServerCertificateError::Mismatch {
        certificate: certificate_file.to_owned(),
        key: key_file.to_owned(),
        problem,
    };
    let provider = rustls::crypto::CryptoProvider::get_default()
        .ok_or_else(|| mismatch("no crypto provider installed".into()))?;
    let pair = CertifiedKey::from_der(chain, key, provider).map_err(|e| mismatch(e.to_string()))?;
    Ok(Arc::new(pair))
}
