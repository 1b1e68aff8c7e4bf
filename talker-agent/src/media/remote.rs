//! The agent's handles on what runs in the media worker: a two-party [`RemoteSession`] and an
//! audio mix, [`RemoteConference`]. Each turns its methods into requests to the shared
//! [`MediaWorker`] and keeps it running while it lives; one dropped without being stopped is
//! stopped in the background, so the worker can still exit when nothing is left.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};

use splitdial_media::protocol::{LegPorts, Operation, Outcome};
use splitdial_media::{
    AllocatedPorts, ConferenceStats, LegId, MediaError, MediaSettings, MediaStats, Negotiated,
};

use super::worker::{Handle, MediaWorker, SLOW_REQUEST, STATS_REQUEST};

/// The agent's handle on one two-party session running in the worker.
pub struct RemoteSession {
    plan: Negotiated,
    /// `None` for a plan that carries no media: nothing runs, so no worker is needed.
    handle: Option<Handle>,
    stopped: AtomicBool,
}

impl RemoteSession {
    /// Starts a session for a negotiated plan on the reserved ports (their sockets go to the
    /// worker). A plan with only inactive streams starts nothing.
    pub async fn start(
        plan: &Negotiated,
        settings: &MediaSettings,
        ports: AllocatedPorts,
    ) -> Result<Self, MediaError> {
        let handle = if plan.carries_media() {
            let (ports, sockets) = ports.into_passed();
            let (handle, _) = MediaWorker::shared()
                .create(
                    |session| Operation::StartSession {
                        session,
                        plan: plan.clone(),
                        settings: settings.clone(),
                        ports,
                    },
                    sockets,
                )
                .await?;
            Some(handle)
        } else {
            None
        };
        Ok(Self {
            plan: plan.clone(),
            handle,
            stopped: AtomicBool::new(false),
        })
    }

    /// The plan this session runs.
    pub fn plan(&self) -> &Negotiated {
        &self.plan
    }

    /// Current counters and measurements (zeros when nothing runs or the worker is gone).
    pub async fn stats(&self) -> Result<MediaStats, MediaError> {
        let Some(handle) = self
            .handle
            .filter(|_| !self.stopped.load(Ordering::Acquire))
        else {
            return Ok(MediaStats::unused(&self.plan));
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
        self.handle
    }

    /// Ends the session cleanly (EOS, teardown); later calls do nothing.
    pub async fn stop(&self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(handle) = self.handle {
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
            .handle
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
