//! `type = "exec"`: a command run per probe (keepalived's `MISC_CHECK`, ldirectord's
//! `external`), for services whose health only a script knows. No shell: the program and its
//! arguments are run as configured, with `{address}` and `{port}` replaced by the member's (also
//! in `MERIDIAN_ADDRESS` and `MERIDIAN_PORT`). Exit 0 is up; otherwise the first line of stderr
//! (or how it ended) is the reason. With `weight_from = "exit"`, keepalived's `misc_dynamic`:
//! 2 and above are up too, with a weight share. Each command runs in its own process group, which is killed
//! when the probe ends, so a timed-out check leaves nothing behind.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

use super::ProbeError;
use crate::model::{ExecCheck, ProbeSpec, exit_share};

/// Bytes of stderr read for the reason.
const STDERR_LIMIT: u64 = 4096;

/// Longest reason taken from stderr, in characters.
const REASON_CHARS: usize = 200;

/// The running-command slots of each `exec` check (its `max_concurrent`). A check that a
/// reload changes gets new slots; the old entry stays, a few bytes per distinct check.
#[derive(Debug, Clone, Default)]
pub(super) struct Slots(Arc<Mutex<HashMap<ExecCheck, Arc<Semaphore>>>>);

impl Slots {
    fn of(&self, check: &ExecCheck) -> Arc<Semaphore> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(check.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(check.max_concurrent)))
            .clone()
    }

    /// Runs `check` for `spec.target`, waiting for a free slot first (the wait counts towards
    /// the probe's timeout); with `weight_from = "exit"`, the share the exit status reports.
    pub(super) async fn run(
        &self,
        check: &ExecCheck,
        spec: &ProbeSpec,
    ) -> Result<Option<u8>, ProbeError> {
        let slots = self.of(check);
        let _slot = slots
            .acquire()
            .await
            .map_err(|_| ProbeError::Exec("no slot".to_string()))?;
        let address = spec.target.ip().to_string();
        let port = spec.target.port().to_string();
        let mut command = tokio::process::Command::new(&check.command);
        command
            .args(
                check
                    .args
                    .iter()
                    .map(|a| a.replace("{address}", &address).replace("{port}", &port)),
            )
            .env("MERIDIAN_ADDRESS", &address)
            .env("MERIDIAN_PORT", &port)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| ProbeError::Exec(format!("cannot run {}: {e}", check.command)))?;
        let _group = child.id().map(Group);
        let stderr = child.stderr.take();
        let read = async move {
            let mut text = Vec::new();
            if let Some(stderr) = stderr {
                // A read error leaves what was read: the reason is a courtesy.
                let _ = stderr.take(STDERR_LIMIT).read_to_end(&mut text).await;
            }
            text
        };
        let (status, stderr) = tokio::join!(child.wait(), read);
        let status = status.map_err(|e| ProbeError::Exec(format!("wait: {e}")))?;
        match status.code() {
            Some(code) if check.exit_weight => {
                if let Some(share) = exit_share(code) {
                    return Ok(Some(share));
                }
            }
            Some(0) => return Ok(None),
            _ => {}
        }
        let line = String::from_utf8_lossy(&stderr)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| l.chars().take(REASON_CHARS).collect::<String>());
        Err(ProbeError::Exec(match (line, status.code()) {
            (Some(line), _) => line,
            (None, Some(code)) => format!("exit {code}"),
            (None, None) => {
                use std::os::unix::process::ExitStatusExt;
                format!("killed by signal {}", status.signal().unwrap_or_default())
            }
        }))
    }
}

/// A command's process group, killed when the probe ends (finished, failed or timed out and
/// dropped), so no background child of a check outlives it.
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0) {
            // ESRCH: the group is gone already.
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}
