//! GeoIP lookups against real MaxMind DB files: each supported layout (GeoIP2 City and Country,
//! DB-IP, ip-location-db) written at test time with `mmdb-writer`, and the bundled sample,
//! which must be exactly what its generator makes from `geo-data/sample.csv`.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use ipnet::IpNet;
use meridian::geo::{Coords, GeoDb, Location, distance_km};
use mmdb_writer::{IpVersion, Ipv4Aliasing, Value, Writer};
use serde_json::json;

use crate::support::ip;

#[path = "../../geo-data/sample.rs"]
mod sample;

/// A database under construction: `Db::v6("GeoIP2-City").net("192.0.2.0/24", json!(…)).open()`.
pub(crate) struct Db {
    writer: Writer,
}

impl Db {
    fn new(database_type: &str, ip_version: IpVersion, aliasing: Ipv4Aliasing) -> Db {
        let writer = Writer::builder(database_type)
            .ip_version(ip_version)
            .ipv4_aliasing(aliasing)
            .build_epoch(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
            .build();
        Db { writer }
    }

    /// An IPv6 tree with IPv4 at ::/96 (and ::ffff:0:0/96 aliased to it), as GeoIP2 ships.
    pub(crate) fn v6(database_type: &str) -> Db {
        Db::new(database_type, IpVersion::V6, Ipv4Aliasing::Enabled)
    }

    fn v4(database_type: &str) -> Db {
        Db::new(database_type, IpVersion::V4, Ipv4Aliasing::Enabled)
    }

    /// Later inserts overwrite what they cover, so wider networks go first.
    pub(crate) fn net(self, network: &str, record: serde_json::Value) -> Db {
        self.value(network, mmdb(record))
    }

    fn value(mut self, network: &str, record: Value) -> Db {
        let network: IpNet = network.parse().unwrap();
        self.writer.insert_value(network, record).unwrap();
        self
    }

    /// The database file's bytes.
    pub(crate) fn bytes(self) -> Vec<u8> {
        self.writer.to_bytes().unwrap()
    }

    /// Writes the file, opens it and deletes it again: `GeoDb` keeps its own copy.
    fn open(self) -> GeoDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.mmdb");
        std::fs::write(&path, self.writer.to_bytes().unwrap()).unwrap();
        GeoDb::open(&path).unwrap()
    }
}

/// JSON as MaxMind DB data, typed as GeoIP2 files type it: strings, doubles, unsigned 32-bit
/// integers, booleans, arrays and maps.
fn mmdb(json: serde_json::Value) -> Value {
    use serde_json::Value as J;
    match json {
        J::String(s) => Value::from(s),
        J::Bool(b) => Value::from(b),
        J::Number(n) => match n.as_u64() {
            Some(n) => Value::from(u32::try_from(n).unwrap()),
            None => Value::from(n.as_f64().unwrap()),
        },
        J::Array(items) => Value::array(items.into_iter().map(mmdb)),
        J::Object(fields) => Value::map(fields.into_iter().map(|(k, v)| (k, mmdb(v)))),
        J::Null => panic!("MaxMind DB has no null"),
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn at(lat: f64, lon: f64) -> Option<Coords> {
    Some(Coords { lat, lon })
}

/// The expected lookup result; `""` for an absent country or continent.
fn loc(network: &str, country: &str, continent: &str, coords: Option<Coords>) -> Option<Location> {
    Some(Location {
        network: net(network),
        country: (!country.is_empty()).then(|| country.parse().unwrap()),
        continent: (!continent.is_empty()).then(|| continent.parse().unwrap()),
        coords,
    })
}

/// A GeoIP2-City record as MaxMind ships it, with the fields Meridian ignores included.
fn geoip2_city(iso: &str, continent: &str, lat: f64, lon: f64, city: &str) -> serde_json::Value {
    json!({
        "city": { "geoname_id": 2643743, "names": { "en": city, "de": city } },
        "continent": { "code": continent, "geoname_id": 6255148, "names": { "en": "Europe" } },
        "country": {
            "geoname_id": 2635167,
            "is_in_european_union": false,
            "iso_code": iso,
            "names": { "en": "United Kingdom", "fr": "Royaume-Uni" },
        },
        "location": {
            "accuracy_radius": 50,
            "latitude": lat,
            "longitude": lon,
            "time_zone": "Europe/London",
        },
        "postal": { "code": "EC1A" },
        "registered_country": { "iso_code": "US" },
        "subdivisions": [{ "iso_code": "ENG", "names": { "en": "England" } }],
    })
}

#[test]
fn geoip2_city_records_give_country_continent_and_coordinates() {
    let db = Db::v6("GeoIP2-City")
        .net(
            "192.0.2.0/24",
            geoip2_city("GB", "EU", 51.5074, -0.1278, "London"),
        )
        .net(
            "192.0.2.128/25",
            geoip2_city("IE", "EU", 53.3498, -6.2603, "Dublin"),
        )
        .net(
            "2001:db8:4::/48",
            geoip2_city("AU", "OC", -33.8688, 151.2093, "Sydney"),
        )
        .open();

    // The /25 splits the /24, so the tree holds 192.0.2.0/25 for the rest of it: the network
    // reported is the largest one around the address that shares its record.
    assert_eq!(
        db.lookup(ip("192.0.2.77")),
        loc("192.0.2.0/25", "GB", "EU", at(51.5074, -0.1278))
    );
    assert_eq!(
        db.lookup(ip("192.0.2.200")),
        loc("192.0.2.128/25", "IE", "EU", at(53.3498, -6.2603))
    );
    assert_eq!(
        db.lookup(ip("2001:db8:4:ffff::1")),
        loc("2001:db8:4::/48", "AU", "OC", at(-33.8688, 151.2093))
    );
    // Addresses the database does not cover.
    for addr in ["198.51.100.1", "192.0.3.0", "2001:db8:5::1", "::"] {
        assert_eq!(db.lookup(ip(addr)), None, "{addr}");
    }
}

#[test]
fn ipv4_networks_in_an_ipv6_tree_are_reported_as_ipv4_prefixes() {
    let code = |iso: &str| json!({ "country": { "iso_code": iso } });
    let db = Db::v6("GeoLite2-Country")
        .net("0.0.0.0/1", code("GB"))
        .net("10.0.0.0/8", code("FR"))
        .net("10.1.2.0/24", code("DE"))
        .net("2001:db8::/32", code("GB"))
        .net("2001:db8:1:2::/64", code("DE"))
        .open();

    // A network is the largest prefix around the address whose addresses share its record:
    // inside a split network that is the sibling of the branch towards the more specific one.
    let found = |addr: &str| {
        let l = db.lookup(ip(addr)).unwrap();
        (l.network, l.country.unwrap().to_string())
    };
    assert_eq!(found("10.1.2.3"), (net("10.1.2.0/24"), "DE".into()));
    // 10.1.3.x leaves the path to 10.1.2.0/24 at its last bit, 10.255.x.x at its ninth.
    assert_eq!(found("10.1.3.3"), (net("10.1.3.0/24"), "FR".into()));
    assert_eq!(found("10.255.255.255"), (net("10.128.0.0/9"), "FR".into()));
    // 127.x (0111…) leaves the path to 10/8 (0000 1010) at the second bit, 0.x at the fifth.
    assert_eq!(found("127.0.0.1"), (net("64.0.0.0/2"), "GB".into()));
    assert_eq!(found("0.0.0.1"), (net("0.0.0.0/5"), "GB".into()));
    assert_eq!(db.lookup(ip("128.0.0.1")), None);
    assert_eq!(
        found("2001:db8:1:2::99"),
        (net("2001:db8:1:2::/64"), "DE".into())
    );
    // 2001:db8:ffff:: leaves the path to 2001:db8:1:2::/64 at bit 32.
    assert_eq!(
        found("2001:db8:ffff::1"),
        (net("2001:db8:8000::/33"), "GB".into())
    );
    // An IPv4-mapped IPv6 address finds the IPv4 data (the writer aliases ::ffff:0:0/96 to
    // the IPv4 subtree) and, being an IPv6 lookup, reports an IPv6 network.
    assert_eq!(
        found("::ffff:10.1.2.3"),
        (net("::ffff:10.1.2.0/120"), "DE".into())
    );
}

#[test]
fn ipv4_lookups_above_the_ipv4_subtree_cover_all_of_ipv4() {
    // One record for all of IPv6, so ::/96 (where IPv4 lives) has no subtree of its own.
    let db = Db::new("Everywhere", IpVersion::V6, Ipv4Aliasing::Disabled)
        .net("::/0", json!({ "country_code": "NL" }))
        .open();
    assert_eq!(
        db.lookup(ip("192.0.2.1")),
        loc("0.0.0.0/0", "NL", "EU", None)
    );
    // The tree's root cannot hold a record, so the writer stores the two halves.
    assert_eq!(db.lookup(ip("2001:db8::1")), loc("::/1", "NL", "EU", None));
    assert_eq!(db.lookup(ip("fe80::1")), loc("8000::/1", "NL", "EU", None));
}

#[test]
fn ipv4_only_databases() {
    let db = Db::v4("GeoLite2-Country")
        .net("203.0.113.0/24", json!({ "country": { "iso_code": "JP" } }))
        .open();
    assert_eq!(
        db.lookup(ip("203.0.113.9")),
        loc("203.0.113.0/24", "JP", "AS", None)
    );
    // An IPv4 tree cannot answer for IPv6: unknown, not an error.
    assert_eq!(db.lookup(ip("2001:db8::1")), None);
    assert!(
        db.describe().ends_with(" nodes, IPv4 tree"),
        "{}",
        db.describe()
    );
}

#[test]
fn geoip2_country_records_have_no_coordinates() {
    let db = Db::v6("GeoLite2-Country")
        .net(
            "198.51.100.0/24",
            json!({
                "continent": { "code": "SA", "names": { "en": "South America" } },
                "country": { "iso_code": "BR", "names": { "en": "Brazil" } },
                "registered_country": { "iso_code": "US" },
                "represented_country": { "iso_code": "PT", "type": "military" },
                "traits": { "is_anycast": true },
            }),
        )
        .open();
    assert_eq!(
        db.lookup(ip("198.51.100.1")),
        loc("198.51.100.0/24", "BR", "SA", None)
    );
}

#[test]
fn registered_country_stands_in_when_country_is_absent() {
    // GeoIP2 leaves out `country` for some networks (e.g. satellite providers) but keeps the
    // country the network is registered in.
    let db = Db::v6("GeoIP2-Country")
        .net(
            "192.0.2.0/24",
            json!({
                "continent": { "code": "EU" },
                "registered_country": { "iso_code": "DE", "geoname_id": 2921044 },
            }),
        )
        .net(
            "192.0.2.128/25",
            json!({ "registered_country": { "iso_code": "KE" } }),
        )
        .open();
    assert_eq!(
        db.lookup(ip("192.0.2.1")),
        loc("192.0.2.0/25", "DE", "EU", None)
    );
    // No continent either: the table places Kenya in Africa.
    assert_eq!(
        db.lookup(ip("192.0.2.129")),
        loc("192.0.2.128/25", "KE", "AF", None)
    );
}

#[test]
fn a_record_without_continent_gets_it_from_the_country() {
    let only_country = |iso: &str| json!({ "country": { "iso_code": iso } });
    let db = Db::v6("GeoIP2-City")
        .net("192.0.2.0/26", only_country("FR"))
        .net("192.0.2.64/26", only_country("nz"))
        .net("192.0.2.128/26", only_country("XK"))
        .net("192.0.2.192/26", only_country("ZZ"))
        .open();
    assert_eq!(
        db.lookup(ip("192.0.2.1")),
        loc("192.0.2.0/26", "FR", "EU", None)
    );
    assert_eq!(
        db.lookup(ip("192.0.2.65")),
        loc("192.0.2.64/26", "NZ", "OC", None)
    );
    assert_eq!(
        db.lookup(ip("192.0.2.129")),
        loc("192.0.2.128/26", "XK", "EU", None)
    );
    // A well-formed code the table does not know: the country, but no continent.
    assert_eq!(
        db.lookup(ip("192.0.2.193")),
        loc("192.0.2.192/26", "ZZ", "", None)
    );
}

#[test]
fn dbip_lite_records() {
    // DB-IP's Lite databases use the GeoIP2 layout; City Lite has coordinates but no
    // `registered_country`, Country Lite only `continent` and `country`.
    let city_lite = json!({
        "city": { "names": { "en": "Johannesburg" } },
        "continent": { "code": "AF", "geoname_id": 6255146, "names": { "en": "Africa" } },
        "country": {
            "geoname_id": 953987,
            "is_in_european_union": false,
            "iso_code": "ZA",
            "names": { "en": "South Africa" },
        },
        "location": { "latitude": -26.2041, "longitude": 28.0473 },
        "subdivisions": [{ "names": { "en": "Gauteng" } }],
    });
    let country_lite = json!({
        "continent": { "code": "AS", "geoname_id": 6255147 },
        "country": { "iso_code": "SG", "is_in_european_union": false },
    });
    let db = Db::v6("DBIP-City-Lite")
        .net("203.0.113.0/25", city_lite)
        .net("2001:db8:3::/48", country_lite)
        .open();
    assert_eq!(
        db.lookup(ip("203.0.113.10")),
        loc("203.0.113.0/25", "ZA", "AF", at(-26.2041, 28.0473))
    );
    assert_eq!(
        db.lookup(ip("2001:db8:3:1::1")),
        loc("2001:db8:3::/48", "SG", "AS", None)
    );
}

#[test]
fn flat_ip_location_db_records() {
    // The country database has `country_code` only; the city flavours add coordinates, as
    // numbers or as strings holding numbers.
    let db = Db::v6("country")
        .net("192.0.2.0/24", json!({ "country_code": "BR" }))
        .net(
            "198.51.100.0/24",
            json!({
                "city": "Johannesburg",
                "country_code": "ZA",
                "latitude": -26.2041,
                "longitude": 28.0473,
                "postcode": "2000",
                "state1": "Gauteng",
                "timezone": "Africa/Johannesburg",
            }),
        )
        .net(
            "2001:db8:2::/48",
            json!({ "country_code": "us", "latitude": "37.7749", "longitude": " -122.4194 " }),
        )
        // Single-precision and integer coordinates are numbers too.
        .value(
            "203.0.113.0/24",
            Value::map([
                ("country_code", Value::from("SG")),
                ("latitude", Value::from(1.5f32)),
                ("longitude", Value::from(104u16)),
            ]),
        )
        .open();
    assert_eq!(
        db.lookup(ip("192.0.2.1")),
        loc("192.0.2.0/24", "BR", "SA", None)
    );
    assert_eq!(
        db.lookup(ip("198.51.100.1")),
        loc("198.51.100.0/24", "ZA", "AF", at(-26.2041, 28.0473))
    );
    assert_eq!(
        db.lookup(ip("2001:db8:2::1")),
        loc("2001:db8:2::/48", "US", "NA", at(37.7749, -122.4194))
    );
    assert_eq!(
        db.lookup(ip("203.0.113.1")),
        loc("203.0.113.0/24", "SG", "AS", at(1.5, 104.0))
    );
}

#[test]
fn fields_of_unexpected_type_count_as_absent() {
    let db = Db::v6("Odd")
        // Nested fields that are not maps, codes that are not strings: the flat fields and
        // the table still apply.
        .net(
            "192.0.2.0/28",
            json!({
                "continent": { "code": 7 },
                "country": "Great Britain",
                "country_code": "GB",
                "location": [51.5, -0.12],
                "latitude": true,
                "longitude": { "deg": 1 },
            }),
        )
        // Out-of-range or half coordinates, and codes of the wrong length: all ignored.
        .net(
            "192.0.2.16/28",
            json!({
                "country": { "iso_code": "GBR" },
                "continent": { "code": "Europe" },
                "location": { "latitude": 91.0, "longitude": 0.0 },
            }),
        )
        .net("192.0.2.32/28", json!({ "latitude": 10.0 }))
        .net(
            "192.0.2.48/28",
            json!({ "latitude": "north", "longitude": "east", "continent_code": "an" }),
        )
        // Records Meridian has no use for.
        .net(
            "192.0.2.64/28",
            json!({ "autonomous_system_number": 64512 }),
        )
        .net("192.0.2.80/28", json!("GB"))
        .net("192.0.2.96/28", json!(["GB", "EU"]))
        .open();

    assert_eq!(
        db.lookup(ip("192.0.2.1")),
        loc("192.0.2.0/28", "GB", "EU", None)
    );
    assert_eq!(
        db.lookup(ip("192.0.2.49")),
        loc("192.0.2.48/28", "", "AN", None)
    );
    for addr in [
        "192.0.2.17",
        "192.0.2.33",
        "192.0.2.65",
        "192.0.2.81",
        "192.0.2.97",
    ] {
        assert_eq!(db.lookup(ip(addr)), None, "{addr}");
    }
}

fn sample_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("geo-data/sample.mmdb")
}

fn sample() -> GeoDb {
    GeoDb::open(&sample_path()).unwrap()
}

const fn place(lat: f64, lon: f64) -> Coords {
    Coords { lat, lon }
}

// Where the sample's cities are, to within a few km.
const LONDON: Coords = place(51.51, -0.13);
const FRANKFURT: Coords = place(50.11, 8.68);
const AMSTERDAM: Coords = place(52.37, 4.90);
const PARIS: Coords = place(48.86, 2.35);
const NEW_YORK: Coords = place(40.71, -74.01);
const SAN_FRANCISCO: Coords = place(37.77, -122.42);
const ASHBURN: Coords = place(39.04, -77.49);
const TOKYO: Coords = place(35.68, 139.65);
const SINGAPORE: Coords = place(1.35, 103.82);
const SYDNEY: Coords = place(-33.87, 151.21);
const SAO_PAULO: Coords = place(-23.55, -46.63);
const JOHANNESBURG: Coords = place(-26.20, 28.05);

#[test]
fn sample_database_places_loopback_clients_on_every_continent() {
    let db = sample();
    let cases = [
        ("127.0.0.1", "127.0.0.0/24", "GB EU", LONDON),
        ("127.0.0.255", "127.0.0.0/24", "GB EU", LONDON),
        ("127.0.1.1", "127.0.1.0/24", "DE EU", FRANKFURT),
        ("127.0.2.1", "127.0.2.0/24", "US NA", NEW_YORK),
        ("127.0.3.1", "127.0.3.0/24", "US NA", SAN_FRANCISCO),
        ("127.0.4.1", "127.0.4.0/24", "JP AS", TOKYO),
        ("127.0.5.1", "127.0.5.0/24", "SG AS", SINGAPORE),
        ("127.0.6.1", "127.0.6.0/24", "AU OC", SYDNEY),
        ("127.0.7.1", "127.0.7.0/24", "BR SA", SAO_PAULO),
        ("127.0.8.1", "127.0.8.0/24", "ZA AF", JOHANNESBURG),
        // No continent column for France: the table fills it in.
        ("127.0.10.1", "127.0.10.0/24", "FR EU", PARIS),
        ("::1", "::1/128", "GB EU", LONDON),
        ("192.0.2.1", "192.0.2.0/25", "GB EU", LONDON),
        ("192.0.2.129", "192.0.2.128/25", "DE EU", FRANKFURT),
        ("198.51.100.1", "198.51.100.0/25", "US NA", NEW_YORK),
        ("198.51.100.200", "198.51.100.128/25", "BR SA", SAO_PAULO),
        ("203.0.113.1", "203.0.113.0/25", "JP AS", TOKYO),
        ("203.0.113.129", "203.0.113.128/26", "AU OC", SYDNEY),
        ("203.0.113.254", "203.0.113.192/26", "ZA AF", JOHANNESBURG),
        ("2001:db8:1::1", "2001:db8:1::/48", "GB EU", LONDON),
        ("2001:db8:2::1", "2001:db8:2::/48", "US NA", SAN_FRANCISCO),
        ("2001:db8:3::1", "2001:db8:3::/48", "SG AS", SINGAPORE),
        ("2001:db8:4::1", "2001:db8:4::/48", "AU OC", SYDNEY),
        ("2001:db8:5::1", "2001:db8:5::/48", "BR SA", SAO_PAULO),
        ("2001:db8:6::1", "2001:db8:6::/48", "ZA AF", JOHANNESBURG),
        ("10.20.30.40", "10.0.0.0/8", "US NA", ASHBURN),
        ("172.31.255.1", "172.16.0.0/12", "DE EU", FRANKFURT),
        ("192.168.1.1", "192.168.0.0/16", "GB EU", LONDON),
        ("fd00::1", "fc00::/7", "NL EU", AMSTERDAM),
    ];
    for (addr, network, codes, city) in cases {
        let (country, continent) = codes.split_once(' ').unwrap();
        let found = db.lookup(ip(addr));
        let coords = found.and_then(|l| l.coords);
        assert_eq!(found, loc(network, country, continent, coords), "{addr}");
        let off = distance_km(coords.unwrap(), city);
        assert!(off < 5.0, "{addr} is {off:.1} km from where it should be");
    }

    // A country without coordinates.
    assert_eq!(
        db.lookup(ip("127.0.9.9")),
        loc("127.0.9.0/24", "AR", "SA", None)
    );
    // Deliberately unknown.
    for addr in [
        "127.1.0.1",
        "127.1.255.255",
        "127.0.11.1",
        "127.255.255.254",
        "8.8.8.8",
        "2001:db8::1",
        "::2",
    ] {
        assert_eq!(db.lookup(ip(addr)), None, "{addr}");
    }

    // Clients in London and New York are an Atlantic apart.
    let london = db.lookup(ip("127.0.0.1")).unwrap().coords.unwrap();
    let new_york = db.lookup(ip("127.0.2.1")).unwrap().coords.unwrap();
    assert!((distance_km(london, new_york) - 5570.0).abs() < 10.0);
}

#[test]
fn sample_database_describes_itself() {
    let db = sample();
    assert_eq!(db.path(), sample_path());
    assert_eq!(db.database_type(), "Meridian-Sample-City");
    let line = db.describe();
    assert!(
        line.starts_with("Meridian-Sample-City built 2026-01-01 UTC, "),
        "{line}"
    );
    assert!(line.ends_with(" nodes, IPv6 tree"), "{line}");
    let debug = format!("{db:?}");
    assert!(
        debug.contains("Meridian-Sample-City") && debug.contains("sample.mmdb"),
        "{debug}"
    );
    assert!(debug.len() < 300, "Debug dumps too much: {debug}");
}

#[test]
fn sample_database_is_what_the_generator_makes_from_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sample.mmdb");
    let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("geo-data/sample.csv");
    sample::generate(&csv, &out).unwrap();
    let fresh = std::fs::read(&out).unwrap();
    let checked_in = std::fs::read(sample_path()).unwrap();
    assert!(
        fresh == checked_in,
        "geo-data/sample.mmdb is stale: run `cargo run --example geo-data` and commit it"
    );
}

#[test]
fn generator_refuses_bad_lines_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let header = "# comment\nnetwork,country,continent,latitude,longitude,comment\n";
    let cases = [
        (
            "192.0.2.0/24,GB,NA,,,wrong continent",
            "3: GB is in EU, not NA",
        ),
        (
            "192.0.2.1/24,GB,EU,,,",
            "3: 192.0.2.1/24 has host bits set (did you mean 192.0.2.0/24?)",
        ),
        (
            "192.0.2.0/24,GB,EU,51.5,,",
            r#"3: longitude "" is not a number"#,
        ),
        (
            "192.0.2.0/24,GB,EU,95,0,",
            "3: 95,0 is not a latitude and longitude",
        ),
        (
            "192.0.2.0/24,UK,EU,,,",
            "3: UK is not an ISO 3166-1 country code",
        ),
        (
            "192.0.2.0/24,GB",
            "3: expected 6 fields (network,country,continent,latitude,longitude,comment), found 2",
        ),
        (
            "192.0.2.0/24,GB,EU,,,\n192.0.2.0/24,DE,EU,,,",
            "4: 192.0.2.0/24 is listed twice",
        ),
    ];
    for (body, want) in cases {
        let csv = dir.path().join("bad.csv");
        std::fs::write(&csv, format!("{header}{body}\n")).unwrap();
        let err = sample::generate(&csv, &dir.path().join("bad.mmdb")).unwrap_err();
        assert_eq!(err, format!("{}:{want}", csv.display()));
    }
}
