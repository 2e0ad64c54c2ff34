//! Least response time, the one policy for both data planes: which members (or pools) are
//! within the band of the fastest by moving-average round-trip time, so `select = "fastest"`,
//! `steering = "latency"` and the director's `fastest` scheduler cannot disagree on what
//! "as fast as the fastest" means. Also the health writer's test of whether a new average is
//! worth a snapshot: only when it moves a member into or out of a band, or reorders pools.
//!
//! A time without a sample (`None`) counts as in band: a member that has none yet gets its
//! weighted share, so it is neither starved (it acquires a sample) nor herded onto.

use std::time::Duration;

use smallvec::SmallVec;

use super::{Family, usable};
use crate::health::HealthTable;
use crate::model::{Band, Model, PoolId, Selection, Steering, WhenAllDown};

/// The slowest time still in the band: `band` above the fastest of `times` that has a
/// sample; `None` when none has one (then everything is in band).
pub fn limit(times: impl Iterator<Item = Option<Duration>>, band: Band) -> Option<Duration> {
    times.flatten().min().map(|fastest| band.limit(fastest))
}

/// Is a member (or pool) of time `rtt` in the band ending at `limit`? Without a sample, yes.
pub fn inside(rtt: Option<Duration>, limit: Option<Duration>) -> bool {
    match (rtt, limit) {
        (Some(rtt), Some(limit)) => rtt <= limit,
        _ => true,
    }
}

/// Splits `candidates` into those in the band and the rest, each in the order given. In
/// place, one pass (this runs per query); `rtt` reads an item's time (a field: the caller
/// looks each member's health up once).
pub fn split<T, const N: usize>(
    mut candidates: SmallVec<[T; N]>,
    rtt: impl Fn(&T) -> Option<Duration>,
    band: Band,
) -> (SmallVec<[T; N]>, SmallVec<[T; N]>)
where
    [T; N]: smallvec::Array<Item = T>,
    T: Copy,
{
    let limit = limit(candidates.iter().map(&rtt), band);
    let mut outside = SmallVec::new();
    candidates.retain(|c| {
        let keep = inside(rtt(c), limit);
        if !keep {
            outside.push(*c);
        }
        keep
    });
    (candidates, outside)
}

/// A pool's round-trip time: the mean of its usable members' averages (those with a
/// sample); `None` when none has one.
pub fn pool_rtt(model: &Model, health: &HealthTable, pool: PoolId) -> Option<Duration> {
    let (mut sum, mut n) = (Duration::ZERO, 0u32);
    for m in &model.pools[pool.0 as usize].members {
        if let Some(rtt) = health.get(m.index).rtt.filter(|_| usable(model, health, m)) {
            sum += rtt;
            n += 1;
        }
    }
    (n > 0).then(|| sum / n)
}

/// `steering = "latency"`: the pools within the band of the fastest pool first, in the order
/// given (config order), then the others, fastest first.
pub fn rank_pools(
    model: &Model,
    health: &HealthTable,
    pools: &[PoolId],
    band: Band,
) -> SmallVec<[PoolId; 8]> {
    let timed: SmallVec<[(PoolId, Option<Duration>); 8]> = pools
        .iter()
        .map(|&id| (id, pool_rtt(model, health, id)))
        .collect();
    let limit = limit(timed.iter().map(|t| t.1), band);
    let (mut ranked, mut rest): (SmallVec<[_; 8]>, SmallVec<[_; 8]>) =
        timed.into_iter().partition(|t| inside(t.1, limit));
    rest.sort_by_key(|t| t.1);
    ranked.extend(rest);
    ranked.into_iter().map(|t| t.0).collect()
}

/// The band's limit for the members of `pool` of `family` (IPv4 and IPv6 members answer
/// different queries, so each family has its own band), over the usable ones.
pub fn member_limit(
    model: &Model,
    health: &HealthTable,
    pool: PoolId,
    family: Family,
    band: Band,
) -> Option<Duration> {
    let members = &model.pools[pool.0 as usize].members;
    let timed = members
        .iter()
        .filter(|m| family.matches(m) && usable(model, health, m))
        .map(|m| health.get(m.index).rtt);
    limit(timed, band)
}

/// The band `select = "fastest"` applies in each pool (by `PoolId`): that of the first
/// service selecting by `fastest` there; `None` where none does. For the status page and
/// the metrics, which show every member.
pub fn bands(model: &Model) -> Vec<Option<Band>> {
    let mut out = vec![None; model.pools.len()];
    for service in &model.services {
        if let Selection::Fastest(band) = service.selection {
            for p in &service.pools {
                out[p.0 as usize].get_or_insert(band);
            }
        }
    }
    out
}

/// Whether member `index` is usable and in the band of its pool's fastest (of its family),
/// with the pool's band from [`bands`]; `None` where no service selects by `fastest`.
pub fn member_in_band(
    model: &Model,
    health: &HealthTable,
    bands: &[Option<Band>],
    index: usize,
) -> Option<bool> {
    let pool = model.pool_of(index);
    let band = bands.get(pool.0 as usize).copied().flatten()?;
    let (_, m) = model.member(index);
    let family = if Family::V4.matches(m) {
        Family::V4
    } else {
        Family::V6
    };
    let limit = member_limit(model, health, pool, family, band);
    Some(usable(model, health, m) && inside(health.get(index).rtt, limit))
}

/// Whether each member of `pool` is usable and in its family's band, member by member.
fn marks(model: &Model, health: &HealthTable, pool: PoolId, band: Band) -> SmallVec<[bool; 16]> {
    let limits = [Family::V4, Family::V6].map(|f| member_limit(model, health, pool, f, band));
    model.pools[pool.0 as usize]
        .members
        .iter()
        .map(|m| {
            let limit = limits[usize::from(!Family::V4.matches(m))];
            usable(model, health, m) && inside(health.get(m.index).rtt, limit)
        })
        .collect()
}

/// What the health writer checks after a probe result: the services whose answers depend on
/// round-trip times, by pool. Built once per model.
#[derive(Debug, Default)]
pub struct Watch {
    /// Per pool, the services (indices) that select by `fastest` in it or steer by latency
    /// over it.
    by_pool: Vec<SmallVec<[u32; 2]>>,
}

impl Watch {
    /// The watch for `model`; empty (and free to ask) when no service uses round-trip times.
    pub fn new(model: &Model) -> Watch {
        let mut by_pool: Vec<SmallVec<[u32; 2]>> = vec![SmallVec::new(); model.pools.len()];
        for (s, service) in model.services.iter().enumerate() {
            let fastest = matches!(service.selection, Selection::Fastest(_));
            let latency = matches!(service.steering, Steering::Latency(_));
            if !fastest && !latency {
                continue;
            }
            let fallback = match service.when_all_down {
                WhenAllDown::Fallback(p) if fastest => Some(p),
                _ => None,
            };
            for p in service.pools.iter().chain(fallback.iter()) {
                let list = &mut by_pool[p.0 as usize];
                if !list.contains(&(s as u32)) {
                    list.push(s as u32);
                }
            }
        }
        if by_pool.iter().all(SmallVec::is_empty) {
            by_pool.clear();
        }
        Watch { by_pool }
    }

    /// True when no service uses round-trip times: nothing to check.
    pub fn is_empty(&self) -> bool {
        self.by_pool.is_empty()
    }

    /// Would member `index`'s new average (in `working`) change an answer given from
    /// `published`: move a member into or out of a band, or reorder a latency service's
    /// pools? Costs the member's pool (and a latency service's pools), not the model.
    pub fn moved(
        &self,
        model: &Model,
        published: &HealthTable,
        working: &HealthTable,
        index: usize,
    ) -> bool {
        if self.by_pool.is_empty() || published.get(index).rtt == working.get(index).rtt {
            return false;
        }
        let pool = model.pool_of(index);
        self.by_pool[pool.0 as usize].iter().any(|&s| {
            let service = &model.services[s as usize];
            let band_moved = match service.selection {
                Selection::Fastest(band) => {
                    marks(model, published, pool, band) != marks(model, working, pool, band)
                }
                _ => false,
            };
            band_moved
                || match service.steering {
                    Steering::Latency(band) => {
                        rank_pools(model, published, &service.pools, band)
                            != rank_pools(model, working, &service.pools, band)
                    }
                    _ => false,
                }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[test]
    fn the_band_is_relative_or_absolute_above_the_fastest_sample() {
        let times = [ms(10), ms(12), ms(13), None];
        let pct = limit(times.into_iter(), Band::Percent(20));
        assert_eq!(pct, ms(12));
        let inside_pct: Vec<bool> = times.iter().map(|&t| inside(t, pct)).collect();
        assert_eq!(
            inside_pct,
            [true, true, false, true],
            "no sample counts as in band"
        );
        let plus = limit(times.into_iter(), Band::Plus(Duration::from_millis(5)));
        assert_eq!(plus, ms(15));
        assert!(times.iter().all(|&t| inside(t, plus)));
        assert_eq!(limit([None, None].into_iter(), Band::DEFAULT), None);
        assert!(
            inside(ms(1000), None),
            "nothing sampled: everyone is in band"
        );
        let zero = limit([ms(5), ms(5), ms(6)].into_iter(), Band::Percent(0));
        assert_eq!(zero, ms(5), "0%: only the ties of the fastest");
    }

    #[test]
    fn split_keeps_order_inside_and_out() {
        let rtts = [ms(30), ms(1), None, ms(1), ms(2)];
        let (band, rest) = split(
            SmallVec::<[usize; 8]>::from_slice(&[0, 1, 2, 3, 4]),
            |&i| rtts[i],
            Band::Percent(20),
        );
        assert_eq!(
            (band.as_slice(), rest.as_slice()),
            (&[1, 2, 3][..], &[0, 4][..])
        );
    }
}
