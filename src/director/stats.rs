//! Live state of the directors, kept across config reloads: per director and per member
//! connection counts (the limits and `leastconn`/`random2` read them), byte and error counters
//! as atomics, scheduler state per pool, and the signal that cuts a member's connections.
//! [`DirectorStats::snapshot`] is the read side for the status API and metrics.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::schedule::PoolState;
use crate::model::Model;
use crate::model::{Director, OnDown};

/// How long a member whose connect just failed is skipped by the director that saw it, while
/// the passive failure reaches the health table (or, for a member without a monitor, which
/// passive failures never mark down, before it is tried again).
pub const FAILED_CONNECT_HOLD: Duration = Duration::from_secs(2);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent across a panic elsewhere (plain counters and maps).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counters of one director, as seen at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectorConnStats {
    /// Its listen addresses, as configured.
    pub listen: Vec<SocketAddr>,
    /// The service it fronts (its DNS name).
    pub service: String,
    /// Client connections open now (forwarding, connecting or queued).
    pub active: u64,
    /// Client connections accepted, refused ones included.
    pub accepted: u64,
    /// Clients closed at once by `allow`/`deny`.
    pub refused_acl: u64,
    /// Clients closed because a connection limit stayed reached for `queue_timeout`.
    pub refused_limit: u64,
    /// Clients closed because no member was usable.
    pub refused_no_member: u64,
    /// Clients closed because every member tried failed to connect.
    pub refused_connect: u64,
    /// Its members, by pool and backend address.
    pub members: Vec<MemberConnStats>,
}

/// Counters of one member behind one director, as seen at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberConnStats {
    /// The pool it belongs to.
    pub pool: String,
    /// Where the director connects: the member's address and backend port.
    pub backend: SocketAddr,
    /// Connections open to it now (including one being connected).
    pub active: u64,
    /// Connections established to it in all.
    pub total: u64,
    /// Connects to it that failed (refused, timed out, unreachable).
    pub failed_connects: u64,
    /// Bytes forwarded from clients to it.
    pub bytes_to_backend: u64,
    /// Bytes forwarded from it to clients.
    pub bytes_to_client: u64,
    /// The moving average of its time to first byte as this director saw it (from the start
    /// of the connect to the first byte from the backend); `None` before the first.
    pub first_byte: Option<std::time::Duration>,
}

/// A time to first byte older than this no longer counts for the `fastest` scheduler: the
/// member is in band again and gets tried, so it acquires a fresh sample.
pub(crate) const RESAMPLE_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

/// The origin of the sample times of [`MemberRuntime::record_first_byte`].
static SAMPLE_ORIGIN: std::sync::LazyLock<std::time::Instant> =
    std::sync::LazyLock::new(std::time::Instant::now);

/// Milliseconds since [`SAMPLE_ORIGIN`].
fn since_origin() -> u64 {
    SAMPLE_ORIGIN.elapsed().as_millis() as u64
}

/// One member behind one director: counters, and the token its connections watch.
#[derive(Debug)]
pub(crate) struct MemberRuntime {
    pub(crate) pool: String,
    pub(crate) backend: SocketAddr,
    pub(crate) active: AtomicU64,
    pub(crate) total: AtomicU64,
    pub(crate) failed_connects: AtomicU64,
    pub(crate) to_backend: AtomicU64,
    pub(crate) to_client: AtomicU64,
    /// When a connect last failed, in milliseconds since the registry started, plus one
    /// (0: never).
    failed_at: AtomicU64,
    /// The moving average of the time to first byte, in nanoseconds (0: no sample yet).
    first_byte: AtomicU64,
    /// When the last time to first byte was taken, in milliseconds since [`SAMPLE_ORIGIN`].
    first_byte_at: AtomicU64,
    cut: Mutex<CancellationToken>,
    watch: Mutex<Watch>,
}

/// What the supervisor remembers about a member between snapshots.
#[derive(Debug, Default)]
struct Watch {
    down: bool,
    drain_timer: Option<CancellationToken>,
}

impl MemberRuntime {
    /// Takes a connection slot unless `limit` connections are open.
    pub(crate) fn try_reserve(&self, limit: Option<u32>) -> bool {
        let limit = limit.map_or(u64::MAX, u64::from);
        self.active
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    /// The moving average of the time to first byte ([`crate::health::ewma`]), if any.
    pub(crate) fn first_byte(&self) -> Option<std::time::Duration> {
        match self.first_byte.load(Ordering::Relaxed) {
            0 => None,
            n => Some(std::time::Duration::from_nanos(n)),
        }
    }

    /// The average as the `fastest` scheduler sees it: none when the last sample is older
    /// than [`RESAMPLE_AFTER`], so a member once found slow is tried again (and, if it
    /// recovered, wins its share back) instead of being shunned forever.
    pub(crate) fn fresh_first_byte(&self) -> Option<std::time::Duration> {
        let at = self.first_byte_at.load(Ordering::Relaxed);
        let age = since_origin().saturating_sub(at);
        self.first_byte()
            .filter(|_| age < RESAMPLE_AFTER.as_millis() as u64)
    }

    /// Folds one time to first byte into the average (lock-free; concurrent samples are
    /// each applied once).
    pub(crate) fn record_first_byte(&self, sample: std::time::Duration) {
        let _ = self
            .first_byte
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                let prev = (n != 0).then(|| std::time::Duration::from_nanos(n));
                let next = crate::health::ewma(prev, sample).as_nanos();
                Some(u64::try_from(next).unwrap_or(u64::MAX).max(1))
            });
        self.first_byte_at.store(since_origin(), Ordering::Relaxed);
    }

    /// The token that is cancelled when this member's connections are to be closed.
    pub(crate) fn cut_token(&self) -> CancellationToken {
        lock(&self.cut).clone()
    }

    /// Closes every connection open to this member now; later ones get a fresh token.
    fn cut(&self, force: &CancellationToken) {
        let old = std::mem::replace(&mut *lock(&self.cut), force.child_token());
        old.cancel();
    }
}

/// The members and pool states of one director for one model, indexed like the model's pools
/// and members, so the connection path finds them without hashing.
#[derive(Debug)]
pub(crate) struct Table {
    model: Arc<Model>,
    /// Per pool, by `PoolId`.
    pub(crate) pools: Vec<PoolEntry>,
}

/// One pool behind one director.
#[derive(Debug)]
pub(crate) struct PoolEntry {
    /// Its scheduler state (kept across reloads, by pool name).
    pub(crate) state: Arc<Mutex<PoolState>>,
    /// Its members' runtimes, by position in the pool (empty for pools the service never
    /// uses).
    pub(crate) members: Vec<Arc<MemberRuntime>>,
}

/// One director's live state.
#[derive(Debug)]
pub(crate) struct DirectorRuntime {
    listen: Vec<SocketAddr>,
    service: Mutex<String>,
    pub(crate) active: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) refused_acl: AtomicU64,
    pub(crate) refused_limit: AtomicU64,
    pub(crate) refused_no_member: AtomicU64,
    pub(crate) refused_connect: AtomicU64,
    /// Signalled when a director or member slot frees up while someone waits for one.
    freed: Notify,
    waiting: AtomicUsize,
    members: Mutex<HashMap<(String, SocketAddr), Arc<MemberRuntime>>>,
    pool_states: Mutex<HashMap<String, Arc<Mutex<PoolState>>>>,
    table: ArcSwapOption<Table>,
    /// The registry's clock origin and its shutdown token (see [`Registry`]).
    started: Instant,
    force: CancellationToken,
}

/// The outcome of one attempt to get what a queued connection waits for.
pub(crate) enum Attempt<T> {
    /// Got it.
    Ready(T),
    /// Waiting cannot help: give up now.
    Stop,
    /// Wait for a slot to free up, then try again.
    Wait,
}

impl DirectorRuntime {
    /// Takes a director slot unless `limit` connections are open.
    pub(crate) fn try_enter(&self, limit: u32) -> bool {
        self.active
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < u64::from(limit)).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives a director slot back.
    pub(crate) fn leave(&self) {
        self.active.fetch_sub(1, Ordering::SeqCst);
        self.wake_waiters();
    }

    /// Gives a member slot back.
    pub(crate) fn release(&self, member: &MemberRuntime) {
        member.active.fetch_sub(1, Ordering::SeqCst);
        self.wake_waiters();
    }

    fn wake_waiters(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.freed.notify_waiters();
        }
    }

    /// Calls `attempt` until it is ready or stops, waiting for a freed slot between calls,
    /// until `deadline` or `stop`. `None` when it stopped or time ran out.
    pub(crate) async fn queue<T>(
        &self,
        deadline: Instant,
        stop: &CancellationToken,
        mut attempt: impl FnMut() -> Attempt<T>,
    ) -> Option<T> {
        // The usual case, without registering as a waiter.
        match attempt() {
            Attempt::Ready(t) => return Some(t),
            Attempt::Stop => return None,
            Attempt::Wait => {}
        }
        loop {
            let notified = self.freed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let outcome = attempt();
            let outcome = match outcome {
                Attempt::Ready(t) => Some(Some(t)),
                Attempt::Stop => Some(None),
                Attempt::Wait if Instant::now() >= deadline => Some(None),
                Attempt::Wait => None,
            };
            if let Some(result) = outcome {
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                return result;
            }
            let woken = tokio::select! {
                _ = &mut notified => true,
                _ = tokio::time::sleep_until(deadline) => true,
                _ = stop.cancelled() => false,
            };
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            if !woken {
                return None;
            }
        }
    }

    /// The members and pool states for `model` (built once per model: after a reload the
    /// first connection rebuilds it, keeping the runtime of members that stayed).
    pub(crate) fn table(&self, model: &Arc<Model>, director: &Director) -> Arc<Table> {
        if let Some(t) = self.table.load_full()
            && Arc::ptr_eq(&t.model, model)
        {
            return t;
        }
        let mut members = lock(&self.members);
        let mut states = lock(&self.pool_states);
        // Another connection may have built it while this one waited for the locks.
        if let Some(t) = self.table.load_full()
            && Arc::ptr_eq(&t.model, model)
        {
            return t;
        }
        let service = &model.services[director.service.0 as usize];
        *lock(&self.service) = service.name.to_string();
        let mut used = vec![false; model.pools.len()];
        for p in &service.pools {
            used[p.0 as usize] = true;
        }
        if let crate::model::WhenAllDown::Fallback(p) = service.when_all_down {
            used[p.0 as usize] = true;
        }
        let mut keep: HashMap<(String, SocketAddr), Arc<MemberRuntime>> = HashMap::new();
        let mut pools = Vec::with_capacity(model.pools.len());
        for (pool, used) in model.pools.iter().zip(used) {
            let state = states.entry(pool.name.clone()).or_default().clone();
            let mut runtimes = Vec::new();
            if used {
                for m in &pool.members {
                    let key = (pool.name.clone(), director.backend(m));
                    let rt = members
                        .get(&key)
                        .cloned()
                        .unwrap_or_else(|| Arc::new(self.new_member(&key.0, key.1)));
                    keep.insert(key, rt.clone());
                    runtimes.push(rt);
                }
            }
            pools.push(PoolEntry {
                state,
                members: runtimes,
            });
        }
        // Members gone from the config are forgotten once their last connection ended.
        for (key, rt) in members.drain() {
            if !keep.contains_key(&key) && rt.active.load(Ordering::SeqCst) > 0 {
                keep.insert(key, rt);
            }
        }
        *members = keep;
        states.retain(|name, _| model.pools.iter().any(|p| &p.name == name));
        let table = Arc::new(Table {
            model: model.clone(),
            pools,
        });
        self.table.store(Some(table.clone()));
        table
    }

    /// Notes a failed connect to `member`; true when it is the first within
    /// [`FAILED_CONNECT_HOLD`] (so the failure is reported to the health view once).
    pub(crate) fn connect_failed(&self, member: &MemberRuntime) -> bool {
        member.failed_connects.fetch_add(1, Ordering::Relaxed);
        let now = self.millis() + 1;
        let prev = member.failed_at.swap(now, Ordering::SeqCst);
        prev == 0 || now.saturating_sub(prev) >= FAILED_CONNECT_HOLD.as_millis() as u64
    }

    /// True while `member` is held back after a failed connect.
    pub(crate) fn held_back(&self, member: &MemberRuntime) -> bool {
        let at = member.failed_at.load(Ordering::Relaxed);
        at != 0 && (self.millis() + 1).saturating_sub(at) < FAILED_CONNECT_HOLD.as_millis() as u64
    }

    /// Applies what a new snapshot says about a member: cuts its connections when it went down
    /// and `on_down = "close"`, starts (or stops) the drain timer.
    pub(crate) fn supervise(
        self: &Arc<Self>,
        member: &Arc<MemberRuntime>,
        drained: bool,
        down: bool,
        director: &Director,
        tracker: &tokio_util::task::TaskTracker,
    ) {
        let force = &self.force;
        let mut w = lock(&member.watch);
        if down && !w.down && director.on_down == OnDown::Close {
            tracing::info!(
                pool = %member.pool, backend = %member.backend,
                "director: member {} of pool {} is down, closing its {} connections (on_down = close)",
                member.backend, member.pool, member.active.load(Ordering::Relaxed)
            );
            member.cut(force);
        }
        w.down = down;
        match (drained, w.drain_timer.is_some()) {
            (true, false) => {
                if let Some(timeout) = director.drain_timeout {
                    let stop = CancellationToken::new();
                    w.drain_timer = Some(stop.clone());
                    let member = member.clone();
                    let force = force.clone();
                    tracker.spawn(async move {
                        tokio::select! {
                            _ = stop.cancelled() => {}
                            _ = force.cancelled() => {}
                            _ = tokio::time::sleep(timeout) => {
                                tracing::info!(
                                    pool = %member.pool, backend = %member.backend,
                                    "director: member {} of pool {} drained for {timeout:?}, closing its {} connections",
                                    member.backend, member.pool, member.active.load(Ordering::Relaxed)
                                );
                                member.cut(&force);
                            }
                        }
                    });
                }
            }
            (false, true) => {
                if let Some(t) = w.drain_timer.take() {
                    t.cancel();
                }
            }
            _ => {}
        }
    }
}

/// Every director's live state, shared by the accept loops, their connections, the supervisor
/// and the status API.
#[derive(Debug)]
struct Registry {
    directors: Mutex<HashMap<Vec<SocketAddr>, Arc<DirectorRuntime>>>,
    started: Instant,
    /// Cancelled when the shutdown grace period is over: every connection closes.
    force: CancellationToken,
}

impl DirectorRuntime {
    fn millis(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn new_member(&self, pool: &str, backend: SocketAddr) -> MemberRuntime {
        MemberRuntime {
            pool: pool.to_string(),
            backend,
            active: AtomicU64::new(0),
            total: AtomicU64::new(0),
            failed_connects: AtomicU64::new(0),
            to_backend: AtomicU64::new(0),
            to_client: AtomicU64::new(0),
            failed_at: AtomicU64::new(0),
            first_byte: AtomicU64::new(0),
            first_byte_at: AtomicU64::new(0),
            cut: Mutex::new(self.force.child_token()),
            watch: Mutex::new(Watch::default()),
        }
    }
}

/// A handle on every director's live state and counters; cheap to clone. The server creates
/// one and its directors update it; the status API and metrics read [`DirectorStats::snapshot`].
/// A director is known by its listen addresses, so its counters survive reloads that keep them.
#[derive(Debug, Clone)]
pub struct DirectorStats {
    inner: Arc<Registry>,
}

impl Default for DirectorStats {
    fn default() -> Self {
        DirectorStats::new()
    }
}

impl DirectorStats {
    /// An empty registry.
    pub fn new() -> DirectorStats {
        DirectorStats {
            inner: Arc::new(Registry {
                directors: Mutex::new(HashMap::new()),
                started: Instant::now(),
                force: CancellationToken::new(),
            }),
        }
    }

    /// Every director's counters and its members', in listen-address order.
    pub fn snapshot(&self) -> Vec<DirectorConnStats> {
        let directors: Vec<Arc<DirectorRuntime>> =
            lock(&self.inner.directors).values().cloned().collect();
        let mut out: Vec<DirectorConnStats> = directors
            .iter()
            .map(|d| {
                let mut members: Vec<MemberConnStats> = lock(&d.members)
                    .values()
                    .map(|m| MemberConnStats {
                        pool: m.pool.clone(),
                        backend: m.backend,
                        active: m.active.load(Ordering::Relaxed),
                        total: m.total.load(Ordering::Relaxed),
                        failed_connects: m.failed_connects.load(Ordering::Relaxed),
                        bytes_to_backend: m.to_backend.load(Ordering::Relaxed),
                        bytes_to_client: m.to_client.load(Ordering::Relaxed),
                        first_byte: m.first_byte(),
                    })
                    .collect();
                members.sort_by(|a, b| (&a.pool, a.backend).cmp(&(&b.pool, b.backend)));
                DirectorConnStats {
                    listen: d.listen.clone(),
                    service: lock(&d.service).clone(),
                    active: d.active.load(Ordering::Relaxed),
                    accepted: d.accepted.load(Ordering::Relaxed),
                    refused_acl: d.refused_acl.load(Ordering::Relaxed),
                    refused_limit: d.refused_limit.load(Ordering::Relaxed),
                    refused_no_member: d.refused_no_member.load(Ordering::Relaxed),
                    refused_connect: d.refused_connect.load(Ordering::Relaxed),
                    members,
                }
            })
            .collect();
        out.sort_by(|a, b| a.listen.cmp(&b.listen));
        out
    }

    /// Closes every director connection still open (the end of the shutdown grace period).
    pub fn close_all(&self) {
        self.inner.force.cancel();
    }

    /// The live state of `director`, created on first use.
    pub(crate) fn director(&self, director: &Director) -> Arc<DirectorRuntime> {
        let mut map = lock(&self.inner.directors);
        if let Some(d) = map.get(&director.listen) {
            return d.clone();
        }
        let d = Arc::new(DirectorRuntime {
            listen: director.listen.clone(),
            service: Mutex::new(String::new()),
            active: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            refused_acl: AtomicU64::new(0),
            refused_limit: AtomicU64::new(0),
            refused_no_member: AtomicU64::new(0),
            refused_connect: AtomicU64::new(0),
            freed: Notify::new(),
            waiting: AtomicUsize::new(0),
            members: Mutex::new(HashMap::new()),
            pool_states: Mutex::new(HashMap::new()),
            table: ArcSwapOption::empty(),
            started: self.inner.started,
            force: self.inner.force.clone(),
        });
        map.insert(director.listen.clone(), d.clone());
        d
    }

    /// Forgets directors no longer in `model` once their last connection ended.
    pub(crate) fn prune(&self, model: &Model) {
        lock(&self.inner.directors).retain(|listen, d| {
            model.directors.iter().any(|m| &m.listen == listen)
                || d.active.load(Ordering::SeqCst) > 0
        });
    }

    /// Every director's live state.
    pub(crate) fn all(&self) -> Vec<Arc<DirectorRuntime>> {
        lock(&self.inner.directors).values().cloned().collect()
    }
}

impl DirectorRuntime {
    /// Its listen addresses (its identity).
    pub(crate) fn listen(&self) -> &[SocketAddr] {
        &self.listen
    }
}
