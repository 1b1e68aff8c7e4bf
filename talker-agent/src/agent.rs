//! The running agent: the SIP endpoint, the registrations, and the dispatch of
//! incoming SIP transactions; shutdown in the right order.

use crate::advertise::Advertising;
use crate::calls::Calls;
use crate::config::{Config, ConfigError, Transport};
use crate::control::{AckWatch, CallControl};
use crate::enrollment::{ENROLLMENT_FILE, Enrollment, EnrollmentError};
use crate::heartbeat::HeartbeatPlan;
use crate::identity::Identity;
use crate::referred_call::{DialAccount, Dialer};
use crate::registration::{self, AccountHandle, RegistrationPlan};
use crate::status_api::StatusState;
use crate::trust::Trust;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::Uri;
use rsipstack::transaction::endpoint::EndpointInner;
use splitdial_media::MediaSettings;
use splitdial_sip::endpoint::{self, BoundEndpoint, EndpointConfig};
use splitdial_sip::tcp_flow::OutboundFlows;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

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
    /// Cancelled at shutdown: every call hangs up.
    hang_up: CancellationToken,
    status: StoppableTask,
    advertising: Advertising,
    registrations: Registrations,
    heartbeat: Option<StoppableTask>,
    /// The SIP endpoint serving incoming transactions (its token also stops the transport).
    endpoint: StoppableTask,
}

/// A background task and the token that asks it to stop.
struct StoppableTask {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl StoppableTask {
    /// Starts the task `start` makes, handing it the token that will ask it to stop.
    fn spawn(start: impl FnOnce(CancellationToken) -> JoinHandle<()>) -> Self {
        let stop = CancellationToken::new();
        let task = start(stop.clone());
        Self { stop, task }
    }

    /// Asks the task to stop and waits for it to end, at most `limit`.
    async fn stop(self, limit: Duration) {
        self.stop.cancel();
        let _ = tokio::time::timeout(limit, self.task).await;
    }
}

/// The tasks that keep the accounts registered.
struct Registrations {
    /// Each task holds a child of it.
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Registrations {
    /// Un-registers every account, waiting at most `limit` for each.
    async fn stop(self, limit: Duration) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout(limit, task).await;
        }
    }
}

/// Errors starting the agent.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration (including secret files) is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The key or state directory is unusable.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// The SIP endpoint could not start (boxed: the SIP layer's errors are large, and
    /// the start's steps pass this one along).
    #[error("SIP endpoint: {0}")]
    Sip(Box<splitdial_sip::Error>),
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
    Enrollment(#[from] EnrollmentError),
}

impl From<splitdial_sip::Error> for StartError {
    fn from(e: splitdial_sip::Error) -> Self {
        Self::Sip(Box::new(e))
    }
}

impl Agent {
    /// Starts the agent described by `config` (read from `config_path`).
    pub async fn start(config: Config, config_path: &Path) -> Result<Self, StartError> {
        let identity = Arc::new(Identity::load_or_create(&config.state_dir)?);
        let id = config.id.clone().unwrap_or_else(|| identity.derived_id());
        let enrollment = checked_enrollment(&config, &id)?;
        let passwords = passwords(&config, config_path)?;
        let endpoint_stop = CancellationToken::new();
        let bound = endpoint::bind(endpoint_config(&config, endpoint_stop.clone())).await?;
        let trust = trust(&config, config_path, &id, enrollment.as_ref())?;
        let calls = Calls::default();
        let hang_up = CancellationToken::new();
        let sip = CallPlan {
            config: &config,
            config_path,
            passwords: &passwords,
            trust: &trust,
            calls: &calls,
            hang_up: &hang_up,
        }
        .serve(bound, endpoint_stop)?;
        let plans = registration_plans(&config, passwords, sip.addr, &identity);
        let (accounts, registrations) = register(plans, &sip.endpoint, &sip.flows);
        let heartbeat = enrollment.map(|enrollment| {
            let plan = HeartbeatPlan {
                enrollment,
                state_dir: config.state_dir.clone(),
                accounts: accounts.clone(),
                busy: calls.busy(),
                trust: trust.clone(),
                matcher_roots: config.matcher_roots(),
            };
            StoppableTask::spawn(|stop| crate::heartbeat::spawn(plan, stop))
        });
        let status = StatusState::new(
            &config,
            id.clone(),
            accounts.clone(),
            calls.clone(),
            trust.clone(),
            identity.clone(),
        );
        let (status_addr, status) = serve_status(&config, status).await?;
        let advertising = Advertising::start(&config, &id, status_addr.port(), calls.busy())?;
        info!(%id, name = %config.name, sip_addr = %sip.addr, %status_addr, "talker agent started");
        Ok(Self {
            id,
            sip_addr: sip.addr,
            accounts,
            calls,
            trust,
            identity,
            status_addr,
            hang_up,
            status,
            advertising,
            registrations,
            heartbeat,
            endpoint: sip.task,
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
        self.registrations.stop(Duration::from_secs(5)).await;
        if let Some(heartbeat) = self.heartbeat {
            heartbeat.stop(Duration::from_secs(4)).await;
        }
        self.advertising.shutdown().await;
        self.status.stop(Duration::from_secs(4)).await;
        self.endpoint.stop(Duration::from_secs(2)).await;
        info!("talker agent stopped");
    }
}

/// Each account's password, in the configuration's order.
fn passwords(config: &Config, config_path: &Path) -> Result<Vec<String>, ConfigError> {
    config
        .accounts
        .iter()
        .enumerate()
        .map(|(i, account)| account.load_password(config_path, i))
        .collect()
}

/// The enrollment in the state directory, if any; refused when it names another talker.
fn checked_enrollment(config: &Config, id: &str) -> Result<Option<Enrollment>, EnrollmentError> {
    let enrollment = Enrollment::load(&config.state_dir)?;
    match &enrollment {
        Some(enrollment) if enrollment.talker_id != id => {
            return Err(EnrollmentError::File {
                path: config.state_dir.join(ENROLLMENT_FILE),
                problem: format!(
                    "enrolled as {:?} but this talker's id is {id:?}; enroll again",
                    enrollment.talker_id
                ),
            });
        }
        Some(_) => {}
        None if config.matcher_url.is_some() => {
            info!("not enrolled with the matcher (talker-agent enroll): no heartbeats");
        }
        None => {}
    }
    Ok(enrollment)
}

/// The SIP endpoint the configuration asks for; `stop` ends its transport.
fn endpoint_config(config: &Config, stop: CancellationToken) -> EndpointConfig {
    EndpointConfig {
        listen: config.sip.listen,
        user_agent: format!("splitdial-talker-agent/{}", env!("CARGO_PKG_VERSION")),
        proxy: false,
        inspector: None,
        cancel: stop,
        known_domains: config
            .accounts
            .iter()
            .map(|a| (a.server.clone(), a.proxy))
            .collect(),
    }
}

/// The token checks: the key pinned in the configuration and the matcher keys learnt at
/// enrollment (later heartbeats bring newer ones).
fn trust(
    config: &Config,
    config_path: &Path,
    id: &str,
    enrollment: Option<&Enrollment>,
) -> Result<Arc<Trust>, ConfigError> {
    let trust = Arc::new(Trust::new(id.to_owned()));
    if let Some(enrollment) = enrollment {
        trust.revoke_remembered(&enrollment.revoked);
    }
    if let Some(key) = &config.matcher_key {
        let kid = trust.pin_base64(key).map_err(|e| ConfigError {
            path: config_path.display().to_string(),
            field: "matcher_key".into(),
            problem: e.to_string(),
        })?;
        if trust.is_revoked(&kid) {
            warn!(
                config = %config_path.display(),
                %kid,
                "matcher_key names a key the matcher revoked: not trusted; remove it"
            );
        }
    }
    if let Some(enrollment) = enrollment {
        trust.set_matcher_keys(&enrollment.decoded_keys());
    }
    Ok(trust)
}

/// What the call handlers are made of.
struct CallPlan<'a> {
    config: &'a Config,
    config_path: &'a Path,
    passwords: &'a [String],
    trust: &'a Arc<Trust>,
    calls: &'a Calls,
    /// Cancelled at shutdown: every call hangs up.
    hang_up: &'a CancellationToken,
}

/// The SIP endpoint serving the call handlers.
struct Sip {
    /// The local SIP address.
    addr: SocketAddr,
    /// What the registrations send through.
    endpoint: Arc<EndpointInner>,
    flows: OutboundFlows,
    /// The endpoint's task; its token also ends the transport.
    task: StoppableTask,
}

impl CallPlan<'_> {
    /// Serves the endpoint `bound` until `stop`: each incoming transaction goes to the
    /// call handlers on a task of its own.
    fn serve(self, bound: BoundEndpoint, stop: CancellationToken) -> Result<Sip, StartError> {
        let media = crate::media::settings::from_config(self.config, self.config_path)?;
        let contact = Uri::try_from(format!("sip:talker@{}", bound.local).as_str())
            .map_err(|e| splitdial_sip::Error::Parse(e.to_string()))?;
        let control = self.call_control(&bound, contact, media);
        let incoming = bound
            .endpoint
            .incoming_transactions()
            .map_err(splitdial_sip::Error::from)?;
        let endpoint = bound.endpoint.inner.clone();
        let task = StoppableTask {
            task: tokio::spawn(endpoint::serve_transactions(
                bound.endpoint,
                incoming,
                move |tx| control.clone().dispatch(tx),
            )),
            stop,
        };
        Ok(Sip {
            addr: bound.local,
            endpoint,
            flows: bound.flows,
            task,
        })
    }

    /// The handlers of incoming requests, with the dialer that places referred calls
    /// with the device's own accounts.
    fn call_control(
        &self,
        bound: &BoundEndpoint,
        contact: Uri,
        media: MediaSettings,
    ) -> Arc<CallControl> {
        let dialogs = Arc::new(DialogLayer::new(bound.endpoint.inner.clone()));
        let accounts = self.config.accounts.iter().zip(self.passwords);
        let dialer = Arc::new(Dialer {
            calls: self.calls.clone(),
            dialogs: dialogs.clone(),
            accounts: accounts
                .map(|(account, password)| DialAccount::new(account, password.clone()))
                .collect(),
            local: bound.local,
            flows: bound.flows.clone(),
            media,
        });
        Arc::new(CallControl {
            dialogs,
            trust: self.trust.clone(),
            calls: self.calls.clone(),
            contact,
            local_ip: bound.local.ip(),
            policy: self.config.answer.clone(),
            dialer,
            shutdown: self.hang_up.clone(),
            acks: AckWatch::default(),
        })
    }
}

/// What each account's registration needs: the account, its password, our contact
/// address and the device's `+sip.instance`.
fn registration_plans(
    config: &Config,
    passwords: Vec<String>,
    contact_addr: SocketAddr,
    identity: &Identity,
) -> Vec<RegistrationPlan> {
    config
        .accounts
        .iter()
        .zip(passwords)
        .map(|(account, password)| RegistrationPlan {
            domain: account.server.clone(),
            proxy: account.proxy,
            tcp: account.transport == Transport::Tcp,
            user: account.user.clone(),
            password,
            expires: account.expires,
            contact_addr,
            instance: identity.instance_urn(),
        })
        .collect()
}

/// Starts keeping every account registered.
fn register(
    plans: Vec<RegistrationPlan>,
    endpoint: &Arc<EndpointInner>,
    flows: &OutboundFlows,
) -> (Vec<AccountHandle>, Registrations) {
    let stop = CancellationToken::new();
    let (accounts, tasks) = plans
        .into_iter()
        .map(|plan| registration::spawn(endpoint.clone(), flows.clone(), plan, stop.child_token()))
        .unzip();
    (accounts, Registrations { stop, tasks })
}

/// Serves the status API on the configured address until stopped; the address it got.
async fn serve_status(
    config: &Config,
    state: StatusState,
) -> Result<(SocketAddr, StoppableTask), StartError> {
    let status_error = |source| StartError::Status {
        addr: config.status.listen,
        source,
    };
    let listener = TcpListener::bind(config.status.listen)
        .await
        .map_err(status_error)?;
    let addr = listener.local_addr().map_err(status_error)?;
    let tls = state
        .identity
        .tls_config()
        .map_err(|e| status_error(std::io::Error::other(e)))?;
    let task = StoppableTask::spawn(|stop| {
        tokio::spawn(async move {
            if let Err(e) = crate::status_api::serve(listener, tls, state, stop).await {
                warn!(error = %e, "status API stopped");
            }
        })
    });
    Ok((addr, task))
}
