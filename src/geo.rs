//! Where a client is: lookups in a MaxMind-format GeoIP database (GeoIP2/GeoLite2, DB-IP,
//! ip-location-db), the country → continent table and great-circle distances that geographic
//! and proximity steering decide by. A lookup runs on the query path, so it borrows from the
//! database buffer and allocates nothing; a failed lookup is "location unknown", never an error.

mod codes;
mod decode;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use maxminddb::{MaxMindDbError, Reader, WithinOptions};

pub use codes::{CodeError, Continent, Country, continent_of};
use decode::Record;

/// What precedes the metadata section of every MaxMind DB file.
const METADATA_MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";

/// The metadata section, marker included, lies in the file's last 128 KiB (MaxMind DB
/// format spec, "Database Metadata").
const METADATA_MAX_SIZE: usize = 128 * 1024;

/// Why a GeoIP database could not be opened. Displays as `PATH: reason`.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// The file could not be read.
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        /// The database file.
        path: PathBuf,
        /// Why reading failed.
        error: std::io::Error,
    },
    /// The file has no MaxMind DB metadata section at all.
    #[error("{}: not a MaxMind DB file (metadata marker not found)", path.display())]
    NotMaxMindDb {
        /// The database file.
        path: PathBuf,
    },
    /// The file looks like a MaxMind DB but its metadata or search tree is unusable.
    #[error("{}: invalid MaxMind DB: {error}", path.display())]
    Invalid {
        /// The database file.
        path: PathBuf,
        /// What the reader found wrong.
        error: MaxMindDbError,
    },
}

/// An opened GeoIP database: immutable, shared by every query thread without locks.
pub struct GeoDb {
    reader: Reader<Vec<u8>>,
    path: PathBuf,
}

impl fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let meta = self.reader.metadata();
        f.debug_struct("GeoDb")
            .field("path", &self.path)
            .field("database_type", &meta.database_type)
            .field("ip_version", &meta.ip_version)
            .field("node_count", &meta.node_count)
            .finish_non_exhaustive()
    }
}

impl GeoDb {
    /// Reads the whole file at `path` into memory and checks that it is a MaxMind DB.
    pub fn open(path: &Path) -> Result<GeoDb, GeoError> {
        let bytes = std::fs::read(path).map_err(|error| GeoError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        GeoDb::from_bytes(bytes, path)
    }

    /// Uses `bytes` as a MaxMind DB; `origin` names it in errors and logs.
    pub fn from_bytes(bytes: Vec<u8>, origin: &Path) -> Result<GeoDb, GeoError> {
        let tail = &bytes[bytes.len().saturating_sub(METADATA_MAX_SIZE)..];
        if !tail
            .windows(METADATA_MARKER.len())
            .any(|w| w == METADATA_MARKER)
        {
            return Err(GeoError::NotMaxMindDb {
                path: origin.to_path_buf(),
            });
        }
        let reader = Reader::from_source(bytes).map_err(|error| GeoError::Invalid {
            path: origin.to_path_buf(),
            error,
        })?;
        Ok(GeoDb {
            reader,
            path: origin.to_path_buf(),
        })
    }

    /// Where `ip` is, or `None` when the database has no record for it (or the record has
    /// neither a country, a continent nor coordinates). Never fails: a record that cannot be
    /// decoded counts as absent. Allocates nothing.
    ///
    /// The address is looked up as given: an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`)
    /// finds IPv4 data only in databases that alias `::ffff:0:0/96` (GeoIP2 does,
    /// ip-location-db does not), so callers holding addresses from dual-stack sockets pass
    /// `ip.to_canonical()`.
    pub fn lookup(&self, ip: IpAddr) -> Option<Location> {
        let result = self.reader.lookup(ip).ok()?;
        let record: Record<'_> = result.decode().ok()??;
        let network = result.network().ok()?;
        let network = match (ip, network.ip()) {
            // The record covers all of ::/96 (the database has no separate IPv4 subtree), so
            // in IPv4 terms it covers every address.
            (IpAddr::V4(_), IpAddr::V6(_)) => IpNet::V4(Ipv4Net::default()),
            (_, addr) => IpNet::new(addr, network.prefix()).ok()?.trunc(),
        };
        record.location(network)
    }

    /// Every network of the database in one family (`v6`), in address order, with what
    /// [`GeoDb::lookup`] says of the addresses in it (`None`: a record without a country,
    /// continent or coordinates, or one that does not decode). Networks the database has no
    /// record for are left out, and so, in IPv6, are the networks where IPv6 addresses find
    /// the IPv4 data ([`GeoDb::ipv4_aliases`]). Each record is decoded once, however many
    /// networks share it. For building tables at load time, never on the query path.
    pub fn networks(&self, v6: bool) -> Result<Vec<(IpNet, Option<Location>)>, MaxMindDbError> {
        let mut out = Vec::new();
        self.for_each_network(v6, |net, loc| out.push((net, loc)))?;
        out.sort_by_key(|(net, _)| (net.network(), net.prefix_len()));
        Ok(out)
    }

    /// [`GeoDb::networks`] without collecting them: `each` is called for every network, in
    /// the tree's order (address order), so a caller that keeps less than a [`Location`] per
    /// network never holds them all.
    pub fn for_each_network(
        &self,
        v6: bool,
        mut each: impl FnMut(IpNet, Option<Location>),
    ) -> Result<(), MaxMindDbError> {
        let all = if v6 {
            if self.reader.metadata().ip_version != 6 {
                return Ok(());
            }
            ipnetwork::IpNetwork::V6("::/0".parse().expect("a network"))
        } else {
            ipnetwork::IpNetwork::V4("0.0.0.0/0".parse().expect("a network"))
        };
        let mut decoded: std::collections::HashMap<usize, Option<Location>> =
            std::collections::HashMap::new();
        for result in self.reader.within(all, WithinOptions::default())? {
            let result = result?;
            let Some(offset) = result.offset() else {
                continue;
            };
            let network = result.network()?;
            let network = match (v6, network.ip()) {
                // An IPv6 database without an IPv4 subtree: its record covers every IPv4
                // address, as in `lookup`.
                (false, IpAddr::V6(_)) => IpNet::V4(Ipv4Net::default()),
                // The IPv4 subtree (::/96), which IPv6 iteration reports in IPv4 terms.
                (true, IpAddr::V4(_)) => continue,
                (_, addr) => match IpNet::new(addr, network.prefix()) {
                    Ok(net) => net.trunc(),
                    Err(_) => continue,
                },
            };
            let location = *decoded.entry(offset).or_insert_with(|| {
                let record: Option<Record<'_>> = result.decode().ok().flatten();
                record.and_then(|r| r.location(IpNet::V6(Ipv6Net::default())))
            });
            each(network, location.map(|l| Location { network, ..l }));
        }
        Ok(())
    }

    /// The IPv6 networks whose addresses find the IPv4 data, the address's bits right after
    /// the network's prefix read as the IPv4 address: `::/96` in every IPv6 database, and
    /// where the database aliases them to it (GeoIP2 does, ip-location-db does not)
    /// `::ffff:0:0/96`, Teredo `2001::/32` and 6to4 `2002::/16`. Empty for an IPv4 database.
    pub fn ipv4_aliases(&self) -> Result<Vec<Ipv6Net>, MaxMindDbError> {
        if self.reader.metadata().ip_version != 6 {
            return Ok(Vec::new());
        }
        let mut out = vec![Ipv6Net::new(std::net::Ipv6Addr::UNSPECIFIED, 96).expect("a prefix")];
        for root in ["::ffff:0:0/96", "2001::/32", "2002::/16"] {
            let net: Ipv6Net = root.parse().expect("a network");
            let cidr = ipnetwork::IpNetwork::V6(root.parse().expect("a network"));
            // An alias is a subtree that iteration skips unless asked to include aliases.
            let plain = self.reader.within(cidr, WithinOptions::default())?.next();
            let aliased = self
                .reader
                .within(cidr, WithinOptions::default().include_aliased_networks())?
                .next();
            if plain.is_none() && aliased.is_some() {
                out.push(net);
            }
        }
        Ok(out)
    }

    /// One line for logs: database type, build date (UTC), tree size and IP version.
    pub fn describe(&self) -> String {
        let meta = self.reader.metadata();
        let built = i64::try_from(meta.build_epoch)
            .ok()
            .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
            .map_or_else(
                || "at an unknown date".to_owned(),
                |t| format!("{} UTC", t.date()),
            );
        format!(
            "{} built {built}, {} nodes, IPv{} tree",
            meta.database_type, meta.node_count, meta.ip_version
        )
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database's own name for its layout, e.g. `GeoLite2-City`.
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }
}

/// Where an address is, as far as the database knows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location {
    /// The database network that matched, in the family of the looked-up address (an IPv4
    /// address in an IPv6-tree database reports an IPv4 prefix).
    pub network: IpNet,
    /// The country, if the record has one.
    pub country: Option<Country>,
    /// The continent: the record's, else the country's from [`continent_of`].
    pub continent: Option<Continent>,
    /// Latitude and longitude, if the record has both.
    pub coords: Option<Coords>,
}

/// Latitude and longitude in degrees (WGS 84).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coords {
    /// Degrees north, -90 to 90.
    pub lat: f64,
    /// Degrees east, -180 to 180.
    pub lon: f64,
}

/// The mean radius of the earth (IUGG), in km.
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Great-circle distance between `a` and `b` in km (haversine formula on a sphere of the
/// earth's mean radius; within 0.5% of the ellipsoidal distance).
pub fn distance_km(a: Coords, b: Coords) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(lat: f64, lon: f64) -> Coords {
        Coords { lat, lon }
    }

    #[test]
    fn haversine_distances() {
        let close = |got: f64, want: f64, tolerance: f64| {
            assert!((got - want).abs() <= tolerance, "got {got}, want {want}");
        };
        let (london, new_york) = (at(51.5074, -0.1278), at(40.7128, -74.0060));
        // The published London–New York great-circle distance is about 5,570 km.
        close(distance_km(london, new_york), 5570.0, 5.0);
        close(
            distance_km(new_york, london),
            distance_km(london, new_york),
            1e-9,
        );
        close(distance_km(london, london), 0.0, 1e-9);
        // A quarter of a great circle is π/2 · R: along the equator, and from a pole to it.
        let quarter = std::f64::consts::FRAC_PI_2 * 6371.0088;
        close(distance_km(at(0.0, 0.0), at(0.0, 90.0)), quarter, 1e-6);
        close(distance_km(at(0.0, 0.0), at(90.0, 0.0)), quarter, 1e-6);
        close(distance_km(at(-45.0, 30.0), at(45.0, 30.0)), quarter, 1e-6);
        // Antipodes are half a great circle apart, across the date line too (haversine loses
        // a little precision there: metres, not kilometres).
        let half = std::f64::consts::PI * 6371.0088;
        close(distance_km(at(0.0, 0.0), at(0.0, 180.0)), half, 1e-6);
        close(distance_km(at(10.0, 170.0), at(-10.0, -10.0)), half, 1e-3);
        // Along a parallel at 60°N a degree of longitude spans cos 60° = half the equator's
        // 2πR/360 ≈ 111.195 km; over one degree the arc and the parallel differ by metres.
        close(
            distance_km(at(60.0, 0.0), at(60.0, 1.0)),
            111.195 / 2.0,
            0.01,
        );
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = GeoDb::open(Path::new("geo-data/does-not-exist.mmdb")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "geo-data/does-not-exist.mmdb: cannot read: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn non_mmdb_files_are_refused() {
        let err = GeoDb::from_bytes(
            b"country,continent\nGB,EU\n".to_vec(),
            Path::new("geo-data/x.mmdb"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "geo-data/x.mmdb: not a MaxMind DB file (metadata marker not found)"
        );
        let err = GeoDb::from_bytes(Vec::new(), Path::new("empty.mmdb")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "empty.mmdb: not a MaxMind DB file (metadata marker not found)"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zone.mmdb");
        std::fs::write(&path, "$TTL 300\n").unwrap();
        let err = GeoDb::open(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: not a MaxMind DB file (metadata marker not found)",
                path.display()
            )
        );
    }

    #[test]
    fn a_marker_without_valid_metadata_is_an_invalid_database() {
        let mut bytes = vec![0u8; 64];
        bytes.extend_from_slice(METADATA_MARKER);
        bytes.extend_from_slice(b"garbage");
        let err = GeoDb::from_bytes(bytes, Path::new("broken.mmdb")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("broken.mmdb: invalid MaxMind DB: "),
            "{text}"
        );
        assert!(matches!(err, GeoError::Invalid { .. }));
    }

    #[test]
    fn geodb_can_be_shared_across_threads() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<GeoDb>();
    }
}
