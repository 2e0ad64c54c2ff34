//! The ready-made Prometheus rules in `examples/prometheus/`: `promtool` checks them and runs
//! their unit tests, and a live Meridian exports every metric they use, with the values the
//! alerts read when members fail, a pool falls below `min_healthy`, a service is all down, a
//! monitor's members all fail, RRL limits and a reload is refused.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use hickory_proto::rr::RecordType;

use crate::backend::Backend;
use crate::support::*;

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/prometheus")
}

fn promtool(args: &[&str]) -> std::process::Output {
    std::process::Command::new("promtool")
        .args(args)
        .current_dir(rules_dir())
        .output()
        .expect("promtool is installed (Debian package prometheus; the README's test command installs it)")
}

#[test]
fn promtool_accepts_the_rules_and_the_scrape_config_and_their_unit_tests_pass() {
    for args in [
        &["check", "rules", "alerts.yml"][..],
        &["check", "config", "prometheus.yml"],
        &["test", "rules", "alerts.test.yml"],
    ] {
        let out = promtool(args);
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The metric names the rules' expressions use.
fn metrics_in_rules() -> BTreeSet<String> {
    let text = std::fs::read_to_string(rules_dir().join("alerts.yml")).expect("alerts.yml");
    let re = regex::Regex::new(r"meridian_[a-z_]+").unwrap();
    text.lines()
        .filter(|l| l.trim_start().starts_with("expr:"))
        .flat_map(|l| {
            re.find_iter(l)
                .map(|m| m.as_str().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn a_live_meridian_exports_what_each_alert_reads() {
    let a = Backend::http().start().await;
    let b = Backend::http().start().await;
    let c = Backend::http().start().await;
    let d = Backend::http().start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = [
        HTTP_OPEN,
        &monitor("web", "http", ""),
        &pool("eu", "web", &[member(A, &a), member(B, &b)]),
        &pool(
            "us",
            "web",
            &[member("192.0.2.20", &c), member("192.0.2.21", &d)],
        ),
        &service(
            WWW,
            &["eu", "us"],
            "min_healthy = 2\nwhen_all_down = \"nodata\"",
        ),
    ]
    .concat();
    // The test's own queries come from 127.0.0.1; the burst below from 127.0.0.2.
    let rrl =
        "[dns.rrl]\nresponses_per_second = 1\nburst = 1\nslip = 0\nexempt = [\"127.0.0.1\"]\n";
    let m = Meridian::start_at(dir.path(), rrl, &config).await;
    until_answer(&m, WWW, &[A, B]).await;
    eventually("the first probe round", || async {
        let s = scrape(&m).await;
        let probed = s.value("meridian_members", &[("state", "up")]);
        if probed == 4.0 { Ok(()) } else { Err(s.text) }
    })
    .await;

    let scraped = scrape(&m).await;
    let exported: BTreeSet<&str> = scraped
        .scrape
        .samples
        .iter()
        .map(|s| s.metric.as_str())
        .collect();
    let used = metrics_in_rules();
    assert!(used.len() >= 6, "{used:?}");
    for name in &used {
        assert!(
            exported.contains(name.as_str()),
            "alerts.yml uses {name}, which /metrics does not export:\n{}",
            scraped.text
        );
    }
    let svc = ("service", WWW);
    assert_eq!(
        scraped.value(
            "meridian_service_pool_usable_members",
            &[svc, ("pool", "eu")]
        ),
        2.0
    );
    assert_eq!(
        scraped.value("meridian_service_pool_min_healthy", &[svc, ("pool", "eu")]),
        2.0
    );
    assert_eq!(
        scraped.value(
            "meridian_service_all_down",
            &[svc, ("when_all_down", "nodata")]
        ),
        0.0
    );
    assert_eq!(
        scraped.value("meridian_monitor_members", &[("monitor", "web")]),
        4.0
    );
    assert_eq!(
        scraped.value("meridian_monitor_members_failing", &[("monitor", "web")]),
        0.0
    );
    assert_eq!(
        scraped.value("meridian_config_last_reload_successful", &[]),
        1.0
    );

    // One member of eu down: eu is below min_healthy, the service is not all down.
    b.stop().await;
    eventually("eu below min_healthy", || async {
        let s = scrape(&m).await;
        let usable = s.value(
            "meridian_service_pool_usable_members",
            &[svc, ("pool", "eu")],
        );
        let down = s.value("meridian_members", &[("state", "down")]);
        if usable == 1.0 && down == 1.0 {
            Ok(())
        } else {
            Err(format!("usable {usable}, down {down}"))
        }
    })
    .await;
    assert_eq!(
        answer(&m, WWW).await,
        ips(&["192.0.2.20", "192.0.2.21"]),
        "steering skips eu"
    );

    // Every member down: the service is all down, and the monitor's members all fail.
    a.stop().await;
    c.stop().await;
    d.stop().await;
    eventually("all down", || async {
        let s = scrape(&m).await;
        let all_down = s.value(
            "meridian_service_all_down",
            &[svc, ("when_all_down", "nodata")],
        );
        let failing = s.value("meridian_monitor_members_failing", &[("monitor", "web")]);
        if all_down == 1.0 && failing == 4.0 {
            Ok(())
        } else {
            Err(format!("all_down {all_down}, failing {failing}"))
        }
    })
    .await;

    // RRL: a burst from one client is limited and counted.
    let query = QueryBuilder::new("ns1.example.test.", RecordType::A).build();
    let flood = tokio::net::UdpSocket::bind("127.0.0.2:0")
        .await
        .expect("bind 127.0.0.2");
    for _ in 0..50 {
        flood.send_to(&query, m.udp).await.expect("send");
    }
    eventually("RRL counts what it limits", || async {
        let s = scrape(&m).await;
        let limited = s.value("meridian_dns_rrl_limited_total", &[("action", "dropped")]);
        if limited > 0.0 {
            Ok(())
        } else {
            Err(format!("{limited}"))
        }
    })
    .await;

    // A refused reload: the gauge the alert reads goes to 0, and back to 1 with a good one.
    let path = dir.path().join("meridian.toml");
    let good = std::fs::read_to_string(&path).expect("config");
    std::fs::write(&path, format!("{good}\n[nonsense]\n")).expect("break config");
    assert!(
        meridian::reload::reload(&m.state, &m.control, &m.telemetry)
            .await
            .is_err()
    );
    assert_eq!(
        scrape(&m)
            .await
            .value("meridian_config_last_reload_successful", &[]),
        0.0
    );
    std::fs::write(&path, good).expect("restore config");
    meridian::reload::reload(&m.state, &m.control, &m.telemetry)
        .await
        .expect("reload");
    assert_eq!(
        scrape(&m)
            .await
            .value("meridian_config_last_reload_successful", &[]),
        1.0
    );
}
