//! `GET /api/v1/events`: the recent health transitions as JSON, and the same as a live
//! Server-Sent Events stream (`/api/v1/events/stream`, or `/api/v1/events` with `Accept:
//! text/event-stream`). A stream first replays the kept transitions after `Last-Event-ID` (or
//! `?after=`), then sends each new one as it happens, one `transition` event per change with its
//! `seq` as the event id.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::{ApiState, rfc3339};
use crate::health::events::Transition;

/// Interval of the keep-alive comments on a live stream (well within the idle timeout).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One transition on the wire.
#[derive(Debug, Serialize)]
pub struct TransitionDto {
    /// Increases by one per transition.
    pub seq: u64,
    /// RFC 3339 UTC.
    pub time: String,
    /// Pool name.
    pub pool: String,
    /// Member id (address, with `:port` when it has one).
    pub member: String,
    /// State before (`absent` for a member a reload added).
    pub from: String,
    /// State after (`absent` for a member a reload removed).
    pub to: String,
    /// Failure reason of a flip down, the action of an admin change.
    pub reason: Option<String>,
    /// Consecutive probe results behind a probe flip; 0 otherwise.
    pub streak: u32,
    /// `probe`, `admin` or `reload`.
    pub cause: &'static str,
}

impl From<&Transition> for TransitionDto {
    fn from(t: &Transition) -> TransitionDto {
        let c = &t.change;
        TransitionDto {
            seq: t.seq,
            time: rfc3339(t.time),
            pool: c.pool.clone(),
            member: c.member.clone(),
            from: c.from.to_string(),
            to: c.to.to_string(),
            reason: c.reason.as_deref().map(str::to_string),
            streak: c.streak,
            cause: c.cause.as_str(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct Params {
    /// Only transitions with a greater `seq`.
    after: Option<u64>,
}

#[derive(Serialize)]
struct List {
    capacity: usize,
    events: Vec<TransitionDto>,
}

/// The JSON list, or the live stream when the client asks for `text/event-stream`.
pub(super) async fn list_or_stream(
    State(api): State<ApiState>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Response {
    let wants_stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if wants_stream {
        return stream(State(api), Query(params), headers).await;
    }
    let events = &api.telemetry.events;
    let list = events
        .since(params.after.unwrap_or(0), events.capacity())
        .iter()
        .map(TransitionDto::from)
        .collect();
    Json(List {
        capacity: events.capacity(),
        events: list,
    })
    .into_response()
}

/// The live stream.
pub(super) async fn stream(
    State(api): State<ApiState>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Response {
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let after = last_id.or(params.after).unwrap_or(0);
    let (backlog, live) = api.telemetry.events.subscribe(after);
    let replay = stream::iter(backlog).map(|t| Ok::<_, Infallible>(sse_event(&t)));
    let live = stream::unfold(live, |mut live| async move {
        let event = match live.recv().await {
            Ok(t) => sse_event(&t),
            // A slow reader missed some; it can fetch them from the JSON list.
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Event::default().comment(format!("missed {missed} transitions"))
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(event), live))
    });
    let events = replay
        .chain(live)
        .take_until(api.shutdown.clone().cancelled_owned());
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

fn sse_event(t: &Transition) -> Event {
    let dto = TransitionDto::from(t);
    Event::default()
        .event("transition")
        .id(t.seq.to_string())
        .json_data(&dto)
        .unwrap_or_else(|_| Event::default().comment("unencodable transition"))
}
