//! The prober's own metrics: probe durations by monitor type, probe failures by reason and
//! member state changes by new state. Probes and transitions are rare, so plain
//! `prometheus-client` metrics serve; `/metrics` registers them with the rest.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::probe::ProbeError;
use crate::health::MemberState;
use crate::health::events::Events;
use crate::model::ProbeKind;

/// Buckets of the probe duration histogram, in seconds.
const PROBE_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Label set `{reason=…}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Label set `{type=…}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: &'static str,
}

/// Label set `{to=…}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToLabel {
    to: &'static str,
}

/// Probe and transition counters, written by the prober and its writer.
#[derive(Debug)]
pub struct ProbeMetrics {
    probe_duration: Family<TypeLabel, Histogram>,
    probe_failures: Family<ReasonLabel, Counter>,
    transitions: Family<ToLabel, Counter>,
}

impl Default for ProbeMetrics {
    fn default() -> ProbeMetrics {
        let metrics = ProbeMetrics {
            probe_duration: Family::new_with_constructor(|| {
                Histogram::new(PROBE_BUCKETS.iter().copied())
            }),
            probe_failures: Family::default(),
            transitions: Family::default(),
        };
        // Every label value exists from the start, so rates and alerts see zeros, not gaps.
        for reason in PROBE_FAILURE_REASONS {
            let _ = metrics
                .probe_failures
                .get_or_create(&ReasonLabel { reason });
        }
        for to in MemberState::ALL {
            let _ = metrics
                .transitions
                .get_or_create(&ToLabel { to: to.as_str() });
        }
        metrics
    }
}

impl ProbeMetrics {
    /// Adds these metrics to `registry` (they stay shared with the prober).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "meridian_probe_duration_seconds",
            "Time health probes took, by monitor type",
            self.probe_duration.clone(),
        );
        registry.register(
            "meridian_probe_failures",
            "Failed health probes, by reason",
            self.probe_failures.clone(),
        );
        registry.register(
            "meridian_health_transitions",
            "Member state changes (probe flips, admin actions, reloads), by new state",
            self.transitions.clone(),
        );
    }

    /// Counts one probe: its duration, and its failure reason when it failed.
    pub fn probe(&self, kind: &ProbeKind, latency: Duration, outcome: &Result<(), ProbeError>) {
        self.probe_duration
            .get_or_create(&TypeLabel {
                r#type: probe_type(kind),
            })
            .observe(latency.as_secs_f64());
        if let Err(e) = outcome {
            self.probe_failures
                .get_or_create(&ReasonLabel {
                    reason: failure_reason(e),
                })
                .inc();
        }
    }

    /// Counts a member's state change to `to` (`absent` included: a member a reload removed).
    pub fn transition(&self, to: MemberState) {
        self.transitions
            .get_or_create(&ToLabel { to: to.as_str() })
            .inc();
    }
}

/// What the health writer reports to: the probe and transition counters and the transitions
/// ring. Cheap to clone; one per running instance.
#[derive(Debug, Clone, Default)]
pub struct HealthTelemetry {
    /// Probe and transition counters.
    pub metrics: Arc<ProbeMetrics>,
    /// The ring of recent transitions and its live feed.
    pub events: Arc<Events>,
}

/// Every probe failure reason kind (the `reason` label of `meridian_probe_failures_total`).
pub const PROBE_FAILURE_REASONS: [&str; 13] = [
    "timeout",
    "connect_refused",
    "connection_reset",
    "connect",
    "tls",
    "http_status",
    "body",
    "http",
    "expect",
    "dns",
    "exec",
    "agent",
    "resolve",
];

/// The bounded `reason` label of a probe failure.
pub fn failure_reason(e: &ProbeError) -> &'static str {
    match e {
        ProbeError::Timeout(_) => "timeout",
        ProbeError::ConnectRefused => "connect_refused",
        ProbeError::ConnectionReset => "connection_reset",
        ProbeError::Connect(_) => "connect",
        ProbeError::Tls(_) => "tls",
        ProbeError::Status(_) => "http_status",
        ProbeError::BodyMismatch(_) => "body",
        ProbeError::Http(_) => "http",
        ProbeError::Expect(_) => "expect",
        ProbeError::Dns(_) => "dns",
        ProbeError::Exec(_) => "exec",
        ProbeError::Agent(_) => "agent",
        ProbeError::Resolve(_) => "resolve",
    }
}

/// The `type` label of a probe.
pub fn probe_type(kind: &ProbeKind) -> &'static str {
    kind.word()
}
