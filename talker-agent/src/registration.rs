//! Keeps each SIP account registered: `+sip.instance` (RFC 5626) so the server
//! can tell this device from the account's others and hand out a GRUU, digest
//! authentication, refresh before expiry, back-off and retry when the server is
//! away, and an un-register on shutdown.

use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::registration::{RefreshOutcome, Registration};
use rsipstack::sip::{Uri, typed};
use rsipstack::transaction::endpoint::EndpointInner;
use splitdial_api::AccountState;
use splitdial_sip::headers;
use splitdial_sip::tcp_flow::OutboundFlows;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How long the un-register at shutdown may take.
const UNREGISTER_LIMIT: Duration = Duration::from_secs(3);

/// One account's registration, as the rest of the agent sees it.
#[derive(Debug, Clone)]
pub struct AccountHandle {
    /// `sip:user@server`.
    pub aor: String,
    state: watch::Sender<AccountState>,
}

impl AccountHandle {
    /// The handle of account `aor`, registering.
    pub(crate) fn new(aor: String) -> Self {
        Self {
            aor,
            state: watch::Sender::new(AccountState::Registering),
        }
    }

    /// The current state.
    pub fn state(&self) -> AccountState {
        self.state.borrow().clone()
    }

    /// Watches the state: the receiver learns of every change (a refresh that leaves
    /// the state as it was is none).
    pub fn watch(&self) -> watch::Receiver<AccountState> {
        self.state.subscribe()
    }

    /// Records a new state (the registration task does).
    pub(crate) fn set(&self, state: AccountState) {
        self.state.send_if_modified(|current| {
            let changed = *current != state;
            *current = state;
            changed
        });
    }
}

/// What a registration needs to know.
#[derive(Debug, Clone)]
pub struct RegistrationPlan {
    /// The server's domain.
    pub domain: String,
    /// Where to send REGISTERs.
    pub proxy: std::net::SocketAddr,
    /// Whether to use TCP.
    pub tcp: bool,
    /// Account user.
    pub user: String,
    /// Account password.
    pub password: String,
    /// Lifetime asked for.
    pub expires: u32,
    /// Our contact address (the local SIP endpoint).
    pub contact_addr: std::net::SocketAddr,
    /// The device's `+sip.instance` URN.
    pub instance: String,
}

/// Starts keeping one account registered until `stop` is cancelled; then
/// un-registers (best effort, bounded in time).
pub fn spawn(
    endpoint: Arc<EndpointInner>,
    flows: OutboundFlows,
    plan: RegistrationPlan,
    stop: CancellationToken,
) -> (AccountHandle, tokio::task::JoinHandle<()>) {
    let handle = AccountHandle::new(format!("sip:{}@{}", plan.user, plan.domain));
    let account = handle.clone();
    let task = tokio::spawn(async move {
        if plan.tcp {
            // Our own connection, opened first so the REGISTER takes it: the
            // server reaches this talker over it too.
            flows.ensure(plan.proxy).await;
            let (flows, proxy, stop) = (flows.clone(), plan.proxy, stop.clone());
            tokio::spawn(async move { flows.keep_open(proxy, stop).await });
        }
        let (mut registration, server) = match registration(endpoint, &plan) {
            Ok(ready) => ready,
            Err(reason) => {
                account.set(AccountState::Failed { reason });
                return;
            }
        };
        registration
            .keep_alive(server.clone(), plan.expires, stop, |outcome| {
                record(&account, &plan, &outcome);
            })
            .await;
        unregister(&mut registration, server, &account.aor).await;
        account.set(AccountState::Unregistered);
    });
    (handle, task)
}

/// The account's REGISTER as rsipstack keeps it (our `+sip.instance` contact, the
/// credentials, `Supported: gruu`, sent to the proxy), and the server's URI; why not,
/// when the domain or the contact cannot be read.
fn registration(
    endpoint: Arc<EndpointInner>,
    plan: &RegistrationPlan,
) -> Result<(Registration, Uri), String> {
    let transport = if plan.tcp { ";transport=tcp" } else { "" };
    let server = Uri::try_from(format!("sip:{}{transport}", plan.domain).as_str())
        .map_err(|e| format!("bad server domain: {e}"))?;
    let contact = typed::Contact::parse(&format!(
        "<sip:{}@{}{transport}>;+sip.instance=\"<{}>\"",
        plan.user, plan.contact_addr, plan.instance
    ))
    .map_err(|e| format!("bad contact: {e}"))?;
    let credential = Credential {
        username: plan.user.clone(),
        password: plan.password.clone(),
        // rsipstack ignores this; the realm is pinned to the account's domain,
        // and SHA-256 preferred, by splitdial_sip::digest_choice.
        realm: None,
        auth_username: None,
    };
    let mut registration = Registration::new(endpoint, Some(credential));
    registration.contact = Some(contact);
    registration.outbound_proxy = Some(plan.proxy);
    registration
        .extra_headers
        .push(rsipstack::sip::headers::make_header(
            "Supported",
            "gruu".into(),
        ));
    Ok((registration, server))
}

/// What one REGISTER (or its refresh) came to, in the account's state.
fn record(account: &AccountHandle, plan: &RegistrationPlan, outcome: &RefreshOutcome<'_>) {
    let aor = &account.aor;
    match outcome {
        RefreshOutcome::Registered(response) => {
            let granted = granted_expires(response, &plan.instance).unwrap_or(plan.expires);
            let gruu = public_gruu(response, &plan.instance);
            if !matches!(account.state(), AccountState::Registered { .. }) {
                info!(%aor, expires = granted, "registered");
            }
            account.set(AccountState::Registered {
                expires: granted,
                gruu,
            });
        }
        RefreshOutcome::Rejected(response) => {
            warn!(%aor, status = %response.status_code, "registration refused");
            account.set(AccountState::Failed {
                reason: response.status_code.to_string(),
            });
        }
        RefreshOutcome::Failed(error) => {
            warn!(%aor, %error, "registration failed");
            account.set(AccountState::Failed {
                reason: error.to_string(),
            });
        }
    }
}

/// Un-registers `aor`; a server that is gone must not hold up shutdown.
async fn unregister(registration: &mut Registration, server: Uri, aor: &str) {
    let unregister = registration.register(server, Some(0));
    match tokio::time::timeout(UNREGISTER_LIMIT, unregister).await {
        Ok(Ok(r)) if r.status_code.code() < 300 => info!(%aor, "unregistered"),
        Ok(Ok(r)) => warn!(%aor, status = %r.status_code, "un-register refused"),
        Ok(Err(e)) => warn!(%aor, error = %e, "un-register failed"),
        Err(_) => warn!(%aor, "un-register timed out"),
    }
}

/// The Contact entry of a 200 that is ours (same instance).
fn our_contact(response: &rsipstack::sip::Response, instance: &str) -> Option<String> {
    headers::list(&response.headers, "Contact")
        .into_iter()
        .find(|c| c.contains(instance))
}

fn granted_expires(response: &rsipstack::sip::Response, instance: &str) -> Option<u32> {
    let contact = our_contact(response, instance)?;
    contact
        .split(';')
        .find_map(|p| p.trim().strip_prefix("expires="))
        .and_then(|v| v.trim().parse().ok())
}

fn public_gruu(response: &rsipstack::sip::Response, instance: &str) -> Option<String> {
    let contact = our_contact(response, instance)?;
    let at = contact.find("pub-gruu=\"")? + "pub-gruu=\"".len();
    let rest = &contact[at..];
    Some(rest[..rest.find('"')?].to_owned())
}
