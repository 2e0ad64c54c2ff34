//! Flattened master-file text read entry by entry: plain one-line records through [`lines`] as
//! they come, everything else through hickory's parser in chunks, each after the `$ORIGIN` and
//! `$TTL` in force and the owner it continues, with the checks that keep where chunks end from
//! changing a zone.

use std::path::Path;

use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::serialize::txt::Parser;

use super::names::case_preserving_wire;
use super::{WireName, ZoneError, lines, name_from_wire};

/// Entries handed to the parser at a time (see the module docs).
pub(super) const CHUNK_ENTRIES: usize = 25;

/// Which entries [`lines`] reads directly.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Reader {
    /// Plain one-line records (the default).
    Lines,
    /// None: hickory reads everything (the reference).
    HickoryOnly,
    /// None, and hickory reads the whole file at once.
    HickoryUnchunked,
}

/// One entry of a master file, as it reaches the zone.
pub(super) enum Entry<'a> {
    /// A record hickory's parser produced.
    Parsed(&'a Record),
    /// A record [`lines`] read from line `line`.
    Read {
        owner: &'a WireName,
        rtype: RecordType,
        ttl: u32,
        rdata: &'a [u8],
        line: usize,
    },
}

/// Entries waiting to be handed to hickory's parser together.
struct Chunk<'t> {
    /// Byte offset of the first line in the text.
    start: usize,
    /// Its 1-based line number.
    line: usize,
    /// The `$ORIGIN` and `$TTL` lines in force before it.
    context: (Option<&'t str>, Option<&'t str>),
    /// The owner of the entries before it, written as a line of its own after the context:
    /// hickory reads it as the owner of blank-owner entries, which may have been on a line read
    /// directly (and hickory does not carry it over from one chunk to the next anyway).
    owner: Option<String>,
    /// Entries in it.
    entries: usize,
}

impl<'t> Chunk<'t> {
    fn new(
        start: usize,
        index: usize,
        context: (Option<&'t str>, Option<&'t str>),
        owner: &Option<WireName>,
    ) -> Chunk<'t> {
        Chunk {
            start,
            line: index + 1,
            context,
            owner: owner
                .as_ref()
                .map(|owner| name_from_wire(owner.as_bytes()).to_ascii()),
            entries: 0,
        }
    }
}

/// Reads `text` (already flattened) and hands every record to `sink`: plain one-line records
/// read by [`lines`] as they come, everything between them parsed by hickory in chunks. A parse
/// error names the line of the entry that fails.
pub(super) fn for_each_entry(
    path: &Path,
    text: &str,
    origin: &Name,
    reader: Reader,
    mut sink: impl FnMut(Entry<'_>) -> Result<(), ZoneError>,
) -> Result<(), ZoneError> {
    // The `$ORIGIN` and `$TTL` lines as of the current line, for chunk preambles.
    let (mut cur_origin, mut cur_ttl): (Option<&str>, Option<&str>) = (None, None);
    // The same, as the line reader needs them; `None` when it cannot know (then hickory reads).
    let mut origin_wire: Option<Vec<u8>> = Some(case_preserving_wire(origin));
    let mut default_ttl: Option<u32> = None;
    let mut context_unknown = false;
    let mut last_owner: Option<WireName> = None;
    let mut pending: Option<Chunk<'_>> = None;
    let mut rdata = Vec::with_capacity(64);
    let mut at = 0usize;
    let flush = |pending: &mut Option<Chunk<'_>>,
                 end: usize,
                 sink: &mut dyn FnMut(Entry<'_>) -> Result<(), ZoneError>| {
        match pending.take() {
            Some(chunk) => parse_chunk(path, origin, &chunk, &text[chunk.start..end], sink),
            None => Ok(()),
        }
    };
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let line_at = at;
        at += raw.len();
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        let bytes = line.as_bytes();
        let Some(&first) = bytes.first() else {
            continue;
        };
        if first == b'$' {
            let words: Vec<&str> = line.split_whitespace().take(3).collect();
            // `$ORIGIN` and `$TTL` are followed here only in their plain form. After `$INCLUDE`
            // or any other `$` line the context is unknown: hickory reads the rest of the file
            // in one go. A relative or unparsable `$ORIGIN`, or an unparsable `$TTL`, only stops
            // the line reader until the next plain one.
            let plain = |arg: &str| !arg.contains('"') && !arg.starts_with(['@', '$']);
            let understood = match words[..] {
                ["$ORIGIN", arg] if plain(arg) => {
                    origin_wire = Name::parse(arg, None)
                        .ok()
                        .filter(|_| arg.ends_with('.'))
                        .map(|name| case_preserving_wire(&name));
                    origin_wire.is_some()
                }
                ["$TTL", arg] if plain(arg) => {
                    default_ttl = hickory_proto::serialize::txt::parse_ttl(arg).ok();
                    default_ttl.is_some()
                }
                _ => {
                    context_unknown = true;
                    false
                }
            };
            if pending.is_none() && !(understood && reader == Reader::Lines && !context_unknown) {
                pending = Some(Chunk::new(
                    line_at,
                    index,
                    (cur_origin, cur_ttl),
                    &last_owner,
                ));
            }
            match words.first() {
                Some(&"$ORIGIN") => cur_origin = Some(line.trim_end()),
                Some(&"$TTL") => cur_ttl = Some(line.trim_end()),
                _ => {}
            }
            continue;
        }
        let blank = line.starts_with(char::is_whitespace);
        if blank && pending.is_none() && line.trim().is_empty() {
            continue;
        }

        if reader == Reader::Lines
            && !context_unknown
            && let (Some(origin_wire), Some(default_ttl)) = (&origin_wire, default_ttl)
            && let Some(read) = lines::read(bytes, origin_wire, default_ttl, &mut rdata)
        {
            let owner = read.owner.or_else(|| last_owner.clone());
            if let Some(owner) = owner {
                flush(&mut pending, line_at, &mut sink)?;
                sink(Entry::Read {
                    owner: &owner,
                    rtype: read.rtype,
                    ttl: read.ttl,
                    rdata: &rdata,
                    line: index + 1,
                })?;
                last_owner = Some(owner);
                continue;
            }
        }

        if let Err(reason) = check_entry(line) {
            // Errors come in file order: the entries before this one first.
            flush(&mut pending, line_at, &mut sink)?;
            return Err(ZoneError {
                file: path.to_path_buf(),
                line: index + 1,
                reason,
            });
        }
        if !blank {
            last_owner = origin_wire
                .as_deref()
                .and_then(|origin| lines::first_word_owner(bytes, origin));
            // A chunk may end before an entry with an explicit owner, once a `$TTL` fixes the
            // default TTL (without one, a record's TTL can come from the record before).
            if pending
                .as_ref()
                .is_some_and(|chunk| chunk.entries >= CHUNK_ENTRIES)
                && reader != Reader::HickoryUnchunked
                && cur_ttl.is_some()
                && !context_unknown
            {
                flush(&mut pending, line_at, &mut sink)?;
            }
        }
        let chunk = pending
            .get_or_insert_with(|| Chunk::new(line_at, index, (cur_origin, cur_ttl), &last_owner));
        chunk.entries += 1;
    }
    flush(&mut pending, text.len(), &mut sink)
}

/// Refuses what hickory's parser would carry over from an entry (a flattened line, not a
/// directive) to the entries after it, within a chunk but not across chunks, so that a zone
/// never depends on where chunks end:
///
/// - an entry with a TTL or class but no record type (RFC 1035 §5.1 has no such entry): hickory
///   keeps the TTL for the next record;
/// - a class other than `IN` (the only one served): hickory keeps it for the entries after;
/// - a TTL, class or type word with quotes or escapes: what it stands for is only known after
///   unquoting, so it is refused rather than guessed.
fn check_entry(line: &str) -> Result<(), String> {
    const CLASSES: [&str; 6] = ["IN", "CH", "HS", "NONE", "ANY", "*"];
    let mut words = line.split_whitespace();
    if !line.starts_with(char::is_whitespace) {
        words.next();
    }
    let mut any = false;
    for word in words {
        if word.contains(['"', '\\']) {
            return Err(format!(
                "{word} is quoted or escaped where a TTL, class or record type is expected"
            ));
        }
        let ttl = hickory_proto::serialize::txt::parse_ttl(word).is_ok();
        match CLASSES.iter().find(|c| word.eq_ignore_ascii_case(c)) {
            _ if ttl => {}
            Some(&"IN") => {}
            Some(_) => return Err(format!("only class IN is served, not {word}")),
            // The record type: what follows is its data.
            None => return Ok(()),
        }
        any = true;
    }
    if any {
        return Err("entry has a TTL or class but no record type".to_string());
    }
    Ok(())
}

/// Parses one chunk, the text of `chunk`, after its context (the `$ORIGIN` and `$TTL` lines in
/// force there) and a line naming the owner it continues.
fn parse_chunk(
    path: &Path,
    origin: &Name,
    chunk: &Chunk<'_>,
    body: &str,
    sink: &mut dyn FnMut(Entry<'_>) -> Result<(), ZoneError>,
) -> Result<(), ZoneError> {
    let mut text = String::with_capacity(body.len() + 128);
    let mut preamble_lines = 0;
    for line in [chunk.context.0, chunk.context.1].into_iter().flatten() {
        text.push_str(line);
        text.push('\n');
        preamble_lines += 1;
    }
    if let Some(owner) = &chunk.owner {
        text.push_str(owner);
        text.push('\n');
        preamble_lines += 1;
    }
    text.push_str(body);
    let parsed = Parser::new(
        text.as_str(),
        Some(path.to_path_buf()),
        Some(origin.clone()),
    )
    .parse();
    let (_, rrsets) = match parsed {
        Ok(ok) => ok,
        Err(e) => {
            let line = first_failing_line(path, &text, origin);
            return Err(ZoneError {
                file: path.to_path_buf(),
                line: chunk.line + line.saturating_sub(preamble_lines + 1),
                reason: format!("cannot parse record: {e}"),
            });
        }
    };
    for set in rrsets.values() {
        for record in set.records_without_rrsigs() {
            sink(Entry::Parsed(record))?;
        }
    }
    Ok(())
}

/// Byte offsets where a new logical entry (a record, possibly spanning lines in parentheses, or
/// a `$` directive) starts.
fn entry_starts(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let (mut depth, mut in_quote, mut in_comment, mut escaped) = (0i32, false, false, false);
    let mut line_start = true;
    for (i, b) in text.bytes().enumerate() {
        if line_start && depth == 0 && !in_quote {
            starts.push(i);
        }
        line_start = false;
        if in_comment {
            if b == b'\n' {
                in_comment = false;
                line_start = true;
            }
            continue;
        }
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' => escaped = true,
            b'"' => in_quote = !in_quote,
            b';' if !in_quote => in_comment = true,
            b'(' if !in_quote => depth += 1,
            b')' if !in_quote => depth -= 1,
            b'\n' => line_start = true,
            _ => {}
        }
    }
    starts.push(text.len());
    starts
}

/// The 1-based line of the first entry whose inclusion makes the file fail to parse. The
/// parser reports no positions, so this bisects over entry boundaries (only on the error path).
fn first_failing_line(path: &Path, text: &str, origin: &Name) -> usize {
    let starts = entry_starts(text);
    let fails = |end: usize| {
        Parser::new(&text[..end], Some(path.to_path_buf()), Some(origin.clone()))
            .parse()
            .is_err()
    };
    // Invariant: prefix ending at starts[lo] parses, prefix ending at starts[hi] fails.
    let (mut lo, mut hi) = (0usize, starts.len() - 1);
    if !fails(starts[hi]) {
        return 1;
    }
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if fails(starts[mid]) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    // The entry that breaks it starts at starts[lo].
    text.as_bytes()[..starts[lo]]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use hickory_proto::rr::{Name, RecordType};

    use super::*;
    use crate::zone::tests::{HEAD, origin, zone};
    use crate::zone::{Found, Zone};

    #[test]
    fn parse_error_names_the_line() {
        let text = format!("{HEAD}www A 192.0.2.2\nbad A not-an-ip\n");
        let e = zone(&text).unwrap_err();
        assert_eq!(e.line, 6, "{e}");
    }

    #[test]
    fn multi_line_record_error_points_at_its_first_line() {
        let text = format!("{HEAD}x TXT ( \"a\"\n \"b\" )\ny MX ( 10\n  mx )\nz A 1.2.3\n");
        let e = zone(&text).unwrap_err();
        assert_eq!(e.line, 9, "{e}");
    }

    /// Found by the `zone` fuzz target: hickory accepts a line with a TTL but no type and gives
    /// that TTL to the next record, which the line reader would not; such entries are refused.
    #[test]
    fn an_entry_without_a_type_is_refused() {
        for entry in ["ns9 1209600", "  1209600 ; expire", "x IN", "x 60 in"] {
            let text = format!("{HEAD}{entry}\n*.w IN A 192.0.2.100\n");
            let e = zone(&text).unwrap_err();
            assert_eq!(e.line, 5, "{entry}: {e}");
            assert!(e.reason.contains("no record type"), "{e}");
        }
        // An owner alone names the owner of the blank-owner entries after it.
        let text = format!("{HEAD}ns9\n  A 192.0.2.9\n");
        let z = zone(&text).unwrap();
        assert!(
            z.node(&Name::from_ascii("ns9.example.test.").unwrap())
                .is_some()
        );
    }

    /// Found in review: inputs on which the line reader, hickory in chunks and hickory in one
    /// piece disagreed. Each now loads the same zone, or is refused, whichever reads it.
    #[test]
    fn readers_agree_on_what_review_found() {
        let cases = [
            // A quoted `"@"` is not the origin (refused by hickory's label rules).
            (format!("{HEAD}\"@\" A 192.0.2.7\n"), false),
            // A blank-owner entry after a directive hickory reads, after a line read directly.
            (
                format!("{HEAD}www A 192.0.2.2\n$ORIGIN sub\n  A 192.0.2.3\n"),
                true,
            ),
            // A class other than IN is refused where it is written.
            (format!("{HEAD}a CH A 192.0.2.7\na IN A 192.0.2.7\n"), false),
            // A quote inside a word is an ordinary character; a string ends on its line.
            (
                format!("{HEAD}a TXT x\"y \"z\nb A 192.0.2.2\nc\" x\"y A\n"),
                false,
            ),
            (format!("{HEAD}a TXT x\"y z\nb A 192.0.2.2\n"), true),
            (format!("{HEAD}a TXT x\\\n\"b\" TXT c\n"), true),
        ];
        for (text, loads) in cases {
            let direct = zone(&text);
            assert_eq!(direct.is_ok(), loads, "{text}: {direct:?}");
            for chunked in [true, false] {
                let reference =
                    Zone::parse_reference(Path::new("t.zone"), &text, &origin(), chunked);
                match (&direct, reference) {
                    (Ok(direct), Ok(reference)) => assert_eq!(direct, &reference, "{text}"),
                    (Err(_), Err(_)) => {}
                    (direct, reference) => panic!("{text}: {direct:?} / {reference:?}"),
                }
            }
        }
    }

    #[test]
    fn large_files_parse_in_chunks_with_the_context_in_force() {
        // More entries than one chunk, an $ORIGIN and a $TTL change half-way, a record
        // repeated in two chunks, and a continuation line (owner from the line before).
        let mut text = HEAD.to_string();
        for i in 0..CHUNK_ENTRIES + 10 {
            text.push_str(&format!("h{i} A 192.0.2.{}\n", i % 250));
        }
        text.push_str("$ORIGIN sub.example.test.\n$TTL 120\n");
        for i in 0..CHUNK_ENTRIES + 10 {
            text.push_str(&format!("s{i} A 198.51.100.1\n"));
        }
        text.push_str("s0 A 198.51.100.1\nlast A 198.51.100.2\n   AAAA 2001:db8::2\n");
        let z = zone(&text).unwrap();
        let n = |s: &str| Name::from_ascii(s).unwrap();
        let records = |name: &str, t: RecordType| match z.find(&n(name), t) {
            Found::Exact(node) => node
                .rrset(t)
                .map(|s| s.records(&n(name)))
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let h = records(
            &format!("h{}.example.test.", CHUNK_ENTRIES + 5),
            RecordType::A,
        );
        assert_eq!((h.len(), h[0].ttl), (1, 300));
        let s0 = records("s0.sub.example.test.", RecordType::A);
        assert_eq!(
            (s0.len(), s0[0].ttl),
            (1, 120),
            "repeated record stored once"
        );
        let deep = format!("s{}.sub.example.test.", CHUNK_ENTRIES + 9);
        assert_eq!(records(&deep, RecordType::A)[0].ttl, 120);
        assert_eq!(records("last.sub.example.test.", RecordType::AAAA).len(), 1);
        assert_eq!(
            z.len(),
            2 + 2 * (CHUNK_ENTRIES + 10) + 2,
            "apex, ns1, h*, sub, s*, last"
        );

        // An error in a later chunk names its line in the file.
        let mut bad = text.clone();
        let line = bad.lines().count() + 1;
        bad.push_str("oops A 300.1.1.1\n");
        assert_eq!(zone(&bad).unwrap_err().line, line);
    }

    #[test]
    fn only_class_in_is_served() {
        let e = zone(&format!("{HEAD}v CH TXT \"x\"\n")).unwrap_err();
        assert!(e.reason.contains("only class IN"), "{e}");
        assert_eq!(e.line, 5);
    }
}
