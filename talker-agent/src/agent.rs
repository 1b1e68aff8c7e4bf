//! The running agent: the SIP endpoint, the registrations, and the dispatch of
//! incoming SIP transactions; shutdown in the right order.

use crate::config::Config;
use crate::identity::Identity;
use crate::registration::{self, AccountHandle, RegistrationPlan};
use rsipstack::sip::{Method, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use splitdial_sip::endpoint::{self, EndpointConfig};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

/// A started agent.
pub struct Agent {
    /// The talker id.
    pub id: String,
    /// The local SIP address.
    pub sip_addr: SocketAddr,
    /// Every account, with its registration state.
    pub accounts: Vec<AccountHandle>,
    stop: CancellationToken,
    registrations: Vec<tokio::task::JoinHandle<()>>,
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
}

impl Agent {
    /// Starts the agent described by `config` (read from `config_path`).
    pub async fn start(config: Config, config_path: &Path) -> Result<Self, StartError> {
        let identity = Identity::load_or_create(&config.state_dir)?;
        let id = config.id.clone().unwrap_or_else(|| identity.derived_id());
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
        })
        .await?;
        let sip_addr = bound.local;
        let endpoint = bound.endpoint;
        let inner = endpoint.inner.clone();
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
                        tokio::spawn(dispatch(tx));
                    }
                }
            }
        });

        let stop = CancellationToken::new();
        let mut accounts = Vec::new();
        let mut registrations = Vec::new();
        for (account, password) in config.accounts.iter().zip(passwords) {
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
            let (handle, task) = registration::spawn(inner.clone(), plan, stop.child_token());
            accounts.push(handle);
            registrations.push(task);
        }
        info!(%id, name = %config.name, %sip_addr, "talker agent started");
        Ok(Self {
            id,
            sip_addr,
            accounts,
            stop,
            registrations,
            endpoint_task,
            endpoint_cancel,
        })
    }

    /// Graceful shutdown: un-register every account, then stop the endpoint.
    pub async fn shutdown(self) {
        self.stop.cancel();
        for task in self.registrations {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        self.endpoint_cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint_task).await;
        info!("talker agent stopped");
    }
}

/// Handles one incoming transaction.
async fn dispatch(mut tx: Transaction) {
    let method = tx.original.method;
    debug!(%method, "incoming request");
    let status = match method {
        Method::Options => StatusCode::OK,
        // Calls arrive with the control-leg work; until then, say so honestly.
        _ => StatusCode::NotImplemented,
    };
    let _ = tx.reply(status).await;
}
