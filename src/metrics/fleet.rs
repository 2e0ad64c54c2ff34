//! The fleet metrics, read at scrape time from the fleet's status and the snapshot in force:
//! instances live, whether etcd is connected, members observed differently, instances on
//! another config, and etcd writes. Nothing is exported without a `[fleet]`.

use std::sync::{Arc, OnceLock, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::fleet::FleetStatus;
use crate::fleet::report::report;
use crate::state::SharedState;

/// Reads the fleet at every scrape, once the server has started it.
#[derive(Debug)]
pub(super) struct FleetCollector {
    pub(super) state: Weak<SharedState>,
    pub(super) fleet: Arc<OnceLock<Arc<FleetStatus>>>,
}

impl Collector for FleetCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (Some(state), Some(status)) = (self.state.upgrade(), self.fleet.get()) else {
            return Ok(());
        };
        let snap = state.load();
        let r = report(&snap, Some(status));
        let gauges = [
            (
                "meridian_fleet_instances_live",
                "Instances of the fleet with a live lease (this one included)",
                r.instances.len() as i64,
            ),
            (
                "meridian_fleet_etcd_connected",
                "1 while etcd is connected, else 0",
                i64::from(r.etcd_connected),
            ),
            (
                "meridian_fleet_observations_disagreeing",
                "Monitored members on which some live instance's observation differs from the state answers follow",
                r.disagreeing() as i64,
            ),
            (
                "meridian_fleet_config_mismatch",
                "Live instances whose config digest differs from this one's",
                r.config_mismatches() as i64,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        let writes = ConstCounter::new(r.etcd_writes);
        let metric = encoder.encode_descriptor(
            "meridian_fleet_etcd_writes",
            "Keys written to or deleted from etcd by this instance",
            None,
            writes.metric_type(),
        )?;
        writes.encode(metric)?;
        Ok(())
    }
}
