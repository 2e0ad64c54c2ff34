//! The load generator and helpers of `bench/dns-ecs.sh`: EDNS Client Subnet queries whose
//! subnet changes from query to query (dnsperf sends one fixed EDNS option for all), drawn
//! from a GeoIP database, sent at a fixed rate in batches over loopback, and compared between
//! two servers.
//!
//! ```text
//! cargo run --release --example ecs-load -- mmdb IN.mmdb OUT.mmdb
//! cargo run --release --example ecs-load -- stream DB.mmdb OUT.txt NAMES V4 V6 PLAIN% SEED
//! cargo run --release --example ecs-load -- send SERVER STREAM QPS SECONDS [RESULTS]
//! cargo run --release --example ecs-load -- diff STREAM TABLES.txt LOOKUPS.txt SERVER PROBES
//! ```
//!
//! - `mmdb` rewrites any database Meridian reads (ip-location-db's flat layout included) in the
//!   GeoIP2-Country layout (`country.iso_code`, `continent.code`), which gdnsd's `geoip2`
//!   plugin needs, so both servers read the same networks and places.
//! - `stream` writes one query per line (`NAME ADDR/PREFIX`, or `NAME -` without ECS): `V4`
//!   distinct /24 and `V6` distinct /56 networks inside the database's networks that have a
//!   place, chosen at random (fixed `SEED`), `PLAIN%` of the lines without ECS, names taken in
//!   turn from the comma-separated `NAMES`, shuffled.
//! - `send` sends the stream (cycled) to `SERVER` (loopback only) at `QPS` for `SECONDS` with
//!   `sendmmsg`, at most 100 queries unanswered at a time (as dnsperf's `-q`), receives with
//!   `recvmmsg` in the same thread, waits at most 2 s for the last
//!   replies and prints `sent= answered= lost= noerror= other= qps= seconds=`. With `RESULTS`,
//!   each of the first stream-length queries' reply is written as `INDEX RCODE SCOPE ADDRS`
//!   (`-`: no ECS in the reply; addresses sorted, comma-separated).
//! - `diff` compares the results of the same stream against two servers: same RCODE and
//!   addresses for every query, the first file's scope equal to the second's or wider; for
//!   up to `PROBES` widened scopes it asks `SERVER` (the second one) for addresses across the
//!   wider network (both ends and two random ones, each as a full-length subnet) and checks
//!   they get the same addresses. Exits 1 on any difference.

use std::collections::HashSet;
use std::io::{BufRead, IoSlice, IoSliceMut, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RData, RecordType};
use ipnet::IpNet;
use meridian::geo::GeoDb;
use mmdb_writer::{Value, Writer};
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Datagrams per `sendmmsg`/`recvmmsg`.
const BATCH: usize = 64;

/// Most queries without a reply at any time.
const WINDOW: u64 = 100;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match a[..] {
        ["mmdb", input, output] => mmdb(input, output),
        ["stream", db, out, names, v4, v6, plain, seed] => stream(
            db,
            out,
            names,
            (number(v4), number(v6)),
            number(plain),
            number(seed),
        ),
        ["send", server, stream, qps, seconds] => {
            send(server, stream, number(qps), number(seconds), None)
        }
        ["send", server, stream, qps, seconds, results] => {
            send(server, stream, number(qps), number(seconds), Some(results))
        }
        ["diff", stream, tables, lookups, server, probes] => {
            diff(stream, tables, lookups, server, number(probes))
        }
        _ => Err("usage: see the comment at the top of bench/ecs-load.rs".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ecs-load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn number(s: &str) -> u64 {
    s.parse().unwrap_or_else(|_| {
        eprintln!("ecs-load: {s:?} is not a number");
        std::process::exit(2)
    })
}

/// Rewrites `input` in the GeoIP2-Country layout.
fn mmdb(input: &str, output: &str) -> Result<(), String> {
    let db = GeoDb::open(input.as_ref()).map_err(|e| e.to_string())?;
    let started = Instant::now();
    // gdnsd's proximity (auto_dc_coords) wants a City database: the type says which.
    let has_coords = db
        .networks(false)
        .map_err(|e| e.to_string())?
        .iter()
        .any(|(_, l)| l.is_some_and(|l| l.coords.is_some()));
    let kind = if has_coords {
        "GeoIP2-City"
    } else {
        "GeoIP2-Country"
    };
    // ip-location-db has its own data in 6to4, Teredo and IPv4-mapped space (it aliases none
    // of them to its IPv4 data), so the rewrite keeps it so: no aliases.
    let mut writer = Writer::builder(kind)
        .description(&[("en", "ip-location-db country data in the GeoIP2 layout")])
        .ipv4_aliasing(mmdb_writer::Ipv4Aliasing::Disabled)
        .build();
    let mut count = 0;
    for v6 in [false, true] {
        for (net, loc) in db.networks(v6).map_err(|e| e.to_string())? {
            // Networks without a place are left out (as absent, a lookup treats them alike);
            // the IPv4 subtree's aliases are not listed.
            let Some(loc) = loc else { continue };
            let mut record = std::collections::BTreeMap::new();
            if let Some(c) = loc.country {
                record.insert("country".to_owned(), Value::map([("iso_code", c.as_str())]));
            }
            if let Some(c) = loc.continent {
                record.insert("continent".to_owned(), Value::map([("code", c.as_str())]));
            }
            if let Some(c) = loc.coords {
                record.insert(
                    "location".to_owned(),
                    Value::map([("latitude", c.lat), ("longitude", c.lon)]),
                );
            }
            let net: mmdb_writer::ipnet::IpNet = net.to_string().parse().map_err(|_| "network")?;
            writer
                .insert_value(net, Value::Map(record))
                .map_err(|e| format!("{net}: {e}"))?;
            count += 1;
        }
    }
    let bytes = writer.to_bytes().map_err(|e| e.to_string())?;
    std::fs::write(output, bytes).map_err(|e| format!("{output}: {e}"))?;
    println!(
        "wrote {output}: {count} networks in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes the query stream.
fn stream(
    db: &str,
    out: &str,
    names: &str,
    (v4, v6): (u64, u64),
    plain: u64,
    seed: u64,
) -> Result<(), String> {
    let db = GeoDb::open(db.as_ref()).map_err(|e| e.to_string())?;
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut subnets: Vec<(IpAddr, u8)> = Vec::new();
    for (v6, want, prefix) in [(false, v4, 24u8), (true, v6, 56u8)] {
        let nets: Vec<IpNet> = db
            .networks(v6)
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|(_, loc)| loc.is_some())
            .map(|(net, _)| net)
            .collect();
        if nets.is_empty() {
            continue;
        }
        let mut seen = HashSet::new();
        let mut tries = 0;
        while (seen.len() as u64) < want && tries < want * 50 {
            tries += 1;
            let net = nets[rng.random_range(0..nets.len())];
            let addr = match net {
                IpNet::V4(n) => IpAddr::V4(Ipv4Addr::from(
                    rng.random_range(u32::from(n.network())..=u32::from(n.broadcast())),
                )),
                IpNet::V6(n) => IpAddr::V6(Ipv6Addr::from(
                    rng.random_range(u128::from(n.network())..=u128::from(n.broadcast())),
                )),
            };
            let subnet = IpNet::new(addr, prefix).expect("prefix").trunc();
            if seen.insert(subnet) {
                subnets.push((subnet.addr(), prefix));
            }
        }
        eprintln!(
            "{} distinct /{prefix} networks from {} database networks",
            seen.len(),
            nets.len()
        );
    }
    let plain_count = subnets.len() as u64 * plain / (100 - plain.min(99));
    let names: Vec<&str> = names.split(',').collect();
    let mut lines: Vec<String> = subnets
        .iter()
        .map(|(a, p)| format!("{a}/{p}"))
        .chain((0..plain_count).map(|_| "-".to_owned()))
        .collect();
    lines.shuffle(&mut rng);
    let mut file = std::io::BufWriter::new(std::fs::File::create(out).map_err(|e| e.to_string())?);
    for (i, subnet) in lines.iter().enumerate() {
        writeln!(file, "{} {subnet}", names[i % names.len()]).map_err(|e| e.to_string())?;
    }
    file.flush().map_err(|e| e.to_string())?;
    eprintln!("wrote {out}: {} queries", lines.len());
    Ok(())
}

/// An ECS subnet: address and source prefix.
type Subnet = (IpAddr, u8);

/// One query of a stream: encoded (ID 0), with its subnet.
type Line = (Vec<u8>, Option<Subnet>);

/// The stream's queries.
fn read_stream(path: &str) -> Result<Vec<Line>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        let bad = || format!("{path}:{}: expected NAME ADDR/PREFIX or NAME -", i + 1);
        let (name, subnet) = line.split_once(' ').ok_or_else(bad)?;
        let subnet = match subnet {
            "-" => None,
            s => {
                let net: IpNet = s.parse().map_err(|_| bad())?;
                Some((net.addr(), net.prefix_len()))
            }
        };
        out.push((query(name, subnet)?, subnet));
    }
    if out.is_empty() {
        return Err(format!("{path}: no queries"));
    }
    Ok(out)
}

fn query(name: &str, subnet: Option<(IpAddr, u8)>) -> Result<Vec<u8>, String> {
    let mut m = Message::query();
    let name = Name::from_ascii(name).map_err(|e| e.to_string())?;
    m.add_query(Query::query(name, RecordType::A));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    if let Some((addr, prefix)) = subnet {
        edns.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(addr, prefix, 0)));
    }
    m.set_edns(edns);
    m.to_vec().map_err(|e| e.to_string())
}

/// Only loopback servers.
fn loopback(server: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = server
        .parse()
        .map_err(|_| format!("{server:?}: not ADDR:PORT"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("{addr}: only loopback servers"));
    }
    Ok(addr)
}

fn send(
    server: &str,
    stream: &str,
    qps: u64,
    seconds: u64,
    results: Option<&str>,
) -> Result<(), String> {
    let server = loopback(server)?;
    let queries = read_stream(stream)?;
    if !(1..=2_000_000).contains(&qps) || !(1..=600).contains(&seconds) {
        return Err("QPS must be 1..2000000 and SECONDS 1..600".to_owned());
    }
    let total = qps * seconds;
    let bind: SocketAddr = if server.is_ipv4() {
        "127.0.0.1:0".parse().expect("address")
    } else {
        "[::1]:0".parse().expect("address")
    };
    // Buffers as large as the system allows, for the replies of a burst.
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(bind),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .map_err(|e| e.to_string())?;
    let _ = socket.set_recv_buffer_size(8 << 20);
    let _ = socket.set_send_buffer_size(8 << 20);
    socket.bind(&bind.into()).map_err(|e| e.to_string())?;
    let socket: UdpSocket = socket.into();
    socket.connect(server).map_err(|e| e.to_string())?;
    // A blocking receive is also the sender's wait: at most this long.
    socket
        .set_read_timeout(Some(Duration::from_micros(100)))
        .map_err(|e| e.to_string())?;
    let keep = results.map(|_| queries.len().min(total as usize));
    let mut rx = Receiver::new(keep);

    // One thread sends and receives (no hand-over between threads on the client's CPU).
    let started = Instant::now();
    let deadline = Duration::from_secs(seconds) + Duration::from_millis(500);
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut packets: Vec<Vec<u8>> = vec![Vec::new(); BATCH];
    let mut sent: u64 = 0;
    while sent < total && started.elapsed() < deadline {
        while rx.batch(&socket, MsgFlags::MSG_DONTWAIT) > 0 {}
        let due = ((started.elapsed().as_secs_f64() * qps as f64) as u64).min(total);
        // At most WINDOW queries unanswered (dnsperf's -q): a burst never overflows the
        // server's receive buffer, and a stalled server slows the sender down.
        let room = WINDOW.saturating_sub(sent.saturating_sub(rx.answered));
        let n = (due.saturating_sub(sent)).min(room).min(BATCH as u64) as usize;
        if n == 0 {
            rx.batch(&socket, MsgFlags::MSG_WAITFORONE);
            continue;
        }
        for (k, packet) in packets.iter_mut().take(n).enumerate() {
            let i = sent + k as u64;
            let q = &queries[(i % queries.len() as u64) as usize].0;
            packet.clear();
            packet.extend_from_slice(q);
            let id = (i & 0xffff) as u16;
            packet[..2].copy_from_slice(&id.to_be_bytes());
            rx.last_index[id as usize] = i;
        }
        let iovs: Vec<[IoSlice<'_>; 1]> = packets[..n].iter().map(|p| [IoSlice::new(p)]).collect();
        let to: Vec<Option<SockaddrStorage>> = vec![None; n];
        let no_control: [nix::sys::socket::ControlMessage<'_>; 0] = [];
        match sendmmsg(
            socket.as_raw_fd(),
            &mut headers,
            &iovs,
            &to,
            no_control,
            MsgFlags::empty(),
        ) {
            Ok(r) => sent += r.count().max(1) as u64,
            Err(nix::errno::Errno::EINTR) => {}
            // A full socket buffer: the queries are lost, as packets on the wire would be.
            Err(_) => sent += n as u64,
        }
    }
    let send_time = started.elapsed().as_secs_f64();
    // The last replies: at most 2 s.
    let wait = Instant::now();
    while rx.answered < sent && wait.elapsed() < Duration::from_secs(2) {
        rx.batch(&socket, MsgFlags::MSG_WAITFORONE);
    }
    println!(
        "sent={sent} answered={} lost={} noerror={} other={} qps={:.0} seconds={send_time:.3}",
        rx.answered,
        sent.saturating_sub(rx.answered),
        rx.noerror,
        rx.answered - rx.noerror,
        rx.answered as f64 / send_time
    );
    if let (Some(path), Some(replies)) = (results, rx.replies) {
        let mut file =
            std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| e.to_string())?);
        for (i, reply) in replies.iter().enumerate() {
            writeln!(file, "{i} {}", describe(reply.as_deref())).map_err(|e| e.to_string())?;
        }
        file.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The receiving side of `send`: counts, and with `replies` keeps the first replies by index.
struct Receiver {
    answered: u64,
    noerror: u64,
    replies: Option<Vec<Option<Vec<u8>>>>,
    /// The index of the last query sent with each ID, so a reply finds its query.
    last_index: Vec<u64>,
    headers: MultiHeaders<SockaddrStorage>,
    buffers: Vec<[u8; 1500]>,
}

impl Receiver {
    fn new(keep: Option<usize>) -> Receiver {
        Receiver {
            answered: 0,
            noerror: 0,
            replies: keep.map(|n| vec![None; n]),
            last_index: vec![u64::MAX; 65536],
            headers: MultiHeaders::preallocate(BATCH, None),
            buffers: vec![[0u8; 1500]; BATCH],
        }
    }

    /// One `recvmmsg` (`MSG_DONTWAIT`: only what is queued; `MSG_WAITFORONE`: waits for one,
    /// at most the socket's timeout); returns how many replies it took.
    fn batch(&mut self, socket: &UdpSocket, flags: MsgFlags) -> usize {
        let lens: Vec<usize> = {
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> = self
                .buffers
                .iter_mut()
                .map(|b| [IoSliceMut::new(&mut b[..])])
                .collect();
            match recvmmsg(
                socket.as_raw_fd(),
                &mut self.headers,
                iovs.iter_mut(),
                flags,
                None,
            ) {
                Ok(got) => got.map(|m| m.bytes).collect(),
                Err(_) => return 0,
            }
        };
        for (b, &len) in self.buffers.iter().zip(&lens) {
            if len < 12 {
                continue;
            }
            self.answered += 1;
            if b[3] & 0x0f == 0 {
                self.noerror += 1;
            }
            if let Some(replies) = self.replies.as_mut() {
                let id = u16::from_be_bytes([b[0], b[1]]) as usize;
                if let Some(slot) = replies.get_mut(self.last_index[id] as usize) {
                    *slot = Some(b[..len].to_vec());
                }
            }
        }
        lens.len()
    }
}

/// `RCODE SCOPE ADDRS` of a reply (`lost` when there is none).
fn describe(reply: Option<&[u8]>) -> String {
    let Some(msg) = reply.and_then(|r| Message::from_vec(r).ok()) else {
        return "lost - -".to_owned();
    };
    let scope = match msg
        .edns
        .as_ref()
        .and_then(|e| e.options().get(EdnsCode::Subnet))
    {
        Some(EdnsOption::Subnet(s)) => s.scope_prefix().to_string(),
        _ => "-".to_owned(),
    };
    let mut addrs: Vec<IpAddr> = msg
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    addrs.sort();
    let addrs: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
    let addrs = if addrs.is_empty() {
        "-".to_owned()
    } else {
        addrs.join(",")
    };
    format!("{} {scope} {addrs}", u16::from(msg.metadata.response_code))
}

fn read_results(path: &str) -> Result<Vec<(String, String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            match f[..] {
                [_, rcode, scope, addrs] => {
                    Ok((rcode.to_owned(), scope.to_owned(), addrs.to_owned()))
                }
                _ => Err(format!("{path}: bad line {l:?}")),
            }
        })
        .collect()
}

fn diff(
    stream: &str,
    tables: &str,
    lookups: &str,
    server: &str,
    probes: u64,
) -> Result<(), String> {
    let server = loopback(server)?;
    let queries = read_stream(stream)?;
    let names: Vec<String> = std::fs::read_to_string(stream)
        .map_err(|e| e.to_string())?
        .lines()
        .map(|l| l.split(' ').next().unwrap_or("").to_owned())
        .collect();
    let (a, b) = (read_results(tables)?, read_results(lookups)?);
    if a.len() != b.len() || a.len() > queries.len() {
        return Err(format!("{tables} and {lookups} differ in length"));
    }
    let (mut same, mut equal, mut wider, mut bad) = (0u64, 0u64, 0u64, 0u64);
    let mut widened = Vec::new();
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        if x.0 == "lost" || y.0 == "lost" {
            bad += 1;
            eprintln!("query {i}: lost ({} / {})", x.0, y.0);
            continue;
        }
        if x.0 != y.0 || x.2 != y.2 {
            bad += 1;
            eprintln!("query {i}: {x:?} against {y:?}");
            continue;
        }
        same += 1;
        match (x.1.parse::<u8>(), y.1.parse::<u8>()) {
            (Ok(s), Ok(t)) if s == t => equal += 1,
            (Ok(s), Ok(t)) if s < t => {
                wider += 1;
                if let Some((addr, _)) = queries[i].1 {
                    widened.push((i, IpNet::new(addr, s).expect("prefix").trunc()));
                }
            }
            (Err(_), Err(_)) => equal += 1,
            _ => {
                bad += 1;
                eprintln!("query {i}: scope {} against {}", x.1, y.1);
            }
        }
    }
    // The widened scopes: addresses across each wider network get the same answer.
    let mut rng = SmallRng::seed_from_u64(1);
    widened.shuffle(&mut rng);
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    socket.connect(server).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let (mut checked, mut probe_bad) = (0u64, 0u64);
    let mut buf = [0u8; 1500];
    for &(i, net) in widened.iter().take(probes as usize) {
        let (lo, hi): (u128, u128) = match net {
            IpNet::V4(n) => (
                u32::from(n.network()).into(),
                u32::from(n.broadcast()).into(),
            ),
            IpNet::V6(n) => (n.network().into(), n.broadcast().into()),
        };
        for x in [lo, hi, rng.random_range(lo..=hi), rng.random_range(lo..=hi)] {
            let addr = match net {
                IpNet::V4(_) => (IpAddr::V4(Ipv4Addr::from(x as u32)), 32),
                IpNet::V6(_) => (IpAddr::V6(Ipv6Addr::from(x)), 128),
            };
            let mut q = query(&names[i], Some(addr))?;
            q[..2].copy_from_slice(&(checked as u16).to_be_bytes());
            socket.send(&q).map_err(|e| e.to_string())?;
            let n = socket
                .recv(&mut buf)
                .map_err(|e| format!("probe {}: {e}", addr.0))?;
            let got = describe(Some(&buf[..n]));
            let addrs = got.rsplit(' ').next().unwrap_or("");
            if addrs != a[i].2 {
                probe_bad += 1;
                eprintln!(
                    "query {i}: {} inside the scope {net} gets {addrs}, not {}",
                    addr.0, a[i].2
                );
            }
            checked += 1;
        }
    }
    println!(
        "diff queries={} same_answers={same} scope_equal={equal} scope_wider={wider} differences={bad} probes={checked} probe_differences={probe_bad}",
        a.len()
    );
    if bad > 0 || probe_bad > 0 {
        return Err("the two servers differ".to_owned());
    }
    Ok(())
}
