//! The health writer in fleet mode: it sends its own observations and operator overrides to
//! the fleet, and turns the fleet's views (peers' observations, the fleet's overrides) into
//! members' states by each monitor's consensus policy. Still the only writer of health.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;
use tracing::{info, warn};

use super::{Writer, record};
use crate::health::consensus::{Votes, decide};
use crate::health::events::{Cause, Change};
use crate::health::fleet::{MemberKey, Observed, ToFleet, WriterLink, unix_now};
use crate::health::overrides::{self, AdminError};
use crate::health::{HealthState, HealthTable, MemberState, Override};
use crate::model::{Consensus, Model};

/// The writer's fleet state: the link and the model's members by fleet key.
#[derive(Debug)]
pub(super) struct Fleet {
    pub(super) link: WriterLink,
    keys: HashMap<MemberKey, usize>,
}

/// The fleet key of member `index`.
pub(super) fn key_of(model: &Model, index: usize) -> MemberKey {
    let (pool, member) = model.member(index);
    MemberKey {
        pool: pool.name.clone(),
        member: member.id(),
    }
}

/// The consensus policy of member `index` (`Local` for unmonitored members).
fn policy_of(model: &Model, index: usize) -> Consensus {
    let (pool, _) = model.member(index);
    model
        .monitor_of(pool)
        .map(|m| m.consensus)
        .unwrap_or_default()
}

/// Why `decided` by `policy`, for the log and the events ring.
fn consensus_reason(policy: Consensus, votes: Votes, down_by: &[&str]) -> String {
    let mut reason = format!(
        "consensus {policy}: {} of {} instances observe it down",
        votes.down,
        votes.voters()
    );
    if !down_by.is_empty() {
        reason.push_str(&format!(" ({})", down_by.join(", ")));
    }
    reason
}

impl Writer {
    /// Joins the fleet through `link`: from now on observations go to the fleet, and its
    /// views decide. Sends this instance's current observations.
    pub fn attach_fleet(&mut self, link: WriterLink) {
        self.fleet = Some(Fleet {
            link,
            keys: HashMap::new(),
        });
        self.fleet_model_changed();
    }

    /// The fleet's receivers, for the run loop to wait on.
    pub fn fleet_link(&mut self) -> Option<&mut WriterLink> {
        self.fleet.as_mut().map(|f| &mut f.link)
    }

    /// After a start or reload: re-index the members and send every observation.
    pub(super) fn fleet_model_changed(&mut self) {
        let Some(fleet) = &mut self.fleet else {
            return;
        };
        fleet.keys = (0..self.model.member_count())
            .map(|i| (key_of(&self.model, i), i))
            .collect();
        let all = (0..self.table.len())
            .filter_map(|i| observed(&self.table, i).map(|o| (key_of(&self.model, i), o)))
            .collect();
        let _ = fleet.link.to_fleet.send(ToFleet::All(all));
        self.apply_fleet_overrides();
        self.reconsider_all();
    }

    /// A member's own observation changed: tell the fleet, then decide its state again.
    /// True when its effective state changed.
    pub(super) fn fleet_observed(&mut self, index: usize) -> bool {
        let Some(fleet) = &self.fleet else {
            return false;
        };
        if let Some(obs) = observed(&self.table, index) {
            let _ = fleet
                .link
                .to_fleet
                .send(ToFleet::One(key_of(&self.model, index), obs));
        }
        self.reconsider(index, Instant::now())
    }

    /// Is member `index`'s state decided by the fleet (fleet mode and a non-local policy)?
    pub(super) fn governed(&self, index: usize) -> bool {
        self.fleet.is_some() && policy_of(&self.model, index) != Consensus::Local
    }

    /// Decides member `index` again from its own and peers' observations; records a change
    /// of its shown state. True when its effective state changed.
    fn reconsider(&mut self, index: usize, now: Instant) -> bool {
        let Some(fleet) = &self.fleet else {
            return false;
        };
        let policy = policy_of(&self.model, index);
        let entry = self.table.get(index);
        if policy == Consensus::Local || entry.unmonitored {
            return false;
        }
        let key = key_of(&self.model, index);
        let view = fleet.link.peers.borrow().clone();
        let local = entry.state;
        let peers: Vec<(&str, HealthState)> =
            view.votes_on(&key, now, fleet.link.stale_peers).collect();
        let votes = Votes::count(std::iter::once(local).chain(peers.iter().map(|p| p.1)));
        let decided = decide(policy, local, votes);
        let (before, shown_before) = (entry.effective(), entry.shown());
        self.table.get_mut(index).fleet = Some(decided);
        if before == decided {
            return false;
        }
        let mut down_by: Vec<&str> = peers
            .iter()
            .filter(|p| p.1 == HealthState::Down)
            .map(|p| p.0)
            .collect();
        if local == HealthState::Down {
            down_by.insert(0, "this instance");
        }
        let reason = consensus_reason(policy, votes, &down_by);
        let (pool, member) = self.model.member(index);
        match decided {
            HealthState::Down => warn!(
                pool = %pool.name, member = %member.address, from = %before, to = %decided,
                "member {} of pool {} DOWN by {reason}", member.address, pool.name
            ),
            _ => info!(
                pool = %pool.name, member = %member.address, from = %before, to = %decided,
                "member {} of pool {} {} by {reason}",
                member.address, pool.name, decided.to_string().to_uppercase()
            ),
        }
        self.record_shown(index, shown_before, reason, Cause::Consensus);
        true
    }

    /// Records a change of member `index`'s shown state from `before`, if there is one.
    fn record_shown(&mut self, index: usize, before: MemberState, reason: String, cause: Cause) {
        let after = self.table.get(index).shown();
        if after == before {
            return;
        }
        let (pool, member) = self.model.member(index);
        let event = Change {
            pool: pool.name.clone(),
            member: member.id(),
            from: before,
            to: after,
            reason: Some(Arc::from(reason)),
            streak: 0,
            cause,
        };
        record(&self.telemetry, &mut self.table, index, event);
    }

    /// Decides every governed member again (peers' view changed). True when any changed.
    pub fn reconsider_all(&mut self) -> bool {
        if self.fleet.is_none() {
            return false;
        }
        let now = Instant::now();
        let mut changed = false;
        for i in 0..self.table.len() {
            changed |= self.reconsider(i, now);
        }
        changed
    }

    /// Applies the fleet's overrides where they are newer than what a member has; saves the
    /// state file (the cache for a restart without etcd) when anything changed. True when
    /// anything changed.
    pub fn apply_fleet_overrides(&mut self) -> bool {
        let Some(fleet) = &self.fleet else {
            return false;
        };
        let view = fleet.link.overrides.borrow().clone();
        if !view.loaded {
            return false;
        }
        let mut changed = false;
        for i in 0..self.table.len() {
            let key = key_of(&self.model, i);
            let (value, revision) = view.get(&key);
            let by = view
                .entries
                .get(&key)
                .and_then(|(o, _)| o.as_ref().map(|o| o.by.clone()));
            changed |= self.set_override(i, value, revision, by.as_deref());
        }
        if changed {
            self.save_overrides_in_background();
        }
        changed
    }

    /// Sets member `index`'s override to `value` as of etcd `revision`, unless it already has
    /// a later one; records a change of its shown state. True when the override changed.
    fn set_override(
        &mut self,
        index: usize,
        value: Option<Override>,
        revision: i64,
        by: Option<&str>,
    ) -> bool {
        let entry = self.table.get(index);
        if revision < entry.admin_revision
            || (entry.admin == value && revision == entry.admin_revision)
        {
            return false;
        }
        let (before, shown_before) = (entry.admin, entry.shown());
        let entry = self.table.get_mut(index);
        entry.admin = value;
        entry.admin_revision = revision;
        if before == value {
            return false;
        }
        let shown_after = self.table.get(index).shown();
        let (pool, member) = self.model.member(index);
        let action = value.map_or("clear".to_string(), |o| o.to_string());
        let reason = match by {
            Some(by) => format!("fleet override {action} by {by}"),
            None => format!("fleet override {action}"),
        };
        info!(
            pool = %pool.name, member = %member.address,
            "member {} of pool {}: {reason} ({shown_before} → {shown_after})",
            member.address, pool.name
        );
        self.record_shown(index, shown_before, reason, Cause::Admin);
        true
    }

    /// In fleet mode: writes the overrides `next` gives the members `indices` to etcd, then
    /// applies them here as of the write's revision. `None` without a fleet.
    pub(super) async fn fleet_admin(
        &mut self,
        indices: &[usize],
        next: &HealthTable,
        by: &str,
    ) -> Option<Result<(), AdminError>> {
        let fleet = self.fleet.as_ref()?;
        let changes = indices
            .iter()
            .map(|&i| (key_of(&self.model, i), next.get(i).admin))
            .collect();
        let (reply, rx) = tokio::sync::oneshot::channel();
        let sent = fleet.link.to_fleet.send(ToFleet::Write {
            changes,
            by: by.to_string(),
            reply,
        });
        let revision = match (sent, rx.await) {
            (Ok(()), Ok(Ok(revision))) => revision,
            (Ok(()), Ok(Err(reason))) => return Some(Err(AdminError::Fleet(reason))),
            _ => return Some(Err(AdminError::Fleet("the fleet is not running".into()))),
        };
        for &i in indices {
            self.set_override(i, next.get(i).admin, revision, Some(by));
        }
        self.save_overrides_in_background();
        Some(Ok(()))
    }

    /// Saves the overrides to the state file without holding up the writer.
    fn save_overrides_in_background(&self) {
        let saved = overrides::collect(&self.model, &self.table);
        let path = self.model.health.state_file.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = overrides::save(&path, &saved) {
                warn!("fleet: cannot cache the overrides in the state file: {e}");
            }
        });
    }
}

/// Member `index`'s own observation, if it has one.
fn observed(table: &HealthTable, index: usize) -> Option<Observed> {
    let entry = table.get(index);
    if entry.unmonitored || entry.state == HealthState::Unknown {
        return None;
    }
    Some(Observed {
        state: entry.state,
        reason: match entry.state {
            HealthState::Down => entry.last_reason.as_deref().map(str::to_string),
            _ => None,
        },
        at: unix_now(),
    })
}
