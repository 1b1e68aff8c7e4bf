//! OPTIONS probes: whether a plain SIP address (a desk phone, a contact that
//! runs no talker agent and so sends no heartbeats) is reachable right now,
//! asked through its own server like a call would be.

use super::{Controller, ControllerError, Shared, SipTransport};
use rsipstack::sip::typed::{From as FromHeader, To as ToHeader};
use rsipstack::sip::{Method, Param, Request, SipMessage, Transport};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::make_tag;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipAddr;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What a probe learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reachability {
    /// The address answered (any final response from the device itself,
    /// including 4xx for OPTIONS it does not like, means it is there).
    Reachable,
    /// The server said it is not registered (404, 480) or nothing answered.
    Unreachable,
    /// The server would not let us ask (401, 403, 407): we know nothing.
    Unknown,
}

/// Sends OPTIONS probes from the controller's endpoint; cheap to clone, usable
/// while calls run.
#[derive(Clone)]
pub struct Prober {
    shared: Arc<Shared>,
}

impl Controller {
    /// A probe handle on this controller's endpoint.
    pub fn prober(&self) -> Prober {
        Prober {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Prober {
    /// Sends OPTIONS to `target` through the server's proxy and waits up to
    /// `timeout` for the final answer.
    pub async fn probe(
        &self,
        proxy: SocketAddr,
        transport: SipTransport,
        from: &str,
        target: &str,
        timeout: Duration,
    ) -> Result<Reachability, ControllerError> {
        let transport = match transport {
            SipTransport::Tcp => Transport::Tcp,
            SipTransport::Udp => Transport::Udp,
        };
        let request = self.options_request(transport, from, target)?;
        let endpoint = self.shared.dialogs.endpoint.clone();
        let key = TransactionKey::from_request(&request, TransactionRole::Client).map_err(stack)?;
        let mut tx = Transaction::new_client(key, request, endpoint, None);
        tx.destination = Some(SipAddr {
            r#type: Some(transport),
            addr: proxy.into(),
        });
        if transport == Transport::Tcp {
            self.shared.flows.ensure(proxy).await;
        }
        tx.send().await.map_err(stack)?;
        let answer = tokio::time::timeout(timeout, final_code(&mut tx))
            .await
            .ok()
            .flatten();
        Ok(reachability(answer))
    }

    /// An OPTIONS from `from` to `target`, sent from our address over `transport`.
    fn options_request(
        &self,
        transport: Transport,
        from: &str,
        target: &str,
    ) -> Result<Request, ControllerError> {
        let parse = |what: &'static str, uri: &str| {
            rsipstack::sip::Uri::try_from(uri).map_err(|_| ControllerError::InvalidUri {
                what,
                uri: uri.to_owned(),
            })
        };
        let target_uri = parse("probe target", target)?;
        let from_uri = parse("probe from", from)?;
        let endpoint = &self.shared.dialogs.endpoint;
        let via = endpoint
            .get_via(
                Some(SipAddr {
                    r#type: Some(transport),
                    addr: self.shared.local.into(),
                }),
                None,
            )
            .map_err(stack)?;
        Ok(endpoint.make_request(
            Method::Options,
            target_uri.clone(),
            via,
            FromHeader {
                display_name: None,
                uri: from_uri,
                params: vec![Param::Tag(make_tag())],
            },
            ToHeader {
                display_name: None,
                uri: target_uri,
                params: vec![],
            },
            1,
            None,
        ))
    }
}

/// The stack's error as ours (for `map_err`, which hands it over by value).
#[allow(clippy::needless_pass_by_value)]
fn stack(error: rsipstack::Error) -> ControllerError {
    ControllerError::Stack(error.to_string())
}

/// The status code of the transaction's final response; `None` when it ends
/// without one.
async fn final_code(tx: &mut Transaction) -> Option<u16> {
    while let Some(message) = tx.receive().await {
        if let SipMessage::Response(response) = message {
            let code = u16::from(response.status_code.clone());
            if code >= 200 {
                return Some(code);
            }
        }
    }
    None
}

/// What a probe's final answer (`None`: none in time) says about the address.
fn reachability(answer: Option<u16>) -> Reachability {
    match answer {
        Some(401 | 403 | 407) => Reachability::Unknown,
        Some(404 | 408 | 410 | 480 | 503 | 504) | None => Reachability::Unreachable,
        Some(_) => Reachability::Reachable,
    }
}
