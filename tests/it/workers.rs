//! DNS workers (`[dns] workers`): each has its own UDP socket on every listen address
//! (`SO_REUSEPORT`), the kernel spreads clients over them, every worker answers alike over UDP
//! and TCP, and all of them stop at shutdown. Also DNS over TCP under heavier pipelining than
//! `tcp.rs` uses, and the setting's validation.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::Command;

use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinSet;

use crate::support::{
    Meridian, QueryBuilder, REPLY_TIMEOUT, VALID, ZONE, answer_addrs, config_dir, config_text,
    error_of, framed, ip, listening_addrs, parse, read_frame, spawn_serve, udp_bulk,
    udp_exchange_from, write_frame,
};

const WORKERS: usize = 3;

/// A service with static members next to the fixture zone's static names.
const SERVICE: &str = r#"
[pools.eu]
members = [{ address = "192.0.2.10" }, { address = "192.0.2.11" }]

[services."www.example.test."]
pools = ["eu"]
select = "all"
"#;

/// The query for the `i`th of the names asked below, with ID `id`, and the answer it expects.
fn case(i: usize, id: u16) -> (Vec<u8>, Vec<IpAddr>) {
    let (name, want) = match i % 3 {
        0 => ("static.example.test.", vec![ip("192.0.2.80")]),
        1 => (
            "www.example.test.",
            vec![ip("192.0.2.10"), ip("192.0.2.11")],
        ),
        _ => ("Mixed.Case.example.test.", vec![ip("192.0.2.81")]),
    };
    let q = QueryBuilder::new(name, RecordType::A).id(id).edns(1232);
    (q.build(), want)
}

#[tokio::test]
async fn every_worker_socket_shares_the_address_and_the_kernel_spreads_clients_over_them() {
    let listeners =
        meridian::Listeners::bind(&["127.0.0.1:0".parse().unwrap()], WORKERS, None).unwrap();
    let addr = listeners.udp_addrs()[0];
    assert_eq!(listeners.tcp_addrs(), [addr], "TCP on the same port");
    let [group] = &listeners.udp[..] else {
        panic!("one group of UDP sockets per DNS address")
    };
    assert_eq!(group.len(), WORKERS);
    let sockets: Vec<UdpSocket> = group
        .iter()
        .map(|s| {
            assert_eq!(s.local_addr().unwrap(), addr);
            let s = s.try_clone().unwrap();
            s.set_nonblocking(true).unwrap();
            UdpSocket::from_std(s).unwrap()
        })
        .collect();

    // 300 clients, each from its own port: the kernel hashes each one to one of the sockets.
    let clients = 300;
    for i in 0..clients {
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.send_to(&[i as u8], addr).await.unwrap();
    }
    let mut got = [0usize; WORKERS];
    let mut buf = [0u8; 16];
    tokio::time::timeout(REPLY_TIMEOUT, async {
        while got.iter().sum::<usize>() < clients {
            let i = tokio::select! {
                r = sockets[0].readable() => { r.unwrap(); 0 }
                r = sockets[1].readable() => { r.unwrap(); 1 }
                r = sockets[2].readable() => { r.unwrap(); 2 }
            };
            while sockets[i].try_recv_from(&mut buf).is_ok() {
                got[i] += 1;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {got:?} of {clients} datagrams arrived"));
    // With 300 independent hashes, a socket left out would happen once in 10^52 runs.
    assert!(got.iter().all(|&n| n > 0), "spread: {got:?}");
}

#[tokio::test]
async fn with_three_workers_clients_on_many_ports_are_all_answered_over_udp_and_tcp() {
    let m = Meridian::start(&format!("workers = {WORKERS}"), SERVICE).await;
    let (udp, tcp) = (m.udp, m.tcp);

    // 200 UDP clients at once, each on its own port, from several loopback addresses.
    let mut udp_clients = JoinSet::new();
    for i in 0..200 {
        udp_clients.spawn(async move {
            let (q, want) = case(i, i as u16);
            let from = IpAddr::from([127, 0, (i % 4) as u8, 1 + (i % 7) as u8]);
            let r = parse(&udp_exchange_from(from, udp, &q).await);
            assert_eq!(r.metadata.id, i as u16);
            assert!(r.metadata.authoritative);
            assert_eq!(answer_addrs(&r), want, "UDP query {i}");
        });
    }
    // 40 TCP connections at once, each with 25 queries pipelined in one write: the replies
    // come back in order.
    let mut tcp_clients = JoinSet::new();
    for c in 0..40 {
        tcp_clients.spawn(async move {
            let mut s = TcpStream::connect(tcp).await.unwrap();
            let cases: Vec<_> = (0..25).map(|i| case(c + i, (c * 100 + i) as u16)).collect();
            let burst: Vec<u8> = cases.iter().flat_map(|(q, _)| framed(q)).collect();
            s.write_all(&burst).await.unwrap();
            for (i, (_, want)) in cases.iter().enumerate() {
                let r = parse(&read_frame(&mut s).await.expect("reply"));
                assert_eq!(r.metadata.id, (c * 100 + i) as u16, "in order");
                assert_eq!(&answer_addrs(&r), want, "TCP query {i} on connection {c}");
            }
        });
    }
    for clients in [udp_clients, tcp_clients] {
        for done in clients.join_all().await {
            let () = done;
        }
    }
    m.stop().await;
}

#[tokio::test]
async fn tcp_answers_thousands_of_pipelined_queries_long_ones_and_split_ones_in_order() {
    let m = Meridian::start("", SERVICE).await;

    // 3,000 queries in one stream (about 190 KB of replies, several writes' worth), read while
    // they are being written.
    let n = 3000;
    let s = TcpStream::connect(m.tcp).await.unwrap();
    let (mut read, mut write) = s.into_split();
    let writer = tokio::spawn(async move {
        let burst: Vec<u8> = (0..n).flat_map(|i| framed(&case(i, i as u16).0)).collect();
        write.write_all(&burst).await.unwrap();
        write
    });
    for i in 0..n {
        let len = tokio::time::timeout(REPLY_TIMEOUT, read.read_u16())
            .await
            .expect("reply in time")
            .expect("reply");
        let mut reply = vec![0; usize::from(len)];
        read.read_exact(&mut reply).await.unwrap();
        let r = parse(&reply);
        assert_eq!(r.metadata.id, i as u16, "in order");
        assert_eq!(answer_addrs(&r), case(i, 0).1);
    }
    let mut s = read.reunite(writer.await.unwrap()).unwrap();

    // A query longer than the first read buffer (EDNS padding, RFC 7830), then a query split
    // over two writes with the next one's first half: each is answered once it is complete.
    let mut long = QueryBuilder::new("static.example.test.", RecordType::A)
        .id(1)
        .edns(1232)
        .build();
    // The OPT record, with no options, ends the query: its RDLENGTH is the last two bytes.
    let rdlength_at = long.len() - 2;
    let padding = 6000u16;
    long[rdlength_at..].copy_from_slice(&(4 + padding).to_be_bytes());
    long.extend_from_slice(&[0, 12]);
    long.extend_from_slice(&padding.to_be_bytes());
    long.resize(long.len() + usize::from(padding), 0);
    write_frame(&mut s, &long).await;
    let r = parse(&read_frame(&mut s).await.expect("reply to the long query"));
    assert_eq!(
        (r.metadata.id, answer_addrs(&r)),
        (1, vec![ip("192.0.2.80")])
    );

    let (a, b) = (case(0, 2).0, case(1, 3).0);
    let mut both = framed(&a);
    both.extend_from_slice(&framed(&b));
    let cut = framed(&a).len() + 5;
    s.write_all(&both[..cut]).await.unwrap();
    assert_eq!(parse(&read_frame(&mut s).await.unwrap()).metadata.id, 2);
    s.write_all(&both[cut..]).await.unwrap();
    assert_eq!(parse(&read_frame(&mut s).await.unwrap()).metadata.id, 3);
}

#[tokio::test]
async fn several_workers_all_stop_at_shutdown_and_free_the_address() {
    let mut m = Meridian::start("workers = 4", "").await;
    let q = QueryBuilder::new("static.example.test.", RecordType::A).build();
    assert_eq!(parse(&m.udp_raw(&q).await).answers.len(), 1);
    let mut s = TcpStream::connect(m.tcp).await.unwrap();
    write_frame(&mut s, &q).await;
    assert!(read_frame(&mut s).await.is_some());
    let udp = m.udp;
    m.begin_stop();
    m.stopped().await;
    // Every worker's socket is closed: the address can be bound again without SO_REUSEPORT,
    // which any remaining socket of the group would refuse.
    std::net::UdpSocket::bind(udp).expect("UDP address free after shutdown");
    assert!(read_frame(&mut s).await.is_none(), "TCP connection closed");
}

#[test]
fn serve_runs_one_named_thread_per_worker_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meridian.toml");
    std::fs::write(&path, config_text("workers = 3", SERVICE)).unwrap();
    let mut child = spawn_serve(&path);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let [udp] = listening_addrs(&mut lines, &["dns-udp"])[..] else {
        unreachable!("one kind asked, one address")
    };
    let serving = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("serving "))
        .expect("a serving line");
    assert!(serving.contains("; 3 DNS workers; "), "{serving}");
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", child.id()))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .filter(|n| n.starts_with("meridian-dns"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["meridian-dns-0", "meridian-dns-1", "meridian-dns-2"]
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 0..30u16 {
            let (q, want) = case(usize::from(i), i);
            let reply = parse(&udp_exchange_from(ip("127.0.0.1"), udp, &q).await);
            assert_eq!(answer_addrs(&reply), want);
        }
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "clean exit: {exit:?}");
}

#[test]
fn workers_out_of_range_are_refused_with_file_and_line() {
    for (workers, value) in [("workers = 0", 0), ("workers = 1025", 1025)] {
        let config = VALID.replace(
            "zones = \"zones\"",
            &format!("zones = \"zones\"\n{workers}"),
        );
        assert_eq!(
            error_of(&config, ZONE),
            format!("DIR/meridian.toml:4: dns.workers = {value}: must be between 1 and 1024")
        );
    }
    let config = VALID.replace("zones = \"zones\"", "zones = \"zones\"\nworkers = -2");
    assert!(
        error_of(&config, ZONE).starts_with("DIR/meridian.toml:4: "),
        "a negative count is refused at its line"
    );
}

#[test]
fn workers_default_to_one_per_core_this_process_may_use() {
    let (_dir, path) = config_dir(VALID, ZONE);
    let model = meridian::Model::load(&path).unwrap();
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(model.dns.workers, cores.min(1024));
    std::fs::write(
        &path,
        VALID.replace("zones = \"zones\"", "zones = \"zones\"\nworkers = 1024"),
    )
    .unwrap();
    assert_eq!(meridian::Model::load(&path).unwrap().dns.workers, 1024);
}

#[tokio::test]
async fn receive_coalescing_answers_every_query_of_a_burst_and_a_lone_one() {
    // The longest wait, so every batch of 2 to 15 queries is followed by 1 ms of queueing.
    let m = Meridian::start("workers = 1\nudp_coalesce_us = 1000", SERVICE).await;
    let lone = m.query("www.example.test.", RecordType::A).await;
    assert_eq!(
        answer_addrs(&lone),
        [ip("192.0.2.10"), ip("192.0.2.11")],
        "a lone query"
    );
    let packets: Vec<Vec<u8>> = (0..3_000u16)
        .map(|i| {
            QueryBuilder::new("www.example.test.", RecordType::A)
                .id(i)
                .build()
        })
        .collect();
    let replies = udp_bulk(m.udp, &packets, 64).await;
    assert_eq!(
        replies.len(),
        packets.len(),
        "every query of the burst answered"
    );
    for r in &replies {
        let mut got = answer_addrs(r);
        got.sort();
        assert_eq!(
            got,
            [ip("192.0.2.10"), ip("192.0.2.11")],
            "reply {}",
            r.metadata.id
        );
    }
}
