//! Incoming SIP requests: the matcher's control leg (DESIGN.md call flow), the
//! REFERs in it that make this talker dial, and ordinary calls under the answer
//! policy. Nothing here auto-answers, dials or opens media without a call token
//! that [`Trust::check`] accepted.
//!
//! * [`CallControl::dispatch`] (here) routes each incoming transaction: in-dialog
//!   requests to their dialog, a control INVITE to [`admission`] and then a
//!   [`leg::ControlLeg`], any other INVITE to [`ordinary`].
//! * [`admission`] holds the rules a control INVITE and a REFER must pass (their
//!   tokens, the session interval) and the answer each refusal gets.
//! * [`leg`] is the control leg as an actor: one task owns the dialog and its
//!   state, and one handler takes each event (an in-dialog request, a referred
//!   call's progress or end, the session timer, shutdown).
//! * [`refer_notify`] writes the NOTIFYs that report the referred calls.
//! * [`ordinary`] rings, answers and serves a call without a token.
//! * Every request inside any of these calls is served by [`crate::in_dialog`]; a
//!   method it does not serve gets 405 with `Allow` here, before rsipstack's dialog
//!   sees it (rsipstack would answer 405 without `Allow`, or PRACK 200).
//! * [`ack`] runs the server transaction of each INVITE we answer and lets a request
//!   that overtook the ACK of our 2xx wait for it.

mod ack;
mod admission;
mod leg;
mod ordinary;
mod refer_notify;

pub use ack::AckWatch;

use crate::calls::Calls;
use crate::config::AnswerPolicy;
use crate::in_dialog;
use crate::referred_call::Dialer;
use crate::trust::Trust;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::{Header, Method, Uri};
use rsipstack::transaction::transaction::Transaction;
use splitdial_sip::call_token;
use splitdial_sip::headers;
use splitdial_sip::wire::has_tag;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tracing::debug;

/// At shutdown, how long each call's BYE may wait for its answer (a peer that
/// never answers would otherwise hold shutdown for timer F, 32 s).
pub const SHUTDOWN_BYE_LIMIT: Duration = Duration::from_secs(4);

/// Everything the request handlers share.
pub struct CallControl {
    /// rsipstack's dialogs of this agent.
    pub dialogs: Arc<DialogLayer>,
    /// Token checks.
    pub trust: Arc<Trust>,
    /// The live calls.
    pub calls: Calls,
    /// Our SIP contact (`sip:talker@ip:port`).
    pub contact: Uri,
    /// The local IP for SDP.
    pub local_ip: IpAddr,
    /// Ordinary-call policy.
    pub policy: AnswerPolicy,
    /// Places referred calls with the device's own accounts.
    pub dialer: Arc<Dialer>,
    /// Cancelled at shutdown: every control leg hangs up its referred calls and
    /// ends with BYE, concurrently, each bounded by [`SHUTDOWN_BYE_LIMIT`].
    pub shutdown: tokio_util::sync::CancellationToken,
    /// The ACKs of our 2xx answers, which requests that overtook them wait for.
    pub acks: AckWatch,
}

impl CallControl {
    /// Handles one incoming transaction to its end.
    pub async fn dispatch(self: Arc<Self>, mut tx: Transaction) {
        let method = tx.original.method;
        let to = headers::first(&tx.original.headers, "To").unwrap_or_default();
        if has_tag(to) {
            self.in_dialog(tx).await;
            return;
        }
        match method {
            Method::Invite if headers::count(&tx.original.headers, call_token::HEADER) > 0 => {
                leg::answer_and_run(self, tx).await;
            }
            Method::Invite => ordinary::ring_and_serve(self, tx).await,
            Method::Refer => reply(&mut tx, 403, "Not A Control Dialog").await,
            Method::Options => {
                let ok = splitdial_sip::wire::response_to(
                    &tx.original,
                    200,
                    "OK",
                    in_dialog::options::capabilities(),
                );
                if let Err(e) = tx.respond(ok).await {
                    debug!(error = %e, "could not answer OPTIONS");
                }
            }
            _ => reply(&mut tx, 481, "Call/Transaction Does Not Exist").await,
        }
    }

    /// A request inside a dialog: handed to the dialog once our 2xx is acknowledged (its
    /// owner then receives it as a dialog state).
    async fn in_dialog(&self, mut tx: Transaction) {
        let method = tx.original.method;
        if !in_dialog::methods::served(&method) {
            let allow = vec![in_dialog::methods::allow()];
            reply_with(&mut tx, 405, "Method Not Allowed", allow).await;
            return;
        }
        match self.dialogs.match_dialog(&tx) {
            Some(mut dialog) => {
                if !matches!(method, Method::Ack | Method::Bye | Method::Cancel)
                    && !self.acks.arrived(&dialog).await
                {
                    let retry = Header::Other("Retry-After".into(), "1".into());
                    reply_with(&mut tx, 500, "ACK Not Yet Received", vec![retry]).await;
                    return;
                }
                if let Err(e) = dialog.handle(&mut tx).await {
                    debug!(%method, error = %e, "in-dialog request failed");
                }
                if method == Method::Bye {
                    // A BYE ends a dialog that may still have waited for its ACK.
                    self.acks.dialog_changed();
                }
            }
            // A REFER is only ever obeyed inside a control dialog.
            None if method == Method::Refer => {
                reply(&mut tx, 403, "Not A Control Dialog").await;
            }
            None => reply(&mut tx, 481, "Call/Transaction Does Not Exist").await,
        }
    }
}

fn make(name: &str, value: String) -> Header {
    rsipstack::sip::headers::make_header(name, value)
}

/// Creates the dialog of an incoming INVITE with its state channel; when rsipstack
/// cannot, answers 500 and logs which `call` it was for.
async fn server_dialog(
    control: &CallControl,
    tx: &mut Transaction,
    call: &str,
) -> Option<(
    rsipstack::dialog::invite_dialog::InviteDialog,
    rsipstack::dialog::dialog::DialogStateReceiver,
)> {
    let (state_tx, states) = control.dialogs.new_dialog_state_channel();
    match control.dialogs.get_or_create_server_invite(
        tx,
        state_tx,
        None,
        Some(control.contact.clone()),
    ) {
        Ok(dialog) => Some((dialog, states)),
        Err(e) => {
            tracing::warn!(error = %e, call, "cannot create the dialog");
            reply(tx, 500, "Server Internal Error").await;
            None
        }
    }
}

async fn reply(tx: &mut Transaction, status: u16, reason: &str) {
    reply_with(tx, status, reason, Vec::new()).await;
}

async fn reply_with(tx: &mut Transaction, status: u16, reason: &str, headers: Vec<Header>) {
    let response = splitdial_sip::wire::response_to(&tx.original, status, reason, headers);
    if let Err(e) = tx.respond(response).await {
        debug!(error = %e, "could not answer");
    }
}
