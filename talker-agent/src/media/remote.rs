//! The agent's handles on what runs in the media worker: a two-party [`RemoteSession`] and an
//! audio mix, [`RemoteConference`]. Each turns its methods into requests to the shared
//! [`MediaWorker`] and keeps it running while it lives; one dropped without being stopped is
//! stopped in the background, so the worker can still exit when nothing is left.

use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use splitdial_media::protocol::{LegPorts, Operation, Outcome};
use splitdial_media::{
    AllocatedPorts, ConferenceStats, LegId, MediaError, MediaSettings, MediaStats, Negotiated,
};

use super::worker::{Handle, MediaWorker, SLOW_REQUEST, STATS_REQUEST};

/// The agent's handle on one two-party session running in the worker.
pub struct RemoteSession {
    settings: MediaSettings,
    state: Mutex<SessionState>,
    stopped: AtomicBool,
}

/// What a [`RemoteSession`] runs now.
struct SessionState {
    plan: Negotiated,
    /// `None` while the plan carries no media: nothing runs, so no worker is needed.
    handle: Option<Handle>,
    /// The reserved ports while nothing runs, for an update that starts media.
    idle_ports: Option<AllocatedPorts>,
}

impl RemoteSession {
    /// Starts a session for a negotiated plan on the reserved ports (their sockets go to the
    /// worker). A plan with only inactive streams starts nothing and keeps the ports for an
    /// update that does.
    pub async fn start(
        plan: &Negotiated,
        settings: &MediaSettings,
        ports: AllocatedPorts,
    ) -> Result<Self, MediaError> {
        let session = Self {
            settings: settings.clone(),
            state: Mutex::new(SessionState {
                plan: plan.clone(),
                handle: None,
                idle_ports: None,
            }),
            stopped: AtomicBool::new(false),
        };
        if plan.carries_media() {
            let handle = session.start_in_worker(plan, ports).await?;
            session.with_state(|s| s.handle = Some(handle));
        } else {
            session.with_state(|s| s.idle_ports = Some(ports));
        }
        Ok(session)
    }

    async fn start_in_worker(
        &self,
        plan: &Negotiated,
        ports: AllocatedPorts,
    ) -> Result<Handle, MediaError> {
        let (ports, sockets) = ports.into_passed();
        let (handle, _) = MediaWorker::shared()
            .create(
                |session| Operation::StartSession {
                    session,
                    plan: plan.clone(),
                    settings: self.settings.clone(),
                    ports,
                },
                sockets,
            )
            .await?;
        Ok(handle)
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut SessionState) -> T) -> T {
        f(&mut self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn handle(&self) -> Option<Handle> {
        self.with_state(|s| s.handle)
    }

    /// The plan this session runs.
    pub fn plan(&self) -> Negotiated {
        self.with_state(|s| s.plan.clone())
    }

    /// Runs the session on a new plan (the far end re-offered: hold or resume, a new
    /// address, another codec), on the same ports; returns once it runs. On failure the
    /// session goes on with its previous plan (docs/media.md, "Updates"). A session that
    /// ran nothing starts now if the new plan carries media; one whose worker died fails.
    pub async fn update(&self, plan: &Negotiated) -> Result<(), MediaError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(MediaError::Plan("the session has ended".into()));
        }
        if let Some(handle) = self.handle() {
            let op = Operation::UpdateSession {
                session: handle.object,
                plan: plan.clone(),
            };
            MediaWorker::shared().ask(handle, op, SLOW_REQUEST).await?;
        } else if plan.carries_media() {
            let ports = self
                .with_state(|s| s.idle_ports.take())
                .ok_or_else(|| MediaError::Plan("the session's ports are gone".into()))?;
            // The worker closes what it was given if it fails: keep handles to retry later.
            let kept = ports.try_clone().ok();
            match self.start_in_worker(plan, ports).await {
                Ok(handle) => self.with_state(|s| s.handle = Some(handle)),
                Err(e) => {
                    self.with_state(|s| s.idle_ports = kept);
                    return Err(e);
                }
            }
        }
        self.with_state(|s| s.plan = plan.clone());
        Ok(())
    }

    /// Current counters and measurements (zeros when nothing runs or the worker is gone).
    pub async fn stats(&self) -> Result<MediaStats, MediaError> {
        let Some(handle) = self
            .handle()
            .filter(|_| !self.stopped.load(Ordering::Acquire))
        else {
            return Ok(MediaStats::unused(&self.plan()));
        };
        let op = Operation::SessionStats {
            session: handle.object,
        };
        match MediaWorker::shared().ask(handle, op, STATS_REQUEST).await? {
            Outcome::Stats(stats) => Ok(stats),
            other => Err(unexpected(&other)),
        }
    }

    /// Marks the session as ended by the worker itself (it becomes a conference leg), and
    /// gives its handle when it was running.
    fn hand_over(&self) -> Option<Handle> {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return None;
        }
        self.handle()
    }

    /// Ends the session cleanly (EOS, teardown); later calls do nothing.
    pub async fn stop(&self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(handle) = self.handle() {
            let op = Operation::StopSession {
                session: handle.object,
            };
            MediaWorker::shared().destroy(handle, op).await;
        }
    }
}

/// The agent's handle on an audio mix running in the worker: the local source and sink plus
/// any number of legs.
pub struct RemoteConference {
    handle: Handle,
    stopped: AtomicBool,
}

impl RemoteConference {
    /// Starts a mix with no legs yet.
    pub async fn start(settings: &MediaSettings) -> Result<Self, MediaError> {
        let (handle, _) = MediaWorker::shared()
            .create(
                |conference| Operation::StartConference {
                    conference,
                    settings: settings.clone(),
                },
                Vec::new(),
            )
            .await?;
        Ok(Self {
            handle,
            stopped: AtomicBool::new(false),
        })
    }

    /// Adds a party (its audio stream) on its reserved ports.
    pub async fn add_leg(
        &self,
        plan: &Negotiated,
        ports: AllocatedPorts,
    ) -> Result<LegId, MediaError> {
        let (ports, sockets) = ports.into_passed();
        let op = Operation::AddLeg {
            conference: self.handle.object,
            plan: plan.clone(),
            ports: LegPorts::Reserved(ports),
        };
        self.leg_added(op, sockets).await
    }

    /// Moves the party of a running session in: the worker stops the session and the leg
    /// takes over its audio sockets, so the party's RTP keeps arriving on bound ports.
    /// The session is over afterwards, whether or not the leg was added.
    pub async fn add_leg_from_session(
        &self,
        plan: &Negotiated,
        session: &RemoteSession,
    ) -> Result<LegId, MediaError> {
        let handle = session.hand_over().ok_or_else(|| {
            MediaError::Plan("the session has no running media to move into the mix".into())
        })?;
        if handle.generation != self.handle.generation {
            // Its worker died, and the session with it.
            return Err(MediaError::Worker(
                "the session's media worker has exited".into(),
            ));
        }
        let op = Operation::AddLeg {
            conference: self.handle.object,
            plan: plan.clone(),
            ports: LegPorts::FromSession(handle.object),
        };
        let added = self.leg_added(op, Vec::new()).await;
        // The worker ended that session itself; it no longer keeps the worker running.
        MediaWorker::shared().release(handle.generation).await;
        added
    }

    async fn leg_added(&self, op: Operation, sockets: Vec<OwnedFd>) -> Result<LegId, MediaError> {
        match MediaWorker::shared()
            .ask_with(self.handle, op, sockets, SLOW_REQUEST)
            .await?
        {
            Outcome::Leg(id) => Ok(id),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs a party's leg on a new plan (its audio stream; the far end re-offered), on the
    /// same ports; returns once it runs. On failure the leg goes on with its previous plan
    /// (docs/media.md, "Updates").
    pub async fn update_leg(&self, leg: LegId, plan: &Negotiated) -> Result<(), MediaError> {
        let op = Operation::UpdateLeg {
            conference: self.handle.object,
            leg,
            plan: plan.clone(),
        };
        MediaWorker::shared()
            .ask(self.handle, op, SLOW_REQUEST)
            .await
            .map(|_| ())
    }

    /// Removes a party.
    pub async fn remove_leg(&self, leg: LegId) -> Result<(), MediaError> {
        let op = Operation::RemoveLeg {
            conference: self.handle.object,
            leg,
        };
        MediaWorker::shared()
            .ask(self.handle, op, SLOW_REQUEST)
            .await
            .map(|_| ())
    }

    /// Current statistics of the mix and every leg.
    pub async fn stats(&self) -> Result<ConferenceStats, MediaError> {
        let op = Operation::ConferenceStats {
            conference: self.handle.object,
        };
        match MediaWorker::shared()
            .ask(self.handle, op, STATS_REQUEST)
            .await?
        {
            Outcome::ConferenceStats(stats) => Ok(stats),
            other => Err(unexpected(&other)),
        }
    }

    /// Ends the mix cleanly; later calls do nothing.
    pub async fn stop(&self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        let op = Operation::StopConference {
            conference: self.handle.object,
        };
        MediaWorker::shared().destroy(self.handle, op).await;
    }
}

impl Drop for RemoteSession {
    /// A session dropped without [`RemoteSession::stop`] is stopped in the background, so
    /// the worker can still exit when nothing is left.
    fn drop(&mut self) {
        if let Some(handle) = self
            .handle()
            .filter(|_| !self.stopped.load(Ordering::Acquire))
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let op = Operation::StopSession {
                session: handle.object,
            };
            runtime.spawn(async move { MediaWorker::shared().destroy(handle, op).await });
        }
    }
}

impl Drop for RemoteConference {
    /// See [`RemoteSession`]'s `Drop`.
    fn drop(&mut self) {
        if !self.stopped.load(Ordering::Acquire)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (handle, op) = (
                self.handle,
                Operation::StopConference {
                    conference: self.handle.object,
                },
            );
            runtime.spawn(async move { MediaWorker::shared().destroy(handle, op).await });
        }
    }
}

fn unexpected(outcome: &Outcome) -> MediaError {
    MediaError::Worker(format!("unexpected reply {outcome:?}"))
}
