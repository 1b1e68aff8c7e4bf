//! The call controller: a SIP user agent in the matcher that runs DESIGN.md's
//! click-to-dial flow (RFC 5359 §2.18 style, on RFC 3261 and RFC 3515) through
//! one SIP server, on the `splitdial_sip` endpoint (rsipstack's transactions
//! and dialogs do the SIP work; nothing here runs transaction timers).
//!
//! For each [`CallPlan`]:
//!
//! 1. A control INVITE goes to the caller's talker (its GRUU when the plan has
//!    one, else its AOR) through the server's proxy, over TCP (RFC 3261
//!    §18.1.1: with the token the request exceeds 1300 bytes), carrying a fresh
//!    `Splitdial-Token` (`act=control`), the auto-answer hints
//!    (`Call-Info: <sip:SERVER>;answer-after=0`, `Answer-Mode: Auto`) and an
//!    inactive SDP offer. A 200 without `Allow: REFER` ends the call at once
//!    (`no_refer_support`).
//! 2. A REFER in that dialog names the callee, with its own token
//!    (`act=refer`, `target` = the Refer-To). The NOTIFYs (sipfrag) become
//!    [`ControllerEvent`]s; every NOTIFY is answered 200, also before the 202
//!    and after the leg ended (RFC 5057). 401/407 that the talker retries are
//!    not reported.
//! 3. [`CallControl::add_party`] sends another REFER in the same dialog; the
//!    NOTIFYs of each REFER after the first carry `Event: refer;id=<CSeq>`
//!    (RFC 3515 §2.4.6), which routes them to their party.
//! 4. Hang-up is a BYE on the control leg (a CANCEL while the control INVITE is
//!    still pending); the talker then ends the referred calls.
//!
//! **Ended or handed off.** The talker may end the control leg itself. Our
//! talker agent does so only once every referred call is over, and before that
//! it reports each party that hung up after connecting with one more NOTIFY
//! (sipfrag 200, after the subscription had already terminated with 200). A
//! third-party phone used as a talker instead ends the control leg right after
//! its transfer succeeded, with its callee still connected. So: when the talker
//! ends the control leg while at least one party is connected and not reported
//! gone, the call is [`ControllerEvent::HandedOff`]; when every connected party
//! was reported gone, it is `Ended { callee_hung_up }`; when none ever
//! connected, `Ended { talker_hung_up }`. Some phones (baresip) instead wait
//! for the transferor to hang up, as RFC 5589 §6 allows: for a plan with
//! [`CallPlan::hand_off_after_transfer`] the controller sends that BYE itself
//! when the first party connects, and the call is `HandedOff` all the same.
//!
//! **Session timers** (RFC 4028, `session_refresh`): the control INVITE
//! carries `Supported: timer`, `Session-Expires: 90;refresher=uac` and
//! `Min-SE: 90`. When the talker's 2xx carries `Session-Expires` (refresher
//! `uac` or none), the call's task sends an UPDATE without SDP every half
//! interval (45 s), adopting the interval each 2xx names. A refresh answered
//! 408 or 481, or not at all, means the talker no longer holds the leg: the
//! call is `LostControl` when a party is connected (it may go on between the
//! talkers), else `Ended { error }`; no BYE is sent (to our agent a BYE on the
//! control leg means "hang up"). Other failures are retried after another
//! half interval; a 422 is retried at once with the talker's `Min-SE`. The
//! refresh stops with the call's task. A 422 to the control INVITE itself is
//! reported as `talker_rejected (422)` (not retried: 90 s is the smallest
//! interval anyone may ask for, so only a talker wanting longer refuses it).
//!
//! Re-INVITEs and UPDATEs from the talker on the control leg are answered
//! inactive (or 200 without SDP).

mod call;
mod events;
mod probe;
mod session_refresh;

pub use events::{ControllerEvent, EndReason, PartyId};
pub use probe::{Prober, Reachability};

use rsipstack::dialog::dialog::Dialog;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::{Method, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use splitdial_sip::call_token::CurrentIssuer;
use splitdial_sip::endpoint::{self, EndpointConfig};
use splitdial_sip::headers;
use splitdial_sip::uri_match::SipUri;
use splitdial_sip::wire::has_tag;
use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// How long the talker may take to answer the control INVITE, unless the plan
/// says otherwise.
pub const DEFAULT_TALKER_ANSWER_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the callee may ring before the call is given up, unless the plan
/// says otherwise.
pub const DEFAULT_CALLEE_ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// The most parties one call may have (bounds each call's events and memory).
pub const MAX_PARTIES: usize = 8;
/// Room in each call's event channel: enough for every event a call with
/// [`MAX_PARTIES`] parties can produce.
pub const EVENT_CAPACITY: usize = 64;
/// How long a Call-ID of an ended control leg is remembered, so that late
/// NOTIFYs and BYEs for it are answered 200 rather than 481 (64·T1).
const REMEMBER_ENDED: Duration = Duration::from_secs(32);
/// The most ended Call-IDs remembered at once.
const REMEMBER_MAX: usize = 4096;
/// Methods the controller accepts in a control dialog.
pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY, UPDATE";

/// Errors of the controller.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The SIP endpoint could not be bound or used.
    #[error("SIP endpoint: {0}")]
    Sip(Box<splitdial_sip::Error>),
    /// A URI in the plan or a party URI is not a plain SIP URI.
    #[error("{what} {uri:?} is not a plain sip: URI")]
    InvalidUri {
        /// Which URI (`caller_target`, `callee_uri`, `party`...).
        what: &'static str,
        /// The value given.
        uri: String,
    },
    /// The SIP stack refused to build or send the control INVITE.
    #[error("cannot start the control leg: {0}")]
    Stack(String),
    /// The call is over; it takes no more commands.
    #[error("the call is over")]
    CallOver,
    /// The call already has [`MAX_PARTIES`] parties.
    #[error("a call has at most {MAX_PARTIES} parties")]
    TooManyParties,
    /// The controller is shutting down and places no more calls.
    #[error("the controller is shutting down")]
    ShuttingDown,
}

impl From<splitdial_sip::Error> for ControllerError {
    fn from(e: splitdial_sip::Error) -> Self {
        Self::Sip(Box::new(e))
    }
}

/// How to start the controller.
pub struct ControllerConfig {
    /// Address of the SIP endpoint (UDP and TCP); a concrete IP, port 0 picks
    /// one (tests use `127.0.0.1:0`). Its IP goes into Via, Contact and SDP.
    pub listen: SocketAddr,
    /// Mints the call tokens (the matcher's key in force: a rotation swaps it).
    pub issuer: CurrentIssuer,
    /// User-Agent header value.
    pub user_agent: String,
}

/// The transport toward a server's proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SipTransport {
    /// TCP (the default: control requests exceed 1300 bytes, and servers trust
    /// the controller by address only over TCP).
    #[default]
    Tcp,
    /// UDP (only for a server that cannot do TCP).
    Udp,
}

/// One click-to-dial call to place: who, through which server, how long to wait.
#[derive(Debug, Clone)]
pub struct CallPlan {
    /// The matcher's call id (the tokens' `call` claim).
    pub call_id: String,
    /// The SIP server's domain (`Call-Info: <sip:DOMAIN>;answer-after=0`).
    pub server_domain: String,
    /// The server's proxy address, where every request goes first.
    pub proxy: SocketAddr,
    /// The transport toward the proxy.
    pub transport: SipTransport,
    /// Our From URI, e.g. `sip:splitdial@DOMAIN`.
    pub controller_uri: String,
    /// The caller's talker id (the tokens' audience).
    pub caller_talker_id: String,
    /// Where the control INVITE goes: the talker's GRUU when known, else the
    /// account's AOR.
    pub caller_target: String,
    /// The callee's address on the same server (party 1).
    pub callee_uri: String,
    /// How long the talker may take to answer the control INVITE.
    pub talker_answer_timeout: Duration,
    /// How long the callee may take to answer, from the first REFER.
    pub callee_answer_timeout: Duration,
    /// The caller's talker is a third-party SIP phone: once its transfer to
    /// the callee succeeded the controller ends the control leg itself, as the
    /// transferor of a blind transfer does (RFC 5589 §6), and the call is
    /// handed off. Such a phone cannot end its transferred call when the
    /// control leg ends, so keeping the leg would only offer a hang-up that
    /// does nothing.
    pub hand_off_after_transfer: bool,
}

/// Commands a call's task takes.
pub(crate) enum Command {
    HangUp,
    AddParty {
        uri: String,
        reply: oneshot::Sender<Result<PartyId, ControllerError>>,
    },
}

/// Controls one placed call (cheap to clone; the call's task owns the SIP side).
#[derive(Clone)]
pub struct CallControl {
    commands: mpsc::UnboundedSender<Command>,
    sip_call_id: String,
}

impl CallControl {
    /// Hangs the call up: BYE on the control leg, or CANCEL while the talker has
    /// not answered yet. The call reports `Ended { hung_up }` when done.
    pub fn hang_up(&self) -> Result<(), ControllerError> {
        self.commands
            .send(Command::HangUp)
            .map_err(|_| ControllerError::CallOver)
    }

    /// Adds a party: another REFER (its own token) in the control dialog. Its
    /// progress comes as events for the returned party id. Before the talker
    /// answered, the REFER waits until it has.
    pub async fn add_party(&self, uri: &str) -> Result<PartyId, ControllerError> {
        check_sip_uri("party", uri)?;
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::AddParty {
                uri: uri.to_owned(),
                reply,
            })
            .map_err(|_| ControllerError::CallOver)?;
        answer.await.map_err(|_| ControllerError::CallOver)?
    }

    /// The SIP Call-ID of the control leg.
    pub fn sip_call_id(&self) -> &str {
        &self.sip_call_id
    }
}

/// A placed call: its events and its controls.
pub struct CallHandle {
    /// The matcher's call id.
    pub call_id: String,
    /// Events in order; the last one is `HandedOff`, `LostControl` or `Ended`, after which the
    /// channel closes.
    pub events: mpsc::Receiver<ControllerEvent>,
    /// Hang-up and add-party.
    pub control: CallControl,
}

impl CallHandle {
    /// Hangs the call up (see [`CallControl::hang_up`]).
    pub fn hang_up(&self) -> Result<(), ControllerError> {
        self.control.hang_up()
    }

    /// Adds a party (see [`CallControl::add_party`]).
    pub async fn add_party(&self, uri: &str) -> Result<PartyId, ControllerError> {
        self.control.add_party(uri).await
    }
}

/// Control-leg Call-IDs the controller knows: live ones, and ended ones for a
/// while (late NOTIFYs and BYEs for them are answered 200).
#[derive(Default)]
struct KnownCalls {
    live: HashSet<String>,
    ended: VecDeque<(String, Instant)>,
    tasks: Vec<JoinHandle<()>>,
}

/// What the request handlers and the call tasks share.
pub(crate) struct Shared {
    pub(crate) dialogs: Arc<DialogLayer>,
    pub(crate) issuer: CurrentIssuer,
    pub(crate) local: SocketAddr,
    /// Our TCP connections to the servers' proxies (Nagle off).
    pub(crate) flows: splitdial_sip::tcp_flow::OutboundFlows,
    /// Cancelled at shutdown: every call ends its control leg.
    pub(crate) stop: CancellationToken,
    known: Mutex<KnownCalls>,
}

impl Shared {
    fn known(&self) -> MutexGuard<'_, KnownCalls> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `call_id` is a control leg of ours, live or recently ended.
    fn knows(&self, call_id: &str) -> bool {
        let mut known = self.known();
        let now = Instant::now();
        while known
            .ended
            .front()
            .is_some_and(|(_, at)| now.duration_since(*at) > REMEMBER_ENDED)
        {
            known.ended.pop_front();
        }
        known.live.contains(call_id) || known.ended.iter().any(|(id, _)| id == call_id)
    }

    /// Whether `call_id` is a control leg of ours still running.
    fn is_live(&self, call_id: &str) -> bool {
        self.known().live.contains(call_id)
    }

    /// Marks a control leg ended.
    pub(crate) fn forget(&self, call_id: &str) {
        let mut known = self.known();
        known.live.remove(call_id);
        if known.ended.len() >= REMEMBER_MAX {
            known.ended.pop_front();
        }
        known.ended.push_back((call_id.to_owned(), Instant::now()));
    }
}

/// The running controller.
pub struct Controller {
    shared: Arc<Shared>,
    endpoint_cancel: CancellationToken,
    endpoint_task: JoinHandle<()>,
}

impl Controller {
    /// Binds the SIP endpoint and starts serving.
    pub async fn start(config: ControllerConfig) -> Result<Self, ControllerError> {
        let endpoint_cancel = CancellationToken::new();
        let bound = endpoint::bind(EndpointConfig {
            listen: config.listen,
            user_agent: config.user_agent,
            proxy: false,
            inspector: None,
            cancel: endpoint_cancel.clone(),
            known_domains: Vec::new(),
        })
        .await?;
        let endpoint = bound.endpoint;
        let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        let shared = Arc::new(Shared {
            dialogs,
            issuer: config.issuer,
            local: bound.local,
            flows: bound.flows,
            stop: CancellationToken::new(),
            known: Mutex::new(KnownCalls::default()),
        });
        let incoming = endpoint
            .incoming_transactions()
            .map_err(splitdial_sip::Error::from)?;
        let dispatcher = shared.clone();
        let endpoint_task = tokio::spawn(endpoint::serve_transactions(
            endpoint,
            incoming,
            move |tx| dispatch(dispatcher.clone(), tx),
        ));
        info!(local = %bound.local, "call controller started");
        Ok(Self {
            shared,
            endpoint_cancel,
            endpoint_task,
        })
    }

    /// The address the SIP endpoint listens on (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// Places a call: starts the control INVITE and returns at once; progress
    /// comes as events on the handle.
    pub fn place(&self, plan: CallPlan) -> Result<CallHandle, ControllerError> {
        if self.shared.stop.is_cancelled() {
            return Err(ControllerError::ShuttingDown);
        }
        check_sip_uri("caller_target", &plan.caller_target)?;
        check_sip_uri("callee_uri", &plan.callee_uri)?;
        check_sip_uri("controller_uri", &plan.controller_uri)?;
        let sip_call_id = format!(
            "{:032x}@{}",
            rand::random::<u128>(),
            endpoint::CALL_ID_SUFFIX
        );
        let (events_tx, events) = mpsc::channel(EVENT_CAPACITY);
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let call = call::Call::new(
            self.shared.clone(),
            plan.clone(),
            sip_call_id.clone(),
            events_tx,
        );
        let mut known = self.shared.known();
        known.live.insert(sip_call_id.clone());
        known.tasks.retain(|t| !t.is_finished());
        known.tasks.push(tokio::spawn(call.run(commands)));
        drop(known);
        Ok(CallHandle {
            call_id: plan.call_id,
            events,
            control: CallControl {
                commands: commands_tx,
                sip_call_id,
            },
        })
    }

    /// Graceful shutdown: every live call ends its control leg (BYE, or CANCEL
    /// while unanswered) and reports `Ended { controller_shutdown }`; then the
    /// endpoint stops. Bounded: gives the calls at most 10 seconds.
    pub async fn shutdown(self) {
        self.shared.stop.cancel();
        let tasks = std::mem::take(&mut self.shared.known().tasks);
        let all = futures_util::future::join_all(tasks);
        if tokio::time::timeout(Duration::from_secs(10), all)
            .await
            .is_err()
        {
            warn!("calls did not end within 10 s of shutdown");
        }
        self.endpoint_cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint_task).await;
        info!("call controller stopped");
    }
}

/// A URI we put in Request-URI, From or Refer-To must be a plain SIP URI: no
/// embedded headers, no `method` parameter (a talker refuses those anyway).
fn check_sip_uri(what: &'static str, uri: &str) -> Result<(), ControllerError> {
    let invalid = || ControllerError::InvalidUri {
        what,
        uri: uri.to_owned(),
    };
    let trimmed = uri.trim();
    if trimmed.starts_with('<') || trimmed.contains(char::is_whitespace) {
        return Err(invalid());
    }
    let parsed = SipUri::parse(trimmed).map_err(|_| invalid())?;
    if !parsed.headers.is_empty() || parsed.params.contains_key("method") {
        return Err(invalid());
    }
    rsipstack::sip::Uri::try_from(trimmed).map_err(|_| invalid())?;
    Ok(())
}

/// How long an in-dialog request for a live call waits for its dialog to be filed.
const DIALOG_FILING_WAIT: Duration = Duration::from_millis(200);

/// The dialog of `tx` once rsipstack has filed it, waiting at most
/// [`DIALOG_FILING_WAIT`]. rsipstack files a confirmed dialog under its final id
/// only after it has sent the ACK, a few milliseconds later under load, and a
/// talker that dials on answer NOTIFYs right behind that ACK: without the wait
/// such a NOTIFY finds no dialog and its report is lost.
async fn dialog_once_filed(shared: &Shared, tx: &Transaction) -> Option<Dialog> {
    let deadline = Instant::now() + DIALOG_FILING_WAIT;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
        if let Some(dialog) = shared.dialogs.match_dialog(tx) {
            return Some(dialog);
        }
    }
    None
}

/// Handles one incoming transaction: in-dialog requests go to their dialog (a
/// call task sees them as dialog states); late requests for a control leg that
/// ended are answered here.
async fn dispatch(shared: Arc<Shared>, mut tx: Transaction) {
    let method = tx.original.method;
    let to = headers::first(&tx.original.headers, "To").unwrap_or_default();
    if has_tag(to) {
        let call_id = headers::first(&tx.original.headers, "Call-ID").unwrap_or_default();
        let mut found = shared.dialogs.match_dialog(&tx);
        if found.is_none() && method != Method::Ack && shared.is_live(call_id) {
            found = dialog_once_filed(&shared, &tx).await;
        }
        if let Some(mut dialog) = found
            && !dialog.state().is_terminated()
        {
            if let Err(e) = dialog.handle(&mut tx).await {
                debug!(%method, error = %e, "in-dialog request failed");
            }
            return;
        }
        let status = match method {
            Method::Ack => return,
            // RFC 5057: NOTIFYs may come after our BYE; answer them, and a BYE
            // crossing ours, 200.
            Method::Notify | Method::Bye if shared.knows(call_id) => StatusCode::OK,
            _ => StatusCode::CallTransactionDoesNotExist,
        };
        debug!(%method, %call_id, ?status, "request outside a live dialog");
        if let Err(e) = tx.reply(status).await {
            debug!(error = %e, "could not answer");
        }
        return;
    }
    let result = match method {
        Method::Ack => return,
        Method::Options => {
            let allow = rsipstack::sip::headers::make_header("Allow", ALLOW.to_owned());
            tx.reply_with(StatusCode::OK, vec![allow], None).await
        }
        Method::Invite => {
            let response = splitdial_sip::wire::response_to(
                &tx.original,
                403,
                "Controller Takes No Calls",
                vec![],
            );
            tx.respond(response).await
        }
        _ => tx.reply(StatusCode::CallTransactionDoesNotExist).await,
    };
    if let Err(e) = result {
        debug!(error = %e, "could not answer");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_sip_uris_pass() {
        assert!(check_sip_uri("x", "sip:bob@home.example").is_ok());
        assert!(check_sip_uri("x", "sip:alice@home.example;gr=urn:uuid:1234-5678").is_ok());
        for bad in [
            "<sip:bob@home.example>",
            "sip:bob@home.example?Replaces=x",
            "sip:bob@home.example;method=BYE",
            "tel:+1234",
            "sip:bob@home.example\r\nX: y",
            "",
        ] {
            assert!(check_sip_uri("x", bad).is_err(), "{bad:?}");
        }
    }
}
