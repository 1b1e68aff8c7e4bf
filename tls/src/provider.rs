//! The process-wide crypto provider.

/// Installs ring as the process's default rustls crypto provider. Idempotent: a second call (or a
/// test harness that already installed it) is not an error.
pub fn install_provider() {
    // rustls 0.23.48 deprecates ring's provider because it has no post-quantum key exchange;
    // ring is still the one provider rsipstack's TLS is built on, and one provider in the whole
    // graph is the point (aws-lc-rs would be a second, with a C toolchain of its own).
    // `install_default` fails only when a provider is already installed; for us that is the same
    // provider, so there is nothing to do.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
}
