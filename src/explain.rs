//! `explain`: the answer a given client would get for a service name, and why: where the client
//! is, how steering ranked the pools and with what health, which members selection picked, the
//! TTL and the ECS scope. It runs the same [`select`] functions as the DNS path on the same
//! snapshot, and renders its own DTO (for `--json` and the HTTP API) and a human text.

use std::fmt;
use std::net::IpAddr;

use hickory_proto::rr::{Name, RecordType};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::health::HealthTable;
use crate::health::overrides::StateFileError;
use crate::model::{MinHealthy, Model, Selection, Steering, WhenAllDown};
use crate::select::{self, Basis, Client, Family, Outcome, Steered, fastest};
use crate::state::Snapshot;

/// Why a question cannot be explained.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExplainError {
    /// The name is not a service (its answers do not depend on the client).
    #[error("{0} is not a service name: its answers are static (ask it with dig)")]
    NotAService(String),
    /// Only A and AAAA answers are computed.
    #[error("type {0} is not computed per client: explain answers A and AAAA")]
    Type(String),
}

/// The client as steering saw it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientView {
    /// The address decisions were based on.
    pub address: IpAddr,
    /// The EDNS Client Subnet given, as `ADDR/PREFIX`.
    pub ecs: Option<String>,
    /// Where the GeoIP database puts it (absent: no database, or the address is not in it).
    pub location: Option<LocationView>,
}

/// A GeoIP database match.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LocationView {
    /// The database network that matched.
    pub network: String,
    /// ISO 3166 country code.
    pub country: Option<String>,
    /// Continent code.
    pub continent: Option<String>,
    /// Degrees north.
    pub latitude: Option<f64>,
    /// Degrees east.
    pub longitude: Option<f64>,
}

/// One pool in the order steering considered it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PoolView {
    /// 1 = most preferred.
    pub rank: usize,
    /// Pool name.
    pub name: String,
    /// Pool weight (used by `weighted` steering).
    pub weight: u32,
    /// Members usable now.
    pub usable: usize,
    /// Members in the pool.
    pub members: usize,
    /// Usable members it needs to be chosen (`min_healthy`).
    pub needed: usize,
    /// Great-circle distance from the client, for `proximity`, in km.
    pub distance_km: Option<f64>,
    /// Whether the answer came from this pool.
    pub chosen: bool,
    /// `latency` steering: the pool's round-trip time (the mean of its usable members'
    /// moving averages), in milliseconds; absent without a sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// `latency` steering: whether the pool is within the band of the fastest pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_band: Option<bool>,
    /// In fleet mode, members whose state the fleet's consensus decided rather than this
    /// instance's own probes (`127.0.0.11 down by consensus majority; this instance observes
    /// it up`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consensus: Vec<String>,
}

/// One member in the answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MemberView {
    /// Address (or, for a hostname member, the CNAME target) handed out.
    pub address: String,
    /// Weight within its pool, as configured.
    pub weight: u32,
    /// The weight the answer was drawn with: `weight` scaled by the reported share.
    pub effective_weight: u32,
    /// Where `effective_weight` comes from: `configured`, `agent`, `header:NAME`, `json:/PTR`.
    pub weight_source: String,
    /// During a slow start: the percentage of its weight the ramp allows now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_start_percent: Option<u8>,
    /// Health as shown on the status page (`up`, `down`, `unknown`, `drained`, ...).
    pub state: String,
    /// The moving average of its probe round-trip time, in milliseconds (absent: no sample).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// `fastest` selection: whether it is within the band of the pool's fastest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_band: Option<bool>,
}

/// The answer itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AnswerView {
    /// `members`, `nodata` or `servfail`.
    pub outcome: String,
    /// The pool the records come from.
    pub pool: Option<String>,
    /// Set when no pool had a usable member and `when_all_down` decided.
    pub when_all_down: Option<String>,
    /// The selection mode inside the pool.
    pub selection: String,
    /// `fastest` selection: the band (`fastest_within`) and the slowest round-trip time in
    /// it, `"20% (up to 1.4 ms)"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub band: Option<String>,
    /// The records, in answer order.
    pub members: Vec<MemberView>,
    /// TTL of the records.
    pub ttl: u32,
    /// ECS scope prefix of the reply: how many bits of the client's address the answer
    /// depended on (capped at the ECS source prefix; 0 = not client-specific). Absent when
    /// the question carried no ECS (then no scope is sent).
    pub ecs_scope: Option<u8>,
}

/// Everything `explain` reports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Explanation {
    /// The service name asked.
    pub name: String,
    /// `A` or `AAAA`.
    pub qtype: String,
    /// The client.
    pub client: ClientView,
    /// Steering mode.
    pub steering: String,
    /// What the ranking was based on (`country JP`, `distance`, ...).
    pub basis: String,
    /// The service's `min_healthy`.
    pub min_healthy: String,
    /// Pools in the order steering considered them.
    pub pools: Vec<PoolView>,
    /// The answer.
    pub answer: AnswerView,
    /// Where the health came from (`live`, or an offline assumption).
    pub health: String,
}

/// What `explain` says about health when it runs without a server.
pub const OFFLINE_HEALTH: &str =
    "offline: no probes run, monitored members assumed up; saved overrides applied";

/// A snapshot for explaining without a running server: operator overrides restored from the
/// state file, every monitored member assumed up (see [`OFFLINE_HEALTH`]).
pub fn offline_snapshot(model: Model) -> Result<Snapshot, StateFileError> {
    let mut health = crate::health::overrides::restored(&model)?;
    for m in health.iter_mut() {
        m.state = crate::health::HealthState::Up;
    }
    Ok(Snapshot {
        generation: 1,
        published: std::time::SystemTime::now(),
        model: std::sync::Arc::new(model),
        health: std::sync::Arc::new(health),
    })
}

/// Explains the `qtype` answer for `name` to `client` from `snap`. `health` says where the
/// snapshot's health came from, for the reader.
pub fn explain<R: Rng + ?Sized>(
    snap: &Snapshot,
    name: &Name,
    qtype: RecordType,
    client: &Client,
    health: &str,
    rng: &mut R,
) -> Result<Explanation, ExplainError> {
    let model: &Model = &snap.model;
    // A typed name means the same with or without the final dot (`dig www.example.test`).
    let mut wanted = name.to_lowercase();
    wanted.set_fqdn(true);
    let service = model
        .services
        .iter()
        .find(|s| s.name == wanted)
        .ok_or_else(|| ExplainError::NotAService(wanted.to_string()))?;
    let family = match qtype {
        RecordType::A => Family::V4,
        RecordType::AAAA => Family::V6,
        other => return Err(ExplainError::Type(other.to_string())),
    };
    let location = client.location(model).map(|l| LocationView {
        network: l.network.to_string(),
        country: l.country.map(|c| c.to_string()),
        continent: l.continent.map(|c| c.to_string()),
        latitude: l.coords.map(|c| c.lat),
        longitude: l.coords.map(|c| c.lon),
    });
    let coords = client.location(model).and_then(|l| l.coords);
    let ranked = select::order(model, &snap.health, service, client);
    let now = tokio::time::Instant::now();
    let pick = select::pick(model, (&snap.health, now), service, family, client, rng);
    let all_down = pick.steered.all_down();

    let pool_band = match service.steering {
        Steering::Latency(band) => {
            let rtts = ranked
                .pools
                .iter()
                .map(|&id| fastest::pool_rtt(model, &snap.health, id));
            Some(fastest::limit(rtts, band))
        }
        _ => None,
    };
    let pools = ranked
        .pools
        .iter()
        .enumerate()
        .map(|(i, &id)| {
            let pool = &model.pools[id.0 as usize];
            PoolView {
                rank: i + 1,
                name: pool.name.clone(),
                weight: pool.weight.0,
                usable: select::usable_count(model, &snap.health, id),
                members: pool.members.len(),
                needed: service.min_healthy.needed(pool),
                distance_km: match (coords, pool.location) {
                    (Some(a), Some(b)) if ranked.basis == Basis::Distance => {
                        Some((crate::geo::distance_km(a, b) * 10.0).round() / 10.0)
                    }
                    _ => None,
                },
                chosen: pick.steered == Steered::Pool(id),
                rtt_ms: pool_band
                    .and(fastest::pool_rtt(model, &snap.health, id))
                    .map(millis),
                in_band: pool_band.map(|limit| {
                    fastest::inside(fastest::pool_rtt(model, &snap.health, id), limit)
                }),
                consensus: consensus_notes(model, &snap.health, pool),
            }
        })
        .collect();

    let mut band_text = None;
    let (outcome, pool, members) = match &pick.outcome {
        Outcome::Members { pool, members } => {
            let p = &model.pools[pool.0 as usize];
            let member_band = match service.selection {
                Selection::Fastest(band) => {
                    let limit = fastest::member_limit(model, &snap.health, *pool, family, band);
                    band_text = Some(match limit {
                        Some(l) => format!("{band} (up to {:.1} ms)", millis(l)),
                        None => format!("{band} (no samples yet)"),
                    });
                    Some(limit)
                }
                _ => None,
            };
            let members: Vec<MemberView> = members
                .iter()
                .map(|&i| {
                    let m = &p.members[i];
                    MemberView {
                        address: m.address.to_string(),
                        weight: m.weight.0,
                        effective_weight: select::weight(&snap.health, m, now),
                        weight_source: select::weight_source(model, &snap.health, p, m),
                        slow_start_percent: snap
                            .health
                            .get(m.index)
                            .ramping(now)
                            .map(|f| (f * 100.0) as u8),
                        state: snap.health.get(m.index).shown().to_string(),
                        rtt_ms: snap.health.get(m.index).rtt.map(millis),
                        in_band: member_band
                            .map(|limit| fastest::inside(snap.health.get(m.index).rtt, limit)),
                    }
                })
                .collect();
            // No member of the asked family in the pool: NODATA.
            let outcome = if members.is_empty() {
                "nodata"
            } else {
                "members"
            };
            (outcome, Some(p.name.clone()), members)
        }
        Outcome::NoData => ("nodata", None, Vec::new()),
        Outcome::ServFail => ("servfail", None, Vec::new()),
    };
    let when_all_down = all_down.then(|| match service.when_all_down {
        WhenAllDown::All => "all".to_string(),
        WhenAllDown::Fallback(id) => format!("fallback {}", model.pools[id.0 as usize].name),
        WhenAllDown::NoData => "nodata".to_string(),
        WhenAllDown::ServFail => "servfail".to_string(),
    });

    Ok(Explanation {
        name: service.name.to_string(),
        qtype: qtype.to_string(),
        client: ClientView {
            address: client.addr(),
            ecs: client
                .source_prefix()
                .map(|p| format!("{}/{p}", client.addr())),
            location,
        },
        steering: service.steering.name().to_string(),
        basis: basis_text(ranked.basis),
        min_healthy: match service.min_healthy {
            MinHealthy::Count(n) => n.to_string(),
            MinHealthy::Percent(p) => format!("{p}%"),
        },
        pools,
        answer: AnswerView {
            outcome: outcome.to_string(),
            pool,
            when_all_down,
            selection: service.selection.name().to_string(),
            band: band_text,
            members,
            ttl: pick.ttl,
            ecs_scope: client.source_prefix().map(|_| pick.scope),
        },
        health: health.to_string(),
    })
}

fn basis_text(basis: Basis) -> String {
    match basis {
        Basis::Config => "config order".to_string(),
        Basis::Net(net) => format!("network {net}"),
        Basis::Country(c) => format!("country {c}"),
        Basis::Continent(c) => format!("continent {c}"),
        Basis::Unmapped => "no entry for the client's location: default order".to_string(),
        Basis::Unknown => "client location unknown: default order".to_string(),
        Basis::Distance => "distance".to_string(),
        Basis::Hash(net) => format!("hash of {net}"),
        Basis::Latency => "probe round-trip time".to_string(),
    }
}

/// `, in band` / `, out of band` after a pool or member, when a band applies.
fn band_note(in_band: Option<bool>) -> &'static str {
    match in_band {
        Some(true) => ", in band",
        Some(false) => ", out of band",
        None => "",
    }
}

/// A duration in milliseconds, to a tenth of a microsecond.
fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 10_000_000.0).round() / 10_000.0
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} for client {}",
            self.name, self.qtype, self.client.address
        )?;
        if let Some(ecs) = &self.client.ecs {
            write!(f, " (ECS {ecs})")?;
        }
        writeln!(f)?;
        match &self.client.location {
            None => writeln!(f, "  location: unknown")?,
            Some(l) => {
                write!(f, "  location: network {}", l.network)?;
                if let Some(c) = &l.country {
                    write!(f, ", country {c}")?;
                }
                if let Some(c) = &l.continent {
                    write!(f, ", continent {c}")?;
                }
                if let (Some(lat), Some(lon)) = (l.latitude, l.longitude) {
                    write!(f, ", at {lat:.2}, {lon:.2}")?;
                }
                writeln!(f)?;
            }
        }
        writeln!(
            f,
            "  steering: {}, by {} (min_healthy {})",
            self.steering, self.basis, self.min_healthy
        )?;
        for p in &self.pools {
            write!(
                f,
                "    {}. {:<16} {}/{} usable (needs {}), weight {}",
                p.rank, p.name, p.usable, p.members, p.needed, p.weight
            )?;
            if let Some(d) = p.distance_km {
                write!(f, ", {d:.0} km")?;
            }
            if let Some(rtt) = p.rtt_ms {
                write!(f, ", rtt {rtt:.1} ms")?;
            }
            f.write_str(band_note(p.in_band))?;
            if p.chosen {
                write!(f, "  <- chosen")?;
            }
            writeln!(f)?;
            for note in &p.consensus {
                writeln!(f, "         {note}")?;
            }
        }
        let a = &self.answer;
        if let Some(policy) = &a.when_all_down {
            writeln!(f, "  no pool has a usable member: when_all_down = {policy}")?;
        }
        match a.outcome.as_str() {
            "servfail" => writeln!(f, "  answer: SERVFAIL")?,
            "nodata" => writeln!(f, "  answer: no records (NODATA)")?,
            _ => {
                writeln!(
                    f,
                    "  answer from pool {} (select {}):",
                    a.pool.as_deref().unwrap_or("-"),
                    match &a.band {
                        Some(band) => format!("{} within {band}", a.selection),
                        None => a.selection.clone(),
                    }
                )?;
                for m in &a.members {
                    let weight = if m.weight_source == "configured" {
                        m.weight.to_string()
                    } else {
                        format!(
                            "{} ({} of {})",
                            m.effective_weight, m.weight_source, m.weight
                        )
                    };
                    write!(f, "    {:<39} weight {:<5} {}", m.address, weight, m.state)?;
                    if let Some(rtt) = m.rtt_ms {
                        write!(f, "   rtt {rtt:.1} ms")?;
                    }
                    f.write_str(band_note(m.in_band))?;
                    writeln!(f)?;
                }
            }
        }
        match a.ecs_scope {
            Some(scope) => writeln!(f, "  ttl {}, ECS scope /{scope}", a.ttl)?,
            None => writeln!(f, "  ttl {}", a.ttl)?,
        }
        write!(f, "  health: {}", self.health)
    }
}

/// The members of `pool` whose state the fleet's consensus decided against this instance's
/// own observation.
fn consensus_notes(model: &Model, health: &HealthTable, pool: &crate::model::Pool) -> Vec<String> {
    let Some(monitor) = model.monitor_of(pool) else {
        return Vec::new();
    };
    pool.members
        .iter()
        .filter_map(|m| {
            let h = health.get(m.index);
            let decided = h.fleet?;
            (decided != h.state && h.admin.is_none()).then(|| {
                format!(
                    "{} {decided} by consensus {}; this instance observes it {}",
                    m.id(),
                    monitor.consensus,
                    h.state
                )
            })
        })
        .collect()
}
