//! The call a talker places when its control leg asks for it (a REFER, or the party
//! named in the control INVITE): with the device's own account and credentials on the
//! target's server, its progress reported back (as NOTIFY sipfrag by the control leg),
//! its media started on answer, and hung up (CANCEL or BYE) when the control leg asks.
//! Once connected, its in-dialog requests and its session timer (we offer `timer`; the
//! callee's 2xx says who refreshes) are served by [`crate::in_dialog`].
//!
//! [`Dialer::call`] runs one call to its end and returns its [`Outcome`]; the control
//! leg holds the calls in a `JoinSet`, so a call's end is an event it receives.

use crate::calls::{CallEntry, Calls};
use crate::in_dialog::offer::Answering;
use crate::in_dialog::refresh::SessionTimer;
use crate::in_dialog::{self, CallMedia, InDialog, Served};
use crate::media::hub::MediaHub;
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::{InviteAsyncResult, InviteOption};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Response, Transport, Uri};
use rsipstack::transport::SipAddr;
use splitdial_api::{TalkerCallKind, TalkerCallState};
use splitdial_media::{AllocatedPorts, MediaError, MediaSettings};
use splitdial_sip::sdp::{self, LocalMedia, SdpSession};
use splitdial_sip::tcp_flow::OutboundFlows;
use splitdial_sip::uri_match::SipUri;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// How long a CANCEL may wait for its answer: one nobody answers must not hold the
/// call open.
const CANCEL_LIMIT: Duration = Duration::from_secs(5);

/// One of the device's accounts, as the dialer uses it.
#[derive(Debug, Clone)]
pub struct DialAccount {
    /// The server's domain.
    pub domain: String,
    /// Where requests go.
    pub proxy: SocketAddr,
    /// TCP toward the proxy.
    pub tcp: bool,
    /// The account user.
    pub user: String,
    /// The account password.
    pub password: String,
}

impl DialAccount {
    /// The configured `account`, with its `password` (loaded by the caller:
    /// from the config or its secret file).
    pub fn new(account: &crate::config::Account, password: String) -> Self {
        Self {
            domain: account.server.clone(),
            proxy: account.proxy,
            tcp: account.transport == crate::config::Transport::Tcp,
            user: account.user.clone(),
            password,
        }
    }
}

/// A progress report of a call still under way, for the control leg to NOTIFY: 100 when
/// dialling starts, 180/183 while the callee rings, 200 once it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The sipfrag status.
    pub status: u16,
    /// The REFER's CSeq when it was not the first REFER (`Event: refer;id=`).
    pub event_id: Option<u32>,
}

/// How a referred call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Never connected: the status to report (the callee's failure, 487 when hung up
    /// while ringing, 4xx/5xx when the call could not be placed).
    Failed(u16),
    /// Connected, then ended (either side hung up).
    Ended,
}

/// Places referred calls.
pub struct Dialer {
    /// rsipstack's dialogs of this agent.
    pub dialogs: Arc<DialogLayer>,
    /// The device's accounts.
    pub accounts: Vec<DialAccount>,
    /// Our SIP address (for Contact).
    pub local: SocketAddr,
    /// Our TCP connections to the accounts' proxies (Nagle off).
    pub flows: OutboundFlows,
    /// Media settings.
    pub media: MediaSettings,
    /// The live calls.
    pub calls: Calls,
}

/// Where a referred call goes: the callee and the account that calls it.
struct Route<'a> {
    account: &'a DialAccount,
    callee: Uri,
    /// The callee as written in the Refer-To, without its angle brackets.
    callee_text: String,
}

/// A referred call's INVITE in flight.
struct Invitation {
    dialog: InviteDialog,
    invite: JoinHandle<InviteAsyncResult>,
    states: DialogStateReceiver,
    entry: Arc<CallEntry>,
}

impl Dialer {
    /// Calls `refer_to` (a Refer-To value already checked against its token), reporting
    /// its progress on `progress` (100 at once), until it ends by itself or `stop` is
    /// cancelled (CANCEL while it rings, BYE once answered).
    pub async fn call(
        self: Arc<Self>,
        refer_to: String,
        event_id: Option<u32>,
        progress: mpsc::UnboundedSender<Progress>,
        hub: Arc<MediaHub>,
        stop: CancellationToken,
    ) -> Outcome {
        let report = |status: u16| {
            let _ = progress.send(Progress { status, event_id });
        };
        report(100);
        let route = match self.route(&refer_to) {
            Ok(route) => route,
            Err(outcome) => return outcome,
        };
        let want_video = self.media.video_capable();
        let ports = match AllocatedPorts::reserve(self.media.local_ip, want_video) {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "no RTP ports");
                return Outcome::Failed(500);
            }
        };
        // GStreamer starts in the worker while the callee rings, not after it answers.
        let _warm = crate::media::worker::MediaWorker::shared().warm_up().await;
        let mut sdp = SdpSession::new(self.media.local_ip);
        let local = LocalMedia::for_call(&self.media, &ports);
        let offer = sdp.offer(&local);
        let mut invitation = match self.invite(&route, &offer).await {
            Ok(invitation) => invitation,
            Err(outcome) => return outcome,
        };
        let outcome = match ring(&mut invitation, &stop, &report).await {
            Ok(answered) => {
                report(200);
                invitation.entry.set_state(TalkerCallState::Connected);
                let in_dialog = InDialog::new(
                    invitation.dialog.id().call_id,
                    Answering::Media(local),
                    sdp,
                    true,
                )
                .with_timer(SessionTimer::agreed_as_uac(&answered.headers))
                .with_entry(invitation.entry.clone());
                connected(
                    &mut invitation,
                    &offer,
                    &answered,
                    ports,
                    &hub,
                    in_dialog,
                    &stop,
                )
                .await;
                Outcome::Ended
            }
            Err(outcome) => outcome,
        };
        self.dialogs.remove_dialog(&invitation.dialog.id());
        outcome
    }

    /// The account on the target's server, and the callee as a URI.
    fn route(&self, refer_to: &str) -> Result<Route<'_>, Outcome> {
        let target = SipUri::parse(refer_to).map_err(|_| Outcome::Failed(400))?;
        let Some(account) = self
            .accounts
            .iter()
            .find(|a| a.domain.eq_ignore_ascii_case(&target.host))
        else {
            warn!(%refer_to, "no account on the target's server");
            return Err(Outcome::Failed(404));
        };
        let inner = refer_to.trim();
        let inner = inner
            .strip_prefix('<')
            .and_then(|s| s.split('>').next())
            .unwrap_or(inner);
        let callee = Uri::try_from(inner).map_err(|_| Outcome::Failed(400))?;
        Ok(Route {
            account,
            callee,
            callee_text: inner.to_owned(),
        })
    }

    /// Sends the INVITE with `offer`, with the account's own identity and credentials,
    /// and registers the call (dialing).
    async fn invite(&self, route: &Route<'_>, offer: &str) -> Result<Invitation, Outcome> {
        let account = route.account;
        let option = self.invite_option(route, offer)?;
        if account.tcp {
            self.flows.ensure(account.proxy).await;
        }
        let (state_tx, states) = self.dialogs.new_dialog_state_channel();
        let entry = Arc::new(self.calls.add(
            TalkerCallKind::Referred,
            TalkerCallState::Dialing,
            "",
            &route.callee_text,
            None,
        ));
        info!(callee = %route.callee_text, "referred call: sending INVITE");
        match self.dialogs.do_invite_async(option, state_tx) {
            Ok((dialog, invite)) => Ok(Invitation {
                dialog,
                invite,
                states,
                entry,
            }),
            Err(e) => {
                warn!(error = %e, "cannot place the referred call");
                Err(Outcome::Failed(500))
            }
        }
    }

    fn invite_option(&self, route: &Route<'_>, offer: &str) -> Result<InviteOption, Outcome> {
        let account = route.account;
        let transport = if account.tcp { ";transport=tcp" } else { "" };
        let (Ok(caller), Ok(contact)) = (
            Uri::try_from(format!("sip:{}@{}", account.user, account.domain).as_str()),
            Uri::try_from(format!("sip:{}@{}{transport}", account.user, self.local).as_str()),
        ) else {
            return Err(Outcome::Failed(500));
        };
        Ok(InviteOption {
            caller,
            callee: route.callee.clone(),
            contact,
            destination: Some(SipAddr {
                r#type: Some(if account.tcp {
                    Transport::Tcp
                } else {
                    Transport::Udp
                }),
                addr: account.proxy.into(),
            }),
            content_type: Some("application/sdp".into()),
            offer: Some(offer.as_bytes().to_vec()),
            // Session timers offered (RFC 4028 §7.1): the callee's 2xx says who refreshes.
            headers: Some(vec![
                in_dialog::methods::allow(),
                in_dialog::methods::supported(),
            ]),
            credential: Some(Credential {
                username: account.user.clone(),
                password: account.password.clone(),
                // rsipstack ignores this; the realm is pinned to the account's
                // domain, and SHA-256 preferred, by splitdial_sip::digest_choice.
                realm: None,
                auth_username: None,
            }),
            ..Default::default()
        })
    }
}

/// The ringing phase: provisional responses are reported, the control leg may give up
/// (CANCEL). The 2xx that answered it, or how the call ended without an answer.
async fn ring(
    invitation: &mut Invitation,
    stop: &CancellationToken,
    report: &impl Fn(u16),
) -> Result<Response, Outcome> {
    loop {
        tokio::select! {
            result = &mut invitation.invite => {
                return match result {
                    Ok(Ok((_, Some(response)))) if response.status_code.code() < 300 => Ok(response),
                    Ok(Ok((_, Some(response)))) => Err(Outcome::Failed(response.status_code.code())),
                    Ok(Ok((_, None))) => Err(Outcome::Failed(408)),
                    Ok(Err(e)) => {
                        debug!(error = %e, "referred INVITE failed");
                        Err(Outcome::Failed(503))
                    }
                    Err(_) => Err(Outcome::Failed(500)),
                };
            }
            state = invitation.states.recv() => {
                if let Some(DialogState::Early(_, response)) = state {
                    let code = response.status_code.code();
                    if (180..=183).contains(&code) {
                        invitation.entry.set_state(TalkerCallState::Ringing);
                        report(code);
                    }
                }
            }
            () = stop.cancelled() => {
                info!("cancelling the referred call");
                let _ = tokio::time::timeout(CANCEL_LIMIT, invitation.dialog.hangup()).await;
                let _ = (&mut invitation.invite).await;
                return Err(Outcome::Failed(487));
            }
        }
    }
}

/// The answered call: its media joins the control leg's hub, and it runs until either
/// side hangs up or its session expires (a call whose media cannot start is hung up at
/// once); every request inside it on the in-dialog path.
async fn connected(
    invitation: &mut Invitation,
    offer: &str,
    answered: &Response,
    ports: AllocatedPorts,
    hub: &MediaHub,
    mut in_dialog: InDialog,
    stop: &CancellationToken,
) {
    let answer = String::from_utf8_lossy(&answered.body);
    let attached = match sdp::negotiated_from_answer(offer, &answer) {
        Ok(plan) => hub.attach(&plan, ports, invitation.entry.clone()).await,
        Err(e) => Err(MediaError::Pipeline(e.to_string())),
    };
    if let Err(e) = attached {
        warn!(error = %e, "no media for the referred call; hanging up");
        let _ = invitation.dialog.hangup().await;
        return;
    }
    info!("referred call connected");
    in_dialog.learn_allow(&answered.headers);
    let media = CallMedia::Party {
        hub,
        key: invitation.entry.id(),
    };
    loop {
        let served = tokio::select! {
            state = invitation.states.recv() => match state {
                Some(state) => in_dialog.on_request(state, &invitation.dialog, media).await,
                None => Served::Ended,
            },
            wake = in_dialog.wake() => in_dialog.on_wake(wake, &invitation.dialog, media).await,
            () = stop.cancelled() => Served::HangUp,
        };
        match served {
            Served::Going => {}
            Served::Ended => break,
            Served::HangUp => {
                let _ = invitation.dialog.hangup().await;
                break;
            }
        }
    }
    hub.detach(invitation.entry.id()).await;
}
