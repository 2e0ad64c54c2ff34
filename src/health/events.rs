//! The recent health transitions an operator reads on the status page and in
//! `/api/v1/events`: a bounded ring of the last [`CAPACITY`] changes of a member's shown state
//! (probe flips, admin actions, reloads), written only by the health writer, and a broadcast
//! feed of the same events for live streams. Transitions are rare, so a mutex touched once per
//! transition and per API read costs nothing on any hot path.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::broadcast;

use super::MemberState;

/// How many transitions the ring keeps.
pub const CAPACITY: usize = 256;

/// What caused a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Probe results crossed `rise` or `fall` (or the first result decided `unknown`).
    Probe,
    /// An operator's drain / force / clear.
    Admin,
    /// A config reload added, removed or reset the member.
    Reload,
    /// A failure seen outside the probes: the director could not connect.
    Passive,
    /// The fleet's observations, by the monitor's consensus policy.
    Consensus,
}

impl Cause {
    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Probe => "probe",
            Cause::Admin => "admin",
            Cause::Passive => "passive",
            Cause::Reload => "reload",
            Cause::Consensus => "consensus",
        }
    }
}

/// One change of a member's state, as the health writer describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Pool name.
    pub pool: String,
    /// Member, as admin calls name it (`192.0.2.10`, or with `:port`).
    pub member: String,
    /// Shown state before ([`MemberState::Absent`] for a member a reload added).
    pub from: MemberState,
    /// Shown state after ([`MemberState::Absent`] for a member a reload removed).
    pub to: MemberState,
    /// Why: the failure reason of a flip down, the action of an admin change.
    pub reason: Option<Arc<str>>,
    /// Consecutive probe results that caused a probe flip (`fall` failures or `rise`
    /// successes; 1 for the first result); 0 for other causes.
    pub streak: u32,
    /// What caused it.
    pub cause: Cause,
}

/// A [`Change`] as recorded: numbered and timestamped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Position in the stream: increases by one per transition, from 1.
    pub seq: u64,
    /// When the writer recorded it (wall clock, for display).
    pub time: SystemTime,
    /// What changed.
    pub change: Change,
}

#[derive(Debug)]
struct Ring {
    next_seq: u64,
    recent: VecDeque<Transition>,
}

/// The ring and the live feed.
#[derive(Debug)]
pub struct Events {
    capacity: usize,
    ring: Mutex<Ring>,
    feed: broadcast::Sender<Transition>,
}

impl Default for Events {
    /// An empty ring of [`CAPACITY`] transitions.
    fn default() -> Events {
        Events::new(CAPACITY)
    }
}

impl Events {
    /// An empty ring keeping the last `capacity` transitions.
    pub fn new(capacity: usize) -> Events {
        let (feed, _) = broadcast::channel(capacity.max(1));
        Events {
            capacity: capacity.max(1),
            ring: Mutex::new(Ring {
                next_seq: 1,
                recent: VecDeque::with_capacity(capacity),
            }),
            feed,
        }
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        // A panic while holding the lock cannot leave a half-pushed event behind.
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Numbers, timestamps and records a change, and sends it to live subscribers.
    pub fn push(&self, change: Change) -> Transition {
        let mut ring = self.ring();
        let t = Transition {
            seq: ring.next_seq,
            time: SystemTime::now(),
            change,
        };
        ring.next_seq += 1;
        if ring.recent.len() == self.capacity {
            ring.recent.pop_front();
        }
        ring.recent.push_back(t.clone());
        // Sent under the lock, so subscribers see transitions in `seq` order; no receiver is
        // not an error.
        let _ = self.feed.send(t.clone());
        t
    }

    /// The kept transitions with `seq > after`, oldest first, at most the last `limit`.
    pub fn since(&self, after: u64, limit: usize) -> Vec<Transition> {
        let ring = self.ring();
        let newer = ring.recent.iter().filter(|t| t.seq > after);
        let skip = newer.clone().count().saturating_sub(limit);
        newer.skip(skip).cloned().collect()
    }

    /// A live feed of transitions pushed from now on, and (taken atomically with it) the kept
    /// ones with `seq > after`, so a subscriber misses none and sees none twice.
    pub fn subscribe(&self, after: u64) -> (Vec<Transition>, broadcast::Receiver<Transition>) {
        let ring = self.ring();
        let live = self.feed.subscribe();
        let backlog = ring
            .recent
            .iter()
            .filter(|t| t.seq > after)
            .cloned()
            .collect();
        (backlog, live)
    }

    /// How many transitions the ring keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(to: MemberState) -> Change {
        Change {
            pool: "p".into(),
            member: "192.0.2.1".into(),
            from: MemberState::Up,
            to,
            reason: None,
            streak: 3,
            cause: Cause::Probe,
        }
    }

    #[test]
    fn keeps_the_last_capacity_in_order_and_feeds_subscribers() {
        let events = Events::new(3);
        let (_, mut live) = events.subscribe(0);
        events.push(draft(MemberState::Down));
        assert_eq!(live.try_recv().unwrap().seq, 1);
        for i in 0..4 {
            events.push(draft(MemberState::ALL[i]));
        }
        let kept: Vec<u64> = events.since(0, 10).iter().map(|t| t.seq).collect();
        assert_eq!(kept, [3, 4, 5]);
        assert_eq!(events.since(3, 10).len(), 2);
        assert_eq!(events.since(0, 1)[0].seq, 5);

        let (backlog, mut live) = events.subscribe(4);
        assert_eq!(backlog.iter().map(|t| t.seq).collect::<Vec<_>>(), [5]);
        events.push(draft(MemberState::Down));
        assert_eq!(live.try_recv().unwrap().seq, 6);
    }
}
