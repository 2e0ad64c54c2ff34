//! Steering and selection: which pool a service answers from and which of its members go in the
//! answer. Pure functions over the model and a random source, so the DNS path and (later) the
//! director make the same choice and tests can fix the randomness.

use std::net::IpAddr;

use rand::Rng;

use crate::health::{HealthTable, Override};
use crate::model::{Member, Model, PoolId, Selection, Service, Steering, WhenAllDown};

/// The address family a query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// A records.
    V4,
    /// AAAA records.
    V6,
}

impl Family {
    fn matches(self, member: &Member) -> bool {
        matches!(
            (self, member.address.0),
            (Family::V4, IpAddr::V4(_)) | (Family::V6, IpAddr::V6(_))
        )
    }
}

/// Who is asking: the address steering decides by. For DNS it is the resolver's source
/// address (or, once supported, the EDNS Client Subnet address); for the director, the
/// connecting client's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The client's (or its network's) address.
    pub addr: IpAddr,
}

impl Client {
    /// The client at `addr`, located with the model's data.
    pub fn from_addr(_model: &Model, addr: IpAddr) -> Client {
        Client { addr }
    }
}

/// Whether `member` may be handed out now: it has weight, passes its probes (or is unknown
/// while `unknown_is_up`) and no operator took it out.
pub fn usable(model: &Model, health: &HealthTable, member: &Member) -> bool {
    member.weight.0 > 0 && health.get(member.index).usable(model.health.unknown_is_up)
}

/// Steering alone: the pool `service` sends `client` to, or `None` when no pool has a usable
/// member. The director uses this and then schedules among the pool's usable members.
pub fn steer_pool<R: Rng + ?Sized>(
    model: &Model,
    health: &HealthTable,
    service: &Service,
    _client: &Client,
    rng: &mut R,
) -> Option<PoolId> {
    let pool_usable = |id: &PoolId| {
        model.pools[id.0 as usize]
            .members
            .iter()
            .any(|m| usable(model, health, m))
    };
    match service.steering {
        Steering::Failover => service.pools.iter().copied().find(pool_usable),
        Steering::Weighted => weighted_pool(model, service, rng, pool_usable),
    }
}

/// The result of steering and selection for one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answer with these members of this pool (indices into its `members`). May be empty: the
    /// pool has no member of the asked family (NODATA).
    Members {
        /// The pool the answer comes from.
        pool: PoolId,
        /// Indices of the chosen members, in answer order.
        members: Vec<usize>,
    },
    /// `when_all_down = "nodata"`.
    NoData,
    /// `when_all_down = "servfail"`.
    ServFail,
}

/// Steering and selection for one query: the outcome and the TTL to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    /// What to answer.
    pub outcome: Outcome,
    /// TTL of the answer: the service's, lowered while a member of the pool is transitioning.
    pub ttl: u32,
}

/// Chooses the pool and members that answer `service` for `family`, given `health`.
pub fn pick<R: Rng + ?Sized>(
    model: &Model,
    health: &HealthTable,
    service: &Service,
    family: Family,
    client: &Client,
    rng: &mut R,
) -> Pick {
    let usable = |m: &Member| usable(model, health, m);
    // Failing open hands out members whatever their probes say, but never ones an operator
    // took out (drained or forced down).
    let not_overridden = |m: &Member| {
        !matches!(
            health.get(m.index).admin,
            Some(Override::Drain | Override::ForceDown)
        )
    };
    if let Some(pool) = steer_pool(model, health, service, client, rng) {
        let members = select(model, service, pool, family, rng, usable);
        let ttl = transition_ttl(model, health, service, pool, family);
        return Pick {
            outcome: Outcome::Members { pool, members },
            ttl,
        };
    }
    // Nothing usable anywhere: the service's policy decides (fail open by default). The answer
    // is a stopgap, so resolvers should ask again soon.
    let outcome = match service.when_all_down {
        WhenAllDown::All => {
            let pool = service.pools[0];
            let members = select(model, service, pool, family, rng, not_overridden);
            Outcome::Members { pool, members }
        }
        WhenAllDown::Fallback(pool) => {
            let any_usable = model.pools[pool.0 as usize].members.iter().any(usable);
            let members = if any_usable {
                select(model, service, pool, family, rng, usable)
            } else {
                select(model, service, pool, family, rng, not_overridden)
            };
            Outcome::Members { pool, members }
        }
        WhenAllDown::NoData => Outcome::NoData,
        WhenAllDown::ServFail => Outcome::ServFail,
    };
    Pick {
        outcome,
        ttl: service.min_ttl,
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
    service: &Service,
    rng: &mut R,
    pool_usable: impl Fn(&PoolId) -> bool,
) -> Option<PoolId> {
    let weight = |id: &PoolId| u64::from(model.pools[id.0 as usize].weight.0);
    let total: u64 = service
        .pools
        .iter()
        .filter(|id| pool_usable(id))
        .map(weight)
        .sum();
    if total == 0 {
        // Usable pools that all weigh 0: fall back to order, like failover.
        return service.pools.iter().copied().find(|id| pool_usable(id));
    }
    let mut ticket = rng.random_range(0..total);
    for id in service.pools.iter().filter(|id| pool_usable(id)) {
        let w = weight(id);
        if ticket < w {
            return Some(*id);
        }
        ticket -= w;
    }
    None
}

fn select<R: Rng + ?Sized>(
    model: &Model,
    service: &Service,
    pool: PoolId,
    family: Family,
    rng: &mut R,
    allowed: impl Fn(&Member) -> bool,
) -> Vec<usize> {
    let members = &model.pools[pool.0 as usize].members;
    let candidates: Vec<usize> = members
        .iter()
        .enumerate()
        .filter(|(_, m)| family.matches(m) && allowed(m))
        .map(|(i, _)| i)
        .collect();
    let k = service.max_answers.min(candidates.len());
    match service.selection {
        Selection::All if k == candidates.len() => candidates,
        Selection::All => {
            // Rotate so every member gets its turn when max_answers cuts the list.
            let start = rng.random_range(0..candidates.len());
            (0..k)
                .map(|i| candidates[(start + i) % candidates.len()])
                .collect()
        }
        Selection::Weighted => weighted_sample(members, candidates, k, rng),
    }
}

/// Draws `k` members without repetition, each draw proportional to weight among those left.
/// Zero-weight candidates (only present when failing open) are drawn uniformly.
fn weighted_sample<R: Rng + ?Sized>(
    members: &[Member],
    mut candidates: Vec<usize>,
    k: usize,
    rng: &mut R,
) -> Vec<usize> {
    let mut out = Vec::with_capacity(k);
    let w = |i: usize| u64::from(members[i].weight.0.max(1));
    let mut total: u64 = candidates.iter().map(|&i| w(i)).sum();
    while out.len() < k && !candidates.is_empty() {
        let mut ticket = rng.random_range(0..total);
        let pos = candidates
            .iter()
            .position(|&i| {
                if ticket < w(i) {
                    true
                } else {
                    ticket -= w(i);
                    false
                }
            })
            .unwrap_or(candidates.len() - 1);
        let chosen = candidates.swap_remove(pos);
        total -= w(chosen);
        out.push(chosen);
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
            address: BackendAddr(addr.parse().unwrap()),
            weight: Weight(weight),
            port: None,
            check_address: None,
            record: Record::from_rdata(
                Name::root(),
                0,
                RData::Update0(hickory_proto::rr::RecordType::A),
            ),
        }
    }

    #[test]
    fn weighted_sample_never_repeats_and_follows_weights() {
        let members = vec![
            member("192.0.2.1", 100),
            member("192.0.2.2", 300),
            member("192.0.2.3", 0),
        ];
        let mut rng = SmallRng::seed_from_u64(7);
        let mut firsts = [0u32; 3];
        for _ in 0..20_000 {
            let got = weighted_sample(&members, vec![0, 1], 2, &mut rng);
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
