//! Our Record-Route entries, signed so that only dialogs we record-routed can be
//! loose-routed through us: a forged Route naming us is refused, and we never
//! become an open relay through in-dialog requests.

use hmac::{Hmac, Mac};
use rsipstack::sip::{Param, Transport, typed};
use sha2::Sha256;
use std::net::SocketAddr;

/// The URI parameter that carries the signature.
const SIGNATURE_PARAM: &str = "sd";

/// Makes and checks our Record-Route URIs.
pub struct RouteSigner {
    key: [u8; 32],
    local: SocketAddr,
}

/// How a Route entry relates to us.
#[derive(Debug, PartialEq, Eq)]
pub enum RouteOwner {
    /// Someone else's route.
    Foreign,
    /// Ours, with a valid signature for this dialog.
    Ours,
    /// Names us but its signature is missing or wrong.
    Forged,
}

impl RouteSigner {
    /// A signer for the proxy at `local`, with a fresh random key.
    pub fn new(local: SocketAddr) -> Self {
        Self {
            key: rand::random(),
            local,
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
        let hp = &route.uri.host_with_port;
        let ip_matches = hp.host.to_string() == self.local.ip().to_string();
        let port = hp.port.as_ref().map_or(5060, |p| p.value());
        if !ip_matches || port != self.local.port() {
            return RouteOwner::Foreign;
        }
        let signature = route.uri.params.iter().find_map(|p| match p {
            Param::Other(name, Some(value)) if name.to_string() == SIGNATURE_PARAM => {
                Some(value.to_string())
            }
            _ => None,
        });
        match signature {
            Some(s) if s == self.signature(call_id) => RouteOwner::Ours,
            _ => RouteOwner::Forged,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_routes_are_recognised_and_forgeries_refused() {
        let signer = RouteSigner::new("127.0.0.1:5070".parse().unwrap());
        let rr = signer.record_route(Transport::Udp, "call-1");
        assert_eq!(signer.owner(&rr, "call-1"), RouteOwner::Ours);
        assert_eq!(signer.owner(&rr, "call-2"), RouteOwner::Forged);
        assert_eq!(
            signer.owner("<sip:127.0.0.1:5070;lr>", "call-1"),
            RouteOwner::Forged
        );
        assert_eq!(
            signer.owner("<sip:127.0.0.1:5099;lr>", "call-1"),
            RouteOwner::Foreign
        );
        assert_eq!(signer.owner("garbage<<", "call-1"), RouteOwner::Foreign);
    }
}
