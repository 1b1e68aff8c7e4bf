//! Calls as the matcher runs them: the chosen route is handed to the call
//! controller, its progress becomes the SSE states of DESIGN.md, and every
//! state is written to storage as it happens, so a restart loses nothing that
//! matters (calls whose control leg died with the old process end as
//! `lost_control`; their media keeps flowing between the talkers).

use crate::controller::{
    CallControl, CallHandle, CallPlan, Controller, ControllerError, ControllerEvent, PartyId,
    SipTransport,
};
use crate::registry::{Media, TalkerSoftware, Transport};
use crate::route::Route;
use crate::storage::{CallEvent, CallRecord, StorageError, Store};
use splitdial_api::{CallState, EventDetail, PartyState};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// How long the controller waits for the caller's talker and for the callee.
#[derive(Debug, Clone, Copy)]
pub struct CallTimeouts {
    /// The caller's talker must answer the control leg within this.
    pub talker_answer: Duration,
    /// The callee must answer within this after the REFER.
    pub callee_answer: Duration,
}

impl Default for CallTimeouts {
    fn default() -> Self {
        Self {
            talker_answer: Duration::from_secs(15),
            callee_answer: Duration::from_secs(60),
        }
    }
}

/// What can go wrong starting or steering a call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The controller refused or failed.
    #[error(transparent)]
    Controller(#[from] ControllerError),
    /// The route's server has a proxy address we cannot use.
    #[error("server {domain:?} has an unusable proxy address {proxy:?} (want IP:port)")]
    BadProxy {
        /// Server domain.
        domain: String,
        /// The stored proxy.
        proxy: String,
    },
    /// The call is not live on this instance (over, or owned by another).
    #[error("call {0:?} is not live on this matcher")]
    NotLive(String),
    /// The matcher is shutting down.
    #[error("the matcher is shutting down")]
    ShuttingDown,
}

struct LiveCall {
    control: CallControl,
    server: String,
}

/// Starts, steers and records calls; shared by the HTTP handlers.
#[derive(Clone)]
pub struct CallService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    controller: Mutex<Option<Controller>>,
    instance: String,
    timeouts: CallTimeouts,
    live: Mutex<HashMap<String, LiveCall>>,
    events: broadcast::Sender<CallEvent>,
}

impl CallService {
    /// Takes over `controller`; first marks the calls this `instance` left
    /// unfinished (a previous run) as `lost_control`.
    pub async fn start(
        store: Store,
        controller: Controller,
        instance: impl Into<String>,
        timeouts: CallTimeouts,
    ) -> Result<Self, CallError> {
        let instance = instance.into();
        for call in store.unfinished_calls(&instance).await? {
            tracing::warn!(call, "call was live when the matcher stopped: lost control");
            let detail = EventDetail {
                reason: Some("matcher_restarted".into()),
                ..EventDetail::default()
            };
            store
                .append_call_event(
                    &call,
                    CallState::LostControl,
                    Some("matcher_restarted"),
                    &detail_json(&detail),
                )
                .await?;
        }
        let (events, _) = broadcast::channel(1024);
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                controller: Mutex::new(Some(controller)),
                instance,
                timeouts,
                live: Mutex::new(HashMap::new()),
                events,
            }),
        })
    }

    /// Every call event as it is recorded (the SSE streams filter by call).
    pub fn subscribe(&self) -> broadcast::Receiver<CallEvent> {
        self.inner.events.subscribe()
    }

    /// How many calls this instance is steering now.
    pub fn live_calls(&self) -> usize {
        self.inner.live.lock().map(|l| l.len()).unwrap_or(0)
    }

    /// Records a new call on `route` and has the controller place it. Returns
    /// the call's record as created (state `matching`); progress follows as events.
    pub async fn place(
        &self,
        caller: i64,
        contact_id: i64,
        route: &Route,
        media: Media,
        route_json: String,
    ) -> Result<CallRecord, CallError> {
        let id = new_call_id();
        let plan = self.plan_for(&id, route)?;
        let record = CallRecord {
            id: id.clone(),
            caller,
            contact_id,
            route: route_json,
            media,
            state: CallState::Matching,
            reason: None,
            owner_instance: self.inner.instance.clone(),
            created_at: crate::storage::now_secs(),
            ended_at: None,
        };
        let placed = {
            let controller = self
                .inner
                .controller
                .lock()
                .map_err(|_| CallError::ShuttingDown)?;
            let controller = controller.as_ref().ok_or(CallError::ShuttingDown)?;
            controller.place(plan)
        };
        // The control INVITE is on its way while the call is recorded: the record is two
        // database writes, and the callee should not wait for them to ring. The controller's
        // events wait in its channel until the pump below starts, after "matching" is stored,
        // so the stored order is still the order things happened.
        let stored = self.store_new_call(&record, &route.server.domain).await;
        let handle = self.confirm_start(&id, placed, stored).await?;
        self.follow(&id, &route.server.domain, handle);
        // The call as created: its progress is in its events, and reading the row back would
        // be one more statement competing with the set-up for the CPU.
        Ok(record)
    }

    /// What the controller needs to place call `id` on `route`.
    fn plan_for(&self, id: &str, route: &Route) -> Result<CallPlan, CallError> {
        let proxy: SocketAddr = route
            .server
            .proxy
            .parse()
            .map_err(|_| CallError::BadProxy {
                domain: route.server.domain.clone(),
                proxy: route.server.proxy.clone(),
            })?;
        Ok(CallPlan {
            call_id: id.to_owned(),
            server_domain: route.server.domain.clone(),
            proxy,
            transport: match route.server.transport {
                Transport::Tcp => SipTransport::Tcp,
                Transport::Udp => SipTransport::Udp,
            },
            controller_uri: format!("sip:splitdial-matcher@{}", route.server.domain),
            caller_talker_id: route.caller_talker.id.clone(),
            caller_target: route
                .caller_account
                .gruu
                .clone()
                .unwrap_or_else(|| route.caller_account.aor.clone()),
            callee_uri: route.callee.aor.clone(),
            talker_answer_timeout: self.inner.timeouts.talker_answer,
            callee_answer_timeout: self.inner.timeouts.callee_answer,
            hand_off_after_transfer: route.caller_talker.software == TalkerSoftware::SipPhone,
        })
    }

    /// A call has started only when the controller took it and its record is
    /// stored; when one half failed, this undoes the other.
    async fn confirm_start(
        &self,
        id: &str,
        placed: Result<CallHandle, ControllerError>,
        stored: Result<(), CallError>,
    ) -> Result<CallHandle, CallError> {
        match (placed, stored) {
            (Ok(handle), Ok(())) => Ok(handle),
            (Ok(handle), Err(error)) => {
                // Unrecorded, the call could never be steered or reported: end it at once.
                let _ = handle.control.hang_up();
                Err(error)
            }
            (Err(error), stored) => {
                stored?;
                let detail = EventDetail {
                    reason: Some("error".into()),
                    message: Some(error.to_string()),
                    ..EventDetail::default()
                };
                self.record(id, CallState::Ended, Some("error"), detail)
                    .await?;
                Err(error.into())
            }
        }
    }

    /// Keeps a started call steerable (hang-up, add party) while it is live on
    /// `server`, and records its events as they come.
    fn follow(&self, id: &str, server: &str, handle: CallHandle) {
        if let Ok(mut live) = self.inner.live.lock() {
            live.insert(
                id.to_owned(),
                LiveCall {
                    control: handle.control.clone(),
                    server: server.to_owned(),
                },
            );
        }
        tokio::spawn(self.clone().record_events(id.to_owned(), handle));
    }

    /// Records call `call`'s events until its final one, then forgets it as
    /// live; a controller that vanished without a final event lost the call.
    async fn record_events(self, call: String, mut handle: CallHandle) {
        while let Some(event) = handle.events.recv().await {
            let last = event.is_final();
            if let Err(error) = self.on_event(&call, event).await {
                tracing::error!(call, %error, "could not record a call event");
            }
            if last {
                break;
            }
        }
        if let Ok(mut live) = self.inner.live.lock() {
            live.remove(&call);
        }
        if let Ok(Some(record)) = self.inner.store.call(&call).await
            && !record.state.is_final()
        {
            let _ = self
                .record(
                    &call,
                    CallState::LostControl,
                    Some("controller_gone"),
                    EventDetail::default(),
                )
                .await;
        }
    }

    /// Stores a new call and its first event, `matching` on `server`.
    async fn store_new_call(&self, record: &CallRecord, server: &str) -> Result<(), CallError> {
        self.inner.store.insert_call(record).await?;
        let detail = EventDetail {
            server: Some(server.to_owned()),
            ..EventDetail::default()
        };
        self.record(&record.id, CallState::Matching, None, detail)
            .await
    }

    async fn on_event(&self, call: &str, event: ControllerEvent) -> Result<(), CallError> {
        let party = |party: PartyId| EventDetail {
            party: Some(party.0),
            ..EventDetail::default()
        };
        let (state, reason, detail) = match event {
            ControllerEvent::DialingTalker => {
                (CallState::DialingTalker, None, EventDetail::default())
            }
            ControllerEvent::TalkerAnswered => {
                (CallState::TalkerAnswered, None, EventDetail::default())
            }
            ControllerEvent::CalleeRinging { party: id } => {
                (CallState::CalleeRinging, None, party(id))
            }
            ControllerEvent::Connected { party: id } => (CallState::Connected, None, party(id)),
            // A party change that does not move the call repeats its state.
            ControllerEvent::PartyFailed { party: id, code } => {
                let state = self.current_state(call).await?;
                let detail = EventDetail {
                    party_state: Some(PartyState::Failed),
                    sip_code: Some(code),
                    ..party(id)
                };
                return self.record(call, state, None, detail).await;
            }
            ControllerEvent::PartyEnded { party: id } => {
                let state = self.current_state(call).await?;
                let detail = EventDetail {
                    party_state: Some(PartyState::Ended),
                    ..party(id)
                };
                return self.record(call, state, None, detail).await;
            }
            ControllerEvent::HandedOff => (CallState::HandedOff, None, EventDetail::default()),
            ControllerEvent::LostControl => (
                CallState::LostControl,
                Some("control_leg_lost"),
                EventDetail {
                    reason: Some("control_leg_lost".into()),
                    ..EventDetail::default()
                },
            ),
            ControllerEvent::Ended { reason } => {
                let code = reason.code();
                let detail = EventDetail {
                    reason: Some(code.to_owned()),
                    sip_code: reason.sip_code(),
                    ..EventDetail::default()
                };
                (CallState::Ended, Some(code), detail)
            }
        };
        self.record(call, state, reason, detail).await
    }

    async fn current_state(&self, call: &str) -> Result<CallState, CallError> {
        Ok(self
            .inner
            .store
            .call(call)
            .await?
            .map_or(CallState::Connected, |c| c.state))
    }

    async fn record(
        &self,
        call: &str,
        state: CallState,
        reason: Option<&str>,
        detail: EventDetail,
    ) -> Result<(), CallError> {
        let detail = detail_json(&detail);
        let event = self
            .inner
            .store
            .append_call_event(call, state, reason, &detail)
            .await?;
        tracing::info!(call, state = state.as_str(), seq = event.seq, %detail, "call event");
        // No subscriber is fine: the event is stored.
        let _ = self.inner.events.send(event);
        Ok(())
    }

    /// Hangs up a live call (BYE on its control leg, or CANCEL while the
    /// talker has not answered).
    pub fn hang_up(&self, call: &str) -> Result<(), CallError> {
        let live = self
            .inner
            .live
            .lock()
            .map_err(|_| CallError::ShuttingDown)?;
        let entry = live
            .get(call)
            .ok_or_else(|| CallError::NotLive(call.to_owned()))?;
        Ok(entry.control.hang_up()?)
    }

    /// The server domain a live call runs through.
    pub fn live_server(&self, call: &str) -> Option<String> {
        self.inner
            .live
            .lock()
            .ok()
            .and_then(|l| l.get(call).map(|c| c.server.clone()))
    }

    /// Adds a party to a live call: another REFER in its control leg.
    pub async fn add_party(&self, call: &str, uri: &str) -> Result<PartyId, CallError> {
        let control = self
            .inner
            .live
            .lock()
            .map_err(|_| CallError::ShuttingDown)?
            .get(call)
            .map(|c| c.control.clone())
            .ok_or_else(|| CallError::NotLive(call.to_owned()))?;
        Ok(control.add_party(uri).await?)
    }

    /// Graceful shutdown: the controller BYEs every active control leg.
    pub async fn shutdown(&self) {
        let controller = self.inner.controller.lock().ok().and_then(|mut c| c.take());
        if let Some(controller) = controller {
            controller.shutdown().await;
        }
        // Give the event tasks a moment to record the final states.
        for _ in 0..50 {
            if self.live_calls() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// An event's detail as stored (JSON text; the event stream sends it as is).
fn detail_json(detail: &EventDetail) -> String {
    serde_json::to_string(detail).unwrap_or_else(|_| "{}".to_owned())
}

/// A new call id: `c_` and 16 random bytes, hex.
fn new_call_id() -> String {
    let bytes: [u8; 16] = rand::random();
    format!("c_{}", hex::encode(bytes))
}
