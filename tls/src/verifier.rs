//! How a client decides it talks to the real matcher: a chain to a trusted root (the system's,
//! or a CA file the configuration names), or one pinned certificate; and, once enrollment has
//! stored the SPKI pins of the chain it verified, a chain that contains one of those keys.

use crate::handshake_signature::HandshakeSignatures;
use crate::pem::{PemFileError, load_certificates};
use crate::pin::SpkiPin;
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, OtherError};
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// What a client trusts for the server's certificate, before pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustRoots {
    /// The operating system's root certificates (the default).
    System,
    /// The CA certificates of this PEM file (a household CA, `matcher pki init`).
    CaFile(PathBuf),
    /// Exactly the certificate of this PEM file (its first one), whoever issued it.
    CertificateFile(PathBuf),
}

/// A client's whole trust in one server: the roots, and the SPKI pins of which the verified chain
/// must contain one (none: any chain to the roots).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTrust {
    /// Where verification starts.
    pub roots: TrustRoots,
    /// Keys of which one must appear in the verified chain (end entity, intermediates or root).
    pub pins: Vec<SpkiPin>,
}

impl ServerTrust {
    /// Trust in the system's roots, without pins.
    pub fn system() -> Self {
        Self {
            roots: TrustRoots::System,
            pins: Vec::new(),
        }
    }
}

/// The trust cannot be set up: a file is unusable, or the system has no root certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// A CA or certificate file cannot be used.
    #[error(transparent)]
    File(#[from] PemFileError),
    /// No root certificate could be read from the system.
    #[error("no system root certificate could be loaded ({0}); name a CA file instead")]
    NoSystemRoots(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

/// The SPKI pins of the last chain a verifier accepted, shared with the client's owner (an
/// enrollment stores them).
#[derive(Debug, Clone, Default)]
pub struct VerifiedChain(Arc<Mutex<Vec<SpkiPin>>>);

impl VerifiedChain {
    /// The pins of the last verified chain: the end entity's key first, its issuers' after; empty
    /// before the first handshake.
    pub fn pins(&self) -> Vec<SpkiPin> {
        self.0.lock().map(|pins| pins.clone()).unwrap_or_default()
    }

    fn record(&self, pins: Vec<SpkiPin>) {
        if let Ok(mut last) = self.0.lock() {
            *last = pins;
        }
    }
}

/// A certificate refusal in words, carried inside rustls' error so it reaches the user's line.
#[derive(Debug)]
struct Refusal(String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

fn refuse(text: impl Into<String>) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Refusal(
        text.into(),
    )))))
}

/// Why a connection's certificate was refused, in words, when `error` (a reqwest or I/O error
/// and its causes) comes from a TLS handshake this stack refused; `None` for any other failure.
pub fn certificate_refusal(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        // io::Error hides the error it wraps from `source()`: look inside it.
        let inner = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        for candidate in [Some(error), inner].into_iter().flatten() {
            if let Some(tls) = candidate.downcast_ref::<rustls::Error>() {
                return Some(match tls {
                    rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
                        format!("certificate refused: {}", other.0)
                    }
                    other => other.to_string(),
                });
            }
        }
        cause = error.source();
    }
    None
}

/// The rustls server-certificate verifier of [`ServerTrust`]: webpki path building to the roots
/// (or an exact match with the pinned certificate), the name check, then the SPKI pins.
#[derive(Debug)]
pub struct PinningVerifier {
    anchors: Vec<TrustAnchor<'static>>,
    pinned_certificate: Option<CertificateDer<'static>>,
    pins: Vec<SpkiPin>,
    verified: VerifiedChain,
    provider: Arc<CryptoProvider>,
    signatures: HandshakeSignatures,
}

impl PinningVerifier {
    /// Reads the roots `trust` names (files or the system's) and builds the verifier.
    pub fn new(trust: &ServerTrust, provider: Arc<CryptoProvider>) -> Result<Self, TrustError> {
        let (anchors, pinned_certificate) = match &trust.roots {
            TrustRoots::System => (system_anchors()?, None),
            TrustRoots::CaFile(path) => {
                let anchors = load_certificates(path)?
                    .iter()
                    .map(|c| {
                        webpki::anchor_from_trusted_cert(c)
                            .map(|a| a.to_owned())
                            .map_err(|e| PemFileError {
                                path: path.clone(),
                                problem: format!("not a usable CA certificate: {e}"),
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (anchors, None)
            }
            TrustRoots::CertificateFile(path) => {
                let mut certificates = load_certificates(path)?;
                (Vec::new(), Some(certificates.swap_remove(0)))
            }
        };
        Ok(Self {
            anchors,
            pinned_certificate,
            pins: trust.pins.clone(),
            verified: VerifiedChain::default(),
            signatures: HandshakeSignatures::of_provider(&provider),
            provider,
        })
    }

    /// The handle through which the pins of each verified chain can be read.
    pub fn verified_chain(&self) -> VerifiedChain {
        self.verified.clone()
    }

    /// The pins of the chain, verified against the roots or the pinned certificate.
    fn verified_pins(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<Vec<SpkiPin>, rustls::Error> {
        let parsed = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|e| refuse(format!("unreadable certificate: {e}")))?;
        let mut pins = vec![SpkiPin::of_spki(parsed.subject_public_key_info().as_ref())];
        if let Some(pinned) = &self.pinned_certificate {
            if pinned.as_ref() != end_entity.as_ref() {
                return Err(refuse("not the certificate pinned in the configuration"));
            }
            check_validity_period(end_entity, now)?;
        } else {
            let path = parsed
                .verify_for_usage(
                    self.provider.signature_verification_algorithms.all,
                    &self.anchors,
                    intermediates,
                    now,
                    webpki::KeyUsage::server_auth(),
                    None,
                    None,
                )
                .map_err(|e| refuse(describe(&e)))?;
            pins.extend(
                path.intermediate_certificates()
                    .map(|c| SpkiPin::of_spki(c.subject_public_key_info().as_ref())),
            );
            pins.push(SpkiPin::of_spki(
                webpki::spki_for_anchor(path.anchor()).as_ref(),
            ));
        }
        parsed
            .verify_is_valid_for_subject_name(server_name)
            .map_err(|e| refuse(describe(&e)))?;
        Ok(pins)
    }
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = self.verified_pins(end_entity, intermediates, server_name, now)?;
        if !self.pins.is_empty() && !chain.iter().any(|pin| self.pins.contains(pin)) {
            return Err(refuse(
                "none of the keys of its chain is one pinned at enrollment (re-enroll if the \
                 matcher changed both its key and its CA)",
            ));
        }
        self.verified.record(chain);
        Ok(ServerCertVerified::assertion())
    }

    crate::handshake_signature::handshake_signature_methods!();
}

/// The system's roots; the unreadable ones are skipped, none at all is an error.
fn system_anchors() -> Result<Vec<TrustAnchor<'static>>, TrustError> {
    let found = rustls_native_certs::load_native_certs();
    let anchors: Vec<_> = found
        .certs
        .iter()
        .filter_map(|c| {
            webpki::anchor_from_trusted_cert(c)
                .ok()
                .map(|a| a.to_owned())
        })
        .collect();
    if anchors.is_empty() {
        let why = found
            .errors
            .first()
            .map_or_else(|| "none found".to_owned(), ToString::to_string);
        return Err(TrustError::NoSystemRoots(why));
    }
    Ok(anchors)
}

/// A pinned certificate is trusted for its bytes, but not beyond its validity period.
fn check_validity_period(
    certificate: &CertificateDer<'_>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref())
        .map_err(|e| refuse(format!("unreadable certificate: {e}")))?;
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let validity = parsed.validity();
    if now < validity.not_before.timestamp() {
        return Err(refuse("not valid yet"));
    }
    if now > validity.not_after.timestamp() {
        return Err(refuse("expired"));
    }
    Ok(())
}

/// What a webpki refusal means for the user, in words.
fn describe(error: &webpki::Error) -> String {
    match error {
        webpki::Error::CertExpired { .. } => "expired".to_owned(),
        webpki::Error::CertNotValidYet { .. } => "not valid yet".to_owned(),
        webpki::Error::UnknownIssuer => "issued by a CA this client does not trust".to_owned(),
        webpki::Error::CertNotValidForName(_) => {
            "not valid for the matcher URL's host name".to_owned()
        }
        webpki::Error::InvalidSignatureForPublicKey => {
            "its signature does not verify with the trusted CA's key (another CA of the same name?)"
                .to_owned()
        }
        webpki::Error::CaUsedAsEndEntity => "a CA certificate used as the server's".to_owned(),
        other => format!("refused: {other}"),
    }
}
