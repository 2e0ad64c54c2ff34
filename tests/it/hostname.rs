//! Hostname (`cname`) members through real interfaces: a second Meridian is the authority for
//! the target name (its addresses point at real HTTP backends on other loopback addresses),
//! the first one resolves it through `[health] resolver`, probes what it resolves to, and
//! answers the CNAME when its address pool is down. Zone reloads at the authority move the
//! probes and make the name disappear.

use std::net::SocketAddr;
use std::path::Path;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use meridian::model::Model;

use crate::backend::Backend;
use crate::checks::until_reason;
use crate::support::{
    A, FAST, HTTP_OPEN, HTTP_WITH_TOKEN, Meridian, WWW, addresses, admin, error_of, eventually, ip,
    member, scrape, until_answer, write_token,
};

/// The authority's zone: `eu.cdn.test.` at `addresses` (TTL 1 s); none: no such name.
fn cdn_zone(addresses: &[&str]) -> String {
    let eu: String = addresses.iter().map(|a| format!("eu A {a}\n")).collect();
    format!("$TTL 1\n@ SOA ns hostmaster 1 7200 900 1209600 1\n@ NS ns\nns A 127.0.0.1\n{eu}")
}

/// A Meridian answering for `cdn.test.` from `dir`, whose zone file the test rewrites.
async fn authority(dir: &Path, addresses: &[&str]) -> Meridian {
    std::fs::create_dir_all(dir.join("zones")).unwrap();
    std::fs::write(dir.join("zones/cdn.test.zone"), cdn_zone(addresses)).unwrap();
    let path = dir.join("meridian.toml");
    std::fs::write(
        &path,
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n",
    )
    .unwrap();
    let model = Model::load(&path).unwrap_or_else(|e| panic!("authority config: {e}"));
    Meridian::serve(model, tempfile::tempdir().unwrap()).await
}

/// Points `eu.cdn.test.` elsewhere (or nowhere) and reloads the authority.
async fn move_name(auth: &Meridian, dir: &Path, addresses: &[&str]) {
    std::fs::write(dir.join("zones/cdn.test.zone"), cdn_zone(addresses)).unwrap();
    meridian::reload::reload(&auth.state, &auth.control, &auth.telemetry)
        .await
        .expect("authority reload");
}

/// HTTP backends on `127.0.0.5` and `127.0.0.6`, one port (a member has one).
async fn cdn_backends() -> (Backend, Backend) {
    for _ in 0..50 {
        let first = Backend::http()
            .start_at("127.0.0.5:0".parse().unwrap())
            .await
            .expect("bind 127.0.0.5");
        let port = first.port();
        let at: SocketAddr = SocketAddr::new("127.0.0.6".parse().unwrap(), port);
        if let Ok(second) = Backend::http().start_at(at).await {
            return (first, second);
        }
    }
    panic!("no port free on both 127.0.0.5 and 127.0.0.6");
}

/// Waits until `b` has answered `n` more probes than it had.
async fn until_probed(b: &Backend, n: u64) {
    let from = b.requests();
    eventually("probes of the new address", || async {
        if b.requests() >= from + n {
            Ok(())
        } else {
            Err(format!("{} requests", b.requests()))
        }
    })
    .await;
}

#[tokio::test]
async fn fails_over_to_a_cname_probed_where_the_name_resolves() {
    let (cdn5, cdn6) = cdn_backends().await;
    let web = Backend::http().start().await;
    let auth_dir = tempfile::tempdir().unwrap();
    let auth = authority(auth_dir.path(), &["127.0.0.5"]).await;
    let config = format!(
        "[health]\nresolver = \"{}\"\nresolve_min_ttl = \"1s\"\n\n{HTTP_OPEN}\n\
         [monitors.web]\ntype = \"http\"\n{FAST}\n\n\
         [pools.web]\nmonitor = \"web\"\nmembers = [{}]\n\n\
         [pools.cdn]\nmonitor = \"web\"\nmembers = [{{ cname = \"eu.cdn.test.\", port = {} }}]\n\n\
         [services.\"{WWW}\"]\npools = [\"web\", \"cdn\"]\nttl = 30\n",
        auth.udp,
        member(A, &web),
        cdn5.port()
    );
    let m = Meridian::start("", &config).await;
    let cdn_id = format!("eu.cdn.test.:{}", cdn5.port());
    until_reason(&m, "cdn", &cdn_id, "up", None).await;
    assert!(cdn5.requests() > 0, "the name's address is probed");
    until_answer(&m, WWW, &[A]).await;

    // The address pool goes down: the answer is one CNAME with the service's TTL, not
    // followed (the target is outside the zone).
    web.set_status(503);
    let reply = eventually("a CNAME answer", || async {
        let r = m.query(WWW, RecordType::A).await;
        match r.answers.as_slice() {
            [one] if one.record_type() == RecordType::CNAME => Ok(r),
            _ => Err(format!("{r:?}")),
        }
    })
    .await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.authoritative);
    let cname = &reply.answers[0];
    assert_eq!(cname.name.to_string(), WWW);
    assert_eq!(cname.ttl, 30);
    assert!(
        matches!(&cname.data, RData::CNAME(t) if t.0.to_string() == "eu.cdn.test."),
        "{cname:?}"
    );
    for qtype in [RecordType::AAAA, RecordType::CNAME, RecordType::MX] {
        let r = m.query_tcp(WWW, qtype).await;
        assert_eq!(r.answers.len(), 1, "{qtype}: {r:?}");
        assert_eq!(r.answers[0].record_type(), RecordType::CNAME, "{qtype}");
    }

    // The name moves: the probes follow it within its TTL (clamped to 1 s here).
    move_name(&auth, auth_dir.path(), &["127.0.0.6"]).await;
    until_probed(&cdn6, 1).await;
    let before = cdn5.requests();
    until_probed(&cdn6, 3).await;
    assert!(
        cdn5.requests() <= before + 1,
        "the old address is no longer probed"
    );

    // Two addresses: up while either passes, down when neither does.
    cdn6.set_status(503);
    move_name(&auth, auth_dir.path(), &["127.0.0.6", "127.0.0.5"]).await;
    until_probed(&cdn5, 3).await;
    until_reason(&m, "cdn", &cdn_id, "up", None).await;
    cdn5.set_status(503);
    until_reason(&m, "cdn", &cdn_id, "down", Some("http 503")).await;
    cdn5.set_status(200);
    cdn6.set_status(200);

    // The name disappears: the member is down for that reason; with both pools down the
    // service fails open to its first pool.
    move_name(&auth, auth_dir.path(), &[]).await;
    until_reason(&m, "cdn", &cdn_id, "down", Some("resolve: NXDOMAIN")).await;
    eventually("failing open to the address pool", || async {
        let r = m.query(WWW, RecordType::A).await;
        let got = addresses(&r);
        if got == [A.parse::<std::net::IpAddr>().unwrap()] {
            Ok(())
        } else {
            Err(format!("{r:?}"))
        }
    })
    .await;
    let metrics = scrape(&m).await;
    assert!(metrics.value("meridian_probe_failures_total", &[("reason", "resolve")]) >= 1.0);
    // Back, and the address pool too: addresses again.
    move_name(&auth, auth_dir.path(), &["127.0.0.6"]).await;
    until_reason(&m, "cdn", &cdn_id, "up", None).await;
    web.set_status(200);
    until_answer(&m, WWW, &[A]).await;
}

#[tokio::test]
async fn a_cname_inside_the_zone_is_followed_like_the_zones_own() {
    let config = format!(
        "{HTTP_WITH_TOKEN}\n[pools.alias]\n\
         members = [{{ cname = \"static.example.test\" }}, {{ cname = \"mail.example.test.\" }}]\n\n\
         [services.\"{WWW}\"]\npools = [\"alias\"]\nttl = 20\n"
    );
    let dir = tempfile::tempdir().unwrap();
    write_token(dir.path());
    let m = Meridian::start_at(dir.path(), "", &config).await;
    // Admin calls name a hostname member by its name.
    let (status, _) = admin(&m, "drain", "alias", "mail.example.test.").await;
    assert_eq!(status, 200);
    for (qtype, want) in [
        (RecordType::A, "192.0.2.80"),
        (RecordType::AAAA, "2001:db8::80"),
    ] {
        let r = m.query(WWW, qtype).await;
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        let [cname, address] = r.answers.as_slice() else {
            panic!("{qtype}: {r:?}");
        };
        assert_eq!(cname.record_type(), RecordType::CNAME);
        assert_eq!(cname.ttl, 20);
        assert_eq!(address.name.to_string(), "static.example.test.");
        assert_eq!(addresses(&r), [want.parse::<std::net::IpAddr>().unwrap()]);
    }
    // Asked for the CNAME itself: just it.
    let r = m.query(WWW, RecordType::CNAME).await;
    assert_eq!(r.answers.len(), 1, "{r:?}");
    // Another type: the CNAME, then the target's NODATA.
    let r = m.query(WWW, RecordType::TXT).await;
    assert_eq!(r.answers.len(), 1, "{r:?}");
    assert_eq!(r.answers[0].record_type(), RecordType::CNAME);
    assert_eq!(r.authorities[0].record_type(), RecordType::SOA);

    assert_eq!(
        admin(&m, "undrain", "alias", "mail.example.test.").await.0,
        200
    );
    assert_eq!(
        admin(&m, "drain", "alias", "static.example.test.").await.0,
        200
    );
    for _ in 0..20 {
        let r = m.query(WWW, RecordType::A).await;
        assert_eq!(addresses(&r), [ip("192.0.2.25")], "{r:?}");
    }
}

#[test]
fn hostname_member_errors_name_file_line_and_reason() {
    let zone = crate::support::ZONE;
    let with = |members: &str, extra: &str| {
        format!(
            "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n\n[pools.p]\nmembers = [{members}]\n\n\
             [services.\"www.example.test.\"]\npools = [\"p\"]\n{extra}"
        )
    };
    let cases = [
        (
            with(
                "{ address = \"192.0.2.1\" }, { cname = \"eu.cdn.test.\" }",
                "",
            ),
            "DIR/meridian.toml:6: pools.p: mixes address and cname members; a pool answers addresses or one CNAME, so put hostname members in a pool of their own",
        ),
        (
            with("{ cname = \"bad..name\" }", ""),
            "DIR/meridian.toml:6: pools.p: member cname \"bad..name\": not a DNS name",
        ),
        (
            with("{ cname = \"192.0.2.1\" }", ""),
            "DIR/meridian.toml:6: pools.p: member cname \"192.0.2.1\": an IP address goes in address",
        ),
        (
            with("{ cname = \"localhost\" }", ""),
            "DIR/meridian.toml:6: pools.p: member cname \"localhost\": a host name has at least two labels",
        ),
        (
            with("{ address = \"eu.cdn.test.\" }", ""),
            "DIR/meridian.toml:6: pools.p: member address \"eu.cdn.test.\" is not an IP address (a host name goes in cname)",
        ),
        (
            with("{ address = \"192.0.2.1\", cname = \"eu.cdn.test.\" }", ""),
            "DIR/meridian.toml:6: pools.p: a member has an address or a cname, not both",
        ),
        (
            with("{ weight = 5 }", ""),
            "DIR/meridian.toml:6: pools.p: a member needs an address or a cname",
        ),
        (
            with(
                "{ cname = \"eu.cdn.test.\", port = 80 }",
                "\n[[directors]]\nlisten = \"127.0.0.1:0\"\nservice = \"www.example.test.\"\n",
            ),
            "DIR/meridian.toml:11: directors[0]: pool p of service www.example.test. has hostname (cname) members; a director connects to addresses only",
        ),
    ];
    for (config, want) in cases {
        assert_eq!(error_of(&config, zone), want, "{config}");
    }
    // A name with a CNAME has no other data.
    let txt = format!("{zone}www TXT \"hello\"\n");
    assert_eq!(
        error_of(&with("{ cname = \"eu.cdn.test.\" }", ""), &txt),
        "DIR/meridian.toml:8: service www.example.test. has hostname (cname) members, so it answers a CNAME and can have no other records; it has TXT records in DIR/zones/example.test.zone"
    );
    // [health] resolver and the TTL bounds.
    let health = |keys: &str| {
        format!(
            "{}\n[health]\n{keys}\n",
            with("{ cname = \"eu.cdn.test.\" }", "")
        )
    };
    assert_eq!(
        error_of(&health("resolver = \"nameserver\""), zone),
        "DIR/meridian.toml:12: health.resolver = \"nameserver\": expected an address, with a port or not (\"127.0.0.1:53\", \"::1\")"
    );
    assert_eq!(
        error_of(&health("resolve_min_ttl = \"10m\""), zone),
        "DIR/meridian.toml:12: health.resolve_min_ttl is above health.resolve_max_ttl"
    );
}
