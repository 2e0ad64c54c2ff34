//! Weight shares members report on their HTTP(S) answers (`weight_from`): a header or a JSON
//! pointer into the body, written as `75`, `75%` or a JSON number.

use reqwest::header::HeaderMap;

use crate::model::WeightFrom;

/// A share as members write it: `75`, `75%`, `62.5`; values above 100 count as 100. `None`
/// for anything else (negative, not a number).
pub fn share(text: &str) -> Option<u8> {
    let number = text.trim();
    let number = number.strip_suffix('%').unwrap_or(number).trim();
    let value: f64 = number.parse().ok()?;
    (value.is_finite() && value >= 0.0).then(|| value.min(100.0).round() as u8)
}

/// The share `header` reports in `headers`, if it is there and readable.
pub fn from_header(headers: &HeaderMap, header: &str) -> Option<u8> {
    share(headers.get(header)?.to_str().ok()?)
}

/// The share at `pointer` in the JSON document `body`: a number, or a string [`share`] reads.
pub fn from_json(body: &[u8], pointer: &str) -> Option<u8> {
    let doc: serde_json::Value = serde_json::from_slice(body).ok()?;
    match doc.pointer(pointer)? {
        serde_json::Value::Number(n) => share(&n.to_string()),
        serde_json::Value::String(s) => share(s),
        _ => None,
    }
}

/// Whether reading `from` needs the answer's body.
pub fn needs_body(from: Option<&WeightFrom>) -> bool {
    matches!(from, Some(WeightFrom::Json(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_parse_leniently_and_cap_at_100() {
        assert_eq!(share("75"), Some(75));
        assert_eq!(share(" 75% "), Some(75));
        assert_eq!(share("62.5"), Some(63));
        assert_eq!(share("1000"), Some(100));
        assert_eq!(share("0"), Some(0));
        assert_eq!(share("-1"), None);
        assert_eq!(share("NaN"), None);
        assert_eq!(share("lots"), None);
    }

    #[test]
    fn json_pointers_read_numbers_and_strings() {
        let body = br#"{"capacity": 40, "load": {"free": "25%"}, "name": "x", "big": 1e9}"#;
        assert_eq!(from_json(body, "/capacity"), Some(40));
        assert_eq!(from_json(body, "/load/free"), Some(25));
        assert_eq!(from_json(body, "/big"), Some(100));
        assert_eq!(from_json(body, "/name"), None);
        assert_eq!(from_json(body, "/missing"), None);
        assert_eq!(from_json(b"70", ""), Some(70));
        assert_eq!(from_json(b"not json", "/capacity"), None);
    }

    #[test]
    fn headers_read_a_share() {
        let mut h = HeaderMap::new();
        h.insert("x-weight", "30%".parse().unwrap());
        assert_eq!(from_header(&h, "X-Weight"), Some(30));
        assert_eq!(from_header(&h, "X-Other"), None);
    }
}
