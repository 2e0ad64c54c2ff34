//! Country and continent codes as GeoIP databases and the configuration write them, and the
//! built-in table of the continent each country lies on.

use std::fmt;
use std::str::FromStr;

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
}
