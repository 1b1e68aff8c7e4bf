//! API errors: a status and a stable code, sent as the contract's
//! [`ErrorBody`], `{"error": {"code": "...", "message": "..."}}` (plus each
//! side's servers on route errors).

use crate::calls::CallError;
use crate::route::RouteError;
use crate::storage::StorageError;
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use splitdial_api::ErrorBody;

/// An error answer of the API.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What the client reads: the code, the message, the servers of a route
    /// error (boxed: handlers return it in every `Result`).
    pub body: Box<ErrorBody>,
}

impl ApiError {
    /// An error with a code and a message and nothing else.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: Box::new(ErrorBody::new(code, message)),
        }
    }

    /// 401: no or bad credentials.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid bearer token",
        )
    }

    /// 403: authenticated, but not allowed.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 422: well-formed but unacceptable.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
    }

    /// 429.
    pub fn rate_limited() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; slow down",
        )
    }

    /// 429: the user holds as many open event streams as they may.
    pub fn too_many_streams(max: usize) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            format!("you have {max} call event streams open already; close one first"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(*self.body)).into_response()
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict(what) => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{what} already exists"),
            ),
            StorageError::NotFound(what) => Self::not_found(format!("{what} not found")),
            other => {
                tracing::error!(error = %other, "storage failed");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "the registry is unavailable; try again",
                )
            }
        }
    }
}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        let status = match e {
            RouteError::NoDesignatedTalker => StatusCode::UNPROCESSABLE_ENTITY,
            RouteError::NoSharedServer { .. } | RouteError::NoUsableServer { .. } => {
                StatusCode::CONFLICT
            }
        };
        let mut error = Self::new(status, e.code(), e.to_string());
        let detail = &mut error.body.error;
        match e {
            RouteError::NoDesignatedTalker => {}
            RouteError::NoSharedServer {
                caller_servers,
                callee_servers,
            } => {
                detail.caller_servers = Some(caller_servers);
                detail.callee_servers = Some(callee_servers);
            }
            RouteError::NoUsableServer { shared_servers } => {
                detail.shared_servers = Some(shared_servers);
            }
        }
        error
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Storage(s) => s.into(),
            CallError::NotLive(call) => Self::new(
                StatusCode::CONFLICT,
                "call_not_live",
                format!("call {call} is not live on this matcher"),
            ),
            CallError::ShuttingDown => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the matcher is shutting down",
            ),
            other => {
                tracing::warn!(error = %other, "call failed");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "call_failed",
                    other.to_string(),
                )
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        let status = match e {
            JsonRejection::JsonDataError(_) => StatusCode::UNPROCESSABLE_ENTITY,
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            JsonRejection::BytesRejection(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        let code = match status {
            StatusCode::UNPROCESSABLE_ENTITY => "invalid_request",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            _ => "malformed_json",
        };
        Self::new(status, code, e.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text())
    }
}
