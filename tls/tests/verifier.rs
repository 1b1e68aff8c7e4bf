//! The matcher verifier's decisions on real certificates from a household CA: a chain to the
//! configured CA passes and yields the pins of its keys; a wrong CA, an expired certificate, a
//! wrong name and an unpinned chain are refused with words saying which; a renewed certificate
//! from the same CA, or with the same key, passes the pins enrollment stored.
#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};
use splitdial_tls::pki::{HouseholdCa, Usage};
use splitdial_tls::verifier::PinningVerifier;
use splitdial_tls::{ServerTrust, SpkiPin, TrustRoots};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

fn verifier(trust: &ServerTrust) -> PinningVerifier {
    splitdial_tls::install_provider();
    let provider = rustls::crypto::CryptoProvider::get_default()
        .unwrap()
        .clone();
    PinningVerifier::new(trust, Arc::clone(&provider)).unwrap()
}

fn check(
    verifier: &PinningVerifier,
    certificate: &CertificateDer<'_>,
    host: &str,
) -> Result<(), String> {
    let name = ServerName::try_from(host.to_owned()).unwrap();
    verifier
        .verify_server_cert(certificate, &[], &name, &[], UnixTime::now())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

struct Pki {
    _dir: tempfile::TempDir,
    ca: HouseholdCa,
    other: HouseholdCa,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca = HouseholdCa::init(&dir.path().join("ca"), "home").unwrap();
    let other = HouseholdCa::init(&dir.path().join("other"), "elsewhere").unwrap();
    Pki {
        _dir: dir,
        ca,
        other,
    }
}

fn ca_trust(pki: &Pki, pins: Vec<SpkiPin>) -> ServerTrust {
    ServerTrust {
        roots: TrustRoots::CaFile(pki.ca.certificate_path()),
        pins,
    }
}

#[test]
fn a_chain_to_the_ca_passes_and_yields_its_pins() {
    let pki = pki();
    let pair = pki.ca.issue("m.home", Usage::Server, &[]).unwrap();
    let v = verifier(&ca_trust(&pki, Vec::new()));
    check(&v, &der(&pair.certificate_pem), "m.home").unwrap();
    let pins = v.verified_chain().pins();
    let ca_certificate = std::fs::read_to_string(pki.ca.certificate_path()).unwrap();
    assert_eq!(
        pins,
        vec![
            SpkiPin::of_certificate(&der(&pair.certificate_pem)).unwrap(),
            SpkiPin::of_certificate(&der(&ca_certificate)).unwrap(),
        ]
    );
}

#[test]
fn wrong_ca_expired_and_wrong_name_are_refused_in_words() {
    let pki = pki();
    let v = verifier(&ca_trust(&pki, Vec::new()));
    let stranger = pki.other.issue("m.home", Usage::Server, &[]).unwrap();
    let e = check(&v, &der(&stranger.certificate_pem), "m.home").unwrap_err();
    assert!(e.contains("does not trust"), "{e}");
    let now = OffsetDateTime::now_utc();
    let old = pki
        .ca
        .issue_valid(
            "m.home",
            Usage::Server,
            &[],
            now - Duration::days(30),
            now - Duration::days(1),
        )
        .unwrap();
    let e = check(&v, &der(&old.certificate_pem), "m.home").unwrap_err();
    assert!(e.contains("expired"), "{e}");
    let good = pki.ca.issue("m.home", Usage::Server, &[]).unwrap();
    let e = check(&v, &der(&good.certificate_pem), "elsewhere.home").unwrap_err();
    assert!(e.contains("host name"), "{e}");
    let client = pki.ca.issue("m.home", Usage::Client, &[]).unwrap();
    assert!(check(&v, &der(&client.certificate_pem), "m.home").is_err());
    assert!(
        v.verified_chain().pins().is_empty(),
        "nothing refused is recorded"
    );
}

#[test]
fn pins_keep_a_renewal_and_refuse_a_stranger_chain() {
    let pki = pki();
    let first = pki.ca.issue("m.home", Usage::Server, &[]).unwrap();
    let v = verifier(&ca_trust(&pki, Vec::new()));
    check(&v, &der(&first.certificate_pem), "m.home").unwrap();
    let pins = v.verified_chain().pins();

    // Renewed by the same CA with a new key: the CA's pin matches.
    let pinned = verifier(&ca_trust(&pki, pins.clone()));
    let renewed = pki.ca.issue("m.home", Usage::Server, &[]).unwrap();
    check(&pinned, &der(&renewed.certificate_pem), "m.home").unwrap();

    // The same key, now under another CA the configuration trusts: the key's pin matches.
    let key = rcgen::KeyPair::from_pem(&first.key_pem).unwrap();
    let now = OffsetDateTime::now_utc();
    let moved = pki
        .other
        .issue_for_key(
            "m.home",
            Usage::Server,
            &[],
            &key,
            now - Duration::hours(1),
            now + Duration::days(30),
        )
        .unwrap();
    let other_trust = ServerTrust {
        roots: TrustRoots::CaFile(pki.other.certificate_path()),
        pins,
    };
    check(
        &verifier(&other_trust),
        &der(&moved.certificate_pem),
        "m.home",
    )
    .unwrap();

    // A new key from a CA that was not in the enrolled chain: refused although trusted.
    let stranger = pki.other.issue("m.home", Usage::Server, &[]).unwrap();
    let e = check(
        &verifier(&other_trust),
        &der(&stranger.certificate_pem),
        "m.home",
    )
    .unwrap_err();
    assert!(e.contains("pinned at enrollment"), "{e}");
}

#[test]
fn a_pinned_certificate_is_trusted_for_its_bytes_only() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let pair = pki.other.issue("m.home", Usage::Server, &[]).unwrap();
    let file = dir.path().join("matcher.crt");
    std::fs::write(&file, &pair.certificate_pem).unwrap();
    let v = verifier(&ServerTrust {
        roots: TrustRoots::CertificateFile(file.clone()),
        pins: Vec::new(),
    });
    check(&v, &der(&pair.certificate_pem), "m.home").unwrap();
    let another = pki.other.issue("m.home", Usage::Server, &[]).unwrap();
    let e = check(&v, &der(&another.certificate_pem), "m.home").unwrap_err();
    assert!(e.contains("pinned in the configuration"), "{e}");

    let now = OffsetDateTime::now_utc();
    let old = pki
        .other
        .issue_valid(
            "m.home",
            Usage::Server,
            &[],
            now - Duration::days(30),
            now - Duration::days(1),
        )
        .unwrap();
    std::fs::write(&file, &old.certificate_pem).unwrap();
    let v = verifier(&ServerTrust {
        roots: TrustRoots::CertificateFile(file),
        pins: Vec::new(),
    });
    let e = check(&v, &der(&old.certificate_pem), "m.home").unwrap_err();
    assert!(e.contains("expired"), "{e}");
}
