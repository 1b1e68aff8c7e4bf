//! The household's own PKI: a CA made at start in the household's directory, the matcher's
//! certificate issued by it for the address the matcher listens on, and the TLS configuration
//! of the household's own checks, which trust that CA as the dialer and the talkers do.

use crate::Error;
use rustls_pki_types::ServerName;
use splitdial_tls::pki::{HouseholdCa, Usage};
use splitdial_tls::{ServerTrust, TrustRoots};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The CA and the matcher's certificate files, and a client configuration trusting the CA.
#[derive(Debug, Clone)]
pub struct HouseholdPki {
    /// The CA certificate (what the dialer and the agents name as `matcher_ca`).
    pub ca_certificate: PathBuf,
    /// The matcher's certificate.
    pub matcher_certificate: PathBuf,
    /// The matcher's key.
    pub matcher_key: PathBuf,
    /// TLS toward the matcher, trusting the CA.
    pub client: Arc<rustls::ClientConfig>,
    /// The matcher's name in TLS (its IP address).
    pub server_name: ServerName<'static>,
}

impl HouseholdPki {
    /// Makes the CA in `dir/pki` and the matcher's certificate for `matcher_ip`.
    pub fn make(dir: &Path, matcher_ip: IpAddr) -> Result<Self, Error> {
        let pki_error =
            |e: splitdial_tls::pki::PkiError| Error::Spec(format!("household PKI: {e}"));
        let ca = HouseholdCa::init(&dir.join("pki"), "splitdial demo household CA")
            .map_err(pki_error)?;
        let (matcher_certificate, matcher_key) = ca
            .issue_files("matcher", Usage::Server, &[matcher_ip.to_string()])
            .map_err(pki_error)?;
        let trust = ServerTrust {
            roots: TrustRoots::CaFile(ca.certificate_path()),
            pins: Vec::new(),
        };
        let (client, _) = splitdial_tls::verifying_client_config(&trust)
            .map_err(|e| Error::Spec(format!("household PKI: {e}")))?;
        Ok(Self {
            ca_certificate: ca.certificate_path(),
            matcher_certificate,
            matcher_key,
            client: Arc::new(client),
            server_name: ServerName::IpAddress(matcher_ip.into()),
        })
    }
}
