//! The metrics read from the snapshot in force at scrape time: its generation, and every
//! member's shown state and usability, each service's pools against `min_healthy` and its
//! all-down state, each monitor's failing members, and each signed zone's signature counts.
//! Nothing is counted on the way; a scrape walks the model.

use std::sync::{Arc, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::health::MemberState;
use crate::model::{Pool, PoolId, Service, WhenAllDown};
use crate::state::{SharedState, Snapshot};

/// Reads the current snapshot at scrape time: the generation and each member's state.
#[derive(Debug)]
pub(super) struct SnapshotCollector {
    state: Weak<SharedState>,
}

impl SnapshotCollector {
    /// Reads `state` at every scrape (and nothing once it is gone).
    pub(super) fn new(state: &Arc<SharedState>) -> SnapshotCollector {
        SnapshotCollector {
            state: Arc::downgrade(state),
        }
    }
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(state) = self.state.upgrade() else {
            return Ok(());
        };
        let snap = state.load();
        let generation = ConstGauge::new(snap.generation as i64);
        let metric = encoder.encode_descriptor(
            "meridian_snapshot_generation",
            "Generation of the snapshot in force (one more with every published change)",
            None,
            generation.metric_type(),
        )?;
        generation.encode(metric)?;

        let mut family = encoder.encode_descriptor(
            "meridian_member_state",
            "1 for the state a member is shown in (overrides first, then probes), else 0",
            None,
            MetricType::Gauge,
        )?;
        let model = &snap.model;
        for (pool, member) in model.members() {
            let id = member.id();
            let shown = snap.health.get(member.index).shown();
            for state in MemberState::SHOWN {
                let labels = [
                    ("pool", pool.name.as_str()),
                    ("member", id.as_str()),
                    ("state", state.as_str()),
                ];
                ConstGauge::new(i64::from(shown == state))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "meridian_member_usable",
            "1 when a member may be handed out now (in answers and director picks), else 0",
            None,
            MetricType::Gauge,
        )?;
        for (pool, member) in model.members() {
            let id = member.id();
            let usable = crate::select::usable(model, &snap.health, member);
            let labels = [("pool", pool.name.as_str()), ("member", id.as_str())];
            ConstGauge::new(i64::from(usable)).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "meridian_member_weight",
            "A member's weight: kind=\"configured\", and kind=\"effective\" (scaled by the share it reports, source naming the report or \"configured\")",
            None,
            MetricType::Gauge,
        )?;
        let now = tokio::time::Instant::now();
        for (pool, member) in model.members() {
            let id = member.id();
            let source = crate::select::weight_source(model, &snap.health, pool, member);
            let effective = crate::select::weight(&snap.health, member, now);
            for (kind, value, source) in [
                ("configured", member.weight.0, "configured"),
                ("effective", effective, source.as_str()),
            ] {
                let labels = [
                    ("pool", pool.name.as_str()),
                    ("member", id.as_str()),
                    ("kind", kind),
                    ("source", source),
                ];
                ConstGauge::new(i64::from(value)).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "meridian_member_rtt_ewma_seconds",
            "Moving average of a member's passing probes' round-trip time, as answers use it (members with a sample)",
            None,
            MetricType::Gauge,
        )?;
        for (pool, member) in model.members() {
            if let Some(rtt) = snap.health.get(member.index).rtt {
                let id = member.id();
                let labels = [("pool", pool.name.as_str()), ("member", id.as_str())];
                ConstGauge::new(rtt.as_secs_f64()).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "meridian_member_in_band",
            "1 when a member is within the band of its pool's fastest (select = \"fastest\"), else 0",
            None,
            MetricType::Gauge,
        )?;
        let bands = crate::select::fastest::bands(model);
        for (pool, member) in model.members() {
            let in_band =
                crate::select::fastest::member_in_band(model, &snap.health, &bands, member.index);
            if let Some(in_band) = in_band {
                let id = member.id();
                let labels = [("pool", pool.name.as_str()), ("member", id.as_str())];
                ConstGauge::new(i64::from(in_band)).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "meridian_members",
            "Members by the state they are shown in",
            None,
            MetricType::Gauge,
        )?;
        let mut counts = [0i64; MemberState::SHOWN.len()];
        for h in snap.health.iter() {
            let shown = h.shown();
            if let Some(i) = MemberState::SHOWN.iter().position(|&s| s == shown) {
                counts[i] += 1;
            }
        }
        for (state, n) in MemberState::SHOWN.iter().zip(counts) {
            ConstGauge::new(n).encode(family.encode_family(&[("state", state.as_str())])?)?;
        }
        services(&mut encoder, &snap)?;
        monitors(&mut encoder, &snap)?;
        type Read = fn(&crate::dnssec::Signer) -> u64;
        let dnssec: [(&str, &str, Read); 3] = [
            (
                "meridian_dnssec_signatures",
                "RRSIGs made (signature cache misses), per signed zone, since its key was loaded",
                |s| s.signatures_made(),
            ),
            (
                "meridian_dnssec_cache_hits",
                "RRSIGs served from the signature cache, per signed zone",
                |s| s.cache().hits(),
            ),
            (
                "meridian_dnssec_cache_lookups",
                "Signature cache lookups, per signed zone",
                |s| s.cache().lookups(),
            ),
        ];
        for (name, help, read) in dnssec {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for signer in model.zones.signers() {
                let zone = signer.origin().to_string();
                ConstCounter::new(read(signer))
                    .encode(family.encode_family(&[("zone", zone.as_str())])?)?;
            }
        }
        Ok(())
    }
}

/// Per service and pool: usable members against `min_healthy` (a pool below it is skipped by
/// steering), and whether the service answers from its `when_all_down` policy.
fn services(encoder: &mut DescriptorEncoder, snap: &Snapshot) -> Result<(), std::fmt::Error> {
    let model = &snap.model;
    type Read = fn(&Snapshot, &Service, &Pool, PoolId) -> usize;
    let pools: [(&str, &str, Read); 2] = [
        (
            "meridian_service_pool_usable_members",
            "Members of a service's pool that may be handed out now",
            |snap, _, _, id| crate::select::usable_count(&snap.model, &snap.health, id),
        ),
        (
            "meridian_service_pool_min_healthy",
            "Usable members a service's pool needs to be chosen (min_healthy)",
            |_, service, pool, _| service.min_healthy.needed(pool),
        ),
    ];
    for (name, help, read) in pools {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for service in &model.services {
            let service_name = service.name.to_string();
            for &id in &service.pools {
                let pool = &model.pools[id.0 as usize];
                let labels = [
                    ("service", service_name.as_str()),
                    ("pool", pool.name.as_str()),
                ];
                ConstGauge::new(read(snap, service, pool, id) as i64)
                    .encode(family.encode_family(&labels)?)?;
            }
        }
    }
    let mut family = encoder.encode_descriptor(
        "meridian_service_all_down",
        "1 when no pool of a service has a usable member, so its when_all_down policy answers",
        None,
        MetricType::Gauge,
    )?;
    for service in &model.services {
        let service_name = service.name.to_string();
        let policy = match service.when_all_down {
            WhenAllDown::All => "all",
            WhenAllDown::Fallback(_) => "fallback",
            WhenAllDown::NoData => "nodata",
            WhenAllDown::ServFail => "servfail",
        };
        let labels = [
            ("service", service_name.as_str()),
            ("when_all_down", policy),
        ];
        let down = crate::select::all_down(model, &snap.health, service);
        ConstGauge::new(i64::from(down)).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Per monitor: the members it probes and how many of them failed their last probe. All of
/// them failing at once points at Meridian's own network rather than at the members.
fn monitors(encoder: &mut DescriptorEncoder, snap: &Snapshot) -> Result<(), std::fmt::Error> {
    let model = &snap.model;
    let mut counts = vec![(0i64, 0i64); model.monitors.len()];
    for (pool, member) in model.members() {
        let Some(id) = pool.monitor else { continue };
        let h = snap.health.get(member.index);
        let slot = &mut counts[id.0 as usize];
        slot.0 += 1;
        slot.1 += i64::from(h.last_ok == Some(false));
    }
    type Read = fn(&(i64, i64)) -> i64;
    let families: [(&str, &str, Read); 2] = [
        (
            "meridian_monitor_members",
            "Members a monitor probes",
            |c| c.0,
        ),
        (
            "meridian_monitor_members_failing",
            "Members whose last probe by this monitor failed",
            |c| c.1,
        ),
    ];
    for (name, help, read) in families {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (monitor, c) in model.monitors.iter().zip(&counts) {
            ConstGauge::new(read(c))
                .encode(family.encode_family(&[("monitor", monitor.name.as_str())])?)?;
        }
    }
    Ok(())
}
