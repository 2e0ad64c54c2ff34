//! DNS over TCP (RFC 7766): several pipelined queries per connection, idle connections closed,
//! and a cap on concurrent connections.

use hickory_proto::rr::RecordType;
use tokio::net::TcpStream;

use crate::support::{Meridian, QueryBuilder, framed, parse, read_frame, write_frame};

#[tokio::test]
async fn pipelined_queries_on_one_connection_are_all_answered() {
    let m = Meridian::start("", "").await;
    let mut s = TcpStream::connect(m.tcp).await.unwrap();
    let names = ["static", "ns1", "mail", "nope", "alias"];
    // All queries in one write, before reading anything.
    let mut burst = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let q = QueryBuilder::new(&format!("{n}.example.test."), RecordType::A)
            .id(100 + i as u16)
            .build();
        burst.extend_from_slice(&framed(&q));
    }
    tokio::io::AsyncWriteExt::write_all(&mut s, &burst)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in names {
        let r = parse(&read_frame(&mut s).await.expect("reply"));
        ids.push(r.metadata.id);
    }
    ids.sort();
    assert_eq!(ids, [100, 101, 102, 103, 104]);
    // And the connection stays usable.
    write_frame(
        &mut s,
        &QueryBuilder::new("static.example.test.", RecordType::A)
            .id(7)
            .build(),
    )
    .await;
    assert_eq!(parse(&read_frame(&mut s).await.unwrap()).metadata.id, 7);
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_timeout() {
    let m = Meridian::start("tcp_idle_timeout = \"200ms\"", "").await;
    let mut s = TcpStream::connect(m.tcp).await.unwrap();
    // Nothing sent: the server closes; read_frame sees EOF (bounded by its own timeout).
    assert!(read_frame(&mut s).await.is_none());
    // A client trickling a partial message is cut off the same way.
    let mut s = TcpStream::connect(m.tcp).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut s, &[0, 40, 0x12])
        .await
        .unwrap();
    assert!(read_frame(&mut s).await.is_none());
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once() {
    let m = Meridian::start("tcp_max_connections = 2", "").await;
    let q = QueryBuilder::new("static.example.test.", RecordType::A).build();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(m.tcp).await.unwrap();
        write_frame(&mut s, &q).await;
        assert!(read_frame(&mut s).await.is_some(), "within the cap: served");
        held.push(s);
    }
    let mut third = TcpStream::connect(m.tcp).await.unwrap();
    // The server may already have reset the connection, so the write may fail.
    let _ = tokio::io::AsyncWriteExt::write_all(&mut third, &framed(&q)).await;
    assert!(
        read_frame(&mut third).await.is_none(),
        "over the cap: closed"
    );
    // UDP is unaffected by TCP clients.
    assert_eq!(
        m.query("static.example.test.", RecordType::A)
            .await
            .answers
            .len(),
        1
    );
    // Once a slot frees up, new connections are served again. The server notices the close
    // asynchronously, so retry a bounded number of times.
    drop(held.pop());
    let mut served = false;
    for _ in 0..100 {
        let mut s = TcpStream::connect(m.tcp).await.unwrap();
        let _ = tokio::io::AsyncWriteExt::write_all(&mut s, &framed(&q)).await;
        if read_frame(&mut s).await.is_some() {
            served = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(served, "a freed slot is reused");
}

#[tokio::test]
async fn a_client_trickling_bytes_is_cut_off_within_the_timeout() {
    let m = Meridian::start("tcp_idle_timeout = \"300ms\"", "").await;
    let q = QueryBuilder::new("static.example.test.", RecordType::A).build();
    let frame = framed(&q);
    let mut s = TcpStream::connect(m.tcp).await.unwrap();
    let started = tokio::time::Instant::now();
    // One byte every 50 ms: never idle for 300 ms, but the whole message would take
    // len × 50 ms. The timeout covers the whole message, so the server hangs up first.
    let mut sent = 0;
    let mut closed = false;
    for &b in &frame {
        if tokio::io::AsyncWriteExt::write_all(&mut s, &[b])
            .await
            .is_err()
        {
            closed = true;
            break;
        }
        sent += 1;
        let mut probe = [0u8; 1];
        match tokio::time::timeout(
            std::time::Duration::from_millis(50),
            tokio::io::AsyncReadExt::read(&mut s, &mut probe),
        )
        .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) => panic!("an answer to a message that was never completed"),
            Err(_) => {} // Still open: send the next byte.
        }
    }
    assert!(closed, "the trickling client was never cut off");
    assert!(
        sent < frame.len(),
        "cut off before the message was complete"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "cut off after {:?}",
        started.elapsed()
    );
}
