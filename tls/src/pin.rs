//! SPKI pins: the SHA-256 of a certificate's SubjectPublicKeyInfo, in base64 (as HPKP wrote
//! them). A pin names a key, not a certificate, so a certificate renewed with the same key, or
//! issued by the same CA, still matches.

use base64::Engine;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The pin of one public key: base64 of SHA-256 over its DER SubjectPublicKeyInfo.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SpkiPin(String);

impl SpkiPin {
    /// The pin of a DER SubjectPublicKeyInfo (with its outer SEQUENCE).
    pub fn of_spki(spki_der: &[u8]) -> Self {
        Self(base64::engine::general_purpose::STANDARD.encode(Sha256::digest(spki_der)))
    }

    /// The pin of the key a DER certificate certifies.
    pub fn of_certificate(certificate: &CertificateDer<'_>) -> Result<Self, webpki::Error> {
        let parsed = webpki::EndEntityCert::try_from(certificate)?;
        Ok(Self::of_spki(parsed.subject_public_key_info().as_ref()))
    }

    /// Reads a pin as written in a state or configuration file: base64 of 32 bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("pin {text:?} is not base64: {e}"))?;
        if bytes.len() != 32 {
            return Err(format!("pin {text:?} is not a SHA-256 (32 bytes)"));
        }
        Ok(Self(text.trim().to_owned()))
    }

    /// The pin as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SpkiPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_follows_the_key_not_the_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let first = rcgen::CertificateParams::new(vec!["a.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let renewed = rcgen::CertificateParams::new(vec!["b.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let other = rcgen::CertificateParams::new(vec!["a.example".to_owned()])
            .unwrap()
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let pin = SpkiPin::of_certificate(first.der()).unwrap();
        assert_eq!(pin, SpkiPin::of_certificate(renewed.der()).unwrap());
        assert_ne!(pin, SpkiPin::of_certificate(other.der()).unwrap());
        assert_eq!(
            pin,
            SpkiPin::of_spki(&rcgen::PublicKeyData::subject_public_key_info(&key))
        );
        assert_eq!(SpkiPin::parse(pin.as_str()).unwrap(), pin);
        assert!(SpkiPin::parse("c2hvcnQ=").is_err());
    }
}
