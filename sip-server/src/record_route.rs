//! Our Record-Route entries, signed so that only dialogs we record-routed can be
//! loose-routed through us: a Route that claims to be our record-route (it
//! carries our `sd` parameter) with a bad signature is refused, and we never
//! become an open relay through in-dialog requests. A Route that merely names
//! us (a UA's outbound-proxy setting, RFC 3261 §8.1.2) is no claim: it is
//! popped (§16.4) but proves no dialog.

use hmac::{Hmac, Mac};
use rsipstack::sip::{Host, HostWithPort, Param, Transport, typed};
use sha2::Sha256;
use std::net::SocketAddr;

/// The URI parameter that carries the signature.
const SIGNATURE_PARAM: &str = "sd";

/// Makes and checks our Record-Route URIs.
pub struct RouteSigner {
    key: [u8; 32],
    local: SocketAddr,
    domain: String,
}

/// How a Route entry relates to us.
#[derive(Debug, PartialEq, Eq)]
pub enum RouteOwner {
    /// Someone else's route.
    Foreign,
    /// Our record-route, with a valid signature for this dialog.
    Ours,
    /// Names us (address or domain) without a signature: a preloaded route, as
    /// a UA configured with us as its outbound proxy sends. Popped, but it
    /// proves no dialog.
    Preloaded,
    /// Names us and carries our signature parameter, but the signature is
    /// wrong for this dialog.
    Forged,
}

impl RouteSigner {
    /// A signer for the proxy at `local` serving `domain`, with a fresh random key.
    pub fn new(local: SocketAddr, domain: impl Into<String>) -> Self {
        Self {
            key: rand::random(),
            local,
            domain: domain.into(),
        }
    }

    /// Whether a URI host (and port) names this server: its domain, or its
    /// listen address (port 5060 when none is given).
    pub fn names_us(&self, hp: &HostWithPort) -> bool {
        match &hp.host {
            Host::Domain(d) => d.to_string().eq_ignore_ascii_case(&self.domain),
            Host::IpAddr(ip) => {
                let port = hp.port.as_ref().map_or(5060, |p| p.value());
                *ip == self.local.ip() && port == self.local.port()
            }
        }
    }

    fn signature(&self, call_id: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(call_id.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..10])
    }

    /// The Record-Route value for a dialog with `call_id`, reached over `transport`.
    pub fn record_route(&self, transport: Transport, call_id: &str) -> String {
        let t = if transport == Transport::Tcp {
            "tcp"
        } else {
            "udp"
        };
        format!(
            "<sip:{};transport={t};lr;{SIGNATURE_PARAM}={}>",
            self.local,
            self.signature(call_id)
        )
    }

    /// Whether a Route value names us, and if so whether it is genuine for `call_id`.
    pub fn owner(&self, route_value: &str, call_id: &str) -> RouteOwner {
        let Ok(route) = typed::Route::parse(route_value) else {
            return RouteOwner::Foreign;
        };
        if !self.names_us(&route.uri.host_with_port) {
            return RouteOwner::Foreign;
        }
        // The signature parameter, with or without a value (an empty one is a
        // claim too, and a wrong one).
        let signature = route.uri.params.iter().find_map(|p| match p {
            Param::Other(name, value) if name.to_string().eq_ignore_ascii_case(SIGNATURE_PARAM) => {
                Some(value.as_ref().map(ToString::to_string).unwrap_or_default())
            }
            _ => None,
        });
        match signature {
            None => RouteOwner::Preloaded,
            Some(s) if s == self.signature(call_id) => RouteOwner::Ours,
            Some(_) => RouteOwner::Forged,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_routes_are_recognised_and_forgeries_refused() {
        let signer = RouteSigner::new("127.0.0.1:5070".parse().unwrap(), "home.example");
        let rr = signer.record_route(Transport::Udp, "call-1");
        assert_eq!(signer.owner(&rr, "call-1"), RouteOwner::Ours);
        assert_eq!(signer.owner(&rr, "call-2"), RouteOwner::Forged);
        for forged in [
            "<sip:127.0.0.1:5070;lr;sd=0123456789abcdef0123>",
            "<sip:127.0.0.1:5070;lr;sd>",
            "<sip:127.0.0.1:5070;lr;SD=00>",
            "<sip:home.example;lr;sd=00>",
        ] {
            assert_eq!(
                signer.owner(forged, "call-1"),
                RouteOwner::Forged,
                "{forged}"
            );
        }
        assert_eq!(
            signer.owner("<sip:127.0.0.1:5099;lr>", "call-1"),
            RouteOwner::Foreign
        );
        assert_eq!(
            signer.owner("<sip:127.0.0.1;lr>", "call-1"),
            RouteOwner::Foreign
        );
        assert_eq!(
            signer.owner("<sip:other.example;lr;sd=00>", "call-1"),
            RouteOwner::Foreign
        );
        assert_eq!(signer.owner("garbage<<", "call-1"), RouteOwner::Foreign);
    }

    #[test]
    fn unsigned_routes_naming_us_are_preloaded() {
        let signer = RouteSigner::new("127.0.0.1:5070".parse().unwrap(), "home.example");
        for preloaded in [
            "<sip:127.0.0.1:5070;lr>",
            "<sip:127.0.0.1:5070;transport=tcp;lr>",
            "<sip:HOME.example;lr>",
            "<sip:proxy@home.example:5090;lr>",
        ] {
            assert_eq!(
                signer.owner(preloaded, "call-1"),
                RouteOwner::Preloaded,
                "{preloaded}"
            );
        }
    }

    #[test]
    fn the_default_port_names_us_only_on_5060() {
        let on_5060 = RouteSigner::new("127.0.0.1:5060".parse().unwrap(), "home.example");
        assert_eq!(
            on_5060.owner("<sip:127.0.0.1;lr>", "c"),
            RouteOwner::Preloaded
        );
    }
}
