//! A bad config or zone file is refused with `file:line: reason`; every shipped example loads.

use std::path::Path;

use meridian::Model;

use crate::support::{VALID, ZONE, config_dir, error_of};

#[test]
fn the_valid_fixture_loads() {
    let (_dir, path) = config_dir(VALID, ZONE);
    let model = Model::load(&path).unwrap();
    assert_eq!(model.services.len(), 1);
    assert_eq!(model.member_count(), 1);
}

#[test]
fn toml_syntax_errors_name_the_line() {
    let bad = VALID.replace("type = \"http\"", "type = \"http");
    let e = error_of(&bad, ZONE);
    assert!(e.starts_with("DIR/meridian.toml:6: "), "{e}");
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    let bad = VALID.replace("type = \"http\"", "type = \"http\"\nintervall = \"2s\"");
    let e = error_of(&bad, ZONE);
    assert!(
        e.starts_with("DIR/meridian.toml:7: unknown field `intervall`"),
        "{e}"
    );
}

#[test]
fn semantic_errors_name_file_line_and_reason() {
    let cases = [
        (
            VALID.replace("www.example.test.", "www.example.org."),
            "DIR/meridian.toml:14: service www.example.org. is not inside any served zone",
        ),
        (
            VALID.replace("pools = [\"eu\"]", "pools = [\"eu\", \"asia\"]"),
            "DIR/meridian.toml:15: services.\"www.example.test.\".pools: no pool named \"asia\"",
        ),
        (
            VALID.replace("monitor = \"web\"", "monitor = \"webb\""),
            "DIR/meridian.toml:9: pools.eu.monitor: no monitor named \"webb\"",
        ),
        (
            VALID.replace(
                "  { address = \"192.0.2.10\" },",
                "  { address = \"192.0.2.10\" },\n  { address = \"192.0.2.10\" },",
            ),
            "DIR/meridian.toml:12: pools.eu: member 192.0.2.10 is listed twice",
        ),
        (
            VALID.replace("192.0.2.10", "192.0.2.300"),
            "DIR/meridian.toml:11: pools.eu: member address \"192.0.2.300\" is not an IP address",
        ),
        (
            VALID.replace("zones = \"zones\"", "zones = \"zones\"\nnsid = \"\""),
            "DIR/meridian.toml:4: dns.nsid must be 1 to 128 bytes long",
        ),
        (
            VALID.replace(
                "zones = \"zones\"",
                "zones = \"zones\"\nudp_coalesce_us = 1001",
            ),
            "DIR/meridian.toml:4: dns.udp_coalesce_us = 1001: at most 1000 (1 ms)",
        ),
        (
            VALID.replace(
                "zones = \"zones\"",
                "zones = \"zones\"\nnsid = \"ns\\u00e9\"",
            ),
            "DIR/meridian.toml:4: dns.nsid = \"nsé\": only printable ASCII is allowed",
        ),
        (
            VALID.replace("127.0.0.1:0", "localhost:53"),
            "DIR/meridian.toml:2: dns.listen: \"localhost:53\" is not an address:port (\"127.0.0.1:53\", \"[::1]:53\")",
        ),
        (
            VALID.replace("type = \"http\"", "type = \"icmp\""),
            "DIR/meridian.toml:6: monitors.web.type = \"icmp\": expected \"http\", \"https\", \"tcp\", \"dns\", \"exec\" or \"agent\"",
        ),
        (
            VALID.replace("type = \"http\"", "type = \"tcp\"\nexpect_regex = \"(\""),
            "DIR/meridian.toml:7: monitors.web.expect_regex = \"(\": error: unclosed group",
        ),
        (
            VALID.replace("type = \"http\"", "type = \"tcp\"\nsend = 'PING\\q'"),
            "DIR/meridian.toml:7: monitors.web.send = \"PING\\\\q\": unknown escape \\q",
        ),
        (
            VALID.replace("type = \"http\"", "type = \"dns\""),
            "DIR/meridian.toml:5: monitors.web: a dns monitor needs query_name",
        ),
        (
            VALID.replace("type = \"http\"", "type = \"exec\"\nquery_name = \"x.\""),
            "DIR/meridian.toml:5: monitors.web.query_name applies to dns monitors only",
        ),
        (
            VALID.replace(
                "pools = [\"eu\"]",
                "pools = [\"eu\"]\nsteering = \"nearest\"",
            ),
            "DIR/meridian.toml:16: services.\"www.example.test.\".steering = \"nearest\": expected \"failover\", \"weighted\", \"geo\", \"proximity\", \"hash\" or \"latency\"",
        ),
        (
            VALID.replace("zones = \"zones\"", "zones = \"nowhere\""),
            "DIR/meridian.toml:3: dns.zones: cannot read directory DIR/nowhere: No such file or directory (os error 2)",
        ),
    ];
    for (config, want) in cases {
        assert_eq!(error_of(&config, ZONE), want);
    }
}

#[test]
fn steering_errors_name_file_line_and_reason() {
    let service =
        |extra: &str| VALID.replace("pools = [\"eu\"]", &format!("pools = [\"eu\"]\n{extra}"));
    let cases = [
        (
            service("steering = \"geo\""),
            "DIR/meridian.toml:16: services.\"www.example.test.\".steering = \"geo\" needs a GeoIP database: add [geo] database = \"...\"",
        ),
        (
            service("min_healthy = \"150%\""),
            "DIR/meridian.toml:16: services.\"www.example.test.\".min_healthy = \"150%\": expected a count (2) or a percentage from 1% to 100% (\"50%\")",
        ),
        (
            service("min_healthy = 0"),
            "DIR/meridian.toml:16: services.\"www.example.test.\".min_healthy must be at least 1",
        ),
        (
            service("select = \"random\""),
            "DIR/meridian.toml:16: services.\"www.example.test.\".select = \"random\": expected \"all\", \"weighted\", \"hash\" or \"fastest\"",
        ),
        (
            service("[services.\"www.example.test.\".map]\ndefault = [\"eu\"]"),
            "DIR/meridian.toml:16: services.\"www.example.test.\": `map` is only used with steering = \"geo\"",
        ),
        (
            VALID.replace(
                "monitor = \"web\"",
                "monitor = \"web\"\ncontinent = \"EUR\"",
            ),
            "DIR/meridian.toml:10: pools.eu.continent: \"EUR\" is not a continent code (AF, AN, AS, EU, NA, OC, SA)",
        ),
        (
            VALID.replace(
                "monitor = \"web\"",
                "monitor = \"web\"\ncountries = [\"GB\", \"U5\"]",
            ),
            "DIR/meridian.toml:10: pools.eu.countries: \"U5\" is not an ISO 3166 country code",
        ),
        (
            VALID.replace(
                "monitor = \"web\"",
                "monitor = \"web\"\nlocation = [151.5, 0.1]",
            ),
            "DIR/meridian.toml:10: pools.eu.location: [151.5, 0.1] is not [latitude (-90..90), longitude (-180..180)]",
        ),
    ];
    for (config, want) in cases {
        assert_eq!(error_of(&config, ZONE), want);
    }
}

#[test]
fn zone_file_errors_name_the_zone_file_and_line() {
    let cases = [
        (
            format!("{ZONE}bad A 192.0.2\n"),
            "DIR/zones/example.test.zone:6: cannot parse record",
        ),
        (
            format!("{ZONE}multi TXT ( \"a\"\n  \"b\" )\nx IN BOGUSTYPE 1\n"),
            "DIR/zones/example.test.zone:8: cannot parse record",
        ),
        (
            ZONE.replace("@ SOA ns1 hostmaster 1 7200 900 1209600 60\n", ""),
            "DIR/zones/example.test.zone:1: zone example.test. has no SOA record at its apex",
        ),
        (
            ZONE.replace("@ NS ns1\n", ""),
            "DIR/zones/example.test.zone:2: zone example.test. has no NS records at its apex",
        ),
        (
            format!("{ZONE}alias CNAME static\nalias TXT \"x\"\n"),
            "DIR/zones/example.test.zone:6: alias.example.test. has a CNAME and other data (RFC 1034 §3.6.2)",
        ),
    ];
    for (zone, want) in cases {
        let e = error_of(VALID, &zone);
        assert!(e.starts_with(want), "got {e:?}, want {want:?}");
    }
}

#[test]
fn a_service_cannot_also_have_static_addresses() {
    let zone = format!("{ZONE}www A 192.0.2.99\n");
    let e = error_of(VALID, &zone);
    assert!(
        e.starts_with("DIR/meridian.toml:14: service www.example.test. also has A records"),
        "{e}"
    );
}

/// The admin token file holds one token: an empty, oversized, non-ASCII or irregular file
/// (a directory, a device such as `/dev/zero`) is refused with the config line naming it, and
/// nothing is read to its end.
#[test]
fn a_bad_admin_token_file_is_refused_with_its_line() {
    let (dir, path) = config_dir(VALID, ZONE);
    let token = dir.path().join("admin.token");
    let load = |file: &str, contents: &[u8]| {
        let config =
            format!("{VALID}\n[http]\nlisten = \"127.0.0.1:0\"\nadmin_token_file = {file:?}\n");
        std::fs::write(&path, &config).unwrap();
        std::fs::write(&token, contents).unwrap();
        let line = config
            .lines()
            .position(|l| l.starts_with("admin_token_file"))
            .unwrap()
            + 1;
        Model::load(&path)
            .map(|m| m.http.unwrap().admin_token.is_some())
            .map_err(|e| (line, e.to_string()))
    };
    assert!(load("admin.token", b" s3cret-T0ken\n").unwrap());
    assert!(load("admin.token", &[b'x'; 4096]).unwrap());
    for (file, contents, reason) in [
        ("admin.token", &b" \n"[..], "is empty"),
        (
            "admin.token",
            &[b'x'; 4097][..],
            "is larger than 4096 bytes",
        ),
        (
            "admin.token",
            "pässword".as_bytes(),
            "must be visible ASCII",
        ),
        ("admin.token", &b"two words"[..], "must be visible ASCII"),
        ("zones", &b"x"[..], "is not a regular file"),
        ("/dev/zero", &b"x"[..], "is not a regular file"),
        ("missing.token", &b"x"[..], "cannot read"),
    ] {
        let (line, e) = load(file, contents).unwrap_err();
        let prefix = format!("{}:{line}: http.admin_token_file: ", path.display());
        assert!(e.starts_with(&prefix) && e.contains(reason), "{e}");
    }
}

#[test]
fn every_shipped_example_config_loads() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut loaded = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            Model::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            loaded += 1;
        }
    }
    assert!(
        loaded >= 1,
        "no example configs found in {}",
        examples.display()
    );
}

#[test]
fn load_feedback_errors_name_file_line_and_reason() {
    let monitor = |kind: &str, extra: &str| {
        VALID.replace(
            "type = \"http\"",
            &format!("type = \"{kind}\"\nport = 9777\n{extra}"),
        )
    };
    let cases = [
        (
            monitor("tcp", "weight_from = \"header:X-Weight\""),
            "DIR/meridian.toml:5: monitors.web.weight_from applies to http, https and exec monitors only",
        ),
        (
            monitor("agent", "weight_from = \"header:X-Weight\""),
            "DIR/meridian.toml:5: monitors.web.weight_from applies to http, https and exec monitors only",
        ),
        (
            monitor(
                "exec",
                "command = \"true\"\nweight_from = \"header:X-Weight\"",
            ),
            "DIR/meridian.toml:9: monitors.web.weight_from = \"header:X-Weight\": an exec monitor reads its share from \"exit\" (the exit status) only",
        ),
        (
            monitor("exec", "command = \"true\"\nweight_step = 5"),
            "DIR/meridian.toml:9: monitors.web.weight_step applies to agent monitors and monitors with weight_from",
        ),
        (
            monitor("http", "weight_from = \"X-Weight\""),
            "DIR/meridian.toml:8: monitors.web.weight_from = \"X-Weight\": expected \"header:NAME\" or \"json:/POINTER\"",
        ),
        (
            monitor("http", "weight_from = \"header:X Weight\""),
            "DIR/meridian.toml:8: monitors.web.weight_from = \"header:X Weight\": not a header name",
        ),
        (
            monitor("http", "weight_from = \"json:capacity\""),
            "DIR/meridian.toml:8: monitors.web.weight_from = \"json:capacity\": a JSON pointer is empty or starts with /",
        ),
        (
            monitor(
                "http",
                "method = \"HEAD\"\nweight_from = \"json:/capacity\"",
            ),
            "DIR/meridian.toml:9: monitors.web.weight_from = \"json:/capacity\": a HEAD answer has no body to read",
        ),
        (
            monitor("agent", "weight_step = 0"),
            "DIR/meridian.toml:8: monitors.web.weight_step = 0: expected 1 to 100 points",
        ),
        (
            monitor(
                "http",
                "weight_from = \"header:X-Weight\"\nweight_step = 101",
            ),
            "DIR/meridian.toml:9: monitors.web.weight_step = 101: expected 1 to 100 points",
        ),
        (
            monitor("http", "weight_step = 5"),
            "DIR/meridian.toml:8: monitors.web.weight_step applies to agent monitors and monitors with weight_from",
        ),
        (
            VALID.replace("type = \"http\"", "type = \"agent\""),
            "DIR/meridian.toml:5: monitors.web: type = \"agent\" needs port (the agent's port)",
        ),
        (
            VALID.replace("type = \"http\"", "type = \"http\"\nslow_start = \"25h\""),
            "DIR/meridian.toml:7: monitors.web.slow_start = \"25h\": at most 24h",
        ),
        (
            VALID.replace(
                "monitor = \"web\"",
                "monitor = \"web\"\nslow_start = \"0s\"",
            ),
            "DIR/meridian.toml:10: pools.eu.slow_start must be more than 0",
        ),
        (
            VALID.replace("type = \"http\"", "type = \"ping\""),
            "DIR/meridian.toml:6: monitors.web.type = \"ping\": expected \"http\", \"https\", \"tcp\", \"dns\", \"exec\" or \"agent\"",
        ),
    ];
    for (config, want) in cases {
        assert_eq!(error_of(&config, ZONE), want);
    }
}
