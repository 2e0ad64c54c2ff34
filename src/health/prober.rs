//! Runs the probes: one task per distinct probe target (the same monitor on the same address is
//! probed once, however many pools list the member), spread over the interval, with bounded
//! concurrency, faster while a member is transitioning. Results go to one writer that applies
//! hysteresis, logs every flip, and publishes a new snapshot when an answer could change.
//! Nothing here runs on the DNS query path.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::overrides::{self, Action, AdminError, Selector};
use super::probe::{Probe, ProbeSpec};
use super::{HealthState, HealthTable, MemberHealth, Observation, Thresholds};
use crate::model::{Model, MonitorId};
use crate::state::SharedState;

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

/// An operator action on its way to the health writer.
#[derive(Debug)]
pub struct AdminCommand {
    /// Which members.
    pub selector: Selector,
    /// What to do.
    pub action: Action,
    /// Where the result goes.
    pub reply: oneshot::Sender<Result<Vec<AdminChange>, AdminError>>,
}

/// One member whose shown state an admin action changed (or confirmed).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AdminChange {
    /// Pool name.
    pub pool: String,
    /// Member address.
    pub member: String,
    /// Shown state before (`up`, `down`, `unknown`, `drained`, `forced-down`, `forced-up`).
    pub from: String,
    /// Shown state after.
    pub to: String,
}

/// A handle for operator actions; cheap to clone. Actions are applied by the one health
/// writer, in order with probe results, so neither can overwrite the other.
#[derive(Debug, Clone)]
pub struct HealthControl {
    tx: mpsc::Sender<AdminCommand>,
}

impl HealthControl {
    /// A handle and the receiver to pass to [`run`].
    pub fn new() -> (HealthControl, mpsc::Receiver<AdminCommand>) {
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
            .send(AdminCommand {
                selector,
                action,
                reply,
            })
            .await
            .map_err(|_| AdminError::Unavailable)?;
        rx.await.map_err(|_| AdminError::Unavailable)?
    }
}

/// The health table a model starts with: monitored members unknown, the rest up.
pub fn initial_table(model: &Model) -> HealthTable {
    HealthTable {
        members: model
            .members()
            .map(|(pool, _)| match pool.monitor {
                Some(_) => MemberHealth::unknown(),
                None => MemberHealth::unmonitored(),
            })
            .collect(),
    }
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

/// Probes every target of the current snapshot's model until `shutdown`, publishing health
/// changes into `state`, and applies operator actions from `commands`. `ready` becomes true
/// once every target has reported once.
pub async fn run<P: Probe>(
    probe: Arc<P>,
    state: Arc<SharedState>,
    mut commands: mpsc::Receiver<AdminCommand>,
    ready: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let snap = state.load();
    let model = snap.model.clone();
    let targets = plan(&model);
    let mut table = (*snap.health).clone();
    drop(snap);
    info!(
        "health: {} probe targets for {} members",
        targets.len(),
        model.member_count()
    );
    if targets.is_empty() {
        let _ = ready.send(true);
    }

    let (tx, mut rx) = mpsc::channel::<(usize, Observation)>(1024);
    let permits = Arc::new(Semaphore::new(model.health.max_concurrent_probes));
    let tracker = TaskTracker::new();
    for (i, target) in targets.iter().enumerate() {
        tracker.spawn(probe_loop(
            i,
            target.spec.clone(),
            target.thresholds,
            probe.clone(),
            permits.clone(),
            tx.clone(),
            shutdown.clone(),
        ));
    }
    drop(tx);

    let mut reported = vec![false; targets.len()];
    let mut missing = targets.len();
    let mut probing = !targets.is_empty();
    loop {
        let first = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(cmd) = commands.recv() => {
                let result = admin(&model, &mut table, &cmd.selector, cmd.action).await;
                if result.is_ok() {
                    state.publish_health(Arc::new(table.clone()));
                }
                let _ = cmd.reply.send(result);
                continue;
            }
            r = rx.recv(), if probing => match r {
                Some(r) => r,
                None => {
                    probing = false;
                    continue;
                }
            },
        };
        // Apply everything already waiting, then publish at most once.
        let mut changed = false;
        let mut next = Some(first);
        while let Some((i, obs)) = next {
            if !reported[i] {
                reported[i] = true;
                missing -= 1;
            }
            changed |= apply(&model, &targets[i], &obs, &mut table);
            next = rx.try_recv().ok();
        }
        if changed {
            let generation = state.publish_health(Arc::new(table.clone()));
            debug!(generation, "health published");
        }
        if missing == 0 && !*ready.borrow() {
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
        let entry = &mut next.members[i];
        entry.admin = action.apply(entry.admin);
    }
    let saved = overrides::collect(model, &next);
    let path = model.health.state_file.clone();
    tokio::task::spawn_blocking(move || overrides::save(&path, &saved))
        .await
        .map_err(|e| AdminError::Save(e.to_string()))?
        .map_err(AdminError::Save)?;
    let mut changes = Vec::new();
    for &i in &indices {
        let (pool, member) = model.members().nth(i).expect("resolved index in range");
        let change = AdminChange {
            pool: pool.name.clone(),
            member: member.address.to_string(),
            from: table.members[i].display_state(),
            to: next.members[i].display_state(),
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

/// Applies one result to every member of the target. Returns true when something an answer
/// depends on changed (a state, or how soon a member could flip, which sets the TTL).
fn apply(model: &Model, target: &Target, obs: &Observation, table: &mut HealthTable) -> bool {
    let t = &target.thresholds;
    let mut changed = false;
    for &m in &target.members {
        let entry = &mut table.members[m];
        let before = (entry.state, entry.probes_until_flip(t));
        if let Some(flip) = entry.observe(obs, t) {
            let (pool, member) = model.members().nth(m).expect("member index in range");
            let address = target.spec.target;
            match flip.to {
                HealthState::Down => warn!(
                    pool = %pool.name, member = %member.address, probe = %address,
                    from = %flip.from, to = %flip.to,
                    "member {} of pool {} DOWN: {} ({} consecutive failures, was {})",
                    member.address,
                    pool.name,
                    obs.reason.as_deref().unwrap_or("failed"),
                    if flip.from == HealthState::Unknown { 1 } else { t.fall },
                    flip.from
                ),
                _ => info!(
                    pool = %pool.name, member = %member.address, probe = %address,
                    from = %flip.from, to = %flip.to,
                    "member {} of pool {} UP ({} consecutive successes, was {})",
                    member.address,
                    pool.name,
                    if flip.from == HealthState::Unknown { 1 } else { t.rise },
                    flip.from
                ),
            }
        }
        changed |= before != (entry.state, entry.probes_until_flip(t));
    }
    changed
}

/// Probes one target forever: at once, then every `interval` (every `fast_interval` while
/// transitioning), the first repeat at a random point of the interval so targets spread out.
async fn probe_loop<P: Probe>(
    index: usize,
    spec: ProbeSpec,
    t: Thresholds,
    probe: Arc<P>,
    permits: Arc<Semaphore>,
    results: mpsc::Sender<(usize, Observation)>,
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
        let obs = Observation {
            ok: result.outcome.is_ok(),
            reason: result.outcome.err().map(|e| Arc::from(e.to_string())),
            latency: result.latency,
        };
        local.observe(&obs, &t);
        if results.send((index, obs)).await.is_err() {
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
    use crate::health::probe::{FakeProbe, ProbeError};
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
        let state = Arc::new(SharedState::new(model(dir.path())));
        let fake = FakeProbe::new();
        let (_control, commands) = HealthControl::new();
        let (ready_tx, mut ready) = watch::channel(false);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(
            Arc::new(fake.clone()),
            state.clone(),
            commands,
            ready_tx,
            shutdown.clone(),
        ));
        ready.wait_for(|r| *r).await.unwrap();
        // One probe per distinct target in the first round, shared ones included.
        assert_eq!(fake.calls(addr("192.0.2.2")), 1);

        let a = addr("192.0.2.1");
        let answer = || {
            let snap = state.load();
            let service = &snap.model.services[0];
            let mut rng = SmallRng::seed_from_u64(1);
            select::pick(&snap.model, &snap.health, service, Family::V4, &mut rng)
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

        shutdown.cancel();
        task.await.unwrap();
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
        assert_eq!(changes[0].to, "drained");
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
}
