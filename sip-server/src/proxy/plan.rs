//! Where a request goes (docs/sip-server.md, "Proxy", rules 2 to 6): loose
//! routing in a dialog; otherwise only toward a user of ours, after the trust
//! rules (proxy authentication, asserted identity, auto-answer hints), to
//! every binding of that user or the one device its GRUU names.

use super::{Answer, Plan};
use crate::context::Context;
use crate::digest::{Check, Credentials, MD5_REFUSED, md5_refused};
use crate::hints;
use crate::location::Binding;
use crate::routing::{self, Refusal};
use rsipstack::sip::{Method, Request, StatusCode, Transport, Uri, typed};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipAddr;
use splitdial_sip::headers;
use splitdial_sip::wire;

/// Where `tx`'s request goes: loose-routed in its dialog, or to the bindings of
/// the user of ours it is for, once its caller passed the trust rules.
pub(super) fn plan(context: &Context, tx: &Transaction) -> Result<Plan, Answer> {
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
    let challenge = |stale: bool| {
        let hs = context
            .digest
            .challenges(stale, users.challenge_set())
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
    if md5_refused(users, &credentials) {
        return Err(Refusal::new(403, MD5_REFUSED).into());
    }
    let (Some(secrets), Some(algorithm)) = (users.get(&username), credentials.algorithm()) else {
        return Err(challenge(false));
    };
    let Some(ha1) = secrets.ha1(algorithm) else {
        return Err(challenge(false));
    };
    match context.digest.check(
        &credentials,
        &request.method.to_string(),
        &request.uri.to_string(),
        ha1,
    ) {
        Check::UriMismatch => {
            return Err(Refusal::new(400, "Digest URI Does Not Match Request-URI").into());
        }
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
