//! The HTTP side: liveness, readiness and the authenticated admin actions (drain, undrain,
//! force-down, force-up, clear) that `meridian admin` calls. The API serializes its own DTOs;
//! the core model is not the wire format.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::health::overrides::{Action, AdminError, Selector};
use crate::health::prober::{AdminChange, HealthControl};
use crate::model::Secret;
use crate::state::SharedState;

/// Largest request body accepted (admin calls carry none).
const MAX_BODY: usize = 4096;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The snapshot readers see.
    pub state: Arc<SharedState>,
    /// Where admin actions go.
    pub control: HealthControl,
    /// Bearer token for admin calls; `None` disables them.
    pub token: Option<Secret>,
    /// True once the first probe round is done and listeners are bound.
    pub ready: watch::Receiver<bool>,
}

/// The routes.
pub fn router(api: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/pools/{pool}/{action}", post(pool_action))
        .route(
            "/api/v1/pools/{pool}/members/{member}/{action}",
            post(member_action),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(api)
}

/// Serves the API on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    api: ApiState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(api))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn readyz(State(api): State<ApiState>) -> Response {
    if *api.ready.borrow() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "first probe round not complete\n",
        )
            .into_response()
    }
}

#[derive(Serialize)]
struct Changed {
    changed: Vec<AdminChange>,
    generation: u64,
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(ErrorBody { error: msg.into() })).into_response()
}

async fn pool_action(
    State(api): State<ApiState>,
    Path((pool, action)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    act(api, headers, Selector { pool, member: None }, &action).await
}

async fn member_action(
    State(api): State<ApiState>,
    Path((pool, member, action)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let selector = Selector {
        pool,
        member: Some(member),
    };
    act(api, headers, selector, &action).await
}

async fn act(api: ApiState, headers: HeaderMap, selector: Selector, action: &str) -> Response {
    let Some(token) = &api.token else {
        return error(
            StatusCode::FORBIDDEN,
            "admin actions are disabled: set http.admin_token_file in the config",
        );
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.0.as_bytes())) {
        warn!(pool = %selector.pool, action, "admin: rejected call without a valid token");
        return error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    let Some(action) = Action::parse(action) else {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "unknown action {action:?}: expected drain, undrain, force-down, force-up or clear"
            ),
        );
    };
    match api.control.apply(selector, action).await {
        Ok(changed) => {
            info!(count = changed.len(), ?action, "admin: action applied");
            let generation = api.state.load().generation;
            (
                StatusCode::OK,
                Json(Changed {
                    changed,
                    generation,
                }),
            )
                .into_response()
        }
        Err(e @ (AdminError::NoPool(_) | AdminError::NoMember { .. })) => {
            error(StatusCode::NOT_FOUND, e.to_string())
        }
        Err(e @ AdminError::Save(_)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e @ AdminError::Unavailable) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// Compares without an early exit, so the time taken does not reveal how much of a guessed
/// token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3cres"));
        assert!(!constant_time_eq(b"s3cret", b"s3cret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
