//! A scripted probe for tests of the prober and of the server: outcomes are set per target.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Probe, ProbeError, ProbeResult};
use crate::model::ProbeSpec;

/// A probe whose outcomes the test sets, per target, for tests of the prober and the server.
/// Targets without a set outcome pass. Clones share their state, so a test keeps one and hands
/// the other to the code under test.
#[derive(Debug, Clone, Default)]
pub struct FakeProbe {
    state: Arc<Mutex<FakeState>>,
}

#[derive(Debug, Default)]
struct FakeState {
    outcomes: HashMap<SocketAddr, Result<(), ProbeError>>,
    calls: HashMap<SocketAddr, u64>,
}

impl FakeProbe {
    /// A fake under which every target passes.
    pub fn new() -> FakeProbe {
        FakeProbe::default()
    }

    /// From now on, probes of `target` report `outcome`.
    pub fn set(&self, target: SocketAddr, outcome: Result<(), ProbeError>) {
        self.lock().outcomes.insert(target, outcome);
    }

    /// How many times `target` has been probed.
    pub fn calls(&self, target: SocketAddr) -> u64 {
        self.lock().calls.get(&target).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        // A panicking test thread cannot leave the maps half-updated; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Probe for FakeProbe {
    fn probe(&self, spec: &ProbeSpec) -> impl Future<Output = ProbeResult> + Send {
        let outcome = {
            let mut state = self.lock();
            *state.calls.entry(spec.target).or_default() += 1;
            state.outcomes.get(&spec.target).cloned().unwrap_or(Ok(()))
        };
        std::future::ready(ProbeResult {
            outcome,
            latency: Duration::ZERO,
            weight: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProbeKind;

    fn spec(kind: ProbeKind, target: SocketAddr) -> ProbeSpec {
        ProbeSpec {
            kind,
            target,
            timeout: Duration::from_secs(1),
            source: None,
        }
    }

    #[tokio::test]
    async fn fake_probe_reports_what_the_test_set() {
        let fake = FakeProbe::new();
        let a: SocketAddr = "192.0.2.1:80".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:80".parse().unwrap();
        let handed_out = fake.clone();
        fake.set(b, Err(ProbeError::Status(503)));
        assert!(handed_out.probe(&spec(ProbeKind::Tcp, a)).await.is_ok());
        let result = handed_out.probe(&spec(ProbeKind::Tcp, b)).await;
        assert_eq!(result.outcome, Err(ProbeError::Status(503)));
        fake.set(b, Ok(()));
        assert!(handed_out.probe(&spec(ProbeKind::Tcp, b)).await.is_ok());
        assert_eq!((fake.calls(a), fake.calls(b)), (1, 2));
    }
}
