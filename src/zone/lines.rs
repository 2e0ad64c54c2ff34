//! The direct reader for the plain one-line records that make up almost all of a large zone (A,
//! AAAA, CNAME, NS, PTR, MX and TXT with an optional decimal TTL and class IN), written straight
//! into wire format without hickory's lexer and its tree of `Record`s: loading a
//! million-record zone is then mostly this loop. A line it reads gets exactly the data hickory's
//! master-file parser gives it (names lower-cased except labels starting with `_`, the same label
//! and length rules, the same TTL defaulting); a line it does not recognise (`None`) goes to
//! hickory, which stays the reference. The differential property test and the `zone` fuzz
//! target check that both give the same zone.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use hickory_proto::rr::RecordType;

use super::{WireName, wire_labels};

/// Most tokens a line may have to be read here (longer TXT records go to hickory).
const MAX_TOKENS: usize = 16;

/// One record read from a line; its RDATA is in the buffer handed to [`read`].
pub(super) struct Line {
    /// The owner written on the line, lower-cased; `None` when the line starts with blanks (the
    /// owner of the entry before it).
    pub owner: Option<WireName>,
    pub rtype: RecordType,
    pub ttl: u32,
}

#[derive(Clone, Copy, Default)]
struct Token<'a> {
    text: &'a [u8],
    quoted: bool,
}

/// Reads one flattened line (no newline, no comment, no parentheses) of a master file whose
/// `$ORIGIN` in force is `origin` (wire format, as hickory holds it) and whose `$TTL` is
/// `default_ttl`. Fills `rdata` with the record's RDATA (names uncompressed) and returns the
/// rest, or `None` when the line is not one this reader handles.
pub(super) fn read(
    line: &[u8],
    origin: &[u8],
    default_ttl: u32,
    rdata: &mut Vec<u8>,
) -> Option<Line> {
    // hickory's lexer ends a line at `\r` as at `\n` (a CRLF file).
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut tokens = [Token::default(); MAX_TOKENS];
    let count = tokenize(line, &mut tokens)?;
    let tokens = &tokens[..count];
    let blank = matches!(line.first(), Some(b' ' | b'\t'));
    let (owner, mut at) = if blank {
        (None, 0)
    } else {
        // A quoted `"@"` is the text `@` to hickory, not the origin.
        let first = tokens.first().filter(|t| !t.quoted)?;
        (Some(owner_name(first.text, origin)?), 1)
    };

    let (mut ttl, mut class) = (None, false);
    let rtype = loop {
        let token = tokens.get(at)?;
        at += 1;
        if token.quoted {
            return None;
        }
        if token.text.iter().all(u8::is_ascii_digit) {
            if ttl.is_some() {
                return None;
            }
            // Overflow: hickory's error is the one to give.
            ttl = Some(u32::from_str(std::str::from_utf8(token.text).ok()?).ok()?);
        } else if token.text.eq_ignore_ascii_case(b"IN") {
            if class {
                return None;
            }
            class = true;
        } else {
            break record_type(token.text)?;
        }
    };

    rdata.clear();
    let data = &tokens[at..];
    if data.iter().any(|t| t.quoted) && rtype != RecordType::TXT {
        return None;
    }
    match (rtype, data) {
        (RecordType::A, [address]) => {
            let address = Ipv4Addr::from_str(std::str::from_utf8(address.text).ok()?).ok()?;
            rdata.extend_from_slice(&address.octets());
        }
        (RecordType::AAAA, [address]) => {
            let address = Ipv6Addr::from_str(std::str::from_utf8(address.text).ok()?).ok()?;
            rdata.extend_from_slice(&address.octets());
        }
        (RecordType::CNAME | RecordType::NS | RecordType::PTR, [target]) => {
            push_name(rdata, target.text, origin)?;
        }
        (RecordType::MX, [preference, exchange]) => {
            let text = preference.text;
            if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let preference = u16::from_str(std::str::from_utf8(text).ok()?).ok()?;
            rdata.extend_from_slice(&preference.to_be_bytes());
            push_name(rdata, exchange.text, origin)?;
        }
        (RecordType::TXT, strings) if !strings.is_empty() => {
            for s in strings {
                rdata.push(u8::try_from(s.text.len()).ok()?);
                rdata.extend_from_slice(s.text);
            }
        }
        _ => return None,
    }
    Some(Line {
        owner,
        rtype,
        ttl: ttl.unwrap_or(default_ttl),
    })
}

/// The owner written as the first token of an entry (`@` or a name), or `None` when it is not
/// a plain name.
pub(super) fn owner_name(token: &[u8], origin: &[u8]) -> Option<WireName> {
    let mut name = WireName::empty();
    if token == b"@" {
        for label in wire_labels(origin) {
            if !name.push_label(label) {
                return None;
            }
        }
    } else {
        name_labels(token, origin, |label| name.push_label(label))?;
    }
    Some(name.finish())
}

/// The first whitespace-separated word of an entry line, as [`owner_name`] reads it.
pub(super) fn first_word_owner(line: &[u8], origin: &[u8]) -> Option<WireName> {
    let word = line.split(|&b| b == b' ' || b == b'\t').next()?;
    if word.is_empty()
        || !word
            .iter()
            .all(|&b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b'(' | b')' | b';'))
    {
        return None;
    }
    owner_name(word, origin)
}

/// Splits a line into tokens the way hickory's lexer would, or `None` when the line holds
/// anything beyond plain words and quoted strings without escapes.
fn tokenize<'a>(line: &'a [u8], out: &mut [Token<'a>; MAX_TOKENS]) -> Option<usize> {
    if !line
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        return None;
    }
    let (mut count, mut i) = (0, 0);
    while i < line.len() {
        if matches!(line[i], b' ' | b'\t') {
            i += 1;
            continue;
        }
        let slot = out.get_mut(count)?;
        if line[i] == b'"' {
            let body = &line[i + 1..];
            let end = body.iter().position(|&b| b == b'"')?;
            let body = &body[..end];
            if body.contains(&b'\\') {
                return None;
            }
            i += end + 2;
            if i < line.len() && !matches!(line[i], b' ' | b'\t') {
                return None;
            }
            *slot = Token {
                text: body,
                quoted: true,
            };
        } else {
            let start = i;
            while i < line.len() && !matches!(line[i], b' ' | b'\t') {
                if matches!(line[i], b'"' | b'\\' | b'(' | b')' | b';') {
                    return None;
                }
                i += 1;
            }
            let text = &line[start..i];
            // `@` and `$` start tokens of their own in the lexer; only a lone `@` owner is read.
            if matches!(text[0], b'@' | b'$') && !(count == 0 && text == b"@") {
                return None;
            }
            *slot = Token {
                text,
                quoted: false,
            };
        }
        count += 1;
    }
    Some(count)
}

/// The record types this reader handles.
fn record_type(text: &[u8]) -> Option<RecordType> {
    const TYPES: [(&[u8], RecordType); 7] = [
        (b"A", RecordType::A),
        (b"AAAA", RecordType::AAAA),
        (b"CNAME", RecordType::CNAME),
        (b"NS", RecordType::NS),
        (b"PTR", RecordType::PTR),
        (b"MX", RecordType::MX),
        (b"TXT", RecordType::TXT),
    ];
    TYPES
        .iter()
        .find(|(name, _)| text.eq_ignore_ascii_case(name))
        .map(|&(_, rtype)| rtype)
}

/// Appends the uncompressed wire form of the name `token` to `rdata`.
fn push_name(rdata: &mut Vec<u8>, token: &[u8], origin: &[u8]) -> Option<()> {
    let start = rdata.len();
    name_labels(token, origin, |label| {
        // Room for this label and the root label: at most 255 bytes in all (RFC 1035 §2.3.4).
        if label.is_empty() || label.len() > 63 || rdata.len() - start + label.len() + 2 > 255 {
            return false;
        }
        rdata.push(label.len() as u8);
        rdata.extend_from_slice(label);
        true
    })?;
    rdata.push(0);
    Some(())
}

/// Calls `push` with each label of the name `token` stands for, as hickory's `Name::parse` makes
/// it: `.` is the root, a name without a final dot continues with `origin`'s labels, and labels
/// are lower-cased except those starting with `_`. `None` when a label is not plain or `push`
/// refuses one.
fn name_labels(token: &[u8], origin: &[u8], mut push: impl FnMut(&[u8]) -> bool) -> Option<()> {
    if token == b"." {
        return Some(());
    }
    let (body, absolute) = match token.strip_suffix(b".") {
        Some(body) => (body, true),
        None => (token, false),
    };
    let mut lower = [0u8; 63];
    for label in body.split(|&b| b == b'.') {
        if !plain_label(label) {
            return None;
        }
        let label = if label[0] == b'_' {
            label
        } else {
            let lower = &mut lower[..label.len()];
            lower.copy_from_slice(label);
            lower.make_ascii_lowercase();
            &*lower
        };
        if !push(label) {
            return None;
        }
    }
    if !absolute {
        for label in wire_labels(origin) {
            if !push(label) {
                return None;
            }
        }
    }
    Some(())
}

/// A label hickory accepts and maps predictably: `*`; `_` followed by letters, digits, `_` and
/// `-` (kept as written); or letters, digits and `-`, not first, and not an IDNA `xn--` label
/// (lower-cased). Anything else (escapes, other characters, punycode) is hickory's to judge.
fn plain_label(label: &[u8]) -> bool {
    if label.is_empty() || label.len() > 63 {
        return false;
    }
    if label == b"*" {
        return true;
    }
    if label[0] == b'_' {
        return label
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    }
    label[0] != b'-'
        && !(label.len() >= 4 && label[..4].eq_ignore_ascii_case(b"xn--"))
        && label
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &[u8] = b"\x07example\x04test\x00";

    /// Owner (wire), type, TTL and RDATA.
    type Read = (Option<Vec<u8>>, RecordType, u32, Vec<u8>);

    fn line(text: &str) -> Option<Read> {
        let mut rdata = Vec::new();
        let line = read(text.as_bytes(), ORIGIN, 300, &mut rdata)?;
        let owner = line.owner.map(|name| name.as_bytes().to_vec());
        Some((owner, line.rtype, line.ttl, rdata))
    }

    #[test]
    fn reads_plain_records_into_wire_format() {
        let (owner, rtype, ttl, rdata) = line("WWW A 192.0.2.1").unwrap();
        assert_eq!(owner.unwrap(), b"\x03www\x07example\x04test\x00");
        assert_eq!(
            (rtype, ttl, rdata),
            (RecordType::A, 300, vec![192, 0, 2, 1])
        );

        let (owner, rtype, ttl, rdata) = line("  60 IN aaaa 2001:db8::1").unwrap();
        assert!(owner.is_none());
        assert_eq!((rtype, ttl), (RecordType::AAAA, 60));
        assert_eq!(rdata, "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());

        let (_, rtype, _, rdata) = line("@ IN 60 MX 10 Mail").unwrap();
        assert_eq!(rtype, RecordType::MX);
        assert_eq!(rdata, b"\x00\x0a\x04mail\x07example\x04test\x00");

        let (_, _, _, rdata) = line("_x CNAME _SIP.Other.").unwrap();
        assert_eq!(rdata, b"\x04_SIP\x05other\x00");

        let (_, _, _, rdata) = line("t TXT \"a b\" c \"\"").unwrap();
        assert_eq!(rdata, b"\x03a b\x01c\x00");

        let (_, _, _, rdata) = line("m MX 0 .").unwrap();
        assert_eq!(rdata, b"\x00\x00\x00");

        let (_, _, _, rdata) = line("crlf A 192.0.2.9\r").unwrap();
        assert_eq!(rdata, [192, 0, 2, 9]);
    }

    #[test]
    fn leaves_everything_else_to_hickory() {
        for text in [
            "a A 192.0.2.1 extra",
            "a A \\# 4 c0000201",
            "a 1h A 192.0.2.1",
            "a CH A 192.0.2.1",
            "a 1 2 A 192.0.2.1",
            "a SRV 0 0 80 x",
            "a TXT \"a\\\"b\"",
            "a TXT \"a\"b",
            "a\\.b A 192.0.2.1",
            "a..b A 192.0.2.1",
            "-a A 192.0.2.1",
            "xn--a A 192.0.2.1",
            "a_b A 192.0.2.1",
            "a CNAME @",
            "a MX +1 x",
            "a MX 70000 x",
            "a 4294967296 A 192.0.2.1",
            "a A 192.0.2.1\r\r",
            "\"@\" A 192.0.2.1",
            "caf\u{e9} A 192.0.2.1",
            "a TXT",
            "",
            "   ",
        ] {
            assert!(line(text).is_none(), "{text:?} should go to hickory");
        }
    }

    #[test]
    fn names_longer_than_255_bytes_go_to_hickory() {
        let long = vec!["a".repeat(63); 4].join(".");
        assert!(line(&format!("{long}. A 192.0.2.1")).is_none());
        assert!(line(&format!("x CNAME {long}.")).is_none());
        let fits = [
            "a".repeat(63),
            "a".repeat(63),
            "a".repeat(63),
            "a".repeat(61),
        ]
        .join(".");
        assert!(line(&format!("x CNAME {fits}.")).is_some());
    }
}
