//! Where a client is: lookups in a MaxMind-format GeoIP database (GeoIP2/GeoLite2, DB-IP,
//! ip-location-db), the country → continent table and great-circle distances that geographic
//! and proximity steering decide by. A lookup runs on the query path, so it borrows from the
//! database buffer and allocates nothing; a failed lookup is "location unknown", never an error.

use std::fmt;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net};
use maxminddb::{MaxMindDbError, Reader};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

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

/// An ISO 3166-1 alpha-2 country code, upper case (`GB`, `US`; also user-assigned codes such
/// as `XK`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

impl Country {
    /// The code as text, e.g. `"GB"`.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a country code is two ASCII letters")
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Country({})", self.as_str())
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A country or continent code that is not two ASCII letters (or, for a continent, not one
/// of the seven codes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Not two ASCII letters.
    #[error("invalid country code {0:?}: expected two letters (ISO 3166-1 alpha-2)")]
    Country(String),
    /// Not AF, AN, AS, EU, NA, OC or SA.
    #[error("invalid continent code {0:?}: expected one of AF, AN, AS, EU, NA, OC, SA")]
    Continent(String),
}

impl FromStr for Country {
    type Err = CodeError;

    /// Accepts any two ASCII letters, in either case.
    fn from_str(s: &str) -> Result<Country, CodeError> {
        match *s.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Ok(Country([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => Err(CodeError::Country(s.to_owned())),
        }
    }
}

/// A continent, with the two-letter codes GeoIP databases use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Continent {
    /// Africa.
    AF,
    /// Antarctica.
    AN,
    /// Asia.
    AS,
    /// Europe.
    EU,
    /// North America (with Central America and the Caribbean).
    NA,
    /// Oceania.
    OC,
    /// South America.
    SA,
}

impl Continent {
    /// Every continent, in code order.
    pub const ALL: [Continent; 7] = [
        Continent::AF,
        Continent::AN,
        Continent::AS,
        Continent::EU,
        Continent::NA,
        Continent::OC,
        Continent::SA,
    ];

    /// The two-letter code, e.g. `"EU"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Continent::AF => "AF",
            Continent::AN => "AN",
            Continent::AS => "AS",
            Continent::EU => "EU",
            Continent::NA => "NA",
            Continent::OC => "OC",
            Continent::SA => "SA",
        }
    }
}

impl fmt::Display for Continent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Continent {
    type Err = CodeError;

    /// Accepts the two-letter codes in either case.
    fn from_str(s: &str) -> Result<Continent, CodeError> {
        Continent::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| CodeError::Continent(s.to_owned()))
    }
}

/// The continent `country` lies on, from the built-in table (every ISO 3166-1 code plus
/// `XK`, assigned as GeoNames and MaxMind do); `None` for codes not in it.
pub fn continent_of(country: Country) -> Option<Continent> {
    CONTINENTS
        .binary_search_by(|(code, _)| code.as_bytes().cmp(&country.0[..]))
        .ok()
        .map(|i| CONTINENTS[i].1)
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

/// The fields `lookup` reads, from any of the supported layouts, borrowed from the database.
///
/// GeoIP2/GeoLite2 and DB-IP: `country.iso_code` (else `registered_country.iso_code`),
/// `continent.code`, `location.latitude` / `location.longitude`. Flat layouts
/// (ip-location-db, ipinfo): `country_code`, `continent_code`, `latitude`, `longitude`.
/// Unknown fields are skipped; a field of an unexpected type counts as absent.
#[derive(Debug, Default)]
struct Record<'a> {
    country: Nested<'a>,
    registered_country: Nested<'a>,
    continent: Nested<'a>,
    location: Nested<'a>,
    country_code: Scalar<'a>,
    continent_code: Scalar<'a>,
    latitude: Scalar<'a>,
    longitude: Scalar<'a>,
}

impl Record<'_> {
    fn location(&self, network: IpNet) -> Option<Location> {
        let country = [
            self.country.iso_code,
            self.registered_country.iso_code,
            self.country_code,
        ]
        .into_iter()
        .find_map(|code| code.text()?.parse::<Country>().ok());
        let continent = [self.continent.code, self.continent_code]
            .into_iter()
            .find_map(|code| code.text()?.parse::<Continent>().ok())
            .or_else(|| country.and_then(continent_of));
        let coords = coords(self.location.latitude, self.location.longitude)
            .or_else(|| coords(self.latitude, self.longitude));
        if country.is_none() && continent.is_none() && coords.is_none() {
            return None;
        }
        Some(Location {
            network,
            country,
            continent,
            coords,
        })
    }
}

fn coords(lat: Scalar<'_>, lon: Scalar<'_>) -> Option<Coords> {
    let (lat, lon) = (lat.number()?, lon.number()?);
    ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon))
        .then_some(Coords { lat, lon })
}

/// The inner map of `country`, `registered_country`, `continent` or `location`: only the
/// fields Meridian uses.
#[derive(Debug, Default, Clone, Copy)]
struct Nested<'a> {
    iso_code: Scalar<'a>,
    code: Scalar<'a>,
    latitude: Scalar<'a>,
    longitude: Scalar<'a>,
}

/// A string or number field; anything else (a map, an array, a boolean) reads as absent.
#[derive(Debug, Default, Clone, Copy)]
enum Scalar<'a> {
    #[default]
    Absent,
    Text(&'a str),
    Number(f64),
}

impl<'a> Scalar<'a> {
    fn text(self) -> Option<&'a str> {
        match self {
            Scalar::Text(s) => Some(s),
            _ => None,
        }
    }

    /// A finite number, also from a string holding one (`"51.5"`).
    fn number(self) -> Option<f64> {
        let n = match self {
            Scalar::Number(n) => n,
            Scalar::Text(s) => s.trim().parse().ok()?,
            Scalar::Absent => return None,
        };
        n.is_finite().then_some(n)
    }
}

/// A map of which only some keys matter. Whatever is not a map reads as `Default::default()`,
/// so a field of the wrong type is absent instead of failing the whole record.
trait Fields<'de>: Default {
    /// Reads the value of `key` into `self` if the key is one of ours, else skips the value.
    fn field<A: MapAccess<'de>>(&mut self, key: &'de str, map: &mut A) -> Result<(), A::Error>;
}

impl<'de> Fields<'de> for Record<'de> {
    fn field<A: MapAccess<'de>>(&mut self, key: &'de str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "country" => self.country = map.next_value()?,
            "registered_country" => self.registered_country = map.next_value()?,
            "continent" => self.continent = map.next_value()?,
            "location" => self.location = map.next_value()?,
            "country_code" => self.country_code = map.next_value()?,
            "continent_code" => self.continent_code = map.next_value()?,
            "latitude" => self.latitude = map.next_value()?,
            "longitude" => self.longitude = map.next_value()?,
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

impl<'de> Fields<'de> for Nested<'de> {
    fn field<A: MapAccess<'de>>(&mut self, key: &'de str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "iso_code" => self.iso_code = map.next_value()?,
            "code" => self.code = map.next_value()?,
            "latitude" => self.latitude = map.next_value()?,
            "longitude" => self.longitude = map.next_value()?,
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Record<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldsVisitor(PhantomData))
    }
}

impl<'de> Deserialize<'de> for Nested<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldsVisitor(PhantomData))
    }
}

struct FieldsVisitor<T>(PhantomData<T>);

impl<'de, T: Fields<'de>> Visitor<'de> for FieldsVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut fields = T::default();
        while let Some(key) = map.next_key::<&'de str>()? {
            fields.field(key, &mut map)?;
        }
        Ok(fields)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(T::default())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Absent)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Number(v as f64))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Number(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(v))
            }
            // Only reached by strings that are not in the database buffer (never, with
            // maxminddb); they cannot be kept without allocating.
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Absent)
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Absent)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Absent)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Absent)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Absent)
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// Country → continent, sorted by code for binary search. Follows GeoNames' `countryInfo`
/// (which MaxMind's `continent.code` also follows): Russia is EU, Turkey and the Caucasus are
/// AS, Egypt is AF, Central America and the Caribbean are NA, the Pacific (and Timor-Leste,
/// Christmas Island) are OC, the sub-Antarctic islands are AN. `XK` is Kosovo (user-assigned,
/// used by GeoNames, MaxMind and DB-IP).
#[rustfmt::skip]
static CONTINENTS: [(&str, Continent); 250] = {
    use Continent::{AF, AN, AS, EU, NA, OC, SA};
    [
        ("AD", EU), ("AE", AS), ("AF", AS), ("AG", NA), ("AI", NA), ("AL", EU), ("AM", AS),
        ("AO", AF), ("AQ", AN), ("AR", SA), ("AS", OC), ("AT", EU), ("AU", OC), ("AW", NA),
        ("AX", EU), ("AZ", AS), ("BA", EU), ("BB", NA), ("BD", AS), ("BE", EU), ("BF", AF),
        ("BG", EU), ("BH", AS), ("BI", AF), ("BJ", AF), ("BL", NA), ("BM", NA), ("BN", AS),
        ("BO", SA), ("BQ", NA), ("BR", SA), ("BS", NA), ("BT", AS), ("BV", AN), ("BW", AF),
        ("BY", EU), ("BZ", NA), ("CA", NA), ("CC", AS), ("CD", AF), ("CF", AF), ("CG", AF),
        ("CH", EU), ("CI", AF), ("CK", OC), ("CL", SA), ("CM", AF), ("CN", AS), ("CO", SA),
        ("CR", NA), ("CU", NA), ("CV", AF), ("CW", NA), ("CX", OC), ("CY", EU), ("CZ", EU),
        ("DE", EU), ("DJ", AF), ("DK", EU), ("DM", NA), ("DO", NA), ("DZ", AF), ("EC", SA),
        ("EE", EU), ("EG", AF), ("EH", AF), ("ER", AF), ("ES", EU), ("ET", AF), ("FI", EU),
        ("FJ", OC), ("FK", SA), ("FM", OC), ("FO", EU), ("FR", EU), ("GA", AF), ("GB", EU),
        ("GD", NA), ("GE", AS), ("GF", SA), ("GG", EU), ("GH", AF), ("GI", EU), ("GL", NA),
        ("GM", AF), ("GN", AF), ("GP", NA), ("GQ", AF), ("GR", EU), ("GS", AN), ("GT", NA),
        ("GU", OC), ("GW", AF), ("GY", SA), ("HK", AS), ("HM", AN), ("HN", NA), ("HR", EU),
        ("HT", NA), ("HU", EU), ("ID", AS), ("IE", EU), ("IL", AS), ("IM", EU), ("IN", AS),
        ("IO", AS), ("IQ", AS), ("IR", AS), ("IS", EU), ("IT", EU), ("JE", EU), ("JM", NA),
        ("JO", AS), ("JP", AS), ("KE", AF), ("KG", AS), ("KH", AS), ("KI", OC), ("KM", AF),
        ("KN", NA), ("KP", AS), ("KR", AS), ("KW", AS), ("KY", NA), ("KZ", AS), ("LA", AS),
        ("LB", AS), ("LC", NA), ("LI", EU), ("LK", AS), ("LR", AF), ("LS", AF), ("LT", EU),
        ("LU", EU), ("LV", EU), ("LY", AF), ("MA", AF), ("MC", EU), ("MD", EU), ("ME", EU),
        ("MF", NA), ("MG", AF), ("MH", OC), ("MK", EU), ("ML", AF), ("MM", AS), ("MN", AS),
        ("MO", AS), ("MP", OC), ("MQ", NA), ("MR", AF), ("MS", NA), ("MT", EU), ("MU", AF),
        ("MV", AS), ("MW", AF), ("MX", NA), ("MY", AS), ("MZ", AF), ("NA", AF), ("NC", OC),
        ("NE", AF), ("NF", OC), ("NG", AF), ("NI", NA), ("NL", EU), ("NO", EU), ("NP", AS),
        ("NR", OC), ("NU", OC), ("NZ", OC), ("OM", AS), ("PA", NA), ("PE", SA), ("PF", OC),
        ("PG", OC), ("PH", AS), ("PK", AS), ("PL", EU), ("PM", NA), ("PN", OC), ("PR", NA),
        ("PS", AS), ("PT", EU), ("PW", OC), ("PY", SA), ("QA", AS), ("RE", AF), ("RO", EU),
        ("RS", EU), ("RU", EU), ("RW", AF), ("SA", AS), ("SB", OC), ("SC", AF), ("SD", AF),
        ("SE", EU), ("SG", AS), ("SH", AF), ("SI", EU), ("SJ", EU), ("SK", EU), ("SL", AF),
        ("SM", EU), ("SN", AF), ("SO", AF), ("SR", SA), ("SS", AF), ("ST", AF), ("SV", NA),
        ("SX", NA), ("SY", AS), ("SZ", AF), ("TC", NA), ("TD", AF), ("TF", AN), ("TG", AF),
        ("TH", AS), ("TJ", AS), ("TK", OC), ("TL", OC), ("TM", AS), ("TN", AF), ("TO", OC),
        ("TR", AS), ("TT", NA), ("TV", OC), ("TW", AS), ("TZ", AF), ("UA", EU), ("UG", AF),
        ("UM", OC), ("US", NA), ("UY", SA), ("UZ", AS), ("VA", EU), ("VC", NA), ("VE", SA),
        ("VG", NA), ("VI", NA), ("VN", AS), ("VU", OC), ("WF", OC), ("WS", OC), ("XK", EU),
        ("YE", AS), ("YT", AF), ("ZA", AF), ("ZM", AF), ("ZW", AF),
    ]
};

#[cfg(test)]
mod tests {
    use super::*;

    fn country(code: &str) -> Country {
        code.parse().unwrap()
    }

    #[test]
    fn country_codes_parse_in_either_case_and_print_upper_case() {
        assert_eq!(country("gb"), country("GB"));
        assert_eq!(country("De").to_string(), "DE");
        assert_eq!(country("xk").as_str(), "XK");
        assert_eq!(format!("{:?}", country("us")), "Country(US)");
        for bad in ["", "G", "GBR", "G1", "1G", "  ", "G ", "É", "ÉÉ", "-1"] {
            assert_eq!(
                bad.parse::<Country>(),
                Err(CodeError::Country(bad.to_owned())),
                "{bad:?}"
            );
        }
        assert_eq!(
            "GBR".parse::<Country>().unwrap_err().to_string(),
            r#"invalid country code "GBR": expected two letters (ISO 3166-1 alpha-2)"#
        );
    }

    #[test]
    fn countries_order_alphabetically() {
        let mut codes = [country("US"), country("AU"), country("GB"), country("AR")];
        codes.sort();
        let codes: Vec<String> = codes.iter().map(Country::to_string).collect();
        assert_eq!(codes, ["AR", "AU", "GB", "US"]);
    }

    #[test]
    fn continent_codes_parse_case_insensitively_and_round_trip() {
        for continent in Continent::ALL {
            let code = continent.to_string();
            assert_eq!(code.parse::<Continent>(), Ok(continent));
            assert_eq!(code.to_lowercase().parse::<Continent>(), Ok(continent));
        }
        assert_eq!("eU".parse::<Continent>(), Ok(Continent::EU));
        assert_eq!("oc".parse::<Continent>(), Ok(Continent::OC));
        for bad in ["", "E", "EUR", "XX", "ME", "Europe"] {
            assert_eq!(
                bad.parse::<Continent>(),
                Err(CodeError::Continent(bad.to_owned()))
            );
        }
        assert_eq!(
            "XX".parse::<Continent>().unwrap_err().to_string(),
            r#"invalid continent code "XX": expected one of AF, AN, AS, EU, NA, OC, SA"#
        );
    }

    #[test]
    fn continent_table_spot_checks() {
        let cases = [
            // Africa, including Egypt and the Indian Ocean islands.
            ("ZA", Continent::AF),
            ("NG", Continent::AF),
            ("EG", Continent::AF),
            ("KE", Continent::AF),
            ("MU", Continent::AF),
            ("RE", Continent::AF),
            // Antarctica and the sub-Antarctic islands.
            ("AQ", Continent::AN),
            ("BV", Continent::AN),
            ("GS", Continent::AN),
            ("HM", Continent::AN),
            ("TF", Continent::AN),
            // Asia, including the Middle East, the Caucasus and Turkey.
            ("JP", Continent::AS),
            ("SG", Continent::AS),
            ("IN", Continent::AS),
            ("CN", Continent::AS),
            ("IL", Continent::AS),
            ("TR", Continent::AS),
            ("GE", Continent::AS),
            ("KZ", Continent::AS),
            // Europe, including Russia and Kosovo.
            ("GB", Continent::EU),
            ("DE", Continent::EU),
            ("FR", Continent::EU),
            ("RU", Continent::EU),
            ("UA", Continent::EU),
            ("IS", Continent::EU),
            ("XK", Continent::EU),
            ("VA", Continent::EU),
            // North America, including Central America, the Caribbean and Greenland.
            ("US", Continent::NA),
            ("CA", Continent::NA),
            ("MX", Continent::NA),
            ("PA", Continent::NA),
            ("CU", Continent::NA),
            ("GL", Continent::NA),
            // Oceania.
            ("AU", Continent::OC),
            ("NZ", Continent::OC),
            ("FJ", Continent::OC),
            ("PG", Continent::OC),
            ("GU", Continent::OC),
            ("TL", Continent::OC),
            // South America, including the Falklands and French Guiana.
            ("BR", Continent::SA),
            ("AR", Continent::SA),
            ("CL", Continent::SA),
            ("CO", Continent::SA),
            ("FK", Continent::SA),
            ("GF", Continent::SA),
        ];
        for (code, continent) in cases {
            assert_eq!(continent_of(country(code)), Some(continent), "{code}");
        }
        // Reserved, withdrawn and made-up codes are not countries.
        for code in ["UK", "EU", "AP", "AN", "CS", "ZZ", "XX"] {
            assert_eq!(continent_of(country(code)), None, "{code}");
        }
    }

    #[test]
    fn continent_table_is_complete_sorted_and_well_formed() {
        // ISO 3166-1 assigns 249 alpha-2 codes; XK (Kosovo) makes 250.
        assert_eq!(CONTINENTS.len(), 250);
        for (code, _) in &CONTINENTS {
            assert!(
                code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()),
                "{code:?} is not two upper-case letters"
            );
            assert_eq!(country(code).as_str(), *code);
        }
        for pair in CONTINENTS.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        // Every continent has countries (Antarctica has its five territories).
        for continent in Continent::ALL {
            let count = CONTINENTS.iter().filter(|(_, c)| *c == continent).count();
            assert!(count >= 5, "{continent}: {count}");
        }
    }

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
