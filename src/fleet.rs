//! Fleet mode: this instance as one of several sharing health and overrides through etcd v3.
//! It registers the instance under a lease, publishes the health writer's observations
//! (transitions only), writes operator overrides, and watches the prefix to hand the writer
//! peers' observations and the fleet's overrides as views. I/O only: the consensus itself is
//! `health::consensus`, applied by the writer. Nothing on the DNS or director path waits on it.

mod keys;
pub mod report;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, PutOptions, Txn, TxnOp,
    WatchOptions,
};
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::health::fleet::{
    FleetLink, Instance, MemberKey, Observed, OverrideView, PeerView, StoredOverride, ToFleet,
    unix_now,
};
use crate::model::FleetSettings;
use crate::state::SharedState;
use keys::{Key, Keys};

/// What the API and metrics read of the fleet: the connection state and the etcd writes made.
/// The views themselves are read from the same `watch` channels the writer applies.
#[derive(Debug)]
pub struct FleetStatus {
    /// The settings in force.
    pub settings: FleetSettings,
    connected: AtomicBool,
    writes: AtomicU64,
    /// Peers' observations and the instances.
    pub peers: tokio::sync::watch::Receiver<Arc<PeerView>>,
}

impl FleetStatus {
    /// Is etcd connected (registered, read and watched)?
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// etcd writes made so far (puts and deletes, each key counted).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}

/// The fleet task: connects, serves the link and reconnects until `shutdown`.
pub struct Fleet {
    settings: FleetSettings,
    link: FleetLink,
    state: Arc<SharedState>,
    status: Arc<FleetStatus>,
    /// This instance's observations, as last sent by the writer.
    local: HashMap<MemberKey, Observed>,
    /// The lease of the last session, reused when it is still alive.
    lease: Option<i64>,
    keys: Keys,
    started: u64,
    /// Configs this instance has run: 1 at start, one more per reload.
    generation: u64,
    /// Override writes asked for while etcd was unreachable, with when to give up on each:
    /// a failover between etcd members should delay an operator's drain, not refuse it.
    pending: Vec<(ToFleet, Instant)>,
    /// The endpoint the next session talks to: one at a time, so a frozen etcd member costs
    /// one timeout and the next session goes to the next member.
    endpoint: usize,
}

/// Why a session with etcd ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("{0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Lost(String),
    /// etcd answered, but this instance may not join (yet).
    #[error("{0}")]
    Refused(String),
}

type Session<T> = Result<T, SessionError>;

impl Fleet {
    /// A fleet task for `settings`, its link to the writer, and the status the API reads.
    pub fn new(
        settings: FleetSettings,
        link: FleetLink,
        state: Arc<SharedState>,
    ) -> (Fleet, Arc<FleetStatus>) {
        let status = Arc::new(FleetStatus {
            settings: settings.clone(),
            connected: AtomicBool::new(false),
            writes: AtomicU64::new(0),
            peers: link.peers.subscribe(),
        });
        let keys = Keys::new(&settings.prefix, &settings.name);
        let fleet = Fleet {
            settings,
            link,
            state,
            status: status.clone(),
            local: HashMap::new(),
            lease: None,
            keys,
            started: unix_now(),
            generation: 0,
            endpoint: 0,
            pending: Vec::new(),
        };
        (fleet, status)
    }

    /// Runs until `shutdown`: a session with etcd, and between sessions the local view (the
    /// writer's requests answered, peers' observations dropped after `stale_peers`).
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        let mut first = true;
        let mut failures = 0usize;
        loop {
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.session(&shutdown) => r,
            };
            if shutdown.is_cancelled() {
                return;
            }
            self.status.connected.store(false, Ordering::Relaxed);
            let was_connected = self.link.peers.borrow().lost_at.is_none();
            if was_connected {
                self.link.peers.send_modify(|v| {
                    let mut next = (**v).clone();
                    next.lost_at = Some(Instant::now());
                    *v = Arc::new(next);
                });
            }
            match outcome {
                Ok(()) => backoff = Duration::from_millis(200),
                Err(e @ SessionError::Refused(_)) if was_connected || first => {
                    warn!("fleet: not joining: {e}; serving the local view meanwhile")
                }
                Err(e) if was_connected || first => warn!(
                    endpoints = ?self.settings.endpoints,
                    "fleet: etcd unreachable: {e}; serving the local view (peers' observations \
                     count for {:?} more)",
                    self.settings.stale_peers
                ),
                Err(e) => tracing::debug!("fleet: etcd still unreachable: {e}"),
            }
            first = false;
            let n = self.settings.endpoints.len();
            self.endpoint = (self.endpoint + 1) % n;
            failures = if was_connected { 1 } else { failures + 1 };
            if was_connected {
                backoff = Duration::from_millis(200);
            } else if failures.is_multiple_of(n) {
                // Every member tried once: wait longer before the next round.
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            let until = Instant::now()
                + if failures.is_multiple_of(n) {
                    backoff
                } else {
                    Duration::from_millis(50)
                };
            self.offline_until(until, &shutdown).await;
        }
    }

    /// Between sessions: answers the writer until `until`, and when `stale_peers` has passed
    /// since etcd was lost, wakes the writer so it decides on its own observations alone.
    async fn offline_until(&mut self, until: Instant, shutdown: &CancellationToken) {
        let lost_at = self.link.peers.borrow().lost_at;
        let stale_at = lost_at.map(|t| t + self.settings.stale_peers + Duration::from_millis(1));
        loop {
            self.expire_pending();
            let mut wake = match stale_at {
                Some(t) if t > Instant::now() && t < until => t,
                _ => until,
            };
            if let Some(first) = self.pending.iter().map(|p| p.1).min() {
                wake = wake.min(first);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(wake) => {
                    if Some(wake) == stale_at {
                        info!("fleet: peers' observations are stale; deciding on this instance's alone");
                        self.link.peers.send_modify(|_| {});
                        continue;
                    }
                    if wake >= until {
                        return;
                    }
                }
                Some(msg) = self.link.from_writer.recv() => match msg {
                    ToFleet::All(all) => {
                        self.generation += 1;
                        self.local = all.into_iter().collect();
                    }
                    ToFleet::One(key, obs) => {
                        self.local.insert(key, obs);
                    }
                    write @ ToFleet::Write { .. } => {
                        let patience = (self.settings.timeout * 3).max(Duration::from_secs(2));
                        self.pending.push((write, Instant::now() + patience));
                    }
                },
            }
        }
    }

    /// Refuses the pending writes whose patience ran out.
    fn expire_pending(&mut self) {
        let now = Instant::now();
        let (expired, kept) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition::<Vec<_>, _>(|p| p.1 <= now);
        self.pending = kept;
        for (write, _) in expired {
            if let ToFleet::Write { reply, .. } = write {
                let _ = reply.send(Err("etcd is unreachable".to_string()));
            }
        }
    }

    /// Bounds an etcd call by the configured timeout.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Session<T> {
        match timeout(self.settings.timeout, call).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(SessionError::Timeout(self.settings.timeout)),
        }
    }

    /// One session: connect, lease, register, publish, read, then watch and serve until an
    /// error (`Err`) or shutdown (`Ok`).
    async fn session(&mut self, shutdown: &CancellationToken) -> Session<()> {
        let t = self.settings.timeout;
        let options = ConnectOptions::new()
            .with_connect_timeout(t)
            .with_timeout(t)
            .with_keep_alive(Duration::from_secs(5).max(t), t * 2)
            .with_keep_alive_while_idle(true);
        let endpoint =
            [self.settings.endpoints[self.endpoint % self.settings.endpoints.len()].clone()];
        let mut client = self
            .bounded(Client::connect(endpoint.clone(), Some(options)))
            .await?;
        let ttl = self.settings.lease_ttl.as_secs().max(2) as i64;
        let lease = match self.lease {
            Some(id) => match self.bounded(client.lease_time_to_live(id, None)).await {
                Ok(r) if r.ttl() > 0 => id,
                _ => self.bounded(client.lease_grant(ttl, None)).await?.id(),
            },
            None => self.bounded(client.lease_grant(ttl, None)).await?.id(),
        };
        self.lease = Some(lease);
        let (mut keeper, mut alive) = self.bounded(client.lease_keep_alive(lease)).await?;
        self.register(&mut client, lease).await?;
        self.publish_all(&mut client, lease).await?;
        let revision = self.read_all(&mut client).await?;
        let mut watch = self
            .bounded(
                client.watch(
                    self.keys.root(),
                    Some(
                        WatchOptions::new()
                            .with_prefix()
                            .with_start_revision(revision + 1),
                    ),
                ),
            )
            .await?;
        self.status.connected.store(true, Ordering::Relaxed);
        self.expire_pending();
        for (write, _) in std::mem::take(&mut self.pending) {
            self.serve(&mut client, lease, write).await?;
        }
        let live = self.link.peers.borrow().instances.len();
        info!(
            "fleet: connected to etcd at {} as {} ({live} instances live)",
            endpoint[0], self.settings.name
        );

        let tick = (self.settings.lease_ttl / 3).max(Duration::from_millis(300));
        let mut ticker = tokio::time::interval(tick);
        let mut last_alive = Instant::now();
        let mut last_watch = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    let _ = timeout(t, client.lease_revoke(lease)).await;
                    self.lease = None;
                    return Ok(());
                }
                _ = ticker.tick() => {
                    let limit = self.settings.lease_ttl.max(tick * 2 + t);
                    if last_alive.elapsed() > limit {
                        return Err(SessionError::Lost("lease keep-alives unanswered".into()));
                    }
                    if last_watch.elapsed() > limit {
                        return Err(SessionError::Lost("watch stream silent".into()));
                    }
                    self.bounded(keeper.keep_alive()).await?;
                    self.bounded(watch.request_progress()).await?;
                }
                r = alive.message() => match r? {
                    Some(resp) if resp.ttl() > 0 => last_alive = Instant::now(),
                    Some(_) => {
                        self.lease = None;
                        return Err(SessionError::Lost("lease expired".into()));
                    }
                    None => return Err(SessionError::Lost("keep-alive stream closed".into())),
                },
                r = watch.message() => {
                    last_watch = Instant::now();
                    let Some(resp) = r? else {
                        return Err(SessionError::Lost("watch stream closed".into()));
                    };
                    if resp.canceled() {
                        return Err(SessionError::Lost(format!("watch canceled: {}", resp.cancel_reason())));
                    }
                    self.apply_events(resp.events());
                }
                Some(msg) = self.link.from_writer.recv() => self.serve(&mut client, lease, msg).await?,
            }
        }
    }

    /// Registers this instance under its lease, unless another live instance has its name.
    async fn register(&mut self, client: &mut Client, lease: i64) -> Session<()> {
        let snap = self.state.load();
        let me = Instance {
            name: self.settings.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            config_digest: snap.model.config_digest.clone(),
            generation: self.generation.max(1),
            started: self.started,
        };
        drop(snap);
        let key = self.keys.instance(&self.settings.name);
        let value = serde_json::to_string(&me).unwrap_or_default();
        let put = TxnOp::put(
            key.clone(),
            value,
            Some(PutOptions::new().with_lease(lease)),
        );
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([put.clone()])
            .or_else([TxnOp::txn(
                Txn::new()
                    .when([Compare::lease(key.clone(), CompareOp::Equal, lease)])
                    .and_then([put]),
            )]);
        let resp = self.bounded(client.txn(txn)).await?;
        self.count_writes(1);
        let nested_ok = resp.op_responses().into_iter().any(|r| match r {
            etcd_client::TxnOpResponse::Txn(t) => t.succeeded(),
            _ => false,
        });
        if !resp.succeeded() && !nested_ok {
            return Err(SessionError::Refused(format!(
                "another live instance is named {:?}; joining when its lease expires",
                self.settings.name
            )));
        }
        Ok(())
    }

    /// Publishes every observation of this instance and removes its stale ones.
    async fn publish_all(&mut self, client: &mut Client, lease: i64) -> Session<()> {
        let own = self.keys.own_observations();
        let existing = self
            .bounded(client.get(own, Some(GetOptions::new().with_prefix().with_keys_only())))
            .await?;
        let mut ops = Vec::new();
        let wanted: HashMap<String, &Observed> = self
            .local
            .iter()
            .map(|(k, o)| (self.keys.observation(&self.settings.name, k), o))
            .collect();
        for kv in existing.kvs() {
            if let Ok(k) = kv.key_str()
                && !wanted.contains_key(k)
            {
                ops.push(TxnOp::delete(k, None));
            }
        }
        for (k, o) in &wanted {
            let value = serde_json::to_string(o).unwrap_or_default();
            ops.push(TxnOp::put(
                k.as_str(),
                value,
                Some(PutOptions::new().with_lease(lease)),
            ));
        }
        self.write_batches(client, ops).await.map(|_| ())
    }

    /// Writes `ops` in transactions of at most 100 operations (etcd's default limit is 128);
    /// returns the revision of the last.
    async fn write_batches(&mut self, client: &mut Client, ops: Vec<TxnOp>) -> Session<i64> {
        let mut revision = 0;
        for chunk in ops.chunks(100) {
            let resp = self
                .bounded(client.txn(Txn::new().and_then(chunk.to_vec())))
                .await?;
            self.count_writes(chunk.len());
            revision = resp.header().map_or(revision, |h| h.revision());
        }
        Ok(revision)
    }

    fn count_writes(&self, n: usize) {
        self.status.writes.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Reads everything under the prefix into fresh views; returns the revision read at.
    async fn read_all(&mut self, client: &mut Client) -> Session<i64> {
        let resp = self
            .bounded(client.get(self.keys.root(), Some(GetOptions::new().with_prefix())))
            .await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let mut peers = PeerView::default();
        let mut overrides = OverrideView {
            base_revision: revision,
            loaded: true,
            ..OverrideView::default()
        };
        for kv in resp.kvs() {
            let (Ok(key), value) = (kv.key_str(), kv.value()) else {
                continue;
            };
            apply_one(
                &self.keys,
                &mut peers,
                &mut overrides,
                key,
                Some(value),
                kv.mod_revision(),
            );
        }
        self.check_digests(&self.link.peers.borrow().instances, &peers.instances);
        self.link.peers.send_replace(Arc::new(peers));
        self.link.overrides.send_replace(Arc::new(overrides));
        Ok(revision)
    }

    /// Applies watch events to the views and publishes those that changed.
    fn apply_events(&mut self, events: &[etcd_client::Event]) {
        if events.is_empty() {
            return;
        }
        let mut peers = (**self.link.peers.borrow()).clone();
        let mut overrides = (**self.link.overrides.borrow()).clone();
        let (mut peers_changed, mut overrides_changed) = (false, false);
        for event in events {
            let Some(kv) = event.kv() else { continue };
            let Ok(key) = kv.key_str() else { continue };
            let value = match event.event_type() {
                EventType::Put => Some(kv.value()),
                EventType::Delete => None,
            };
            match apply_one(
                &self.keys,
                &mut peers,
                &mut overrides,
                key,
                value,
                kv.mod_revision(),
            ) {
                Some(Key::Override(_)) => overrides_changed = true,
                Some(_) => peers_changed = true,
                None => {}
            }
        }
        if peers_changed {
            self.check_digests(&self.link.peers.borrow().instances, &peers.instances);
            self.link.peers.send_replace(Arc::new(peers));
        }
        if overrides_changed {
            self.link.overrides.send_replace(Arc::new(overrides));
        }
    }

    /// Logs instances that joined, left, or run a config other than this one's.
    fn check_digests(
        &self,
        before: &std::collections::BTreeMap<String, Instance>,
        after: &std::collections::BTreeMap<String, Instance>,
    ) {
        let mine = self.state.load().model.config_digest.clone();
        for (name, inst) in after {
            let old = before.get(name);
            if old.is_none() && *name != self.settings.name {
                info!(instance = %name, "fleet: instance {name} joined");
            }
            if inst.config_digest != mine
                && old.map(|o| &o.config_digest) != Some(&inst.config_digest)
            {
                warn!(
                    instance = %name,
                    "fleet: instance {name} runs a different config (digest {} here {mine})",
                    inst.config_digest
                );
            }
        }
        for name in before.keys().filter(|n| !after.contains_key(*n)) {
            info!(instance = %name, "fleet: instance {name} left (its lease ended)");
        }
    }

    /// Serves one request of the writer.
    async fn serve(&mut self, client: &mut Client, lease: i64, msg: ToFleet) -> Session<()> {
        match msg {
            ToFleet::All(all) => {
                // A start or a reload: register again with the config's digest.
                self.generation += 1;
                self.local = all.into_iter().collect();
                self.register(client, lease).await?;
                self.publish_all(client, lease).await?;
            }
            ToFleet::One(key, obs) => {
                let k = self.keys.observation(&self.settings.name, &key);
                let value = serde_json::to_string(&obs).unwrap_or_default();
                self.local.insert(key, obs);
                self.bounded(client.put(k, value, Some(PutOptions::new().with_lease(lease))))
                    .await?;
                self.count_writes(1);
            }
            ToFleet::Write { changes, by, reply } => {
                let at = unix_now();
                let ops = changes
                    .iter()
                    .map(|(key, value)| {
                        let k = self.keys.override_key(key);
                        match value {
                            Some(o) => TxnOp::put(
                                k,
                                serde_json::to_string(&StoredOverride {
                                    value: *o,
                                    by: by.clone(),
                                    at,
                                })
                                .unwrap_or_default(),
                                None,
                            ),
                            None => TxnOp::delete(k, None),
                        }
                    })
                    .collect();
                match self.write_batches(client, ops).await {
                    Ok(revision) => {
                        let _ = reply.send(Ok(revision));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(format!("etcd write failed: {e}")));
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Applies one key's new value (`None`: deleted) at `revision` to the views; says which kind
/// of key it was (`None`: not one of the fleet's, or this instance's own observation).
fn apply_one(
    keys: &Keys,
    peers: &mut PeerView,
    overrides: &mut OverrideView,
    key: &str,
    value: Option<&[u8]>,
    revision: i64,
) -> Option<Key> {
    let parsed = keys.parse(key)?;
    match &parsed {
        Key::Instance(name) => match value.and_then(|v| serde_json::from_slice(v).ok()) {
            Some(inst) => {
                peers.instances.insert(name.clone(), inst);
                peers.last_seen.insert(name.clone(), unix_now());
            }
            None => {
                peers.instances.remove(name);
                peers.observations.remove(name);
                peers.last_seen.remove(name);
            }
        },
        Key::Observation(name, member) => {
            if value.is_some() && peers.instances.contains_key(name) {
                peers.last_seen.insert(name.clone(), unix_now());
            }
            if *name == keys.me() {
                return None;
            }
            match value.and_then(|v| serde_json::from_slice::<Observed>(v).ok()) {
                Some(obs) => {
                    peers
                        .observations
                        .entry(name.clone())
                        .or_default()
                        .insert(member.clone(), obs);
                }
                None => {
                    if let Some(all) = peers.observations.get_mut(name) {
                        all.remove(member);
                    }
                }
            }
        }
        Key::Override(member) => {
            let stored = value.and_then(|v| serde_json::from_slice::<StoredOverride>(v).ok());
            overrides.entries.insert(member.clone(), (stored, revision));
        }
    }
    Some(parsed)
}

/// Starts the fleet task for `settings` on the current runtime.
pub fn spawn(
    settings: FleetSettings,
    link: FleetLink,
    state: Arc<SharedState>,
    shutdown: CancellationToken,
) -> (tokio::task::JoinHandle<()>, Arc<FleetStatus>) {
    let (fleet, status) = Fleet::new(settings, link, state);
    let handle = tokio::spawn(async move {
        fleet.run(shutdown).await;
    });
    (handle, status)
}
