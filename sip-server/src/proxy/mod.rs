//! The stateful proxy core (RFC 3261 §16): decide where a request goes, fork it
//! to every target, relay provisional responses, pick the best final response,
//! and cancel the other branches once one answers.

use crate::context::{Context, RING_LIMIT};
use crate::digest::{Check, Credentials};
use crate::hints;
use crate::location::Binding;
use crate::routing::{self, Refusal};
use rsipstack::sip::{
    Header, Method, Request, Response, SipMessage, StatusCode, Transport, Uri, typed,
};
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

/// Handles one server transaction (anything but REGISTER) to its end.
pub async fn handle(context: Arc<Context>, mut tx: Transaction) {
    let plan = match plan(&context, &tx) {
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
    forward(context, tx, plan).await;
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

/// Where `tx`'s request goes: loose-routed in its dialog, or to the bindings of
/// the user of ours it is for, once its caller passed the trust rules.
fn plan(context: &Context, tx: &Transaction) -> Result<Plan, Answer> {
    let transport = tx
        .connection
        .as_ref()
        .map_or(Transport::Udp, |c| c.transport());
    let source = tx
        .connection
        .as_ref()
        .and_then(|c| c.get_remote_addr())
        .cloned();
    let trusted = context.is_trusted(transport, source.as_ref());
    let request = tx.original.clone();
    let to = headers::first(&request.headers, "To").unwrap_or_default();
    if wire::has_tag(to) {
        plan_in_dialog(context, request, trusted)
    } else {
        plan_out_of_dialog(context, request, trusted)
    }
}

/// An in-dialog request goes to its one next hop, by our signed Route.
fn plan_in_dialog(context: &Context, mut request: Request, trusted: bool) -> Result<Plan, Answer> {
    let next = routing::in_dialog_next_hop(context, &mut request)?;
    if !trusted {
        hints::strip_auto_answer(&mut request.headers);
    }
    Ok(Plan {
        branches: vec![(request, next)],
        record_route: false,
    })
}

/// An out-of-dialog request forks to every binding of the user of ours it is
/// for (or of the one device its GRUU names).
fn plan_out_of_dialog(
    context: &Context,
    mut request: Request,
    trusted: bool,
) -> Result<Plan, Answer> {
    let user = user_of_ours(context, &mut request)?;
    if !trusted {
        let identity = authenticate(context, &request)?;
        consume_credentials(context, &mut request);
        hints::strip_auto_answer(&mut request.headers);
        hints::assert_identity(&mut request.headers, identity.as_deref());
    }
    routing::decrement_max_forwards(&mut request)?;
    let bindings = bindings_for(context, &user, gruu_instance(&request.uri).as_deref())?;
    let branches = branches_to(&request, bindings)?;
    let record_route = matches!(
        request.method,
        Method::Invite | Method::Subscribe | Method::Refer | Method::Notify
    );
    Ok(Plan {
        branches,
        record_route,
    })
}

/// The user an out-of-dialog request is for, once its preloaded Route entries
/// naming us are popped: we route only toward our own users, so any other
/// Route or domain is refused, and a request without a user is for the server
/// itself.
fn user_of_ours(context: &Context, request: &mut Request) -> Result<String, Answer> {
    routing::pop_our_routes(context, request)?;
    if !routing::route_set(request).is_empty() {
        return Err(Refusal::new(403, "Relaying Denied").into());
    }
    if !context.is_us(&request.uri.host_with_port) {
        return Err(Refusal::new(403, "Relaying Denied").into());
    }
    let Some(user) = request.uri.user().map(str::to_owned) else {
        return Err(to_server_itself(request));
    };
    if request.method == Method::Cancel {
        return Err(Refusal::new(481, "Call/Transaction Does Not Exist").into());
    }
    Ok(user)
}

/// The `gr` parameter of a GRUU Request-URI: the one device instance meant.
fn gruu_instance(uri: &Uri) -> Option<String> {
    uri.params.iter().find_map(|p| match p {
        rsipstack::sip::Param::Other(name, Some(value))
            if name.to_string().eq_ignore_ascii_case("gr") =>
        {
            Some(value.to_string())
        }
        _ => None,
    })
}

/// `user`'s live bindings (only `instance`'s when a GRUU names one): 404 for
/// a user we do not have, 480 for one with no binding.
fn bindings_for(
    context: &Context,
    user: &str,
    instance: Option<&str>,
) -> Result<Vec<Binding>, Answer> {
    let mut bindings = context.location.lookup(user);
    if let Some(instance) = instance {
        bindings.retain(|b| b.instance.as_deref() == Some(instance));
    }
    if bindings.is_empty() {
        return Err(if context.user_exists(user) {
            Refusal::new(480, "Temporarily Unavailable")
        } else {
            Refusal::new(404, "Not Found")
        }
        .into());
    }
    Ok(bindings)
}

/// One copy of `request` per binding, addressed to its contact; a contact we
/// cannot send to is left out, and none left is a 480.
fn branches_to(
    request: &Request,
    bindings: Vec<Binding>,
) -> Result<Vec<(Request, SipAddr)>, Answer> {
    let mut branches = Vec::new();
    for binding in bindings {
        let Ok(target) = Uri::try_from(binding.uri.as_str()) else {
            continue;
        };
        let Ok(next) = routing::address_of(&target) else {
            continue;
        };
        let mut branch = request.clone();
        branch.uri = target;
        branches.push((branch, next));
    }
    if branches.is_empty() {
        return Err(Refusal::new(480, "Temporarily Unavailable").into());
    }
    Ok(branches)
}

/// Body types the server accepts in requests to itself (it reads none of them:
/// an OPTIONS body carries nothing the server needs).
const ACCEPTED_BODIES: [&str; 4] = [
    "application/sdp",
    "multipart/mixed",
    "multipart/alternative",
    "text/plain",
];

/// A request addressed to the server itself (no user part). We act as a UAS
/// here, so the UAS rules apply: unknown `Require` gets 420 (RFC 3261 §8.2.2.3),
/// a body we cannot read gets 415 (§8.2.3).
fn to_server_itself(request: &Request) -> Answer {
    let make = rsipstack::sip::headers::make_header;
    if request.method != Method::Options {
        return Answer::Refuse(Refusal::new(404, "Not Found"));
    }
    let required = headers::list(&request.headers, "Require");
    if !required.is_empty() {
        let unsupported = make("Unsupported", required.join(", "));
        return Answer::Respond(Box::new(wire::response_to(
            request,
            420,
            "Bad Extension",
            vec![unsupported],
        )));
    }
    let content_type = headers::first(&request.headers, "Content-Type").unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    let readable = ACCEPTED_BODIES
        .iter()
        .any(|t| t.eq_ignore_ascii_case(media_type));
    if !request.body.is_empty() && !readable {
        return Answer::Respond(Box::new(wire::response_to(
            request,
            415,
            "Unsupported Media Type",
            vec![make("Accept", ACCEPTED_BODIES.join(", "))],
        )));
    }
    let mut response = wire::response_to(
        request,
        200,
        "OK",
        vec![
            make(
                "Allow",
                "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, REFER, NOTIFY, SUBSCRIBE, UPDATE, INFO, MESSAGE, PRACK".into(),
            ),
            make("Accept", ACCEPTED_BODIES.join(", ")),
            make("Supported", "gruu".into()),
        ],
    );
    response.status_code = StatusCode::OK;
    Answer::Respond(Box::new(response))
}

/// Proxy authentication of out-of-dialog requests when a users file is in force.
/// Returns the identity to assert, or the 407 challenge / 403 refusal.
fn authenticate(context: &Context, request: &Request) -> Result<Option<String>, Answer> {
    let Some(users) = context.config.users.as_ref() else {
        return Ok(None); // Open mode: nobody is authenticated, nothing asserted.
    };
    if matches!(request.method, Method::Ack | Method::Cancel) {
        return Ok(None);
    }
    let caller = headers::first(&request.headers, "From")
        .and_then(|f| typed::From::parse(f).ok())
        .and_then(|f| f.uri.user().map(str::to_owned))
        .unwrap_or_default();
    let offer = users.algorithms_for(&caller);
    let challenge = |stale: bool| {
        let hs = context
            .digest
            .challenges(stale, &offer)
            .into_iter()
            .map(|c| rsipstack::sip::headers::make_header("Proxy-Authenticate", c))
            .collect();
        Answer::Respond(Box::new(wire::response_to(
            request,
            407,
            "Proxy Authentication Required",
            hs,
        )))
    };
    let credentials = headers::values(&request.headers, "Proxy-Authorization")
        .filter_map(Credentials::parse)
        .find(|c| c.realm() == Some(context.digest.realm()));
    let Some(credentials) = credentials else {
        return Err(challenge(false));
    };
    let username = credentials.username().unwrap_or_default().to_owned();
    let (Some(secrets), Some(algorithm)) = (users.get(&username), credentials.algorithm()) else {
        return Err(challenge(false));
    };
    let Some(ha1) = secrets.ha1(algorithm) else {
        return Err(challenge(false));
    };
    match context
        .digest
        .check(&credentials, &request.method.to_string(), ha1)
    {
        Check::Valid => {}
        Check::Stale => return Err(challenge(true)),
        Check::Invalid => return Err(challenge(false)),
    }
    let from_user = headers::first(&request.headers, "From")
        .and_then(|f| typed::From::parse(f).ok())
        .and_then(|f| f.uri.user().map(str::to_owned));
    if from_user.as_deref() != Some(username.as_str()) {
        return Err(Refusal::new(403, "From Does Not Match Credentials").into());
    }
    Ok(Some(context.aor(&username)))
}

/// Removes the Proxy-Authorization entries meant for our realm (§22.3: they are
/// ours to consume); credentials for other realms stay.
fn consume_credentials(context: &Context, request: &mut Request) {
    let values: Vec<String> = headers::values(&request.headers, "Proxy-Authorization")
        .map(str::to_owned)
        .collect();
    headers::remove(&mut request.headers, "Proxy-Authorization");
    for v in values {
        let ours =
            Credentials::parse(&v).is_some_and(|c| c.realm() == Some(context.digest.realm()));
        if !ours {
            headers::push(&mut request.headers, "Proxy-Authorization", v);
        }
    }
}

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
async fn forward(context: Arc<Context>, mut server_tx: Transaction, plan: Plan) {
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
