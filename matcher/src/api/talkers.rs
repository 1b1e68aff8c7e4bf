//! Talkers' own endpoints — enrollment with a one-time token, heartbeats —
//! and owner tokens that let a user act on one call on their own talker.

use super::{ApiError, AppState, BearerToken, CurrentTalker, CurrentUser, unix_time_f64};
use crate::auth::{SecretKind, new_secret, secret_hash};
use crate::registry::{MAX_FIELD, UserId, aor_domain, printable_field};
use crate::storage::{AccountReport, NewAccount, NewTalker};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use splitdial_api::{
    EnrollReply, EnrollRequest, Heartbeat, HeartbeatReply, OwnerAction, OwnerToken,
    OwnerTokenRequest,
};
use splitdial_sip::call_token::{Action, Claims, TokenKind, unix_now};

/// Most accounts one talker may enroll.
const MAX_ACCOUNTS: usize = 32;
/// Owner tokens live this long.
const OWNER_TOKEN_SECS: u64 = 20;

fn field(name: &str, value: &str) -> Result<(), ApiError> {
    if !printable_field(value) {
        return Err(ApiError::invalid(format!(
            "{name} must be 1..={MAX_FIELD} printable characters"
        )));
    }
    Ok(())
}

/// `POST /v1/talkers`: enrolls a talker with a one-time enrollment token.
pub async fn enroll(
    State(state): State<AppState>,
    BearerToken(token): BearerToken,
    body: Result<Json<EnrollRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<EnrollReply>), ApiError> {
    let Json(body) = body?;
    // Validate before using the token up, so a typo does not burn it.
    check_enrollment(&state, &body).await?;
    let hash = secret_hash(SecretKind::Enrollment, &token).ok_or_else(ApiError::unauthorized)?;
    let owner = state
        .store
        .take_enrollment_token(&hash)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let credential = new_secret(SecretKind::TalkerCredential);
    let credential_hash = secret_hash(SecretKind::TalkerCredential, &credential)
        .ok_or_else(|| ApiError::invalid("credential"))?;
    let talker = state
        .store
        .enroll_talker(&new_talker(body, owner, credential_hash))
        .await
        .map_err(|e| match e {
            crate::storage::StorageError::Conflict(what) => ApiError::new(
                StatusCode::CONFLICT,
                "talker_exists",
                format!("{what} already exists"),
            ),
            other => other.into(),
        })?;
    let owner_name = state
        .store
        .user(owner)
        .await?
        .map(|u| u.name)
        .unwrap_or_default();
    state.metrics.enrollment();
    tracing::info!(talker = talker.id, owner = owner_name, "talker enrolled");
    Ok((
        StatusCode::CREATED,
        Json(EnrollReply {
            talker_id: talker.id,
            owner: owner_name,
            credential,
            keys: state.keys.published(),
            time: unix_time_f64(),
        }),
    ))
}

/// Checks an enrollment body: printable fields, an Ed25519 key, and 1 to
/// [`MAX_ACCOUNTS`] accounts, each a `sip:` address on a known server.
async fn check_enrollment(state: &AppState, body: &EnrollRequest) -> Result<(), ApiError> {
    field("id", &body.id)?;
    field("name", &body.name)?;
    let key_ok = STANDARD
        .decode(&body.public_key)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).ok())
        .is_some();
    if !key_ok {
        return Err(ApiError::invalid("public_key must be a base64 Ed25519 key"));
    }
    if let Some(instance) = &body.instance {
        field("instance", instance)?;
    }
    if body.accounts.is_empty() || body.accounts.len() > MAX_ACCOUNTS {
        return Err(ApiError::invalid(format!(
            "a talker enrolls 1..={MAX_ACCOUNTS} accounts"
        )));
    }
    for account in &body.accounts {
        field("accounts.aor", &account.aor)?;
        if aor_domain(&account.aor) != Some(account.server.as_str()) {
            return Err(ApiError::invalid(format!(
                "account {:?} is not a sip: address on {:?}",
                account.aor, account.server
            )));
        }
        if state.store.server(&account.server).await?.is_none() {
            return Err(ApiError::invalid(format!(
                "unknown server {:?}",
                account.server
            )));
        }
    }
    Ok(())
}

/// The registry entry of an enrolled talker: `body` as checked, owned by
/// `owner`, holding a credential hashed as `credential_hash`.
fn new_talker(body: EnrollRequest, owner: UserId, credential_hash: String) -> NewTalker {
    NewTalker {
        id: body.id,
        owner,
        name: body.name,
        kind: body.kind,
        media: body.media,
        public_key: body.public_key,
        instance: body.instance,
        credential_hash,
        accounts: body
            .accounts
            .into_iter()
            .map(|a| NewAccount {
                aor: a.aor,
                server: a.server,
            })
            .collect(),
    }
}

/// `POST /v1/talkers/{id}/heartbeat`: the talker is alive; its registrations.
pub async fn heartbeat(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CurrentTalker(talker): CurrentTalker,
    body: Result<Json<Heartbeat>, JsonRejection>,
) -> Result<Json<HeartbeatReply>, ApiError> {
    if talker.id != id {
        return Err(ApiError::forbidden("a talker may only report for itself"));
    }
    let Json(body) = body?;
    if body.accounts.len() > MAX_ACCOUNTS {
        return Err(ApiError::invalid("too many accounts"));
    }
    let mut reports = Vec::with_capacity(body.accounts.len());
    for account in body.accounts {
        field("accounts.aor", &account.aor)?;
        if let Some(gruu) = &account.gruu {
            field("accounts.gruu", gruu)?;
            if !gruu.starts_with("sip:") {
                return Err(ApiError::invalid("gruu must be a sip: URI"));
            }
        }
        reports.push(AccountReport {
            aor: account.aor,
            registered: account.registered,
            gruu: account.gruu,
        });
    }
    state
        .store
        .record_heartbeat(&talker.id, body.state.as_str(), &reports)
        .await?;
    state.metrics.heartbeat();
    // Whole milliseconds, so the time the signatures bind survives JSON.
    let time_ms = unix_time_ms();
    #[allow(clippy::cast_precision_loss)] // Milliseconds stay exact below 2^53.
    let time = time_ms as f64 / 1000.0;
    let set = state.keys.sign_key_set(&talker.id, time_ms);
    Ok(Json(HeartbeatReply {
        time,
        keys: set.keys,
        revoked: set.revoked,
        interval_s: Some(state.settings.heartbeat_interval.as_secs()),
        signatures: set.signatures,
    }))
}

/// Now, in whole Unix milliseconds.
fn unix_time_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `POST /v1/talkers/{id}/owner-tokens`: a token for one owner action on one
/// SIP call of the user's own talker.
pub async fn owner_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CurrentUser(user): CurrentUser,
    body: Result<Json<OwnerTokenRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<OwnerToken>), ApiError> {
    let Json(body) = body?;
    let talker = state
        .store
        .talker(&id)
        .await?
        .filter(|t| t.owner == user.id)
        .ok_or_else(|| ApiError::not_found("no such talker of yours"))?;
    field("sip_call_id", &body.sip_call_id)?;
    let now = unix_now();
    let jti: [u8; 12] = rand::random();
    let token = state.keys.issuer().issue(
        TokenKind::Owner,
        &Claims {
            aud: talker.id.clone(),
            jti: hex::encode(jti),
            iat: now,
            exp: now + OWNER_TOKEN_SECS,
            call: body.call.unwrap_or_default(),
            dlg: body.sip_call_id,
            act: match body.action {
                OwnerAction::Answer => Action::Answer,
                OwnerAction::Decline => Action::Decline,
                OwnerAction::Hangup => Action::Hangup,
            },
            target: None,
        },
    );
    Ok((
        StatusCode::CREATED,
        Json(OwnerToken {
            token,
            expires_in: OWNER_TOKEN_SECS,
            talker: talker.id,
        }),
    ))
}
