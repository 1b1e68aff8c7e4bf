//! Forwarding a planned request (docs/sip-server.md, "Proxy", rules 7 and 8):
//! one client transaction per branch, each in its own task; provisional
//! responses relayed, the first 2xx sent up and the other branches cancelled,
//! otherwise the best final response once every branch finished.

use super::{Plan, drain, respond};
use crate::context::{Context, RING_LIMIT};
use crate::routing;
use rsipstack::sip::{Header, Method, Request, Response, SipMessage, Transport};
use rsipstack::transaction::endpoint::EndpointInner;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipAddr;
use splitdial_sip::headers;
use splitdial_sip::wire;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, info};

/// Requests bigger than this go over TCP even toward a UDP target
/// (RFC 3261 §18.1.1: within 200 bytes of a 1500-byte path MTU).
const UDP_SIZE_LIMIT: usize = 1300;

/// How long to wait for the branches' final responses after cancelling them.
const CANCEL_GRACE: Duration = Duration::from_secs(32);

/// A response arriving on one branch.
struct BranchEvent {
    index: usize,
    response: Option<Response>,
}

/// One forwarded copy of the request.
struct Branch {
    request: Request,
    dest: SipAddr,
    provisional: bool,
    finished: bool,
    cancel_pending: bool,
}

/// The `Reason` on the CANCELs of the other branches once one answered 2xx (RFC 3326).
const COMPLETED_ELSEWHERE: &str = "SIP;cause=200;text=\"Call completed elsewhere\"";
/// The `Reason` on the CANCELs of the other branches once one answered 6xx.
const BUSY_EVERYWHERE: &str = "SIP;cause=600;text=\"Busy Everywhere\"";

/// Forks the request along `plan` and answers the caller from its branches.
pub(super) async fn forward(context: Arc<Context>, mut server_tx: Transaction, plan: Plan) {
    let Some(endpoint) = context.endpoint() else {
        return;
    };
    let method = server_tx.original.method;
    let inbound = server_tx
        .connection
        .as_ref()
        .map_or(Transport::Udp, |c| c.transport());
    let call_id = headers::first(&server_tx.original.headers, "Call-ID")
        .unwrap_or_default()
        .to_owned();
    let (branches, events) = start_branches(&context, &endpoint, plan, inbound, &call_id);
    if branches.is_empty() {
        let response = wire::response_to(&server_tx.original, 500, "No Route", vec![]);
        respond(&mut server_tx, response).await;
        drain(&mut server_tx).await;
        return;
    }
    info!(%method, branches = branches.len(), "forwarding");
    if method == Method::Invite {
        // Once the branches are started (RFC 3261 §16.2 leaves the moment to the proxy): the 100
        // only stops the caller's retransmissions, and nothing before the branches should wait
        // for it. An INVITE answered at once (a 407, a 404) needs none.
        let _ = server_tx.send_trying().await;
    }
    let mut fork = Fork {
        context,
        server_tx,
        method,
        branches,
        best: None,
        answered: false,
        cancelled: false,
    };
    fork.run(events).await;
    if !fork.answered {
        fork.answer_best().await;
    }
    drain(&mut fork.server_tx).await;
}

/// A request forked to its branches, and what went upstream so far (RFC 3261 §16.7).
struct Fork {
    context: Arc<Context>,
    /// The caller's transaction.
    server_tx: Transaction,
    method: Method,
    branches: Vec<Branch>,
    /// The best final response so far, if none was a 2xx.
    best: Option<Response>,
    /// A 2xx went upstream.
    answered: bool,
    /// The caller sent CANCEL.
    cancelled: bool,
}

impl Fork {
    /// Takes the branches' responses and the caller's CANCEL until every
    /// branch finished, the caller's transaction ends, or the branches run out
    /// of time ([`RING_LIMIT`], [`CANCEL_GRACE`] after a CANCEL).
    async fn run(&mut self, mut events: mpsc::UnboundedReceiver<BranchEvent>) {
        let deadline = tokio::time::sleep(RING_LIMIT);
        tokio::pin!(deadline);
        while !self.branches.iter().all(|b| b.finished) {
            tokio::select! {
                event = events.recv() => {
                    let Some(event) = event else { break };
                    self.on_branch_event(event).await;
                }
                incoming = self.server_tx.receive(), if !self.cancelled && !self.answered => {
                    match incoming {
                        Some(SipMessage::Request(r)) if r.method == Method::Cancel => {
                            debug!("caller cancelled");
                            self.cancelled = true;
                            cancel_others(&self.context, &mut self.branches, None);
                            deadline.as_mut().reset(tokio::time::Instant::now() + CANCEL_GRACE);
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
                () = &mut deadline => {
                    debug!("branches did not finish in time");
                    cancel_others(&self.context, &mut self.branches, None);
                    break;
                }
            }
        }
    }

    /// One branch's response (`None`: it ended without a final one, a 408).
    async fn on_branch_event(&mut self, BranchEvent { index, response }: BranchEvent) {
        let code = response.as_ref().map_or(408, |r| r.status_code.code());
        let branch = &mut self.branches[index];
        if code < 200 {
            branch.provisional = true;
            if branch.cancel_pending {
                branch.cancel_pending = false;
                send_cancel(&self.context, branch, None);
            }
        } else {
            branch.finished = true;
        }
        let Some(mut response) = response else {
            let timeout =
                wire::response_to(&self.server_tx.original, 408, "Request Timeout", vec![]);
            keep_best(&mut self.best, timeout);
            return;
        };
        routing::pop_top_via(&mut response);
        match code {
            100 => {}
            101..=199 => {
                if !self.answered && self.method == Method::Invite {
                    respond(&mut self.server_tx, response).await;
                }
            }
            200..=299 => self.on_success(index, response).await,
            600..=699 => {
                keep_best(&mut self.best, response);
                cancel_others(&self.context, &mut self.branches, Some(BUSY_EVERYWHERE));
            }
            _ => keep_best(&mut self.best, response),
        }
    }

    /// A 2xx from branch `index`: the first goes up and cancels the other
    /// branches; a later one of an INVITE goes up too, statelessly.
    async fn on_success(&mut self, index: usize, response: Response) {
        if self.method == Method::Invite || !self.answered {
            if self.answered {
                // Another fork answered too: the caller decides (§16.7).
                let response = with_our_via(response, &self.branches[index]);
                let _ = routing::forward_response_statelessly(&self.context, response).await;
            } else {
                respond(&mut self.server_tx, response).await;
            }
        }
        if !self.answered {
            self.answered = true;
            cancel_others(&self.context, &mut self.branches, Some(COMPLETED_ELSEWHERE));
        }
    }

    /// Without a 2xx, the best final response goes up: 487 after the caller's
    /// CANCEL, 408 when there was none; a 503 becomes 500 (§16.7).
    async fn answer_best(&mut self) {
        let original = &self.server_tx.original;
        let mut response = self.best.take().unwrap_or_else(|| {
            if self.cancelled {
                wire::response_to(original, 487, "Request Terminated", vec![])
            } else {
                wire::response_to(original, 408, "Request Timeout", vec![])
            }
        });
        if response.status_code.code() == 503 {
            response = wire::response_to(original, 500, "Server Internal Error", vec![]);
        }
        respond(&mut self.server_tx, response).await;
    }
}

/// Sends one copy of the request per planned branch, each from its own task; returns the
/// branches and the channel their responses arrive on, each tagged with its branch's index in
/// the returned list. A branch that cannot be sent (no transaction key) is left out.
fn start_branches(
    context: &Arc<Context>,
    endpoint: &Arc<EndpointInner>,
    plan: Plan,
    inbound: Transport,
    call_id: &str,
) -> (Vec<Branch>, mpsc::UnboundedReceiver<BranchEvent>) {
    let (events_tx, events) = mpsc::unbounded_channel::<BranchEvent>();
    let mut branches = Vec::new();

    for (mut request, mut dest) in plan.branches {
        let size = request.to_bytes().len() + 400; // room for our Via and Record-Route
        if dest.r#type == Some(Transport::Udp) && size > UDP_SIZE_LIMIT {
            dest.r#type = Some(Transport::Tcp);
        }
        let outbound = dest.r#type.unwrap_or_default();
        if plan.record_route {
            let mut ours = vec![context.routes.record_route(outbound, call_id)];
            if outbound != inbound {
                // RFC 5658: one entry per side when the dialog crosses transports.
                ours.push(context.routes.record_route(inbound, call_id));
            }
            routing::push_record_routes(&mut request, &ours);
        }
        let Some(client) = client_transaction(context, endpoint, &mut request, &dest) else {
            continue;
        };
        // The branch's place in this list, which is what its events name: a branch left out
        // above has none, so the plan's own order would point past or at another branch.
        let index = branches.len();
        branches.push(Branch {
            request,
            dest,
            provisional: false,
            finished: false,
            cancel_pending: false,
        });
        // Each branch sends in its own task: one toward a contact that must first be connected
        // to does not hold up the others.
        tokio::spawn(relay_responses(client, index, events_tx.clone()));
    }
    (branches, events)
}

/// The client transaction that sends `request` to `dest`, with our Via on top
/// of it; `None` when it cannot be made.
fn client_transaction(
    context: &Context,
    endpoint: &Arc<EndpointInner>,
    request: &mut Request,
    dest: &SipAddr,
) -> Option<Transaction> {
    let outbound = dest.r#type.unwrap_or_default();
    let via = match endpoint.get_via(Some(context.local_addr(outbound)), None) {
        Ok(via) => via,
        Err(e) => {
            debug!(error = %e, "no Via");
            return None;
        }
    };
    request.headers.push_front(Header::Via(via.into()));
    let key = TransactionKey::from_request(request, TransactionRole::Client).ok()?;
    let mut client = Transaction::new_client(key, request.clone(), endpoint.clone(), None);
    client.destination = Some(dest.clone());
    Some(client)
}

/// Sends branch `index` and passes each response it gets to `events`, then a
/// `None` response when it ended without a final one.
async fn relay_responses(
    mut client: Transaction,
    index: usize,
    events: mpsc::UnboundedSender<BranchEvent>,
) {
    if let Err(e) = client.send().await {
        debug!(error = %e, "branch send failed");
    }
    let mut finished = false;
    while let Some(message) = client.receive().await {
        if let SipMessage::Response(response) = message {
            finished |= response.status_code.code() >= 200;
            let _ = events.send(BranchEvent {
                index,
                response: Some(response),
            });
        }
    }
    if !finished {
        let _ = events.send(BranchEvent {
            index,
            response: None,
        });
    }
}

/// A second 2xx is sent statelessly: give it back the Via we popped so the
/// stateless path can pop it again.
fn with_our_via(mut response: Response, branch: &Branch) -> Response {
    if let Some(via) = headers::list(&branch.request.headers, "Via").first() {
        response
            .headers
            .push_front(rsipstack::sip::headers::make_header("Via", via.clone()));
    }
    response
}

/// §16.7 step 6: prefer 6xx, then the lowest class; within a class keep the first.
fn keep_best(best: &mut Option<Response>, candidate: Response) {
    let rank = |r: &Response| {
        let code = r.status_code.code();
        if code >= 600 { 0 } else { code / 100 }
    };
    let replace = match best {
        None => true,
        Some(current) => rank(&candidate) < rank(current),
    };
    if replace {
        *best = Some(candidate);
    }
}

fn cancel_others(context: &Arc<Context>, branches: &mut [Branch], reason: Option<&str>) {
    for branch in branches.iter_mut().filter(|b| !b.finished) {
        if branch.request.method != Method::Invite {
            continue;
        }
        if branch.provisional {
            send_cancel(context, branch, reason);
        } else {
            // §9.1: no CANCEL before a provisional response.
            branch.cancel_pending = true;
        }
    }
}

/// Sends a CANCEL for one branch in its own client transaction (§9.1, §16.10).
fn send_cancel(context: &Arc<Context>, branch: &mut Branch, reason: Option<&str>) {
    let Some(endpoint) = context.endpoint() else {
        return;
    };
    let original = &branch.request;
    let mut h = rsipstack::sip::Headers::default();
    if let Some(via) = headers::list(&original.headers, "Via").first() {
        headers::push(&mut h, "Via", via.clone());
    }
    for name in ["Route", "From", "To", "Call-ID"] {
        for v in headers::values(&original.headers, name) {
            headers::push(&mut h, name, v.to_owned());
        }
    }
    let seq = headers::cseq_number(&original.headers).unwrap_or(1);
    headers::push(&mut h, "CSeq", format!("{seq} CANCEL"));
    headers::push(&mut h, "Max-Forwards", "70");
    if let Some(reason) = reason {
        headers::push(&mut h, "Reason", reason);
    }
    let cancel = Request {
        method: Method::Cancel,
        uri: original.uri.clone(),
        version: rsipstack::sip::Version::V2,
        headers: h,
        body: Vec::new(),
    };
    let Ok(key) = TransactionKey::from_request(&cancel, TransactionRole::Client) else {
        return;
    };
    let mut tx = Transaction::new_client(key, cancel, endpoint, None);
    tx.destination = Some(branch.dest.clone());
    tokio::spawn(async move {
        let _ = tx.send().await;
        while tx.receive().await.is_some() {}
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Test code: a panic is the failure report.
mod tests {
    use super::*;
    use crate::context::ServerConfig;
    use tokio::net::UdpSocket;

    /// An OPTIONS toward `target`; without a From tag no client transaction can
    /// be keyed for it, so its branch is left out.
    fn options(target: &str, from_tag: bool) -> Request {
        let tag = if from_tag { ";tag=caller" } else { "" };
        let text = format!(
            "OPTIONS {target} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKcaller1\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@home.example>{tag}\r\nTo: <sip:bob@home.example>\r\n\
             Call-ID: branch-index@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        match SipMessage::try_from(text.as_str()).unwrap() {
            SipMessage::Request(request) => request,
            SipMessage::Response(_) => unreachable!("an OPTIONS request"),
        }
    }

    fn udp(addr: std::net::SocketAddr) -> SipAddr {
        SipAddr {
            r#type: Some(Transport::Udp),
            addr: addr.into(),
        }
    }

    /// Three contacts, the first left out: each answer must be filed under the
    /// branch that went to the contact that sent it (the index is the branch's
    /// place in the started list, not in the plan).
    #[tokio::test]
    async fn answers_go_to_their_own_branch_when_an_earlier_one_is_left_out() {
        let server = crate::start(ServerConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            "home.example",
        ))
        .await
        .unwrap();
        let context = server.context().clone();
        let endpoint = context.endpoint().unwrap();
        let phones = [
            UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        ];
        let addrs: Vec<std::net::SocketAddr> =
            phones.iter().map(|p| p.local_addr().unwrap()).collect();
        let plan = Plan {
            branches: vec![
                (
                    options(&format!("sip:bob@{}", addrs[0]), false),
                    udp(addrs[0]),
                ),
                (
                    options(&format!("sip:bob@{}", addrs[0]), true),
                    udp(addrs[0]),
                ),
                (
                    options(&format!("sip:bob@{}", addrs[1]), true),
                    udp(addrs[1]),
                ),
            ],
            record_route: false,
        };
        let (branches, mut events) = start_branches(
            &context,
            &endpoint,
            plan,
            Transport::Udp,
            "branch-index@test",
        );
        assert_eq!(branches.len(), 2, "the untagged branch is left out");

        // The second phone answers first, then the first one.
        for phone in [1, 0] {
            let mut buf = vec![0u8; 65536];
            let (n, proxy) =
                tokio::time::timeout(Duration::from_secs(5), phones[phone].recv_from(&mut buf))
                    .await
                    .unwrap()
                    .unwrap();
            let SipMessage::Request(request) = SipMessage::try_from(&buf[..n]).unwrap() else {
                panic!("phone {phone} got a response");
            };
            let ok = wire::response_to(&request, 200, "OK", vec![]);
            phones[phone].send_to(&ok.to_bytes(), proxy).await.unwrap();
            let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(event.response.map(|r| r.status_code.code()), Some(200));
            let filed_under = branches.get(event.index).map(|b| b.dest.addr.to_string());
            assert_eq!(
                filed_under,
                Some(addrs[phone].to_string()),
                "phone {phone}'s answer filed under branch {}",
                event.index
            );
        }
        server.shutdown().await;
    }
}
