//! The one health writer: the running model, its working health table and probe plan. It
//! applies probe results, passive failures, operator actions and reloads one at a time, logs
//! and records every change of a member's state, and publishes a new snapshot when an answer
//! could change. Nothing else writes health.

mod fleet;

use std::collections::HashMap;
use std::sync::Arc;

use tracing::{info, warn};

use super::control::{AdminChange, Observed};
use super::metrics::HealthTelemetry;
use super::plan::{Target, plan};
use crate::health::events::{Cause, Change};
use crate::health::overrides::{self, Action, AdminError, Selector};
use crate::health::{HealthState, HealthTable, MemberState, Observation, Ramp};
use crate::model::Model;
use crate::select::fastest::Watch;
use crate::state::SharedState;

/// The health table for `next` after a reload from `prev`: a member keeps its health and
/// override when its pool, address and port are the same and it is probed the same way (same
/// monitor settings, same probe address); every other member starts afresh.
pub fn carry_over(prev: &Model, prev_table: &HealthTable, next: &Model) -> HealthTable {
    let mut table = HealthTable::initial(next);
    let probe_of = |model: &Model, pool: &crate::model::Pool, m: &crate::model::Member| {
        model.monitor_of(pool).map(|mon| {
            (
                mon.kind.clone(),
                mon.port,
                mon.timeout,
                mon.thresholds,
                mon.source,
                mon.target(m),
            )
        })
    };
    let old: HashMap<MemberKey<'_>, (usize, _)> = prev
        .members()
        .map(|(p, m)| (member_key(p, m), (m.index, probe_of(prev, p, m))))
        .collect();
    for (pool, m) in next.members() {
        if let Some((i, probe)) = old.get(&member_key(pool, m))
            && *probe == probe_of(next, pool, m)
        {
            *table.get_mut(m.index) = prev_table.get(*i).clone();
        } else if !old.contains_key(&member_key(pool, m)) {
            // Added by this reload: its first coming up is slow-started (at once when
            // nothing probes it).
            let entry = table.get_mut(m.index);
            entry.added = true;
            if entry.unmonitored {
                start_ramp(entry, pool, HealthState::Unknown, HealthState::Up);
            }
        }
    }
    table
}

/// What identifies a member across reloads: its pool, address and port.
type MemberKey<'a> = (&'a str, &'a crate::model::BackendAddr, Option<u16>);

fn member_key<'a>(pool: &'a crate::model::Pool, m: &'a crate::model::Member) -> MemberKey<'a> {
    (pool.name.as_str(), &m.address, m.port)
}

/// The shown-state changes a reload from (`prev`, `prev_table`) to (`next`, `next_table`)
/// makes: members added (`absent` → …), removed (… → `absent`) or started afresh, each with
/// the member's index in `next` (`None` for a removed one).
fn reload_transitions(
    prev: &Model,
    prev_table: &HealthTable,
    next: &Model,
    next_table: &HealthTable,
) -> Vec<(Option<usize>, Change)> {
    let shown = |table: &HealthTable, i: usize| table.get(i).shown();
    let event = |pool: &str, m: &crate::model::Member, from, to| Change {
        pool: pool.to_string(),
        member: m.id(),
        from,
        to,
        reason: Some(Arc::from("config reloaded")),
        streak: 0,
        cause: Cause::Reload,
    };
    let old: HashMap<MemberKey<'_>, usize> = prev
        .members()
        .map(|(p, m)| (member_key(p, m), m.index))
        .collect();
    let new: HashMap<MemberKey<'_>, usize> = next
        .members()
        .map(|(p, m)| (member_key(p, m), m.index))
        .collect();
    let mut out = Vec::new();
    for (pool, m) in next.members() {
        let to = shown(next_table, m.index);
        match old.get(&member_key(pool, m)) {
            None => out.push((Some(m.index), event(&pool.name, m, MemberState::Absent, to))),
            Some(&i) if shown(prev_table, i) != to => {
                out.push((
                    Some(m.index),
                    event(&pool.name, m, shown(prev_table, i), to),
                ));
            }
            Some(_) => {}
        }
    }
    for (pool, m) in prev.members() {
        if !new.contains_key(&member_key(pool, m)) {
            let from = shown(prev_table, m.index);
            out.push((None, event(&pool.name, m, from, MemberState::Absent)));
        }
    }
    out
}

/// The one health writer: the running model, its working health table and probe plan. It
/// applies probe results, passive failures, operator actions and reloads one at a time, records
/// every change of a member's state (log, events ring, metrics), and publishes a new snapshot
/// when an answer could change. [`run`] drives it from the probe tasks and the command channel;
/// benchmarks drive it directly. Nothing else writes health.
#[derive(Debug)]
pub struct Writer {
    state: Arc<SharedState>,
    telemetry: HealthTelemetry,
    model: Arc<Model>,
    table: HealthTable,
    targets: Vec<Target>,
    /// Which members' round-trip times answers depend on (`fastest`, `latency`).
    rtt_watch: Watch,
    fleet: Option<fleet::Fleet>,
}

impl Writer {
    /// A writer for the snapshot in force in `state`, with that model's probe plan.
    pub fn new(state: Arc<SharedState>, telemetry: HealthTelemetry) -> Writer {
        let snap = state.load();
        let model = snap.model.clone();
        let table = (*snap.health).clone();
        drop(snap);
        let targets = plan(&model);
        let rtt_watch = Watch::new(&model);
        Writer {
            state,
            telemetry,
            model,
            table,
            targets,
            rtt_watch,
            fleet: None,
        }
    }

    /// Where changes are recorded.
    pub fn telemetry(&self) -> &HealthTelemetry {
        &self.telemetry
    }

    /// The model being probed.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// The probe plan of [`Writer::model`]; results are addressed by position in it.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The working table: the published one plus probe details not worth a snapshot.
    pub fn table(&self) -> &HealthTable {
        &self.table
    }

    /// Applies one result of target `target` (a position in [`Writer::targets`]) to every
    /// member it decides, without publishing. True when something an answer depends on
    /// changed, so the caller should [`Writer::publish`] (once for a batch of results).
    pub fn apply(&mut self, target: usize, obs: &Observation) -> bool {
        let governed: Vec<bool> = self.targets[target]
            .members
            .iter()
            .map(|&m| self.governed(m))
            .collect();
        let (mut changed, flipped) = apply(
            &self.model,
            &self.targets[target],
            obs,
            &mut self.table,
            &self.telemetry,
            &governed,
        );
        for m in flipped {
            changed |= self.fleet_observed(m);
        }
        // A new round-trip average is published only when it moves a member into or out of
        // a band, or reorders a latency service's pools, as the published table sees them.
        if !changed && obs.ok && !self.rtt_watch.is_empty() {
            let published = self.state.load();
            changed = Arc::ptr_eq(&published.model, &self.model)
                && self.targets[target].members.iter().any(|&m| {
                    self.rtt_watch
                        .moved(&self.model, &published.health, &self.table, m)
                });
        }
        changed
    }

    /// Publishes the working table with the running model; returns the new generation.
    pub fn publish(&self) -> u64 {
        self.state.publish_health(Arc::new(self.table.clone()))
    }

    /// Applies a passive failure reported against `seen` (see [`Command::Passive`]) and
    /// publishes if the member flipped.
    pub fn passive(&mut self, seen: &Arc<Model>, member: usize, reason: Arc<str>) {
        if Arc::ptr_eq(seen, &self.model)
            && passive(
                &self.model,
                &mut self.table,
                member,
                reason,
                &self.telemetry,
            )
        {
            self.publish();
        }
    }

    /// Applies an operator action (saved to the state file first), records and publishes it.
    pub async fn admin(
        &mut self,
        selector: &Selector,
        action: Action,
    ) -> Result<Vec<AdminChange>, AdminError> {
        if self.fleet.is_some() {
            return self.admin_in_fleet(selector, action).await;
        }
        let changes = admin(&self.model, &mut self.table, selector, action).await?;
        for change in changes.iter().filter(|c| c.from != c.to) {
            let event = Change {
                pool: change.pool.clone(),
                member: self.model.member(change.index).1.id(),
                from: change.from,
                to: change.to,
                reason: Some(Arc::from(format!("admin {}", action.name()))),
                streak: 0,
                cause: Cause::Admin,
            };
            record(&self.telemetry, &mut self.table, change.index, event);
        }
        self.publish();
        Ok(changes)
    }

    /// [`Writer::admin`] in fleet mode: the override is written to etcd first, so it reaches
    /// every instance, then applied here as of that write.
    async fn admin_in_fleet(
        &mut self,
        selector: &Selector,
        action: Action,
    ) -> Result<Vec<AdminChange>, AdminError> {
        let indices = overrides::resolve(&self.model, selector)?;
        let before = self.table.clone();
        let mut next = self.table.clone();
        for &i in &indices {
            let entry = next.get_mut(i);
            entry.admin = action.apply(entry.admin);
        }
        let by = match &self.model.fleet {
            Some(f) => format!("{} (admin {})", f.name, action.name()),
            None => format!("admin {}", action.name()),
        };
        if let Some(result) = self.fleet_admin(&indices, &next, &by).await {
            result?;
        }
        let changes = indices
            .iter()
            .map(|&i| {
                let (pool, member) = self.model.member(i);
                AdminChange {
                    index: i,
                    pool: pool.name.clone(),
                    member: member.address.to_string(),
                    from: before.get(i).shown(),
                    to: self.table.get(i).shown(),
                }
            })
            .collect();
        self.publish();
        Ok(changes)
    }

    /// Switches to `next` (see [`carry_over`]), records what the reload changed, plans its
    /// probes and publishes it; returns the generation of the snapshot that carries it.
    pub fn reload(&mut self, mut next: Model) -> u64 {
        // Signatures made with an unchanged key stay valid: keep them.
        next.zones.adopt_signature_caches(&self.model.zones);
        let next = Arc::new(next);
        let prev_table = std::mem::take(&mut self.table);
        self.table = carry_over(&self.model, &prev_table, &next);
        let changes = reload_transitions(&self.model, &prev_table, &next, &self.table);
        self.model = next;
        self.targets = plan(&self.model);
        self.rtt_watch = Watch::new(&self.model);
        self.fleet_model_changed();
        for (index, event) in changes {
            match index {
                Some(i) => record(&self.telemetry, &mut self.table, i, event),
                None => {
                    self.telemetry.metrics.transition(event.to);
                    self.telemetry.events.push(event);
                }
            }
        }
        self.state
            .publish(self.model.clone(), Arc::new(self.table.clone()))
    }

    /// The writer's view now (for the status page).
    pub fn observe(&self) -> Observed {
        Observed {
            snapshot: self.state.load(),
            table: self.table.clone(),
        }
    }
}

/// Applies an operator action: saves the resulting overrides first (so a change that could not
/// be saved is not made), then changes `table`.
async fn admin(
    model: &Model,
    table: &mut HealthTable,
    selector: &Selector,
    action: Action,
) -> Result<Vec<AdminChange>, AdminError> {
    let indices = overrides::resolve(model, selector)?;
    let mut next = table.clone();
    for &i in &indices {
        let entry = next.get_mut(i);
        entry.admin = action.apply(entry.admin);
    }
    let saved = overrides::collect(model, &next);
    let path = model.health.state_file.clone();
    tokio::task::spawn_blocking(move || overrides::save(&path, &saved))
        .await
        .map_err(|e| {
            AdminError::Save(overrides::StateFileError::Write {
                path: model.health.state_file.clone(),
                reason: e.to_string(),
            })
        })?
        .map_err(AdminError::Save)?;
    let mut changes = Vec::new();
    for &i in &indices {
        let (pool, member) = model.member(i);
        let change = AdminChange {
            index: i,
            pool: pool.name.clone(),
            member: member.address.to_string(),
            from: table.get(i).shown(),
            to: next.get(i).shown(),
        };
        info!(
            pool = %change.pool, member = %change.member, action = ?action,
            "admin: member {} of pool {} {} → {}",
            change.member, change.pool, change.from, change.to
        );
        changes.push(change);
    }
    *table = next;
    Ok(changes)
}

/// Applies a passive failure to `member`; true when it flipped (then logged and recorded like a
/// probe flip).
fn passive(
    model: &Model,
    table: &mut HealthTable,
    member: usize,
    reason: Arc<str>,
    telemetry: &HealthTelemetry,
) -> bool {
    if member >= table.len() {
        return false;
    }
    let entry = table.get_mut(member);
    if entry.unmonitored {
        return false;
    }
    entry.last_failure = Some(tokio::time::Instant::now());
    let Some(flip) = entry.fail_now(reason.clone()) else {
        return false;
    };
    let (pool, m) = model.member(member);
    warn!(
        pool = %pool.name, member = %m.address, from = %flip.from, to = %flip.to,
        "member {} of pool {} DOWN: {reason} (passive check, was {})",
        m.address, pool.name, flip.from
    );
    let event = Change {
        pool: pool.name.clone(),
        member: m.id(),
        from: flip.from.into(),
        to: flip.to.into(),
        reason: Some(reason),
        streak: 1,
        cause: Cause::Passive,
    };
    record(telemetry, table, member, event);
    true
}

/// Applies one result to every member of the target. Returns true when something an answer
/// depends on changed (a state, how soon a member could flip, which sets the TTL, or the weight
/// share it reports, which moves only by `weight_step`), and the
/// members whose own observation flipped. A member `governed` by the fleet's consensus only
/// logs its flip as an observation: the consensus decides its state.
fn apply(
    model: &Model,
    target: &Target,
    obs: &Observation,
    table: &mut HealthTable,
    telemetry: &HealthTelemetry,
    governed: &[bool],
) -> (bool, Vec<usize>) {
    let t = &target.thresholds;
    let mut changed = false;
    let mut flipped = Vec::new();
    for (k, &m) in target.members.iter().enumerate() {
        let entry = table.get_mut(m);
        let before = (
            entry.state,
            entry.effective(),
            entry.probes_until_flip(t),
            entry.share,
        );
        let flipped_now = entry.observe(obs, t);
        if !obs.ok {
            entry.last_failure = Some(tokio::time::Instant::now());
        }
        if let Some(flip) = flipped_now {
            flipped.push(m);
            let (pool, member) = model.member(m);
            start_ramp(entry, pool, flip.from, flip.to);
            let address = target.probed();
            let streak = match flip.to {
                _ if flip.from == HealthState::Unknown => 1,
                HealthState::Down => t.fall,
                _ => t.rise,
            };
            if governed.get(k).copied().unwrap_or(false) {
                info!(
                    pool = %pool.name, member = %member.address, probe = %address,
                    from = %flip.from, to = %flip.to,
                    "member {} of pool {}: this instance observes it {} ({}; the fleet's consensus decides)",
                    member.address,
                    pool.name,
                    flip.to.to_string().to_uppercase(),
                    obs.reason.as_deref().unwrap_or("probe passed")
                );
            } else {
                match flip.to {
                    HealthState::Down => warn!(
                        pool = %pool.name, member = %member.address, probe = %address,
                        from = %flip.from, to = %flip.to,
                        "member {} of pool {} DOWN: {} ({streak} consecutive failures, was {})",
                        member.address,
                        pool.name,
                        obs.reason.as_deref().unwrap_or("failed"),
                        flip.from
                    ),
                    _ => info!(
                        pool = %pool.name, member = %member.address, probe = %address,
                        from = %flip.from, to = %flip.to,
                        "member {} of pool {} UP ({streak} consecutive successes, was {})",
                        member.address,
                        pool.name,
                        flip.from
                    ),
                }
                let event = Change {
                    pool: pool.name.clone(),
                    member: member.id(),
                    from: flip.from.into(),
                    to: flip.to.into(),
                    reason: if obs.ok { None } else { obs.reason.clone() },
                    streak,
                    cause: Cause::Probe,
                };
                record(telemetry, table, m, event);
            }
        }
        let entry = table.get(m);
        changed |= before
            != (
                entry.state,
                entry.effective(),
                entry.probes_until_flip(t),
                entry.share,
            );
    }
    (changed, flipped)
}

/// Starts `pool`'s slow start on a member that came up from down, or for the first time
/// after a reload added it (not at start-up: everything comes up then).
fn start_ramp(
    entry: &mut crate::health::MemberHealth,
    pool: &crate::model::Pool,
    from: HealthState,
    to: HealthState,
) {
    if to != HealthState::Up {
        return;
    }
    if let Some(window) = pool.slow_start
        && (from == HealthState::Down || entry.added)
    {
        entry.ramp = Some(Ramp {
            since: tokio::time::Instant::now(),
            window,
        });
    }
    entry.added = false;
}

/// Records a change of member `index`: in the events ring, the transitions counter, and the
/// member's `since`.
fn record(telemetry: &HealthTelemetry, table: &mut HealthTable, index: usize, event: Change) {
    telemetry.metrics.transition(event.to);
    table.get_mut(index).since = Some(tokio::time::Instant::now());
    telemetry.events.push(event);
}
