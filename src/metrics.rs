//! Prometheus metrics: what `/metrics` exports, assembled from the parts that count. Each stage
//! owns its instruments: the DNS transports their atomic query counters
//! ([`crate::dns::counters`]), the prober its probe and transition counters
//! ([`crate::prober::metrics`]), the directors their connection counters (a collector read at
//! scrape time, [`crate::director::metrics`]); this module registers them in one registry, adds
//! the reload counter, and reads per-member state and the snapshot generation from the current
//! snapshot at scrape time ([`snapshot`]).

mod fleet;
mod snapshot;

use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::director::stats::DirectorStats;
use crate::dns::counters::DnsMetrics;
use crate::dnstap::DnstapStats;
use crate::fleet::FleetStatus;
use crate::health::events::Events;
use crate::prober::metrics::{HealthTelemetry, ProbeMetrics};
use crate::state::SharedState;

/// The content type of [`Metrics::encode`]'s output (OpenMetrics text, which Prometheus scrapes).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a running instance reports about itself: its metrics, its recent health transitions and
/// its directors' live counters. One per instance (tests run several in one process), shared by
/// the DNS transport, the health writer, the directors, the reloader and the HTTP API.
#[derive(Debug, Clone)]
pub struct Telemetry {
    /// Counters, gauges and histograms for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The transitions ring and its live feed.
    pub events: Arc<Events>,
    /// The directors' connection counters (read by `/metrics` and the status API).
    pub directors: DirectorStats,
    /// The fleet's status, once the server started it (fleet mode only).
    pub fleet: Arc<OnceLock<Arc<FleetStatus>>>,
}

impl Telemetry {
    /// Metrics reading the snapshot in `state` and the counters of `directors`, and an empty
    /// transitions ring.
    pub fn new(state: &Arc<SharedState>, directors: DirectorStats) -> Telemetry {
        let fleet = Arc::new(OnceLock::new());
        let metrics = Metrics::new(state, &directors, &fleet);
        Telemetry {
            metrics: Arc::new(metrics),
            events: Arc::new(Events::default()),
            directors,
            fleet,
        }
    }

    /// What the health writer records into: the probe counters and the transitions ring.
    pub fn health(&self) -> HealthTelemetry {
        HealthTelemetry {
            metrics: self.metrics.probes.clone(),
            events: self.events.clone(),
        }
    }
}

/// Label set `{result=…}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// Everything `/metrics` exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// DNS query counters, bumped by the transports.
    pub dns: Arc<DnsMetrics>,
    /// Probe and transition counters, bumped by the prober.
    pub probes: Arc<ProbeMetrics>,
    /// dnstap messages sent and dropped, bumped by the dnstap sink.
    pub dnstap: Arc<DnstapStats>,
    reloads: Family<ResultLabel, Counter>,
    last_reload_ok: Gauge,
}

impl Metrics {
    /// Every metric: the DNS counters, the prober's, the directors' (read from `directors` at
    /// scrape time), reloads, and per-member state read from `state` at scrape time.
    pub fn new(
        state: &Arc<SharedState>,
        directors: &DirectorStats,
        fleet: &Arc<OnceLock<Arc<FleetStatus>>>,
    ) -> Metrics {
        let mut registry = Registry::default();
        let dns = Arc::new(DnsMetrics::default());
        registry.register_collector(Box::new(dns.clone()));
        let probes = Arc::new(ProbeMetrics::default());
        probes.register(&mut registry);
        let dnstap = Arc::new(DnstapStats::new());
        dnstap.register(&mut registry);
        let reloads = Family::<ResultLabel, Counter>::default();
        for result in ["ok", "error"] {
            let _ = reloads.get_or_create(&ResultLabel { result });
        }
        registry.register(
            "meridian_config_reloads",
            "Config reloads (SIGHUP or API), by result",
            reloads.clone(),
        );
        let last_reload_ok = Gauge::default();
        last_reload_ok.set(1);
        registry.register(
            "meridian_config_last_reload_successful",
            "1 when the last reload succeeded (or none was tried since start), 0 after a refused one",
            last_reload_ok.clone(),
        );
        registry.register_collector(Box::new(snapshot::SnapshotCollector::new(state)));
        registry.register_collector(Box::new(directors.collector()));
        registry.register_collector(Box::new(fleet::FleetCollector {
            state: Arc::downgrade(state),
            fleet: fleet.clone(),
        }));
        Metrics {
            registry,
            dns,
            probes,
            dnstap,
            reloads,
            last_reload_ok,
        }
    }

    /// Counts a config reload.
    pub fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.reloads.get_or_create(&ResultLabel { result }).inc();
        self.last_reload_ok.set(i64::from(ok));
    }

    /// The OpenMetrics text of every metric, for [`CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail; a collector error would only truncate the text.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
