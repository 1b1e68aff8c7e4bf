//! The handshake-signature half of our server-certificate verifiers: the server signs the
//! handshake with the key of the certificate the verifier accepted, and this checks that
//! signature against the algorithms the verifier allows. [`crate::verifier::PinningVerifier`]
//! (the matcher) allows every algorithm of the provider in TLS 1.2 and 1.3;
//! [`crate::talker::TalkerKeyVerifier`] allows Ed25519 in TLS 1.3 only.

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::CertificateDer;

/// The signature algorithms a verifier accepts in a handshake, and whether TLS 1.2 is one of the
/// versions it accepts them in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HandshakeSignatures {
    algorithms: WebPkiSupportedAlgorithms,
    tls12: bool,
}

impl HandshakeSignatures {
    /// Every algorithm of `provider`, in TLS 1.2 and 1.3.
    pub(crate) fn of_provider(provider: &CryptoProvider) -> Self {
        Self {
            algorithms: provider.signature_verification_algorithms,
            tls12: true,
        }
    }

    /// Ed25519 alone (of `provider`), in TLS 1.3 alone: a talker signs with its identity key.
    pub(crate) fn ed25519_tls13(provider: &CryptoProvider) -> Self {
        let all = provider.signature_verification_algorithms;
        // A scheme outside the mapping is refused as one the server did not advertise.
        let mapping = all
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == SignatureScheme::ED25519)
            .map_or(&[][..], std::slice::from_ref);
        Self {
            algorithms: WebPkiSupportedAlgorithms {
                all: all.all,
                mapping,
            },
            tls12: false,
        }
    }

    /// `ServerCertVerifier::verify_tls12_signature`.
    pub(crate) fn verify_tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if !self.tls12 {
            // The configuration allows TLS 1.3 only; a TLS 1.2 signature is never acceptable.
            return Err(rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::Tls13RequiredForQuic,
            ));
        }
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    /// `ServerCertVerifier::verify_tls13_signature`: `cert` is the end entity the verifier
    /// accepted, so the handshake is signed by the key it checked.
    pub(crate) fn verify_tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    /// `ServerCertVerifier::supported_verify_schemes`: what the client offers the server.
    pub(crate) fn schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The three handshake-signature methods of `ServerCertVerifier` (`verify_tls12_signature`,
/// `verify_tls13_signature`, `supported_verify_schemes`), written once: inside a verifier's
/// `impl ServerCertVerifier`, they delegate to its `signatures: HandshakeSignatures` field.
macro_rules! handshake_signature_methods {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &::rustls_pki_types::CertificateDer<'_>,
            dss: &::rustls::DigitallySignedStruct,
        ) -> Result<::rustls::client::danger::HandshakeSignatureValid, ::rustls::Error> {
            self.signatures.verify_tls12(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &::rustls_pki_types::CertificateDer<'_>,
            dss: &::rustls::DigitallySignedStruct,
        ) -> Result<::rustls::client::danger::HandshakeSignatureValid, ::rustls::Error> {
            self.signatures.verify_tls13(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<::rustls::SignatureScheme> {
            self.signatures.schemes()
        }
    };
}
pub(crate) use handshake_signature_methods;

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> CryptoProvider {
        #[allow(deprecated)]
        rustls::crypto::ring::default_provider()
    }

    // The signatures themselves are checked by real handshakes (talker.rs, tests/verifier.rs).
    #[test]
    fn a_talker_offers_ed25519_alone_and_the_matcher_client_every_scheme() {
        let provider = ring();
        let talker = HandshakeSignatures::ed25519_tls13(&provider);
        assert_eq!(talker.schemes(), vec![SignatureScheme::ED25519]);
        assert!(!talker.tls12);
        let matcher = HandshakeSignatures::of_provider(&provider);
        assert_eq!(
            matcher.schemes(),
            provider
                .signature_verification_algorithms
                .supported_schemes()
        );
        assert!(matcher.schemes().len() > 1 && matcher.tls12);
    }
}
