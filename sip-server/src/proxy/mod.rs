//! The stateful proxy core (RFC 3261 §16): decide where a request goes
//! ([`plan`]: the routing and trust rules), fork it to every target, relay
//! provisional responses, pick the best final response, and cancel the other
//! branches once one answers ([`fork`]).

mod fork;
mod plan;

use crate::context::Context;
use crate::routing::Refusal;
use rsipstack::sip::{Method, Request, Response};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipAddr;
use splitdial_sip::wire;
use std::sync::Arc;
use std::time::Duration;
use tracing::debug;

/// Handles one server transaction (anything but REGISTER) to its end.
pub async fn handle(context: Arc<Context>, mut tx: Transaction) {
    let plan = match plan::plan(&context, &tx) {
        Ok(plan) => plan,
        Err(Answer::Refuse(refusal)) => {
            debug!(status = refusal.status, reason = %refusal.reason, method = %tx.original.method, "refused");
            let response = wire::response_to(&tx.original, refusal.status, &refusal.reason, vec![]);
            respond(&mut tx, response).await;
            drain(&mut tx).await;
            return;
        }
        Err(Answer::Respond(response)) => {
            respond(&mut tx, *response).await;
            drain(&mut tx).await;
            return;
        }
    };
    fork::forward(context, tx, plan).await;
}

/// Where and how a request is to be forwarded.
struct Plan {
    /// One request per branch, with its next hop, ready to send (Via excepted).
    branches: Vec<(Request, SipAddr)>,
    /// Whether we record-route (dialog-creating requests).
    record_route: bool,
}

/// What to answer instead of forwarding.
enum Answer {
    Refuse(Refusal),
    Respond(Box<Response>),
}

impl From<Refusal> for Answer {
    fn from(r: Refusal) -> Self {
        Self::Refuse(r)
    }
}

async fn respond(tx: &mut Transaction, response: Response) {
    if let Err(e) = tx.respond(response).await {
        debug!(error = %e, "could not respond");
    }
}

/// Ends a server transaction after its final response. Only an INVITE's non-2xx
/// final response over UDP needs the transaction kept (Timer G retransmits it
/// until the ACK); otherwise dropping it hands retransmission absorption to
/// rsipstack's finished-transaction cache, which is far cheaper under load.
async fn drain(tx: &mut Transaction) {
    let keep = tx.original.method == Method::Invite
        && !tx.connection.as_ref().is_some_and(|c| c.is_reliable())
        && tx
            .last_response
            .as_ref()
            .is_some_and(|r| r.status_code.code() >= 300);
    if keep {
        let _ = tokio::time::timeout(Duration::from_secs(40), async {
            while tx.receive().await.is_some() {}
        })
        .await;
    }
}
