//! Meridian: an authoritative DNS server that load-balances across sites.
//!
//! Data flows through one module per stage:
//! [`config`] (TOML schema) → [`model`] (validated runtime model, with [`zone`] data) →
//! [`select`] (steering and selection, pure) → [`dns`] (answering core and its UDP/TCP
//! transport) and [`director`] (TCP connections forwarded to the member steering and a
//! scheduler pick). [`health`] probes members and feeds the snapshot (and takes passive
//! failures from the director); [`api`] is the HTTP side (admin actions). [`state`] holds the one immutable snapshot every query reads. [`server`]
//! binds listeners and runs the tasks until shutdown.

#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod director;
pub mod dns;
pub mod health;
pub mod model;
pub mod select;
pub mod server;
pub mod state;
pub mod zone;

pub use model::Model;
pub use server::{Listeners, run, run_with_stats};
pub use state::{SharedState, Snapshot};
