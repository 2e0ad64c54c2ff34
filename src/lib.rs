//! Meridian: an authoritative DNS server that load-balances across sites.
//!
//! Data flows through one module per stage:
//! [`config`] (TOML schema) → [`model`] (validated runtime model, with [`zone`] data) →
//! [`select`] (steering and selection, pure) → [`dns`] (answering core, its UDP/TCP
//! transport and the UDP response rate limiter) and [`director`] (TCP connections forwarded to the member steering and a
//! scheduler pick). [`health`] probes members and feeds the snapshot (and takes passive
//! failures from the director); [`api`] is the HTTP side (status page, JSON API, metrics, admin
//! actions) and [`metrics`] what `/metrics` exports. [`state`] holds the one immutable snapshot
//! every query reads; [`reload`] swaps in a new config. [`server`] binds listeners and runs the
//! tasks until shutdown. [`geo`] locates clients (GeoIP database, country → continent table,
//! distances) for geographic steering; [`explain`] says why a client gets the answer it gets.
//! [`accept`] is the one TCP accept loop every listener uses.

#![forbid(unsafe_code)]

pub mod accept;
pub mod api;
pub mod config;
pub mod director;
pub mod dns;
pub mod explain;
pub mod fleet;
pub mod geo;
pub mod hash;
pub mod health;
pub mod metrics;
pub mod model;
pub mod prober;
pub mod reload;
pub mod select;
pub mod server;
pub mod state;
pub mod wire;
pub mod zone;

pub use metrics::Telemetry;
pub use model::Model;
pub use server::{Listeners, run};
pub use state::{SharedState, Snapshot};
