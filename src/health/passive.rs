//! Failures seen outside the probes, on their way to the health writer: a director whose
//! connect to a member was refused or timed out reports it here, like HAProxy's
//! `observe layer4`, and the writer marks the member down at once. A bounded channel that
//! never makes the reporter wait: when the writer is busy and the queue full, the report is
//! dropped and the probes still decide.

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::debug;

use crate::model::Model;

/// Reports queued for the writer at most.
const QUEUE: usize = 64;

/// One failure seen outside the probes.
#[derive(Debug)]
pub struct PassiveFailure {
    /// The model the member index belongs to: ignored when it is no longer the running one
    /// (member indices may have moved).
    pub model: Arc<Model>,
    /// The member's index.
    pub member: usize,
    /// Why, for the log and the status page (`connect refused (director)`).
    pub reason: Arc<str>,
}

/// Where passive failures are reported; cheap to clone.
#[derive(Debug, Clone)]
pub struct PassiveReports {
    tx: mpsc::Sender<PassiveFailure>,
}

impl PassiveReports {
    /// A reporting handle and the receiver the health writer reads.
    pub fn channel() -> (PassiveReports, mpsc::Receiver<PassiveFailure>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (PassiveReports { tx }, rx)
    }

    /// Reports a failure of `member` without waiting.
    pub fn report(&self, model: Arc<Model>, member: usize, reason: Arc<str>) {
        let sent = self.tx.try_send(PassiveFailure {
            model,
            member,
            reason,
        });
        if sent.is_err() {
            debug!(
                member,
                "health: passive failure report dropped, writer busy"
            );
        }
    }
}
