//! HTTP clients. reqwest is built with rustls and no provider of its own, so building a client
//! panics unless a provider is installed: every client is built here, after
//! [`install_provider`], so no caller can forget it.

use crate::provider::install_provider;
use crate::verifier::{PinningVerifier, ServerTrust, TrustError, VerifiedChain};
use std::net::IpAddr;
use std::sync::Arc;

/// A reqwest client builder with the process's provider installed (for clients that reach only
/// loopback or plain HTTP, or that verify with the system's roots).
pub fn client_builder() -> reqwest::ClientBuilder {
    install_provider();
    reqwest::Client::builder()
}

/// A reqwest client builder whose TLS verifies the server with `trust` (roots and SPKI pins),
/// and the handle that reads the pins of the chain each handshake verified.
pub fn verifying_client_builder(
    trust: &ServerTrust,
) -> Result<(reqwest::ClientBuilder, VerifiedChain), TrustError> {
    let (config, chain) = verifying_client_config(trust)?;
    Ok((
        reqwest::Client::builder().tls_backend_preconfigured(config),
        chain,
    ))
}

/// The rustls client configuration of [`verifying_client_builder`], for a client that is not
/// reqwest (a blocking test client), and the handle on the pins it verifies.
pub fn verifying_client_config(
    trust: &ServerTrust,
) -> Result<(rustls::ClientConfig, VerifiedChain), TrustError> {
    install_provider();
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .ok_or_else(|| TrustError::Rustls("no crypto provider installed".into()))?;
    let verifier = PinningVerifier::new(trust, Arc::clone(&provider))?;
    let chain = verifier.verified_chain();
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TrustError::Rustls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((config, chain))
}

/// Checks a server's base URL: `https://host[:port]`, or `http://` for a loopback host only (a
/// development matcher on this machine); no path, user, query or fragment. Returns it without
/// a trailing slash; the error is one line saying what is wrong.
pub fn check_base_url(url: &str) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
    let plain = match parsed.scheme() {
        "https" => false,
        "http" => true,
        _ => return Err(format!("{url:?} must start with https://")),
    };
    if parsed.cannot_be_a_base()
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
        || parsed.path() != "/"
    {
        return Err(format!("{url:?} must be like https://host:port"));
    }
    let Some(host) = parsed.host_str() else {
        return Err(format!("{url:?} has no host"));
    };
    if plain && !is_loopback(host) {
        return Err(format!(
            "{url:?}: plain http:// is allowed only to a loopback host; use https://"
        ));
    }
    Ok(url.to_owned())
}

/// `localhost` or a loopback address (an IPv6 host comes bracketed from the URL).
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        assert_eq!(
            check_base_url("https://matcher.example:8740/").unwrap(),
            "https://matcher.example:8740"
        );
        assert!(check_base_url("http://127.0.0.1:8740").is_ok());
        assert!(check_base_url("http://[::1]:8740").is_ok());
        assert!(check_base_url("http://localhost:8740").is_ok());
        let e = check_base_url("http://192.168.1.2:8740").unwrap_err();
        assert!(e.contains("loopback") && e.contains("https://"), "{e}");
        assert!(check_base_url("ftp://m").is_err());
        assert!(check_base_url("https://user@m").is_err());
        assert!(check_base_url("https://m/v1").is_err());
        assert!(check_base_url("https://").is_err());
    }
}
