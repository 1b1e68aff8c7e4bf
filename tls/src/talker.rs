//! TLS for a talker's local API (docs/talker-agent.md, "Local status API"): the talker serves a
//! self-signed certificate made at start from its own Ed25519 identity key, and a dialer accepts
//! the connection only when that certificate's key is the one the matcher's registry holds for the
//! talker — no CA, no host name (a talker is found by address). The handshake's signature must
//! verify with that key, so a host without the talker's private key cannot finish it, whatever
//! certificate it shows. TLS 1.3 only.
//!
//! Both ends then read the connection's channel binding ([`channel_binding`], RFC 9266's
//! `tls-exporter`), which the signed challenge covers, so a challenge answered over one connection
//! proves nothing on another.

use crate::handshake_signature::HandshakeSignatures;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ED25519};
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, ConnectionCommon, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use std::sync::Arc;

/// The exporter label of RFC 9266's `tls-exporter` channel binding.
pub const CHANNEL_BINDING_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

/// A connection's channel binding: 32 bytes exported from its TLS 1.3 key schedule, the same at
/// both ends of one connection and unpredictable for any other.
pub type ChannelBinding = [u8; 32];

/// An Ed25519 public key, as the registry holds it (32 raw bytes).
pub type TalkerKey = [u8; 32];

/// PKCS#8 v1 of an Ed25519 private key, up to the 32-byte seed (RFC 8410 §7).
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// SubjectPublicKeyInfo of an Ed25519 key, up to the 32-byte key (RFC 8410 §4).
const SPKI_ED25519_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Why a talker's TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TalkerTlsError {
    /// rcgen could not make the certificate from the key.
    #[error("cannot make the talker's certificate from its key: {0}")]
    Certificate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("talker TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The one provider of the workspace (see `provider.rs`), named explicitly so that a talker's
/// configuration never depends on which process-wide default was installed.
fn ring() -> Arc<CryptoProvider> {
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server side of a talker's local API: TLS 1.3 with a self-signed certificate whose subject
/// public key is the talker's identity key (`seed`, its 32-byte Ed25519 private key), and the
/// handshake signed with that key.
pub fn server_config(seed: &[u8; 32]) -> Result<Arc<ServerConfig>, TalkerTlsError> {
    let (certificate, pkcs8) = certificate(seed)?;
    let config = ServerConfig::builder_with_provider(ring())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![certificate], PrivateKeyDer::Pkcs8(pkcs8))?;
    Ok(Arc::new(config))
}

/// The talker's self-signed certificate for the key whose seed is `seed`, with that key in PKCS#8.
fn certificate(
    seed: &[u8; 32],
) -> Result<(CertificateDer<'static>, PrivatePkcs8KeyDer<'static>), TalkerTlsError> {
    let pkcs8 = pkcs8(seed);
    let key_pair = KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &PKCS_ED25519)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "splitdial talker");
    params.distinguished_name = name;
    let certificate = params.self_signed(&key_pair)?;
    Ok((certificate.der().clone(), pkcs8))
}

fn pkcs8(seed: &[u8; 32]) -> PrivatePkcs8KeyDer<'static> {
    let mut pkcs8 = PKCS8_ED25519_PREFIX.to_vec();
    pkcs8.extend_from_slice(seed);
    PrivatePkcs8KeyDer::from(pkcs8)
}

/// The client side toward one talker: TLS 1.3, accepting only a peer that proves `talker_key`
/// (see [`TalkerKeyVerifier`]).
pub fn client_config(talker_key: &TalkerKey) -> Result<Arc<ClientConfig>, TalkerTlsError> {
    let config = ClientConfig::builder_with_provider(ring())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(TalkerKeyVerifier::new(*talker_key)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The name a client gives for a talker: its IP address (no SNI is sent for an address, and the
/// verifier checks no name).
pub fn server_name(address: std::net::IpAddr) -> ServerName<'static> {
    ServerName::IpAddress(address.into())
}

/// The channel binding of an established connection (either side): `export_keying_material`
/// with [`CHANNEL_BINDING_LABEL`], no context, 32 bytes (RFC 9266).
pub fn channel_binding<D>(
    connection: &ConnectionCommon<D>,
) -> Result<ChannelBinding, rustls::Error> {
    connection.export_keying_material([0u8; 32], CHANNEL_BINDING_LABEL, None)
}

/// Why a TLS connection to a talker failed, in words for one line: a certificate with another key,
/// a handshake that does not prove the key, or the I/O error as it is.
pub fn handshake_failure(error: &std::io::Error) -> String {
    match error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        )) => "its certificate carries another key than the registry's for this talker".to_owned(),
        Some(rustls::Error::InvalidCertificate(CertificateError::BadSignature)) => {
            "its TLS handshake is not signed by the registry's key for this talker".to_owned()
        }
        Some(other) => format!("TLS: {other}"),
        None => error.to_string(),
    }
}

/// The certificate check of a talker's client: the end-entity certificate's public key must be
/// exactly the expected Ed25519 key, and the TLS 1.3 handshake signature must verify with it.
/// Names, issuers and validity dates are not checked: the pinned key is the whole trust, and the
/// certificate only carries it.
#[derive(Debug)]
pub struct TalkerKeyVerifier {
    spki: Vec<u8>,
    signatures: HandshakeSignatures,
}

impl TalkerKeyVerifier {
    /// A verifier that accepts only `talker_key`.
    pub fn new(talker_key: TalkerKey) -> Self {
        let mut spki = SPKI_ED25519_PREFIX.to_vec();
        spki.extend_from_slice(&talker_key);
        Self {
            spki,
            signatures: HandshakeSignatures::ed25519_tls13(&ring()),
        }
    }
}

impl ServerCertVerifier for TalkerKeyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        if parsed.subject_public_key_info().as_ref() == self.spki.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    crate::handshake_signature::handshake_signature_methods!();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rcgen::{Issuer, PublicKeyData, SignatureAlgorithm};
    use rustls::server::{ClientHello, ResolvesServerCert};
    use rustls::sign::CertifiedKey;
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    fn public_key(seed: &[u8; 32]) -> TalkerKey {
        let pair = KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8(seed), &PKCS_ED25519).unwrap();
        pair.public_key_raw().try_into().unwrap()
    }

    /// Runs one handshake on loopback: the server's result and the client's, each with the
    /// channel binding it read.
    async fn handshake(
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
    ) -> (
        Result<ChannelBinding, std::io::Error>,
        Result<ChannelBinding, std::io::Error>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let serving = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let tls = TlsAcceptor::from(server).accept(stream).await?;
            channel_binding(tls.get_ref().1).map_err(std::io::Error::other)
        });
        let stream = TcpStream::connect(address).await.unwrap();
        let client = async {
            let tls = TlsConnector::from(client)
                .connect(server_name(address.ip()), stream)
                .await?;
            channel_binding(tls.get_ref().1).map_err(std::io::Error::other)
        }
        .await;
        (serving.await.unwrap(), client)
    }

    #[tokio::test]
    async fn the_talkers_own_key_is_accepted_and_both_ends_share_the_binding() {
        let seed = [7u8; 32];
        let server = server_config(&seed).unwrap();
        let client = client_config(&public_key(&seed)).unwrap();
        let (served, dialed) = handshake(server.clone(), client.clone()).await;
        let (served, dialed) = (served.unwrap(), dialed.unwrap());
        assert_eq!(served, dialed);
        // Another connection to the same talker has a binding of its own.
        let (again, _) = handshake(server, client).await;
        assert_ne!(again.unwrap(), served);
    }

    #[tokio::test]
    async fn another_key_is_refused_at_the_handshake() {
        let server = server_config(&[8u8; 32]).unwrap();
        let client = client_config(&public_key(&[7u8; 32])).unwrap();
        let (_, dialed) = handshake(server, client).await;
        let error = handshake_failure(&dialed.unwrap_err());
        assert_eq!(
            error,
            "its certificate carries another key than the registry's for this talker"
        );
    }

    /// The real talker's public key in a certificate, signed (and the handshake signed) by a key
    /// the relay holds.
    #[derive(Debug)]
    struct BorrowedKey(Arc<CertifiedKey>);

    impl ResolvesServerCert for BorrowedKey {
        fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            Some(self.0.clone())
        }
    }

    struct RawEd25519(TalkerKey);

    impl PublicKeyData for RawEd25519 {
        fn der_bytes(&self) -> &[u8] {
            &self.0
        }

        fn algorithm(&self) -> &'static SignatureAlgorithm {
            &PKCS_ED25519
        }
    }

    #[tokio::test]
    async fn a_certificate_with_the_talkers_key_but_not_its_private_key_is_refused() {
        let talker = public_key(&[7u8; 32]);
        let relay_pkcs8 = pkcs8(&[9u8; 32]);
        let relay = KeyPair::from_pkcs8_der_and_sign_algo(&relay_pkcs8, &PKCS_ED25519).unwrap();
        let params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let issuer = Issuer::from_params(&params, &relay);
        let forged = params.signed_by(&RawEd25519(talker), &issuer).unwrap();
        let provider = ring();
        let signer = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(relay_pkcs8))
            .unwrap();
        let certified = Arc::new(CertifiedKey::new(vec![forged.der().clone()], signer));
        let server = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(BorrowedKey(certified)));
        let client = client_config(&talker).unwrap();
        let (_, dialed) = handshake(Arc::new(server), client).await;
        let error = handshake_failure(&dialed.unwrap_err());
        assert_eq!(
            error,
            "its TLS handshake is not signed by the registry's key for this talker"
        );
    }

    #[test]
    fn the_certificate_carries_exactly_the_identity_key() {
        let seed = [5u8; 32];
        let (certificate, _) = certificate(&seed).unwrap();
        let parsed = ParsedCertificate::try_from(&certificate).unwrap();
        let mut spki = SPKI_ED25519_PREFIX.to_vec();
        spki.extend_from_slice(&public_key(&seed));
        assert_eq!(parsed.subject_public_key_info().as_ref(), spki.as_slice());
        assert_eq!(TalkerKeyVerifier::new(public_key(&seed)).spki, spki);
    }
}
