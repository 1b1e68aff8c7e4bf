//! The first look at every message, before rsipstack's transaction layer:
//! screening (invalid requests get their 4xx here, statelessly), and the two
//! things a stateful proxy still does statelessly (RFC 6026): forwarding the ACK
//! of a 2xx, and forwarding 2xx retransmissions that no transaction owns.

use crate::context::Context;
use crate::routing;
use async_trait::async_trait;
use rsipstack::sip::{Header, Method, Request, Response, SipMessage};
use rsipstack::transaction::endpoint::TransportEventInspector;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transport::connection::SipConnection;
use rsipstack::transport::{SipAddr, TransportEvent};
use splitdial_sip::headers;
use splitdial_sip::screen::{self, Verdict};
use splitdial_sip::wire;
use std::sync::Arc;
use tracing::{debug, warn};

/// The transport inspector installed on the server's endpoint.
pub struct Gatekeeper {
    context: Arc<Context>,
}

impl Gatekeeper {
    /// A gatekeeper for the server sharing `context`.
    pub fn new(context: Arc<Context>) -> Self {
        Self { context }
    }

    async fn reject(
        &self,
        request: &Request,
        rejection: screen::Rejection,
        connection: &SipConnection,
        from: &SipAddr,
    ) {
        debug!(%from, status = rejection.status, reason = %rejection.reason, "rejecting invalid request");
        if request.method == Method::Ack {
            return; // ACKs are never answered.
        }
        let mut extra = Vec::new();
        if !rejection.unsupported.is_empty() {
            extra.push(rsipstack::sip::headers::make_header(
                "Unsupported",
                rejection.unsupported.join(", "),
            ));
        }
        let response = wire::response_to(request, rejection.status, &rejection.reason, extra);
        let dest = (!connection.is_reliable()).then_some(from);
        if let Err(e) = connection.send(response.into(), dest).await {
            debug!(error = %e, "could not send rejection");
        }
    }

    /// Whether a transaction still owns `key`: a live one, or (with
    /// `finished`) one that ended but whose retransmissions rsipstack absorbs.
    fn has_transaction(&self, key: Option<&TransactionKey>, finished: bool) -> bool {
        let (Some(key), Some(endpoint)) = (key, self.context.endpoint()) else {
            return false;
        };
        endpoint.transactions.get(key).is_some()
            || (finished && endpoint.finished_transactions.get(key).is_some())
    }

    /// An ACK that matches no INVITE server transaction acknowledges a 2xx: it is
    /// end to end, so it is loose-routed onward like any in-dialog request.
    async fn forward_ack(&self, mut ack: Request) {
        match routing::in_dialog_next_hop(&self.context, &mut ack) {
            Ok(next) => {
                let transport = next.r#type.unwrap_or_default();
                let Some(endpoint) = self.context.endpoint() else {
                    return;
                };
                match endpoint.get_via(Some(self.context.local_addr(transport)), None) {
                    Ok(via) => ack.headers.push_front(Header::Via(via.into())),
                    Err(e) => {
                        warn!(error = %e, "no Via for ACK");
                        return;
                    }
                }
                if let Err(e) = self.context.send_stateless(ack.into(), &next).await {
                    debug!(error = %e, "could not forward ACK");
                }
            }
            Err(refusal) => debug!(reason = %refusal.reason, "dropping ACK"),
        }
    }

    /// A response no client transaction owns (a 2xx retransmission, RFC 6026 §8.3)
    /// goes to the next Via if the top one is ours.
    async fn forward_response(&self, response: Response) {
        if let Err(e) = routing::forward_response_statelessly(&self.context, response).await {
            debug!(error = %e, "dropping stray response");
        }
    }
}

#[async_trait]
impl TransportEventInspector for Gatekeeper {
    async fn handle(&self, event: TransportEvent) -> Option<TransportEvent> {
        let TransportEvent::Incoming(message, connection, from) = event else {
            return Some(event);
        };
        match screen::screen_message(message) {
            Verdict::Drop(why) => {
                debug!(%from, %why, "dropping message");
                None
            }
            Verdict::Reject(request, rejection) => {
                self.reject(&request, rejection, &connection, &from).await;
                None
            }
            Verdict::Accept(message) => match *message {
                SipMessage::Request(request) if request.method == Method::Ack => {
                    let key = TransactionKey::from_request(&request, TransactionRole::Server).ok();
                    if !self.has_transaction(key.as_ref(), true) {
                        self.forward_ack(request.clone()).await;
                    }
                    // The transaction layer also sees it: a proxy's INVITE server
                    // transaction that forwarded the 2xx ends on it.
                    Some(TransportEvent::Incoming(request.into(), connection, from))
                }
                SipMessage::Response(response) => {
                    let key =
                        TransactionKey::from_response(&response, TransactionRole::Client).ok();
                    let is_cancel_reply = headers::first(&response.headers, "CSeq")
                        .is_some_and(|c| c.to_ascii_uppercase().ends_with("CANCEL"));
                    // A 2xx to an INVITE whose client transaction already ended
                    // (a retransmission, or another fork's answer) is forwarded
                    // statelessly (RFC 6026 §8.3): the finished-transaction cache
                    // would swallow it.
                    let is_invite_2xx = response.status_code.kind()
                        == rsipstack::sip::StatusCodeKind::Successful
                        && headers::first(&response.headers, "CSeq")
                            .is_some_and(|c| c.to_ascii_uppercase().ends_with("INVITE"));
                    if self.has_transaction(key.as_ref(), !is_invite_2xx) || is_cancel_reply {
                        Some(TransportEvent::Incoming(response.into(), connection, from))
                    } else {
                        self.forward_response(response).await;
                        None
                    }
                }
                message => Some(TransportEvent::Incoming(message, connection, from)),
            },
        }
    }
}
