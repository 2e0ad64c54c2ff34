//! The directors' counters as `/metrics` exports them: read from [`DirectorStats`] at scrape
//! time, so the connection path only bumps the atomics it already keeps.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::stats::{DirectorConnStats, DirectorStats, MemberConnStats};

impl DirectorStats {
    /// A collector of these directors' counters, for the metrics registry.
    pub fn collector(&self) -> DirectorCollector {
        DirectorCollector {
            stats: self.clone(),
        }
    }
}

/// Reads the directors' counters at scrape time.
#[derive(Debug)]
pub struct DirectorCollector {
    stats: DirectorStats,
}

impl Collector for DirectorCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let directors = self.stats.snapshot();
        let name = |d: &DirectorConnStats| {
            d.listen
                .first()
                .map_or_else(|| d.service.clone(), ToString::to_string)
        };
        let mut family = encoder.encode_descriptor(
            "meridian_director_connections_active",
            "Client connections open through a director now",
            None,
            MetricType::Gauge,
        )?;
        for d in &directors {
            let labels = [("director", name(d))];
            ConstGauge::new(d.active as i64).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "meridian_director_accepted",
            "Client connections a director accepted (refused ones included)",
            None,
            MetricType::Counter,
        )?;
        for d in &directors {
            let labels = [("director", name(d))];
            ConstCounter::new(d.accepted).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "meridian_director_refused",
            "Client connections a director closed at once, by reason (acl, limit, no_member, connect)",
            None,
            MetricType::Counter,
        )?;
        for d in &directors {
            for (reason, n) in [
                ("acl", d.refused_acl),
                ("limit", d.refused_limit),
                ("no_member", d.refused_no_member),
                ("connect", d.refused_connect),
            ] {
                let labels = [("director", name(d)), ("reason", reason.to_string())];
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        type Field = fn(&MemberConnStats) -> u64;
        let per_member: [(&str, &str, bool, Field); 5] = [
            (
                "meridian_director_member_connections_active",
                "Connections open to a member through a director now",
                true,
                |m| m.active,
            ),
            (
                "meridian_director_member_connections",
                "Connections established to a member through a director",
                false,
                |m| m.total,
            ),
            (
                "meridian_director_member_connect_failures",
                "Failed connects to a member (refused, timed out) through a director",
                false,
                |m| m.failed_connects,
            ),
            (
                "meridian_director_member_bytes_to_backend",
                "Bytes forwarded from clients to a member",
                false,
                |m| m.bytes_to_backend,
            ),
            (
                "meridian_director_member_bytes_to_client",
                "Bytes forwarded from a member to clients",
                false,
                |m| m.bytes_to_client,
            ),
        ];
        for (metric, help, gauge, field) in per_member {
            let kind = if gauge {
                MetricType::Gauge
            } else {
                MetricType::Counter
            };
            let mut family = encoder.encode_descriptor(metric, help, None, kind)?;
            for d in &directors {
                for m in &d.members {
                    let labels = [
                        ("director", name(d)),
                        ("pool", m.pool.clone()),
                        ("backend", m.backend.to_string()),
                    ];
                    let encoded = family.encode_family(&labels)?;
                    if gauge {
                        ConstGauge::new(field(m) as i64).encode(encoded)?;
                    } else {
                        ConstCounter::new(field(m)).encode(encoded)?;
                    }
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "meridian_director_member_first_byte_ewma_seconds",
            "Moving average of a member's time to first byte through a director (scheduler = \"fastest\"), from the start of the connect",
            None,
            MetricType::Gauge,
        )?;
        for d in &directors {
            for m in &d.members {
                if let Some(t) = m.first_byte {
                    let labels = [
                        ("director", name(d)),
                        ("pool", m.pool.clone()),
                        ("backend", m.backend.to_string()),
                    ];
                    ConstGauge::new(t.as_secs_f64()).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}
