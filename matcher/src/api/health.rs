//! Liveness and metrics.

use super::{ApiError, AppState};
use crate::metrics::Gauges;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use splitdial_api::Health;

/// `GET /healthz`: 200 when the registry answers.
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.store.servers().await?;
    Ok(Json(Health::ok()))
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let text = state.metrics.render(Gauges {
        live_calls: state.calls.live_calls(),
        event_streams: state.streams.open(),
    });
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}
