//! Heartbeats to the matcher, once enrolled: every `interval_s` (the matcher's
//! choice, 30 s by default) and soon after the talker's state changes, the
//! agent reports idle/busy and each account's registration and GRUU. Each
//! reply brings the matcher's current token keys, which replace the learnt set,
//! and its clock, from which the agent keeps an offset for token times (the
//! system clock is never set) — both only when the matcher's signature over
//! them checks with a key the talker already holds (see [`crate::trust`]). Failures back off (1 s
//! doubling, at most the interval) and are logged once per change of state.

use crate::enrollment::{Enrollment, EnrollmentError, error_chain, http_client, refusal};
use crate::registration::AccountHandle;
use crate::trust::{KeyUpdate, Trust};
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
    /// What the matcher's certificate chains to (the enrollment's pins are
    /// checked on top).
    pub matcher_roots: splitdial_tls::TrustRoots,
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

async fn run(plan: HeartbeatPlan, stop: CancellationToken) {
    let client = match http_client(&plan.matcher_roots, &plan.enrollment.tls_pins) {
        Ok((client, _)) => client,
        Err(e) => {
            warn!(error = %e, "no HTTP client: no heartbeats");
            return;
        }
    };
    let url = format!(
        "{}/v1/talkers/{}/heartbeat",
        plan.enrollment.matcher_url, plan.enrollment.talker_id
    );
    info!(%url, "heartbeats start");
    let mut heartbeats = Heartbeats {
        changes: StateChanges::new(&plan),
        plan,
        client,
        url,
        schedule: Schedule::new(),
        last_answered: None,
        failing: None,
    };
    while heartbeats.wait_for_beat(&stop).await && heartbeats.send(&stop).await {}
    final_beat(&heartbeats.client, &heartbeats.url, &heartbeats.plan).await;
}

/// The heartbeat task's state between beats.
struct Heartbeats {
    plan: HeartbeatPlan,
    client: reqwest::Client,
    url: String,
    schedule: Schedule,
    changes: StateChanges,
    /// The last body the matcher answered; a different one is news.
    last_answered: Option<Heartbeat>,
    /// The kind of failure being retried (each kind is logged once).
    failing: Option<String>,
}

impl Heartbeats {
    /// Waits until the next beat is due: its time, or news (see [`Schedule::due`]);
    /// `false` when the task is to stop instead.
    async fn wait_for_beat(&mut self, stop: &CancellationToken) -> bool {
        loop {
            let news = self.last_answered.as_ref() != Some(&self.plan.body());
            let due = self.schedule.due(news);
            tokio::select! {
                () = stop.cancelled() => return false,
                () = tokio::time::sleep_until(due) => return true,
                () = self.changes.next() => {}
            }
        }
    }

    /// Sends one heartbeat and takes its reply; `false` when the task was stopped
    /// while it was under way.
    async fn send(&mut self, stop: &CancellationToken) -> bool {
        let body = self.plan.body();
        self.schedule.started();
        let sending = beat(
            &self.client,
            &self.url,
            &self.plan.enrollment.credential,
            &body,
        );
        let outcome = tokio::select! {
            () = stop.cancelled() => return false,
            outcome = sending => outcome,
        };
        match outcome.and_then(|(reply, mid)| apply(&mut self.plan, &self.url, &reply, mid)) {
            Ok(interval) => {
                if self.failing.take().is_some() {
                    info!(url = %self.url, "heartbeats answered again");
                }
                self.schedule.answered(interval);
                self.last_answered = Some(body);
            }
            Err(e) => {
                self.log_failure(&e);
                self.schedule.failed();
            }
        }
        true
    }

    /// A failure is a warning the first time its kind is seen, then a debug line.
    fn log_failure(&mut self, e: &EnrollmentError) {
        let kind = failure_kind(e);
        if self.failing.as_deref() == Some(kind.as_str()) {
            debug!(error = %e, "heartbeat failed again");
            return;
        }
        let hint = if matches!(e, EnrollmentError::Refused { status: 401, .. }) {
            "; the credential was refused: enroll again (talker-agent enroll)"
        } else {
            ""
        };
        warn!(error = %e, "heartbeat failed{hint}; retrying with back-off");
        self.failing = Some(kind);
    }
}

/// When heartbeats go out: at the matcher's interval after an answered one, backing
/// off after failures, and early for news.
#[derive(Debug)]
struct Schedule {
    /// The matcher's interval (bounded), [`DEFAULT_INTERVAL`] until it names one.
    interval: Duration,
    /// When the next beat is due without news.
    next: Instant,
    /// When the last beat went out.
    last_beat: Option<Instant>,
    /// The delay after the last failure, while failures go on.
    backoff: Option<Duration>,
}

impl Schedule {
    /// The first beat is due at once.
    fn new() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            next: Instant::now(),
            last_beat: None,
            backoff: None,
        }
    }

    /// When the next beat is due. With `news` (a state the matcher has not been told)
    /// that is as soon as [`MIN_SPACING`] after the last beat allows, unless backing off
    /// after a failure.
    fn due(&self, news: bool) -> Instant {
        if !news || self.backoff.is_some() {
            return self.next;
        }
        let spaced = self
            .last_beat
            .map_or_else(Instant::now, |last| last + MIN_SPACING);
        spaced.min(self.next)
    }

    /// A beat goes out now.
    fn started(&mut self) {
        self.last_beat = Some(Instant::now());
    }

    /// The matcher answered, naming `interval`: the next beat after it.
    fn answered(&mut self, interval: Duration) {
        self.interval = interval;
        self.backoff = None;
        self.next = Instant::now() + interval;
    }

    /// The beat failed: the next after 1 s, doubling, at most the interval.
    fn failed(&mut self) {
        let delay = self
            .backoff
            .map_or(FIRST_BACKOFF, |b| b * 2)
            .min(self.interval);
        self.backoff = Some(delay);
        self.next = Instant::now() + delay;
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

/// Saves the revocations the talker knows of into its enrollment when they grew,
/// so that a restart does not trust a revoked key again (a pinned one included).
fn remember_revocations(plan: &mut HeartbeatPlan) {
    let revoked = plan.trust.revoked_kids();
    if revoked != plan.enrollment.revoked {
        plan.enrollment.revoked = revoked;
        if let Err(e) = plan.enrollment.save(&plan.state_dir) {
            warn!(error = %e, "cannot save the revoked matcher keys");
        }
    }
}

/// Takes keys and clock from a reply whose key set is signed by a matcher key
/// the talker holds ([`Trust::take_update`]); the interval to wait. A reply
/// that is not usable as a whole changes nothing.
fn apply(
    plan: &mut HeartbeatPlan,
    url: &str,
    reply: &HeartbeatReply,
    local_mid: f64,
) -> Result<Duration, EnrollmentError> {
    let update = KeyUpdate {
        keys: &reply.keys,
        revoked: &reply.revoked,
        signatures: &reply.signatures,
        time: reply.time,
    };
    let taken = plan.trust.take_update(&update, local_mid);
    // A revocation holds even from a set that is otherwise refused: keep it now.
    remember_revocations(plan);
    let taken = taken.map_err(|e| EnrollmentError::BadReply {
        url: url.to_owned(),
        problem: format!("trust update refused: {e}"),
    })?;
    if !taken.newly_revoked.is_empty() {
        // Their tokens are refused from now on, whatever their expiry.
        warn!(kids = ?taken.newly_revoked, "the matcher revoked keys: dropped");
    }
    if let Some(offset) = taken.new_offset {
        info!(offset_s = offset, "clock offset to the matcher");
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// On paused time: the first beat at once, the next the matcher's interval after an
    /// answered one; news as soon as `MIN_SPACING` after the last beat allows, but not
    /// while backing off; failures back off from 1 s, doubling up to the interval.
    #[tokio::test(start_paused = true)]
    async fn beats_follow_the_interval_news_the_spacing_and_failures_the_backoff() {
        let start = Instant::now();
        let mut schedule = Schedule::new();
        assert_eq!(schedule.due(false), start);
        schedule.started();
        schedule.answered(30 * SECOND);
        assert_eq!(schedule.due(false), start + 30 * SECOND);
        assert_eq!(schedule.due(true), start + MIN_SPACING);

        tokio::time::advance(5 * SECOND).await;
        schedule.started();
        schedule.failed();
        assert_eq!(schedule.due(false), start + 6 * SECOND);
        assert_eq!(
            schedule.due(true),
            start + 6 * SECOND,
            "news waits out the back-off"
        );
        let mut delays = Vec::new();
        for _ in 0..6 {
            schedule.failed();
            delays.push((schedule.due(false) - Instant::now()).as_secs());
        }
        assert_eq!(delays, [2, 4, 8, 16, 30, 30]);

        schedule.answered(10 * SECOND);
        assert_eq!(schedule.due(false), start + 15 * SECOND);
        assert_eq!(
            schedule.due(true),
            start + 6 * SECOND,
            "spaced from the last beat"
        );
        tokio::time::advance(3 * SECOND).await;
        assert_eq!(schedule.due(true), start + 6 * SECOND, "overdue: at once");
    }

    /// The task wakes when busy/idle or an account's state changes, and for nothing else:
    /// not for a registration refresh that leaves the state as it was.
    #[tokio::test(start_paused = true)]
    async fn a_change_of_busy_or_of_an_account_wakes_the_task() {
        let (busy_tx, busy) = watch::channel(false);
        let accounts = [
            AccountHandle::new("sip:a@home.example".into()),
            AccountHandle::new("sip:b@home.example".into()),
        ];
        let mut changes = StateChanges {
            busy: Some(busy),
            accounts: accounts.iter().map(AccountHandle::watch).collect(),
        };
        let registered = || AccountState::Registered {
            expires: 600,
            gruu: None,
        };
        let hour = 3600 * SECOND;
        assert!(tokio::time::timeout(hour, changes.next()).await.is_err());

        accounts[1].set(registered());
        tokio::time::timeout(SECOND, changes.next())
            .await
            .expect("b registered");
        accounts[1].set(registered());
        assert!(
            tokio::time::timeout(hour, changes.next()).await.is_err(),
            "a refresh is no change"
        );
        busy_tx.send_replace(true);
        tokio::time::timeout(SECOND, changes.next())
            .await
            .expect("busy");
        drop(busy_tx);
        tokio::time::timeout(SECOND, changes.next())
            .await
            .expect("the call registry went away");
        assert!(tokio::time::timeout(hour, changes.next()).await.is_err());
        accounts[0].set(AccountState::Failed {
            reason: "503 Service Unavailable".into(),
        });
        tokio::time::timeout(SECOND, changes.next())
            .await
            .expect("a failed");
    }
}
