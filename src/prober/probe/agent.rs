//! HAProxy's agent check, so existing HAProxy agents work unchanged: connect to the agent's
//! port, read one line, and turn its words into a verdict and a weight share.

use std::net::{IpAddr, SocketAddr};

use tokio::io::AsyncReadExt;

use super::ProbeError;
use super::error::connect_error;
use super::weight::share;

/// Bytes read from an agent at most; HAProxy's agents answer one short line.
const LINE_LIMIT: usize = 1024;

/// Connects to the agent at `target` (from `source`), reads its line and judges it.
pub(super) async fn probe(
    target: SocketAddr,
    source: Option<IpAddr>,
) -> Result<Option<u8>, ProbeError> {
    let mut stream = super::connect(target, source)
        .await
        .map_err(|e| connect_error(&e))?;
    let mut line = Vec::new();
    let mut buf = [0u8; 256];
    while line.len() < LINE_LIMIT && !line.contains(&b'\n') {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => line.extend_from_slice(&buf[..n]),
            Err(e) if line.is_empty() => return Err(connect_error(&e)),
            Err(_) => break,
        }
    }
    if line.is_empty() {
        return Err(ProbeError::Agent("closed without a reply".to_string()));
    }
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    parse(&String::from_utf8_lossy(&line[..end]))
}

/// Judges one agent line as HAProxy's `agent-check` documents it: words separated by spaces,
/// tabs or commas; `down`, `fail`, `stopped` (optionally followed by `#description`) and
/// `maint` fail the probe; `drain` is a share of 0; `N%` a share of N (capped at 100); `ready`
/// a share of 100 unless a percentage is given; `up` passes without a share; `maxconn:N` and
/// unknown words are ignored. A line with no known word fails.
pub fn parse(line: &str) -> Result<Option<u8>, ProbeError> {
    let (words, description) = match line.split_once('#') {
        Some((w, d)) => (w, Some(d.trim())),
        None => (line, None),
    };
    let (mut known, mut down, mut maint, mut drain, mut ready) = (false, None, false, false, false);
    let mut percent = None;
    for word in words
        .split([' ', '\t', ',', '\r', '\n'])
        .filter(|w| !w.is_empty())
    {
        let lower = word.to_ascii_lowercase();
        match lower.as_str() {
            "down" | "fail" | "stopped" => down = Some(lower),
            "maint" => maint = true,
            "drain" => drain = true,
            "ready" => ready = true,
            "up" => {}
            w if w.starts_with("maxconn:") => {}
            w if w.ends_with('%') => match share(w) {
                Some(s) => percent = Some(s),
                None => continue,
            },
            _ => continue,
        }
        known = true;
    }
    if let Some(word) = down {
        return Err(ProbeError::Agent(
            match description.filter(|d| !d.is_empty()) {
                Some(d) => format!("{word} ({d})"),
                None => word,
            },
        ));
    }
    if maint {
        return Err(ProbeError::Agent("maint".to_string()));
    }
    if !known {
        return Err(ProbeError::Agent(format!("nothing understood in {line:?}")));
    }
    Ok(if drain {
        Some(0)
    } else {
        percent.or(ready.then_some(100))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(line: &str) -> String {
        parse(line).unwrap_err().to_string()
    }

    #[test]
    fn agent_lines_as_haproxy_documents_them() {
        assert_eq!(parse("75%\n"), Ok(Some(75)));
        assert_eq!(parse("up 50%"), Ok(Some(50)));
        assert_eq!(parse("up,50%\r"), Ok(Some(50)));
        assert_eq!(parse("UP\t20%  maxconn:30"), Ok(Some(20)));
        assert_eq!(parse("up"), Ok(None));
        assert_eq!(parse("ready"), Ok(Some(100)));
        assert_eq!(parse("ready 40%"), Ok(Some(40)));
        assert_eq!(parse("drain"), Ok(Some(0)));
        assert_eq!(parse("drain 50%"), Ok(Some(0)));
        assert_eq!(parse("0%"), Ok(Some(0)));
        assert_eq!(parse("250%"), Ok(Some(100)));
        assert_eq!(reason("down"), "agent: down");
        assert_eq!(reason("fail #disk full"), "agent: fail (disk full)");
        assert_eq!(reason("stopped 50%"), "agent: stopped");
        assert_eq!(reason("maint"), "agent: maint");
        assert_eq!(reason("drain maint"), "agent: maint");
        assert_eq!(reason("hello"), "agent: nothing understood in \"hello\"");
        assert_eq!(reason(""), "agent: nothing understood in \"\"");
        assert_eq!(reason("-5%"), "agent: nothing understood in \"-5%\"");
    }
}
