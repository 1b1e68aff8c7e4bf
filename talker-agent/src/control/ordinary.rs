//! An INVITE without a token: an ordinary call under the answer policy. It is never
//! auto-answered as a control leg: `auto` answers only a caller on the allow-list as
//! asserted (P-Asserted-Identity) by one of our own servers, and `manual` rings until
//! the owner answers through the status API. `reject` refuses with 486. Once answered,
//! its in-dialog requests and its session timer are served by [`crate::in_dialog`].

use super::{CallControl, reply, reply_with};
use crate::calls::{CallEntry, OwnerAction};
use crate::config::Policy;
use crate::in_dialog::offer::Answering;
use crate::in_dialog::refresh::{self, SessionTimer};
use crate::in_dialog::{self, CallMedia, InDialog, Served};
use crate::media::hub::{self, LegMedia};
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Request, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use splitdial_api::{TalkerCallKind, TalkerCallState};
use splitdial_media::{AllocatedPorts, Negotiated};
use splitdial_sip::headers;
use splitdial_sip::sdp::{LocalMedia, SdpSession};
use splitdial_sip::uri_match::SipUri;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// How long an ordinary call rings before we give up on it.
const RING_LIMIT: Duration = Duration::from_secs(90);

/// One ringing or answered ordinary call.
struct OrdinaryCall {
    dialog: InviteDialog,
    states: DialogStateReceiver,
    actions: mpsc::UnboundedReceiver<OwnerAction>,
    entry: Arc<CallEntry>,
}

/// Rings an ordinary call, answers it when the policy or the owner says so, and serves
/// it until either side hangs up.
pub(super) async fn ring_and_serve(control: Arc<CallControl>, mut tx: Transaction) {
    if control.policy.policy == Policy::Reject {
        // 486 rather than 603: another device of the account may answer.
        reply(&mut tx, 486, "Busy Here").await;
        return;
    }
    // RFC 4028 §9: a session interval we cannot keep is refused before ringing.
    let timer = match refresh::terms(&tx.original.headers, true) {
        Ok(agreed) => {
            agreed.map(|agreed| SessionTimer::agreed_as_uas(agreed, &tx.original.headers))
        }
        Err(refusal) => {
            reply_with(&mut tx, refusal.status, refusal.reason, refusal.headers).await;
            return;
        }
    };
    let auto = control.policy.policy == Policy::Auto && caller_allowed(&control, &tx);
    let invite = tx.original.clone();
    let Some(mut call) = ring(&control, tx, auto).await else {
        return;
    };
    let id = call.dialog.id();
    if wait_for_answer(&control, &mut call, auto).await
        && let Some((media, in_dialog)) = answer(&control, &call, &invite, timer).await
    {
        serve(&mut call, in_dialog, &media).await;
        hub::stop(media).await;
        info!("incoming call ended");
    }
    control.dialogs.remove_dialog(&id);
}

/// Creates the call's dialog, registers it (ringing, with owner actions) and sends 180.
async fn ring(control: &CallControl, mut tx: Transaction, auto: bool) -> Option<OrdinaryCall> {
    let (dialog, states) = super::server_dialog(control, &mut tx, "incoming call").await?;
    let call_id = headers::first(&tx.original.headers, "Call-ID").unwrap_or_default();
    let peer = headers::first(&tx.original.headers, "From").unwrap_or_default();
    let (actions_tx, actions) = mpsc::unbounded_channel();
    let entry = Arc::new(control.calls.add(
        TalkerCallKind::Incoming,
        TalkerCallState::Ringing,
        call_id,
        peer,
        Some(actions_tx),
    ));
    let _ = dialog.ringing(None, None);
    info!(%call_id, %peer, auto, "incoming call ringing");
    control.acks.serve_invite(&dialog, tx);
    Some(OrdinaryCall {
        dialog,
        states,
        actions,
        entry,
    })
}

/// While it rings: `true` once it is to be answered (after `after_seconds` under `auto`,
/// or the owner's answer); `false` when the owner declines, the caller gives up or
/// [`RING_LIMIT`] passes (each refused as it should be).
async fn wait_for_answer(control: &CallControl, call: &mut OrdinaryCall, auto: bool) -> bool {
    let after = Duration::from_secs(u64::from(control.policy.after_seconds));
    let auto_answer = async {
        if auto {
            tokio::time::sleep(after).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(auto_answer);
    let ring_limit = tokio::time::sleep(RING_LIMIT);
    tokio::pin!(ring_limit);
    loop {
        tokio::select! {
            () = &mut auto_answer => return true,
            action = call.actions.recv() => match action {
                Some(OwnerAction::Answer) => return true,
                Some(OwnerAction::Decline | OwnerAction::Hangup) | None => {
                    let _ = call.dialog.reject(Some(StatusCode::Decline), None);
                    return false;
                }
            },
            state = call.states.recv() => {
                if matches!(state, Some(DialogState::Terminated(..)) | None) {
                    info!("caller gave up");
                    return false;
                }
            }
            () = &mut ring_limit => {
                let _ = call.dialog.reject(Some(StatusCode::TemporarilyUnavailable), None);
                return false;
            }
        }
    }
}

/// Answers the call's `invite` with our media (and the session timer agreed) and starts
/// it; `None` when it could not be answered (rejected with the fitting status) or its
/// media did not start (hung up).
async fn answer(
    control: &CallControl,
    call: &OrdinaryCall,
    invite: &Request,
    timer: Option<SessionTimer>,
) -> Option<(LegMedia, InDialog)> {
    // GStreamer starts in the worker while the answer goes out.
    let _warm = crate::media::worker::MediaWorker::shared().warm_up().await;
    let Negotiation {
        answer,
        plan,
        ports,
        sdp,
        local,
    } = match negotiate(control, &invite.body).await {
        Ok(negotiated) => negotiated,
        Err((status, why)) => {
            warn!(%why, "cannot answer the offer");
            let _ = call.dialog.reject(Some(StatusCode::from(status)), None);
            return None;
        }
    };
    let mut answer_headers = in_dialog::invite_answer_headers();
    answer_headers.extend(timer.iter().flat_map(SessionTimer::answer_headers));
    if let Err(e) = call
        .dialog
        .accept(Some(answer_headers), Some(answer.into_bytes()))
    {
        warn!(error = %e, "cannot answer");
        return None;
    }
    call.entry.set_state(TalkerCallState::Connected);
    let call_id = headers::first(&invite.headers, "Call-ID").unwrap_or_default();
    let mut in_dialog = InDialog::new(call_id, Answering::Media(local), sdp, false)
        .with_timer(timer)
        .with_entry(call.entry.clone());
    in_dialog.learn_allow(&invite.headers);
    match hub::start(&plan, &control.dialer.media, ports, call.entry.clone()).await {
        Ok(media) => Some((media, in_dialog)),
        Err(e) => {
            warn!(error = %e, "no media; hanging up");
            let _ = call.dialog.hangup().await;
            info!("incoming call ended");
            None
        }
    }
}

/// The first offer/answer of an ordinary call.
struct Negotiation {
    /// Our answer.
    answer: String,
    /// The plan it makes.
    plan: Negotiated,
    /// The ports it uses.
    ports: AllocatedPorts,
    /// The dialog's SDP session, which answers every later offer.
    sdp: SdpSession,
    /// What the call can carry, for those answers.
    local: LocalMedia,
}

/// Reserves the call's ports and writes our answer (the dialog's first SDP); the status
/// and why when the offer cannot be answered.
async fn negotiate(control: &CallControl, offer: &[u8]) -> Result<Negotiation, (u16, String)> {
    let settings = control.dialer.media.clone();
    let offer = String::from_utf8_lossy(offer).into_owned();
    let mut sdp = SdpSession::new(settings.local_ip);
    tokio::task::spawn_blocking(move || {
        let ports = AllocatedPorts::reserve(settings.local_ip, settings.video_capable())
            .map_err(|e| (500u16, e.to_string()))?;
        let local = LocalMedia::for_call(&settings, &ports);
        let (answer, plan) = sdp
            .answer(&offer, &local)
            .map_err(|e| (e.sip_status(), e.to_string()))?;
        Ok(Negotiation {
            answer,
            plan,
            ports,
            sdp,
            local,
        })
    })
    .await
    .unwrap_or_else(|e| Err((500, e.to_string())))
}

/// The answered call, until the caller hangs up, the owner does, or its session
/// expires (BYE); every request inside it on the in-dialog path.
async fn serve(call: &mut OrdinaryCall, mut in_dialog: InDialog, media: &LegMedia) {
    loop {
        let served = tokio::select! {
            state = call.states.recv() => match state {
                Some(state) => in_dialog.on_request(state, &call.dialog, CallMedia::Leg(media)).await,
                None => Served::Ended,
            },
            wake = in_dialog.wake() => in_dialog.on_wake(wake, &call.dialog, CallMedia::Leg(media)).await,
            action = call.actions.recv() => match action {
                Some(OwnerAction::Hangup) | None => Served::HangUp,
                Some(_) => Served::Going,
            },
        };
        match served {
            Served::Going => {}
            Served::Ended => return,
            Served::HangUp => {
                let _ = call.dialog.hangup().await;
                return;
            }
        }
    }
}

/// Whether the caller is on the allow-list, as asserted by one of our own
/// servers (the request must come from an account's proxy address).
fn caller_allowed(control: &CallControl, tx: &Transaction) -> bool {
    let from_our_server = tx.connection.as_ref().is_some_and(|c| {
        c.get_remote_addr()
            .and_then(|a| a.get_socketaddr().ok())
            .is_some_and(|source| {
                let proxies = control.dialer.accounts.iter().map(|a| a.proxy);
                sent_by_a_proxy(c.transport(), source, proxies)
            })
    });
    let asserted = headers::first(&tx.original.headers, "P-Asserted-Identity")
        .and_then(|v| SipUri::parse(v).ok());
    let Some(asserted) = asserted.filter(|_| from_our_server) else {
        debug!(
            from_our_server,
            asserted = headers::first(&tx.original.headers, "P-Asserted-Identity"),
            "caller not asserted by one of our servers: no auto-answer"
        );
        return false;
    };
    let allowed = control
        .policy
        .allow
        .iter()
        .any(|allowed| SipUri::parse(allowed).is_ok_and(|a| a.equivalent(&asserted)));
    if !allowed {
        debug!(asserted = ?asserted, "caller not on the allow-list: no auto-answer");
    }
    allowed
}

/// Whether a request arriving from `source` over `transport` was sent by one
/// of `proxies`. Over UDP a server sends from its listening address; over TCP
/// it may open a new connection from an ephemeral port (RFC 3261 §18.1.1: a
/// request too big for UDP goes over TCP even toward a UDP contact), so only
/// the host must match.
fn sent_by_a_proxy(
    transport: rsipstack::sip::Transport,
    source: std::net::SocketAddr,
    mut proxies: impl Iterator<Item = std::net::SocketAddr>,
) -> bool {
    match transport {
        rsipstack::sip::Transport::Udp => proxies.any(|proxy| proxy == source),
        _ => proxies.any(|proxy| proxy.ip() == source.ip()),
    }
}

#[cfg(test)]
mod tests {
    use super::sent_by_a_proxy;
    use rsipstack::sip::Transport;
    use std::net::SocketAddr;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn udp_must_come_from_the_proxy_address_and_tcp_from_its_host() {
        let proxies = || [addr("10.0.0.1:5060"), addr("10.0.0.2:5061")].into_iter();
        assert!(sent_by_a_proxy(
            Transport::Udp,
            addr("10.0.0.1:5060"),
            proxies()
        ));
        assert!(!sent_by_a_proxy(
            Transport::Udp,
            addr("10.0.0.1:40000"),
            proxies()
        ));
        assert!(sent_by_a_proxy(
            Transport::Tcp,
            addr("10.0.0.2:40000"),
            proxies()
        ));
        assert!(!sent_by_a_proxy(
            Transport::Tcp,
            addr("10.0.0.9:5060"),
            proxies()
        ));
        assert!(!sent_by_a_proxy(
            Transport::Udp,
            addr("10.0.0.9:5060"),
            proxies()
        ));
    }
}
