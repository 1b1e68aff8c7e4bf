//! Heartbeats to the matcher, once enrolled: every `interval_s` (the matcher's
//! choice, 30 s by default) and soon after the talker's state changes, the
//! agent reports idle/busy and each account's registration and GRUU. Each
//! authenticated reply brings the matcher's current token keys, which replace
//! the pinned set, and its clock, from which the agent keeps an offset for
//! token times (the system clock is never set). Failures back off (1 s
//! doubling, at most the interval) and are logged once per change of state.

use crate::enrollment::{
    Enrollment, EnrollmentError, decode_keys, error_chain, http_client, refusal,
};
use crate::registration::AccountHandle;
use crate::trust::Trust;
use splitdial_api::{AccountState, Heartbeat, HeartbeatAccount, HeartbeatReply, TalkerState};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// The interval used until the matcher names one.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// The shortest and longest interval the agent accepts from the matcher.
pub const INTERVAL_BOUNDS: (u64, u64) = (1, 3600);
/// The first back-off delay after a failure (doubling up to the interval).
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// A state change is reported early, but never sooner than this after a beat.
pub const MIN_SPACING: Duration = Duration::from_secs(1);
/// The last beat at shutdown may take this long.
const FINAL_BEAT_TIMEOUT: Duration = Duration::from_secs(2);

/// What the heartbeat task needs.
pub struct HeartbeatPlan {
    /// The enrollment (URL, id, credential, last known keys).
    pub enrollment: Enrollment,
    /// Where `enrollment.json` lives (rewritten when the keys change).
    pub state_dir: PathBuf,
    /// The accounts, with their registration state.
    pub accounts: Vec<AccountHandle>,
    /// Busy (true) or idle, from the calls registry.
    pub busy: watch::Receiver<bool>,
    /// Where the keys and the clock offset go.
    pub trust: Arc<Trust>,
}

impl HeartbeatPlan {
    /// The heartbeat as it would be sent now.
    pub fn body(&self) -> Heartbeat {
        Heartbeat {
            state: if *self.busy.borrow() {
                TalkerState::Busy
            } else {
                TalkerState::Idle
            },
            accounts: self
                .accounts
                .iter()
                .map(|a| match a.state() {
                    AccountState::Registered { gruu, .. } => HeartbeatAccount {
                        aor: a.aor.clone(),
                        registered: true,
                        gruu,
                    },
                    _ => HeartbeatAccount {
                        aor: a.aor.clone(),
                        registered: false,
                        gruu: None,
                    },
                })
                .collect(),
        }
    }
}

/// Starts heartbeats; the first goes out at once. On `stop` the task sends one
/// last heartbeat (bounded in time, so the matcher sees the accounts gone) and
/// ends.
pub fn spawn(plan: HeartbeatPlan, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(plan, stop))
}

async fn run(mut plan: HeartbeatPlan, stop: CancellationToken) {
    let client = match http_client() {
        Ok(client) => client,
        Err(e) => {
            warn!(error = %e, "no HTTP client: no heartbeats");
            return;
        }
    };
    let url = format!(
        "{}/v1/talkers/{}/heartbeat",
        plan.enrollment.matcher_url, plan.enrollment.talker_id
    );
    let mut interval = DEFAULT_INTERVAL;
    let mut backoff: Option<Duration> = None;
    let mut failing: Option<String> = None;
    let mut last_sent: Option<Heartbeat> = None;
    let mut last_beat: Option<Instant> = None;
    let mut next = Instant::now();
    let mut changes = StateChanges::new(&plan);
    info!(%url, "heartbeats start");
    loop {
        // Wait for the next beat: its time, or an earlier change of state, at most one
        // beat per MIN_SPACING (not while backing off after a failure).
        loop {
            let news = backoff.is_none() && last_sent.as_ref() != Some(&plan.body());
            let early = last_beat.map_or_else(Instant::now, |t| t + MIN_SPACING);
            let due = if news { early.min(next) } else { next };
            tokio::select! {
                () = stop.cancelled() => {
                    final_beat(&client, &url, &plan).await;
                    return;
                }
                () = tokio::time::sleep_until(due) => break,
                () = changes.next() => {}
            }
        }
        if stop.is_cancelled() {
            final_beat(&client, &url, &plan).await;
            return;
        }
        let body = plan.body();
        last_beat = Some(Instant::now());
        let outcome = tokio::select! {
            () = stop.cancelled() => continue,
            outcome = beat(&client, &url, &plan.enrollment.credential, &body) => outcome,
        };
        match outcome.and_then(|(reply, local_mid)| apply(&mut plan, &url, &reply, local_mid)) {
            Ok(granted) => {
                if failing.take().is_some() {
                    info!(%url, "heartbeats answered again");
                }
                backoff = None;
                interval = granted;
                last_sent = Some(body);
                next = Instant::now() + interval;
            }
            Err(e) => {
                let kind = failure_kind(&e);
                if failing.as_deref() != Some(kind.as_str()) {
                    let hint = if matches!(e, EnrollmentError::Refused { status: 401, .. }) {
                        "; the credential was refused: enroll again (talker-agent enroll)"
                    } else {
                        ""
                    };
                    warn!(error = %e, "heartbeat failed{hint}; retrying with back-off");
                    failing = Some(kind);
                } else {
                    debug!(error = %e, "heartbeat failed again");
                }
                let delay = backoff.map_or(FIRST_BACKOFF, |b| b * 2).min(interval);
                backoff = Some(delay);
                next = Instant::now() + delay;
            }
        }
    }
}

/// What a heartbeat reports, watched: busy or idle, and each account's registration.
struct StateChanges {
    /// `None` once the call registry is gone.
    busy: Option<watch::Receiver<bool>>,
    /// Their senders are the plan's account handles, alive as long as the task.
    accounts: Vec<watch::Receiver<AccountState>>,
}

impl StateChanges {
    fn new(plan: &HeartbeatPlan) -> Self {
        Self {
            busy: Some(plan.busy.clone()),
            accounts: plan.accounts.iter().map(AccountHandle::watch).collect(),
        }
    }

    /// Returns at the next change of state.
    async fn next(&mut self) {
        let Self { busy, accounts } = self;
        let busy_gone = tokio::select! {
            changed = async {
                match busy.as_mut() {
                    Some(busy) => busy.changed().await.is_err(),
                    None => std::future::pending().await,
                }
            } => changed,
            () = any_changed(accounts) => false,
        };
        if busy_gone {
            *busy = None;
        }
    }
}

/// Returns when any of `accounts` changes state (never when there is none).
async fn any_changed(accounts: &mut [watch::Receiver<AccountState>]) {
    let mut changes: Vec<_> = accounts.iter_mut().map(|a| Box::pin(a.changed())).collect();
    std::future::poll_fn(|cx| {
        if changes.iter_mut().any(|c| c.as_mut().poll(cx).is_ready()) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

/// One heartbeat: the reply and our clock (Unix seconds) halfway through.
async fn beat(
    client: &reqwest::Client,
    url: &str,
    credential: &str,
    body: &Heartbeat,
) -> Result<(HeartbeatReply, f64), EnrollmentError> {
    let unreachable = |problem: String| EnrollmentError::Unreachable {
        url: url.to_owned(),
        problem,
    };
    let sent = unix_seconds();
    let response = client
        .post(url)
        .bearer_auth(credential)
        .json(body)
        .send()
        .await
        .map_err(|e| unreachable(error_chain(&e.without_url())))?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| unreachable(error_chain(&e.without_url())))?;
    let received = unix_seconds();
    if status != 200 {
        return Err(refusal(url, status, &bytes));
    }
    let reply: HeartbeatReply =
        serde_json::from_slice(&bytes).map_err(|e| EnrollmentError::BadReply {
            url: url.to_owned(),
            problem: format!("not the 200 body: {e}"),
        })?;
    Ok((reply, (sent + received) / 2.0))
}

/// Takes keys and clock from an authenticated reply; the interval to wait.
/// A reply that is not usable as a whole changes nothing.
fn apply(
    plan: &mut HeartbeatPlan,
    url: &str,
    reply: &HeartbeatReply,
    local_mid: f64,
) -> Result<Duration, EnrollmentError> {
    let bad = |problem: String| EnrollmentError::BadReply {
        url: url.to_owned(),
        problem,
    };
    if !reply.time.is_finite() || reply.time <= 0.0 {
        return Err(bad(format!("time {} is not a Unix time", reply.time)));
    }
    if reply.keys.is_empty() {
        return Err(bad("no matcher key".into()));
    }
    let keys = decode_keys(&reply.keys).map_err(bad)?;
    #[allow(clippy::cast_possible_truncation)] // Rounded seconds; bounded below.
    let offset = (reply.time - local_mid).round().clamp(-1e12, 1e12) as i64;
    if offset != plan.trust.clock_offset() {
        info!(offset_s = offset, "clock offset to the matcher");
        plan.trust.set_clock_offset(offset);
    }
    plan.trust.set_matcher_keys(&keys);
    if reply.keys != plan.enrollment.keys {
        info!(
            kids = ?reply.keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
            "matcher keys changed"
        );
        plan.enrollment.keys = reply.keys.clone();
        if let Err(e) = plan.enrollment.save(&plan.state_dir) {
            warn!(error = %e, "cannot save the new matcher keys");
        }
    }
    let (low, high) = INTERVAL_BOUNDS;
    Ok(Duration::from_secs(
        reply
            .interval_s
            .unwrap_or(DEFAULT_INTERVAL.as_secs())
            .clamp(low, high),
    ))
}

/// The last beat at shutdown, after the accounts un-registered.
async fn final_beat(client: &reqwest::Client, url: &str, plan: &HeartbeatPlan) {
    let body = plan.body();
    match tokio::time::timeout(
        FINAL_BEAT_TIMEOUT,
        beat(client, url, &plan.enrollment.credential, &body),
    )
    .await
    {
        Ok(Ok(_)) => debug!("last heartbeat sent"),
        Ok(Err(e)) => debug!(error = %e, "last heartbeat failed"),
        Err(_) => debug!("last heartbeat timed out"),
    }
}

/// Failures of the same kind are logged once.
fn failure_kind(error: &EnrollmentError) -> String {
    match error {
        EnrollmentError::Refused { status, code, .. } => format!("refused {status} {code}"),
        EnrollmentError::Unreachable { .. } => "unreachable".into(),
        EnrollmentError::BadReply { .. } => "bad reply".into(),
        other => other.to_string(),
    }
}

fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
