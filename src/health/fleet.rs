//! What the fleet and the health writer tell each other, as plain data: the writer sends its
//! own observations and operator overrides to be written to etcd; the fleet hands back what
//! etcd holds (peers' observations, the fleet's overrides, the instances) as immutable views.
//! The two never call each other: views travel on `watch` channels (latest value wins, so the
//! fleet never blocks on the writer) and requests on an unbounded channel.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::{HealthState, Override};

/// A member as the fleet names it: its pool and its id (`192.0.2.10`, or with `:port`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MemberKey {
    /// Pool name.
    pub pool: String,
    /// Member id.
    pub member: String,
}

/// One instance's observation of a member, as stored in etcd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// `up` or `down`.
    pub state: HealthState,
    /// Why it is down, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it changed (seconds since the Unix epoch).
    #[serde(default)]
    pub at: u64,
}

/// An instance of the fleet, as it registered itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Its `[fleet] name`.
    pub name: String,
    /// Meridian's version.
    pub version: String,
    /// Its config digest (`Model::config_digest`).
    pub config_digest: String,
    /// Its config generation (1 at start, +1 per reload).
    pub generation: u64,
    /// When it started (seconds since the Unix epoch).
    pub started: u64,
}

/// Peers' observations and the instances, as the fleet last read them from etcd.
#[derive(Debug, Clone, Default)]
pub struct PeerView {
    /// Live instances (this one included once registered), by name.
    pub instances: BTreeMap<String, Instance>,
    /// Every other live instance's observations, by instance name.
    pub observations: BTreeMap<String, HashMap<MemberKey, Observed>>,
    /// When this instance last saw a write of each live instance (registration or
    /// observation), seconds since the Unix epoch.
    pub last_seen: BTreeMap<String, u64>,
    /// `None` while etcd is connected; else when it was lost (or, before it was ever
    /// reached, when the fleet started).
    pub lost_at: Option<Instant>,
}

impl PeerView {
    /// Do peers' observations still count at `now`? Always while connected; for
    /// `stale_peers` after etcd was lost; never after that.
    pub fn counts(&self, now: Instant, stale_peers: Duration) -> bool {
        match self.lost_at {
            None => true,
            Some(lost) => now.saturating_duration_since(lost) <= stale_peers,
        }
    }

    /// Peers' observations of `key` that count at `now`.
    pub fn votes_on<'a>(
        &'a self,
        key: &'a MemberKey,
        now: Instant,
        stale_peers: Duration,
    ) -> impl Iterator<Item = (&'a str, HealthState)> + 'a {
        let counts = self.counts(now, stale_peers);
        self.observations
            .iter()
            .filter(move |_| counts)
            .filter_map(move |(name, obs)| obs.get(key).map(|o| (name.as_str(), o.state)))
    }
}

/// An operator override as stored in etcd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOverride {
    /// The override.
    #[serde(rename = "override")]
    pub value: Override,
    /// Who set it (the instance that took the request, and the API caller when known).
    pub by: String,
    /// When (seconds since the Unix epoch).
    pub at: u64,
}

/// The fleet's overrides: for each member the last write, by etcd revision.
#[derive(Debug, Clone, Default)]
pub struct OverrideView {
    /// Members with an override, or whose override was cleared, with the revision of that
    /// write. A member not listed has had none since `base_revision`.
    pub entries: HashMap<MemberKey, (Option<StoredOverride>, i64)>,
    /// The revision the view was read at.
    pub base_revision: i64,
    /// False until etcd was read once: the state file's overrides stay in force until then.
    pub loaded: bool,
}

impl OverrideView {
    /// The override of `key` and the revision that set it.
    pub fn get(&self, key: &MemberKey) -> (Option<Override>, i64) {
        match self.entries.get(key) {
            Some((value, rev)) => (value.as_ref().map(|o| o.value), *rev),
            None => (None, self.base_revision),
        }
    }
}

/// A request from the health writer to the fleet.
#[derive(Debug)]
pub enum ToFleet {
    /// This instance's observations of every monitored member now (at start and reload): the
    /// fleet publishes these and removes its own observations of other members.
    All(Vec<(MemberKey, Observed)>),
    /// One observation changed.
    One(MemberKey, Observed),
    /// Write these overrides (`None`: clear) for every instance; the reply is the etcd
    /// revision of the write, or why it could not be made.
    Write {
        /// Members and their new overrides.
        changes: Vec<(MemberKey, Option<Override>)>,
        /// Who asked.
        by: String,
        /// The revision, or the reason.
        reply: oneshot::Sender<Result<i64, String>>,
    },
}

/// The health writer's end: where it sends observations and override writes, and the views
/// it applies.
#[derive(Debug)]
pub struct WriterLink {
    /// Requests to the fleet.
    pub to_fleet: mpsc::UnboundedSender<ToFleet>,
    /// Peers' observations.
    pub peers: watch::Receiver<Arc<PeerView>>,
    /// The fleet's overrides.
    pub overrides: watch::Receiver<Arc<OverrideView>>,
    /// How long peers' observations count after etcd is lost.
    pub stale_peers: Duration,
}

/// The fleet's end of the same link.
#[derive(Debug)]
pub struct FleetLink {
    /// Requests from the writer.
    pub from_writer: mpsc::UnboundedReceiver<ToFleet>,
    /// Where peers' observations are published.
    pub peers: watch::Sender<Arc<PeerView>>,
    /// Where the fleet's overrides are published.
    pub overrides: watch::Sender<Arc<OverrideView>>,
}

/// A connected pair of ends. The peer view starts as "etcd lost at start-up".
pub fn link(stale_peers: Duration) -> (WriterLink, FleetLink) {
    let (to_fleet, from_writer) = mpsc::unbounded_channel();
    let (peers_tx, peers) = watch::channel(Arc::new(PeerView {
        lost_at: Some(Instant::now()),
        ..PeerView::default()
    }));
    let (overrides_tx, overrides) = watch::channel(Arc::new(OverrideView::default()));
    (
        WriterLink {
            to_fleet,
            peers,
            overrides,
            stale_peers,
        },
        FleetLink {
            from_writer,
            peers: peers_tx,
            overrides: overrides_tx,
        },
    )
}

/// Seconds since the Unix epoch now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(m: &str) -> MemberKey {
        MemberKey {
            pool: "eu".to_string(),
            member: m.to_string(),
        }
    }

    fn obs(state: HealthState) -> Observed {
        Observed {
            state,
            reason: None,
            at: 0,
        }
    }

    #[test]
    fn peers_count_while_connected_then_for_the_stale_bound() {
        let now = Instant::now();
        let mut view = PeerView::default();
        view.observations.insert(
            "ns2".into(),
            HashMap::from([(key("a"), obs(HealthState::Down))]),
        );
        let bound = Duration::from_secs(30);
        assert_eq!(view.votes_on(&key("a"), now, bound).count(), 1);
        assert_eq!(view.votes_on(&key("b"), now, bound).count(), 0);
        view.lost_at = Some(now);
        assert_eq!(view.votes_on(&key("a"), now + bound, bound).count(), 1);
        let later = now + bound + Duration::from_millis(1);
        assert_eq!(view.votes_on(&key("a"), later, bound).count(), 0);
    }

    #[test]
    fn overrides_not_listed_date_from_the_read() {
        let mut view = OverrideView {
            base_revision: 7,
            ..OverrideView::default()
        };
        assert_eq!(view.get(&key("a")), (None, 7));
        view.entries.insert(
            key("a"),
            (
                Some(StoredOverride {
                    value: Override::Drain,
                    by: "ns1".into(),
                    at: 1,
                }),
                9,
            ),
        );
        assert_eq!(view.get(&key("a")), (Some(Override::Drain), 9));
    }
}
