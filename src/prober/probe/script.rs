//! `type = "tcp"` with `send`/`expect`: a TCP dialogue with the member (HAProxy's `tcp-check
//! send`/`expect`), so a Redis answering `-LOADING` or a replica is told from a healthy
//! primary. Each step sends its bytes, then reads until its expectation is met, at most
//! `body_limit` bytes; the whole dialogue is bounded by the probe's timeout (by the caller).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ProbeError;
use super::error::io_reason;
use crate::model::TcpScript;

/// Bytes of the answer a failure reason quotes.
const QUOTED: usize = 60;

/// Runs `script` over `stream`.
/// Reads stop a little before `timeout`, so a wrong answer that never ends is reported as
/// what was read rather than as a timeout.
pub(super) async fn run(
    script: &TcpScript,
    mut stream: TcpStream,
    timeout: std::time::Duration,
) -> Result<(), ProbeError> {
    let deadline = tokio::time::Instant::now() + timeout.mul_f64(0.9);
    let many = script.steps.len() > 1;
    let mut buf = vec![0u8; 4096.min(script.body_limit.max(1))];
    for (i, step) in script.steps.iter().enumerate() {
        let at = |reason: String| {
            ProbeError::Expect(if many {
                format!("step {}: {reason}", i + 1)
            } else {
                reason
            })
        };
        if !step.send.is_empty() {
            stream
                .write_all(&step.send)
                .await
                .map_err(|e| io_error(&e))?;
        }
        let Some(expect) = &step.expect else {
            continue;
        };
        let mut answer = Vec::new();
        loop {
            if expect.met_by(&answer) {
                break;
            }
            if answer.len() >= script.body_limit {
                return Err(at(format!(
                    "expected {expect} within {} bytes, got {}",
                    script.body_limit,
                    quote(&answer)
                )));
            }
            let room = (script.body_limit - answer.len()).min(buf.len());
            let read = tokio::time::timeout_at(deadline, stream.read(&mut buf[..room])).await;
            let n = match read {
                Ok(n) => n.map_err(|e| io_error(&e))?,
                Err(_) if answer.is_empty() => {
                    return Err(at(format!("expected {expect}, no answer")));
                }
                Err(_) => return Err(at(format!("expected {expect}, got {}", quote(&answer)))),
            };
            if n == 0 {
                return Err(at(if answer.is_empty() {
                    format!("expected {expect}, connection closed")
                } else {
                    format!("expected {expect}, got {}", quote(&answer))
                }));
            }
            answer.extend_from_slice(&buf[..n]);
        }
    }
    Ok(())
}

fn io_error(e: &std::io::Error) -> ProbeError {
    io_reason(e).unwrap_or_else(|| ProbeError::Expect(e.to_string()))
}

/// The start of an answer, escaped (`"$431\r\n# Replication\r\nrole:slave…"`).
fn quote(answer: &[u8]) -> String {
    let cut = &answer[..answer.len().min(QUOTED)];
    let more = if cut.len() < answer.len() { "…" } else { "" };
    format!("\"{}\"{more}", cut.escape_ascii())
}
