//! Turns the readable sample (`geo-data/sample.csv`) into a MaxMind DB in the GeoIP2-City
//! layout. Shared by the `geo-data` example, which writes `geo-data/sample.mmdb`, and the test
//! that regenerates it and compares bytes, so the two files cannot drift apart.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use meridian::geo::{Continent, Country, continent_of};
use mmdb_writer::ipnet::IpNet;
use mmdb_writer::{Value, Writer};

/// The database type written to the metadata.
pub const DATABASE_TYPE: &str = "Meridian-Sample-City";

/// Build time written to the metadata: fixed (2026-01-01T00:00:00Z), not the clock, so the
/// same input always gives the same bytes.
pub const BUILD_EPOCH: u64 = 1_767_225_600;

const HEADER: &str = "network,country,continent,latitude,longitude,comment";

/// One data line of the CSV.
struct Row {
    line: usize,
    network: IpNet,
    country: Country,
    continent: Option<Continent>,
    coords: Option<(f64, f64)>,
}

/// Reads the CSV at `input`, writes the database to `output` and returns how many networks it
/// holds. Errors read `FILE:LINE: reason`.
pub fn generate(input: &Path, output: &Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(input)
        .map_err(|e| format!("{}: cannot read: {e}", input.display()))?;
    let mut rows =
        parse(&text).map_err(|(line, reason)| format!("{}:{line}: {reason}", input.display()))?;
    // Less specific networks first, so a more specific one always wins where they overlap,
    // whatever the order of the lines.
    rows.sort_by_key(|row| row.network.prefix_len());

    let mut writer = Writer::builder(DATABASE_TYPE)
        .description(&[(
            "en",
            "Meridian sample GeoIP data (documentation, private and loopback ranges)",
        )])
        .build_epoch(UNIX_EPOCH + Duration::from_secs(BUILD_EPOCH))
        .build();
    for row in &rows {
        writer
            .insert_value(row.network, record(row))
            .map_err(|e| format!("{}:{}: {e}", input.display(), row.line))?;
    }
    let bytes = writer
        .to_bytes()
        .map_err(|e| format!("{}: {e}", input.display()))?;
    std::fs::write(output, bytes)
        .map_err(|e| format!("{}: cannot write: {e}", output.display()))?;
    Ok(rows.len())
}

/// The GeoIP2-City record of one row: `country.iso_code`, `continent.code` (when the row has
/// one) and `location.latitude` / `location.longitude` (when it has them).
fn record(row: &Row) -> Value {
    let mut record = BTreeMap::new();
    record.insert(
        "country".to_owned(),
        Value::map([("iso_code", row.country.as_str())]),
    );
    if let Some(continent) = row.continent {
        record.insert(
            "continent".to_owned(),
            Value::map([("code", continent.as_str())]),
        );
    }
    if let Some((lat, lon)) = row.coords {
        record.insert(
            "location".to_owned(),
            Value::map([("latitude", lat), ("longitude", lon)]),
        );
    }
    Value::Map(record)
}

/// The data rows, or the 1-based line and reason of the first bad line.
fn parse(text: &str) -> Result<Vec<Row>, (usize, String)> {
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    let mut header_seen = false;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if !header_seen {
            if content != HEADER {
                return Err((line, format!("expected the header line {HEADER:?}")));
            }
            header_seen = true;
            continue;
        }
        let row = parse_row(line, content).map_err(|reason| (line, reason))?;
        if !seen.insert(row.network) {
            return Err((line, format!("{} is listed twice", row.network)));
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err((text.lines().count(), "no networks".to_owned()));
    }
    Ok(rows)
}

fn parse_row(line: usize, content: &str) -> Result<Row, String> {
    let fields: Vec<&str> = content.splitn(6, ',').map(str::trim).collect();
    let [network, country, continent, lat, lon, _comment] = fields[..] else {
        return Err(format!(
            "expected 6 fields ({HEADER}), found {}",
            fields.len()
        ));
    };
    let network: IpNet = network
        .parse()
        .map_err(|_| format!("{network:?} is not a network in CIDR notation"))?;
    if network.trunc() != network {
        return Err(format!(
            "{network} has host bits set (did you mean {}?)",
            network.trunc()
        ));
    }
    let country: Country = country.parse().map_err(|e| format!("{e}"))?;
    let Some(table) = continent_of(country) else {
        return Err(format!("{country} is not an ISO 3166-1 country code"));
    };
    let continent = match continent {
        "" => None,
        code => {
            let continent: Continent = code.parse().map_err(|e| format!("{e}"))?;
            if continent != table {
                return Err(format!("{country} is in {table}, not {continent}"));
            }
            Some(continent)
        }
    };
    let coords = match (lat, lon) {
        ("", "") => None,
        (lat, lon) => {
            let lat: f64 = lat
                .parse()
                .map_err(|_| format!("latitude {lat:?} is not a number"))?;
            let lon: f64 = lon
                .parse()
                .map_err(|_| format!("longitude {lon:?} is not a number"))?;
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                return Err(format!("{lat},{lon} is not a latitude and longitude"));
            }
            Some((lat, lon))
        }
    };
    Ok(Row {
        line,
        network,
        country,
        continent,
        coords,
    })
}
