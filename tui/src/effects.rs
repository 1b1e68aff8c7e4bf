//! Performs the [`Effect`]s the state machine asks for, each in its own task,
//! and sends each result back as an [`Action`] on the runtime's channel, so
//! the UI never waits on the network.

use crate::app::{Action, Effect, OwnerAction};
use crate::config::Config;
use crate::matcher_client::MatcherClient;
use crate::model::Problem;
use crate::talker_client::TalkerClient;
use std::net::SocketAddr;
use tokio::sync::mpsc::UnboundedSender;

/// Why the network side could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The matcher client could not be built (bad URL).
    #[error("matcher: {0}")]
    Matcher(Problem),
    /// The talker client could not be built.
    #[error("talkers: {0}")]
    Talker(Problem),
}

/// Performs effects. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Network {
    /// `None` when the matcher URL or the token is not configured: every
    /// matcher effect then answers with [`not_configured`]'s problem.
    matcher: Option<MatcherClient>,
    /// Why `matcher` is `None`.
    missing: Problem,
    talkers: TalkerClient,
    /// Where `last_call` is remembered (for `splitdial hangup` without CALL).
    state_dir: Option<std::path::PathBuf>,
}

/// The problem every matcher effect answers with when the dialer lacks the
/// matcher URL or the token: `Refused` with status 0 and code
/// `not_configured`, the message saying how to set it.
pub fn not_configured(config: &Config) -> Problem {
    let message = if config.matcher_url.is_none() {
        "no matcher URL: set matcher_url in config.toml, SPLITDIAL_MATCHER_URL or --matcher-url"
    } else {
        "no token: set token in config.toml, SPLITDIAL_TOKEN or --token-file"
    };
    Problem::Refused {
        status: 0,
        code: "not_configured".into(),
        message: message.into(),
        caller_servers: Vec::new(),
        callee_servers: Vec::new(),
    }
}

impl Network {
    /// Builds the clients from the configuration. A missing matcher URL or
    /// token is not an error here (the error pane says so on the first load).
    pub fn new(config: &Config) -> Result<Network, NetworkError> {
        let matcher = match (&config.matcher_url, &config.token) {
            (Some(url), Some(token)) => Some(
                MatcherClient::new(url, token.clone(), &config.matcher_trust())
                    .map_err(NetworkError::Matcher)?,
            ),
            _ => None,
        };
        let talkers = TalkerClient::new().map_err(NetworkError::Talker)?;
        let missing = not_configured(config);
        if matcher.is_none() {
            tracing::warn!(problem = %missing, "the matcher is not configured");
        }
        Ok(Network {
            matcher,
            missing,
            talkers,
            state_dir: crate::config::state_dir(&crate::config::process_env),
        })
    }

    /// Remembers placed calls in `dir/last_call` instead of the XDG state
    /// directory (`None`: nowhere).
    pub fn remember_calls_in(mut self, dir: Option<std::path::PathBuf>) -> Self {
        self.state_dir = dir;
        self
    }

    /// The matcher client, if configured.
    pub fn matcher(&self) -> Option<&MatcherClient> {
        self.matcher.as_ref()
    }

    /// Runs `effect` in a task; its result comes back on `actions`.
    pub fn spawn(&self, effect: Effect, actions: UnboundedSender<Action>) {
        let network = self.clone();
        tokio::spawn(async move { network.perform(effect, actions).await });
    }

    fn matcher_or_problem(&self) -> Result<&MatcherClient, Problem> {
        self.matcher.as_ref().ok_or_else(|| self.missing.clone())
    }

    /// Performs one effect, sending its action(s); returns when done (a
    /// followed call: after its final state or when its stream is lost).
    pub async fn perform(&self, effect: Effect, actions: UnboundedSender<Action>) {
        let send = |action: Action| {
            // The runtime is gone (quitting): nothing left to tell.
            let _ = actions.send(action);
        };
        match effect {
            Effect::LoadMe => send(Action::Me(
                async { self.matcher_or_problem()?.me().await }.await,
            )),
            Effect::LoadTalkers => send(Action::RegisteredTalkers(
                async { self.matcher_or_problem()?.talkers().await }.await,
            )),
            Effect::LoadContacts => send(Action::Contacts(
                async { self.matcher_or_problem()?.contacts().await }.await,
            )),
            Effect::LoadRoutes {
                callee,
                talkers,
                video,
            } => {
                let result = async {
                    self.matcher_or_problem()?
                        .routes(&callee, &talkers, video)
                        .await
                }
                .await;
                send(Action::Routes { callee, result });
            }
            Effect::Verify {
                talker_id,
                dialed,
                public_key,
            } => {
                let result = self
                    .talkers
                    .verify(&talker_id, dialed, &public_key)
                    .await
                    .map_err(|e| e.to_string());
                if let Err(reason) = &result {
                    tracing::info!(talker = %talker_id, %dialed, %reason, "talker not verified");
                }
                send(Action::Verified {
                    talker_id,
                    dialed,
                    result,
                });
            }
            Effect::PollStatus {
                talker_id,
                dialed,
                public_key,
            } => {
                let result = self.talkers.status(dialed, &public_key).await;
                send(Action::TalkerStatus { talker_id, result });
            }
            Effect::PlaceCall {
                callee,
                talkers,
                video,
            } => {
                let result = async {
                    self.matcher_or_problem()?
                        .place_call(&callee, &talkers, video)
                        .await
                }
                .await;
                if let (Ok(call), Some(dir)) = (&result, &self.state_dir) {
                    remember_last_call(dir, &call.call);
                }
                send(Action::CallPlaced(result));
            }
            Effect::FollowCall { call } => {
                let matcher = match self.matcher_or_problem() {
                    Ok(m) => m,
                    Err(problem) => return send(Action::CallStreamLost(problem.to_string())),
                };
                let mut events = matcher.follow_call(&call);
                let mut finished = false;
                while let Some(event) = events.next().await {
                    match event {
                        Ok(event) => {
                            finished = event.state.is_final();
                            send(Action::CallEvent(event));
                        }
                        Err(problem) => {
                            send(Action::CallStreamLost(problem.to_string()));
                            return;
                        }
                    }
                }
                if !finished {
                    send(Action::CallStreamLost(
                        "the event stream ended early".into(),
                    ));
                }
            }
            Effect::HangUp { call } => send(Action::HungUp(
                async { self.matcher_or_problem()?.hang_up(&call).await.map(|_| ()) }.await,
            )),
            Effect::AddParty { call, callee } => send(Action::PartyAdded(
                async { self.matcher_or_problem()?.add_party(&call, &callee).await }.await,
            )),
            Effect::OwnerAction {
                talker_id,
                dialed,
                public_key,
                call_id,
                sip_call_id,
                action,
            } => {
                let talker = VerifiedTalker {
                    id: &talker_id,
                    dialed,
                    public_key: &public_key,
                };
                let result = self
                    .owner_action(&talker, call_id, &sip_call_id, action)
                    .await;
                send(Action::OwnerActionDone {
                    talker_id,
                    action,
                    result,
                });
            }
        }
    }

    /// Fetches an owner token for `action` from the matcher and sends the
    /// action to the verified `talker`.
    pub async fn owner_action(
        &self,
        talker: &VerifiedTalker<'_>,
        call_id: u64,
        sip_call_id: &str,
        action: OwnerAction,
    ) -> Result<(), Problem> {
        let token = self
            .matcher_or_problem()?
            .owner_token(talker.id, action, sip_call_id)
            .await?;
        self.talkers
            .owner_action(
                talker.dialed,
                talker.public_key,
                call_id,
                action,
                &token.token,
            )
            .await
    }
}

/// A talker the dialer verified: where, and with which registry key (its TLS
/// handshake must prove that key again on every connection).
#[derive(Debug, Clone, Copy)]
pub struct VerifiedTalker<'a> {
    /// The talker id.
    pub id: &'a str,
    /// Its verified address.
    pub dialed: SocketAddr,
    /// The registry's key for it (standard base64).
    pub public_key: &'a str,
}

/// Writes `call` to `dir/last_call` (best effort: a failure is logged).
pub fn remember_last_call(dir: &std::path::Path, call: &str) {
    use std::os::unix::fs::DirBuilderExt;
    let result = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .and_then(|()| std::fs::write(dir.join("last_call"), format!("{call}\n")));
    if let Err(error) = result {
        tracing::warn!(dir = %dir.display(), %error, "could not remember the last call");
    }
}

/// Reads `dir/last_call`, if any.
pub fn last_call(dir: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("last_call")).ok()?;
    let call = text.trim();
    (!call.is_empty() && call.len() <= 128).then(|| call.to_owned())
}
