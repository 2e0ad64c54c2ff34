//! DNSSEC online signing checked by real validators: unbound (a validating resolver with the
//! zone's DNSKEY as its trust anchor and a stub to Meridian) must set AD, and `delv` must say
//! "fully validated", for static names, a geo service seen from two continents, names that do
//! not exist, NODATA, a wildcard, a CNAME into a service and delegations with and without DS;
//! a relay that flips one byte of a signature makes unbound answer SERVFAIL. Queries without DO
//! get the same bytes as from the same zone unsigned.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use meridian::Model;
use tokio::net::UdpSocket;

use crate::backend::Backend;
use crate::support::{
    FAST, Meridian, QueryBuilder, REPLY_TIMEOUT, eventually, get, ip, parse, udp_exchange,
    udp_exchange_from,
};

pub(crate) const ZONE: &str = "gslb.test.";
pub(crate) const WWW: &str = "www.gslb.test.";

/// A resolver address in London (EU) and one in New York (NA), in the sample GeoIP database.
const LONDON: &str = "127.0.0.53";
const NEW_YORK: &str = "127.0.2.53";

/// A signed Meridian: the fixture zone `gslb.test.` with a fresh key, and a geo service
/// `www` (pool `eu`: two probed members, pool `us`: one).
struct Signed {
    meridian: Meridian,
    dir: tempfile::TempDir,
    dnskey: String,
    eu: [Backend; 2],
    _us: Backend,
}

fn geo_database() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("geo-data/sample.mmdb")
        .display()
        .to_string()
}

fn signed_config(zones: &Path, dnssec: &str, eu: &[Backend; 2], us: &Backend) -> String {
    let member = |a: &str, b: &Backend| {
        format!(
            r#"{{ address = "{a}", check_address = "127.0.0.1", port = {} }}"#,
            b.port()
        )
    };
    format!(
        r#"[dns]
listen = ["127.0.0.1:0"]
zones = {zones:?}

[geo]
database = "{geo}"

[http]
listen = "127.0.0.1:0"

{dnssec}

[monitors.web]
type = "http"
{FAST}

[pools.eu]
monitor = "web"
continent = "EU"
members = [{e0}, {e1}]

[pools.us]
monitor = "web"
continent = "NA"
members = [{u}]

[services."{WWW}"]
pools = ["eu", "us"]
steering = "geo"

[pools.alias]
members = [{{ cname = "static.gslb.test." }}]

[services."alias.gslb.test."]
pools = ["alias"]
"#,
        zones = zones.display().to_string(),
        geo = geo_database(),
        e0 = member("192.0.2.10", &eu[0]),
        e1 = member("192.0.2.11", &eu[1]),
        u = member("198.51.100.10", us),
    )
}

fn zones_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dnssec")
}

impl Signed {
    async fn start(algorithm: hickory_proto::dnssec::Algorithm) -> Signed {
        let dir = tempfile::tempdir().expect("tempdir");
        let der = meridian::dnssec::generate(algorithm).expect("keygen");
        std::fs::write(
            dir.path().join("key.pem"),
            meridian::dnssec::pem_encode(&der),
        )
        .expect("write key");
        let eu = [Backend::http().start().await, Backend::http().start().await];
        let us = Backend::http().start().await;
        let dnssec =
            format!("[dnssec.\"{ZONE}\"]\nkey = \"key.pem\"\nsignature_lifetime = \"2d\"\n");
        let path = dir.path().join("meridian.toml");
        std::fs::write(&path, signed_config(&zones_dir(), &dnssec, &eu, &us)).expect("config");
        let model = Model::load(&path).unwrap_or_else(|e| panic!("config invalid: {e}"));
        let signer = model.zones.signers().next().expect("a signed zone");
        let dnskey = signer
            .presentation()
            .lines()
            .next()
            .expect("DNSKEY line")
            .to_string();
        let meridian = Meridian::serve(model, tempfile::tempdir().expect("tempdir")).await;
        let signed = Signed {
            meridian,
            dir,
            dnskey,
            eu,
            _us: us,
        };
        // Probes have run once everything answers.
        eventually("www answers", || async {
            let r = signed.query_direct(WWW, RecordType::A, LONDON).await;
            if r.answers.is_empty() {
                Err(format!("{r:?}"))
            } else {
                Ok(())
            }
        })
        .await;
        signed
    }

    /// Reloads the config file, as SIGHUP does.
    async fn reload(&self) {
        let m = &self.meridian;
        meridian::reload::reload(&m.state, &m.control, &m.telemetry)
            .await
            .expect("reload");
    }

    /// The key tag, as `meridian dnssec ds` prints it.
    fn dnskey_tag(&self) -> u16 {
        self.meridian
            .state
            .load()
            .model
            .zones
            .signers()
            .next()
            .expect("signed")
            .key_tag()
    }

    async fn query_direct(&self, name: &str, qtype: RecordType, from: &str) -> Message {
        let q = QueryBuilder::new(name, qtype)
            .edns(1232)
            .dnssec_ok()
            .build();
        parse(&udp_exchange_from(ip(from), self.meridian.udp, &q).await)
    }
}

fn free_port() -> u16 {
    crate::support::child_port()
}

/// A validating unbound with the zone's key as trust anchor, forwarding the zone to `upstream`
/// and querying from `source`; killed on drop.
struct Unbound {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Unbound {
    async fn start(dnskey: &str, upstream: SocketAddr, source: &str) -> Unbound {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let conf = format!(
            r#"server:
    interface: 127.0.0.1@{port}
    port: {port}
    outgoing-interface: {source}
    do-ip6: no
    do-not-query-localhost: no
    chroot: ""
    username: ""
    directory: "{dir}"
    pidfile: "{dir}/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 0
    val-log-level: 2
    num-threads: 1
    so-reuseport: no
    qname-minimisation: no
    module-config: "validator iterator"
    local-zone: "test." nodefault
    trust-anchor: "{dnskey}"
stub-zone:
    name: "{ZONE}"
    stub-addr: {ip}@{uport}
"#,
            dir = dir.path().display(),
            ip = upstream.ip(),
            uport = upstream.port(),
        );
        let path = dir.path().join("unbound.conf");
        std::fs::write(&path, conf).expect("unbound.conf");
        let child = Command::new("unbound")
            .arg("-d")
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("unbound must be installed (apt-get install -y unbound)");
        let unbound = Unbound {
            child,
            addr: SocketAddr::new(ip("127.0.0.1"), port),
            _dir: dir,
        };
        // Answered from unbound's own default zone: ready, whatever the upstream does.
        let probe = QueryBuilder::new("localhost.", RecordType::A).rd().build();
        eventually("unbound answers", || async {
            let sock = UdpSocket::bind("127.0.0.1:0")
                .await
                .map_err(|e| e.to_string())?;
            sock.send_to(&probe, unbound.addr)
                .await
                .map_err(|e| e.to_string())?;
            let mut buf = vec![0; 4096];
            match tokio::time::timeout(std::time::Duration::from_millis(500), sock.recv(&mut buf))
                .await
            {
                Ok(Ok(_)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        unbound
    }

    /// Asks unbound (RD, DO) and returns its answer.
    async fn query(&self, name: &str, qtype: RecordType) -> Message {
        let q = QueryBuilder::new(name, qtype)
            .rd()
            .edns(1232)
            .dnssec_ok()
            .build();
        parse(&udp_exchange(self.addr, &q).await)
    }

    /// Asks and requires a validated (AD) answer with `rcode`.
    async fn validated(&self, name: &str, qtype: RecordType, rcode: ResponseCode) -> Message {
        let r = self.query(name, qtype).await;
        assert_eq!(r.metadata.response_code, rcode, "{name} {qtype}: {r:?}");
        assert!(r.metadata.authentic_data, "{name} {qtype}: no AD: {r:?}");
        r
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn addrs(msg: &Message) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = msg
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_validates_every_kind_of_answer() {
    let s = Signed::start(hickory_proto::dnssec::Algorithm::ECDSAP256SHA256).await;
    let london = Unbound::start(&s.dnskey, s.meridian.udp, LONDON).await;
    let new_york = Unbound::start(&s.dnskey, s.meridian.udp, NEW_YORK).await;

    let r = london
        .validated("static.gslb.test.", RecordType::A, ResponseCode::NoError)
        .await;
    assert_eq!(addrs(&r), vec![ip("192.0.2.80")]);
    for (name, qtype) in [
        ("static.gslb.test.", RecordType::TXT),
        (ZONE, RecordType::DNSKEY),
        (ZONE, RecordType::CDS),
        (ZONE, RecordType::CDNSKEY),
        (ZONE, RecordType::SOA),
        (ZONE, RecordType::NS),
    ] {
        let r = london.validated(name, qtype, ResponseCode::NoError).await;
        assert!(r.answers.iter().any(|a| a.record_type() == qtype), "{r:?}");
    }

    // The service, steered by the resolver's address: EU members for London, US for New York.
    let eu = london
        .validated(WWW, RecordType::A, ResponseCode::NoError)
        .await;
    assert_eq!(addrs(&eu), vec![ip("192.0.2.10"), ip("192.0.2.11")]);
    let us = new_york
        .validated(WWW, RecordType::A, ResponseCode::NoError)
        .await;
    assert_eq!(addrs(&us), vec![ip("198.51.100.10")]);
    // No IPv6 member: a validated NODATA.
    let r = london
        .validated(WWW, RecordType::AAAA, ResponseCode::NoError)
        .await;
    assert!(r.answers.is_empty(), "{r:?}");

    // Denial: a name that does not exist (compact answer: NOERROR, nothing), NODATA, an empty
    // non-terminal.
    for (name, qtype) in [
        ("nothing.gslb.test.", RecordType::A),
        ("static.gslb.test.", RecordType::MX),
        ("b.gslb.test.", RecordType::A),
        ("deep.nothing.gslb.test.", RecordType::TXT),
        // Letter case as sent (0x20): the proofs still hold.
        ("NoThInG.gSlB.test.", RecordType::A),
        ("sTaTiC.gslb.test.", RecordType::MX),
    ] {
        let r = london.validated(name, qtype, ResponseCode::NoError).await;
        assert!(r.answers.is_empty(), "{name}: {r:?}");
    }

    // A wildcard, and a CNAME into the service.
    let r = london
        .validated("x.wild.gslb.test.", RecordType::A, ResponseCode::NoError)
        .await;
    assert_eq!(addrs(&r), vec![ip("192.0.2.100")]);
    let r = london
        .validated("to-www.gslb.test.", RecordType::A, ResponseCode::NoError)
        .await;
    assert_eq!(addrs(&r), vec![ip("192.0.2.10"), ip("192.0.2.11")]);

    // Delegations: the DS of the secure one, the proven absence of a DS for the insecure one.
    let r = london
        .validated("secure.gslb.test.", RecordType::DS, ResponseCode::NoError)
        .await;
    assert_eq!(
        r.answers
            .iter()
            .filter(|a| a.record_type() == RecordType::DS)
            .count(),
        1
    );
    let r = london
        .validated("insecure.gslb.test.", RecordType::DS, ResponseCode::NoError)
        .await;
    assert!(r.answers.is_empty(), "{r:?}");

    // A member goes down: the answer changes and still validates (a fresh resolver, so
    // nothing is served from its cache).
    s.eu[0].set_status(503);
    eventually("192.0.2.10 leaves the answer", || async {
        let r = s.query_direct(WWW, RecordType::A, LONDON).await;
        if addrs(&r) == vec![ip("192.0.2.11")] {
            Ok(())
        } else {
            Err(format!("{:?}", addrs(&r)))
        }
    })
    .await;
    let fresh = Unbound::start(&s.dnskey, s.meridian.udp, LONDON).await;
    let r = fresh
        .validated(WWW, RecordType::A, ResponseCode::NoError)
        .await;
    assert_eq!(addrs(&r), vec![ip("192.0.2.11")]);
    drop(s.dir);
}

/// A UDP relay to `upstream` that flips the last byte of every signature over an A RRset.
async fn tamper_relay(upstream: SocketAddr) -> SocketAddr {
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    let addr = front.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = vec![0; 65_535];
        loop {
            let Ok((n, client)) = front.recv_from(&mut buf).await else {
                return;
            };
            let query = buf[..n].to_vec();
            let front = front.clone();
            tokio::spawn(async move {
                let back = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
                back.send_to(&query, upstream).await.expect("send");
                let mut reply = vec![0; 65_535];
                let Ok(Ok(n)) = tokio::time::timeout(REPLY_TIMEOUT, back.recv(&mut reply)).await
                else {
                    return;
                };
                reply.truncate(n);
                if let Ok(msg) = Message::from_vec(&reply) {
                    for r in &msg.answers {
                        if let RData::DNSSEC(DNSSECRData::RRSIG(sig)) = &r.data
                            && sig.input().type_covered == RecordType::A
                        {
                            let sig = sig.sig();
                            if let Some(at) = reply.windows(sig.len()).position(|w| w == sig) {
                                reply[at + sig.len() - 1] ^= 0x01;
                            }
                        }
                    }
                }
                let _ = front.send_to(&reply, client).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_signature_byte_makes_unbound_fail() {
    let s = Signed::start(hickory_proto::dnssec::Algorithm::ED25519).await;
    let relay = tamper_relay(s.meridian.udp).await;
    let honest = Unbound::start(&s.dnskey, s.meridian.udp, LONDON).await;
    honest
        .validated("static.gslb.test.", RecordType::A, ResponseCode::NoError)
        .await;
    let fooled = Unbound::start(&s.dnskey, relay, LONDON).await;
    let r = fooled.query("static.gslb.test.", RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail, "{r:?}");
    // Unsigned-covered data still validates through the same relay.
    fooled
        .validated("static.gslb.test.", RecordType::TXT, ResponseCode::NoError)
        .await;
}

/// Runs delv against Meridian with the zone's key as anchor; returns its output.
fn delv(s: &Signed, name: &str, qtype: &str) -> String {
    let anchor = s.dir.path().join("anchor.conf");
    let mut fields = s.dnskey.split_whitespace();
    let owner = fields.next().expect("owner");
    let rest: Vec<&str> = fields.skip(3).collect(); // TTL, class, type
    std::fs::write(
        &anchor,
        format!(
            "trust-anchors {{\n  {owner} static-key {} {} {} \"{}\";\n}};\n",
            rest[0],
            rest[1],
            rest[2],
            rest[3..].concat()
        ),
    )
    .expect("anchor");
    let out = Command::new("delv")
        .arg(format!("@{}", s.meridian.udp.ip()))
        .arg("-p")
        .arg(s.meridian.udp.port().to_string())
        .arg("-a")
        .arg(&anchor)
        .arg(format!("+root={ZONE}"))
        .arg(name)
        .arg(qtype)
        .output()
        .expect("delv must be installed (apt-get install -y bind9-dnsutils)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delv_fully_validates() {
    let s = Signed::start(hickory_proto::dnssec::Algorithm::ECDSAP256SHA256).await;
    for (name, qtype) in [
        ("static.gslb.test.", "A"),
        (WWW, "A"),
        ("to-www.gslb.test.", "A"),
        ("alias.gslb.test.", "A"),
        ("alias.gslb.test.", "TXT"),
        ("x.wild.gslb.test.", "A"),
        ("nothing.gslb.test.", "A"),
        ("static.gslb.test.", "MX"),
        (WWW, "AAAA"),
        ("secure.gslb.test.", "DS"),
        ("insecure.gslb.test.", "DS"),
        (ZONE, "DNSKEY"),
    ] {
        let out = tokio::task::block_in_place(|| delv(&s, name, qtype));
        assert!(
            out.contains("; fully validated")
                || out.contains("; negative response, fully validated"),
            "{name} {qtype}:\n{out}"
        );
    }
}

/// The fixture zone loaded in this process (no server), signed with a fresh Ed25519 key
/// (`key.pem` in `dir`) when `signed`, with its service's backends (keep them alive).
pub(crate) async fn load_model(
    dir: &Path,
    signed: bool,
) -> (meridian::SharedState, [Backend; 2], Backend) {
    let der = meridian::dnssec::generate(hickory_proto::dnssec::Algorithm::ED25519).unwrap();
    std::fs::write(dir.join("key.pem"), meridian::dnssec::pem_encode(&der)).unwrap();
    let eu = [Backend::http().start().await, Backend::http().start().await];
    let us = Backend::http().start().await;
    let dnssec = if signed {
        format!("[dnssec.\"{ZONE}\"]\nkey = \"key.pem\"\n")
    } else {
        String::new()
    };
    let path = dir.join("meridian.toml");
    std::fs::write(&path, signed_config(&zones_dir(), &dnssec, &eu, &us)).unwrap();
    let state = meridian::SharedState::new(Model::load(&path).unwrap());
    (state, eu, us)
}

#[tokio::test]
async fn queries_without_do_get_the_same_bytes_signed_or_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (unsigned, _eu, _us) = load_model(dir.path(), false).await;
    let (signed, _eu2, _us2) = load_model(dir.path(), true).await;
    let client = meridian::dns::ClientAddr("127.0.0.53:5300".parse().unwrap());
    for name in [
        "static.gslb.test.",
        WWW,
        "nothing.gslb.test.",
        "x.wild.gslb.test.",
        "to-www.gslb.test.",
        "secure.gslb.test.",
        "insecure.gslb.test.",
        "b.gslb.test.",
        ZONE,
    ] {
        for qtype in [
            RecordType::A,
            RecordType::AAAA,
            RecordType::TXT,
            RecordType::SOA,
            RecordType::NS,
            RecordType::DS,
        ] {
            for q in [
                QueryBuilder::new(name, qtype).build(),
                QueryBuilder::new(name, qtype).edns(1232).build(),
            ] {
                let req = meridian::dns::Request {
                    packet: &q,
                    client,
                    transport: meridian::dns::Transport::Udp,
                    unix_time: meridian::dns::unix_now(),
                    now: tokio::time::Instant::now(),
                };
                let seed = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64;
                let a = meridian::dns::answer(&unsigned.peek(), &req, &mut seed(3));
                let b = meridian::dns::answer(&signed.peek(), &req, &mut seed(3));
                assert_eq!(a, b, "{name} {qtype}");
            }
        }
    }
}

#[tokio::test]
async fn bad_dnssec_config_is_refused_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let eu = [Backend::http().start().await, Backend::http().start().await];
    let us = Backend::http().start().await;
    std::fs::write(
        dir.path().join("wrong.pem"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let p384 = hickory_proto::dnssec::crypto::EcdsaSigningKey::generate_pkcs8(
        hickory_proto::dnssec::Algorithm::ECDSAP384SHA384,
    )
    .unwrap();
    std::fs::write(dir.path().join("p384.der"), p384.secret_pkcs8_der()).unwrap();
    let der = meridian::dnssec::generate(hickory_proto::dnssec::Algorithm::ED25519).unwrap();
    std::fs::write(
        dir.path().join("good.pem"),
        meridian::dnssec::pem_encode(&der),
    )
    .unwrap();
    let cases = [
        (
            "[dnssec.\"gslb.test.\"]\nkey = \"missing.pem\"\n",
            "dnssec.\"gslb.test.\".key: cannot read",
        ),
        (
            "[dnssec.\"gslb.test.\"]\nkey = \"wrong.pem\"\n",
            "wrong.pem: not an ECDSA P-256",
        ),
        (
            "[dnssec.\"gslb.test.\"]\nkey = \"p384.der\"\n",
            "not an ECDSA P-256 (algorithm 13) or Ed25519",
        ),
        (
            "[dnssec.\"other.test.\"]\nkey = \"good.pem\"\n",
            "other.test. is not a served zone",
        ),
        (
            "[dnssec.\"gslb.test.\"]\nkey = \"good.pem\"\nsignature_lifetime = \"5m\"\n",
            "between 1h and 90d",
        ),
        (
            "[dnssec.\"gslb.test.\"]\nkey = \"good.pem\"\nkeys = 1\n",
            "unknown field",
        ),
    ];
    let path = dir.path().join("meridian.toml");
    for (dnssec, want) in cases {
        let text = signed_config(&zones_dir(), dnssec, &eu, &us);
        std::fs::write(&path, &text).unwrap();
        let err = Model::load(&path).expect_err(dnssec).to_string();
        assert!(err.contains(want), "{dnssec}: {err}");
        // The line is one of the table's (its header or the key at fault).
        let first = text.lines().position(|l| l.starts_with("[dnssec")).unwrap() + 1;
        let lines = first..first + dnssec.lines().count();
        assert!(
            lines
                .clone()
                .any(|n| err.contains(&format!("meridian.toml:{n}: "))),
            "{dnssec}: {err} (lines {lines:?})"
        );
    }
    let text = signed_config(
        &zones_dir(),
        "[dnssec.\"gslb.test.\"]\nkey = \"good.pem\"\n",
        &eu,
        &us,
    );
    std::fs::write(&path, &text).unwrap();
    assert!(Model::load(&path).is_ok());
}

#[tokio::test]
async fn status_and_metrics_show_the_key_and_the_cache() {
    let s = Signed::start(hickory_proto::dnssec::Algorithm::ED25519).await;
    let first = s
        .query_direct("static.gslb.test.", RecordType::A, LONDON)
        .await;
    let again = s
        .query_direct("static.gslb.test.", RecordType::A, LONDON)
        .await;
    // The same RRSIG both times: the second came from the cache.
    let sigs = |m: &Message| -> Vec<String> {
        m.answers
            .iter()
            .filter(|r| r.record_type() == RecordType::RRSIG)
            .map(|r| r.data.to_string())
            .collect()
    };
    assert_eq!(sigs(&first).len(), 1, "{first:?}");
    assert_eq!(sigs(&first), sigs(&again));

    let (code, body) = get(&s.meridian, "/api/v1/status").await;
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    let zone = &status["dnssec"][0];
    let tag = s.dnskey_tag();
    let summary = status["summary"].as_str().unwrap();
    assert!(
        summary.ends_with(&format!(", DNSSEC {ZONE} (key {tag}, ED25519)")),
        "{summary}"
    );
    assert_eq!(zone["zone"], ZONE, "{zone}");
    assert_eq!(zone["key_tag"], tag, "{zone}");
    assert_eq!(zone["algorithm"], 15, "{zone}");
    assert!(
        zone["ds"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{tag} 15 2 ")),
        "{zone}"
    );
    assert!(zone["cache_entries"].as_u64().unwrap() >= 1, "{zone}");
    assert!(zone["cache_hit_rate"].as_f64().unwrap() > 0.0, "{zone}");

    let (code, metrics) = get(&s.meridian, "/metrics").await;
    assert_eq!(code, 200);
    for name in [
        "meridian_dnssec_signatures_total{zone=\"gslb.test.\"}",
        "meridian_dnssec_cache_hits_total{zone=\"gslb.test.\"}",
    ] {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{metrics}"));
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(value >= 1.0, "{line}");
    }
}

#[tokio::test]
async fn keygen_writes_a_private_key_and_ds_prints_it_again() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("key.pem");
    let run = |args: &[&std::ffi::OsStr]| {
        Command::new(env!("CARGO_BIN_EXE_meridian"))
            .args(args)
            .output()
            .expect("run meridian")
    };
    let out = run(&[
        "dnssec".as_ref(),
        "keygen".as_ref(),
        "--zone".as_ref(),
        ZONE.as_ref(),
        "--algorithm".as_ref(),
        "ed25519".as_ref(),
        "--out".as_ref(),
        key.as_os_str(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(
        printed.contains("gslb.test. 3600 IN DNSKEY 257 3 15 "),
        "{printed}"
    );
    assert!(printed.contains("gslb.test. 3600 IN DS "), "{printed}");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----\n")
    );
    // Never over an existing key.
    let again = run(&[
        "dnssec".as_ref(),
        "keygen".as_ref(),
        "--zone".as_ref(),
        ZONE.as_ref(),
        "--out".as_ref(),
        key.as_os_str(),
    ]);
    assert!(!again.status.success());

    let eu = [Backend::http().start().await, Backend::http().start().await];
    let us = Backend::http().start().await;
    let config = dir.path().join("meridian.toml");
    let dnssec = format!("[dnssec.\"{ZONE}\"]\nkey = \"key.pem\"\n");
    std::fs::write(&config, signed_config(&zones_dir(), &dnssec, &eu, &us)).unwrap();
    let out = run(&[
        "dnssec".as_ref(),
        "ds".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--zone".as_ref(),
        ZONE.as_ref(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), printed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_validates_positive_answers() {
    // A third opinion (ldns): `drill -D -k` checks the signatures of positive answers.
    let s = Signed::start(hickory_proto::dnssec::Algorithm::ED25519).await;
    let key = s.dir.path().join("dnskey.txt");
    std::fs::write(&key, format!("{}\n", s.dnskey)).expect("key file");
    for (name, qtype) in [
        ("static.gslb.test.", "A"),
        (WWW, "A"),
        ("x.wild.gslb.test.", "A"),
        (ZONE, "DNSKEY"),
        (ZONE, "CDS"),
    ] {
        let out = tokio::task::block_in_place(|| {
            Command::new("drill")
                .arg("-D")
                .arg("-k")
                .arg(&key)
                .arg("-p")
                .arg(s.meridian.udp.port().to_string())
                .arg(format!("@{}", s.meridian.udp.ip()))
                .arg(name)
                .arg(qtype)
                .output()
                .expect("drill must be installed (apt-get install -y ldnsutils)")
        });
        let text = String::from_utf8_lossy(&out.stdout);
        let tag = s.dnskey_tag();
        assert!(
            text.contains(&format!("; VALIDATED by id = {tag}, owner = {ZONE}")),
            "{name} {qtype}:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn a_reload_keeps_the_signature_cache_unless_the_key_changes() {
    let s = Signed::start(hickory_proto::dnssec::Algorithm::ECDSAP256SHA256).await;
    let made = |s: &Signed| -> (u16, u64) {
        let snap = s.meridian.state.load();
        let signer = snap.model.zones.signers().next().expect("signed");
        (signer.key_tag(), signer.signatures_made())
    };
    let first = s
        .query_direct("static.gslb.test.", RecordType::A, LONDON)
        .await;
    let (tag, _) = made(&s);

    s.reload().await;
    let again = s
        .query_direct("static.gslb.test.", RecordType::A, LONDON)
        .await;
    assert_eq!(
        made(&s),
        (tag, 0),
        "the same key: the cached signature is served"
    );
    let sig = |m: &Message| {
        m.answers
            .iter()
            .find(|r| r.record_type() == RecordType::RRSIG)
            .map(|r| r.data.to_string())
    };
    assert_eq!(sig(&first), sig(&again));

    let der = meridian::dnssec::generate(hickory_proto::dnssec::Algorithm::ED25519).unwrap();
    std::fs::write(
        s.dir.path().join("key.pem"),
        meridian::dnssec::pem_encode(&der),
    )
    .unwrap();
    s.reload().await;
    let fresh = s
        .query_direct("static.gslb.test.", RecordType::A, LONDON)
        .await;
    let (new_tag, signed) = made(&s);
    assert_ne!(new_tag, tag);
    assert_eq!(signed, 1, "a new key signs afresh");
    assert_ne!(sig(&fresh), sig(&first));
}
