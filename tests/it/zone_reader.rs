//! Differential property test of zone loading (proptest, in the normal suite): master files
//! built from a grammar of plain and awkward entries load to the same zone whether plain lines
//! are read directly into wire format (the default), every entry goes through hickory's parser
//! in chunks, or hickory reads the whole file at once; and are refused by all three when any
//! refuses them.

use std::path::Path;

use hickory_proto::rr::Name;
use meridian::zone::Zone;
use proptest::prelude::*;

/// Owners hickory accepts: plain, relative and absolute, case, `_` and `*` labels, escapes.
const OWNERS: &[&str] = &[
    "",
    "",
    "@",
    "a",
    "A",
    "b.a",
    "_x",
    "_X.y",
    "*",
    "*.w",
    "x-y",
    "y-",
    "h1.example.test.",
    "H1.Example.Test.",
    "a\\.b",
    "a\\065",
    "caf\u{e9}",
];
/// Owners it refuses, or that are outside the zone.
const BAD_OWNERS: &[&str] = &[
    "-x", "xn--abc", "a_b", "other.", "@x", "\"q\"", "\"@\"", "a..b",
];
const TTLS: &[&str] = &["", "", "60", "1h", "0", "4294967295", "007"];
const CLASSES: &[&str] = &["", "", "IN", "in"];
const BAD: &[&str] = &["4294967296", "CH", "X", "1 2", "IN IN"];
/// Type and RDATA that go together (some only hickory reads: extra tokens, escapes, SRV).
const RECORDS: &[&str] = &[
    "A 192.0.2.1",
    "a 192.0.2.7",
    "A 192.0.2.1 extra",
    "AAAA 2001:db8::1",
    "aaaa ::ffff:1.2.3.4",
    "NS ns1",
    "PTR Www.Example.Test.",
    "MX 10 Mail",
    "MX 20 _Mx.Example.Test.",
    "mx 0 .",
    "TXT \"a b\"",
    "TXT \"A\" b \"\"",
    "TXT plain",
    "TXT \"a\\\"b\"",
    "SRV 0 0 80 Target",
    "ANAME Target",
    "ANAME other.example.test.",
    "TXT x\"y",
    "TXT x\\",
];
/// Type and RDATA that do not go together, or records that break the zone's rules.
const BAD_RECORDS: &[&str] = &[
    "A 192.0.2.01",
    "A 1.2.3",
    "AAAA 192.0.2.1",
    "MX 65536 x",
    "MX +1 x",
    "MX x",
    "CNAME @",
    "CNAME Www",
    "TXT",
    "SOA ns1 host 2 3 4 5 6",
    "SRV 1 2 x",
    "TXT x\"y \"z",
    "TXT \"open",
    "\"A\" 192.0.2.1",
    "",
];
const DIRECTIVES: &[&str] = &[
    "$ORIGIN sub.example.test.",
    "$ORIGIN Sub.Example.Test.",
    "$ORIGIN _Sub.example.test.",
    "$ORIGIN example.test.",
    "$TTL 60",
    "$TTL 2h",
];
const BAD_DIRECTIVES: &[&str] = &[
    "$TTL \"600\"",
    "$ORIGIN other.",
    "$ORIGIN rel",
    "$TTL x",
    "$origin a.",
    "$ORIGINx a.",
    "$TTL 60 b",
];

fn pick(list: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    (0..list.len()).prop_map(move |i| list[i])
}

/// Mostly `good`, sometimes (when `awkward`) one of `bad`.
fn choose(
    awkward: bool,
    good: &'static [&'static str],
    bad: &'static [&'static str],
) -> BoxedStrategy<&'static str> {
    if awkward {
        prop_oneof![9 => pick(good), 1 => pick(bad)].boxed()
    } else {
        pick(good).boxed()
    }
}

/// One entry: a directive, a record line (possibly blank-owner, possibly in parentheses with a
/// comment), or an empty line.
fn entry(awkward: bool) -> impl Strategy<Value = String> {
    let record = (
        choose(awkward, OWNERS, BAD_OWNERS),
        choose(awkward, TTLS, BAD),
        pick(CLASSES),
        any::<bool>(),
        choose(awkward, RECORDS, BAD_RECORDS),
        0..4u8,
    )
        .prop_map(|(owner, ttl, class, swap, record, style)| {
            let (first, second) = if swap { (class, ttl) } else { (ttl, class) };
            let owner = if owner.is_empty() { " " } else { owner };
            match style {
                0 => {
                    let (rtype, data) = record.split_once(' ').unwrap_or((record, ""));
                    format!("{owner} {first} {second} ( {rtype}\n {data} ) ; note")
                }
                1 => format!("{owner}\t{first}\t{second}\t{record} ; note"),
                _ => format!("{owner} {first} {second} {record}"),
            }
        });
    prop_oneof![
        12 => record,
        1 => choose(awkward, DIRECTIVES, BAD_DIRECTIVES).prop_map(str::to_string),
        1 => Just(String::new()),
    ]
}

/// A zone: sometimes without `$TTL`; half the time only entries hickory accepts (so most such
/// zones load: about 55 % of all cases load, the rest are refused by both readers), half the
/// time with awkward ones mixed in.
fn zone_text() -> impl Strategy<Value = String> {
    (any::<bool>(), any::<bool>())
        .prop_flat_map(|(ttl, awkward)| (Just(ttl), prop::collection::vec(entry(awkward), 0..60)))
        .prop_map(|(ttl, entries)| {
            let mut text = String::new();
            if ttl {
                text.push_str("$TTL 300\n");
            }
            text.push_str(
                "@ 300 SOA ns1 host 1 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.53\n",
            );
            for entry in entries {
                text.push_str(&entry);
                text.push('\n');
            }
            text
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn direct_reading_gives_the_zone_hickory_gives(text in zone_text()) {
        let path = Path::new("example.test.zone");
        let origin = Name::from_ascii("example.test.").unwrap();
        let direct = Zone::parse(path, &text, &origin);
        let chunked = Zone::parse_reference(path, &text, &origin, true);
        let whole = Zone::parse_reference(path, &text, &origin, false);
        match (direct, chunked, whole) {
            (Ok(direct), Ok(chunked), Ok(whole)) => {
                prop_assert_eq!(&direct, &chunked, "{}", text);
                prop_assert_eq!(&direct, &whole, "{}", text);
            }
            (Err(_), Err(_), Err(_)) => {}
            (direct, chunked, whole) => prop_assert!(
                false,
                "not all refused:\n{text}\ndirect: {:?}\nchunked: {:?}\nwhole: {:?}",
                direct.err().map(|e| e.to_string()),
                chunked.err().map(|e| e.to_string()),
                whole.err().map(|e| e.to_string())
            ),
        }
    }
}

/// A zone that is almost all plain lines loads fully and as hickory reads it, with the entries
/// only hickory reads (blank-owner lines after direct ones, `$ORIGIN` changes, SRV, escapes)
/// interleaved.
#[test]
fn mixed_zone_matches_hickory_record_for_record() {
    let mut text = String::from(
        "$TTL 300\n@ SOA ns1 host 1 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.53\n",
    );
    for i in 0..200 {
        text.push_str(&format!("h{i} A 10.0.{}.{}\n", i / 256, i % 256));
        text.push_str(&format!("  AAAA 2001:db8::{i:x}\n"));
        text.push_str(&format!("\t60 TXT \"host {i}\" tag\\{i:03}\n"));
        text.push_str(&format!("_s{i}._tcp SRV 0 0 80 h{i}\n"));
        if i % 50 == 0 {
            text.push_str(&format!("$ORIGIN sub{i}.example.test.\n"));
        }
        text.push_str(&format!("m{i} MX {i} Mail{i}\n"));
    }
    let path = Path::new("example.test.zone");
    let origin = Name::from_ascii("example.test.").unwrap();
    let direct = Zone::parse(path, &text, &origin).unwrap_or_else(|e| panic!("{e}"));
    for chunked in [true, false] {
        let reference =
            Zone::parse_reference(path, &text, &origin, chunked).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(direct, reference);
    }
    // Every owner: the apex, ns1, 200 hosts, 200 SRV names, a `_tcp` parent under each of the
    // five origins, 200 MX names and the four `$ORIGIN` subdomains.
    assert_eq!(direct.len(), 2 + 200 + 200 + 5 + 200 + 4);
}
