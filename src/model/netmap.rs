//! Per-network steering tables: a `geo` or `proximity` service's pool order for every network
//! of the GeoIP database, decided once when the model is built, so a query does a short search
//! (IPv4: among the ranges of its /16) instead of a GeoIP lookup and a record decode. Adjacent networks with the same pool
//! order are merged, which also gives the widest ECS scope that is correct: the scope a lookup
//! reports is the widest aligned network around the address whose every address gets the same
//! order. Health is not in the table (a query still takes the first usable pool of the order),
//! so it never changes between reloads.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use smallvec::SmallVec;

use super::service::GeoMap;
use super::{Pool, PoolId};
use crate::geo::{Continent, Coords, Country, Location, distance_km};

/// What a client's pool order was decided by, as the table records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Matched {
    /// A `map.nets` entry.
    Net(IpNet),
    /// The client's country has a map entry.
    Country(Country),
    /// The client's continent has a map entry.
    Continent(Continent),
    /// Located, but nothing in the map matches: the `default` order.
    Unmapped,
    /// The location is unknown (or, for proximity, has no coordinates): the default order.
    Unknown,
    /// Nearest pool first.
    Distance,
}

/// The pool order of one network and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The service's pools, most preferred first.
    pub pools: Vec<PoolId>,
    /// Why.
    pub matched: Matched,
}

/// What a lookup in a [`NetTable`] gives.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'t> {
    /// The order of the address's network.
    pub outcome: &'t Outcome,
    /// The prefix length of the widest network around the address whose every address gets
    /// the same pool order.
    pub scope: u8,
}

/// An address family's integers: `u32` for IPv4, `u128` for IPv6.
trait Key: Copy + Ord + std::fmt::Debug {
    const MAX: Self;
    fn zero() -> Self;
    fn prev(self) -> Self;
    fn next(self) -> Self;
    fn of(net: IpNet) -> Option<(Self, Self)>;
    /// The widest aligned network that starts at `self` and ends at or before `end`: its last
    /// address and prefix length.
    fn block(self, end: Self) -> (Self, u8);
    /// The top 16 bits, for the family that has a /16 index (IPv4).
    fn top16(self) -> Option<usize>;
}

impl Key for u32 {
    const MAX: u32 = u32::MAX;
    fn zero() -> u32 {
        0
    }
    fn prev(self) -> u32 {
        self - 1
    }
    fn next(self) -> u32 {
        self + 1
    }
    fn of(net: IpNet) -> Option<(u32, u32)> {
        match net {
            IpNet::V4(n) => Some((n.network().into(), n.broadcast().into())),
            IpNet::V6(_) => None,
        }
    }
    fn block(self, end: u32) -> (u32, u8) {
        let span = u64::from(end - self) + 1;
        let bits = self.trailing_zeros().min(span.ilog2());
        (self + ((1u64 << bits) - 1) as u32, (32 - bits) as u8)
    }
    fn top16(self) -> Option<usize> {
        Some((self >> 16) as usize)
    }
}

impl Key for u128 {
    const MAX: u128 = u128::MAX;
    fn zero() -> u128 {
        0
    }
    fn prev(self) -> u128 {
        self - 1
    }
    fn next(self) -> u128 {
        self + 1
    }
    fn of(net: IpNet) -> Option<(u128, u128)> {
        match net {
            IpNet::V6(n) => Some((n.network().into(), n.broadcast().into())),
            IpNet::V4(_) => None,
        }
    }
    fn block(self, end: u128) -> (u128, u8) {
        let bits = match (end - self).checked_add(1) {
            Some(span) => self.trailing_zeros().min(span.ilog2()),
            // From 0 to the last address: the whole space.
            None => 128,
        };
        let last = self + u128::MAX.checked_shr(128 - bits).unwrap_or(0);
        (last, (128 - bits) as u8)
    }
    fn top16(self) -> Option<usize> {
        None
    }
}

/// One family's table: disjoint ranges covering the whole address space, in address order.
/// A range lies inside one aligned network of its run (the maximal stretch of neighbouring
/// ranges with the same pools, cut into the fewest aligned networks), so its ECS scope is that
/// network's prefix length for every address in it, and a lookup reads the scope with the
/// outcome instead of computing it.
#[derive(Debug, Clone, Default)]
struct Ranges<K> {
    /// Per range, its first address and its leaf, side by side: the cache line the search
    /// ends in holds the answer.
    cells: Vec<(K, u32)>,
    /// Every [`BLOCK`]-th start (`heads[j] = cells[j * BLOCK].0`), searched first.
    heads: Vec<K>,
    /// The distinct (outcome, scope) pairs, a few thousand at most.
    leaves: Vec<Leaf>,
    /// For IPv4: `index[h]` is the first range starting in the /16 `h` or after it (65,537
    /// entries), so a search only looks at the ranges of one /16. Empty for IPv6, which is
    /// searched whole.
    index: Vec<u32>,
}

/// Ranges per block of the two-level search.
const BLOCK: usize = 8;

/// What a range answers: its outcome and the ECS scope of every address in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Leaf {
    outcome: u32,
    scope: u8,
}

impl<K: Key> Ranges<K> {
    fn lookup(&self, addr: K) -> (u32, u8) {
        let leaf = self.leaves[self.cells[self.position(addr)].1 as usize];
        (leaf.outcome, leaf.scope)
    }

    /// The last range starting at or before `addr` (the first starts at 0). The search reads
    /// the block heads, which stay in cache, then one block of [`BLOCK`] starts: two or three
    /// cache lines where a plain binary search would touch one per step.
    fn position(&self, addr: K) -> usize {
        let (lo, hi) = match K::top16(addr) {
            Some(h) if !self.index.is_empty() => {
                (self.index[h] as usize, self.index[h + 1] as usize)
            }
            _ => (0, self.cells.len()),
        };
        // The heads (every BLOCK-th start) within lo..hi, and how many are at or before addr.
        let (first, end) = (lo.div_ceil(BLOCK), hi.div_ceil(BLOCK));
        let heads = self.heads[first..end].partition_point(|&s| s <= addr);
        let (from, to) = match heads {
            0 => (lo, hi.min(first * BLOCK)),
            n => {
                let block = (first + n - 1) * BLOCK;
                (block, hi.min(block + BLOCK))
            }
        };
        let within = self.cells[from..to].partition_point(|&(s, _)| s <= addr);
        // None in this /16 at or before addr: the range that reaches into it.
        (from + within).max(1) - 1
    }

    /// Builds from disjoint, sorted, contiguous (start, end, outcome) segments covering the
    /// whole space; `same_pools(a, b)` says whether two outcomes order the pools alike.
    fn from_segments(segments: Vec<(K, K, u32)>, same_pools: impl Fn(u32, u32) -> bool) -> Self {
        // Neighbours with the same outcome become one range; runs are (start, end, first range).
        let mut ranges: Vec<(K, K, u32)> = Vec::with_capacity(segments.len());
        let mut runs: Vec<(K, K, usize)> = Vec::new();
        for (start, end, outcome) in segments {
            match (ranges.last_mut(), runs.last_mut()) {
                (Some(last), Some(run)) if last.2 == outcome => {
                    last.1 = end;
                    run.1 = end;
                    continue;
                }
                (Some(last), Some(run)) if same_pools(last.2, outcome) => run.1 = end,
                _ => runs.push((start, end, ranges.len())),
            }
            ranges.push((start, end, outcome));
        }
        // Each range cut where its run's aligned networks meet; neighbouring pieces with the
        // same leaf stay one.
        let mut cells: Vec<(K, u32)> = Vec::with_capacity(ranges.len());
        let mut leaves = Vec::new();
        let mut leaf_ids: HashMap<Leaf, u32> = HashMap::new();
        for &(run_start, run_end, first) in &runs {
            let mut r = first;
            let mut at = run_start;
            let (mut block_end, mut scope) = run_start.block(run_end);
            loop {
                let (_, range_end, outcome) = ranges[r];
                let end = range_end.min(block_end);
                let leaf = Leaf { outcome, scope };
                let id = *leaf_ids.entry(leaf).or_insert_with(|| {
                    leaves.push(leaf);
                    (leaves.len() - 1) as u32
                });
                if cells.last().map(|c| c.1) != Some(id) {
                    cells.push((at, id));
                }
                if end == run_end {
                    break;
                }
                at = end.next();
                if end == range_end {
                    r += 1;
                }
                if end == block_end {
                    (block_end, scope) = at.block(run_end);
                }
            }
        }
        cells.shrink_to_fit();
        let index = if K::top16(K::zero()).is_some() {
            let mut index = Vec::with_capacity(65_537);
            let mut at = 0;
            for h in 0..=65_536usize {
                while at < cells.len() && K::top16(cells[at].0).is_some_and(|t| t < h) {
                    at += 1;
                }
                index.push(at as u32);
            }
            index
        } else {
            Vec::new()
        };
        let heads = cells.iter().step_by(BLOCK).map(|c| c.0).collect();
        Ranges {
            cells,
            heads,
            leaves,
            index,
        }
    }

    fn bytes(&self) -> usize {
        self.cells.capacity() * size_of::<(K, u32)>()
            + self.heads.capacity() * size_of::<K>()
            + self.leaves.capacity() * size_of::<Leaf>()
            + self.index.capacity() * size_of::<u32>()
    }
}

/// A location without its network, as locations are interned: country, continent and the
/// coordinates' bits.
type Place = (Option<Country>, Option<Continent>, Option<(u64, u64)>);

/// The GeoIP database's networks in both families, with interned locations: what every table
/// of one model is built from.
pub(super) struct Networks {
    v4: Vec<(u32, u32, Option<u32>)>,
    v6: Vec<(u128, u128, Option<u32>)>,
    /// IPv6 networks that find the IPv4 data (see [`crate::geo::GeoDb::ipv4_aliases`]), with
    /// their prefix length.
    aliases: Vec<(u128, u128, u8)>,
    locations: Vec<Location>,
}

impl Networks {
    /// No database: every address is unknown.
    pub(super) fn none() -> Networks {
        Networks {
            v4: Vec::new(),
            v6: Vec::new(),
            aliases: Vec::new(),
            locations: Vec::new(),
        }
    }

    /// Reads the database's networks (see [`crate::geo::GeoDb::networks`]).
    pub(super) fn read(db: &crate::geo::GeoDb) -> Result<Networks, maxminddb::MaxMindDbError> {
        let mut locations = Vec::new();
        // Locations compare without the network: one id per distinct place.
        let mut ids: HashMap<Place, u32> = HashMap::new();
        let mut intern = |loc: Option<Location>| {
            let loc = loc?;
            let key = (
                loc.country,
                loc.continent,
                loc.coords.map(|c| (c.lat.to_bits(), c.lon.to_bits())),
            );
            Some(*ids.entry(key).or_insert_with(|| {
                locations.push(loc);
                (locations.len() - 1) as u32
            }))
        };
        let mut v4 = Vec::new();
        db.for_each_network(false, |net, loc| {
            if let Some((s, e)) = u32::of(net) {
                v4.push((s, e, intern(loc)));
            }
        })?;
        let mut v6 = Vec::new();
        db.for_each_network(true, |net, loc| {
            if let Some((s, e)) = u128::of(net) {
                v6.push((s, e, intern(loc)));
            }
        })?;
        // The tree gives address order; sort in case a database's does not.
        v4.sort_unstable_by_key(|&(s, _, _)| s);
        v6.sort_unstable_by_key(|&(s, _, _)| s);
        let aliases = db
            .ipv4_aliases()?
            .into_iter()
            .map(|n| (n.network().into(), n.broadcast().into(), n.prefix_len()))
            .collect();
        Ok(Networks {
            v4,
            v6,
            aliases,
            locations,
        })
    }

    /// How many database networks there are.
    pub(super) fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
}

/// Marks an IPv6 range whose addresses find the IPv4 data; the low bits are the alias's prefix
/// length.
const ALIAS: u32 = 1 << 31;

/// A service's pool order for every address, IPv4 and IPv6.
#[derive(Debug, Clone, Default)]
pub struct NetTable {
    v4: Ranges<u32>,
    v6: Ranges<u128>,
    /// The IPv4 table without the IPv4 `nets` entries, for IPv6 addresses that find the IPv4
    /// data (a `nets` entry of one family never matches an address of the other); only when
    /// there are such entries and aliases.
    v4_aliased: Option<Ranges<u32>>,
    outcomes: Vec<Outcome>,
}

/// How a service decides a location's order: its `geo` map or the distances to its pools.
pub(super) enum Policy<'a> {
    /// `steering = "geo"`.
    Geo(&'a GeoMap),
    /// `steering = "proximity"` over these pools (config order) of the model's `pools`.
    Proximity(&'a [PoolId], &'a [Pool]),
}

impl Policy<'_> {
    fn decide(&self, loc: Option<&Location>) -> Outcome {
        match self {
            Policy::Geo(map) => {
                let (pools, matched) = map.for_location(loc);
                Outcome {
                    pools: pools.to_vec(),
                    matched,
                }
            }
            Policy::Proximity(service_pools, pools) => match loc.and_then(|l| l.coords) {
                Some(here) => Outcome {
                    pools: by_distance(pools, service_pools, here).to_vec(),
                    matched: Matched::Distance,
                },
                None => Outcome {
                    pools: service_pools.to_vec(),
                    matched: Matched::Unknown,
                },
            },
        }
    }

    fn nets(&self) -> &[(IpNet, Vec<PoolId>)] {
        match self {
            Policy::Geo(map) => &map.nets,
            Policy::Proximity(..) => &[],
        }
    }
}

/// `service_pools` nearest `here` first (great-circle distance to each pool's location);
/// equally distant pools, and pools without a location (last), keep config order. The one
/// ranking of `proximity` steering, per query or in a table.
pub fn by_distance(
    pools: &[Pool],
    service_pools: &[PoolId],
    here: Coords,
) -> SmallVec<[PoolId; 8]> {
    let mut ranked: SmallVec<[(f64, PoolId); 8]> = service_pools
        .iter()
        .map(|&id| {
            let d = pools[id.0 as usize]
                .location
                .map_or(f64::INFINITY, |there| distance_km(here, there));
            (d, id)
        })
        .collect();
    // Stable: equally distant pools keep config order.
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
    ranked.into_iter().map(|(_, id)| id).collect()
}

/// Interns outcomes and pool lists while a table is built.
#[derive(Default)]
struct Outcomes {
    list: Vec<Outcome>,
    ids: HashMap<(Vec<PoolId>, Matched), u32>,
    /// Per outcome: the id of its pool list, which merging compares.
    pools_of: Vec<u32>,
    pool_ids: HashMap<Vec<PoolId>, u32>,
}

impl Outcomes {
    fn id(&mut self, o: Outcome) -> u32 {
        if let Some(&id) = self.ids.get(&(o.pools.clone(), o.matched)) {
            return id;
        }
        let next = self.pool_ids.len() as u32;
        let pools = *self.pool_ids.entry(o.pools.clone()).or_insert(next);
        let id = self.list.len() as u32;
        self.ids.insert((o.pools.clone(), o.matched), id);
        self.pools_of.push(pools);
        self.list.push(o);
        id
    }
}

impl NetTable {
    /// Builds `policy`'s table over the database's `networks`.
    pub(super) fn build(networks: &Networks, policy: &Policy<'_>) -> NetTable {
        let mut outcomes = Outcomes::default();
        let unknown = outcomes.id(policy.decide(None));
        let by_location: Vec<u32> = networks
            .locations
            .iter()
            .map(|loc| outcomes.id(policy.decide(Some(loc))))
            .collect();
        let of = |loc: Option<u32>| loc.map_or(unknown, |l| by_location[l as usize]);
        let mut nets4 = Vec::new();
        let mut nets6 = Vec::new();
        for (net, pools) in policy.nets() {
            let id = outcomes.id(Outcome {
                pools: pools.clone(),
                matched: Matched::Net(*net),
            });
            match *net {
                IpNet::V4(_) => nets4.push((*net, id)),
                IpNet::V6(_) => nets6.push((*net, id)),
            }
        }
        let v4 = segments(&networks.v4, of, unknown, &[], &nets4);
        // IPv6 addresses that find the IPv4 data are looked up in the IPv4 table: a marker
        // with the alias's prefix length, under the `nets` entries.
        let aliases: Vec<(u128, u128, u32)> = networks
            .aliases
            .iter()
            .map(|&(s, e, len)| (s, e, ALIAS | u32::from(len)))
            .collect();
        let v6 = segments(&networks.v6, of, unknown, &aliases, &nets6);
        let pools_of = &outcomes.pools_of;
        let same = |a: u32, b: u32| {
            a & ALIAS == 0 && b & ALIAS == 0 && pools_of[a as usize] == pools_of[b as usize]
        };
        let v4_aliased = (!nets4.is_empty() && !aliases.is_empty())
            .then(|| Ranges::from_segments(segments(&networks.v4, of, unknown, &[], &[]), same));
        NetTable {
            v4_aliased,
            v4: Ranges::from_segments(v4, same),
            v6: Ranges::from_segments(v6, same),
            outcomes: outcomes.list,
        }
    }

    /// The order for `addr` (IPv4-mapped IPv6 addresses are IPv6 here, as in the database).
    pub fn lookup(&self, addr: IpAddr) -> Hit<'_> {
        let (outcome, scope) = match addr {
            IpAddr::V4(a) => self.v4.lookup(u32::from(a)),
            IpAddr::V6(a) => {
                let a = u128::from(a);
                match self.v6.lookup(a) {
                    (marker, scope) if marker & ALIAS != 0 => {
                        // The bits after the alias's prefix are the IPv4 address; the answer
                        // holds where both the alias range and the IPv4 network allow.
                        let len = marker & !ALIAS;
                        let v4 = self.v4_aliased.as_ref().unwrap_or(&self.v4);
                        let (outcome, v4_scope) = v4.lookup((a << len >> 96) as u32);
                        (
                            outcome,
                            scope.max((u32::from(v4_scope) + len).min(128) as u8),
                        )
                    }
                    found => found,
                }
            }
        };
        Hit {
            outcome: &self.outcomes[outcome as usize],
            scope,
        }
    }

    /// How many ranges the table holds (IPv4 and IPv6), after merging.
    pub fn ranges(&self) -> usize {
        self.v4.cells.len()
            + self.v6.cells.len()
            + self.v4_aliased.as_ref().map_or(0, |r| r.cells.len())
    }

    /// The memory the table's arrays take, in bytes (the outcomes' pool lists aside).
    pub fn bytes(&self) -> usize {
        self.v4.bytes() + self.v6.bytes() + self.v4_aliased.as_ref().map_or(0, Ranges::bytes)
    }
}

/// What building a model's tables took, for the startup and reload summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableStats {
    /// Distinct tables (services that decide alike share one).
    pub tables: usize,
    /// The database networks they were built from (IPv4 and IPv6, aliases included).
    pub networks: usize,
    /// Ranges over all tables, after merging.
    pub ranges: usize,
    /// Memory of all tables' arrays.
    pub bytes: usize,
    /// Time to read the database's networks and build the tables.
    pub millis: u64,
}

/// Builds the table of every `geo` and `proximity` service of `services` from `db` (none: only
/// `nets` entries match) and attaches it, one table per distinct policy. `None` (and no table
/// attached) when the database cannot be walked: then queries look clients up as before.
pub(super) fn attach(
    db: Option<&crate::geo::GeoDb>,
    services: &mut [super::Service],
    pools: &[Pool],
) -> Option<TableStats> {
    use super::Steering;
    use std::sync::Arc;

    let started = std::time::Instant::now();
    let wanted = |s: &super::Service| matches!(s.steering, Steering::Geo(_) | Steering::Proximity);
    if !services.iter().any(wanted) {
        return None;
    }
    let networks = match db {
        Some(db) => Networks::read(db).ok()?,
        None => Networks::none(),
    };
    let mut built: HashMap<String, Arc<NetTable>> = HashMap::new();
    for service in services.iter_mut().filter(|s| wanted(s)) {
        // Services with the same map (or the same proximity pools) decide alike.
        let (key, policy) = match &service.steering {
            Steering::Geo(map) => {
                let mut countries: Vec<_> = map.countries.iter().collect();
                countries.sort_by_key(|(c, _)| **c);
                let mut continents: Vec<_> = map.continents.iter().collect();
                continents.sort_by_key(|(c, _)| c.as_str());
                let key = format!(
                    "geo {:?} {countries:?} {continents:?} {:?}",
                    map.nets, map.default
                );
                (key, Policy::Geo(map))
            }
            Steering::Proximity => (
                format!("proximity {:?}", service.pools),
                Policy::Proximity(&service.pools, pools),
            ),
            _ => continue,
        };
        let table = built
            .entry(key)
            .or_insert_with(|| Arc::new(NetTable::build(&networks, &policy)))
            .clone();
        service.networks = Some(table);
    }
    Some(TableStats {
        tables: built.len(),
        networks: networks.len(),
        ranges: built.values().map(|t| t.ranges()).sum(),
        bytes: built.values().map(|t| t.bytes()).sum(),
        millis: started.elapsed().as_millis() as u64,
    })
}

/// The whole space of one family as contiguous (start, end, outcome) segments: the database's
/// networks (gaps: `unknown`), the IPv4 aliases over them, and the `nets` entries on top, a
/// longer entry winning inside a shorter one.
fn segments<K: Key>(
    db: &[(K, K, Option<u32>)],
    outcome_of: impl Fn(Option<u32>) -> u32,
    unknown: u32,
    aliases: &[(K, K, u32)],
    nets: &[(IpNet, u32)],
) -> Vec<(K, K, u32)> {
    let mut base = Vec::with_capacity(db.len() * 2 + 1);
    let mut next = Some(K::zero());
    for &(start, end, loc) in db {
        let Some(at) = next else { break };
        if start < at {
            // Overlaps what is already covered (a database never does): skip it.
            continue;
        }
        if start > at {
            base.push((at, start.prev(), unknown));
        }
        base.push((start, end, outcome_of(loc)));
        next = (end != K::MAX).then(|| end.next());
    }
    if let Some(at) = next {
        base.push((at, K::MAX, unknown));
    }
    for &(start, end, marker) in aliases {
        base = overlay(base, start, end, marker);
    }
    // Shortest first, so a longer entry overwrites the shorter one it sits in.
    let mut nets: Vec<(K, K, u32, u8)> = nets
        .iter()
        .filter_map(|&(net, id)| K::of(net).map(|(s, e)| (s, e, id, net.prefix_len())))
        .collect();
    nets.sort_by_key(|&(_, _, _, len)| len);
    for (start, end, id, _) in nets {
        base = overlay(base, start, end, id);
    }
    base
}

/// `segments` with `start..=end` replaced by `outcome`.
fn overlay<K: Key>(segments: Vec<(K, K, u32)>, start: K, end: K, outcome: u32) -> Vec<(K, K, u32)> {
    let mut out = Vec::with_capacity(segments.len() + 2);
    let mut placed = false;
    for (s, e, o) in segments {
        if e < start || s > end {
            if s > end && !placed {
                out.push((start, end, outcome));
                placed = true;
            }
            out.push((s, e, o));
            continue;
        }
        if s < start {
            out.push((s, start.prev(), o));
        }
        if !placed {
            out.push((start, end, outcome));
            placed = true;
        }
        if e > end {
            out.push((end.next(), e, o));
        }
    }
    if !placed {
        out.push((start, end, outcome));
    }
    out
}

#[cfg(test)]
mod tests;
