//! The registrar (RFC 3261 §10.3): digest-authenticated REGISTER, expiry limits,
//! several contacts per address of record, un-registration, and GRUUs for
//! devices that register an instance id (RFC 5626, RFC 5627).

use crate::context::Context;
use crate::digest::{Check, Credentials, MD5_REFUSED, md5_refused};
use crate::location::{ContactUpdate, UpdateError};
use rsipstack::sip::{Header, Request, Response, StatusCode, typed};
use rsipstack::transaction::transaction::Transaction;
use splitdial_sip::headers;
use splitdial_sip::wire;
use std::time::{Duration, Instant};
use tracing::{debug, info};

/// Registration lifetime when the client asks for none.
const DEFAULT_EXPIRES: u32 = 3600;

/// Handles one REGISTER server transaction to its final response.
pub async fn handle(context: &Context, mut tx: Transaction) {
    let response = decide(context, &tx.original);
    let status = response.status_code.code();
    if let Err(e) = tx.respond(response).await {
        debug!(error = %e, "could not answer REGISTER");
    }
    debug!(status, "REGISTER answered");
    // Drive the transaction's timers until it ends.
    while tx.receive().await.is_some() {}
}

fn reply(request: &Request, status: u16, reason: &str, extra: Vec<Header>) -> Response {
    wire::response_to(request, status, reason, extra)
}

/// Works out the response to a REGISTER.
pub fn decide(context: &Context, request: &Request) -> Response {
    register(context, request).unwrap_or_else(|refusal| refusal)
}

/// The 200 to a REGISTER that was carried out, or the response that refuses it.
fn register(context: &Context, request: &Request) -> Result<Response, Response> {
    let user = user_of_ours(context, request)?;
    if let Some(challenge) = authenticate(context, request, &user) {
        return Err(challenge);
    }
    let call_id = headers::first(&request.headers, "Call-ID").unwrap_or_default();
    let cseq = headers::cseq_number(&request.headers).unwrap_or(0);
    let default_expires = match headers::first(&request.headers, "Expires") {
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map_err(|_| reply(request, 400, "Bad Expires", vec![]))?,
        None => DEFAULT_EXPIRES,
    };

    let contacts = headers::list(&request.headers, "Contact");
    if contacts.iter().any(|c| c.trim() == "*") {
        if contacts.len() != 1 || default_expires != 0 {
            return Err(reply(request, 400, "Wildcard Needs Expires 0", vec![]));
        }
        context.location.remove_all(&user);
        info!(%user, "unregistered all contacts");
        return Ok(ok(context, request, &user));
    }
    let updates = contact_updates(context, request, &contacts, default_expires)?;
    if !updates.is_empty() {
        match context.location.update(&user, call_id, cseq, &updates) {
            Ok(()) => info!(%user, contacts = updates.len(), "registered"),
            Err(UpdateError::OutOfOrder) => {
                return Err(reply(request, 500, "Out Of Order Register", vec![]));
            }
        }
    }
    Ok(ok(context, request, &user))
}

/// The user a REGISTER is for: the user part of its `To`, in our domain (as
/// its Request-URI must be), with no extension required but GRUU.
fn user_of_ours(context: &Context, request: &Request) -> Result<String, Response> {
    if !context.is_us(&request.uri.host_with_port) {
        return Err(reply(request, 403, "Not Our Domain", vec![]));
    }
    let to = headers::first(&request.headers, "To").unwrap_or_default();
    let Ok(to) = typed::To::parse(to) else {
        return Err(reply(request, 400, "Bad To", vec![]));
    };
    if !context.is_us(&to.uri.host_with_port) {
        return Err(reply(request, 403, "Not Our Domain", vec![]));
    }
    let Some(user) = to.uri.user().map(str::to_owned) else {
        return Err(reply(request, 400, "No User In To", vec![]));
    };
    let unsupported: Vec<String> = headers::list(&request.headers, "Require")
        .into_iter()
        .filter(|o| !o.eq_ignore_ascii_case("gruu"))
        .collect();
    if !unsupported.is_empty() {
        let h = rsipstack::sip::headers::make_header("Unsupported", unsupported.join(", "));
        return Err(reply(request, 420, "Bad Extension", vec![h]));
    }
    Ok(user)
}

/// The binding changes `contacts` ask for, each expiring after its own
/// `expires` or else `default_expires`, cut to our limits: shorter than the
/// minimum (but not 0, which removes) is refused with 423.
fn contact_updates(
    context: &Context,
    request: &Request,
    contacts: &[String],
    default_expires: u32,
) -> Result<Vec<ContactUpdate>, Response> {
    let mut updates = Vec::new();
    for value in contacts {
        let Ok(contact) = typed::Contact::parse(value) else {
            return Err(reply(request, 400, "Bad Contact", vec![]));
        };
        let expires = contact.expires().unwrap_or(default_expires);
        if expires != 0 && expires < context.config.min_expires {
            let h = rsipstack::sip::headers::make_header(
                "Min-Expires",
                context.config.min_expires.to_string(),
            );
            return Err(reply(request, 423, "Interval Too Brief", vec![h]));
        }
        let expires = expires.min(context.config.max_expires);
        updates.push(ContactUpdate {
            uri: contact.uri.to_string(),
            instance: instance_of(value),
            expires: Duration::from_secs(u64::from(expires)),
            q: contact.q().unwrap_or(1.0),
        });
    }
    Ok(updates)
}

/// Checks digest credentials when a users file is in force. `Some(response)`
/// is a challenge or refusal to send instead of going on.
fn authenticate(context: &Context, request: &Request, user: &str) -> Option<Response> {
    let users = context.config.users.as_ref()?;
    let challenge = |stale: bool| {
        let hs = context
            .digest
            .challenges(stale, users.challenge_set())
            .into_iter()
            .map(|c| rsipstack::sip::headers::make_header("WWW-Authenticate", c))
            .collect();
        reply(request, 401, "Unauthorized", hs)
    };
    let credentials = headers::values(&request.headers, "Authorization")
        .filter_map(Credentials::parse)
        .find(|c| c.realm() == Some(context.digest.realm()));
    let Some(credentials) = credentials else {
        return Some(challenge(false));
    };
    let username = credentials.username().unwrap_or_default();
    if md5_refused(users, &credentials) {
        info!(user = %username, "REGISTER answered with MD5 for an account not marked md5");
        return Some(reply(request, 403, MD5_REFUSED, vec![]));
    }
    let (Some(secrets), Some(algorithm)) = (users.get(username), credentials.algorithm()) else {
        return Some(challenge(false));
    };
    let Some(ha1) = secrets.ha1(algorithm) else {
        return Some(challenge(false));
    };
    match context
        .digest
        .check(&credentials, "REGISTER", &request.uri.to_string(), ha1)
    {
        Check::UriMismatch => Some(reply(
            request,
            400,
            "Digest URI Does Not Match Request-URI",
            vec![],
        )),
        Check::Valid if username == user => None,
        Check::Valid => Some(reply(request, 403, "Credentials Do Not Match To", vec![])),
        Check::Stale => Some(challenge(true)),
        Check::Invalid => {
            info!(user = %username, "REGISTER with wrong credentials");
            Some(challenge(false))
        }
    }
}

/// 200 OK listing every current binding, with GRUUs for instances.
fn ok(context: &Context, request: &Request, user: &str) -> Response {
    let now = Instant::now();
    let wants_gruu = headers::list(&request.headers, "Supported")
        .iter()
        .chain(headers::list(&request.headers, "Require").iter())
        .any(|o| o.eq_ignore_ascii_case("gruu"));
    let mut extra = Vec::new();
    for binding in context.location.lookup(user) {
        let mut value = format!("<{}>;expires={}", binding.uri, binding.remaining(now));
        if let Some(instance) = &binding.instance {
            value.push_str(&format!(";+sip.instance=\"<{instance}>\""));
            if wants_gruu {
                value.push_str(&format!(
                    ";pub-gruu=\"{};gr={instance}\"",
                    context.aor(user)
                ));
            }
        }
        extra.push(rsipstack::sip::headers::make_header("Contact", value));
    }
    if wants_gruu {
        extra.push(rsipstack::sip::headers::make_header(
            "Supported",
            "gruu".into(),
        ));
    }
    let mut response = reply(request, 200, "OK", extra);
    response.status_code = StatusCode::OK;
    response
}

/// The `+sip.instance` of a Contact value, without quotes and angle brackets.
pub fn instance_of(contact_value: &str) -> Option<String> {
    let lower = contact_value.to_ascii_lowercase();
    let at = lower.find("+sip.instance=")?;
    let rest = &contact_value[at + "+sip.instance=".len()..];
    let rest = rest.trim_start_matches('"').trim_start_matches('<');
    let end = rest.find(['>', '"', ';']).unwrap_or(rest.len());
    let instance = rest[..end].trim();
    (!instance.is_empty()).then(|| instance.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_instance_ids() {
        assert_eq!(
            instance_of(
                "<sip:a@1.2.3.4>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";expires=60"
            ),
            Some("urn:uuid:00000000-0000-1000-8000-000A95A0E128".into())
        );
        assert_eq!(instance_of("<sip:a@1.2.3.4>;expires=60"), None);
        assert_eq!(instance_of("<sip:a@1.2.3.4>;+sip.instance="), None);
    }
}
