//! A host on the simulated LAN that relays the dialer's challenge to the real
//! talker is not verified (docs/discovery.md, "The challenge"): the `splitdial`
//! CLI on the dialer's host is given the relay's address for alice's TV, and
//! the relay, on another LAN host, forwards every request it gets to the real
//! TV over a connection of its own. Whether it shows a certificate of its own
//! or one that carries the TV's public key without its private key, the
//! dialer stops at the TLS handshake and sends it nothing.
//!
//! Needs root (network namespaces): `scripts/test`.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use household::dialer::{Dialer, row_of};
use household::http::Response;
use household::{Household, HouseholdSpec, Placement};
use rcgen::{CertificateParams, Issuer, KeyPair, PKCS_ED25519, PublicKeyData, SignatureAlgorithm};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use testbed::require_root;

/// The relay's own Ed25519 seed.
const RELAY_SEED: [u8; 32] = [0x42; 32];

/// PKCS#8 v1 of an Ed25519 seed (RFC 8410).
fn pkcs8(seed: &[u8; 32]) -> PrivatePkcs8KeyDer<'static> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(seed);
    PrivatePkcs8KeyDer::from(der)
}

/// How the relay faces the dialer.
#[derive(Clone, Copy, Debug)]
enum Face {
    /// TLS with a certificate of its own key.
    OwnKey,
    /// A certificate that carries the talker's public key (signed by the
    /// relay), the handshake signed with the relay's key: all it can do
    /// without the talker's private key.
    CopiedKey,
}

/// A raw Ed25519 public key, for rcgen to put in a certificate.
struct RawEd25519([u8; 32]);

impl PublicKeyData for RawEd25519 {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ED25519
    }
}

/// Always the one certified key, whatever it matches.
#[derive(Debug)]
struct Always(Arc<CertifiedKey>);

impl ResolvesServerCert for Always {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

fn relay_tls(face: Face, talker_key: [u8; 32]) -> Arc<rustls::ServerConfig> {
    match face {
        Face::OwnKey => splitdial_tls::talker::server_config(&RELAY_SEED).unwrap(),
        Face::CopiedKey => {
            let relay =
                KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8(&RELAY_SEED), &PKCS_ED25519).unwrap();
            let params = CertificateParams::new(Vec::<String>::new()).unwrap();
            let copied = params
                .signed_by(
                    &RawEd25519(talker_key),
                    &Issuer::from_params(&params, &relay),
                )
                .unwrap();
            #[allow(deprecated)]
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let signer = provider
                .key_provider
                .load_private_key(PrivateKeyDer::Pkcs8(pkcs8(&RELAY_SEED)))
                .unwrap();
            let certified = CertifiedKey::new(vec![copied.der().clone()], signer);
            let config = rustls::ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(Always(Arc::new(certified))));
            Arc::new(config)
        }
    }
}

/// Reads one HTTP/1.1 request (head and Content-Length body) from `stream`.
fn read_request(stream: &mut impl Read) -> Option<(String, String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut words = head.split_whitespace();
    let (method, path) = (words.next()?.to_owned(), words.next()?.to_owned());
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .and_then(|v| v.trim().parse::<usize>().ok())
        })
        .unwrap_or(0);
    let mut body = data[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((method, path, body))
}

/// Serves the relay on `listener` until `stop`: each request that arrives
/// (counted in `relayed`) goes to the real talker through `forward`, and its
/// answer comes back as is.
fn serve(
    listener: &TcpListener,
    tls: &Arc<rustls::ServerConfig>,
    forward: &(dyn Fn(String, String, Vec<u8>) -> Response + Sync),
    stop: &AtomicBool,
    relayed: &AtomicUsize,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut stream =
            rustls::StreamOwned::new(rustls::ServerConnection::new(tls.clone()).unwrap(), stream);
        // A failed handshake ends here: nothing was asked.
        let Some((method, path, body)) = read_request(&mut stream) else {
            continue;
        };
        relayed.fetch_add(1, Ordering::SeqCst);
        let answer = forward(method, path, body);
        let _ = write!(
            stream,
            "HTTP/1.1 {} Relayed\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{}",
            answer.status,
            answer.body.len(),
            answer.body
        );
        let _ = stream.flush();
    }
}

/// `splitdial talkers --json` with only the manual entry `tv=ADDRESS`: the TV's row.
fn tv_row(alice: &Dialer<'_>, address: SocketAddr) -> serde_json::Value {
    let rows = alice.json(&[
        "talkers",
        "--json",
        "--no-discovery",
        "--talker",
        &format!("tv={address}"),
    ]);
    row_of(&rows, "tv").clone()
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_lan_host_relaying_the_challenge_to_the_real_talker_is_not_verified() {
    require_root();
    let home = Household::start(HouseholdSpec::demo(), Placement::Lan).unwrap();
    let lan = home.lan().unwrap();
    let tv = home.talker("tv").unwrap();
    let (tv_addr, tv_key) = (tv.status_addr.unwrap(), tv.status_key.unwrap());
    let alice = Dialer::as_user(&home, env!("CARGO_BIN_EXE_splitdial"), "alice");

    // Dialed directly, the TV verifies: the relay's target is the real one.
    let direct = tv_row(&alice, tv_addr);
    assert_eq!(direct["status"], "verified", "{direct}");

    // The relay runs on alice's PC's host, a device of the same LAN.
    let relay_host = lan.host("pc");
    let forward = |method: String, path: String, body: Vec<u8>| {
        let body = String::from_utf8(body).unwrap();
        relay_host
            .run_in(move || {
                household::talker_https::request(
                    &method,
                    tv_addr,
                    &tv_key,
                    &path,
                    None,
                    Some(&body),
                    Duration::from_secs(5),
                )
            })
            .unwrap()
            .unwrap()
    };
    for (face, reason) in [
        (
            Face::OwnKey,
            "not the registry's talker: its certificate carries another key than the registry's \
             for this talker",
        ),
        (
            Face::CopiedKey,
            "not the registry's talker: its TLS handshake is not signed by the registry's key \
             for this talker",
        ),
    ] {
        let ip = relay_host.ip();
        let listener = relay_host
            .run_in(move || TcpListener::bind((ip, 0)))
            .unwrap()
            .unwrap();
        let relay_addr = listener.local_addr().unwrap();
        let tls = relay_tls(face, tv_key);
        let stop = AtomicBool::new(false);
        let relayed = AtomicUsize::new(0);
        let (row, works) = std::thread::scope(|scope| {
            scope.spawn(|| serve(&listener, &tls, &forward, &stop, &relayed));
            // The relay does relay: a client that trusts the relay's own key
            // gets the real TV's signed answer through it.
            let works = matches!(face, Face::OwnKey).then(|| {
                let relay_key = ed25519_dalek::SigningKey::from_bytes(&RELAY_SEED)
                    .verifying_key()
                    .to_bytes();
                home.lan()
                    .unwrap()
                    .host(household::spec::DIALER_HOST)
                    .run_in(move || {
                        household::talker_https::request(
                            "POST",
                            relay_addr,
                            &relay_key,
                            "/v1/challenge",
                            None,
                            Some(r#"{"nonce":"relay-nonce-0123456789"}"#),
                            Duration::from_secs(10),
                        )
                    })
                    .unwrap()
                    .unwrap()
            });
            let before = relayed.load(Ordering::SeqCst);
            let row = tv_row(&alice, relay_addr);
            assert_eq!(
                relayed.load(Ordering::SeqCst),
                before,
                "{face:?}: the dialer sent the relay a request"
            );
            stop.store(true, Ordering::SeqCst);
            let _ = relay_host.run_in(move || TcpStream::connect(relay_addr));
            (row, works)
        });
        if let Some(answer) = works {
            assert_eq!(answer.status, 200, "{}", answer.body);
            assert_eq!(answer.json()["talker_id"], "tv", "{}", answer.body);
        }
        assert_eq!(row["status"], "unverified", "{face:?}: {row}");
        assert_eq!(row["reason"], reason, "{face:?}: {row}");
    }
}
