//! How the rest of Meridian talks to the one health writer: operator actions, the writer's
//! current view (for the status page), reloads, and the channel for passive failures. Every
//! request is applied by the writer in order with probe results, so nothing overwrites anything
//! else.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::health::fleet::WriterLink;
use crate::health::overrides::{Action, AdminError, Selector};
use crate::health::passive::{PassiveFailure, PassiveReports};
use crate::health::{HealthTable, MemberState};
use crate::model::Model;
use crate::state::Snapshot;

/// A request to the health writer.
#[derive(Debug)]
pub enum Command {
    /// An operator action.
    Admin {
        /// Which members.
        selector: Selector,
        /// What to do.
        action: Action,
        /// Where the result goes.
        reply: oneshot::Sender<Result<Vec<AdminChange>, AdminError>>,
    },
    /// The writer's current view, for the status page: the snapshot it last published and its
    /// own health table, which also holds probe details (latency, streaks) that are not worth
    /// a new snapshot.
    Observe {
        /// Where the view goes.
        reply: oneshot::Sender<Observed>,
    },
    /// Switch to a new validated model (a config reload): members whose probe did not change
    /// keep their health and overrides; probing restarts on the new plan.
    Reload {
        /// The new model.
        model: Box<Model>,
        /// The generation of the snapshot that carries it.
        reply: oneshot::Sender<u64>,
    },
}

/// The health writer's view at one moment (see [`Command::Observe`]).
#[derive(Debug, Clone)]
pub struct Observed {
    /// The snapshot in force: what DNS answers from.
    pub snapshot: Arc<Snapshot>,
    /// The writer's table for `snapshot.model`: the published one plus the latest probe
    /// details.
    pub table: HealthTable,
}

/// One member whose shown state an admin action changed (or confirmed).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AdminChange {
    /// The member's index in the model.
    #[serde(skip)]
    pub index: usize,
    /// Pool name.
    pub pool: String,
    /// Member address.
    pub member: String,
    /// Shown state before.
    pub from: MemberState,
    /// Shown state after.
    pub to: MemberState,
}

/// A handle for operator actions and reloads; cheap to clone. Everything is applied by the one
/// health writer, in order with probe results, so nothing overwrites anything else.
#[derive(Debug, Clone)]
pub struct HealthControl {
    tx: mpsc::Sender<Command>,
    passive: PassiveReports,
}

/// What the health writer reads: commands and passive failure reports.
#[derive(Debug)]
pub struct Inbox {
    /// Operator actions, views and reloads.
    pub commands: mpsc::Receiver<Command>,
    /// Failures the directors saw.
    pub passive: mpsc::Receiver<PassiveFailure>,
    /// In fleet mode, the writer's end of the link to the fleet.
    pub fleet: Option<WriterLink>,
}

impl HealthControl {
    /// A handle and the inbox to pass to [`super::run`].
    pub fn new() -> (HealthControl, Inbox) {
        let (tx, commands) = mpsc::channel(64);
        let (passive, passive_rx) = PassiveReports::channel();
        let inbox = Inbox {
            commands,
            passive: passive_rx,
            fleet: None,
        };
        (HealthControl { tx, passive }, inbox)
    }

    /// Applies `action` to the selected members, saves the overrides, and publishes a new
    /// snapshot before returning.
    pub async fn apply(
        &self,
        selector: Selector,
        action: Action,
    ) -> Result<Vec<AdminChange>, AdminError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Admin {
                selector,
                action,
                reply,
            })
            .await
            .map_err(|_| AdminError::Unavailable)?;
        rx.await.map_err(|_| AdminError::Unavailable)?
    }

    /// The writer's current view (for the status page).
    pub async fn observe(&self) -> Result<Observed, AdminError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Observe { reply })
            .await
            .map_err(|_| AdminError::Unavailable)?;
        rx.await.map_err(|_| AdminError::Unavailable)
    }

    /// Where the directors report passive failures (applied by the same writer).
    pub fn passive(&self) -> PassiveReports {
        self.passive.clone()
    }

    /// Switches to `model`, returning the generation of the snapshot that carries it.
    pub async fn reload(&self, model: Model) -> Result<u64, AdminError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Reload {
                model: Box::new(model),
                reply,
            })
            .await
            .map_err(|_| AdminError::Unavailable)?;
        rx.await.map_err(|_| AdminError::Unavailable)
    }
}
