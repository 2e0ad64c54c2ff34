//! The TCP director: accepts connections on `[[directors]]` listeners and forwards each one to
//! a member of the director's service. The pool comes from the service's steering for this
//! client, exactly as a DNS answer would ([`select::steer`]); the member from the
//! director's scheduler among the pool's usable ones ([`schedule`]). A failed connect tries
//! the next member and reports a passive failure to the health writer, which marks the member
//! down at once. Health flips and reloads reach new connections through the snapshot; the
//! supervisor ([`supervise`]) applies them to open ones (`drain_timeout`, `on_down`).

mod connect;
pub mod metrics;
pub mod proxy_protocol;
mod pump;
pub mod schedule;
mod splice;
pub mod stats;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, debug_span, info, warn};

use crate::accept::{Accepted, Acceptor};
use crate::health::passive::PassiveReports;
use crate::health::{HealthTable, Override};
use crate::model::{Director, Model, PoolId, Scheduler};
use crate::select::{self, Admit, Steered};
use crate::state::{SharedState, Snapshot};
use schedule::{Candidate, client_key, member_key};
use stats::{Attempt, DirectorRuntime, DirectorStats, MemberRuntime, Table};

pub use stats::{DirectorConnStats, MemberConnStats};

/// What every accept loop and connection of the directors shares.
#[derive(Debug, Clone)]
pub struct Context {
    /// The snapshot: model (director settings, pools) and health.
    pub state: Arc<SharedState>,
    /// Live state and counters.
    pub stats: DirectorStats,
    /// Where passive failures go.
    pub health: PassiveReports,
    /// Tracks connection tasks, for graceful shutdown.
    pub tracker: TaskTracker,
}

/// The director configured with listen address `configured` in `model`, if any.
fn director_at(model: &Model, configured: SocketAddr) -> Option<&Director> {
    model
        .directors
        .iter()
        .find(|d| d.listen.contains(&configured))
}

/// Accepts connections on `listener` (configured as `configured`) until `shutdown`, or until a
/// reload removes `configured` from every director. Each accepted connection runs in its own
/// tracked task; connections still waiting for a slot are refused when the listener stops.
pub async fn serve(
    listener: TcpListener,
    configured: SocketAddr,
    ctx: Context,
    shutdown: CancellationToken,
) {
    let bound = listener.local_addr().ok();
    // A reload that drops this address from every director stops the listener; a small task
    // watches for that, so the accept loop waits on one long-lived future, not fresh ones per
    // connection.
    let stop = shutdown.child_token();
    let watcher = {
        let (state, stop) = (ctx.state.clone(), stop.clone());
        let mut changes = ctx.state.subscribe();
        async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    changed = changes.changed() => if changed.is_err() { return },
                }
                if director_at(&state.load().model, configured).is_none() {
                    info!("director listener {configured} closed: no director lists it any more");
                    stop.cancel();
                    return;
                }
            }
        }
    };
    ctx.tracker.spawn(watcher);
    // The runtime of this listener's director, for the model it was looked up in.
    let mut cached: Option<(Arc<Model>, Arc<DirectorRuntime>)> = None;
    let mut acceptor = Acceptor::new(listener, move |e| {
        warn!(error = %e, listen = ?bound, "director: accept failed");
    })
    .until(&stop);
    while let Some(Accepted { stream, peer, .. }) = acceptor.next().await {
        let model = ctx.state.load().model.clone();
        let Some(director) = director_at(&model, configured) else {
            continue;
        };
        let rt = match &cached {
            Some((m, rt)) if Arc::ptr_eq(m, &model) => rt.clone(),
            _ => {
                let rt = ctx.stats.director(director);
                cached = Some((model.clone(), rt.clone()));
                rt
            }
        };
        rt.accepted.fetch_add(1, Ordering::Relaxed);
        if !director.admits(peer.ip()) {
            rt.refused_acl.fetch_add(1, Ordering::Relaxed);
            debug!(client = %peer, listen = %configured, "director: client refused by allow/deny");
            drop(stream);
            continue;
        }
        let span = debug_span!("director", client = %peer, listen = %configured);
        let task = connection(
            ctx.clone(),
            rt,
            model,
            configured,
            stream,
            peer,
            stop.clone(),
        );
        ctx.tracker.spawn(task.instrument(span));
    }
    stop.cancel();
}

/// Holds a director slot; gives it back when dropped, however the connection ends.
struct DirectorSlot(Arc<DirectorRuntime>);

impl Drop for DirectorSlot {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// Holds a member slot; gives it back when dropped.
struct MemberSlot {
    director: Arc<DirectorRuntime>,
    member: Arc<MemberRuntime>,
}

impl Drop for MemberSlot {
    fn drop(&mut self) {
        self.director.release(&self.member);
    }
}

/// One client connection, from the limit check to the end of forwarding.
async fn connection(
    ctx: Context,
    rt: Arc<DirectorRuntime>,
    model: Arc<Model>,
    configured: SocketAddr,
    mut client: TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    let Some(director) = director_at(&model, configured) else {
        return;
    };
    let deadline = Instant::now() + director.queue_timeout;
    let limit = director.max_connections;
    let entered = rt
        .queue(deadline, &shutdown, || {
            if rt.try_enter(limit) {
                Attempt::Ready(())
            } else {
                Attempt::Wait
            }
        })
        .await;
    if entered.is_none() {
        rt.refused_limit.fetch_add(1, Ordering::Relaxed);
        debug!(
            "director: refused, {limit} connections open for {:?}",
            director.queue_timeout
        );
        return;
    }
    let _slot = DirectorSlot(rt.clone());
    let Some((mut backend, slot, started)) =
        connect(&ctx, &rt, director, configured, peer, deadline, &shutdown).await
    else {
        return;
    };
    let member = &slot.member;
    if let Some(version) = director.send_proxy {
        let local = client.local_addr().unwrap_or(configured);
        let header = proxy_protocol::header(version, peer, local);
        if let Err(e) = backend.write_all(&header).await {
            debug!(backend = %member.backend, error = %e, "director: PROXY header not sent");
            return;
        }
        member
            .to_backend
            .fetch_add(header.len() as u64, Ordering::Relaxed);
    }
    let _ = client.set_nodelay(true);
    let cut = member.cut_token();
    // `fastest` learns each member's time to first byte, from the start of the connect.
    let first_byte = || member.record_first_byte(started.elapsed());
    let counters = pump::Counters {
        to_backend: &member.to_backend,
        to_client: &member.to_client,
        first_reply: (director.scheduler == Scheduler::Fastest)
            .then_some(&first_byte as &(dyn Fn() + Sync)),
    };
    let pumping = pump::pump(&mut client, &mut backend, director.idle_timeout, counters);
    tokio::pin!(pumping);
    let cancelled = cut.cancelled();
    tokio::pin!(cancelled);
    let mut registered = false;
    // The cut is registered with this task's waker once; after that a cheap flag check per
    // wake-up is enough (the registered waker still wakes this same task), instead of the
    // lock that polling the cancellation future again takes on every packet.
    let end = std::future::poll_fn(|cx| {
        if !registered {
            registered = true;
            if cancelled.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(None);
            }
        } else if cut.is_cancelled() {
            return std::task::Poll::Ready(None);
        }
        pumping.as_mut().poll(cx).map(Some)
    })
    .await;
    match end {
        None => debug!(backend = %member.backend, "director: connection closed by the director"),
        Some(pump::End::Done) => debug!(backend = %member.backend, "director: connection done"),
        Some(pump::End::Idle) => debug!(
            backend = %member.backend,
            "director: idle for {:?}, closed", director.idle_timeout
        ),
        Some(pump::End::Error(e)) => {
            debug!(backend = %member.backend, error = %e, "director: connection ended")
        }
    }
}

/// What one look at the snapshot offers a connection.
enum Choice {
    /// This member, with its slot taken.
    Member(MemberSlot, usize, Arc<Model>),
    /// Nothing usable: refuse.
    Nothing,
    /// Usable members exist but all are at `max_connections_per_member`.
    Full,
}

/// Picks a member and connects to it, trying another after a failure (`retries` times);
/// returns the connection, its slot and when its connect began.
#[allow(clippy::too_many_arguments)]
async fn connect(
    ctx: &Context,
    rt: &Arc<DirectorRuntime>,
    director: &Director,
    configured: SocketAddr,
    peer: SocketAddr,
    deadline: Instant,
    shutdown: &CancellationToken,
) -> Option<(TcpStream, MemberSlot, Instant)> {
    let client = peer.ip().to_canonical();
    let key = client_key(client);
    let mut tried: Vec<u64> = Vec::new();
    for _ in 0..=director.retries {
        let mut refused = false;
        let choice = rt
            .queue(deadline, shutdown, || {
                let snap = ctx.state.load();
                match choose(rt, &snap, configured, client, key, &tried) {
                    Choice::Full => Attempt::Wait,
                    Choice::Nothing => {
                        refused = true;
                        Attempt::Stop
                    }
                    Choice::Member(slot, index, model) => Attempt::Ready((slot, index, model)),
                }
            })
            .await;
        let Some((slot, index, model)) = choice else {
            if refused {
                rt.refused_no_member.fetch_add(1, Ordering::Relaxed);
                debug!("director: refused, no usable member");
            } else {
                rt.refused_limit.fetch_add(1, Ordering::Relaxed);
                debug!("director: refused, every usable member at its connection limit");
            }
            return None;
        };
        let backend = slot.member.backend;
        let started = Instant::now();
        let connected =
            tokio::time::timeout(director.connect_timeout, connect::connect(backend)).await;
        let reason = match connected {
            Ok(Ok(stream)) => {
                slot.member.total.fetch_add(1, Ordering::Relaxed);
                debug!(%backend, "director: connected");
                return Some((stream, slot, started));
            }
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                "connect refused (director)".to_string()
            }
            Ok(Err(e)) => format!("connect failed: {e} (director)"),
            Err(_) => format!(
                "connect timeout after {:?} (director)",
                director.connect_timeout
            ),
        };
        debug!(%backend, "director: {reason}");
        tried.push(member_key(backend));
        if rt.connect_failed(&slot.member) {
            ctx.health.report(model, index, reason.into());
        }
    }
    rt.refused_connect.fetch_add(1, Ordering::Relaxed);
    debug!("director: refused, every member tried failed to connect");
    None
}

/// One scheduling decision on `snap`: steering picks the pool for `client` (as a DNS answer
/// would), then the scheduler picks among its usable members that this connection has not
/// tried, that are not held back after a failed connect, and that are below their limit.
fn choose(
    rt: &Arc<DirectorRuntime>,
    snap: &Snapshot,
    configured: SocketAddr,
    client: IpAddr,
    key: u64,
    tried: &[u64],
) -> Choice {
    let model = &snap.model;
    let health = &snap.health;
    let Some(director) = director_at(model, configured) else {
        return Choice::Nothing;
    };
    let service = &model.services[director.service.0 as usize];
    let table = rt.table(model, director);
    let fresh = |pool: usize, i: usize| {
        let runtime = &table.pools[pool].members[i];
        !tried.contains(&member_key(runtime.backend)) && !rt.held_back(runtime)
    };
    let has = |pool: PoolId, admit: Admit| {
        model.pools[pool.0 as usize]
            .members
            .iter()
            .enumerate()
            .any(|(i, m)| admit.admits(model, health, m) && fresh(pool.0 as usize, i))
    };
    // Source hashing steers with a generator seeded by the client, so a client also sticks to
    // its pool under weighted steering.
    let mut rng = match director.scheduler {
        Scheduler::SourceHash => SmallRng::seed_from_u64(key),
        // Only weighted steering, random2 and fastest draw numbers; a cheap seed serves the
        // rest.
        _ if service.steering == crate::model::Steering::Weighted
            || matches!(director.scheduler, Scheduler::Random2 | Scheduler::Fastest) =>
        {
            SmallRng::from_rng(&mut rand::rng())
        }
        _ => SmallRng::seed_from_u64(key),
    };
    // The same steering decision a DNS answer for this client follows.
    let sel_client = select::Client::from_addr(model, client);
    let decision = select::steer(model, health, service, &sel_client, &mut rng);
    let found = match decision.steered {
        // The steered pool, unless every usable member in it already failed this connection
        // (or is held back after a failed connect): then the next pool in the client's order.
        Steered::Pool(p) if has(p, Admit::Usable) => Some((p, Admit::Usable)),
        Steered::Pool(_) => decision
            .order
            .pools
            .iter()
            .copied()
            .find(|&p| has(p, Admit::Usable))
            .map(|p| (p, Admit::Usable)),
        // Nothing usable anywhere: the pool `when_all_down` names, with the members it admits
        // (failing open never sends a connection to a member an operator took out).
        Steered::AllDown { pool, admit } => has(pool, admit).then_some((pool, admit)),
        Steered::NoData | Steered::ServFail => None,
    };
    let Some((pool, admit)) = found else {
        return Choice::Nothing;
    };
    let ok = |i: usize, m: &crate::model::Member| {
        admit.admits(model, health, m) && fresh(pool.0 as usize, i)
    };
    schedule_in(
        rt,
        &table,
        (model, health),
        director,
        pool.0 as usize,
        &ok,
        key,
        &mut rng,
    )
}

/// Runs the scheduler over the members of `pool` that pass `ok` and have a free slot.
#[allow(clippy::too_many_arguments)]
fn schedule_in(
    rt: &Arc<DirectorRuntime>,
    table: &Table,
    (model, health): (&Arc<Model>, &HealthTable),
    director: &Director,
    pool: usize,
    ok: &dyn Fn(usize, &crate::model::Member) -> bool,
    key: u64,
    rng: &mut SmallRng,
) -> Choice {
    let entry = &table.pools[pool];
    let (state, runtimes) = (&entry.state, &entry.members);
    let limit = director.max_connections_per_member.map(u64::from);
    let now = Instant::now();
    let mut positions = Vec::new();
    let mut candidates = Vec::new();
    let mut full = false;
    for (i, m) in model.pools[pool].members.iter().enumerate() {
        if !ok(i, m) {
            continue;
        }
        let active = runtimes[i].active.load(Ordering::Relaxed);
        if limit.is_some_and(|l| active >= l) {
            full = true;
            continue;
        }
        positions.push(i);
        candidates.push(Candidate {
            key: member_key(runtimes[i].backend),
            weight: select::weight(health, m, now),
            active,
            rtt: runtimes[i].fresh_first_byte(),
        });
    }
    // A slot can be taken by another connection between the look and the reservation; then
    // the next candidate in scheduling order is tried.
    while !candidates.is_empty() {
        let picked = {
            let mut state = stats_lock(state);
            let scheduler = (director.scheduler, director.fastest_within);
            schedule::pick(scheduler, &candidates, &mut state, key, rng)
        };
        let Some(c) = picked else { break };
        let i = positions[c];
        let member = &runtimes[i];
        if member.try_reserve(director.max_connections_per_member) {
            let index = model.pools[pool].members[i].index;
            let slot = MemberSlot {
                director: rt.clone(),
                member: member.clone(),
            };
            return Choice::Member(slot, index, model.clone());
        }
        full = true;
        candidates.remove(c);
        positions.remove(c);
    }
    if full { Choice::Full } else { Choice::Nothing }
}

fn stats_lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Watches the snapshot and applies health changes to open connections: a member that goes
/// down has its connections closed when its director says `on_down = "close"`; a drained
/// member's are closed after `drain_timeout`. Also forgets directors removed by a reload.
pub async fn supervise(ctx: Context, shutdown: CancellationToken) {
    let mut changes = ctx.state.subscribe();
    let mut model: Option<Arc<Model>> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = changes.changed() => if changed.is_err() { return },
        }
        let snap = ctx.state.load();
        if !model.as_ref().is_some_and(|m| Arc::ptr_eq(m, &snap.model)) {
            ctx.stats.prune(&snap.model);
            model = Some(snap.model.clone());
        }
        for rt in ctx.stats.all() {
            let Some(director) = snap
                .model
                .directors
                .iter()
                .find(|d| d.listen == rt.listen())
            else {
                continue;
            };
            let table = rt.table(&snap.model, director);
            for (pool, entry) in snap.model.pools.iter().zip(&table.pools) {
                for (m, member) in pool.members.iter().zip(&entry.members) {
                    let h = snap.health.get(m.index);
                    let drained = h.admin == Some(Override::Drain);
                    let down = !drained
                        && !h.usable(snap.model.health.unknown_is_up)
                        && (h.admin == Some(Override::ForceDown)
                            || h.effective() == crate::health::HealthState::Down);
                    rt.supervise(member, drained, down, director, &ctx.tracker);
                }
            }
        }
    }
}
