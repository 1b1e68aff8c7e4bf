//! A test PKI: a household CA in a temporary directory, a matcher certificate it issued for the
//! loopback addresses (and any others a test names), and HTTP clients that trust that CA.

use splitdial_tls::pki::{HouseholdCa, Usage};
use splitdial_tls::{ServerTrust, TrustRoots};
use std::path::PathBuf;

/// A CA and a matcher certificate, removed with the value.
pub struct TestPki {
    dir: tempfile::TempDir,
    /// The CA.
    pub ca: HouseholdCa,
    /// The CA certificate's file (what clients trust).
    pub ca_certificate: PathBuf,
    /// The matcher's certificate file.
    pub matcher_certificate: PathBuf,
    /// The matcher's key file.
    pub matcher_key: PathBuf,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl TestPki {
    /// A new CA and a matcher certificate valid for `127.0.0.1`, `::1` and `localhost`.
    ///
    /// # Panics
    /// When the temporary directory or the certificates cannot be made (a broken test machine).
    pub fn new() -> Self {
        Self::with_names(&[])
    }

    /// Like [`TestPki::new`], with further names or addresses in the matcher's certificate
    /// (a LAN address).
    ///
    /// # Panics
    /// As [`TestPki::new`].
    #[allow(clippy::expect_used)]
    pub fn with_names(extra: &[String]) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ca_dir = dir.path().join("ca");
        // A name of its own: two test CAs of one name would look like one CA with a bad
        // signature to a verifier, not like a stranger.
        let name = format!("splitdial test CA {}", crate::unique_name("ca"));
        let ca = HouseholdCa::init(&ca_dir, &name).expect("a test CA");
        let mut names = vec![
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
            "localhost".to_owned(),
        ];
        names.extend(extra.iter().cloned());
        let (matcher_certificate, matcher_key) = ca
            .issue_files("matcher", Usage::Server, &names)
            .expect("a matcher certificate");
        Self {
            ca_certificate: ca.certificate_path(),
            dir,
            ca,
            matcher_certificate,
            matcher_key,
        }
    }

    /// The trust of a client configured with this CA (no pins).
    pub fn trust(&self) -> ServerTrust {
        ServerTrust {
            roots: TrustRoots::CaFile(self.ca_certificate.clone()),
            pins: Vec::new(),
        }
    }

    /// A reqwest client that trusts this CA and takes no proxy from the environment.
    ///
    /// # Panics
    /// When the client cannot be built.
    #[allow(clippy::expect_used)]
    pub fn client(&self) -> reqwest::Client {
        let (builder, _) =
            splitdial_tls::verifying_client_builder(&self.trust()).expect("a TLS client");
        builder.no_proxy().build().expect("a reqwest client")
    }

    /// The matcher's certificate pair as an in-process matcher serves it (HTTPS).
    ///
    /// # Panics
    /// When the pair cannot be read back.
    #[allow(clippy::expect_used)]
    pub fn served_certificate(
        &self,
    ) -> std::sync::Arc<splitdial_tls::server::ReloadableCertificate> {
        std::sync::Arc::new(
            splitdial_tls::server::ReloadableCertificate::load(
                &self.matcher_certificate,
                &self.matcher_key,
            )
            .expect("the test matcher's certificate pair"),
        )
    }

    /// A temporary directory of this PKI for a test's own files.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}
