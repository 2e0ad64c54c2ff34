//! TEMPORARY STUB (replaced by the geo branch): the GeoIP contract steering codes against.
#![allow(missing_docs, dead_code)]
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct GeoDb {
    path: PathBuf,
}
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GeoError(String);
impl GeoDb {
    pub fn open(path: &Path) -> Result<GeoDb, GeoError> {
        Ok(GeoDb { path: path.into() })
    }
    pub fn lookup(&self, _ip: IpAddr) -> Option<Location> {
        None
    }
    pub fn describe(&self) -> String {
        String::new()
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location {
    pub network: ipnet::IpNet,
    pub country: Option<Country>,
    pub continent: Option<Continent>,
    pub coords: Option<Coords>,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);
impl std::str::FromStr for Country {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let b = s.as_bytes();
        if b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic) {
            Ok(Country([
                b[0].to_ascii_uppercase(),
                b[1].to_ascii_uppercase(),
            ]))
        } else {
            Err(format!("{s:?} is not a country code"))
        }
    }
}
impl std::fmt::Display for Country {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.0[0] as char, self.0[1] as char)
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Continent {
    AF,
    AN,
    AS,
    EU,
    NA,
    OC,
    SA,
}
impl std::str::FromStr for Continent {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "AF" => Continent::AF,
            "AN" => Continent::AN,
            "AS" => Continent::AS,
            "EU" => Continent::EU,
            "NA" => Continent::NA,
            "OC" => Continent::OC,
            "SA" => Continent::SA,
            _ => return Err(format!("{s:?} is not a continent code")),
        })
    }
}
impl std::fmt::Display for Continent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
pub fn continent_of(_c: Country) -> Option<Continent> {
    None
}
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coords {
    pub lat: f64,
    pub lon: f64,
}
pub fn distance_km(a: Coords, b: Coords) -> f64 {
    let (p1, p2) = (a.lat.to_radians(), b.lat.to_radians());
    let dp = p2 - p1;
    let dl = (b.lon - a.lon).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0088 * h.sqrt().asin()
}
