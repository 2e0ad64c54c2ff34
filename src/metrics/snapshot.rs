//! The metrics read from the snapshot in force at scrape time: its generation, and every
//! member's shown state and usability, and each signed zone's signature counts. Nothing is counted on the way; a scrape walks the model.

use std::sync::{Arc, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::health::MemberState;
use crate::state::SharedState;

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
