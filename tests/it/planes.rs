//! DNS and the director make one decision: for every steering mode and every `when_all_down`
//! policy, a connection through the director goes to a member of the pool a DNS answer for the
//! same client names, whether members are up or every one of them is down (failing open).
//! Clients are many loopback source addresses the sample GeoIP database places on different
//! continents (and some it does not know), so geo, proximity and hash steering rank the pools
//! differently for them.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket};

use crate::support::{Meridian, QueryBuilder, answer_addrs, parse, udp_exchange_from};

/// A backend: accepts connections on its own loopback address and greets each with one byte
/// naming it, then holds the connection until the client closes.
struct Greeter {
    addr: SocketAddr,
    _task: tokio::task::JoinHandle<()>,
}

impl Greeter {
    async fn start(ip: &str, name: u8) -> Greeter {
        let listener = TcpListener::bind(SocketAddr::new(ip.parse().unwrap(), 0))
            .await
            .expect("bind backend");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    if stream.write_all(&[name]).await.is_ok() {
                        let mut sink = [0u8; 64];
                        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                    }
                });
            }
        });
        Greeter { addr, _task: task }
    }
}

const STEERING: [&str; 5] = ["failover", "weighted", "geo", "proximity", "hash"];
const WHEN_ALL_DOWN: [&str; 4] = ["all", "fallback", "nodata", "servfail"];

/// The pools: (name, continent, location, member addresses). `fb` is only a fallback.
const POOLS: [(&str, &str, [f64; 2], [&str; 2]); 4] = [
    ("eu", "EU", [51.5, -0.12], ["127.0.100.1", "127.0.100.2"]),
    ("us", "NA", [40.7, -74.0], ["127.0.100.11", "127.0.100.12"]),
    ("ap", "AS", [35.7, 139.7], ["127.0.100.21", "127.0.100.22"]),
    ("fb", "SA", [-23.5, -46.6], ["127.0.100.31", "127.0.100.32"]),
];

/// Where each greeter byte lives: (pool, address).
fn pool_of(address: IpAddr) -> &'static str {
    POOLS
        .iter()
        .find(|(_, _, _, members)| {
            members
                .iter()
                .any(|m| m.parse::<IpAddr>().unwrap() == address)
        })
        .map(|(name, ..)| *name)
        .unwrap_or_else(|| panic!("{address} is no member"))
}

/// A config with every steering mode × every `when_all_down` as a service with a director on
/// its own loopback address. With `down`, every member is probed by an HTTP monitor that the
/// greeters (which do not speak HTTP) fail, so every service is all down; without, no monitor,
/// so every member is up.
fn config(greeters: &BTreeMap<IpAddr, Greeter>, down: bool) -> String {
    let db = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("geo-data/sample.mmdb");
    let mut text = format!("[geo]\ndatabase = {:?}\n\n", db.display().to_string());
    if down {
        text.push_str(
            "[monitors.web]\ntype = \"http\"\ninterval = \"1h\"\ntimeout = \"500ms\"\n\n",
        );
    }
    for (name, continent, [lat, lon], members) in POOLS {
        let list: Vec<String> = members
            .iter()
            .map(|m| {
                let port = greeters[&m.parse::<IpAddr>().unwrap()].addr.port();
                format!("{{ address = \"{m}\", port = {port} }}")
            })
            .collect();
        text.push_str(&format!(
            "[pools.{name}]\ncontinent = \"{continent}\"\nlocation = [{lat}, {lon}]\n{}members = [{}]\n\n",
            if down { "monitor = \"web\"\n" } else { "" },
            list.join(", ")
        ));
    }
    let mut n = 0;
    for steering in STEERING {
        for policy in WHEN_ALL_DOWN {
            n += 1;
            let fallback = if policy == "fallback" {
                "fallback = \"fb\"\n"
            } else {
                ""
            };
            text.push_str(&format!(
                "[services.\"{steering}-{policy}.example.test.\"]\npools = [\"eu\", \"us\", \"ap\"]\n\
                 steering = \"{steering}\"\nwhen_all_down = \"{policy}\"\n{fallback}select = \"all\"\n\n\
                 [[directors]]\nlisten = \"127.0.50.{n}:0\"\nservice = \"{steering}-{policy}.example.test.\"\n\
                 scheduler = \"rr\"\nconnect_timeout = \"1s\"\nqueue_timeout = \"100ms\"\nretries = 0\n\n"
            ));
        }
    }
    text
}

/// Many clients: three in each city of the sample database and ten it does not place.
fn clients() -> Vec<IpAddr> {
    let mut list = Vec::new();
    for city in 0..=10u8 {
        for host in [1u8, 77, 200] {
            list.push(IpAddr::from([127, 0, city, host]));
        }
    }
    for net in 0..10u8 {
        list.push(IpAddr::from([127, 1, net, 1]));
    }
    list
}

/// What one plane did for one client: the pool it answered from, or how it refused.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Pool(&'static str),
    NoData,
    ServFail,
    Refused,
}

async fn dns(m: &Meridian, from: IpAddr, name: &str) -> Seen {
    let q = QueryBuilder::new(name, RecordType::A).build();
    let reply = parse(&udp_exchange_from(from, m.udp, &q).await);
    match reply.metadata.response_code {
        ResponseCode::ServFail => Seen::ServFail,
        ResponseCode::NoError => {
            let addrs = answer_addrs(&reply);
            let Some(first) = addrs.first() else {
                return Seen::NoData;
            };
            let pool = pool_of(*first);
            assert!(
                addrs.iter().all(|a| pool_of(*a) == pool),
                "{name} from {from}: one answer mixes pools: {addrs:?}"
            );
            Seen::Pool(pool)
        }
        other => panic!("{name} from {from}: rcode {other}"),
    }
}

async fn director(listen: SocketAddr, from: IpAddr, names: &BTreeMap<u8, IpAddr>) -> Seen {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).expect("bind client");
    let mut stream = socket
        .connect(listen)
        .await
        .expect("connect to the director");
    let mut byte = [0u8; 1];
    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await {
        Ok(Ok(1)) => Seen::Pool(pool_of(names[&byte[0]])),
        Ok(_) => Seen::Refused,
        Err(_) => panic!("director {listen}: no greeting and no close for {from}"),
    }
}

async fn planes_agree(down: bool) {
    let mut greeters = BTreeMap::new();
    let mut names = BTreeMap::new();
    let mut next = 0u8;
    for (_, _, _, members) in POOLS {
        for m in members {
            let ip: IpAddr = m.parse().unwrap();
            names.insert(next, ip);
            greeters.insert(ip, Greeter::start(m, next).await);
            next += 1;
        }
    }
    let m = Meridian::start("", &config(&greeters, down)).await;
    let mut pools_seen = BTreeMap::<String, std::collections::BTreeSet<&str>>::new();
    let mut i = 0;
    for steering in STEERING {
        for policy in WHEN_ALL_DOWN {
            let name = format!("{steering}-{policy}.example.test.");
            let listen = m.directors[i];
            i += 1;
            if steering == "weighted" && !down {
                // Each DNS answer and each connection is its own draw by pool weight: they
                // agree in distribution (tests/it/steering.rs), not query by query.
                continue;
            }
            for from in clients() {
                let answered = dns(&m, from, &name).await;
                let connected = director(listen, from, &names).await;
                let expected = match answered {
                    Seen::NoData | Seen::ServFail => Seen::Refused,
                    Seen::Pool(p) => Seen::Pool(p),
                    Seen::Refused => unreachable!(),
                };
                assert_eq!(
                    connected,
                    expected,
                    "{name} ({}) from {from}: DNS answered {answered:?}",
                    if down { "all down" } else { "all up" }
                );
                if let Seen::Pool(p) = answered {
                    pools_seen.entry(name.clone()).or_default().insert(p);
                }
                if down {
                    let want = match policy {
                        "nodata" => Some(Seen::NoData),
                        "servfail" => Some(Seen::ServFail),
                        "fallback" => Some(Seen::Pool("fb")),
                        _ => None,
                    };
                    if let Some(want) = want {
                        assert_eq!(answered, want, "{name} from {from}");
                    }
                }
            }
        }
    }
    // The clients really are steered apart: geo, proximity and hash send them to several
    // pools (so a director that ignored the client's order would have been caught).
    for steering in ["geo", "proximity", "hash"] {
        let seen = &pools_seen[&format!("{steering}-all.example.test.")];
        assert!(seen.len() >= 2, "{steering}: every client went to {seen:?}");
    }
    m.stop().await;
}

#[tokio::test]
async fn the_director_connects_to_the_pool_dns_answers_when_all_are_up() {
    planes_agree(false).await;
}

#[tokio::test]
async fn the_director_fails_open_to_the_pool_dns_answers() {
    planes_agree(true).await;
}
