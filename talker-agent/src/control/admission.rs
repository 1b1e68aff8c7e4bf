//! The rules a request must pass before this talker acts on it, and the answer each
//! refusal gets. A control INVITE needs a valid `control` token (DESIGN.md security
//! rules), a party named for dial on answer needs its own `refer` token for that target,
//! and a session interval we can keep; a REFER needs a `refer` token for its Refer-To.
//! A token that fails any check gets 403, never a 6xx: another device of the same
//! account may be the one meant.

use crate::in_dialog::refresh;
use crate::trust::Trust;
use rsipstack::sip::{Header, Request};
use rsipstack::transaction::transaction::Transaction;
use splitdial_sip::call_token::{self, Action, TokenError};
use splitdial_sip::headers;
use splitdial_sip::session_timer::{self, SessionExpires};
use tracing::{info, warn};

/// A control INVITE that passed every check.
pub(super) struct Admission {
    /// The control leg's SIP Call-ID (every token is bound to it).
    pub(super) call_id: String,
    /// The INVITE's CSeq number: NOTIFYs about the party it names report on it, as
    /// on a first REFER.
    pub(super) invite_cseq: u32,
    /// The party to call at once (dial on answer), its token checked.
    pub(super) dial_on_answer: Option<String>,
    /// The session timer agreed (RFC 4028), when the controller asked for one.
    pub(super) timer: Option<SessionExpires>,
}

/// How a request is refused: the final response it gets.
#[derive(Debug)]
pub(super) struct Refusal {
    /// The status code.
    pub(super) status: u16,
    /// The reason phrase.
    pub(super) reason: &'static str,
    /// Headers the refusal needs (`Min-SE` of a 422).
    pub(super) headers: Vec<Header>,
}

impl Refusal {
    /// A refusal without extra headers.
    pub(super) fn new(status: u16, reason: &'static str) -> Self {
        Self {
            status,
            reason,
            headers: Vec::new(),
        }
    }

    /// Answers the transaction with this refusal.
    pub(super) async fn send(self, tx: &mut Transaction) {
        super::reply_with(tx, self.status, self.reason, self.headers).await;
    }
}

/// Checks a control INVITE: its control token, the dial-on-answer party's token when it
/// names one, then its session interval (after the tokens, so a request without a valid
/// token learns nothing but 403).
pub(super) fn control_invite(trust: &Trust, request: &Request) -> Result<Admission, Refusal> {
    let call_id = headers::first(&request.headers, "Call-ID")
        .unwrap_or_default()
        .to_owned();
    let token = headers::first(&request.headers, call_token::HEADER);
    if let Err(e) = trust.check(token, Action::Control, &call_id, None) {
        warn!(%call_id, error = %e, "control INVITE refused");
        return Err(invalid_token());
    }
    // Dial on answer: the party to call named in the INVITE itself, with its own `refer`
    // token, checked like a REFER's. Calling it at once saves the REFER's round trips.
    let dial_on_answer = match headers::first(&request.headers, call_token::DIAL_HEADER) {
        None => None,
        Some(target) => {
            let token = headers::first(&request.headers, call_token::DIAL_TOKEN_HEADER);
            if let Err(e) = trust.check(token, Action::Refer, &call_id, Some(target)) {
                warn!(%call_id, error = %e, "control INVITE refused: the party to dial");
                return Err(invalid_token());
            }
            Some(target.to_owned())
        }
    };
    let timer = refresh::terms(&request.headers, false)
        .map_err(Refusal::from)
        .inspect_err(|refusal| {
            if refusal.status == session_timer::TOO_SMALL {
                info!(%call_id, "control INVITE asks for too short a session interval");
            } else {
                warn!(%call_id, reason = refusal.reason, "control INVITE refused");
            }
        })?;
    Ok(Admission {
        invite_cseq: headers::cseq_number(&request.headers).unwrap_or(0),
        call_id,
        dial_on_answer,
        timer,
    })
}

impl From<refresh::TimerRefusal> for Refusal {
    fn from(refusal: refresh::TimerRefusal) -> Self {
        Self {
            status: refusal.status,
            reason: refusal.reason,
            headers: refusal.headers,
        }
    }
}

/// Checks a REFER in the control leg `call_id`: its token must be a `refer` token for
/// this leg and for exactly its Refer-To. The Refer-To to call, or why not.
pub(super) fn refer(trust: &Trust, call_id: &str, request: &Request) -> Result<String, TokenError> {
    let refer_to = headers::first(&request.headers, "Refer-To").unwrap_or_default();
    let token = headers::first(&request.headers, call_token::HEADER);
    trust.check(token, Action::Refer, call_id, Some(refer_to))?;
    Ok(refer_to.to_owned())
}

fn invalid_token() -> Refusal {
    Refusal::new(403, "Invalid Call Token")
}
