//! `GET /api/v1/status`: everything the status page shows, as JSON. Services with the answer
//! they give right now (steering and selection run on the current snapshot for a neutral
//! client, `0.0.0.0`, so geo-steered services show their default answer), pools and members
//! with their health details, and the most recent transitions.

use std::net::{IpAddr, Ipv4Addr};
use std::time::SystemTime;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde::Serialize;

use super::events::TransitionDto;
use super::{ApiState, rfc3339};
use crate::director::stats::DirectorConnStats;
use crate::health::HealthTable;
use crate::model::{Model, Pool, Service, WhenAllDown};
use crate::prober::Observed;
use crate::prober::metrics::probe_type;
use crate::select::{self, Family, Outcome, fastest};

/// How many of the latest transitions the status carries (all kept ones: `/api/v1/events`).
const RECENT_EVENTS: usize = 50;

/// The whole status.
#[derive(Debug, Serialize)]
pub struct StatusDto {
    /// Meridian's version.
    pub version: &'static str,
    /// Generation of the snapshot in force.
    pub generation: u64,
    /// When that snapshot was published (the last change of config or health).
    pub changed_at: String,
    /// When serving started.
    pub started_at: String,
    /// When this status was taken.
    pub now: String,
    /// First probe round done and listeners bound.
    pub ready: bool,
    /// What is served (`1 zones (8 names), 2 services, …`).
    pub summary: String,
    /// Every service.
    pub services: Vec<ServiceDto>,
    /// Every pool.
    pub pools: Vec<PoolDto>,
    /// The latest transitions, oldest first.
    pub events: Vec<TransitionDto>,
    /// Every zone signed with DNSSEC.
    pub dnssec: Vec<DnssecDto>,
    /// DNS Cookies (`[dns.cookies]`).
    pub cookies: CookiesDto,
}

/// Whether DNS Cookies are on and how (never the secret).
#[derive(Debug, Serialize)]
pub struct CookiesDto {
    /// Server cookies are made and checked.
    pub enabled: bool,
    /// UDP queries without a valid server cookie get BADCOOKIE.
    pub require: bool,
    /// A previous secret still verifies (a rollover is under way).
    pub previous_secret: bool,
}

/// One signed zone: its key and its signature cache.
#[derive(Debug, Serialize)]
pub struct DnssecDto {
    /// The zone.
    pub zone: String,
    /// The key tag of its key.
    pub key_tag: u16,
    /// The key's algorithm number (13 or 15).
    pub algorithm: u8,
    /// The algorithm's name (`ECDSAP256SHA256`, `ED25519`).
    pub algorithm_name: String,
    /// The DS record's data for the parent (`tag alg 2 digest`).
    pub ds: String,
    /// Signature lifetime in seconds.
    pub signature_lifetime_s: u32,
    /// Signatures in the cache.
    pub cache_entries: usize,
    /// Share of signature lookups the cache answered (0 to 1; 0 before any).
    pub cache_hit_rate: f64,
    /// Signatures made since the key was loaded.
    pub signatures_made: u64,
}

/// One service.
#[derive(Debug, Serialize)]
pub struct ServiceDto {
    /// Fully-qualified name.
    pub name: String,
    /// `failover`, `weighted`, …
    pub steering: String,
    /// `all`, `weighted`, …
    pub selection: String,
    /// Most addresses per answer; `null`: no limit.
    pub max_answers: Option<usize>,
    /// TTL of answers.
    pub ttl: u32,
    /// Lowest TTL while a member is transitioning.
    pub min_ttl: u32,
    /// `all`, `fallback`, `nodata` or `servfail`.
    pub when_all_down: String,
    /// The fallback pool of `when_all_down = "fallback"`.
    pub fallback: Option<String>,
    /// Pools in config order.
    pub pools: Vec<String>,
    /// What an A query gets now.
    #[serde(rename = "A")]
    pub a: AnswerDto,
    /// What an AAAA query gets now.
    #[serde(rename = "AAAA")]
    pub aaaa: AnswerDto,
}

/// What one query type of a service is answered with now.
#[derive(Debug, Serialize)]
pub struct AnswerDto {
    /// `members` (addresses, possibly none: NODATA), `nodata` or `servfail`.
    pub outcome: String,
    /// The pool answering, for `members`.
    pub pool: Option<String>,
    /// The addresses of one answer (for random selection, one draw).
    pub addresses: Vec<String>,
    /// Every address an answer can contain now: the usable members of that pool of this
    /// family (when failing open: the answer's own addresses).
    pub eligible: Vec<String>,
    /// TTL of the answer.
    pub ttl: u32,
    /// True when no pool has a usable member and `when_all_down` decided the answer.
    pub all_down: bool,
}

/// One pool.
#[derive(Debug, Serialize)]
pub struct PoolDto {
    /// Its name.
    pub name: String,
    /// Weight under weighted steering.
    pub weight: u32,
    /// How its members are probed; `null`: not probed, always up.
    pub monitor: Option<MonitorDto>,
    /// Its members, in config order.
    pub members: Vec<MemberDto>,
}

/// A pool's monitor.
#[derive(Debug, Serialize)]
pub struct MonitorDto {
    /// Its name.
    pub name: String,
    /// `http`, `https` or `tcp`.
    pub r#type: &'static str,
    /// Probe interval, milliseconds.
    pub interval_ms: u64,
    /// Interval while transitioning, milliseconds.
    pub fast_interval_ms: u64,
    /// Probe timeout, milliseconds.
    pub timeout_ms: u64,
    /// Successes in a row to come up.
    pub rise: u32,
    /// Failures in a row to go down.
    pub fall: u32,
}

/// One member. A `connections` object (the director's active connections) may be added.
#[derive(Debug, Serialize)]
pub struct MemberDto {
    /// How admin calls and metrics name it: the address, with `:port` when it has one.
    pub id: String,
    /// Address handed out.
    pub address: String,
    /// Port, if configured.
    pub port: Option<u16>,
    /// Address probed instead, if configured.
    pub check_address: Option<String>,
    /// Weight within the pool, as configured.
    pub weight: u32,
    /// The weight answers and director picks use now: `weight` scaled by the reported share.
    pub effective_weight: u32,
    /// Where `effective_weight` comes from: `configured`, `agent`, `header:NAME`, `json:/PTR`.
    pub weight_source: String,
    /// The share (0-100) the member reports and answers follow, if any.
    pub reported_share: Option<u8>,
    /// During a slow start: the percentage of its weight the ramp allows now.
    pub slow_start_percent: Option<u8>,
    /// Shown state: `up`, `down`, `unknown`, `drained`, `forced-down` or `forced-up`.
    pub state: String,
    /// What probes say, whatever the override: `up`, `down` or `unknown`.
    pub probe_state: String,
    /// Operator override: `drain`, `force-down`, `force-up`, or `null`.
    pub r#override: Option<String>,
    /// May it be handed out now?
    pub usable: bool,
    /// Is it probed?
    pub monitored: bool,
    /// The last probe: `null` before the first.
    pub last_probe: Option<ProbeDto>,
    /// Why the last probe failed; `null` when it passed (see `last_failure` for the past).
    pub reason: Option<String>,
    /// The last failure seen, also after recovery; `null` when there has been none.
    pub last_failure: Option<FailureDto>,
    /// When the state last changed (or serving started).
    pub since: String,
    /// Seconds in the current state.
    pub in_state_s: f64,
    /// Current run of consecutive successful probes.
    pub successes: u32,
    /// Current run of consecutive failed probes.
    pub failures: u32,
    /// Director connections to it, summed over every director; `null` until a director has
    /// picked it.
    pub connections: Option<ConnectionsDto>,
    /// The moving average of its passing probes' round-trip time, milliseconds; `null`
    /// before the first (and after it went down).
    pub rtt_ewma_ms: Option<f64>,
    /// Where a service selects by `fastest` in its pool: whether it is in the band of the
    /// fastest (and usable); `null` elsewhere.
    pub in_band: Option<bool>,
}

/// A member's director connections.
#[derive(Debug, Serialize, Default)]
pub struct ConnectionsDto {
    /// Open now.
    pub active: u64,
    /// Established in all.
    pub total: u64,
    /// Failed connects (refused, timed out).
    pub failed_connects: u64,
    /// Bytes forwarded from clients to it.
    pub bytes_to_backend: u64,
    /// Bytes forwarded from it to clients.
    pub bytes_to_client: u64,
    /// The moving average of its time to first byte a `fastest` director observed,
    /// milliseconds (the lowest over directors); `null` without one.
    pub first_byte_ms: Option<f64>,
}

/// A member's last failure.
#[derive(Debug, Serialize)]
pub struct FailureDto {
    /// Why it failed (`connect refused`, `http 503`).
    pub reason: String,
    /// When (RFC 3339); `null` when not known (seen before a restart of the writer).
    pub at: Option<String>,
    /// Seconds ago.
    pub ago_s: Option<f64>,
}

/// The last probe of a member.
#[derive(Debug, Serialize)]
pub struct ProbeDto {
    /// `ok` or `fail`.
    pub result: &'static str,
    /// How long it took, milliseconds.
    pub latency_ms: Option<f64>,
}

pub(super) async fn status(State(api): State<ApiState>) -> Response {
    // The writer's view has the latest probe details; if it does not answer (shutting down),
    // the published snapshot is as good, minus the details not worth a snapshot.
    let observed = match tokio::time::timeout(
        std::time::Duration::from_secs(1),
        api.control.observe(),
    )
    .await
    {
        Ok(Ok(o)) => o,
        _ => {
            let snapshot = api.state.load();
            let table = (*snapshot.health).clone();
            Observed { snapshot, table }
        }
    };
    let body = build(&api, &observed);
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(body),
    )
        .into_response()
}

fn build(api: &ApiState, observed: &Observed) -> StatusDto {
    let snap = &observed.snapshot;
    let model = &snap.model;
    let now = tokio::time::Instant::now();
    let wall = SystemTime::now();
    let directors = api.telemetry.directors.snapshot();
    let bands = fastest::bands(model);
    let pools = model
        .pools
        .iter()
        .map(|pool| {
            let on = (&**model, bands.as_slice());
            let mut dto = pool_dto(on, &observed.table, pool, (now, wall), api.started);
            add_connections(&mut dto, pool, &directors);
            dto
        })
        .collect();
    let services = model
        .services
        .iter()
        .map(|s| service_dto(model, &snap.health, s))
        .collect();
    StatusDto {
        version: env!("CARGO_PKG_VERSION"),
        generation: snap.generation,
        changed_at: rfc3339(snap.published),
        started_at: rfc3339(api.started.0),
        now: rfc3339(wall),
        ready: *api.ready.borrow(),
        summary: model.summary(),
        services,
        pools,
        events: api
            .telemetry
            .events
            .since(0, RECENT_EVENTS)
            .iter()
            .map(TransitionDto::from)
            .collect(),
        dnssec: model.zones.signers().map(dnssec_dto).collect(),
        cookies: CookiesDto {
            enabled: model.dns.cookies.is_some(),
            require: model.dns.cookies.as_ref().is_some_and(|c| c.require),
            previous_secret: model
                .dns
                .cookies
                .as_ref()
                .is_some_and(|c| c.previous.is_some()),
        },
    }
}

fn dnssec_dto(signer: &crate::dnssec::Signer) -> DnssecDto {
    let cache = signer.cache();
    let lookups = cache.lookups();
    DnssecDto {
        zone: signer.origin().to_string(),
        key_tag: signer.key_tag(),
        algorithm: u8::from(signer.algorithm()),
        algorithm_name: format!("{:?}", signer.algorithm()),
        ds: signer.ds_text(),
        signature_lifetime_s: signer.lifetime(),
        cache_entries: cache.len(),
        cache_hit_rate: if lookups == 0 {
            0.0
        } else {
            cache.hits() as f64 / lookups as f64
        },
        signatures_made: signer.signatures_made(),
    }
}

fn pool_dto(
    (model, bands): (&Model, &[Option<crate::model::Band>]),
    table: &HealthTable,
    pool: &Pool,
    (now, wall): (tokio::time::Instant, SystemTime),
    started: (SystemTime, tokio::time::Instant),
) -> PoolDto {
    let monitor = model.monitor_of(pool).map(|m| MonitorDto {
        name: m.name.clone(),
        r#type: probe_type(&m.kind),
        interval_ms: m.thresholds.interval.as_millis() as u64,
        fast_interval_ms: m.thresholds.fast_interval.as_millis() as u64,
        timeout_ms: m.timeout.as_millis() as u64,
        rise: m.thresholds.rise,
        fall: m.thresholds.fall,
    });
    let members = pool
        .members
        .iter()
        .map(|member| {
            let h = table.get(member.index);
            let in_state = now.saturating_duration_since(h.since.unwrap_or(started.1));
            MemberDto {
                id: member.id(),
                address: member.address.to_string(),
                port: member.port,
                check_address: member.check_address.map(|a| a.to_string()),
                weight: member.weight.0,
                effective_weight: select::weight(table, member, now),
                weight_source: select::weight_source(model, table, pool, member),
                reported_share: h.share,
                slow_start_percent: h.ramping(now).map(|f| (f * 100.0) as u8),
                state: h.shown().to_string(),
                probe_state: h.state.to_string(),
                r#override: h.admin.map(|o| o.to_string()),
                usable: select::usable(model, table, member),
                monitored: !h.unmonitored,
                last_probe: h.last_ok.map(|ok| ProbeDto {
                    result: if ok { "ok" } else { "fail" },
                    latency_ms: h.last_latency.map(|d| d.as_secs_f64() * 1000.0),
                }),
                reason: h
                    .last_reason
                    .as_deref()
                    .filter(|_| h.last_ok == Some(false))
                    .map(str::to_string),
                last_failure: h.last_reason.as_deref().map(|reason| {
                    let ago = h.last_failure.map(|t| now.saturating_duration_since(t));
                    FailureDto {
                        reason: reason.to_string(),
                        at: ago.and_then(|a| wall.checked_sub(a)).map(rfc3339),
                        ago_s: ago.map(|a| a.as_secs_f64()),
                    }
                }),
                since: rfc3339(wall.checked_sub(in_state).unwrap_or(started.0)),
                in_state_s: in_state.as_secs_f64(),
                successes: h.successes,
                failures: h.failures,
                connections: None,
                rtt_ewma_ms: h.rtt.map(|d| d.as_secs_f64() * 1000.0),
                in_band: fastest::member_in_band(model, table, bands, member.index),
            }
        })
        .collect();
    PoolDto {
        name: pool.name.clone(),
        weight: pool.weight.0,
        monitor,
        members,
    }
}

/// Fills each member's `connections` from the directors' counters: a director's backend is the
/// member's address on its own port, or on the director's port when it has none.
fn add_connections(dto: &mut PoolDto, pool: &Pool, directors: &[DirectorConnStats]) {
    for (member, out) in pool.members.iter().zip(&mut dto.members) {
        for seen in directors.iter().flat_map(|d| &d.members) {
            let same = seen.pool == pool.name
                && member.address.ip() == Some(seen.backend.ip())
                && member.port.is_none_or(|p| p == seen.backend.port());
            if same {
                let c = out.connections.get_or_insert_with(ConnectionsDto::default);
                c.active += seen.active;
                c.total += seen.total;
                c.failed_connects += seen.failed_connects;
                c.bytes_to_backend += seen.bytes_to_backend;
                c.bytes_to_client += seen.bytes_to_client;
                if let Some(t) = seen.first_byte {
                    let ms = t.as_secs_f64() * 1000.0;
                    c.first_byte_ms = Some(c.first_byte_ms.map_or(ms, |m| m.min(ms)));
                }
            }
        }
    }
}

fn service_dto(model: &Model, health: &HealthTable, service: &Service) -> ServiceDto {
    let fallback = match service.when_all_down {
        WhenAllDown::Fallback(p) => Some(model.pools[p.0 as usize].name.clone()),
        _ => None,
    };
    ServiceDto {
        name: service.name.to_string(),
        steering: service.steering.name().to_string(),
        selection: service.selection.name().to_string(),
        max_answers: (service.max_answers != usize::MAX).then_some(service.max_answers),
        ttl: service.ttl,
        min_ttl: service.min_ttl,
        when_all_down: variant_name(&service.when_all_down),
        fallback,
        pools: service
            .pools
            .iter()
            .map(|p| model.pools[p.0 as usize].name.clone())
            .collect(),
        a: answer(model, health, service, Family::V4),
        aaaa: answer(model, health, service, Family::V6),
    }
}

/// What `service` answers for `family` now, for a neutral client (`0.0.0.0`), with a fixed
/// random seed so the status does not change between two looks unless health or config did.
fn answer(model: &Model, health: &HealthTable, service: &Service, family: Family) -> AnswerDto {
    let client = select::Client::from_addr(model, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let pick = select::pick(
        model,
        (health, tokio::time::Instant::now()),
        service,
        family,
        &client,
        &mut SmallRng::seed_from_u64(0),
    );
    let all_down = pick.steered.all_down();
    let of_family = |ip: IpAddr| match family {
        Family::V4 => ip.is_ipv4(),
        Family::V6 => ip.is_ipv6(),
    };
    if let Outcome::Members { pool, members } = &pick.outcome {
        let pool = &model.pools[pool.0 as usize];
        let addresses: Vec<String> = members
            .iter()
            .map(|&i| pool.members[i].address.to_string())
            .collect();
        let eligible = if all_down {
            addresses.clone()
        } else {
            pool.members
                .iter()
                .filter(|m| {
                    m.address.ip().is_none_or(of_family) && select::usable(model, health, m)
                })
                .map(|m| m.address.to_string())
                .collect()
        };
        return AnswerDto {
            outcome: "members".into(),
            pool: Some(pool.name.clone()),
            addresses,
            eligible,
            ttl: pick.ttl,
            all_down,
        };
    }
    AnswerDto {
        outcome: variant_name(&pick.outcome),
        pool: None,
        addresses: Vec::new(),
        eligible: Vec::new(),
        ttl: pick.ttl,
        all_down,
    }
}

/// The config word for a model enum variant (`Failover` → `failover`, `ServFail` →
/// `servfail`, `Fallback(PoolId(1))` → `fallback`). Taken from `Debug` so that variants added
/// to the model show up here without a change.
fn variant_name(value: &impl std::fmt::Debug) -> String {
    let debug = format!("{value:?}");
    let name = debug
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .next()
        .unwrap_or_default();
    name.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_names_are_config_words() {
        #[derive(Debug)]
        #[allow(dead_code)]
        enum E {
            Failover,
            ServFail,
            Fallback(u8),
            Geo { default: u8 },
        }
        assert_eq!(variant_name(&E::Failover), "failover");
        assert_eq!(variant_name(&E::ServFail), "servfail");
        assert_eq!(variant_name(&E::Fallback(1)), "fallback");
        assert_eq!(variant_name(&E::Geo { default: 1 }), "geo");
    }
}
