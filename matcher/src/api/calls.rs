//! Calls: place one on the best route, follow it as Server-Sent Events, hang
//! it up, add a party.

use super::routes::ranked;
use super::{ApiError, AppState, CurrentUser, UserTokenHash};
use crate::registry::{Contact, ContactTarget, Media};
use crate::route::{RouteView, account_online};
use crate::storage::{CallRecord, Store};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use splitdial_api::{Call, CallEvent, EventDetail, NewCall, NewParty, PartyAdded};
use std::convert::Infallible;
use std::time::Duration;

/// The call as the API shows it. The stored route is the [`RouteView`] the
/// call was placed on; one that does not read back is shown as `null`.
fn call_json(record: &CallRecord) -> Call {
    Call {
        call: record.id.clone(),
        state: record.state,
        reason: record.reason.clone(),
        media: record.media,
        route: serde_json::from_str(&record.route).ok(),
        created_at: record.created_at,
        ended_at: record.ended_at,
        events: format!("/v1/calls/{}/events", record.id),
    }
}

/// `POST /v1/calls`: finds the best route and has the controller place the call.
pub async fn create(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    body: Result<Json<NewCall>, JsonRejection>,
) -> Result<(StatusCode, Json<Call>), ApiError> {
    let Json(body) = body?;
    let media = body.media.unwrap_or(Media::Audio);
    let (contact, routes) = ranked(&state, &user, &body.talkers, &body.callee, media).await?;
    let best = routes
        .first()
        .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "no_route", "no route"))?;
    let view = serde_json::to_string(&RouteView::from(best)).unwrap_or_default();
    let record = state
        .calls
        .place(user.id, contact.contact.id, best, media, view)
        .await?;
    state.metrics.call_placed();
    Ok((StatusCode::CREATED, Json(call_json(&record))))
}

async fn own_call(state: &AppState, user: i64, id: &str) -> Result<CallRecord, ApiError> {
    state
        .store
        .call(id)
        .await?
        .filter(|c| c.caller == user)
        .ok_or_else(|| ApiError::not_found("no such call of yours"))
}

/// `GET /v1/calls/{id}`.
pub async fn show(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Call>, ApiError> {
    let record = own_call(&state, user.id, &id).await?;
    Ok(Json(call_json(&record)))
}

/// `DELETE /v1/calls/{id}`: hang up (202 while it ends; 200 when already over).
pub async fn hang_up(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Call>), ApiError> {
    let record = own_call(&state, user.id, &id).await?;
    if record.state.is_final() {
        return Ok((StatusCode::OK, Json(call_json(&record))));
    }
    if let Err(error) = state.calls.hang_up(&id) {
        // It may have ended between the read above and now.
        let record = own_call(&state, user.id, &id).await?;
        if record.state.is_final() {
            return Ok((StatusCode::OK, Json(call_json(&record))));
        }
        return Err(error.into());
    }
    Ok((StatusCode::ACCEPTED, Json(call_json(&record))))
}

/// `POST /v1/calls/{id}/parties`: another REFER in the same control dialog,
/// to the new party's account on the call's server.
pub async fn add_party(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    body: Result<Json<NewParty>, JsonRejection>,
) -> Result<(StatusCode, Json<PartyAdded>), ApiError> {
    let Json(body) = body?;
    own_call(&state, user.id, &id).await?;
    let server = state.calls.live_server(&id).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "call_not_live",
            "the call is not live here",
        )
    })?;
    let contact = accepted_contact(&state, user.id, &body.callee).await?;
    let target = party_target(&state, &contact.target, &server)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no_shared_server",
                format!("{:?} cannot be reached on {server}", body.callee),
            )
        })?;
    let party = state.calls.add_party(&id, &target).await?;
    Ok((
        StatusCode::CREATED,
        Json(PartyAdded {
            call: id,
            party: party.0,
        }),
    ))
}

/// `user`'s contact `name`, once it added `user` back.
async fn accepted_contact(state: &AppState, user: i64, name: &str) -> Result<Contact, ApiError> {
    let contact = state
        .store
        .contact_by_name(user, name)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_contact",
                format!("{name:?} is not one of your contacts"),
            )
        })?;
    if !contact.accepted {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "contact_not_accepted",
            format!("{name:?} has not added you back yet"),
        ));
    }
    Ok(contact.contact)
}

/// The account a new party is called on: one on the call's `server` (the new
/// party must be reachable there), for a user the first of their online
/// accounts there, else the first in their own order of talkers; `None`
/// when there is none.
async fn party_target(
    state: &AppState,
    target: &ContactTarget,
    server: &str,
) -> Result<Option<String>, ApiError> {
    let other = match target {
        ContactTarget::Address { aor, server: s } => return Ok((s == server).then(|| aor.clone())),
        ContactTarget::User { user: other } => *other,
    };
    let side = state.store.talkers_with_accounts(other).await?;
    let now = crate::storage::now_secs();
    let max_age = i64::try_from(state.settings.max_heartbeat_age.as_secs()).unwrap_or(i64::MAX);
    let mut accounts: Vec<(bool, String)> = side
        .iter()
        .flat_map(|(talker, accounts)| {
            accounts
                .iter()
                .filter(|a| a.server == server)
                .map(|a| (account_online(talker, a, now, max_age), a.aor.clone()))
        })
        .collect();
    // A stable sort: online first, the callee's own order within each.
    accounts.sort_by_key(|(online, _)| !online);
    Ok(accounts.into_iter().next().map(|(_, aor)| aor))
}

/// `GET /v1/calls/{id}/events`: the call's events as Server-Sent Events, from
/// the start (or after `Last-Event-ID`), live until a final state. The stream
/// also ends when its token is revoked, checked every
/// [`ApiSettings::stream_recheck`](super::ApiSettings::stream_recheck).
pub async fn events(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    UserTokenHash(token_hash): UserTokenHash,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    own_call(&state, user.id, &id).await?;
    let slot = state
        .streams
        .take(user.id)
        .ok_or_else(|| ApiError::too_many_streams(state.settings.max_streams_per_user))?;
    let after: i64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    // Subscribe before reading the log, so nothing falls in between.
    let mut live = state.calls.subscribe();
    let stored = state.store.call_events(&id, after).await?;
    let store = state.store.clone();
    let every = state.settings.stream_recheck;
    let stopping = state.stopping.clone();
    let stream = async_stream(move |tx| async move {
        // Held for as long as this task streams.
        let _slot = slot;
        let mut sent = SentUpTo(after);
        if !sent.send_all(&tx, stored).await {
            return;
        }
        let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                received = live.recv() => match received {
                    Ok(event) if event.call == id => {
                        if !sent.send_all(&tx, [event]).await {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        // Fell behind: catch up from the log.
                        let Ok(missed) = store.call_events(&id, sent.0).await else {
                            return;
                        };
                        if !sent.send_all(&tx, missed).await {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                // A client gone while the call is quiet frees its slot at once.
                () = tx.closed() => return,
                () = stopping.cancelled() => return,
                _ = recheck.tick() => {
                    if !token_still_held(&store, &token_hash, user.id, &id).await {
                        return;
                    }
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Whether the token (`token_hash`) that opened user `user`'s event stream of
/// call `call` still belongs to them; a revoked token ends the stream, a
/// database failing for a moment does not.
async fn token_still_held(store: &Store, token_hash: &str, user: i64, call: &str) -> bool {
    match store.user_for_api_token(token_hash).await {
        Ok(Some(holder)) if holder.id == user => true,
        Ok(_) => {
            tracing::info!(call = %call, user, "event stream ends: its token was revoked");
            false
        }
        Err(e) => {
            tracing::warn!(call = %call, error = %e, "rechecking an event stream's token");
            true
        }
    }
}

/// The sequence number of the last event a stream sent.
struct SentUpTo(i64);

impl SentUpTo {
    /// Sends the events newer than the last one sent; `false` once the stream
    /// is over (a final state sent, or the client gone).
    async fn send_all(
        &mut self,
        tx: &tokio::sync::mpsc::Sender<Result<Event, Infallible>>,
        events: impl IntoIterator<Item = crate::storage::CallEvent>,
    ) -> bool {
        for event in events {
            if event.seq <= self.0 {
                continue;
            }
            self.0 = event.seq;
            let final_state = event.state.is_final();
            if tx.send(sse_event(&event)).await.is_err() || final_state {
                return false;
            }
        }
        true
    }
}

/// One stored event as a Server-Sent Event: `id: seq`, `event: state`, the
/// contract's [`CallEvent`] as data. A stored detail that does not read back
/// is sent as `{}`.
fn sse_event(event: &crate::storage::CallEvent) -> Result<Event, Infallible> {
    let data = CallEvent {
        call: event.call.clone(),
        seq: event.seq,
        state: event.state,
        at: chrono_free_rfc3339(event.at_ms),
        detail: serde_json::from_str::<EventDetail>(&event.detail).unwrap_or_default(),
    };
    Ok(Event::default()
        .id(event.seq.to_string())
        .event("state")
        .data(serde_json::to_string(&data).unwrap_or_default()))
}

/// RFC 3339 UTC time of Unix milliseconds, without a date crate.
fn chrono_free_rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// A stream fed by a task through a small channel (the producer stops when
/// the client goes away).
fn async_stream<F, Fut>(produce: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(produce(tx));
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
}

#[cfg(test)]
mod tests {
    use super::chrono_free_rfc3339;

    #[test]
    fn formats_unix_milliseconds_as_rfc3339() {
        assert_eq!(chrono_free_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            chrono_free_rfc3339(1_764_170_000_123),
            "2025-11-26T15:13:20.123Z"
        );
        assert_eq!(
            chrono_free_rfc3339(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
