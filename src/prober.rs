//! Runs the probes: one task per distinct probe target (the same monitor on the same address is
//! probed once, however many pools list the member), spread over the interval, with bounded
//! concurrency, faster while a member is transitioning. Results go to one writer that applies
//! hysteresis, logs every flip, and publishes a new snapshot when an answer could change.
//! Nothing here runs on the DNS query path.

pub mod metrics;
pub mod probe;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::health::events::{Cause, Change};
use crate::health::overrides::{self, Action, AdminError, Selector};
use crate::health::{HealthState, HealthTable, MemberHealth, MemberState, Observation};
use crate::model::{Model, MonitorId, ProbeSpec, Thresholds};
use crate::state::{SharedState, Snapshot};
use metrics::{HealthTelemetry, ProbeMetrics};
use probe::Probe;

/// One distinct thing to probe, and the members whose health it decides.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// What to probe.
    pub spec: ProbeSpec,
    /// Hysteresis and intervals of its monitor.
    pub thresholds: Thresholds,
    /// Indices of the members it decides.
    pub members: Vec<usize>,
}

/// The distinct probe targets of a model: members sharing monitor and probe address share one.
pub fn plan(model: &Model) -> Vec<Target> {
    let mut targets: Vec<Target> = Vec::new();
    let mut by_key: HashMap<(MonitorId, SocketAddr), usize> = HashMap::new();
    for pool in &model.pools {
        let (Some(id), Some(monitor)) = (pool.monitor, model.monitor_of(pool)) else {
            continue;
        };
        for member in &pool.members {
            let Some(addr) = monitor.target(member) else {
                continue; // validation guarantees a port; nothing to probe otherwise
            };
            let i = *by_key.entry((id, addr)).or_insert_with(|| {
                targets.push(Target {
                    spec: ProbeSpec {
                        kind: monitor.kind.clone(),
                        target: addr,
                        timeout: monitor.timeout,
                    },
                    thresholds: monitor.thresholds,
                    members: Vec::new(),
                });
                targets.len() - 1
            });
            targets[i].members.push(member.index);
        }
    }
    targets
}

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
    /// A failure seen outside the probes (a director's connect refused or timed out): marks
    /// the member down at once, like HAProxy's `observe layer4`. Ignored when `model` is no
    /// longer the running one (member indices may have moved) and for members without a
    /// monitor (nothing would bring them back).
    Passive {
        /// The model the member index belongs to.
        model: Arc<Model>,
        /// The member's index.
        member: usize,
        /// Why, for the log and the status page (`connect refused (director)`).
        reason: Arc<str>,
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
}

impl HealthControl {
    /// A handle and the receiver to pass to [`run`].
    pub fn new() -> (HealthControl, mpsc::Receiver<Command>) {
        let (tx, rx) = mpsc::channel(64);
        (HealthControl { tx }, rx)
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

    /// Reports a passive failure of `member` (see [`Command::Passive`]) without waiting: when
    /// the writer is busy and its queue full, the report is dropped (the probes still decide).
    pub fn passive_failure(&self, model: Arc<Model>, member: usize, reason: Arc<str>) {
        let sent = self.tx.try_send(Command::Passive {
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
        }
    }
    table
}

/// What identifies a member across reloads: its pool, address and port.
type MemberKey<'a> = (&'a str, std::net::IpAddr, Option<u16>);

fn member_key<'a>(pool: &'a crate::model::Pool, m: &crate::model::Member) -> MemberKey<'a> {
    (pool.name.as_str(), m.address.0, m.port)
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

/// How long the first probe round can take at most: every probe is bounded by its timeout and
/// at most `max_concurrent_probes` run at once.
pub fn first_round_bound(model: &Model, targets: &[Target]) -> Duration {
    let longest = targets
        .iter()
        .map(|t| t.spec.timeout)
        .max()
        .unwrap_or_default();
    let rounds = targets
        .len()
        .div_ceil(model.health.max_concurrent_probes.max(1));
    longest * rounds as u32 + Duration::from_millis(500)
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
}

impl Writer {
    /// A writer for the snapshot in force in `state`, with that model's probe plan.
    pub fn new(state: Arc<SharedState>, telemetry: HealthTelemetry) -> Writer {
        let snap = state.load();
        let model = snap.model.clone();
        let table = (*snap.health).clone();
        drop(snap);
        let targets = plan(&model);
        Writer {
            state,
            telemetry,
            model,
            table,
            targets,
        }
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
        apply(
            &self.model,
            &self.targets[target],
            obs,
            &mut self.table,
            &self.telemetry,
        )
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

    /// Switches to `next` (see [`carry_over`]), records what the reload changed, plans its
    /// probes and publishes it; returns the generation of the snapshot that carries it.
    pub fn reload(&mut self, next: Model) -> u64 {
        let next = Arc::new(next);
        let prev_table = std::mem::take(&mut self.table);
        self.table = carry_over(&self.model, &prev_table, &next);
        let changes = reload_transitions(&self.model, &prev_table, &next, &self.table);
        self.model = next;
        self.targets = plan(&self.model);
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

/// The probe tasks of one plan. Results carry the plan's epoch so results of a replaced plan
/// are ignored.
struct Probing {
    epoch: u64,
    reported: Vec<bool>,
    missing: usize,
    stop: CancellationToken,
}

fn start_probing<P: Probe>(
    epoch: u64,
    writer: &Writer,
    probe: &Arc<P>,
    results: &mpsc::Sender<(u64, usize, Observation)>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> Probing {
    let (model, targets) = (writer.model(), writer.targets());
    info!(
        "health: {} probe targets for {} members",
        targets.len(),
        model.member_count()
    );
    let stop = shutdown.child_token();
    let permits = Arc::new(Semaphore::new(model.health.max_concurrent_probes));
    for (i, target) in targets.iter().enumerate() {
        tracker.spawn(probe_loop(
            (epoch, i),
            target.spec.clone(),
            target.thresholds,
            probe.clone(),
            permits.clone(),
            (results.clone(), writer.telemetry.metrics.clone()),
            stop.clone(),
        ));
    }
    Probing {
        epoch,
        reported: vec![false; targets.len()],
        missing: targets.len(),
        stop,
    }
}

/// Probes every target of the current snapshot's model until `shutdown`, publishing health
/// changes into `state`, and applies operator actions and reloads from `commands`. Every
/// change of a member's state goes to `telemetry` (events ring and metrics). `ready` becomes
/// true once every target of the first plan has reported once.
pub async fn run<P: Probe>(
    probe: Arc<P>,
    state: Arc<SharedState>,
    mut commands: mpsc::Receiver<Command>,
    telemetry: HealthTelemetry,
    ready: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let mut writer = Writer::new(state, telemetry);
    let (tx, mut rx) = mpsc::channel::<(u64, usize, Observation)>(1024);
    let tracker = TaskTracker::new();
    let mut probing = start_probing(1, &writer, &probe, &tx, &tracker, &shutdown);
    if probing.missing == 0 {
        let _ = ready.send(true);
    }
    loop {
        let first = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(cmd) = commands.recv() => {
                match cmd {
                    Command::Admin { selector, action, reply } => {
                        let _ = reply.send(writer.admin(&selector, action).await);
                    }
                    Command::Observe { reply } => {
                        let _ = reply.send(writer.observe());
                    }
                    Command::Passive { model: seen, member, reason } => {
                        writer.passive(&seen, member, reason);
                    }
                    Command::Reload { model: next, reply } => {
                        let generation = writer.reload(*next);
                        probing.stop.cancel();
                        probing = start_probing(
                            probing.epoch + 1, &writer, &probe, &tx, &tracker, &shutdown,
                        );
                        info!(generation, "health: now probing the reloaded config");
                        let _ = reply.send(generation);
                    }
                }
                continue;
            }
            Some(r) = rx.recv() => r,
        };
        // Apply everything already waiting, then publish at most once.
        let mut changed = false;
        let mut next = Some(first);
        while let Some((epoch, i, obs)) = next {
            if epoch == probing.epoch {
                if !probing.reported[i] {
                    probing.reported[i] = true;
                    probing.missing -= 1;
                }
                changed |= writer.apply(i, &obs);
            }
            next = rx.try_recv().ok();
        }
        if changed {
            let generation = writer.publish();
            debug!(generation, "health published");
        }
        if probing.missing == 0 && !*ready.borrow() {
            info!("health: first probe round complete");
            let _ = ready.send(true);
        }
    }
    tracker.close();
    tracker.wait().await;
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
/// depends on changed (a state, or how soon a member could flip, which sets the TTL).
fn apply(
    model: &Model,
    target: &Target,
    obs: &Observation,
    table: &mut HealthTable,
    telemetry: &HealthTelemetry,
) -> bool {
    let t = &target.thresholds;
    let mut changed = false;
    for &m in &target.members {
        let entry = table.get_mut(m);
        let before = (entry.state, entry.probes_until_flip(t));
        if let Some(flip) = entry.observe(obs, t) {
            let (pool, member) = model.member(m);
            let address = target.spec.target;
            let streak = match flip.to {
                _ if flip.from == HealthState::Unknown => 1,
                HealthState::Down => t.fall,
                _ => t.rise,
            };
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
        let entry = table.get(m);
        changed |= before != (entry.state, entry.probes_until_flip(t));
    }
    changed
}

/// Records a change of member `index`: in the events ring, the transitions counter, and the
/// member's `since`.
fn record(telemetry: &HealthTelemetry, table: &mut HealthTable, index: usize, event: Change) {
    telemetry.metrics.transition(event.to);
    table.get_mut(index).since = Some(tokio::time::Instant::now());
    telemetry.events.push(event);
}

/// Probes one target forever: at once, then every `interval` (every `fast_interval` while
/// transitioning), the first repeat at a random point of the interval so targets spread out.
async fn probe_loop<P: Probe>(
    index: (u64, usize),
    spec: ProbeSpec,
    t: Thresholds,
    probe: Arc<P>,
    permits: Arc<Semaphore>,
    (results, metrics): (mpsc::Sender<(u64, usize, Observation)>, Arc<ProbeMetrics>),
    shutdown: CancellationToken,
) {
    // A private copy of the hysteresis, only to choose the next interval.
    let mut local = MemberHealth::unknown();
    let mut first = true;
    loop {
        let result = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            r = async {
                let _permit = permits.acquire().await.ok()?;
                Some(probe.probe(&spec).await)
            } => match r {
                Some(r) => r,
                None => return,
            },
        };
        metrics.probe(&spec.kind, result.latency, &result.outcome);
        let obs = Observation {
            ok: result.outcome.is_ok(),
            reason: result.outcome.err().map(|e| Arc::from(e.to_string())),
            latency: result.latency,
        };
        local.observe(&obs, &t);
        if results.send((index.0, index.1, obs)).await.is_err() {
            return;
        }
        let mut wait = if local.probes_until_flip(&t).is_some() {
            t.fast_interval
        } else {
            t.interval
        };
        if first {
            first = false;
            wait = wait.mul_f64(rand::rng().random_range(0.5..1.0));
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prober::probe::{FakeProbe, ProbeError};
    use crate::select::{self, Family, Outcome};
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    const CONFIG: &str = r#"
[dns]
listen = ["127.0.0.1:0"]
zones = "zones"

[monitors.tcp]
type = "tcp"
port = 9
interval = "10s"
fast_interval = "5s"
timeout = "1s"
rise = 2
fall = 3

[pools.a]
monitor = "tcp"
members = [{ address = "192.0.2.1" }, { address = "192.0.2.2" }]

[pools.b]
monitor = "tcp"
members = [{ address = "192.0.2.2" }, { address = "192.0.2.3" }]

[services."www.example.test."]
pools = ["a"]
ttl = 60
min_ttl = 2
"#;

    fn model(dir: &std::path::Path) -> Model {
        std::fs::create_dir_all(dir.join("zones")).unwrap();
        std::fs::write(
            dir.join("zones/example.test.zone"),
            "$TTL 60\n@ SOA ns hostmaster 1 2 3 4 5\n@ NS ns\nns A 192.0.2.53\n",
        )
        .unwrap();
        Model::from_text(&dir.join("m.toml"), CONFIG).unwrap()
    }

    fn addr(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), 9)
    }

    /// A running prober over `model(dir)` with `fake` probes, after its first round.
    struct Running {
        state: Arc<SharedState>,
        control: HealthControl,
        shutdown: CancellationToken,
        task: tokio::task::JoinHandle<()>,
    }

    impl Running {
        async fn start(dir: &std::path::Path, fake: &FakeProbe) -> Running {
            let state = Arc::new(SharedState::new(model(dir)));
            let (control, commands) = HealthControl::new();
            let (ready_tx, mut ready) = watch::channel(false);
            let shutdown = CancellationToken::new();
            let task = tokio::spawn(run(
                Arc::new(fake.clone()),
                state.clone(),
                commands,
                HealthTelemetry::default(),
                ready_tx,
                shutdown.clone(),
            ));
            ready.wait_for(|r| *r).await.unwrap();
            Running {
                state,
                control,
                shutdown,
                task,
            }
        }

        async fn stop(self) {
            self.shutdown.cancel();
            self.task.await.unwrap();
        }
    }

    /// Lets every runnable task (probe loops, the writer) run; time advances only when all
    /// are waiting on timers, because the clock is paused.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    async fn until_calls(fake: &FakeProbe, target: SocketAddr, n: u64) {
        for _ in 0..100_000 {
            if fake.calls(target) >= n {
                settle().await;
                return;
            }
            settle().await;
        }
        panic!(
            "{target} was probed {} times, never {n}",
            fake.calls(target)
        );
    }

    #[test]
    fn identical_probes_are_planned_once() {
        let dir = tempfile::tempdir().unwrap();
        let targets = plan(&model(dir.path()));
        assert_eq!(targets.len(), 3, "192.0.2.2:9 is shared by pools a and b");
        let shared = targets
            .iter()
            .find(|t| t.spec.target == addr("192.0.2.2"))
            .unwrap();
        assert_eq!(shared.members.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn flips_after_exactly_fall_failures_and_rise_successes_with_ttl_lowered_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeProbe::new();
        let running = Running::start(dir.path(), &fake).await;
        let state = running.state.clone();
        // One probe per distinct target in the first round, shared ones included.
        assert_eq!(fake.calls(addr("192.0.2.2")), 1);

        let a = addr("192.0.2.1");
        let answer = || {
            let snap = state.load();
            let service = &snap.model.services[0];
            let mut rng = SmallRng::seed_from_u64(1);
            let client = select::Client::from_addr(&snap.model, "192.0.2.200".parse().unwrap());
            select::pick(
                &snap.model,
                &snap.health,
                service,
                Family::V4,
                &client,
                &mut rng,
            )
        };
        let members = |p: &select::Pick| match &p.outcome {
            Outcome::Members { members, .. } => members.len(),
            other => panic!("{other:?}"),
        };
        assert_eq!(members(&answer()), 2);
        assert_eq!(answer().ttl, 60);

        fake.set(a, Err(ProbeError::ConnectRefused));
        // Failures 1 and 2: still answered, TTL = fast_interval × probes left (5 s × 2, × 1).
        until_calls(&fake, a, 2).await;
        assert_eq!((members(&answer()), answer().ttl), (2, 10));
        until_calls(&fake, a, 3).await;
        assert_eq!((members(&answer()), answer().ttl), (2, 5));
        // Failure 3 = fall: gone from the answer.
        until_calls(&fake, a, 4).await;
        assert_eq!(members(&answer()), 1);
        let down = state.load().health.get(0).clone();
        assert_eq!(down.state, crate::health::HealthState::Down);
        assert_eq!(down.last_reason.as_deref(), Some("connect refused"));

        fake.set(a, Ok(()));
        until_calls(&fake, a, 5).await;
        assert_eq!(members(&answer()), 1, "one success is not rise = 2");
        until_calls(&fake, a, 6).await;
        assert_eq!(members(&answer()), 2);
        assert_eq!(answer().ttl, 60, "steady again: the full TTL");
        running.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn admin_actions_are_saved_and_published() {
        let dir = tempfile::tempdir().unwrap();
        let state = Arc::new(SharedState::new(model(dir.path())));
        let (control, commands) = HealthControl::new();
        let (ready_tx, _ready) = watch::channel(false);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(
            Arc::new(FakeProbe::new()),
            state.clone(),
            commands,
            HealthTelemetry::default(),
            ready_tx,
            shutdown.clone(),
        ));
        let sel = |member: Option<&str>| Selector {
            pool: "b".into(),
            member: member.map(String::from),
        };
        let changes = control
            .apply(sel(Some("192.0.2.3")), Action::Drain)
            .await
            .unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].to, MemberState::Drained);
        assert_eq!(
            state.load().health.get(3).admin,
            Some(crate::health::Override::Drain)
        );
        let saved = overrides::load(&dir.path().join("meridian.state")).unwrap();
        assert_eq!(saved.overrides.len(), 1);
        assert_eq!(saved.overrides[0].member, "192.0.2.3");

        assert_eq!(
            control.apply(sel(Some("192.0.2.99")), Action::Drain).await,
            Err(AdminError::NoMember {
                pool: "b".into(),
                member: "192.0.2.99".into()
            })
        );
        let all = control.apply(sel(None), Action::Clear).await.unwrap();
        assert_eq!(all.len(), 2);
        assert!(
            overrides::load(&dir.path().join("meridian.state"))
                .unwrap()
                .overrides
                .is_empty()
        );

        shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn reload_keeps_health_of_members_whose_probe_did_not_change() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeProbe::new();
        fake.set(addr("192.0.2.1"), Err(ProbeError::ConnectRefused));
        let running = Running::start(dir.path(), &fake).await;
        let (state, control) = (running.state.clone(), running.control.clone());
        control
            .apply(
                Selector {
                    pool: "b".into(),
                    member: Some("192.0.2.3".into()),
                },
                Action::Drain,
            )
            .await
            .unwrap();
        let down = |s: &SharedState, i: usize| s.load().health.get(i).state;
        assert_eq!(down(&state, 0), crate::health::HealthState::Down);

        // New config: pool a unchanged but for a new member; pool b probed differently.
        let text = CONFIG
            .replace(
                r#"members = [{ address = "192.0.2.1" }, { address = "192.0.2.2" }]"#,
                r#"members = [{ address = "192.0.2.1" }, { address = "192.0.2.2" }, { address = "192.0.2.9" }]"#,
            )
            .replace(
                "[pools.b]\nmonitor = \"tcp\"",
                "[monitors.other]\ntype = \"tcp\"\nport = 10\n\n[pools.b]\nmonitor = \"other\"",
            );
        let next = Model::from_text(&dir.path().join("m.toml"), &text).unwrap();
        let before = state.load();
        let carried = carry_over(&before.model, &before.health, &next);
        let h = |i: usize| carried.get(i).clone();
        assert_eq!(h(0).state, crate::health::HealthState::Down, "kept");
        assert_eq!(h(1).state, crate::health::HealthState::Up, "kept");
        assert_eq!(
            h(2).state,
            crate::health::HealthState::Unknown,
            "new member"
        );
        assert_eq!(h(4).admin, None, "pool b's probe changed: starts afresh");
        assert_eq!(
            before.health.get(3).admin,
            Some(crate::health::Override::Drain)
        );
        drop(before);

        let generation = control.reload(next).await.unwrap();
        let snap = state.load();
        assert!(snap.generation >= generation);
        assert_eq!(snap.model.member_count(), 5);
        assert_eq!(snap.health.get(0).state, crate::health::HealthState::Down);
        drop(snap);
        // The new plan is probed: the new member reports and comes up.
        let new = addr("192.0.2.9");
        until_calls(&fake, new, 1).await;
        assert_eq!(down(&state, 2), crate::health::HealthState::Up);
        running.stop().await;
    }
}
