//! Health state of every member: the hysteresis that turns probe results into up/down (a member
//! flips only after `rise` consecutive successes or `fall` consecutive failures), operator
//! overrides (drain, force-down, force-up), and the table that rides in the snapshot.
//!
//! Everything here is pure and synchronous; the prober stage runs the probes and feeds
//! results in, and in fleet mode [`consensus`] decides from the fleet's observations.

pub mod consensus;
pub mod events;
pub mod fleet;
pub mod overrides;
pub mod passive;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::Thresholds;

/// What probes say about a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    /// No probe result yet.
    Unknown,
    /// Passing.
    Up,
    /// Failing.
    Down,
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HealthState::Unknown => "unknown",
            HealthState::Up => "up",
            HealthState::Down => "down",
        })
    }
}

/// A member's state as operators see it on the status page, in the API, the metrics and the
/// transitions: an override first, then the probe state. [`MemberState::Absent`] appears only
/// in transitions, for a member a reload added (from) or removed (to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemberState {
    /// Passing its probes (or unmonitored).
    Up,
    /// Failing its probes.
    Down,
    /// No probe result yet.
    Unknown,
    /// Drained by an operator.
    Drained,
    /// Forced down by an operator.
    ForcedDown,
    /// Forced up by an operator.
    ForcedUp,
    /// Not in the config (before a reload added it, after a reload removed it).
    Absent,
}

impl MemberState {
    /// The states a configured member can be shown in, in the order metrics list them.
    pub const SHOWN: [MemberState; 6] = [
        MemberState::Up,
        MemberState::Down,
        MemberState::Unknown,
        MemberState::Drained,
        MemberState::ForcedDown,
        MemberState::ForcedUp,
    ];

    /// Every state a transition can go from or to.
    pub const ALL: [MemberState; 7] = [
        MemberState::Up,
        MemberState::Down,
        MemberState::Unknown,
        MemberState::Drained,
        MemberState::ForcedDown,
        MemberState::ForcedUp,
        MemberState::Absent,
    ];

    /// Its name in the API, logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Up => "up",
            MemberState::Down => "down",
            MemberState::Unknown => "unknown",
            MemberState::Drained => "drained",
            MemberState::ForcedDown => "forced-down",
            MemberState::ForcedUp => "forced-up",
            MemberState::Absent => "absent",
        }
    }
}

impl fmt::Display for MemberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<HealthState> for MemberState {
    fn from(state: HealthState) -> MemberState {
        match state {
            HealthState::Unknown => MemberState::Unknown,
            HealthState::Up => MemberState::Up,
            HealthState::Down => MemberState::Down,
        }
    }
}

/// An operator's decision that beats probe results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Override {
    /// No new answers or director picks; existing connections continue.
    Drain,
    /// Treated as down whatever the probes say.
    ForceDown,
    /// Treated as up whatever the probes say.
    ForceUp,
}

impl fmt::Display for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Override::Drain => "drain",
            Override::ForceDown => "force-down",
            Override::ForceUp => "force-up",
        })
    }
}

/// One probe result, as fed to [`MemberHealth::observe`].
#[derive(Debug, Clone)]
pub struct Observation {
    /// Did the probe pass?
    pub ok: bool,
    /// Why it failed (`http 503`, `connect refused`, …); `None` on success.
    pub reason: Option<Arc<str>>,
    /// How long the probe took.
    pub latency: Duration,
    /// The weight share (0-100) the member reported with this result, if it did.
    pub share: Option<u8>,
}

/// A slow start in progress: from `since`, the weight rises linearly to full over `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ramp {
    /// When the member came up (or was added).
    pub since: tokio::time::Instant,
    /// The pool's `slow_start`.
    pub window: Duration,
}

impl Ramp {
    /// The fraction of full weight at `now`, in 0..=1; 1 once the window has passed.
    pub fn fraction(&self, now: tokio::time::Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.since);
        if elapsed >= self.window {
            1.0
        } else {
            elapsed.as_secs_f64() / self.window.as_secs_f64()
        }
    }
}

/// How much of each new round-trip sample the moving average takes ([`ewma`]): 0.3, so a
/// step change is 70 % absorbed after 3.4 samples, 97 % after 10.
pub const RTT_ALPHA: f64 = 0.3;

/// The exponentially weighted moving average of round-trip times after `sample`: the sample
/// itself when there is none yet, else `previous + RTT_ALPHA × (sample − previous)`. The one
/// average probe results (health) and the director's time to first byte both keep.
pub fn ewma(previous: Option<Duration>, sample: Duration) -> Duration {
    match previous {
        None => sample,
        Some(p) => {
            let (p, s) = (p.as_nanos() as f64, sample.as_nanos() as f64);
            Duration::from_nanos((p + RTT_ALPHA * (s - p)).round().max(0.0) as u64)
        }
    }
}

/// A state change, for the log and the events ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flip {
    /// State before.
    pub from: HealthState,
    /// State after.
    pub to: HealthState,
}

/// Health of one member.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberHealth {
    /// Probe-derived state.
    pub state: HealthState,
    /// Current run of consecutive successes.
    pub successes: u32,
    /// Current run of consecutive failures.
    pub failures: u32,
    /// The last result, if any.
    pub last_ok: Option<bool>,
    /// Reason of the last failure (kept after recovery, for the status page).
    pub last_reason: Option<Arc<str>>,
    /// When the last failure was seen; `None`: not since Meridian started. Set by the health
    /// writer, for the status page ("last failure 48 s ago").
    pub last_failure: Option<tokio::time::Instant>,
    /// Latency of the last probe.
    pub last_latency: Option<Duration>,
    /// The moving average ([`ewma`]) of passing probes' latency: what `select = "fastest"`
    /// and `steering = "latency"` rank by. `None` until the first passing probe, and again
    /// after the member goes down (the probes that bring it back start it afresh). The health
    /// writer publishes a change only when it moves a member into or out of a band, or
    /// reorders pools ([`crate::health`] stays pure: the writer asks selection).
    pub rtt: Option<Duration>,
    /// The weight share (0-100) the member last reported that answers follow (moves smaller
    /// than the monitor's `weight_step` are not taken); `None`: its configured weight.
    pub share: Option<u8>,
    /// Results in a row without a share report (one is tolerated, see [`MemberHealth::observe`]).
    pub unreported: u32,
    /// Slow start: the member came up at `since` and ramps to full weight over `window`. Set
    /// by the health writer; [`MemberHealth::weight`] reads it with the time passed in.
    pub ramp: Option<Ramp>,
    /// A reload added this member: its first coming up starts a slow start too.
    pub added: bool,
    /// Operator override, if any.
    pub admin: Option<Override>,
    /// The etcd revision that set `admin` in fleet mode (0: set locally or from the state
    /// file), so a fleet write never overwrites a later one.
    pub admin_revision: i64,
    /// In fleet mode, for a monitor whose consensus is not `local`: the state the fleet's
    /// observations decide, which beats `state` (this instance's own observation).
    pub fleet: Option<HealthState>,
    /// True when no monitor probes this member: it is always up.
    pub unmonitored: bool,
    /// When its state (probe-derived or shown) last changed; `None`: not since Meridian
    /// started. Set by the health writer, for the status page.
    pub since: Option<tokio::time::Instant>,
}

impl MemberHealth {
    /// A member with a monitor, before its first probe result.
    pub fn unknown() -> MemberHealth {
        MemberHealth {
            state: HealthState::Unknown,
            successes: 0,
            failures: 0,
            last_ok: None,
            last_reason: None,
            last_failure: None,
            last_latency: None,
            rtt: None,
            share: None,
            unreported: 0,
            ramp: None,
            added: false,
            admin: None,
            admin_revision: 0,
            fleet: None,
            unmonitored: false,
            since: None,
        }
    }

    /// A member without a monitor: up, and stays up.
    pub fn unmonitored() -> MemberHealth {
        MemberHealth {
            state: HealthState::Up,
            unmonitored: true,
            ..MemberHealth::unknown()
        }
    }

    /// Applies one probe result. The first result decides `unknown` at once; after that the
    /// state flips only after `rise` consecutive successes or `fall` consecutive failures.
    ///
    /// A passing result's weight share is taken when it moved at least `weight_step` points
    /// from the one held, or to or from 0 (drain); a member that stops reporting (a result
    /// without a share, a failure included) keeps its share for that one result and falls
    /// back to its configured weight at the second.
    pub fn observe(&mut self, obs: &Observation, t: &Thresholds) -> Option<Flip> {
        self.last_ok = Some(obs.ok);
        self.last_latency = Some(obs.latency);
        if obs.ok {
            self.rtt = Some(ewma(self.rtt, obs.latency));
        }
        match obs.share.filter(|_| obs.ok) {
            Some(share) => {
                self.unreported = 0;
                let moved = match self.share {
                    None => true,
                    Some(held) => {
                        held.abs_diff(share) >= t.weight_step || (held == 0) != (share == 0)
                    }
                };
                if moved {
                    self.share = Some(share);
                }
            }
            None => {
                self.unreported = self.unreported.saturating_add(1);
                if self.unreported >= 2 {
                    self.share = None;
                }
            }
        }
        if obs.ok {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
            self.last_reason = obs.reason.clone();
        }
        let to = match self.state {
            HealthState::Unknown if obs.ok => HealthState::Up,
            HealthState::Unknown => HealthState::Down,
            HealthState::Up if self.failures >= t.fall => HealthState::Down,
            HealthState::Down if self.successes >= t.rise => HealthState::Up,
            s => s,
        };
        if to == self.state {
            return None;
        }
        let flip = Flip {
            from: self.state,
            to,
        };
        self.state = to;
        if to == HealthState::Down {
            self.rtt = None;
        }
        // A new state starts its own streak count from here.
        self.successes = u32::from(obs.ok);
        self.failures = u32::from(!obs.ok);
        Some(flip)
    }

    /// Marks the member down at once on a failure seen outside its probes (a director's
    /// connect refused: a passive check). Its probes bring it back after `rise` successes.
    /// Returns the flip, if the state changed.
    pub fn fail_now(&mut self, reason: Arc<str>) -> Option<Flip> {
        self.last_ok = Some(false);
        self.last_reason = Some(reason);
        self.successes = 0;
        self.failures = self.failures.saturating_add(1);
        if self.state == HealthState::Down {
            return None;
        }
        let flip = Flip {
            from: self.state,
            to: HealthState::Down,
        };
        self.state = HealthState::Down;
        self.rtt = None;
        self.failures = 1;
        Some(flip)
    }

    /// The probe-derived state answers follow: the fleet's decision when there is one, else
    /// this instance's own observation.
    pub fn effective(&self) -> HealthState {
        self.fleet.unwrap_or(self.state)
    }

    /// The weight answers and director picks use at `now`: `configured` × the reported share
    /// / 100 (at least 1 while the share is above 0), or `configured` when nothing is
    /// reported; during a slow start that × the ramp's fraction, rounded up (so at least 1).
    pub fn weight(&self, configured: u32, now: tokio::time::Instant) -> u32 {
        let reported = match self.share {
            None => configured,
            Some(0) => 0,
            Some(share) => {
                let w = u64::from(configured) * u64::from(share) / 100;
                (w as u32).max(u32::from(configured > 0))
            }
        };
        match self.ramping(now) {
            Some(f) => ((f64::from(reported) * f).ceil() as u32).clamp(reported.min(1), reported),
            None => reported,
        }
    }

    /// The fraction of full weight a slow start allows at `now`, while one is in progress.
    pub fn ramping(&self, now: tokio::time::Instant) -> Option<f64> {
        self.ramp.map(|r| r.fraction(now)).filter(|&f| f < 1.0)
    }

    /// May this member be handed out (in DNS answers and director picks)? A reported share of
    /// 0 acts as a drain.
    pub fn usable(&self, unknown_is_up: bool) -> bool {
        if self.share == Some(0) && self.admin != Some(Override::ForceUp) {
            return false;
        }
        match self.admin {
            Some(Override::Drain | Override::ForceDown) => false,
            Some(Override::ForceUp) => true,
            None => match self.effective() {
                HealthState::Up => true,
                HealthState::Down => false,
                HealthState::Unknown => unknown_is_up,
            },
        }
    }

    /// True when an operator took this member out (drained or forced down): it is handed out
    /// nowhere, not even when a service fails open.
    pub fn taken_out(&self) -> bool {
        matches!(self.admin, Some(Override::Drain | Override::ForceDown))
    }

    /// Probes left before this member could flip, when it is on its way: an up member with a
    /// failure streak, or a down member with a success streak. `None` when steady.
    pub fn probes_until_flip(&self, t: &Thresholds) -> Option<u32> {
        if self.admin.is_some() || self.unmonitored {
            return None;
        }
        match self.state {
            HealthState::Up if self.failures > 0 => Some(t.fall.saturating_sub(self.failures)),
            HealthState::Down if self.successes > 0 => Some(t.rise.saturating_sub(self.successes)),
            HealthState::Unknown => Some(1),
            _ => None,
        }
    }

    /// The state shown to operators: overrides first, then the probe state.
    pub fn shown(&self) -> MemberState {
        match (self.admin, self.effective()) {
            (Some(Override::Drain), _) => MemberState::Drained,
            (Some(Override::ForceDown), _) => MemberState::ForcedDown,
            (Some(Override::ForceUp), _) => MemberState::ForcedUp,
            (None, HealthState::Up) => MemberState::Up,
            (None, HealthState::Down) => MemberState::Down,
            (None, HealthState::Unknown) => MemberState::Unknown,
        }
    }
}

/// Members per chunk of a [`HealthTable`]. A table is shared chunk by chunk between the
/// writer and the snapshots it published, so publishing copies one pointer per chunk and a
/// change copies only its own chunk: with 100,000 members, 391 pointers and 256 entries
/// instead of 100,000 entries. 256 measured faster per flip than 64 at that size
/// (`cargo bench --bench health_flip`: median 14 µs against 28 µs); the balance is near
/// √(members × pointer cost / entry cost), a few hundred.
const CHUNK: usize = 256;

/// Health of every member, indexed by [`crate::model::Member::index`].
///
/// Stored as copy-on-write chunks: cloning the table is cheap and shares every chunk, and
/// [`HealthTable::get_mut`] copies the one chunk it touches if a published snapshot still
/// shares it. A published table therefore never changes, and a health flip costs the writer
/// O(members / 256) pointer copies, not a deep copy of every entry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HealthTable {
    /// Full chunks of [`CHUNK`] entries, the last one possibly shorter.
    chunks: Vec<Arc<[MemberHealth]>>,
    len: usize,
}

impl HealthTable {
    /// The table a model starts with: monitored members unknown, the rest up.
    pub fn initial(model: &crate::model::Model) -> HealthTable {
        model
            .members()
            .map(|(pool, _)| match pool.monitor {
                Some(_) => MemberHealth::unknown(),
                None => MemberHealth::unmonitored(),
            })
            .collect()
    }

    /// Health of member `index`. Panics if there is no such member (indices come from the
    /// model the table was built for).
    pub fn get(&self, index: usize) -> &MemberHealth {
        &self.chunks[index / CHUNK][index % CHUNK]
    }

    /// Health of member `index`, to change; copies its chunk first when a published snapshot
    /// shares it. Panics if there is no such member.
    pub fn get_mut(&mut self, index: usize) -> &mut MemberHealth {
        &mut Arc::make_mut(&mut self.chunks[index / CHUNK])[index % CHUNK]
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a model without members.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every member's health, in index order.
    pub fn iter(&self) -> impl Iterator<Item = &MemberHealth> {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// Every member's health, to change (copying every chunk a snapshot shares).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut MemberHealth> {
        self.chunks
            .iter_mut()
            .flat_map(|c| Arc::make_mut(c).iter_mut())
    }
}

impl FromIterator<MemberHealth> for HealthTable {
    fn from_iter<I: IntoIterator<Item = MemberHealth>>(members: I) -> HealthTable {
        let mut table = HealthTable::default();
        let mut members = members.into_iter().peekable();
        while members.peek().is_some() {
            let chunk: Arc<[MemberHealth]> = members.by_ref().take(CHUNK).collect();
            table.len += chunk.len();
            table.chunks.push(chunk);
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    const T: Thresholds = Thresholds {
        rise: 2,
        fall: 3,
        interval: Duration::from_secs(1),
        fast_interval: Duration::from_millis(250),
        weight_step: 10,
    };

    fn ok() -> Observation {
        Observation {
            ok: true,
            reason: None,
            latency: Duration::from_millis(1),
            share: None,
        }
    }

    fn fail() -> Observation {
        Observation {
            ok: false,
            reason: Some("http 503".into()),
            latency: Duration::from_millis(1),
            share: None,
        }
    }

    #[test]
    fn first_result_decides_then_fall_and_rise_are_counted_exactly() {
        let mut m = MemberHealth::unknown();
        assert!(!m.usable(false));
        assert!(m.usable(true));
        assert_eq!(m.observe(&ok(), &T).map(|f| f.to), Some(HealthState::Up));
        assert_eq!(m.observe(&fail(), &T), None);
        assert_eq!(m.probes_until_flip(&T), Some(2));
        assert_eq!(m.observe(&fail(), &T), None);
        assert_eq!(
            m.observe(&ok(), &T),
            None,
            "a success breaks the failure streak"
        );
        assert_eq!(m.observe(&fail(), &T), None);
        assert_eq!(m.observe(&fail(), &T), None);
        let flip = m.observe(&fail(), &T).expect("third consecutive failure");
        assert_eq!((flip.from, flip.to), (HealthState::Up, HealthState::Down));
        assert_eq!(m.last_reason.as_deref(), Some("http 503"));
        assert_eq!(m.observe(&ok(), &T), None);
        assert_eq!(m.probes_until_flip(&T), Some(1));
        assert_eq!(m.observe(&ok(), &T).map(|f| f.to), Some(HealthState::Up));
        assert_eq!(m.probes_until_flip(&T), None);
    }

    #[test]
    fn a_passive_failure_marks_down_at_once_and_probes_bring_it_back() {
        let mut m = MemberHealth::unknown();
        m.observe(&ok(), &T);
        let flip = m
            .fail_now("connect refused (director)".into())
            .expect("flip");
        assert_eq!((flip.from, flip.to), (HealthState::Up, HealthState::Down));
        assert!(!m.usable(false));
        assert_eq!(m.last_reason.as_deref(), Some("connect refused (director)"));
        assert_eq!(m.fail_now("again".into()), None, "already down");
        assert_eq!(m.observe(&ok(), &T), None);
        assert_eq!(m.observe(&ok(), &T).map(|f| f.to), Some(HealthState::Up));
    }

    #[test]
    fn alternating_results_never_flap() {
        let mut m = MemberHealth::unknown();
        m.observe(&ok(), &T);
        for _ in 0..100 {
            assert_eq!(m.observe(&fail(), &T), None);
            assert_eq!(m.observe(&ok(), &T), None);
        }
        assert_eq!(m.state, HealthState::Up);
    }

    #[test]
    fn a_change_copies_only_its_chunk_and_never_a_published_table() {
        let n = 3 * CHUNK + 8;
        let published: HealthTable = (0..n).map(|_| MemberHealth::unknown()).collect();
        assert_eq!(published.len(), n);
        let mut writer = published.clone();
        let i = 2 * CHUNK + 2;
        writer.get_mut(i).observe(&fail(), &T);
        assert_eq!(
            published.get(i).state,
            HealthState::Unknown,
            "published is frozen"
        );
        assert_eq!(writer.get(i).state, HealthState::Down);
        let down = writer.iter().filter(|m| m.state == HealthState::Down);
        assert_eq!(down.count(), 1);
        let shared = |c: usize| Arc::ptr_eq(&published.chunks[c], &writer.chunks[c]);
        assert_eq!(
            (shared(0), shared(1), shared(2), shared(3)),
            (true, true, false, true),
            "only the changed member's chunk was copied"
        );
        assert_eq!(writer.chunks[3].len(), 8, "the last chunk holds the rest");
        assert_ne!(published, writer);
        *writer.get_mut(i) = MemberHealth::unknown();
        assert_eq!(published, writer, "equal by content, whatever the sharing");
        assert!(HealthTable::default().is_empty());
    }

    #[test]
    fn overrides_beat_probes() {
        let mut m = MemberHealth::unknown();
        m.observe(&ok(), &T);
        m.admin = Some(Override::Drain);
        assert!(!m.usable(true));
        m.admin = Some(Override::ForceDown);
        assert!(!m.usable(true));
        m.admin = None;
        for _ in 0..3 {
            m.observe(&fail(), &T);
        }
        assert!(!m.usable(true));
        m.admin = Some(Override::ForceUp);
        assert!(m.usable(false));
        assert_eq!(m.shown(), MemberState::ForcedUp);
    }

    fn reports(share: u8) -> Observation {
        Observation {
            share: Some(share),
            ..ok()
        }
    }

    #[test]
    fn reported_shares_scale_the_weight_by_steps_and_fall_back_after_one_silent_result() {
        let mut m = MemberHealth::unknown();
        m.observe(&ok(), &T);
        assert_eq!((m.share, m.weight(200, Instant::now())), (None, 200));
        m.observe(&reports(50), &T);
        assert_eq!((m.share, m.weight(200, Instant::now())), (Some(50), 100));
        // Moves under weight_step (10) are not taken; a step is.
        m.observe(&reports(55), &T);
        m.observe(&reports(41), &T);
        assert_eq!(m.share, Some(50));
        m.observe(&reports(60), &T);
        assert_eq!(m.share, Some(60));
        // 1 % of weight 10 still counts as weight 1; 0 % drains whatever the step.
        m.observe(&reports(1), &T);
        assert_eq!(m.weight(10, Instant::now()), 1);
        m.observe(&reports(0), &T);
        assert_eq!(m.weight(10, Instant::now()), 0);
        assert!(!m.usable(true) && !m.taken_out());
        m.admin = Some(Override::ForceUp);
        assert!(m.usable(true), "force-up beats a reported drain");
        m.admin = None;
        m.observe(&reports(5), &T);
        assert_eq!(m.share, Some(5), "leaving 0 is always taken");
        // Silence: one result without a share keeps it, the second falls back.
        m.observe(&ok(), &T);
        assert_eq!(m.share, Some(5));
        m.observe(&fail(), &T);
        assert_eq!(m.share, None);
        assert_eq!(m.weight(10, Instant::now()), 10);
        // A failing result's share is ignored.
        m.observe(
            &Observation {
                share: Some(30),
                ..fail()
            },
            &T,
        );
        assert_eq!(m.share, None);
    }

    #[test]
    fn the_rtt_average_follows_passing_probes_and_restarts_after_down() {
        let ms = Duration::from_millis;
        assert_eq!(
            ewma(None, ms(10)),
            ms(10),
            "the first sample is the average"
        );
        // From 1 ms to 30 ms: 9.7 ms after one sample, 29.2 ms after ten.
        let mut avg = ms(1);
        let mut after = Vec::new();
        for _ in 0..10 {
            avg = ewma(Some(avg), ms(30));
            after.push(avg.as_secs_f64() * 1000.0);
        }
        assert!((after[0] - 9.7).abs() < 0.01, "{after:?}");
        assert!((after[9] - 29.18).abs() < 0.01, "{after:?}");
        let mut m = MemberHealth::unknown();
        let probe = |ok: bool, latency: u64| Observation {
            latency: ms(latency),
            ..if ok { self::ok() } else { fail() }
        };
        m.observe(&probe(true, 10), &T);
        m.observe(&probe(true, 20), &T);
        assert_eq!(m.rtt, Some(ms(13)));
        m.observe(&probe(false, 1000), &T);
        assert_eq!(m.rtt, Some(ms(13)), "a failure's time is no round trip");
        m.observe(&probe(false, 1000), &T);
        m.observe(&probe(false, 1000), &T);
        assert_eq!((m.state, m.rtt), (HealthState::Down, None), "down forgets");
        m.observe(&probe(true, 4), &T);
        assert_eq!(
            m.rtt,
            Some(ms(4)),
            "the probes that bring it back start afresh"
        );
        m.observe(&probe(true, 4), &T);
        m.fail_now("connect refused".into());
        assert_eq!(m.rtt, None);
    }

    #[test]
    fn slow_start_ramps_linearly_from_a_small_share() {
        let since = Instant::now();
        let mut m = MemberHealth::unmonitored();
        m.ramp = Some(Ramp {
            since,
            window: Duration::from_secs(30),
        });
        let at = |s: u64| since + Duration::from_secs(s);
        assert_eq!(m.weight(100, at(0)), 1, "a small share at first, never 0");
        assert_eq!(m.weight(100, at(3)), 10);
        assert_eq!(m.weight(100, at(15)), 50);
        assert_eq!(m.weight(100, at(29)), 97);
        assert_eq!(m.weight(100, at(30)), 100);
        assert_eq!(m.ramping(at(30)), None);
        // The ramp scales the reported weight; a drain stays a drain.
        m.share = Some(50);
        assert_eq!(m.weight(100, at(15)), 25);
        m.share = Some(0);
        assert_eq!(m.weight(100, at(15)), 0);
    }
}
