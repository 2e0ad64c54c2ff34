//! Meridian: an authoritative DNS server that load-balances across sites.
//!
//! Data flows through one module per stage, and imports follow it (ARCHITECTURE.md,
//! "Dependency rules"): the leaves [`hash`], [`wire`] (reading a query once) and [`accept`]
//! (the one TCP accept loop); [`config`] (TOML schema); [`zone`], [`geo`] and [`dnssec`]
//! (master files, GeoIP, online signing); [`model`] (everything validated, immutable); [`health`] (health state, pure:
//! hysteresis, overrides, events, consensus, the data the fleet exchanges) and [`dnstap`]
//! (the query log's queue and writer thread); [`state`] (the one
//! snapshot of model + health every query reads); [`select`] (steering and selection, pure,
//! shared by both data planes); then the data planes and the writers of health: [`dns`]
//! (answering core, UDP/TCP transports, rate limiting), [`director`] (TCP forwarding),
//! [`prober`] (probes and the one health writer), [`fleet`] (etcd: observations and overrides
//! shared between instances) and [`explain`]; [`metrics`] (one registry of every stage's
//! instruments); [`reload`]; [`api`] (HTTP: status page, JSON, metrics, admin); [`server`]
//! (binds listeners and runs the tasks until shutdown).

#![forbid(unsafe_code)]

pub mod accept;
pub mod api;
pub mod config;
pub mod director;
pub mod dns;
pub mod dnssec;
pub mod dnstap;
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
