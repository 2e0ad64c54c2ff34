//! The one immutable [`Snapshot`] every query and connection reads, and the [`SharedState`] that
//! swaps it atomically. Writers build a whole new snapshot and publish it; readers `load()` once
//! per query and never lock or hold it across an `.await`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::health::HealthTable;
use crate::model::Model;

/// Everything the answering core needs, frozen at one moment.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one with every published snapshot.
    pub generation: u64,
    /// The validated configuration.
    pub model: Arc<Model>,
    /// Health of every member of `model`, indexed by member index.
    pub health: Arc<HealthTable>,
    /// When it was published (wall clock, for the status page).
    pub published: SystemTime,
}

/// The current snapshot, shared by all tasks.
#[derive(Debug)]
pub struct SharedState {
    current: ArcSwap<Snapshot>,
    next_generation: AtomicU64,
    /// The generation of the latest snapshot, for tasks that act on changes.
    changes: tokio::sync::watch::Sender<u64>,
}

impl SharedState {
    /// Starts at generation 1 with `model`, monitored members unknown
    /// ([`HealthTable::initial`]). Start-up restores the saved overrides first
    /// ([`crate::health::overrides::restored`]) and calls [`SharedState::with_health`].
    pub fn new(model: Model) -> SharedState {
        let health = Arc::new(HealthTable::initial(&model));
        SharedState::with_health(model, health)
    }

    /// Starts at generation 1 with `model` and a given health table (e.g. with restored
    /// overrides). The table must have one entry per member of `model`.
    pub fn with_health(model: Model, health: Arc<HealthTable>) -> SharedState {
        assert_eq!(
            health.len(),
            model.member_count(),
            "one health entry per member"
        );
        SharedState {
            current: ArcSwap::from_pointee(Snapshot {
                generation: 1,
                model: Arc::new(model),
                health,
                published: SystemTime::now(),
            }),
            next_generation: AtomicU64::new(2),
            changes: tokio::sync::watch::Sender::new(1),
        }
    }

    /// The snapshot in force now.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// A cheap guard for the hot path: valid until dropped, never held across `.await`.
    pub fn peek(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// Publishes a new health table for the current model, returning the new generation.
    /// Only the prober and admin actions call this, one at a time, so no update is lost.
    pub fn publish_health(&self, health: Arc<HealthTable>) -> u64 {
        let model = self.current.load().model.clone();
        self.publish(model, health)
    }

    /// Publishes a new model with its health table, returning the new generation.
    pub fn publish(&self, model: Arc<Model>, health: Arc<HealthTable>) -> u64 {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        self.current.store(Arc::new(Snapshot {
            generation,
            model,
            health,
            published: SystemTime::now(),
        }));
        self.changes.send_replace(generation);
        generation
    }

    /// Wakes whenever a new snapshot is published (by the prober, an admin action or a
    /// reload); the value is the latest generation. For tasks that act on open connections
    /// (the director's supervisor); readers of the snapshot itself just `load()` it.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }
}
