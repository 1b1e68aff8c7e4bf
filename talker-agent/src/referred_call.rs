//! The call a talker places when its control leg is REFERred: with the device's
//! own account and credentials on the target's server, its progress reported
//! back (as NOTIFY sipfrag by the control leg), its media started on answer, and
//! hung up (CANCEL or BYE) when the control leg ends.

use crate::calls::{CallKind, CallState, Calls};
use crate::media::hub::MediaHub;
use crate::media::{self, AllocatedPorts, MediaSettings};
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog::DialogState;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::sip::{Transport, Uri};
use rsipstack::transport::SipAddr;
use splitdial_sip::tcp_flow::OutboundFlows;
use splitdial_sip::uri_match::SipUri;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

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

/// A progress report for the control leg to NOTIFY.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The sipfrag status: 100, 180/183, 200, or the failure code.
    pub status: u16,
    /// The REFER's CSeq when it was not the first REFER (`Event: refer;id=`).
    pub event_id: Option<u32>,
    /// The call was answered and has now ended (the callee hung up).
    pub ended_after_answer: bool,
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

/// A referred call in progress.
pub struct Handle {
    stop: CancellationToken,
    finished: Arc<AtomicBool>,
}

impl Handle {
    /// Hangs up (CANCEL while ringing, BYE once answered).
    pub fn hang_up(&self) {
        self.stop.cancel();
    }

    /// Whether the call is over.
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }
}

impl Dialer {
    /// Calls `refer_to` (a Refer-To value already checked against its token).
    pub fn call(
        self: Arc<Self>,
        refer_to: &str,
        event_id: Option<u32>,
        progress: mpsc::UnboundedSender<Progress>,
        hub: Arc<MediaHub>,
    ) -> Handle {
        let stop = CancellationToken::new();
        let finished = Arc::new(AtomicBool::new(false));
        let handle = Handle {
            stop: stop.clone(),
            finished: finished.clone(),
        };
        let refer_to = refer_to.to_owned();
        tokio::spawn(async move {
            let report = |status: u16, ended_after_answer: bool| {
                let _ = progress.send(Progress {
                    status,
                    event_id,
                    ended_after_answer,
                });
            };
            report(100, false);
            let outcome = self.run(&refer_to, &stop, &report, &hub).await;
            finished.store(true, Ordering::Release);
            match outcome {
                Outcome::Failed(status) => report(status, false),
                Outcome::Ended => report(200, true),
            }
        });
        handle
    }

    async fn run(
        &self,
        refer_to: &str,
        stop: &CancellationToken,
        report: &impl Fn(u16, bool),
        hub: &MediaHub,
    ) -> Outcome {
        let Ok(target) = SipUri::parse(refer_to) else {
            return Outcome::Failed(400);
        };
        let Some(account) = self
            .accounts
            .iter()
            .find(|a| a.domain.eq_ignore_ascii_case(&target.host))
        else {
            warn!(%refer_to, "no account on the target's server");
            return Outcome::Failed(404);
        };
        let inner = refer_to.trim();
        let inner = inner
            .strip_prefix('<')
            .and_then(|s| s.split('>').next())
            .unwrap_or(inner);
        let Ok(callee) = Uri::try_from(inner) else {
            return Outcome::Failed(400);
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
        let offer = match media::offer(&self.media, &ports, want_video) {
            Ok(o) => o,
            Err(e) => {
                warn!(error = %e, "cannot write an SDP offer");
                return Outcome::Failed(500);
            }
        };
        let transport = if account.tcp { ";transport=tcp" } else { "" };
        let (Ok(caller), Ok(contact)) = (
            Uri::try_from(format!("sip:{}@{}", account.user, account.domain).as_str()),
            Uri::try_from(format!("sip:{}@{}{transport}", account.user, self.local).as_str()),
        ) else {
            return Outcome::Failed(500);
        };
        if account.tcp {
            self.flows.ensure(account.proxy).await;
        }
        let option = InviteOption {
            caller,
            callee,
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
            offer: Some(offer.clone().into_bytes()),
            credential: Some(Credential {
                username: account.user.clone(),
                password: account.password.clone(),
                realm: None,
                auth_username: None,
            }),
            ..Default::default()
        };
        let (state_tx, mut states) = self.dialogs.new_dialog_state_channel();
        let entry =
            Arc::new(
                self.calls
                    .add(CallKind::Referred, CallState::Dialing, "", inner, None),
            );
        info!(callee = %inner, "referred call: sending INVITE");
        let (dialog, invite) = match self.dialogs.do_invite_async(option, state_tx) {
            Ok(started) => started,
            Err(e) => {
                warn!(error = %e, "cannot place the referred call");
                return Outcome::Failed(500);
            }
        };
        let mut invite = invite;
        // Ringing phase: provisional responses go up; the caller may give up.
        let answered = loop {
            tokio::select! {
                result = &mut invite => {
                    match result {
                        Ok(Ok((_, Some(response)))) if response.status_code.code() < 300 => break response,
                        Ok(Ok((_, Some(response)))) => return Outcome::Failed(response.status_code.code()),
                        Ok(Ok((_, None))) => return Outcome::Failed(408),
                        Ok(Err(e)) => {
                            debug!(error = %e, "referred INVITE failed");
                            return Outcome::Failed(503);
                        }
                        Err(_) => return Outcome::Failed(500),
                    }
                }
                state = states.recv() => {
                    if let Some(DialogState::Early(_, response)) = state {
                        let code = response.status_code.code();
                        if (180..=183).contains(&code) {
                            entry.set_state(CallState::Ringing);
                            report(code, false);
                        }
                    }
                }
                () = stop.cancelled() => {
                    info!("cancelling the referred call");
                    // A CANCEL nobody answers must not hold the call open.
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), dialog.hangup()).await;
                    let _ = invite.await;
                    return Outcome::Failed(487);
                }
            }
        };
        report(200, false);
        entry.set_state(CallState::Connected);
        let answer = String::from_utf8_lossy(&answered.body).into_owned();
        let attached = match media::negotiated_from_answer(&offer, &answer) {
            Ok(plan) => hub.attach(&plan, ports, entry.clone()).await,
            Err(e) => Err(media::MediaError::Pipeline(e.to_string())),
        };
        match attached {
            Ok(()) => {}
            Err(e) => {
                warn!(error = %e, "no media for the referred call; hanging up");
                let _ = dialog.hangup().await;
                return Outcome::Ended;
            }
        };
        info!("referred call connected");
        let id = dialog.id();
        // Connected: until either side hangs up.
        loop {
            tokio::select! {
                state = states.recv() => match state {
                    Some(DialogState::Terminated(_, reason)) => {
                        info!(?reason, "referred call ended");
                        break;
                    }
                    Some(_) => {}
                    None => break,
                },
                () = stop.cancelled() => {
                    let _ = dialog.hangup().await;
                    break;
                }
            }
        }
        hub.detach(entry.id()).await;
        self.dialogs.remove_dialog(&id);
        Outcome::Ended
    }
}

enum Outcome {
    /// Never connected: the status to report.
    Failed(u16),
    /// Connected, then ended.
    Ended,
}
