//! The lenient decoding of a MaxMind DB record: only the fields a lookup uses, from any of the
//! supported layouts, borrowed from the database buffer so that nothing is allocated; a field
//! of an unexpected type counts as absent instead of failing the whole record.

use std::fmt;
use std::marker::PhantomData;

use ipnet::IpNet;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{Continent, Coords, Country, Location, continent_of};

/// The fields `lookup` reads, from any of the supported layouts, borrowed from the database.
///
/// GeoIP2/GeoLite2 and DB-IP: `country.iso_code` (else `registered_country.iso_code`),
/// `continent.code`, `location.latitude` / `location.longitude`. Flat layouts
/// (ip-location-db, ipinfo): `country_code`, `continent_code`, `latitude`, `longitude`.
/// Unknown fields are skipped; a field of an unexpected type counts as absent.
#[derive(Debug, Default)]
pub(super) struct Record<'a> {
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
    pub(super) fn location(&self, network: IpNet) -> Option<Location> {
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
