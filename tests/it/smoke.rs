//! The compiled binary: `check` exit codes and messages, and `serve` on port 0 reaching its
//! stable `listening for …` lines, answering, and stopping cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use hickory_proto::rr::RecordType;

use crate::support::{
    QueryBuilder, fixture_zones, listening_addrs, parse, spawn_serve, udp_exchange,
};

const BIN: &str = env!("CARGO_BIN_EXE_meridian");

fn write_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("meridian.toml");
    let text = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = {:?}\n{extra}",
        fixture_zones().display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_accepts_a_valid_config_with_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "");
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(": ok: 1 zones"), "{stdout}");
}

#[test]
fn check_refuses_a_bad_config_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[services.\"www.example.org.\"]\npools = []\n");
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "error: {}:4: services.\"www.example.org.\" has no pools",
        path.display()
    );
    assert_eq!(stderr.trim(), want);
}

#[test]
fn serve_prints_listening_lines_answers_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "");
    let mut child = spawn_serve(&path);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let [udp, tcp] = listening_addrs(&mut lines, &["dns-udp", "dns-tcp"])[..] else {
        unreachable!("two kinds asked, two addresses")
    };
    assert_eq!(udp.port(), tcp.port(), "UDP and TCP share the port");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reply = rt.block_on(udp_exchange(
        udp,
        &QueryBuilder::new("static.example.test.", RecordType::A).build(),
    ));
    assert_eq!(parse(&reply).answers.len(), 1);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "clean exit after SIGTERM: {exit:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("SIGTERM received")),
        "{rest:?}"
    );
}

/// Reads the child's stderr on a thread so the test can wait for a line with a bound.
struct LogLines(std::sync::mpsc::Receiver<String>);

impl LogLines {
    fn new(stderr: std::process::ChildStderr) -> LogLines {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LogLines(rx)
    }

    /// The first line containing `needle`, waiting at most 10 s.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.0.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line containing {needle:?} within 10 s"),
            }
        }
    }
}

#[test]
fn sighup_reloads_and_a_bad_config_keeps_the_old_one_serving() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "");
    let mut child = spawn_serve(&path);
    let log = LogLines::new(child.stderr.take().unwrap());
    let line = log.wait_for("listening for dns-udp on ");
    let udp: SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ask = |name: &str| {
        let q = QueryBuilder::new(name, RecordType::A).build();
        parse(&rt.block_on(udp_exchange(udp, &q)))
    };
    let hup = || {
        let ok = Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    };

    // A broken config is refused with file and line; the running one keeps answering.
    write_config(
        dir.path(),
        "[services.\"www.example.test.\"]\npools = [\"nope\"]\n",
    );
    hup();
    let line = log.wait_for("reload failed");
    assert!(line.contains(&format!("{}:5:", path.display())), "{line}");
    assert_eq!(ask("static.example.test.").answers.len(), 1);
    assert!(ask("www.example.test.").answers.is_empty());

    // A good one takes effect without a restart.
    write_config(
        dir.path(),
        "[pools.p]\nmembers = [{ address = \"192.0.2.44\" }]\n\n[services.\"www.example.test.\"]\npools = [\"p\"]\n",
    );
    hup();
    log.wait_for("reloaded:");
    let r = ask("www.example.test.");
    assert_eq!(r.answers.len(), 1);
    assert_eq!(ask("static.example.test.").answers.len(), 1);

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}
