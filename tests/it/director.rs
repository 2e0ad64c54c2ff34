//! The TCP director as a client sees it: a real Meridian with directors on loopback port 0 in
//! front of real echo backends the test starts. Every scheduler's distribution, source-hash
//! stickiness, a backend dying mid-test, half-close, a 200 MB transfer each way, PROXY
//! headers byte for byte, ACLs, limits, drain, on_down, reload and shutdown. Waits are bounded
//! polls of what a client or the stats API can observe, never fixed sleeps.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meridian::director::DirectorConnStats;
use meridian::health::overrides::{Action, Selector};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::support::{Meridian, PATIENCE, WWW};

/// An echo server on loopback: optionally greets each connection with one byte naming it,
/// then sends back everything it receives and, at the client's end of stream, ends its own.
struct Echo {
    addr: SocketAddr,
    accepted: Arc<AtomicU64>,
    task: Mutex<Option<JoinHandle<()>>>,
    _hold: Mutex<Option<TcpSocket>>,
}

impl Echo {
    /// An echo server on `127.0.0.1:0` greeting with `greeting` (if any).
    async fn start(greeting: Option<u8>) -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
        let addr = listener.local_addr().expect("echo address");
        let accepted = Arc::new(AtomicU64::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    Ok((stream, _)) = listener.accept() => {
                        count.fetch_add(1, Ordering::SeqCst);
                        conns.spawn(echo(stream, greeting));
                    }
                    Some(_) = conns.join_next() => {}
                }
            }
        });
        Echo {
            addr,
            accepted,
            task: Mutex::new(Some(task)),
            _hold: Mutex::new(None),
        }
    }

    async fn greeting(name: u8) -> Echo {
        Echo::start(Some(name)).await
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far (probes included).
    fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Dies: connects are refused from when this returns (the port stays bound, not
    /// listening, so nothing else takes it) and every open connection is dropped.
    async fn kill(&self) {
        let task = self.task.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        let hold = TcpSocket::new_v4().unwrap();
        hold.set_reuseaddr(true).unwrap();
        if hold.bind(self.addr).is_ok() {
            *self._hold.lock().unwrap() = Some(hold);
        }
        assert!(TcpStream::connect(self.addr).await.is_err());
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
    }
}

async fn echo(mut stream: TcpStream, greeting: Option<u8>) {
    if let Some(g) = greeting
        && stream.write_all(&[g]).await.is_err()
    {
        return;
    }
    let (mut r, mut w) = stream.split();
    if tokio::io::copy(&mut r, &mut w).await.is_ok() {
        let _ = w.shutdown().await;
    }
}

/// `(backend, weight)` pairs as members of pool `web` (no monitor unless `monitor`), service
/// `www` over it, and one director on `127.0.0.1:0` with `director` keys added.
fn config(members: &[(&Echo, u32)], monitor: bool, director: &str) -> String {
    let list: Vec<String> = members
        .iter()
        .map(|(b, w)| {
            format!(
                "{{ address = \"127.0.0.1\", port = {}, weight = {w} }}",
                b.port()
            )
        })
        .collect();
    let monitor_section = if monitor {
        "[monitors.tcp]\ntype = \"tcp\"\ninterval = \"1h\"\ntimeout = \"500ms\"\n\n"
    } else {
        ""
    };
    format!(
        "{monitor_section}[pools.web]\n{}members = [{}]\n\n[services.\"{WWW}\"]\npools = [\"web\"]\n\n\
         [[directors]]\nlisten = \"127.0.0.1:0\"\nservice = \"{WWW}\"\n{director}\n",
        if monitor { "monitor = \"tcp\"\n" } else { "" },
        list.join(", ")
    )
}

async fn start(members: &[(&Echo, u32)], monitor: bool, director: &str) -> Meridian {
    Meridian::start("", &config(members, monitor, director)).await
}

/// Connects to `to` from `from` (any loopback address) or from 127.0.0.1.
async fn connect_from(from: Option<IpAddr>, to: SocketAddr) -> TcpStream {
    let socket = if to.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .expect("socket");
    if let Some(ip) = from {
        socket.bind(SocketAddr::new(ip, 0)).expect("bind client");
    }
    tokio::time::timeout(PATIENCE, socket.connect(to))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Reads exactly `n` bytes, or fails the test.
async fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    tokio::time::timeout(PATIENCE, s.read_exact(&mut buf))
        .await
        .expect("reply in time")
        .expect("read");
    buf
}

/// Reads until the peer closes; what was read (an error counts as closed).
async fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, s.read_to_end(&mut out))
        .await
        .expect("closed in time");
    out
}

/// A connection through the director: the greeting of the backend that got it.
async fn hold(director: SocketAddr) -> (TcpStream, u8) {
    hold_from(None, director).await
}

async fn hold_from(from: Option<IpAddr>, director: SocketAddr) -> (TcpStream, u8) {
    let mut s = connect_from(from, director).await;
    let g = read_n(&mut s, 1).await[0];
    (s, g)
}

/// One round trip over an open connection.
async fn round_trip(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).await.expect("write");
    assert_eq!(read_n(s, msg.len()).await, msg);
}

/// Three greeting echo backends, named `a`, `b` and `c`.
async fn abc() -> (Echo, Echo, Echo) {
    (
        Echo::greeting(b'a').await,
        Echo::greeting(b'b').await,
        Echo::greeting(b'c').await,
    )
}

/// `n` connections through `director`, one after the other, each closed before the next:
/// the backend each reached.
async fn one_by_one(director: SocketAddr, n: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        got.push(hold(director).await.1);
    }
    got
}

/// `n` connections through `director`, all kept open, opened one after the other.
async fn open_many(director: SocketAddr, n: usize) -> Vec<(TcpStream, u8)> {
    let mut open = Vec::with_capacity(n);
    for _ in 0..n {
        open.push(hold(director).await);
    }
    open
}

fn counts(greetings: &[u8], names: &[u8]) -> Vec<usize> {
    names
        .iter()
        .map(|n| greetings.iter().filter(|g| *g == n).count())
        .collect()
}

/// Polls `check` until it returns `Some`, for at most [`PATIENCE`].
async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not after {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn stats(m: &Meridian) -> DirectorConnStats {
    m.director_stats
        .snapshot()
        .into_iter()
        .next()
        .expect("one director")
}

fn member_stats(m: &Meridian, backend: &Echo) -> meridian::director::MemberConnStats {
    stats(m)
        .members
        .into_iter()
        .find(|s| s.backend == backend.addr)
        .expect("member in stats")
}

async fn admin(m: &Meridian, backend: &Echo, action: Action) {
    m.control
        .apply(
            Selector {
                pool: "web".into(),
                member: Some(backend.addr.to_string()),
            },
            action,
        )
        .await
        .expect("admin action");
}

#[tokio::test]
async fn round_robin_and_weighted_round_robin_distribute_exactly() {
    let (a, b, c) = abc().await;
    let m = start(
        &[(&a, 100), (&b, 100), (&c, 100)],
        false,
        "scheduler = \"rr\"",
    )
    .await;
    let got = one_by_one(m.directors[0], 300).await;
    assert_eq!(counts(&got, b"abc"), [100, 100, 100]);
    m.stop().await;

    let m = start(
        &[(&a, 100), (&b, 200), (&c, 300)],
        false,
        "scheduler = \"wrr\"",
    )
    .await;
    let got = one_by_one(m.directors[0], 600).await;
    assert_eq!(counts(&got, b"abc"), [100, 200, 300]);
    // Smooth: the heaviest member never gets more than two in a row over a whole cycle.
    assert!(
        !got.windows(3).any(|w| w == b"ccc"),
        "{:?}",
        String::from_utf8_lossy(&got[..12])
    );
    let s = stats(&m);
    assert_eq!(s.accepted, 600);
    assert_eq!(s.members.iter().map(|m| m.total).sum::<u64>(), 600);
}

#[tokio::test]
async fn least_connections_and_two_choices_balance_open_connections_by_weight() {
    let (a, b, c) = abc().await;
    let m = start(&[(&a, 100), (&b, 200), (&c, 300)], false, "").await; // leastconn is the default
    let mut open = open_many(m.directors[0], 60).await;
    let got: Vec<u8> = open.iter().map(|(_, g)| *g).collect();
    assert_eq!(counts(&got, b"abc"), [10, 20, 30]);
    let active: Vec<u64> = stats(&m).members.iter().map(|s| s.active).collect();
    assert_eq!(active.iter().sum::<u64>(), 60);
    // Closing a's connections makes it the least loaded: the next ones go there.
    open.retain(|(_, g)| *g != b'a');
    until("a's connections closed", || async {
        (member_stats(&m, &a).active == 0).then_some(())
    })
    .await;
    for _ in 0..5 {
        let (s, g) = hold(m.directors[0]).await;
        assert_eq!(g, b'a');
        open.push((s, g));
    }
    drop(open);
    m.stop().await;

    let m = start(
        &[(&a, 100), (&b, 100), (&c, 100)],
        false,
        "scheduler = \"random2\"",
    )
    .await;
    let open = open_many(m.directors[0], 90).await;
    let got: Vec<u8> = open.iter().map(|(_, g)| *g).collect();
    let n = counts(&got, b"abc");
    let (max, min) = (n.iter().max().unwrap(), n.iter().min().unwrap());
    assert!(
        max - min <= 4,
        "power of two choices left them unbalanced: {n:?}"
    );
}

#[tokio::test]
async fn ipvs_wlc_sed_and_nq_place_held_connections_as_ipvs_does() {
    // Weights 1, 1, 3 and every connection kept open: the order IPVS's loops give (the pure
    // tests in `director::schedule` derive the same from the definitions).
    let (a, b, c) = abc().await;
    for (scheduler, expected) in [
        ("wlc", "abcccabccc"),
        ("sed", "ccabcccabc"),
        ("nq", "abcccccabc"),
    ] {
        let m = start(
            &[(&a, 100), (&b, 100), (&c, 300)],
            false,
            &format!("scheduler = \"{scheduler}\""),
        )
        .await;
        let open = open_many(m.directors[0], 10).await;
        let got: String = open.iter().map(|(_, g)| *g as char).collect();
        assert_eq!(got, expected, "{scheduler}");
        let active: Vec<u64> = [&a, &b, &c]
            .iter()
            .map(|e| member_stats(&m, e).active)
            .collect();
        assert_eq!(active, [2, 2, 6], "{scheduler}");
        drop(open);
        m.stop().await;
    }
}

#[tokio::test]
async fn source_hash_sticks_and_moves_only_the_leaving_members_clients() {
    let (a, b, c) = abc().await;
    let m = start(
        &[(&a, 100), (&b, 100), (&c, 100)],
        false,
        "scheduler = \"source-hash\"",
    )
    .await;
    let d = m.directors[0];
    let clients: Vec<IpAddr> = (1..=150u8).map(|i| IpAddr::from([127, 0, 7, i])).collect();
    let mut first = Vec::new();
    for &ip in &clients {
        first.push(hold_from(Some(ip), d).await.1);
    }
    let n = counts(&first, b"abc");
    assert!(
        n.iter().all(|&k| k >= 30),
        "uneven spread over 150 clients: {n:?}"
    );
    for (i, &ip) in clients.iter().enumerate() {
        assert_eq!(
            hold_from(Some(ip), d).await.1,
            first[i],
            "client {ip} moved"
        );
    }

    // b leaves (drained): only b's clients move, and they spread over a and c.
    admin(&m, &b, Action::Drain).await;
    for (i, &ip) in clients.iter().enumerate() {
        let now = hold_from(Some(ip), d).await.1;
        if first[i] == b'b' {
            assert_ne!(now, b'b');
        } else {
            assert_eq!(now, first[i], "client {ip} of a member that stayed moved");
        }
    }
    // b comes back: every client is where it was.
    admin(&m, &b, Action::Clear).await;
    for (i, &ip) in clients.iter().enumerate() {
        assert_eq!(hold_from(Some(ip), d).await.1, first[i]);
    }
}

#[tokio::test]
async fn a_dead_backend_costs_one_failed_connect_and_no_client() {
    let (a, b) = (Echo::greeting(b'a').await, Echo::greeting(b'b').await);
    // Probes every hour: only the director's passive check can notice the death.
    let m = start(&[(&a, 100), (&b, 100)], true, "scheduler = \"rr\"").await;
    let d = m.directors[0];
    let mut got = Vec::new();
    for _ in 0..10 {
        got.push(hold(d).await.1);
    }
    assert_eq!(counts(&got, b"ab"), [5, 5]);

    a.kill().await;
    for i in 0..50 {
        let (_, g) = hold(d).await;
        assert_eq!(g, b'b', "connection {i} after the kill");
    }
    let dead = member_stats(&m, &a);
    assert_eq!(dead.failed_connects, 1, "{dead:?}");
    assert_eq!(dead.total, 5);
    let s = stats(&m);
    assert_eq!((s.refused_connect, s.refused_no_member), (0, 0));
    // The health view has it down, with the director's reason, for DNS answers too.
    let snap = m.state.load();
    let (_, member) = snap
        .model
        .members()
        .find(|(_, mem)| mem.port == Some(a.port()))
        .unwrap();
    let h = snap.health.get(member.index);
    assert_eq!(h.state, meridian::health::HealthState::Down);
    assert_eq!(h.last_reason.as_deref(), Some("connect refused (director)"));
}

#[tokio::test]
async fn half_close_is_passed_on_both_ways() {
    // Client to backend: the client sends and shuts down its side; the echo backend gets the
    // end of stream, sends everything back and ends its side; the client reads it all.
    let e = Echo::start(None).await;
    let m = start(&[(&e, 100)], false, "").await;
    let mut s = connect_from(None, m.directors[0]).await;
    s.write_all(b"hello, ").await.unwrap();
    s.write_all(b"half-closed world").await.unwrap();
    s.shutdown().await.unwrap();
    assert_eq!(read_to_end(&mut s).await, b"hello, half-closed world");

    // Backend to client: a backend that greets and ends its side at once still receives what
    // the client sends afterwards.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let backend = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(b"bye").await.unwrap();
        s.shutdown().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        got
    });
    let config = format!(
        "[pools.web]\nmembers = [{{ address = \"127.0.0.1\", port = {port} }}]\n\
         [services.\"{WWW}\"]\npools = [\"web\"]\n[[directors]]\nlisten = \"127.0.0.1:0\"\nservice = \"{WWW}\"\n"
    );
    let m2 = Meridian::start("", &config).await;
    let mut s = connect_from(None, m2.directors[0]).await;
    assert_eq!(
        read_to_end(&mut s).await,
        b"bye",
        "the backend's end of stream arrives"
    );
    s.write_all(b"still talking").await.unwrap();
    s.shutdown().await.unwrap();
    let got = tokio::time::timeout(PATIENCE, backend)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"still talking");
    drop(m);
}

/// A deterministic byte stream (xorshift), `len` bytes from `seed`.
fn pattern(seed: u64, offset: u64, buf: &mut [u8]) {
    // Each 8-byte word depends only on its position, so any chunking gives the same stream.
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let mut x = seed ^ (offset / 8 + i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
}

#[tokio::test]
async fn two_hundred_megabytes_each_way_arrive_byte_exact() {
    const TOTAL: u64 = 200 * 1024 * 1024;
    const CHUNK: usize = 256 * 1024;
    let e = Echo::start(None).await;
    let m = start(&[(&e, 100)], false, "").await;
    let s = connect_from(None, m.directors[0]).await;
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        let mut buf = vec![0u8; CHUNK];
        let mut sum = 0u64;
        let mut sent = 0u64;
        while sent < TOTAL {
            pattern(7, sent, &mut buf);
            sum = checksum(sum, &buf);
            w.write_all(&buf).await.expect("write");
            sent += CHUNK as u64;
        }
        w.shutdown().await.expect("shutdown");
        sum
    });
    let mut buf = vec![0u8; CHUNK];
    let mut want = vec![0u8; CHUNK];
    let mut got = 0u64;
    let mut sum = 0u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n =
            tokio::time::timeout_at(deadline, r.read(&mut buf[..CHUNK - (got as usize % CHUNK)]))
                .await
                .expect("transfer in time")
                .expect("read");
        if n == 0 {
            break;
        }
        pattern(7, got - got % CHUNK as u64, &mut want);
        let at = (got % CHUNK as u64) as usize;
        assert!(buf[..n] == want[at..at + n], "bytes differ at offset {got}");
        if at + n == CHUNK {
            sum = checksum(sum, &want);
        }
        got += n as u64;
    }
    assert_eq!(got, TOTAL);
    assert_eq!(sum, writer.await.unwrap(), "checksums differ");
    let s = member_stats(&m, &e);
    assert_eq!((s.bytes_to_backend, s.bytes_to_client), (TOTAL, TOTAL));
}

/// A running checksum (FNV-1a over 8-byte words).
fn checksum(mut h: u64, buf: &[u8]) -> u64 {
    for word in buf.chunks(8) {
        let mut w = [0u8; 8];
        w[..word.len()].copy_from_slice(word);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

#[tokio::test]
async fn proxy_protocol_headers_are_exact() {
    let e = Echo::start(None).await;
    let config = format!(
        "[pools.web]\nmembers = [{{ address = \"127.0.0.1\", port = {} }}]\n\
         [services.\"{WWW}\"]\npools = [\"web\"]\n\
         [[directors]]\nlisten = \"127.0.0.1:0\"\nservice = \"{WWW}\"\nsend_proxy = \"v1\"\n\
         [[directors]]\nlisten = \"127.0.0.2:0\"\nservice = \"{WWW}\"\nsend_proxy = \"v2\"\n\
         [[directors]]\nlisten = [\"[::1]:0\"]\nservice = \"{WWW}\"\nsend_proxy = \"v2\"\n",
        e.port()
    );
    let m = Meridian::start("", &config).await;
    let (v1, v2, v6) = (m.directors[0], m.directors[1], m.directors[2]);

    let mut s = connect_from(Some([127, 0, 9, 9].into()), v1).await;
    let client = s.local_addr().unwrap();
    let want = format!(
        "PROXY TCP4 127.0.9.9 127.0.0.1 {} {}\r\n",
        client.port(),
        v1.port()
    );
    s.write_all(b"data").await.unwrap();
    let got = read_n(&mut s, want.len() + 4).await;
    assert_eq!(String::from_utf8_lossy(&got), format!("{want}data"));

    let mut s = connect_from(Some([127, 0, 9, 10].into()), v2).await;
    let client = s.local_addr().unwrap();
    let mut want = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    want.extend_from_slice(&[127, 0, 9, 10, 127, 0, 0, 2]);
    want.extend_from_slice(&client.port().to_be_bytes());
    want.extend_from_slice(&v2.port().to_be_bytes());
    s.write_all(b"data").await.unwrap();
    assert_eq!(
        read_n(&mut s, want.len() + 4).await,
        [&want[..], b"data"].concat()
    );

    let mut s = connect_from(None, v6).await;
    let client = s.local_addr().unwrap();
    let mut want = b"\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x24".to_vec();
    let one = std::net::Ipv6Addr::LOCALHOST.octets();
    want.extend_from_slice(&one);
    want.extend_from_slice(&one);
    want.extend_from_slice(&client.port().to_be_bytes());
    want.extend_from_slice(&v6.port().to_be_bytes());
    s.write_all(b"data").await.unwrap();
    assert_eq!(
        read_n(&mut s, want.len() + 4).await,
        [&want[..], b"data"].concat()
    );
}

#[tokio::test]
async fn allow_and_deny_refuse_clients_at_once_and_count_them() {
    let e = Echo::greeting(b'e').await;
    let m = start(
        &[(&e, 100)],
        false,
        "allow = [\"127.0.0.0/8\"]\ndeny = [\"127.0.66.0/24\", \"127.0.0.99\"]",
    )
    .await;
    let d = m.directors[0];
    assert_eq!(hold_from(Some([127, 0, 0, 5].into()), d).await.1, b'e');
    for from in [[127, 0, 66, 1], [127, 0, 0, 99]] {
        let mut s = connect_from(Some(from.into()), d).await;
        assert_eq!(read_to_end(&mut s).await, b"", "{from:?} was let through");
    }
    let s = stats(&m);
    assert_eq!((s.accepted, s.refused_acl), (3, 2));
    assert_eq!(e.accepted(), 1, "a refused client never reaches a backend");
}

#[tokio::test]
async fn connection_limits_queue_briefly_then_refuse() {
    let (a, b) = (Echo::greeting(b'a').await, Echo::greeting(b'b').await);
    let m = start(
        &[(&a, 100), (&b, 100)],
        false,
        "max_connections = 2\nqueue_timeout = \"300ms\"",
    )
    .await;
    let d = m.directors[0];
    let first = hold(d).await;
    let _second = hold(d).await;
    // The third waits, then is closed without reaching a backend.
    let started = Instant::now();
    let mut third = connect_from(None, d).await;
    assert_eq!(read_to_end(&mut third).await, b"");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stats(&m).refused_limit, 1);
    // A slot freed while one waits: it goes through.
    let mut waiting = connect_from(None, d).await;
    drop(first);
    assert!(matches!(read_n(&mut waiting, 1).await[0], b'a' | b'b'));
    assert_eq!(stats(&m).refused_limit, 1);
    m.stop().await;

    // Per member: one each; a third waits for either to free up, then is refused.
    let m = start(
        &[(&a, 100), (&b, 100)],
        false,
        "max_connections_per_member = 1\nqueue_timeout = \"200ms\"",
    )
    .await;
    let d = m.directors[0];
    let (x, y) = (hold(d).await, hold(d).await);
    assert_ne!(x.1, y.1);
    let mut third = connect_from(None, d).await;
    assert_eq!(read_to_end(&mut third).await, b"");
    assert_eq!(stats(&m).refused_limit, 1);
}

#[tokio::test]
async fn a_drained_member_keeps_its_connections_and_gets_no_new_ones() {
    let (a, b) = (Echo::greeting(b'a').await, Echo::greeting(b'b').await);
    let m = start(&[(&a, 100), (&b, 100)], false, "scheduler = \"rr\"").await;
    let d = m.directors[0];
    let (mut on_a, g) = hold(d).await;
    assert_eq!(g, b'a');
    admin(&m, &a, Action::Drain).await;
    for _ in 0..10 {
        assert_eq!(hold(d).await.1, b'b');
    }
    round_trip(&mut on_a, b"still here").await;
    assert_eq!(member_stats(&m, &a).active, 1);
    m.stop().await;

    // With drain_timeout, open connections are closed that long after the drain.
    let m = start(
        &[(&a, 100), (&b, 100)],
        false,
        "scheduler = \"rr\"\ndrain_timeout = \"600ms\"",
    )
    .await;
    let (mut on_a, g) = hold(m.directors[0]).await;
    assert_eq!(g, b'a');
    let drained = Instant::now();
    admin(&m, &a, Action::Drain).await;
    round_trip(&mut on_a, b"until the timeout").await;
    assert_eq!(read_to_end(&mut on_a).await, b"");
    assert!(
        drained.elapsed() >= Duration::from_millis(550),
        "{:?}",
        drained.elapsed()
    );
}

#[tokio::test]
async fn on_down_close_cuts_a_forced_down_members_connections_keep_does_not() {
    let (a, b) = (Echo::greeting(b'a').await, Echo::greeting(b'b').await);
    for (on_down, cut) in [("keep", false), ("close", true)] {
        let m = start(
            &[(&a, 100), (&b, 100)],
            false,
            &format!("scheduler = \"rr\"\non_down = \"{on_down}\""),
        )
        .await;
        let (mut on_a, g) = hold(m.directors[0]).await;
        assert_eq!(g, b'a');
        let (mut on_b, _) = hold(m.directors[0]).await;
        admin(&m, &a, Action::ForceDown).await;
        if cut {
            assert_eq!(read_to_end(&mut on_a).await, b"", "on_down = close");
        } else {
            round_trip(&mut on_a, b"kept").await;
        }
        round_trip(&mut on_b, b"b is untouched").await;
        assert_eq!(hold(m.directors[0]).await.1, b'b');
        m.stop().await;
    }
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let e = Echo::greeting(b'e').await;
    let m = start(&[(&e, 100)], false, "idle_timeout = \"600ms\"").await;
    let (mut s, _) = hold(m.directors[0]).await;
    // Traffic keeps it open past the timeout...
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        round_trip(&mut s, b"ping").await;
    }
    // ...silence closes it.
    let quiet = Instant::now();
    assert_eq!(read_to_end(&mut s).await, b"");
    assert!(
        quiet.elapsed() >= Duration::from_millis(550),
        "{:?}",
        quiet.elapsed()
    );
}

#[tokio::test]
async fn steering_failover_reload_and_removed_listeners() {
    let (a, b) = (Echo::greeting(b'a').await, Echo::greeting(b'b').await);
    let config = |extra: &str, second_director: bool| {
        format!(
            "[monitors.tcp]\ntype = \"tcp\"\ninterval = \"1h\"\ntimeout = \"500ms\"\n\
             [pools.first]\nmonitor = \"tcp\"\nmembers = [{{ address = \"127.0.0.1\", port = {} }}]\n\
             [pools.second]\nmonitor = \"tcp\"\nmembers = [{{ address = \"127.0.0.1\", port = {} }}]\n\
             [services.\"{WWW}\"]\npools = [\"first\", \"second\"]\nwhen_all_down = \"servfail\"\n\
             [[directors]]\nlisten = \"127.0.0.1:0\"\nservice = \"{WWW}\"\n{extra}\n{}",
            a.port(),
            b.port(),
            if second_director {
                format!("[[directors]]\nlisten = \"127.0.0.3:0\"\nservice = \"{WWW}\"\n")
            } else {
                String::new()
            }
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let m = Meridian::start_at(dir.path(), "", &config("", true)).await;
    let (d, other) = (m.directors[0], m.directors[1]);
    // Failover steering: the first pool while it has a usable member, as in DNS answers.
    assert_eq!(hold(d).await.1, b'a');
    assert_eq!(hold(other).await.1, b'a');
    a.kill().await;
    for _ in 0..5 {
        assert_eq!(hold(d).await.1, b'b', "the second pool takes over");
    }

    // Reload: a deny list applies to the next connection; the removed director stops listening.
    let path = dir.path().join("meridian.toml");
    std::fs::write(
        &path,
        crate::support::config_text("", &config("deny = [\"127.0.0.0/8\"]", false)),
    )
    .unwrap();
    let next = meridian::Model::load(&path).unwrap();
    m.control.reload(next).await.unwrap();
    let mut s = connect_from(None, d).await;
    assert_eq!(
        read_to_end(&mut s).await,
        b"",
        "the reloaded deny list applies"
    );
    until("the removed director's listener closes", || async {
        TcpStream::connect(other).await.is_err().then_some(())
    })
    .await;

    // Every pool down and when_all_down = "servfail": connections are refused.
    b.kill().await;
    std::fs::write(&path, crate::support::config_text("", &config("", false))).unwrap();
    m.control
        .reload(meridian::Model::load(&path).unwrap())
        .await
        .unwrap();
    let mut s = connect_from(None, d).await;
    assert_eq!(read_to_end(&mut s).await, b"");
    until("the refusal is counted", || async {
        let s = stats(&m);
        (s.refused_no_member + s.refused_connect >= 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn shutdown_stops_accepting_and_lets_open_connections_finish() {
    let e = Echo::greeting(b'e').await;
    let mut m = start(&[(&e, 100)], false, "").await;
    let d = m.directors[0];
    let (mut open, _) = hold(d).await;
    m.begin_stop();
    until("the listener closes", || async {
        TcpStream::connect(d).await.is_err().then_some(())
    })
    .await;
    round_trip(&mut open, b"finishing").await;
    let started = Instant::now();
    drop(open);
    m.stopped().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown waited {:?}",
        started.elapsed()
    );
}

#[test]
fn the_binary_prints_listening_for_director() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meridian.toml");
    let text = crate::support::config_text(
        "",
        &format!(
            "[pools.web]\nmembers = [{{ address = \"127.0.0.1\", port = 9 }}]\n\
             [services.\"{WWW}\"]\npools = [\"web\"]\n[[directors]]\nlisten = \"127.0.0.1:0\"\nservice = \"{WWW}\"\n"
        ),
    );
    std::fs::write(&path, text).unwrap();
    let mut child = crate::support::spawn_serve(&path);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = crate::support::listening_addrs(&mut lines, &["director"])[0];
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(addr.ip(), IpAddr::from([127, 0, 0, 1]));
    assert_ne!(addr.port(), 0);
}

#[test]
fn bad_director_configs_are_refused_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meridian.toml");
    let base = |pool_port: &str, director: &str| {
        crate::support::config_text(
            "",
            &format!(
                "[pools.web]\nmembers = [{{ address = \"192.0.2.1\"{pool_port} }}]\n\
                 [services.\"{WWW}\"]\npools = [\"web\"]\n\n[[directors]]\n{director}\n"
            ),
        )
    };
    let ok = "listen = \"127.0.0.1:0\"\nservice = \"www.example.test.\"\nport = 80";
    let cases = [
        (base("", ok), None),
        (
            base(
                "",
                "listen = \"127.0.0.1:0\"\nservice = \"nope.example.test.\"\nport = 80",
            ),
            Some("service: no service named \"nope.example.test.\""),
        ),
        (
            base("", &format!("{ok}\nscheduler = \"lblc\"")),
            Some(
                "scheduler = \"lblc\": expected one of \"rr\", \"wrr\", \"leastconn\", \"source-hash\", \"random2\", \"wlc\", \"sed\", \"nq\", \"fastest\"",
            ),
        ),
        (
            base(
                "",
                "listen = \"127.0.0.1:0\"\nservice = \"www.example.test.\"",
            ),
            Some("member 192.0.2.1 of pool web has no port"),
        ),
        (
            base(
                ", port = 8080",
                "listen = \"127.0.0.1:0\"\nservice = \"www.example.test.\"",
            ),
            None,
        ),
        (
            base("", &format!("{ok}\nallow = [\"10.0.0.0/33\"]")),
            Some("allow: \"10.0.0.0/33\" is not a network"),
        ),
        (
            base("", &format!("{ok}\nsend_proxy = \"v3\"")),
            Some("send_proxy = \"v3\": expected \"v1\" or \"v2\""),
        ),
        (
            base("", &format!("{ok}\non_down = \"shutdown\"")),
            Some("on_down = \"shutdown\": expected \"keep\" or \"close\""),
        ),
        (
            base("", &format!("{ok}\nidle_timeout = \"0s\"")),
            Some("idle_timeout must be more than 0"),
        ),
        (
            base(
                "",
                "listen = \"localhost:80\"\nservice = \"www.example.test.\"\nport = 80",
            ),
            Some("listen: \"localhost:80\" is not an address:port"),
        ),
        (
            base("", &format!("{ok}\ntimeout = \"1s\"")),
            Some("unknown field `timeout`"),
        ),
        (
            base(
                "",
                &format!(
                    "{ok}\n\n[[directors]]\nlisten = [\"127.0.0.1:0\"]\nservice = \"www.example.test.\"\nport = 81"
                ),
            ),
            Some("127.0.0.1:0 is used by another director"),
        ),
    ];
    for (text, want) in cases {
        std::fs::write(&path, &text).unwrap();
        match (meridian::Model::load(&path), want) {
            (Ok(_), None) => {}
            (Ok(_), Some(want)) => panic!("accepted, wanted {want:?}:\n{text}"),
            (Err(e), None) => panic!("refused: {e}\n{text}"),
            (Err(e), Some(want)) => {
                let e = e.to_string();
                let prefix = format!("{}:", path.display());
                assert!(e.starts_with(&prefix), "{e}");
                let line: usize = e[prefix.len()..]
                    .split(':')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(line > 5, "the line points into [[directors]]: {e}");
                assert!(e.contains(want), "{e}\nwanted {want:?}");
            }
        }
    }
}

#[tokio::test]
async fn director_connections_show_in_status_and_metrics() {
    let (a, b, _c) = abc().await;
    let text = format!(
        "{}\n[http]\nlisten = \"127.0.0.1:0\"\n",
        config(&[(&a, 100), (&b, 100)], false, "scheduler = \"rr\"")
    );
    let m = Meridian::start("", &text).await;
    // Two connections closed after one round trip each, one held open (rr: a, b, a).
    one_by_one(m.directors[0], 2).await;
    let (_held, first) = hold(m.directors[0]).await;
    assert_eq!(first, b'a');

    let (status, body) = crate::support::get(&m, "/api/v1/status").await;
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let members = doc["pools"][0]["members"].as_array().unwrap();
    let conns = |port: u16| {
        members
            .iter()
            .find(|x| x["port"] == port)
            .map(|x| x["connections"].clone())
            .unwrap()
    };
    assert_eq!(conns(a.port())["active"], 1);
    assert_eq!(conns(a.port())["total"], 2);
    assert_eq!(conns(b.port())["active"], 0);
    assert_eq!(conns(b.port())["total"], 1);
    // Connections closed by the client side may still be finishing on the director's side;
    // bytes are counted as they are forwarded, and each round trip carried the 1-byte greeting
    // plus the echo of what was sent.
    assert!(conns(b.port())["bytes_to_client"].as_u64().unwrap() >= 1);

    let (status, metrics) = crate::support::get(&m, "/metrics").await;
    assert_eq!(status, 200);
    // Directors are named by their first configured listen address.
    let director = "127.0.0.1:0";
    let line = |name: &str, port: u16| {
        let prefix =
            format!("{name}{{director=\"{director}\",pool=\"web\",backend=\"127.0.0.1:{port}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"))
            .to_string()
    };
    assert_eq!(
        line("meridian_director_member_connections_active", a.port()),
        "1"
    );
    assert_eq!(
        line("meridian_director_member_connections_total", a.port()),
        "2"
    );
    assert_eq!(
        line("meridian_director_member_connections_total", b.port()),
        "1"
    );
    assert!(metrics.contains(&format!(
        "meridian_director_accepted_total{{director=\"{director}\"}} 3"
    )));
}
