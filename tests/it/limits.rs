//! Resource limits that must hold under load: many idle TCP clients do not stop UDP service,
//! and the TCP cap still turns away the next client. Runs the compiled binary, so the server's
//! file descriptors are its own and not the test process's.

use std::io::{BufRead, BufReader};
use std::process::Command;

use hickory_proto::rr::RecordType;
use tokio::net::TcpStream;

use crate::support::{
    QueryBuilder, config_text, framed, listening_addrs, parse, read_frame, spawn_serve,
    udp_exchange_from, write_frame,
};

/// Idle connections held open at once.
const IDLE: usize = 10_000;

#[test]
fn ten_thousand_idle_tcp_connections_do_not_stop_udp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meridian.toml");
    let extra = format!("tcp_max_connections = {IDLE}\ntcp_idle_timeout = \"60s\"");
    std::fs::write(&path, config_text(&extra, "")).unwrap();
    let mut child = spawn_serve(&path);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let [udp, tcp] = listening_addrs(&mut lines, &["dns-udp", "dns-tcp"])[..] else {
        unreachable!("two kinds asked, two addresses")
    };
    // Keep draining its log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let q = QueryBuilder::new("static.example.test.", RecordType::A).build();
        // Fill every TCP slot with a connection that has been served once and then sits idle.
        let mut idle = Vec::with_capacity(IDLE);
        for i in 0..IDLE {
            let mut s = TcpStream::connect(tcp)
                .await
                .unwrap_or_else(|e| panic!("connect {i}: {e}"));
            if i % 1000 == 0 {
                // Every thousandth proves the slots are really being served.
                write_frame(&mut s, &q).await;
                assert!(read_frame(&mut s).await.is_some(), "connection {i} served");
            }
            idle.push(s);
        }
        // UDP answers promptly from several client networks.
        for from in ["127.0.0.1", "127.0.4.1", "127.0.9.9"] {
            let reply = udp_exchange_from(from.parse().unwrap(), udp, &q).await;
            assert_eq!(parse(&reply).answers.len(), 1, "UDP from {from}");
        }
        // The cap holds: one more TCP client is closed at once.
        let mut extra = TcpStream::connect(tcp).await.unwrap();
        let _ = tokio::io::AsyncWriteExt::write_all(&mut extra, &framed(&q)).await;
        assert!(
            read_frame(&mut extra).await.is_none(),
            "over the cap: closed"
        );
        // A held connection is still served.
        write_frame(&mut idle[IDLE - 1], &q).await;
        assert!(read_frame(&mut idle[IDLE - 1]).await.is_some());
        // Close with a reset, so 10,000 sockets are not left in TIME_WAIT on loopback (they
        // would slow the next run's connects).
        for s in &idle {
            let _ = socket2::SockRef::from(s).set_linger(Some(std::time::Duration::ZERO));
        }
        drop(idle);
    });

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "clean exit: {exit:?}");
}
