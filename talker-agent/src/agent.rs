//! The running agent: the SIP endpoint, the registrations, and the dispatch of
//! incoming SIP transactions; shutdown in the right order.

use crate::calls::Calls;
use crate::config::Config;
use crate::control::{AckWatch, CallControl};
use crate::identity::Identity;
use crate::referred_call::{DialAccount, Dialer};
use crate::registration::{self, AccountHandle, RegistrationPlan};
use crate::trust::Trust;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::Uri;
use splitdial_sip::endpoint::{self, EndpointConfig};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// A started agent.
pub struct Agent {
    /// The talker id.
    pub id: String,
    /// The local SIP address.
    pub sip_addr: SocketAddr,
    /// Every account, with its registration state.
    pub accounts: Vec<AccountHandle>,
    /// The live calls.
    pub calls: Calls,
    /// Token checks (call and owner tokens).
    pub trust: Arc<Trust>,
    /// The talker's key.
    pub identity: Arc<Identity>,
    /// The local status API's address (advertised over mDNS).
    pub status_addr: SocketAddr,
    stop: CancellationToken,
    hang_up: CancellationToken,
    status_stop: CancellationToken,
    status_task: tokio::task::JoinHandle<()>,
    advertising: crate::advertise::Advertising,
    registrations: Vec<tokio::task::JoinHandle<()>>,
    heartbeat: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
    endpoint_task: tokio::task::JoinHandle<()>,
    endpoint_cancel: CancellationToken,
}

/// Errors starting the agent.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration (including secret files) is unusable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The key or state directory is unusable.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// The SIP endpoint could not start.
    #[error("SIP endpoint: {0}")]
    Sip(#[from] splitdial_sip::Error),
    /// The status API could not listen.
    #[error("status API on {addr}: {source}")]
    Status {
        /// The address asked for.
        addr: SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
    /// mDNS advertising could not start.
    #[error("mDNS advertising: {0}")]
    Advertise(#[from] crate::advertise::AdvertiseError),
    /// The enrollment file is unusable.
    #[error(transparent)]
    Enrollment(#[from] crate::enrollment::EnrollmentError),
}

impl Agent {
    /// Starts the agent described by `config` (read from `config_path`).
    pub async fn start(config: Config, config_path: &Path) -> Result<Self, StartError> {
        let identity = Arc::new(Identity::load_or_create(&config.state_dir)?);
        let id = config.id.clone().unwrap_or_else(|| identity.derived_id());
        let enrollment = crate::enrollment::Enrollment::load(&config.state_dir)?;
        match &enrollment {
            Some(enrollment) if enrollment.talker_id != id => {
                return Err(crate::enrollment::EnrollmentError::File {
                    path: config.state_dir.join(crate::enrollment::ENROLLMENT_FILE),
                    problem: format!(
                        "enrolled as {:?} but this talker's id is {id:?}; enroll again",
                        enrollment.talker_id
                    ),
                }
                .into());
            }
            Some(_) => {}
            None if config.matcher_url.is_some() => {
                info!("not enrolled with the matcher (talker-agent enroll): no heartbeats");
            }
            None => {}
        }
        let mut passwords = Vec::new();
        for (i, account) in config.accounts.iter().enumerate() {
            passwords.push(account.load_password(config_path, i)?);
        }
        let endpoint_cancel = CancellationToken::new();
        let bound = endpoint::bind(EndpointConfig {
            listen: config.sip.listen,
            user_agent: format!("splitdial-talker-agent/{}", env!("CARGO_PKG_VERSION")),
            proxy: false,
            inspector: None,
            cancel: endpoint_cancel.clone(),
            known_domains: config
                .accounts
                .iter()
                .map(|a| (a.server.clone(), a.proxy))
                .collect(),
        })
        .await?;
        let sip_addr = bound.local;
        let flows = bound.flows;
        let endpoint = bound.endpoint;
        let inner = endpoint.inner.clone();
        let dialogs = Arc::new(DialogLayer::new(inner.clone()));
        let trust = Arc::new(Trust::new(id.clone()));
        if let Some(key) = &config.matcher_key {
            trust
                .pin_base64(key)
                .map_err(|e| crate::config::ConfigError {
                    path: config_path.display().to_string(),
                    field: "matcher_key".into(),
                    problem: e.to_string(),
                })?;
        }
        // The matcher keys learnt at enrollment (and from later heartbeats).
        if let Some(enrollment) = &enrollment {
            trust.set_matcher_keys(&enrollment.decoded_keys());
        }
        let media = crate::media::settings::from_config(&config, config_path)?;
        let calls = Calls::default();
        let hang_up = CancellationToken::new();
        let dialer = Arc::new(Dialer {
            calls: calls.clone(),
            dialogs: dialogs.clone(),
            accounts: config
                .accounts
                .iter()
                .zip(&passwords)
                .map(|(a, password)| DialAccount::new(a, password.clone()))
                .collect(),
            local: sip_addr,
            flows: flows.clone(),
            media,
        });
        let contact = Uri::try_from(format!("sip:talker@{sip_addr}").as_str())
            .map_err(|e| splitdial_sip::Error::Parse(e.to_string()))?;
        let control = Arc::new(CallControl {
            dialogs,
            trust: trust.clone(),
            calls: calls.clone(),
            contact,
            local_ip: sip_addr.ip(),
            policy: config.answer.clone(),
            dialer,
            shutdown: hang_up.clone(),
            acks: AckWatch::default(),
        });
        let mut incoming = endpoint
            .incoming_transactions()
            .map_err(splitdial_sip::Error::from)?;
        let endpoint_task = tokio::spawn(async move {
            let serve = endpoint.serve();
            tokio::pin!(serve);
            loop {
                tokio::select! {
                    () = &mut serve => break,
                    tx = incoming.recv() => {
                        let Some(tx) = tx else { break };
                        tokio::spawn(control.clone().dispatch(tx));
                    }
                }
            }
        });

        let stop = CancellationToken::new();
        let mut accounts = Vec::new();
        let mut registrations = Vec::new();
        for (account, password) in config.accounts.iter().zip(passwords.clone()) {
            let plan = RegistrationPlan {
                domain: account.server.clone(),
                proxy: account.proxy,
                tcp: account.transport == crate::config::Transport::Tcp,
                user: account.user.clone(),
                password,
                expires: account.expires,
                contact_addr: sip_addr,
                instance: identity.instance_urn(),
            };
            let (handle, task) =
                registration::spawn(inner.clone(), flows.clone(), plan, stop.child_token());
            accounts.push(handle);
            registrations.push(task);
        }
        let heartbeat = enrollment.map(|enrollment| {
            let stop = CancellationToken::new();
            let plan = crate::heartbeat::HeartbeatPlan {
                enrollment,
                state_dir: config.state_dir.clone(),
                accounts: accounts.clone(),
                busy: calls.busy(),
                trust: trust.clone(),
            };
            (stop.clone(), crate::heartbeat::spawn(plan, stop))
        });
        let listener = tokio::net::TcpListener::bind(config.status.listen)
            .await
            .map_err(|source| StartError::Status {
                addr: config.status.listen,
                source,
            })?;
        let status_addr = listener.local_addr().map_err(|source| StartError::Status {
            addr: config.status.listen,
            source,
        })?;
        let status_state = crate::status_api::StatusState::new(
            &config,
            id.clone(),
            accounts.clone(),
            calls.clone(),
            trust.clone(),
            identity.clone(),
        );
        let status_stop = CancellationToken::new();
        let status_cancel = status_stop.clone();
        let status_task = tokio::spawn(async move {
            if let Err(e) = crate::status_api::serve(listener, status_state, status_cancel).await {
                tracing::warn!(error = %e, "status API stopped");
            }
        });
        let advertising =
            crate::advertise::Advertising::start(&config, &id, status_addr.port(), calls.busy())?;
        info!(%id, name = %config.name, %sip_addr, %status_addr, "talker agent started");
        Ok(Self {
            id,
            sip_addr,
            accounts,
            calls,
            trust,
            identity,
            status_addr,
            hang_up,
            status_stop,
            status_task,
            advertising,
            stop,
            registrations,
            heartbeat,
            endpoint_task,
            endpoint_cancel,
        })
    }

    /// Graceful shutdown, in order: hang up every call (BYE, CANCEL), stop the
    /// media worker, un-register
    /// every account, send the matcher a last heartbeat, say goodbye over mDNS,
    /// then stop the status API and the SIP endpoint.
    pub async fn shutdown(self) {
        self.hang_up.cancel();
        self.calls.hang_up_all();
        // Every call's BYE is bounded by SHUTDOWN_BYE_LIMIT (a dead peer cannot
        // hold shutdown); wait for them to finish before un-registering.
        let calls_limit = crate::control::SHUTDOWN_BYE_LIMIT + Duration::from_secs(1);
        let _ = tokio::time::timeout(calls_limit, self.calls.all_ended()).await;
        // The calls' media stopped with them; this ends the worker even if one did not.
        crate::media::worker::MediaWorker::shared()
            .shut_down()
            .await;
        self.stop.cancel();
        for task in self.registrations {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        if let Some((stop, task)) = self.heartbeat {
            stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(4), task).await;
        }
        self.advertising.shutdown().await;
        self.status_stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(4), self.status_task).await;
        self.endpoint_cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint_task).await;
        info!("talker agent stopped");
    }
}
