//! The one immutable [`Snapshot`] every query and connection reads, and the [`SharedState`] that
//! swaps it atomically. Writers build a whole new snapshot and publish it; readers `load()` once
//! per query and never lock or hold it across an `.await`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;

use crate::model::Model;

/// Everything the answering core needs, frozen at one moment.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one with every published snapshot.
    pub generation: u64,
    /// The validated configuration.
    pub model: Arc<Model>,
}

/// The current snapshot, shared by all tasks.
#[derive(Debug)]
pub struct SharedState {
    current: ArcSwap<Snapshot>,
    next_generation: AtomicU64,
}

impl SharedState {
    /// Starts at generation 1 with `model`.
    pub fn new(model: Model) -> SharedState {
        SharedState {
            current: ArcSwap::from_pointee(Snapshot {
                generation: 1,
                model: Arc::new(model),
            }),
            next_generation: AtomicU64::new(2),
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

    /// Publishes a new snapshot with `model`, returning its generation.
    pub fn publish(&self, model: Arc<Model>) -> u64 {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        self.current.store(Arc::new(Snapshot { generation, model }));
        generation
    }
}
