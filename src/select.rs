//! Steering and selection: which pool a service answers from and which of its members go in the
//! answer. Pure functions over the model, the health table, the client and a random source, so
//! the DNS path, the director and `explain` make the same choice and tests can fix the
//! randomness.
//!
//! Steering first ranks the service's pools for the client ([`order`]), then takes the first
//! pool in that order with enough usable members (`min_healthy`; `weighted` draws by pool
//! weight instead). Selection then picks members inside that pool. Both report how much of the
//! client's address the decision depended on, which becomes the EDNS Client Subnet scope
//! (RFC 7871 §7.2.1).

pub mod fastest;

use std::cell::OnceCell;
use std::net::IpAddr;

use ipnet::IpNet;
use rand::Rng;
use smallvec::SmallVec;
use tokio::time::Instant;

use crate::geo::Location;
use crate::hash::{network_key, rendezvous};
use crate::health::HealthTable;
use crate::model::{
    Matched, Member, Model, Pool, PoolId, Selection, Service, Steering, WhenAllDown, by_distance,
};

/// The address family a query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// A records.
    V4,
    /// AAAA records.
    V6,
}

impl Family {
    /// The family a query type asks for: A is IPv4, AAAA IPv6, anything else neither.
    pub fn of_qtype(qtype: u16) -> Option<Family> {
        match qtype {
            1 => Some(Family::V4),
            28 => Some(Family::V6),
            _ => None,
        }
    }

    /// Does `member`'s address have this family? A hostname member (one CNAME) answers
    /// either.
    pub fn matches(self, member: &Member) -> bool {
        matches!(
            (self, member.address.ip()),
            (Family::V4, Some(IpAddr::V4(_))) | (Family::V6, Some(IpAddr::V6(_))) | (_, None)
        )
    }
}

/// Who is asking: the address steering decides by. For DNS it is the EDNS Client Subnet
/// address when the query carries one, else the resolver's source address; for the director,
/// the connecting client's address. Its location is looked up at most once, and only when a
/// decision needs it.
#[derive(Debug, Clone)]
pub struct Client {
    addr: IpAddr,
    source_prefix: Option<u8>,
    location: OnceCell<Option<Location>>,
}

/// The network that `hash` steering and selection key on when the client gave no narrower
/// ECS prefix: a /24 for IPv4 and a /56 for IPv6, the usual size of one customer's network.
const HASH_PREFIX_V4: u8 = 24;
const HASH_PREFIX_V6: u8 = 56;

impl Client {
    /// The client at `addr` (a resolver or a connecting client), all of whose address counts.
    pub fn from_addr(_model: &Model, addr: IpAddr) -> Client {
        Client {
            // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d; they are IPv4 clients.
            addr: addr.to_canonical(),
            source_prefix: None,
            location: OnceCell::new(),
        }
    }

    /// A client known by an EDNS Client Subnet option: `addr` with `source_prefix`
    /// significant bits (RFC 7871 §6).
    pub fn from_subnet(addr: IpAddr, source_prefix: u8) -> Client {
        Client {
            addr,
            source_prefix: Some(source_prefix),
            location: OnceCell::new(),
        }
    }

    /// The address decisions are based on.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The ECS source prefix, when the client came from an ECS option.
    pub fn source_prefix(&self) -> Option<u8> {
        self.source_prefix
    }

    /// How many leading bits of [`Client::addr`] are meaningful: the ECS source prefix, or the
    /// whole address.
    pub fn significant_bits(&self) -> u8 {
        self.source_prefix.unwrap_or(match self.addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        })
    }

    /// The client's location in the model's GeoIP database, if it has one and knows the
    /// address. Looked up on first use.
    pub fn location(&self, model: &Model) -> Option<&Location> {
        self.location
            .get_or_init(|| model.geo.as_ref().and_then(|db| db.lookup(self.addr)))
            .as_ref()
    }

    /// The network hashing keys on: the address cut to a /24 (IPv4) or /56 (IPv6), or to the
    /// ECS source prefix when that is narrower.
    pub fn hash_network(&self) -> IpNet {
        let cap = match self.addr {
            IpAddr::V4(_) => HASH_PREFIX_V4,
            IpAddr::V6(_) => HASH_PREFIX_V6,
        };
        let prefix = self.significant_bits().min(cap);
        IpNet::new(self.addr, prefix)
            .expect("prefix within the family's length")
            .trunc()
    }
}

/// Why steering ranked the pools the way it did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Basis {
    /// The service's configured order (`failover`, `weighted`): the client did not matter.
    Config,
    /// A `map.nets` entry matched the client.
    Net(IpNet),
    /// The client's country has an entry.
    Country(crate::geo::Country),
    /// The client's continent has an entry.
    Continent(crate::geo::Continent),
    /// The client is located but nothing in the map matches: the `default` order.
    Unmapped,
    /// The client's location is unknown (or has no coordinates): the default order.
    Unknown,
    /// Nearest pool first.
    Distance,
    /// Ranked by a hash of this network.
    Hash(IpNet),
    /// Ranked by the pools' probe round-trip times (`steering = "latency"`).
    Latency,
}

impl From<Matched> for Basis {
    fn from(m: Matched) -> Basis {
        match m {
            Matched::Net(net) => Basis::Net(net),
            Matched::Country(c) => Basis::Country(c),
            Matched::Continent(c) => Basis::Continent(c),
            Matched::Unmapped => Basis::Unmapped,
            Matched::Unknown => Basis::Unknown,
            Matched::Distance => Basis::Distance,
        }
    }
}

/// The pools of a service ranked for one client.
#[derive(Debug, Clone)]
pub struct Order {
    /// Most preferred first (inline up to 8 pools: no allocation per query).
    pub pools: SmallVec<[PoolId; 8]>,
    /// Why.
    pub basis: Basis,
    /// How many leading bits of the client's address the ranking depended on (0 = none).
    pub scope: u8,
}

/// Ranks `service`'s pools for `client`. Pure; health only matters to `latency` steering
/// (the pools' round-trip times, [`fastest::rank_pools`]). `geo` and `proximity` steering read
/// the service's per-network table when it has one (a short search, the scope as wide as
/// the merged network), else look the client up in the GeoIP database.
pub fn order<'m>(
    model: &'m Model,
    health: &HealthTable,
    service: &'m Service,
    client: &Client,
) -> Order {
    let listed = |pools: &'m [PoolId], basis, scope| Order {
        pools: SmallVec::from_slice(pools),
        basis,
        scope,
    };
    match &service.steering {
        Steering::Failover | Steering::Weighted => listed(&service.pools, Basis::Config, 0),
        Steering::Latency(band) => Order {
            pools: fastest::rank_pools(model, health, &service.pools, *band),
            basis: Basis::Latency,
            scope: 0,
        },
        Steering::Geo(_) | Steering::Proximity if service.networks.is_some() => {
            let table = service.networks.as_deref().expect("matched on it");
            let hit = table.lookup(client.addr());
            Order {
                pools: SmallVec::from_slice(&hit.outcome.pools),
                basis: hit.outcome.matched.into(),
                scope: hit.scope,
            }
        }
        Steering::Geo(map) => {
            let addr = client.addr();
            if let Some((net, pools)) = map.nets.iter().find(|(net, _)| net.contains(&addr)) {
                return listed(pools, Basis::Net(*net), net.prefix_len());
            }
            let loc = client.location(model);
            let (pools, matched) = map.for_location(loc);
            let Some(loc) = loc else {
                return listed(pools, matched.into(), client.significant_bits());
            };
            // The answer holds for the whole database network, except where a longer `nets`
            // entry sits inside it: then it holds for that entry's length.
            let mut scope = loc.network.prefix_len();
            for (net, _) in &map.nets {
                if net.prefix_len() > scope && loc.network.contains(net) {
                    scope = net.prefix_len();
                }
            }
            listed(pools, matched.into(), scope)
        }
        Steering::Proximity => {
            let Some(loc) = client.location(model) else {
                return listed(&service.pools, Basis::Unknown, client.significant_bits());
            };
            let scope = loc.network.prefix_len();
            let Some(here) = loc.coords else {
                return listed(&service.pools, Basis::Unknown, scope);
            };
            Order {
                pools: by_distance(&model.pools, &service.pools, here),
                basis: Basis::Distance,
                scope,
            }
        }
        Steering::Hash => {
            let net = client.hash_network();
            let key = network_key(net);
            let mut ranked: SmallVec<[(f64, PoolId); 8]> = service
                .pools
                .iter()
                .map(|&id| {
                    let pool = &model.pools[id.0 as usize];
                    (rendezvous(key, pool.key, pool.weight.0), id)
                })
                .collect();
            ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
            Order {
                pools: ranked.into_iter().map(|(_, id)| id).collect(),
                basis: Basis::Hash(net),
                scope: net.prefix_len(),
            }
        }
    }
}

/// Whether `member` may be handed out now: it has weight, passes its probes (or is unknown
/// while `unknown_is_up`) and no operator took it out.
pub fn usable(model: &Model, health: &HealthTable, member: &Member) -> bool {
    member.weight.0 > 0 && health.get(member.index).usable(model.health.unknown_is_up)
}

/// The weight `member` is answered and scheduled with at `now`: its configured weight scaled
/// by the share it reports and by its slow start ([`crate::health::MemberHealth::weight`]).
/// The one weight DNS selection, the director's schedulers, the status page and `explain`
/// use.
pub fn weight(health: &HealthTable, member: &Member, now: Instant) -> u32 {
    health.get(member.index).weight(member.weight.0, now)
}

/// Where `member`'s weight comes from now: the report its monitor reads (`agent`,
/// `header:X-Weight`, `json:/capacity`) while it reports a share, else `configured`.
pub fn weight_source(model: &Model, health: &HealthTable, pool: &Pool, member: &Member) -> String {
    match health.get(member.index).share {
        Some(_) => model
            .monitor_of(pool)
            .and_then(|m| m.weight_source())
            .unwrap_or_else(|| "report".to_string()),
        None => "configured".to_string(),
    }
}

/// How many members of `pool` are usable now.
pub fn usable_count(model: &Model, health: &HealthTable, pool: PoolId) -> usize {
    model.pools[pool.0 as usize]
        .members
        .iter()
        .filter(|m| usable(model, health, m))
        .count()
}

/// Which members of the steered pool may be handed out: the one admission rule DNS answers
/// and director picks share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Members that are [`usable`].
    Usable,
    /// Failing open: any member whatever its probes say, but never one an operator took out
    /// (drained or forced down).
    NotTakenOut,
}

impl Admit {
    /// Does this rule admit `member` now?
    pub fn admits(self, model: &Model, health: &HealthTable, member: &Member) -> bool {
        match self {
            Admit::Usable => usable(model, health, member),
            Admit::NotTakenOut => !health.get(member.index).taken_out(),
        }
    }
}

/// Steering's decision for one client: where both data planes send it. DNS answers from the
/// pool, the director schedules among the same pool's admitted members, so the two never
/// disagree on the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steered {
    /// The first pool in the client's order with at least `min_healthy` usable members (for
    /// `weighted`, a draw by pool weight among those), or failing that with any usable member.
    Pool(PoolId),
    /// No pool has a usable member and `when_all_down` names a pool: the client's first for
    /// `"all"` (fail open), the fallback pool for `"fallback"`; `admit` says which of its members
    /// go out.
    AllDown {
        /// The pool the stopgap answer comes from.
        pool: PoolId,
        /// Its members that may be handed out.
        admit: Admit,
    },
    /// No pool has a usable member and `when_all_down = "nodata"`.
    NoData,
    /// No pool has a usable member and `when_all_down = "servfail"`.
    ServFail,
}

impl Steered {
    /// The pool to answer from and its admission rule, unless the service answers without
    /// members.
    pub fn pool(self) -> Option<(PoolId, Admit)> {
        match self {
            Steered::Pool(pool) => Some((pool, Admit::Usable)),
            Steered::AllDown { pool, admit } => Some((pool, admit)),
            Steered::NoData | Steered::ServFail => None,
        }
    }

    /// True when no pool had a usable member and `when_all_down` decided.
    pub fn all_down(self) -> bool {
        !matches!(self, Steered::Pool(_))
    }
}

/// Steering for one client: the pools ranked for it and the decision taken on that ranking.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The service's pools in the client's order.
    pub order: Order,
    /// Where the client goes.
    pub steered: Steered,
}

/// Steers `client` for `service` given `health`: ranks the pools ([`order`]), takes the first
/// healthy-enough one, and applies `when_all_down` when none has a usable member. The one
/// steering decision DNS answers, the director and `explain` all use.
pub fn steer<R: Rng + ?Sized>(
    model: &Model,
    health: &HealthTable,
    service: &Service,
    client: &Client,
    rng: &mut R,
) -> Decision {
    let order = order(model, health, service, client);
    let steered = match choose(model, health, service, &order.pools, rng) {
        Some(pool) => Steered::Pool(pool),
        None => match service.when_all_down {
            WhenAllDown::All => Steered::AllDown {
                pool: order.pools[0],
                admit: Admit::NotTakenOut,
            },
            WhenAllDown::Fallback(pool) => {
                let any_usable = model.pools[pool.0 as usize]
                    .members
                    .iter()
                    .any(|m| usable(model, health, m));
                let admit = if any_usable {
                    Admit::Usable
                } else {
                    Admit::NotTakenOut
                };
                Steered::AllDown { pool, admit }
            }
            WhenAllDown::NoData => Steered::NoData,
            WhenAllDown::ServFail => Steered::ServFail,
        },
    };
    Decision { order, steered }
}

/// The first pool in `ranked` with at least `min_healthy` usable members (for `weighted`, a
/// draw by pool weight among those); if none has that many, the same over pools with any
/// usable member, so a client is never turned away while something is up.
fn choose<R: Rng + ?Sized>(
    model: &Model,
    health: &HealthTable,
    service: &Service,
    ranked: &[PoolId],
    rng: &mut R,
) -> Option<PoolId> {
    let healthy_enough = |id: &PoolId| {
        let pool = &model.pools[id.0 as usize];
        usable_count(model, health, *id) >= service.min_healthy.needed(pool)
    };
    let any_usable = |id: &PoolId| {
        model.pools[id.0 as usize]
            .members
            .iter()
            .any(|m| usable(model, health, m))
    };
    if service.steering == Steering::Weighted {
        return weighted_pool(model, ranked, rng, healthy_enough)
            .or_else(|| weighted_pool(model, ranked, rng, any_usable));
    }
    ranked
        .iter()
        .copied()
        .find(healthy_enough)
        .or_else(|| ranked.iter().copied().find(any_usable))
}

/// True when no pool of `service` has a usable member: its answers come from its
/// `when_all_down` policy (fail open, the fallback pool, NODATA or SERVFAIL).
pub fn all_down(model: &Model, health: &HealthTable, service: &Service) -> bool {
    !service.pools.iter().any(|id| {
        model.pools[id.0 as usize]
            .members
            .iter()
            .any(|m| usable(model, health, m))
    })
}

/// Chosen members of a pool (indices into its `members`), inline up to 8: no allocation per
/// query for usual pool sizes.
pub type Members = SmallVec<[usize; 8]>;

/// The result of steering and selection for one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answer with these members of this pool (indices into its `members`). May be empty: the
    /// pool has no member of the asked family (NODATA).
    Members {
        /// The pool the answer comes from.
        pool: PoolId,
        /// Indices of the chosen members, in answer order.
        members: Members,
    },
    /// `when_all_down = "nodata"`.
    NoData,
    /// `when_all_down = "servfail"`.
    ServFail,
}

/// Steering and selection for one query: the outcome, the TTL to answer with, and the ECS
/// scope the answer holds for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    /// What to answer.
    pub outcome: Outcome,
    /// TTL of the answer: the service's, lowered while a member of the pool is transitioning.
    pub ttl: u32,
    /// How many leading bits of the client's address the answer depended on, capped at the
    /// client's significant bits: the ECS SCOPE PREFIX-LENGTH to reply with.
    pub scope: u8,
    /// The steering decision the answer follows.
    pub steered: Steered,
}

/// Chooses the pool and members that answer `service` for `family` and `client`, given
/// `health` at `now` (which only slow starts read: the caller's clock, taken once per batch).
pub fn pick<R: Rng + ?Sized>(
    model: &Model,
    (health, now): (&HealthTable, Instant),
    service: &Service,
    family: Family,
    client: &Client,
    rng: &mut R,
) -> Pick {
    let Decision { order, steered } = steer(model, health, service, client, rng);
    let selection_scope = if service.selection == Selection::Hash {
        client.hash_network().prefix_len()
    } else {
        0
    };
    let client_bits = client.significant_bits();
    let (outcome, ttl, scope) = match steered {
        Steered::Pool(pool) => {
            let members = select(
                model,
                (health, now),
                service,
                pool,
                Admit::Usable,
                family,
                client,
                rng,
            );
            let ttl = transition_ttl(model, health, service, pool, family);
            let outcome = Outcome::Members { pool, members };
            (
                outcome,
                ttl,
                order.scope.max(selection_scope).min(client_bits),
            )
        }
        // Nothing usable anywhere: the service's policy decides. The answer is a stopgap, so
        // resolvers should ask again soon (the minimum TTL).
        Steered::AllDown { pool, admit } => {
            let members = select(
                model,
                (health, now),
                service,
                pool,
                admit,
                family,
                client,
                rng,
            );
            // Failing open answers from the client's first pool; a fallback pool is the same
            // for everyone (only hash selection inside it depends on the client).
            let scope = match service.when_all_down {
                WhenAllDown::Fallback(_) => selection_scope,
                _ => order.scope.max(selection_scope),
            };
            let outcome = Outcome::Members { pool, members };
            (outcome, service.min_ttl, scope.min(client_bits))
        }
        // NODATA and SERVFAIL depend on nothing about the client.
        Steered::NoData => (Outcome::NoData, service.min_ttl, 0),
        Steered::ServFail => (Outcome::ServFail, service.min_ttl, 0),
    };
    Pick {
        outcome,
        ttl,
        scope,
        steered,
    }
}

/// The service TTL, lowered to the time until a member of the pool (of the asked family) could
/// flip — `fast_interval` × probes left — while one is transitioning; never below `min_ttl`.
fn transition_ttl(
    model: &Model,
    health: &HealthTable,
    service: &Service,
    pool: PoolId,
    family: Family,
) -> u32 {
    let pool = &model.pools[pool.0 as usize];
    let Some(monitor) = model.monitor_of(pool) else {
        return service.ttl;
    };
    let t = &monitor.thresholds;
    let soonest = pool
        .members
        .iter()
        .filter(|m| family.matches(m))
        .filter_map(|m| health.get(m.index).probes_until_flip(t))
        .min();
    match soonest {
        None => service.ttl,
        Some(probes) => {
            let secs = (t.fast_interval * probes.max(1)).as_secs_f64().ceil() as u32;
            secs.clamp(service.min_ttl, service.ttl.max(service.min_ttl))
        }
    }
}

fn weighted_pool<R: Rng + ?Sized>(
    model: &Model,
    pools: &[PoolId],
    rng: &mut R,
    eligible: impl Fn(&PoolId) -> bool,
) -> Option<PoolId> {
    let weight = |id: &PoolId| u64::from(model.pools[id.0 as usize].weight.0);
    let total: u64 = pools.iter().filter(|id| eligible(id)).map(weight).sum();
    if total == 0 {
        // Eligible pools that all weigh 0: fall back to order, like failover.
        return pools.iter().copied().find(|id| eligible(id));
    }
    let mut ticket = rng.random_range(0..total);
    for id in pools.iter().filter(|id| eligible(id)) {
        let w = weight(id);
        if ticket < w {
            return Some(*id);
        }
        ticket -= w;
    }
    None
}

/// Selection inside the steered pool: the members of `family` that `admit` lets out, cut to
/// `max_answers` (one for a hostname pool) by the service's selection mode.
#[allow(clippy::too_many_arguments)]
fn select<R: Rng + ?Sized>(
    model: &Model,
    (health, now): (&HealthTable, Instant),
    service: &Service,
    pool: PoolId,
    admit: Admit,
    family: Family,
    client: &Client,
    rng: &mut R,
) -> Members {
    let pool = &model.pools[pool.0 as usize];
    let members = &pool.members;
    let candidates: Members = members
        .iter()
        .enumerate()
        .filter(|(_, m)| family.matches(m) && admit.admits(model, health, m))
        .map(|(i, _)| i)
        .collect();
    // A hostname pool answers one CNAME.
    let most = if pool.hostnames {
        1
    } else {
        service.max_answers
    };
    let k = most.min(candidates.len());
    match service.selection {
        Selection::All if k == candidates.len() => candidates,
        Selection::All => {
            // Rotate so every member gets its turn when max_answers cuts the list.
            let start = rng.random_range(0..candidates.len());
            (0..k)
                .map(|i| candidates[(start + i) % candidates.len()])
                .collect()
        }
        Selection::Weighted => {
            let weighted: Weighted = candidates
                .iter()
                .map(|&i| (i, weight(health, &members[i], now)))
                .collect();
            weighted_sample(weighted, k, rng)
        }
        Selection::Fastest(band) => {
            // By weight among the members in the band; should the band hold fewer than
            // max_answers, the others (by weight) fill the answer. The band is
            // `fastest::limit`/`inside`, the policy the director uses; the partition is written
            // here rather than through `fastest::split` so that one health look-up gives each
            // candidate's weight and time (through `split` the per-query cost measured 1.2-1.3x
            // `weighted`'s, this way 1.08x).
            let rtt = |i: usize| health.get(members[i].index).rtt;
            let limit = fastest::limit(candidates.iter().map(|&i| rtt(i)), band);
            let (mut inside, mut outside) = (Weighted::new(), Weighted::new());
            for &i in &candidates {
                let h = health.get(members[i].index);
                let side = if fastest::inside(h.rtt, limit) {
                    &mut inside
                } else {
                    &mut outside
                };
                side.push((i, h.weight(members[i].weight.0, now)));
            }
            let mut chosen = weighted_sample(inside, k, rng);
            if chosen.len() < k {
                let more = weighted_sample(outside, k - chosen.len(), rng);
                chosen.extend(more);
            }
            chosen
        }
        Selection::Hash => {
            let key = network_key(client.hash_network());
            let mut ranked: SmallVec<[(f64, usize); 8]> = candidates
                .into_iter()
                .map(|i| {
                    (
                        rendezvous(key, members[i].key, weight(health, &members[i], now)),
                        i,
                    )
                })
                .collect();
            ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
            ranked.into_iter().take(k).map(|(_, i)| i).collect()
        }
    }
}

/// Candidates with the weight each is drawn by.
type Weighted = SmallVec<[(usize, u32); 8]>;

/// Draws `k` members without repetition, each draw proportional to its weight among those
/// left. Zero-weight candidates (only present when failing open) are drawn uniformly.
fn weighted_sample<R: Rng + ?Sized>(mut candidates: Weighted, k: usize, rng: &mut R) -> Members {
    let mut out = Members::new();
    let w = |c: &(usize, u32)| u64::from(c.1.max(1));
    let mut total: u64 = candidates.iter().map(w).sum();
    while out.len() < k && !candidates.is_empty() {
        let mut ticket = rng.random_range(0..total);
        let pos = candidates
            .iter()
            .position(|c| {
                if ticket < w(c) {
                    true
                } else {
                    ticket -= w(c);
                    false
                }
            })
            .unwrap_or(candidates.len() - 1);
        let chosen = candidates.swap_remove(pos);
        total -= w(&chosen);
        out.push(chosen.0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BackendAddr, Weight};
    use hickory_proto::rr::{Name, RData, Record};
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn member(addr: &str, weight: u32) -> Member {
        Member {
            index: 0,
            address: BackendAddr::Ip(addr.parse().unwrap()),
            weight: Weight(weight),
            port: None,
            check_address: None,
            record: Record::from_rdata(
                Name::root(),
                0,
                RData::Update0(hickory_proto::rr::RecordType::A),
            ),
            key: crate::hash::stable_hash(addr.as_bytes()),
        }
    }

    #[test]
    fn weighted_sample_never_repeats_and_follows_weights() {
        let members = [
            member("192.0.2.1", 100),
            member("192.0.2.2", 300),
            member("192.0.2.3", 0),
        ];
        let mut rng = SmallRng::seed_from_u64(7);
        let mut firsts = [0u32; 3];
        for _ in 0..20_000 {
            let candidates = [0, 1].iter().map(|&i| (i, members[i].weight.0)).collect();
            let got = weighted_sample(candidates, 2, &mut rng);
            assert_eq!(got.len(), 2);
            assert_ne!(got[0], got[1]);
            firsts[got[0]] += 1;
        }
        let share = f64::from(firsts[1]) / 20_000.0;
        assert!(
            (share - 0.75).abs() < 0.02,
            "share of the weight-300 member: {share}"
        );
    }
}
