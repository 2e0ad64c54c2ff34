//! Authoritative DNS behaviour over real UDP and TCP: header flags, negative answers, CNAME,
//! referrals, wildcards, REFUSED/NOTIMP, EDNS, truncation, ANY.

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{RData, RecordType};

use crate::support::{Meridian, QueryBuilder, parse};

/// Sends the same query over UDP and TCP and returns both replies.
async fn both(m: &Meridian, q: &QueryBuilder) -> [Message; 2] {
    let bytes = q.build();
    [
        parse(&m.udp_raw(&bytes).await),
        parse(&m.tcp_raw(&bytes).await),
    ]
}

fn answer_types(msg: &Message) -> Vec<RecordType> {
    msg.answers.iter().map(|r| r.record_type()).collect()
}

#[tokio::test]
async fn header_echoes_id_rd_and_question_case_and_sets_aa_only() {
    let m = Meridian::start("", "").await;
    let q = QueryBuilder::new("StAtIc.ExAmPlE.tEsT.", RecordType::A)
        .id(0xBEEF)
        .rd();
    for transport in ["udp", "tcp"] {
        let raw = if transport == "udp" {
            m.udp_raw(&q.build()).await
        } else {
            m.tcp_raw(&q.build()).await
        };
        let r = parse(&raw);
        assert_eq!(r.metadata.id, 0xBEEF, "{transport}");
        assert!(r.metadata.authoritative, "{transport}: AA");
        assert!(r.metadata.recursion_desired, "{transport}: RD echoed");
        assert!(!r.metadata.recursion_available, "{transport}: RA never set");
        // Z, AD and CD bits are the low bits of byte 3 (RFC 1035 §4.1.1, RFC 4035 §3.1.6).
        assert_eq!(raw[3] & 0x70, 0, "{transport}: Z/AD/CD clear");
        assert_eq!(
            r.queries[0].name().to_ascii(),
            "StAtIc.ExAmPlE.tEsT.",
            "{transport}"
        );
        assert_eq!(answer_types(&r), [RecordType::A], "{transport}");
    }
}

#[tokio::test]
async fn nxdomain_and_nodata_carry_the_soa_with_the_negative_ttl() {
    let m = Meridian::start("", "").await;
    // RFC 2308 §3: TTL = min(SOA TTL 3600, MINIMUM 300).
    for (name, qtype, rcode) in [
        ("nope.example.test.", RecordType::A, ResponseCode::NXDomain),
        (
            "static.example.test.",
            RecordType::MX,
            ResponseCode::NoError,
        ),
        // An empty non-terminal exists (RFC 8020): NODATA, not NXDOMAIN.
        ("b.example.test.", RecordType::A, ResponseCode::NoError),
        (
            "deeper.nope.example.test.",
            RecordType::TXT,
            ResponseCode::NXDomain,
        ),
    ] {
        for r in both(&m, &QueryBuilder::new(name, qtype)).await {
            assert_eq!(r.metadata.response_code, rcode, "{name} {qtype}");
            assert!(r.metadata.authoritative);
            assert!(r.answers.is_empty(), "{name} {qtype}");
            assert_eq!(r.authorities.len(), 1, "{name} {qtype}");
            let soa = &r.authorities[0];
            assert_eq!(soa.record_type(), RecordType::SOA);
            assert_eq!(soa.name.to_ascii(), "example.test.");
            assert_eq!(soa.ttl, 300);
        }
    }
}

#[tokio::test]
async fn cname_chains_are_followed_inside_the_zone() {
    let m = Meridian::start("", "").await;
    for r in both(
        &m,
        &QueryBuilder::new("alias2.example.test.", RecordType::AAAA),
    )
    .await
    {
        assert_eq!(
            answer_types(&r),
            [RecordType::CNAME, RecordType::CNAME, RecordType::AAAA]
        );
        assert_eq!(r.answers[2].name.to_ascii(), "static.example.test.");
    }
    // RFC 6604 §3: the rcode is the last name's; the CNAME stays in the answer.
    for r in both(
        &m,
        &QueryBuilder::new("dangling.example.test.", RecordType::A),
    )
    .await
    {
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(answer_types(&r), [RecordType::CNAME]);
        assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
    }
    // Out of zone: stop, the resolver follows.
    for r in both(
        &m,
        &QueryBuilder::new("outside.example.test.", RecordType::A),
    )
    .await
    {
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(answer_types(&r), [RecordType::CNAME]);
    }
    // A loop ends with each CNAME once.
    for r in both(&m, &QueryBuilder::new("loop1.example.test.", RecordType::A)).await {
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(answer_types(&r), [RecordType::CNAME, RecordType::CNAME]);
    }
    // Asking for the CNAME itself does not follow it.
    for r in both(
        &m,
        &QueryBuilder::new("alias.example.test.", RecordType::CNAME),
    )
    .await
    {
        assert_eq!(answer_types(&r), [RecordType::CNAME]);
    }
}

#[tokio::test]
async fn delegations_answer_with_referrals_and_glue() {
    let m = Meridian::start("", "").await;
    for name in [
        "sub.example.test.",
        "www.sub.example.test.",
        "ns.sub.example.test.",
    ] {
        for r in both(&m, &QueryBuilder::new(name, RecordType::A)).await {
            assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{name}");
            assert!(
                !r.metadata.authoritative,
                "{name}: a referral is not authoritative"
            );
            assert!(r.answers.is_empty());
            assert_eq!(r.authorities.len(), 2, "{name}");
            assert!(
                r.authorities
                    .iter()
                    .all(|a| a.record_type() == RecordType::NS
                        && a.name.to_ascii() == "sub.example.test.")
            );
            // RFC 9471: in-domain glue, and none for the out-of-zone name server.
            assert_eq!(r.additionals.len(), 1, "{name}");
            assert_eq!(r.additionals[0].name.to_ascii(), "ns.sub.example.test.");
        }
    }
    // The DS RRset at the cut belongs to the parent side (RFC 4035 §3.1.4.1).
    for r in both(&m, &QueryBuilder::new("sub.example.test.", RecordType::DS)).await {
        assert!(r.metadata.authoritative);
        assert_eq!(answer_types(&r), [RecordType::DS]);
    }
}

#[tokio::test]
async fn wildcards_synthesize_for_missing_names_only() {
    let m = Meridian::start("", "").await;
    for r in both(
        &m,
        &QueryBuilder::new("a.B.wild.example.test.", RecordType::A),
    )
    .await
    {
        assert_eq!(answer_types(&r), [RecordType::A]);
        // RFC 4592 §3.3.1: the owner is the query name.
        assert_eq!(
            r.answers[0].name.to_ascii().to_lowercase(),
            "a.b.wild.example.test."
        );
        assert_eq!(r.answers[0].data, RData::A("192.0.2.100".parse().unwrap()));
    }
    // An existing name blocks the wildcard: NODATA.
    for r in both(
        &m,
        &QueryBuilder::new("blocked.wild.example.test.", RecordType::A),
    )
    .await
    {
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty());
        assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
    }
    for r in both(
        &m,
        &QueryBuilder::new("x.cnamewild.example.test.", RecordType::A),
    )
    .await
    {
        assert_eq!(answer_types(&r), [RecordType::CNAME, RecordType::A]);
        assert_eq!(r.answers[0].name.to_ascii(), "x.cnamewild.example.test.");
    }
}

#[tokio::test]
async fn names_outside_every_zone_are_refused() {
    let m = Meridian::start("", "").await;
    for name in ["www.example.org.", "test.", "."] {
        for r in both(&m, &QueryBuilder::new(name, RecordType::A)).await {
            assert_eq!(r.metadata.response_code, ResponseCode::Refused, "{name}");
            assert!(!r.metadata.authoritative);
            assert!(r.answers.is_empty() && r.authorities.is_empty());
        }
    }
    // With EDNS the reason is given as Extended DNS Error 20 (RFC 8914).
    let r = m.query("www.example.org.", RecordType::A).await;
    let ede = r
        .edns
        .as_ref()
        .unwrap()
        .option(hickory_proto::rr::rdata::opt::EdnsCode::Unknown(15));
    assert_eq!(ede, Some(&EdnsOption::Unknown(15, vec![0, 20])));
}

#[tokio::test]
async fn a_name_belongs_to_the_served_zone_with_the_longest_origin() {
    // A parent and a child zone served together (no delegation in the parent): each name is
    // answered from the deepest zone it is in, whatever its number of labels.
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    let soa = |ns: &str| format!("@ 300 SOA {ns} hostmaster 1 3600 600 86400 60\n@ 300 NS {ns}\n");
    std::fs::write(
        zones.join("example.test.zone"),
        soa("ns1") + "ns1 300 A 192.0.2.53\nwww 300 A 192.0.2.1\nx.sub 300 A 192.0.2.9\n",
    )
    .unwrap();
    std::fs::write(
        zones.join("sub.example.test.zone"),
        soa("ns.example.test.") + "www 300 A 192.0.2.2\na.b.c.d.e.f 300 A 192.0.2.3\n",
    )
    .unwrap();
    let path = dir.path().join("meridian.toml");
    std::fs::write(
        &path,
        format!(
            "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = {:?}\n",
            zones.display().to_string()
        ),
    )
    .unwrap();
    let model = meridian::Model::load(&path).expect("two zones load");
    let m = Meridian::serve(model, dir).await;
    let a = |r: &Message| -> Vec<String> {
        r.answers
            .iter()
            .filter_map(|rr| match &rr.data {
                RData::A(a) => Some(a.to_string()),
                _ => None,
            })
            .collect()
    };
    let soa_owner = |r: &Message| r.authorities.first().map(|rr| rr.name.to_string());
    for (name, want) in [
        ("www.example.test.", "192.0.2.1"),
        ("www.sub.example.test.", "192.0.2.2"),
        ("a.b.c.d.e.f.sub.example.test.", "192.0.2.3"),
    ] {
        for r in both(&m, &QueryBuilder::new(name, RecordType::A)).await {
            assert_eq!(a(&r), [want], "{name}");
            assert!(r.metadata.authoritative, "{name}");
        }
    }
    // The parent's record under the child's origin is hidden by the child zone, and names
    // under the child (deeper than any origin) are the child's to deny.
    for name in ["x.sub.example.test.", "q.r.s.t.u.v.w.sub.example.test."] {
        for r in both(&m, &QueryBuilder::new(name, RecordType::A)).await {
            assert_eq!(r.metadata.response_code, ResponseCode::NXDomain, "{name}");
            assert_eq!(
                soa_owner(&r).as_deref(),
                Some("sub.example.test."),
                "{name}"
            );
        }
    }
    for r in both(&m, &QueryBuilder::new("nope.example.test.", RecordType::A)).await {
        assert_eq!(soa_owner(&r).as_deref(), Some("example.test."));
    }
}

#[tokio::test]
async fn other_opcodes_get_notimp_without_aa() {
    let m = Meridian::start("", "").await;
    for op in [
        OpCode::Notify,
        OpCode::Update,
        OpCode::Status,
        OpCode::Unknown(3),
    ] {
        let q = QueryBuilder::new("static.example.test.", RecordType::SOA).opcode(op);
        for r in both(&m, &q).await {
            assert_eq!(r.metadata.response_code, ResponseCode::NotImp, "{op:?}");
            assert!(!r.metadata.authoritative);
            assert_eq!(r.metadata.op_code, op);
        }
    }
}

#[tokio::test]
async fn edns_reply_iff_query_had_opt_with_our_size_and_do_copied() {
    let m = Meridian::start("", "").await;
    let plain = QueryBuilder::new("static.example.test.", RecordType::A);
    for r in both(&m, &plain).await {
        assert!(r.edns.is_none(), "no OPT in reply to a query without one");
    }
    for r in both(&m, &plain.clone().edns(4096).dnssec_ok()).await {
        let e = r.edns.expect("OPT echoed");
        assert_eq!(e.max_payload(), 1232);
        assert_eq!(e.version(), 0);
        assert!(e.flags().dnssec_ok, "DO copied");
    }
    for r in both(&m, &plain.clone().edns(1232)).await {
        assert!(!r.edns.expect("OPT").flags().dnssec_ok);
    }
    // RFC 6891 §6.1.3: version 1 gets BADVERS, with an OPT of version 0.
    for r in both(&m, &plain.clone().edns(1232).edns_version(1)).await {
        // 16 is BADVERS in an OPT context (hickory decodes it under its other name, BADSIG).
        assert_eq!(u16::from(r.metadata.response_code), 16);
        assert_eq!(r.edns.expect("OPT").version(), 0);
        assert!(r.answers.is_empty());
    }
}

#[tokio::test]
async fn unknown_edns_options_are_ignored() {
    let m = Meridian::start("", "").await;
    let mut msg = parse(
        &QueryBuilder::new("static.example.test.", RecordType::A)
            .edns(1232)
            .build(),
    );
    msg.edns
        .as_mut()
        .unwrap()
        .options_mut()
        .insert(EdnsOption::Unknown(65001, vec![1, 2, 3]));
    let bytes = msg.to_vec().unwrap();
    let r = parse(&m.udp_raw(&bytes).await);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answer_types(&r), [RecordType::A]);
    assert!(
        r.edns.unwrap().options().as_ref().is_empty(),
        "unknown option not echoed"
    );
}

#[tokio::test]
async fn udp_truncates_with_tc_and_tcp_carries_the_full_answer() {
    let m = Meridian::start("", "").await;
    // 40 A records do not fit in 512 bytes.
    let q = QueryBuilder::new("big.example.test.", RecordType::A);
    let udp = parse(&m.udp_raw(&q.build()).await);
    assert!(udp.metadata.truncation, "TC set");
    assert_eq!(udp.queries.len(), 1, "question kept");
    assert!(udp.answers.is_empty());
    let tcp = parse(&m.tcp_raw(&q.build()).await);
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 40);
    // With EDNS 1232 they fit; a payload below 512 counts as 512 (RFC 6891 §6.2.5).
    let fits = parse(&m.udp_raw(&q.clone().edns(1232).build()).await);
    assert!(!fits.metadata.truncation);
    assert_eq!(fits.answers.len(), 40);
    let tiny = parse(&m.udp_raw(&q.clone().edns(100).build()).await);
    assert!(tiny.metadata.truncation);
    // 6 long TXT strings exceed 1232 bytes even with EDNS.
    let q = QueryBuilder::new("bigtxt.example.test.", RecordType::TXT).edns(4096);
    let udp = parse(&m.udp_raw(&q.build()).await);
    assert!(udp.metadata.truncation);
    assert!(udp.edns.is_some(), "OPT kept in a truncated reply");
    let tcp = parse(&m.tcp_raw(&q.build()).await);
    assert_eq!(tcp.answers.len(), 6);
}

#[tokio::test]
async fn any_is_answered_with_one_rrset() {
    let m = Meridian::start("", "").await;
    for r in both(&m, &QueryBuilder::new("example.test.", RecordType::ANY)).await {
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(
            !r.answers.is_empty(),
            "RFC 8482: never empty for an existing RRset"
        );
        let first = r.answers[0].record_type();
        assert!(
            r.answers.iter().all(|a| a.record_type() == first),
            "one RRset"
        );
    }
    // An empty non-terminal has nothing: NODATA.
    for r in both(&m, &QueryBuilder::new("b.example.test.", RecordType::ANY)).await {
        assert!(r.answers.is_empty());
        assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
    }
}

#[tokio::test]
async fn zone_transfers_and_non_in_classes_are_refused() {
    let m = Meridian::start("", "").await;
    let r = parse(
        &m.tcp_raw(&QueryBuilder::new("example.test.", RecordType::AXFR).build())
            .await,
    );
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    let mut msg = parse(&QueryBuilder::new("static.example.test.", RecordType::A).build());
    msg.queries[0].set_query_class(hickory_proto::rr::DNSClass::CH);
    let r = parse(&m.udp_raw(&msg.to_vec().unwrap()).await);
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
}

#[tokio::test]
async fn ipv6_listeners_answer_over_udp_and_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meridian.toml");
    let text = format!(
        "[dns]\nlisten = [\"[::1]:0\"]\nzones = {:?}\n",
        crate::support::fixture_zones().display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    let model = meridian::Model::load(&path).unwrap();
    let listeners = meridian::Listeners::bind(&model.dns.listen, model.dns.workers, None).unwrap();
    let (udp, tcp) = (listeners.udp_addrs()[0], listeners.tcp_addrs()[0]);
    assert!(udp.is_ipv6() && tcp.is_ipv6());
    let state = std::sync::Arc::new(meridian::SharedState::new(model));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let probe = std::sync::Arc::new(meridian::prober::probe::NetProbe::new().unwrap());
    let control = meridian::prober::HealthControl::new();
    let telemetry =
        meridian::Telemetry::new(&state, meridian::director::stats::DirectorStats::new());
    let server = tokio::spawn(meridian::run(
        state,
        listeners,
        probe,
        control,
        telemetry,
        shutdown.clone(),
    ));

    let q = QueryBuilder::new("static.example.test.", RecordType::AAAA).build();
    let sock = tokio::net::UdpSocket::bind("[::1]:0").await.unwrap();
    sock.send_to(&q, udp).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(crate::support::REPLY_TIMEOUT, sock.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer_types(&parse(&buf[..n])), [RecordType::AAAA]);
    let mut s = tokio::net::TcpStream::connect(tcp).await.unwrap();
    crate::support::write_frame(&mut s, &q).await;
    let r = parse(&crate::support::read_frame(&mut s).await.unwrap());
    assert_eq!(answer_types(&r), [RecordType::AAAA]);

    shutdown.cancel();
    server.await.unwrap().unwrap();
}
