//! EDNS options both answering paths read from one parse of the query: NSID (RFC 5001) and
//! the strict EDNS Client Subnet rules of RFC 7871 §6, for static names (the fast path) and
//! service names alike, over UDP and TCP, checked with hickory and with `dig`.

use std::process::Command;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};

use crate::support::{Meridian, QueryBuilder, answer_addrs, parse};

const SERVICE: &str = "[pools.web]\nmembers = [{ address = \"192.0.2.10\" }, { address = \"192.0.2.11\" }]\n\n\
                       [services.\"www.example.test.\"]\npools = [\"web\"]\n";

/// The query with an empty NSID option added to its OPT record (RFC 5001 §2.1).
fn with_nsid(packet: Vec<u8>) -> Vec<u8> {
    let mut msg = parse(&packet);
    msg.edns
        .as_mut()
        .expect("the query has an OPT record")
        .options_mut()
        .insert(EdnsOption::Unknown(3, Vec::new()));
    let out = msg.to_vec().expect("encode");
    assert_eq!(out.len(), packet.len() + 4, "one empty option more");
    out
}

fn nsid_of(reply: &Message) -> Option<Vec<u8>> {
    match reply.edns.as_ref()?.options().get(EdnsCode::NSID)? {
        EdnsOption::NSID(payload) => Some(payload.as_ref().to_vec()),
        EdnsOption::Unknown(_, data) => Some(data.clone()),
        other => panic!("NSID read as {other:?}"),
    }
}

#[tokio::test]
async fn nsid_names_the_instance_on_both_transports_and_changes_nothing_else() {
    let m = Meridian::start("nsid = \"ns-test-1\"", SERVICE).await;
    for (name, qtype) in [
        ("static.example.test.", RecordType::A),
        ("www.example.test.", RecordType::A),
        ("nothing.example.test.", RecordType::A),
        ("www.elsewhere.invalid.", RecordType::A),
    ] {
        let plain = QueryBuilder::new(name, qtype).edns(1232).build();
        let asked = with_nsid(plain.clone());
        for tcp in [false, true] {
            let send = |p: Vec<u8>| {
                let m = &m;
                async move {
                    if tcp {
                        parse(&m.tcp_raw(&p).await)
                    } else {
                        parse(&m.udp_raw(&p).await)
                    }
                }
            };
            let without = send(plain.clone()).await;
            let with = send(asked.clone()).await;
            assert_eq!(nsid_of(&without), None, "{name}: not asked, not sent");
            assert_eq!(
                nsid_of(&with).as_deref(),
                Some(&b"ns-test-1"[..]),
                "{name} tcp={tcp}"
            );
            assert_eq!(with.metadata.response_code, without.metadata.response_code);
            let mut a = answer_addrs(&with);
            let mut b = answer_addrs(&without);
            a.sort();
            b.sort();
            assert_eq!(a, b, "{name}: NSID does not change the answer");
            assert_eq!(with.authorities.len(), without.authorities.len());
        }
    }

    // With ECS as well: both options come back.
    let both = with_nsid(
        QueryBuilder::new("www.example.test.", RecordType::A)
            .ecs("198.51.100.0", 24)
            .build(),
    );
    let reply = parse(&m.udp_raw(&both).await);
    assert_eq!(nsid_of(&reply).as_deref(), Some(&b"ns-test-1"[..]));
    assert!(matches!(
        reply.edns.as_ref().unwrap().options().get(EdnsCode::Subnet),
        Some(EdnsOption::Subnet(_))
    ));

    // What an operator types.
    let out = Command::new("dig")
        .args(["+nsid", "+norec", "+time=5", "+tries=1", "-p"])
        .arg(m.udp.port().to_string())
        .arg(format!("@{}", m.udp.ip()))
        .args(["static.example.test.", "A"])
        .output()
        .expect("dig runs (bind9-dnsutils)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("(\"ns-test-1\")"), "{text}");
    m.stop().await;
}

#[tokio::test]
async fn without_an_nsid_set_the_option_is_ignored() {
    let m = Meridian::start("", SERVICE).await;
    for name in ["static.example.test.", "www.example.test."] {
        let asked = with_nsid(QueryBuilder::new(name, RecordType::A).edns(1232).build());
        let reply = parse(&m.udp_raw(&asked).await);
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(!answer_addrs(&reply).is_empty(), "{name}");
        assert_eq!(nsid_of(&reply), None);
    }
    m.stop().await;
}

#[tokio::test]
async fn client_subnets_that_break_rfc_7871_get_formerr_on_every_name() {
    let m = Meridian::start("", SERVICE).await;
    for name in ["static.example.test.", "www.example.test."] {
        let good = QueryBuilder::new(name, RecordType::A)
            .ecs("198.51.100.0", 24)
            .build();
        let reply = parse(&m.udp_raw(&good).await);
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);

        // ECS option data: family 1, source 24, scope 0, then the address bytes.
        for (why, data) in [
            (
                "an address byte too many",
                &[0, 1, 24, 0, 198, 51, 100, 0][..],
            ),
            ("a bit set past the prefix", &[0, 1, 23, 0, 198, 51, 101]),
            (
                "a prefix longer than IPv4",
                &[0, 1, 33, 0, 198, 51, 100, 0, 0],
            ),
        ] {
            // The OPT record ends the query with no options: its RDLENGTH is the last field.
            let mut q = QueryBuilder::new(name, RecordType::A).edns(1232).build();
            let at = q.len() - 2;
            q[at..].copy_from_slice(&(4 + data.len() as u16).to_be_bytes());
            q.extend_from_slice(&[0, 8]);
            q.extend_from_slice(&(data.len() as u16).to_be_bytes());
            q.extend_from_slice(data);
            for reply in [m.udp_raw(&q).await, m.tcp_raw(&q).await] {
                let reply = parse(&reply);
                assert_eq!(
                    reply.metadata.response_code,
                    ResponseCode::FormErr,
                    "{name}: {why}"
                );
                assert!(reply.answers.is_empty());
            }
        }
    }
    m.stop().await;
}
