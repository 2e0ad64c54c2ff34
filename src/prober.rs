//! Runs the probes: one task per distinct probe target (the same monitor on the same address is
//! probed once, however many pools list the member), spread over the interval, with bounded
//! concurrency, faster while a member is transitioning. Results go to one writer that applies
//! hysteresis, logs every flip, and publishes a new snapshot when an answer could change.
//! Nothing here runs on the DNS query path.

mod control;
pub mod metrics;
mod plan;
pub mod probe;
mod resolve;
mod writer;

pub use control::{AdminChange, Command, HealthControl, Inbox, Observed};
pub use plan::{Target, first_round_bound, plan};
pub use writer::{Writer, carry_over};

use std::sync::Arc;

use rand::Rng;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info};

use crate::health::{MemberHealth, Observation};
use crate::model::{ProbeSpec, Thresholds};
use crate::state::SharedState;
use metrics::{HealthTelemetry, ProbeMetrics};
use probe::Probe;

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
    // One resolver per plan (a reload may change `[health] resolver`), only when needed.
    let resolver = targets
        .iter()
        .any(|t| t.resolve.is_some())
        .then(|| Arc::new(resolve::Resolver::new(&model.health)));
    for (i, target) in targets.iter().enumerate() {
        let hostname = target
            .resolve
            .clone()
            .zip(resolver.clone())
            .map(|(name, r)| resolve::Hostname::new(name, r));
        tracker.spawn(probe_loop(
            (epoch, i),
            (target.spec.clone(), hostname),
            target.thresholds,
            probe.clone(),
            permits.clone(),
            (results.clone(), writer.telemetry().metrics.clone()),
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
/// changes into `state`, and applies operator actions, reloads and passive failures from
/// `inbox`. Every
/// change of a member's state goes to `telemetry` (events ring and metrics). `ready` becomes
/// true once every target of the first plan has reported once.
pub async fn run<P: Probe>(
    probe: Arc<P>,
    state: Arc<SharedState>,
    mut inbox: Inbox,
    telemetry: HealthTelemetry,
    ready: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let mut writer = Writer::new(state, telemetry);
    let (mut peers, mut overrides) = match inbox.fleet.take() {
        Some(link) => {
            let receivers = (Some(link.peers.clone()), Some(link.overrides.clone()));
            writer.attach_fleet(link);
            writer.publish();
            receivers
        }
        None => (None, None),
    };
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
            Some(failure) = inbox.passive.recv() => {
                writer.passive(&failure.model, failure.member, failure.reason);
                continue;
            }
            () = changed(&mut peers) => {
                if writer.reconsider_all() {
                    writer.publish();
                }
                continue;
            }
            () = changed(&mut overrides) => {
                if writer.apply_fleet_overrides() {
                    writer.publish();
                }
                continue;
            }
            Some(cmd) = inbox.commands.recv() => {
                match cmd {
                    Command::Admin { selector, action, reply } => {
                        let _ = reply.send(writer.admin(&selector, action).await);
                    }
                    Command::Observe { reply } => {
                        let _ = reply.send(writer.observe());
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

/// Waits for the next change of a fleet view; forever without a fleet or once it is gone.
async fn changed<T>(rx: &mut Option<watch::Receiver<T>>) {
    if let Some(r) = rx.as_mut()
        && r.changed().await.is_ok()
    {
        return;
    }
    *rx = None;
    std::future::pending::<()>().await;
}

/// Probes one target forever: at once, then every `interval` (every `fast_interval` while
/// transitioning), the first repeat at a random point of the interval so targets spread out.
async fn probe_loop<P: Probe>(
    index: (u64, usize),
    (spec, mut hostname): (ProbeSpec, Option<resolve::Hostname>),
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
                Some(match hostname.as_mut() {
                    Some(h) => h.probe(&probe, &spec).await,
                    None => probe.probe(&spec).await,
                })
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
            share: result.weight,
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
    use std::net::SocketAddr;
    use std::time::Duration;

    use crate::health::MemberState;
    use crate::health::overrides::{self, Action, AdminError, Selector};
    use crate::model::Model;
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
            let (control, inbox) = HealthControl::new();
            let (ready_tx, mut ready) = watch::channel(false);
            let shutdown = CancellationToken::new();
            let task = tokio::spawn(run(
                Arc::new(fake.clone()),
                state.clone(),
                inbox,
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
                (&snap.health, tokio::time::Instant::now()),
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
        let (control, inbox) = HealthControl::new();
        let (ready_tx, _ready) = watch::channel(false);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(
            Arc::new(FakeProbe::new()),
            state.clone(),
            inbox,
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
