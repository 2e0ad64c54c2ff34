//! Config reloads, shared by SIGHUP and `POST /api/v1/reload`: everything (config, every zone
//! file, monitors) is parsed and validated first; a bad config is refused with `file:line:
//! reason` and the running one stays in service; a good one goes to the health writer, which
//! carries health and overrides of unchanged members over and publishes it in one swap.

use std::sync::Arc;

use tracing::{error, info, warn};

use crate::config::ConfigError;
use crate::metrics::Telemetry;
use crate::model::Model;
use crate::prober::HealthControl;
use crate::state::SharedState;

/// What a successful reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Generation of the snapshot that carries the new config.
    pub generation: u64,
    /// What is served now (`1 zones (8 names), 2 services, …`).
    pub summary: String,
    /// Things that did not take effect (changed listen addresses).
    pub warnings: Vec<String>,
}

/// Why a reload was refused; the running config stays in service.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new config (or a zone file) is invalid: `file:line: reason`.
    #[error(transparent)]
    Invalid(ConfigError),
    /// The health writer is gone (shutting down).
    #[error("reload failed: {0}")]
    Unavailable(String),
}

/// Reloads the config file the running model came from. Logs the outcome and counts it in
/// `meridian_config_reloads_total`.
pub async fn reload(
    state: &Arc<SharedState>,
    control: &HealthControl,
    telemetry: &Telemetry,
) -> Result<Reloaded, ReloadError> {
    let result = attempt(state, control).await;
    telemetry.metrics.reload(result.is_ok());
    match &result {
        Ok(r) => info!(generation = r.generation, "reloaded: {}", r.summary),
        Err(ReloadError::Invalid(e)) => error!("reload failed, keeping the running config: {e}"),
        Err(e) => error!("{e}"),
    }
    result
}

async fn attempt(
    state: &Arc<SharedState>,
    control: &HealthControl,
) -> Result<Reloaded, ReloadError> {
    let path = state.load().model.config_path.clone();
    info!("reloading {}", path.display());
    let loaded = tokio::task::spawn_blocking(move || Model::load(&path))
        .await
        .map_err(|e| ReloadError::Unavailable(e.to_string()))?;
    let model = loaded.map_err(ReloadError::Invalid)?;
    let mut warnings = Vec::new();
    {
        let running = state.load();
        let http = |m: &Model| m.http.as_ref().map(|h| h.listen);
        if model.dns.listen != running.model.dns.listen || http(&model) != http(&running.model) {
            let w = "listen addresses changed: they take effect at the next restart";
            warn!("{w}");
            warnings.push(w.to_string());
        }
        let tls = |m: &Model| m.http.as_ref().is_some_and(|h| h.tls.is_some());
        if tls(&model) != tls(&running.model) {
            let w = "http TLS turned on or off: it takes effect at the next restart (a renewed certificate takes effect now)";
            warn!("{w}");
            warnings.push(w.to_string());
        }
        for w in model.http.iter().flat_map(|h| h.warnings()) {
            warn!("{w}");
            warnings.push(w);
        }
        if model.fleet != running.model.fleet {
            let w = "[fleet] changed: it takes effect at the next restart";
            warn!("{w}");
            warnings.push(w.to_string());
        }
        if model.dns.workers != running.model.dns.workers {
            let w = format!(
                "dns.workers changed from {} to {}: takes effect at the next restart",
                running.model.dns.workers, model.dns.workers
            );
            warn!("{w}");
            warnings.push(w);
        }
        // A director address no longer listed stops accepting at once; a new one is bound at
        // the next restart.
        let running_directors = running.model.director_listen();
        let added: Vec<String> = model
            .director_listen()
            .iter()
            .filter(|a| !running_directors.contains(a))
            .map(ToString::to_string)
            .collect();
        if !added.is_empty() {
            let w = format!(
                "new director listen addresses {} are bound at the next restart",
                added.join(", ")
            );
            warn!("{w}");
            warnings.push(w);
        }
    }
    let summary = model.summary();
    let generation = control
        .reload(model)
        .await
        .map_err(|e| ReloadError::Unavailable(e.to_string()))?;
    Ok(Reloaded {
        generation,
        summary,
        warnings,
    })
}
