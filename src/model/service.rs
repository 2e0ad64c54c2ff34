//! Services after validation: how each one steers across its pools (with the `geo` map built
//! once here, so a query only looks it up), how it selects members, and what it answers when
//! nothing is usable.

use std::collections::HashMap;
use std::time::Duration;

use hickory_proto::rr::Name;
use ipnet::IpNet;
use toml::Spanned;

use super::netmap::{Matched, NetTable};
use super::{Builder, Pool, PoolId};
use crate::config::{ConfigError, GeoMapConfig, MinHealthyConfig, ServiceConfig};
use crate::geo::{Continent, Country, Location, continent_of};

/// How a service chooses among its pools.
#[derive(Debug, Clone, PartialEq)]
pub enum Steering {
    /// Pools in config order: the first that is healthy enough.
    Failover,
    /// A pool chosen at random in proportion to pool weights.
    Weighted,
    /// An ordered pool list per client network, country or continent.
    Geo(Box<GeoMap>),
    /// Pools ordered by great-circle distance from the client.
    Proximity,
    /// Pools ranked by a hash of the client's network (weighted rendezvous hashing), so a
    /// network sticks to its pool and only a failed pool's clients move.
    Hash,
    /// Pools ranked by the probe round-trip time of their usable members (the mean of their
    /// moving averages); pools within the band of the fastest keep config order.
    Latency(Band),
}

impl Steering {
    /// The config word for it.
    pub fn name(&self) -> &'static str {
        match self {
            Steering::Failover => "failover",
            Steering::Weighted => "weighted",
            Steering::Geo(_) => "geo",
            Steering::Proximity => "proximity",
            Steering::Hash => "hash",
            Steering::Latency(_) => "latency",
        }
    }
}

/// The `geo` steering table of one service: ordered pool lists, each already followed by the
/// service's remaining pools (in `default` order) as a last resort.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GeoMap {
    /// By client network, longest prefix first.
    pub nets: Vec<(IpNet, Vec<PoolId>)>,
    /// By country.
    pub countries: HashMap<Country, Vec<PoolId>>,
    /// By continent.
    pub continents: HashMap<Continent, Vec<PoolId>>,
    /// For clients nothing else matches (or whose location is unknown).
    pub default: Vec<PoolId>,
}

impl GeoMap {
    /// The order for a client at `loc` (`None`: unknown) that no `nets` entry matched: its
    /// country's entry, else its continent's, else `default`. The one rule of the map, per
    /// query or in a per-network table.
    pub fn for_location(&self, loc: Option<&Location>) -> (&[PoolId], Matched) {
        let Some(loc) = loc else {
            return (&self.default, Matched::Unknown);
        };
        if let Some((c, pools)) = loc
            .country
            .and_then(|c| self.countries.get(&c).map(|p| (c, p)))
        {
            return (pools, Matched::Country(c));
        }
        if let Some((c, pools)) = loc
            .continent
            .and_then(|c| self.continents.get(&c).map(|p| (c, p)))
        {
            return (pools, Matched::Continent(c));
        }
        (&self.default, Matched::Unmapped)
    }
}

/// How many usable members a pool needs before steering picks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinHealthy {
    /// At least this many.
    Count(u32),
    /// At least this percentage of the pool's members (rounded up, at least one).
    Percent(u32),
}

impl MinHealthy {
    /// The number of usable members `pool` needs.
    pub fn needed(self, pool: &Pool) -> usize {
        match self {
            MinHealthy::Count(n) => (n as usize).max(1),
            MinHealthy::Percent(p) => (pool.members.len() * p as usize).div_ceil(100).max(1),
        }
    }
}

/// How a service chooses members inside the chosen pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// Every usable member (up to `max_answers`).
    All,
    /// A weight-proportional random subset of `max_answers` members, without repetition.
    Weighted,
    /// The `max_answers` members that rank highest for the client's network (weighted
    /// rendezvous hashing): the same network gets the same members, and a member leaving moves
    /// only the networks it served.
    Hash,
    /// Members whose probe round-trip time (moving average) is within the band of the
    /// fastest, drawn by weight as `Weighted` does; members without a sample count as in band.
    Fastest(Band),
}

/// The tolerance of `fastest` selection and `latency` steering (`fastest_within`): what counts
/// as as fast as the fastest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    /// Within this many percent above the fastest (`"20%"`).
    Percent(u32),
    /// Within this much above the fastest (`"5ms"`).
    Plus(Duration),
}

impl Band {
    /// The default band: 20 % above the fastest.
    pub const DEFAULT: Band = Band::Percent(20);

    /// The slowest time still in the band of a fastest time `fastest`.
    pub fn limit(self, fastest: Duration) -> Duration {
        match self {
            // Integer arithmetic: this runs per query.
            Band::Percent(p) => fastest
                .checked_mul(p)
                .map_or(Duration::MAX, |extra| fastest.saturating_add(extra / 100)),
            Band::Plus(d) => fastest.saturating_add(d),
        }
    }
}

impl std::fmt::Display for Band {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Band::Percent(p) => write!(f, "{p}%"),
            Band::Plus(d) => write!(f, "{}ms", d.as_millis()),
        }
    }
}

impl Selection {
    /// The config word for it.
    pub fn name(self) -> &'static str {
        match self {
            Selection::All => "all",
            Selection::Weighted => "weighted",
            Selection::Hash => "hash",
            Selection::Fastest(_) => "fastest",
        }
    }
}

/// What to answer when no member is usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenAllDown {
    /// Hand out every member of the client's first pool (fail open).
    All,
    /// Answer from this pool.
    Fallback(PoolId),
    /// NOERROR with no records.
    NoData,
    /// SERVFAIL.
    ServFail,
}

/// A DNS name whose A/AAAA answers are computed per query.
#[derive(Debug, Clone)]
pub struct Service {
    /// The fully-qualified name, lower-cased.
    pub name: Name,
    /// Pools in config order.
    pub pools: Vec<PoolId>,
    /// Pool choice.
    pub steering: Steering,
    /// Usable members a pool needs to be chosen.
    pub min_healthy: MinHealthy,
    /// Member choice.
    pub selection: Selection,
    /// Most addresses per answer.
    pub max_answers: usize,
    /// TTL of the computed records.
    pub ttl: u32,
    /// Lowest TTL while a member is transitioning.
    pub min_ttl: u32,
    /// Policy when nothing is usable.
    pub when_all_down: WhenAllDown,
    /// For `geo` and `proximity` steering, the pool order of every network, built once per
    /// model (shared by services that decide alike); `None` when `[geo] precompute = false`
    /// (or the database could not be walked): then each query looks the client up.
    pub networks: Option<std::sync::Arc<NetTable>>,
    /// Whether any of its pools (the fallback pool included) has hostname members, so that
    /// it may answer a CNAME record: then no other data may sit at its name.
    pub hostnames: bool,
    /// Whether one of those members' names lies in the service's own zone, so that its answer
    /// follows the CNAME there (which only the general path does).
    pub follows_cname: bool,
}

/// A `fastest_within` value: `"20%"` (0% to 1000%) or a duration up to 10 s (`"5ms"`).
pub(super) fn parse_band(text: &str) -> Option<Band> {
    if let Some(p) = text.strip_suffix('%') {
        return p
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|p| *p <= 1000)
            .map(Band::Percent);
    }
    crate::config::parse_duration(text)
        .ok()
        .filter(|d| *d <= std::time::Duration::from_secs(10))
        .map(Band::Plus)
}

impl Builder<'_> {
    pub(super) fn service(
        &self,
        name: &str,
        s: &Spanned<ServiceConfig>,
        pool_ids: &HashMap<String, PoolId>,
        pools: &[Pool],
        has_geo_db: bool,
    ) -> Result<Service, ConfigError> {
        let cfg = s.get_ref();
        let key = format!("services.\"{name}\"");
        let dns_name = self.fqdn(s.span(), &key, name)?;
        let service_pools = self.pool_list(&format!("{key}.pools"), &cfg.pools, pool_ids, None)?;
        if service_pools.is_empty() {
            return self.err(s.span(), format!("{key} has no pools"));
        }
        let steering_word = cfg.steering.get_ref().as_str();
        if let Some(map) = cfg.map.as_ref().filter(|_| steering_word != "geo") {
            return self.err(
                map.span(),
                format!("{key}: `map` is only used with steering = \"geo\""),
            );
        }
        let select_word = cfg.select.get_ref().as_str();
        let band = self.band(&key, cfg, steering_word, select_word)?;
        if (steering_word == "latency" || select_word == "fastest")
            && let Some(&id) = service_pools
                .iter()
                .find(|id| pools[id.0 as usize].monitor.is_none())
        {
            let (word, span) = if steering_word == "latency" {
                ("steering = \"latency\"", cfg.steering.span())
            } else {
                ("select = \"fastest\"", cfg.select.span())
            };
            return self.err(
                span,
                format!(
                    "{key}: {word} needs probe round-trip times: pool {:?} has no monitor",
                    pools[id.0 as usize].name
                ),
            );
        }
        let steering = match steering_word {
            "failover" => Steering::Failover,
            "latency" => Steering::Latency(band),
            "weighted" => Steering::Weighted,
            "hash" => Steering::Hash,
            "proximity" if !has_geo_db => {
                return self.err(
                    cfg.steering.span(),
                    format!(
                        "{key}.steering = {steering_word:?} needs a GeoIP database: add [geo] database = \"...\""
                    ),
                );
            }
            "geo" => {
                let map = cfg.map.as_ref().map(Spanned::get_ref);
                let map = self.geo_map(&key, map, &service_pools, pool_ids, pools)?;
                // Only countries and continents are looked up in the database; a map of
                // `nets` alone (and `default`) needs none.
                let looks_up = !map.countries.is_empty() || !map.continents.is_empty();
                if !has_geo_db && (looks_up || map.nets.is_empty()) {
                    return self.err(
                        cfg.steering.span(),
                        format!(
                            "{key}.steering = \"geo\" needs a GeoIP database{}: add [geo] database = \"...\"",
                            if looks_up {
                                " to look up countries and continents"
                            } else {
                                ""
                            }
                        ),
                    );
                }
                Steering::Geo(Box::new(map))
            }
            "proximity" => {
                if let Some(&id) = service_pools
                    .iter()
                    .find(|id| pools[id.0 as usize].location.is_none())
                {
                    return self.err(
                        cfg.steering.span(),
                        format!(
                            "{key}: steering = \"proximity\" needs a location on every pool; pool {:?} has none",
                            pools[id.0 as usize].name
                        ),
                    );
                }
                Steering::Proximity
            }
            other => {
                return self.err(
                    cfg.steering.span(),
                    format!(
                        "{key}.steering = {other:?}: expected \"failover\", \"weighted\", \"geo\", \"proximity\", \"hash\" or \"latency\""
                    ),
                );
            }
        };
        let min_healthy = match &cfg.min_healthy {
            None => MinHealthy::Count(1),
            Some(m) => match m.get_ref() {
                MinHealthyConfig::Count(0) => {
                    return self.err(m.span(), format!("{key}.min_healthy must be at least 1"));
                }
                MinHealthyConfig::Count(n) => MinHealthy::Count(*n),
                MinHealthyConfig::Share(text) => match text
                    .strip_suffix('%')
                    .and_then(|n| n.trim().parse::<u32>().ok())
                {
                    Some(p) if (1..=100).contains(&p) => MinHealthy::Percent(p),
                    _ => {
                        return self.err(
                            m.span(),
                            format!(
                                "{key}.min_healthy = {text:?}: expected a count (2) or a percentage from 1% to 100% (\"50%\")"
                            ),
                        );
                    }
                },
            },
        };
        let selection = match select_word {
            "all" => Selection::All,
            "weighted" => Selection::Weighted,
            "hash" => Selection::Hash,
            "fastest" => Selection::Fastest(band),
            other => {
                return self.err(
                    cfg.select.span(),
                    format!(
                        "{key}.select = {other:?}: expected \"all\", \"weighted\", \"hash\" or \"fastest\""
                    ),
                );
            }
        };
        let max_answers = match &cfg.max_answers {
            Some(m) if *m.get_ref() == 0 => {
                return self.err(m.span(), format!("{key}.max_answers must be at least 1"));
            }
            Some(m) => *m.get_ref() as usize,
            None if selection == Selection::All => usize::MAX,
            None => 1,
        };
        let fallback = match &cfg.fallback {
            None => None,
            Some(f) => match pool_ids.get(f.get_ref()) {
                Some(&id) => Some(id),
                None => {
                    return self.err(
                        f.span(),
                        format!("{key}.fallback: no pool named {:?}", f.get_ref()),
                    );
                }
            },
        };
        let when_all_down = match (cfg.when_all_down.get_ref().as_str(), fallback) {
            ("all", _) => WhenAllDown::All,
            ("nodata", _) => WhenAllDown::NoData,
            ("servfail", _) => WhenAllDown::ServFail,
            ("fallback", Some(id)) => WhenAllDown::Fallback(id),
            ("fallback", None) => {
                return self.err(
                    cfg.when_all_down.span(),
                    format!("{key}: when_all_down = \"fallback\" needs `fallback = \"POOL\"`"),
                );
            }
            (other, _) => {
                return self.err(
                    cfg.when_all_down.span(),
                    format!(
                        "{key}.when_all_down = {other:?}: expected \"all\", \"fallback\", \"nodata\" or \"servfail\""
                    ),
                );
            }
        };
        let ttl = *cfg.ttl.get_ref();
        let min_ttl = match &cfg.min_ttl {
            Some(v) if *v.get_ref() > ttl => {
                return self.err(v.span(), format!("{key}.min_ttl is above ttl ({ttl})"));
            }
            Some(v) => *v.get_ref(),
            None => ttl.min(5),
        };
        let hostnames = service_pools
            .iter()
            .chain(fallback.iter())
            .any(|id| pools[id.0 as usize].hostnames);
        Ok(Service {
            hostnames,
            follows_cname: false,
            name: dns_name,
            pools: service_pools,
            steering,
            min_healthy,
            selection,
            max_answers,
            ttl,
            min_ttl,
            when_all_down,
            networks: None,
        })
    }

    /// `fastest_within`: only with `select = "fastest"` or `steering = "latency"`; a percentage
    /// from 0% to 1000% or a duration up to 10s. Default: 20%.
    fn band(
        &self,
        key: &str,
        cfg: &ServiceConfig,
        steering: &str,
        select: &str,
    ) -> Result<Band, ConfigError> {
        let Some(within) = &cfg.fastest_within else {
            return Ok(Band::DEFAULT);
        };
        if steering != "latency" && select != "fastest" {
            return self.err(
                within.span(),
                format!(
                    "{key}.fastest_within is only used with select = \"fastest\" or steering = \"latency\""
                ),
            );
        }
        parse_band(within.get_ref())
            .ok_or(())
            .or_else(|()| {
                self.err(
                    within.span(),
                    format!(
                        "{key}.fastest_within = {:?}: expected a percentage from 0% to 1000% (\"20%\") or a duration up to 10s (\"5ms\")",
                        within.get_ref()
                    ),
                )
            })
    }

    /// Resolves pool names; with `within`, each must be one of the service's pools.
    fn pool_list(
        &self,
        key: &str,
        names: &[Spanned<String>],
        pool_ids: &HashMap<String, PoolId>,
        within: Option<&[PoolId]>,
    ) -> Result<Vec<PoolId>, ConfigError> {
        let mut out = Vec::new();
        for p in names {
            match pool_ids.get(p.get_ref()) {
                Some(&id) if out.contains(&id) => {
                    return self.err(
                        p.span(),
                        format!("{key}: pool {:?} is listed twice", p.get_ref()),
                    );
                }
                Some(&id) if within.is_some_and(|w| !w.contains(&id)) => {
                    return self.err(
                        p.span(),
                        format!(
                            "{key}: pool {:?} is not one of the service's pools",
                            p.get_ref()
                        ),
                    );
                }
                Some(&id) => out.push(id),
                None => {
                    return self.err(p.span(), format!("{key}: no pool named {:?}", p.get_ref()));
                }
            }
        }
        Ok(out)
    }

    /// Builds the `geo` table: entries derived from the pools' `countries` and `continent`,
    /// then the explicit `map` entries (which replace derived ones for the same key). Every
    /// list is followed by the rest of the service's pools in `default` order.
    fn geo_map(
        &self,
        key: &str,
        map: Option<&GeoMapConfig>,
        service_pools: &[PoolId],
        pool_ids: &HashMap<String, PoolId>,
        pools: &[Pool],
    ) -> Result<GeoMap, ConfigError> {
        let empty = GeoMapConfig::default();
        let map = map.unwrap_or(&empty);
        let default = match &map.default {
            None => service_pools.to_vec(),
            Some(list) => self.pool_list(
                &format!("{key}.map.default"),
                list,
                pool_ids,
                Some(service_pools),
            )?,
        };
        let complete = |mut list: Vec<PoolId>| {
            for id in default.iter().chain(service_pools) {
                if !list.contains(id) {
                    list.push(*id);
                }
            }
            list
        };
        let of = |id: &PoolId| &pools[id.0 as usize];

        let mut out = GeoMap::default();
        // Derived: a country's own pools, then pools on its continent; a continent's pools.
        for id in service_pools {
            for &country in &of(id).countries {
                out.countries.entry(country).or_insert_with(|| {
                    let continent = continent_of(country);
                    let mut list: Vec<PoolId> = service_pools
                        .iter()
                        .copied()
                        .filter(|p| of(p).countries.contains(&country))
                        .collect();
                    let neighbours: Vec<PoolId> = service_pools
                        .iter()
                        .copied()
                        .filter(|p| continent.is_some() && of(p).continent == continent)
                        .filter(|p| !list.contains(p))
                        .collect();
                    list.extend(neighbours);
                    complete(list)
                });
            }
            if let Some(continent) = of(id).continent {
                out.continents.entry(continent).or_insert_with(|| {
                    complete(
                        service_pools
                            .iter()
                            .copied()
                            .filter(|p| of(p).continent == Some(continent))
                            .collect(),
                    )
                });
            }
        }
        for (code, list) in &map.countries {
            let Ok(country) = code.get_ref().parse::<Country>() else {
                return self.err(
                    code.span(),
                    format!(
                        "{key}.map.countries: {:?} is not an ISO 3166 country code",
                        code.get_ref()
                    ),
                );
            };
            let k = format!("{key}.map.countries.{country}");
            let list = self.pool_list(&k, list, pool_ids, Some(service_pools))?;
            out.countries.insert(country, complete(list));
        }
        for (code, list) in &map.continents {
            let Ok(continent) = code.get_ref().parse::<Continent>() else {
                return self.err(
                    code.span(),
                    format!(
                        "{key}.map.continents: {:?} is not a continent code (AF, AN, AS, EU, NA, OC, SA)",
                        code.get_ref()
                    ),
                );
            };
            let k = format!("{key}.map.continents.{continent}");
            let list = self.pool_list(&k, list, pool_ids, Some(service_pools))?;
            out.continents.insert(continent, complete(list));
        }
        for (cidr, list) in &map.nets {
            let net = match cidr.get_ref().parse::<IpNet>() {
                Ok(n) if n.trunc() == n => n,
                Ok(n) => {
                    return self.err(
                        cidr.span(),
                        format!(
                            "{key}.map.nets: {n} has host bits set (did you mean {}?)",
                            n.trunc()
                        ),
                    );
                }
                Err(_) => {
                    return self.err(
                        cidr.span(),
                        format!(
                            "{key}.map.nets: {:?} is not a network (\"10.0.0.0/8\")",
                            cidr.get_ref()
                        ),
                    );
                }
            };
            let k = format!("{key}.map.nets.\"{net}\"");
            let list = self.pool_list(&k, list, pool_ids, Some(service_pools))?;
            out.nets.push((net, complete(list)));
        }
        out.nets
            .sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        out.default = complete(default.clone());
        Ok(out)
    }
}
