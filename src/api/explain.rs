//! `GET /api/v1/explain?name=&type=&client=&ecs=`: the answer this client would get right now,
//! and why, from the live snapshot the DNS path reads (see [`crate::explain`]).

use std::net::IpAddr;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hickory_proto::rr::{Name, RecordType};
use ipnet::IpNet;
use serde::Deserialize;

use super::{ApiState, error};
use crate::explain::{ExplainError, explain as run_explain};
use crate::select::Client;

/// The query string.
#[derive(Debug, Deserialize)]
pub struct ExplainQuery {
    /// The service name.
    name: String,
    /// `A` (default) or `AAAA`.
    #[serde(rename = "type")]
    qtype: Option<String>,
    /// The resolver's (or connecting client's) address.
    client: IpAddr,
    /// An EDNS Client Subnet, `ADDR/PREFIX`.
    ecs: Option<String>,
}

/// The handler: 200 with the explanation, 400 for a bad parameter, 404 for a name that is not a
/// service.
pub async fn explain(State(api): State<ApiState>, Query(q): Query<ExplainQuery>) -> Response {
    let name = match Name::from_ascii(&q.name) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("name: {e}")),
    };
    let qtype = match q
        .qtype
        .as_deref()
        .unwrap_or("A")
        .to_ascii_uppercase()
        .parse::<RecordType>()
    {
        Ok(t) => t,
        Err(_) => return error(StatusCode::BAD_REQUEST, "type: not a record type"),
    };
    let snap = api.state.load();
    let client = match q.ecs.as_deref().map(str::parse::<IpNet>) {
        None => Client::from_addr(&snap.model, q.client),
        Some(Ok(net)) if net.prefix_len() == 0 => Client::from_addr(&snap.model, q.client),
        Some(Ok(net)) => Client::from_subnet(net.trunc().addr(), net.prefix_len()),
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "ecs: expected ADDR/PREFIX (\"192.0.2.0/24\")",
            );
        }
    };
    match run_explain(&snap, &name, qtype, &client, "live", &mut rand::rng()) {
        Ok(e) => Json(e).into_response(),
        Err(e @ ExplainError::NotAService(_)) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}
