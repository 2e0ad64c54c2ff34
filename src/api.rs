//! The HTTP side: the status page (`/`), the JSON API (`/api/v1/status`, `/api/v1/events` and
//! its live stream, `/api/v1/explain`), Prometheus metrics (`/metrics`), liveness and readiness, and the
//! authenticated admin actions (drain, undrain, force-down, force-up, clear, reload) that
//! `meridian admin` calls. The API serializes its own DTOs; the core model is not the wire
//! format. Connections are capped and idle ones closed, so the HTTP side cannot exhaust the
//! process.

mod client;
mod conn;
mod events;
mod explain;
mod status;
mod tls;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::health::overrides::{Action, AdminError, Selector};
use crate::metrics::Telemetry;
use crate::model::Secret;
use crate::prober::{AdminChange, HealthControl};
use crate::reload::{self, ReloadError};
use crate::state::SharedState;

pub use client::client;
pub use conn::{IDLE_TIMEOUT, Limited};

/// Largest request body accepted (admin calls carry none).
const MAX_BODY: usize = 4096;

/// The status page: one self-contained file (inline CSS and JS, no external assets).
const STATUS_PAGE: &str = include_str!("api/status.html");

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The snapshot readers see.
    pub state: Arc<SharedState>,
    /// Where admin actions and reloads go.
    pub control: HealthControl,
    /// Metrics and the transitions ring.
    pub telemetry: Telemetry,
    /// Bearer token for admin calls; `None` disables them.
    pub token: Option<Secret>,
    /// True once the first probe round is done and listeners are bound.
    pub ready: watch::Receiver<bool>,
    /// When serving started (wall clock and tokio clock), for "in state since start".
    pub started: (SystemTime, tokio::time::Instant),
    /// Ends live event streams at shutdown, so graceful shutdown does not wait on them.
    pub shutdown: CancellationToken,
}

/// The routes. New read-only endpoints go under `/api/v1/` next to `status` and `events`.
pub fn router(api: ApiState) -> Router {
    Router::new()
        .route("/", get(|| async { Html(STATUS_PAGE) }))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/status", get(status::status))
        .route("/api/v1/events", get(events::list_or_stream))
        .route("/api/v1/events/stream", get(events::stream))
        .route("/api/v1/explain", get(explain::explain))
        .route("/api/v1/fleet", get(fleet))
        .route("/api/v1/reload", post(reload))
        .route("/api/v1/pools/{pool}/{action}", post(pool_action))
        .route(
            "/api/v1/pools/{pool}/members/{member}/{action}",
            post(member_action),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(api)
}

/// Serves the API on `listener` until `shutdown`, with at most `max_connections` open at once;
/// HTTPS only when the running config has a certificate (`[http] tls_cert`), which each
/// handshake then takes from the snapshot in force.
pub async fn serve(
    listener: tokio::net::TcpListener,
    max_connections: usize,
    api: ApiState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let tls = {
        let snap = api.state.load();
        match snap.model.http.as_ref().and_then(|h| h.tls.as_ref()) {
            Some(id) => Some(tls::acceptor(&api.state, id.key.clone())?),
            None => None,
        }
    };
    axum::serve(Limited::new(listener, max_connections, tls), router(api))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn readyz(State(api): State<ApiState>) -> Response {
    if *api.ready.borrow() {
        match api.telemetry.fleet.get() {
            Some(f) if !f.connected() => (
                StatusCode::OK,
                "ready (fleet: etcd unreachable; serving this instance's view)\n",
            )
                .into_response(),
            Some(_) => (StatusCode::OK, "ready (fleet: etcd connected)\n").into_response(),
            None => (StatusCode::OK, "ready\n").into_response(),
        }
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "first probe round not complete\n",
        )
            .into_response()
    }
}

/// `GET /api/v1/fleet`: the fleet's instances and observations, from the snapshot DNS answers
/// from.
async fn fleet(State(api): State<ApiState>) -> Response {
    let snap = api.state.load();
    Json(crate::fleet::report::report(
        &snap,
        api.telemetry.fleet.get().map(|f| &**f),
    ))
    .into_response()
}

async fn metrics(State(api): State<ApiState>) -> Response {
    let text = api.telemetry.metrics.encode();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
        )],
        text,
    )
        .into_response()
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

/// `None` when the call may go on; otherwise the refusal (403 without a configured token, 401
/// without the right one).
fn refuse(api: &ApiState, headers: &HeaderMap, what: &str) -> Option<Response> {
    let Some(token) = &api.token else {
        return Some(error(
            StatusCode::FORBIDDEN,
            "admin actions are disabled: set http.admin_token_file in the config",
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.0.as_bytes())) {
        warn!("admin: rejected {what} without a valid token");
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
        ));
    }
    None
}

#[derive(Serialize)]
struct ReloadBody {
    generation: u64,
    summary: String,
    warnings: Vec<String>,
}

async fn reload(State(api): State<ApiState>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refuse(&api, &headers, "reload") {
        return refusal;
    }
    info!("admin: reload requested over HTTP");
    match reload::reload(&api.state, &api.control, &api.telemetry).await {
        Ok(r) => (
            StatusCode::OK,
            Json(ReloadBody {
                generation: r.generation,
                summary: r.summary,
                warnings: r.warnings,
            }),
        )
            .into_response(),
        Err(e @ ReloadError::Invalid(_)) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        Err(e @ ReloadError::Unavailable(_)) => {
            error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
    }
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
    if let Some(refusal) = refuse(
        &api,
        &headers,
        &format!("{action} on pool {}", selector.pool),
    ) {
        return refusal;
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
            // Each member's change is logged by the health writer as it applies it.
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
        Err(e @ (AdminError::Unavailable | AdminError::Fleet(_))) => {
            error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
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

/// RFC 3339 UTC with milliseconds (`2025-01-31T12:00:00.250Z`), for the JSON API.
fn rfc3339(t: SystemTime) -> String {
    let ms = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()) as i64;
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
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
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3cres"));
        assert!(!constant_time_eq(b"s3cret", b"s3cret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn timestamps() {
        let at = |ms: u64| rfc3339(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(at(1_735_689_599_999), "2024-12-31T23:59:59.999Z");
    }
}
