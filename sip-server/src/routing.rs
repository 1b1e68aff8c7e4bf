//! Route-set handling shared by the stateful proxy and the stateless paths:
//! loose routing (RFC 3261 §16.4), next-hop choice without DNS, Via handling for
//! forwarded responses.

use crate::context::Context;
use crate::record_route::RouteOwner;
use rsipstack::sip::uri::ParamsExt;
use rsipstack::sip::{Host, Request, Response, SipMessage, Transport, Uri, typed};
use rsipstack::transport::SipAddr;
use splitdial_sip::headers;

/// A request we will not route, and the status that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Status code to answer with.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
}

impl Refusal {
    /// A refusal with `status` and `reason`.
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
        }
    }
}

/// The Route entries of a request, in order.
pub fn route_set(request: &Request) -> Vec<String> {
    headers::list(&request.headers, "Route")
}

/// Replaces the Route headers of a request with `routes` (one line each).
pub fn set_route_set(request: &mut Request, routes: &[String]) {
    headers::remove(&mut request.headers, "Route");
    for r in routes {
        headers::push(&mut request.headers, "Route", r.clone());
    }
}

/// Puts `ours` on top of the request's Record-Route list.
pub fn push_record_routes(request: &mut Request, ours: &[String]) {
    let existing = headers::list(&request.headers, "Record-Route");
    headers::remove(&mut request.headers, "Record-Route");
    for r in ours.iter().chain(existing.iter()) {
        headers::push(&mut request.headers, "Record-Route", r.clone());
    }
}

/// The Route entries [`pop_our_routes`] removed from the top of a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoppedRoutes {
    /// Our record-routes, with a valid signature for this dialog.
    pub signed: usize,
    /// Unsigned routes naming us (a UA's outbound-proxy setting): they prove
    /// no dialog.
    pub preloaded: usize,
}

/// Pops the Route entries on top that name us (RFC 3261 §16.4): our signed
/// record-routes and unsigned routes naming our address or domain (a preloaded
/// outbound-proxy route). A Route that carries our signature parameter with a
/// bad signature is refused (404): it is not a dialog we record-routed.
pub fn pop_our_routes(context: &Context, request: &mut Request) -> Result<PoppedRoutes, Refusal> {
    let call_id = headers::first(&request.headers, "Call-ID")
        .unwrap_or_default()
        .to_owned();
    let mut routes = route_set(request);
    let mut popped = PoppedRoutes::default();
    while let Some(top) = routes.first() {
        match context.routes.owner(top, &call_id) {
            RouteOwner::Ours => popped.signed += 1,
            RouteOwner::Preloaded => popped.preloaded += 1,
            RouteOwner::Forged => return Err(Refusal::new(404, "Unknown Route")),
            RouteOwner::Foreign => break,
        }
        routes.remove(0);
    }
    if popped != PoppedRoutes::default() {
        set_route_set(request, &routes);
    }
    Ok(popped)
}

/// Decrements Max-Forwards (70 when absent); 483 when it is already zero.
pub fn decrement_max_forwards(request: &mut Request) -> Result<(), Refusal> {
    let current = headers::first(&request.headers, "Max-Forwards")
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(70);
    if current == 0 {
        return Err(Refusal::new(483, "Too Many Hops"));
    }
    headers::remove(&mut request.headers, "Max-Forwards");
    headers::push(
        &mut request.headers,
        "Max-Forwards",
        (current - 1).to_string(),
    );
    Ok(())
}

/// The transport and address to reach `uri`: IP literals only (we never look
/// a name up), UDP unless the URI says `transport=tcp`.
pub fn address_of(uri: &Uri) -> Result<SipAddr, Refusal> {
    if !matches!(uri.host_with_port.host, Host::IpAddr(_)) {
        return Err(Refusal::new(404, "Not Found"));
    }
    let transport = match uri.transport() {
        Some(Transport::Tcp) => Transport::Tcp,
        Some(Transport::Udp) | None => Transport::Udp,
        Some(_) => return Err(Refusal::new(404, "Unsupported Transport")),
    };
    let mut addr = uri.host_with_port.clone();
    if addr.port.is_none() {
        addr.port = Some(5060.into());
    }
    Ok(SipAddr {
        r#type: Some(transport),
        addr,
    })
}

/// For a request inside a dialog we record-routed: pops our Route entries
/// (at least one of them must be our genuine signed record-route; unsigned
/// routes naming us are popped too but prove nothing), decrements
/// Max-Forwards, and returns the next hop (the next Route, else the Request-URI).
pub fn in_dialog_next_hop(context: &Context, request: &mut Request) -> Result<SipAddr, Refusal> {
    if pop_our_routes(context, request)?.signed == 0 {
        return Err(Refusal::new(404, "Not A Dialog Routed Here"));
    }
    decrement_max_forwards(request)?;
    match route_set(request).first() {
        Some(next) => {
            let route = typed::Route::parse(next).map_err(|_| Refusal::new(400, "Bad Route"))?;
            address_of(&route.uri)
        }
        None => address_of(&request.uri),
    }
}

/// Forwards a response upstream without a transaction: pops our Via and sends
/// it where the next Via says (its `received`/`rport` when present).
pub async fn forward_response_statelessly(
    context: &Context,
    mut response: Response,
) -> crate::Result<()> {
    let vias = headers::list(&response.headers, "Via");
    let (Some(top), Some(next)) = (vias.first(), vias.get(1)) else {
        return Err(crate::Error::Routing(
            "response with no upstream Via".into(),
        ));
    };
    let top = typed::Via::parse(top).map_err(|e| crate::Error::Routing(e.to_string()))?;
    if !context.is_us(&top.uri.host_with_port) {
        return Err(crate::Error::Routing("top Via is not ours".into()));
    }
    let next_via = typed::Via::parse(next).map_err(|e| crate::Error::Routing(e.to_string()))?;
    let dest = via_destination(&next_via);
    headers::remove(&mut response.headers, "Via");
    for v in &vias[1..] {
        headers::push(&mut response.headers, "Via", v.clone());
    }
    context
        .send_stateless(SipMessage::Response(response), &dest)
        .await
}

/// Where responses for a Via go (RFC 3261 §18.2.2, RFC 3581).
pub fn via_destination(via: &typed::Via) -> SipAddr {
    let mut addr = via.uri.host_with_port.clone();
    if let Some(Ok(ip)) = via.received() {
        addr.host = Host::IpAddr(ip);
    }
    if let Some(Some(port)) = via.rport() {
        addr.port = Some(port.into());
    }
    if addr.port.is_none() {
        addr.port = Some(5060.into());
    }
    SipAddr {
        r#type: Some(via.transport),
        addr,
    }
}

/// Removes our Via from a response that a branch transaction handed us.
pub fn pop_top_via(response: &mut Response) {
    let vias = headers::list(&response.headers, "Via");
    headers::remove(&mut response.headers, "Via");
    for v in vias.iter().skip(1) {
        headers::push(&mut response.headers, "Via", v.clone());
    }
}
