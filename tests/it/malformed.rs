//! Bad input never crashes the server: runts and responses get silence, malformed queries get
//! FORMERR, and the server keeps answering afterwards.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;

use crate::support::{Meridian, QueryBuilder, REPLY_TIMEOUT, parse};

/// A valid header with the given ID and counts, RD set.
fn header(id: u16, qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
    let mut h = id.to_be_bytes().to_vec();
    h.extend_from_slice(&[0x01, 0x00]);
    for c in [qd, an, ns, ar] {
        h.extend_from_slice(&c.to_be_bytes());
    }
    h
}

/// `static.example.test.` IN A as a question.
fn question() -> Vec<u8> {
    let mut q = Vec::new();
    for label in ["static", "example", "test"] {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// An OPT RR advertising 1232 bytes, with `rdata` as its option bytes.
fn opt(rdata: &[u8]) -> Vec<u8> {
    let mut o = vec![0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0];
    o.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    o.extend_from_slice(rdata);
    o
}

fn packet(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Sends `bad` then a valid query with ID 0x7777 from the same socket; returns the reply to
/// `bad` if there was one. Replies come back in order, so "the first reply is the valid one"
/// proves silence without waiting for a timeout.
async fn reply_to(m: &Meridian, bad: &[u8]) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(bad, m.udp).await.unwrap();
    let good = QueryBuilder::new("static.example.test.", RecordType::A)
        .id(0x7777)
        .build();
    sock.send_to(&good, m.udp).await.unwrap();
    let mut buf = vec![0u8; 65_535];
    let mut first = None;
    for _ in 0..2 {
        let (n, _) = tokio::time::timeout(REPLY_TIMEOUT, sock.recv_from(&mut buf))
            .await
            .expect("reply in time")
            .unwrap();
        let id = u16::from_be_bytes([buf[0], buf[1]]);
        if id == 0x7777 && n > 12 && parse(&buf[..n]).answers.len() == 1 {
            return first;
        }
        first = Some(buf[..n].to_vec());
    }
    panic!("the valid query got no answer after a malformed one");
}

#[tokio::test]
async fn runts_and_responses_get_no_reply() {
    let m = Meridian::start("", "").await;
    assert_eq!(reply_to(&m, &[]).await, None, "empty datagram");
    assert_eq!(
        reply_to(&m, &[0x12, 0x34, 0x01]).await,
        None,
        "shorter than a header"
    );
    let mut response = packet(&[&header(0x4242, 1, 0, 0, 0), &question()]);
    response[2] |= 0x80; // QR=1
    assert_eq!(
        reply_to(&m, &response).await,
        None,
        "a response is never answered"
    );
}

#[tokio::test]
async fn malformed_queries_get_formerr_with_their_id() {
    let m = Meridian::start("", "").await;
    let mut loop_name = header(0x0101, 1, 0, 0, 0);
    loop_name.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]); // a pointer to itself
    let mut long_label = header(0x0102, 1, 0, 0, 0);
    long_label.push(70); // labels are at most 63 bytes
    long_label.extend_from_slice(&[b'a'; 70]);
    long_label.extend_from_slice(&[0, 0, 1, 0, 1]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "two questions",
            packet(&[&header(0x0103, 2, 0, 0, 0), &question(), &question()]),
        ),
        ("no question", header(0x0104, 0, 0, 0, 0)),
        (
            "question cut short",
            packet(&[&header(0x0105, 1, 0, 0, 0), &question()[..9]]),
        ),
        ("compression loop", loop_name),
        ("label longer than 63", long_label),
        (
            "two OPT records",
            packet(&[
                &header(0x0106, 1, 0, 0, 2),
                &question(),
                &opt(&[]),
                &opt(&[]),
            ]),
        ),
        (
            "OPT length past the end",
            packet(&[
                &header(0x0107, 1, 0, 0, 1),
                &question(),
                &opt(&[0, 8, 0, 9, 1]),
            ]),
        ),
        (
            "counts claim records that are not there",
            packet(&[&header(0x0108, 1, 3, 0, 0), &question()]),
        ),
    ];
    for (what, bad) in cases {
        let reply = reply_to(&m, &bad)
            .await
            .unwrap_or_else(|| panic!("{what}: no reply"));
        let r = parse(&reply);
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr, "{what}");
        assert_eq!(
            r.metadata.id,
            u16::from_be_bytes([bad[0], bad[1]]),
            "{what}: ID echoed"
        );
        assert!(!r.metadata.authoritative, "{what}");
    }
}

#[tokio::test]
async fn garbage_over_tcp_is_answered_or_closed_and_service_continues() {
    let m = Meridian::start("", "").await;
    let good = QueryBuilder::new("static.example.test.", RecordType::A)
        .id(0x7777)
        .build();
    for bad in [vec![0u8; 3], header(0x0201, 5, 0, 0, 0), vec![0xff; 300]] {
        let mut s = tokio::net::TcpStream::connect(m.tcp).await.unwrap();
        crate::support::write_frame(&mut s, &bad).await;
        crate::support::write_frame(&mut s, &good).await;
        // Each reply is FORMERR for the bad frame or the good answer; the server may also
        // close the connection. It never hangs and never sends garbage.
        for _ in 0..2 {
            let Some(reply) = crate::support::read_frame(&mut s).await else {
                break;
            };
            let r = parse(&reply);
            if r.metadata.id == 0x7777 {
                assert_eq!(r.answers.len(), 1);
                break;
            }
            assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        }
    }
    let r = m.query_tcp("static.example.test.", RecordType::A).await;
    assert_eq!(r.answers.len(), 1);
}
