//! Authoritative zone data: RFC 1035 master files read with hickory-proto's parser, turned into
//! a name tree that answers the RFC 1034 §4.3.2 questions (exact match, zone cut, empty
//! non-terminal, wildcard source) with hash lookups.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;

/// A zone file that cannot be served, with the line that is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {reason}", file.display())]
pub struct ZoneError {
    /// The master file.
    pub file: PathBuf,
    /// 1-based line of the offending record (1 when the problem is the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// All records of one type at one owner name.
#[derive(Debug, Clone)]
pub struct RrSet {
    /// The type shared by every record.
    pub rtype: RecordType,
    /// The records, in file order.
    pub records: Vec<Record>,
}

/// Everything Meridian knows about one owner name inside a zone.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// Static RRsets from the master file.
    pub rrsets: Vec<RrSet>,
    /// True when this name (below the apex) owns NS records: a delegation point (RFC 1034 §4.2.1).
    pub cut: bool,
    /// Index into the model's services when this name is a service (A/AAAA computed per query).
    pub service: Option<usize>,
}

impl Node {
    /// The RRset of this type, if any.
    pub fn rrset(&self, rtype: RecordType) -> Option<&RrSet> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }

    /// True for an empty non-terminal: a name that exists only because names below it do.
    pub fn is_empty(&self) -> bool {
        self.rrsets.is_empty() && self.service.is_none()
    }
}

/// Where a query name lands inside a zone.
#[derive(Debug)]
pub enum Found<'z> {
    /// The name exists (possibly as an empty non-terminal).
    Exact(&'z Node),
    /// The name does not exist, but the wildcard `*.<closest encloser>` does (RFC 4592 §3.3.1).
    Wildcard(&'z Node),
    /// The name is at or below a zone cut: answer with a referral to the child (RFC 1034 §4.3.2
    /// step 3b).
    Referral {
        /// Owner of the NS RRset at the cut.
        cut_name: &'z Name,
        /// The node at the cut.
        cut: &'z Node,
    },
    /// The name does not exist and no wildcard covers it.
    NxDomain,
}

/// One zone loaded from a master file.
#[derive(Debug, Clone)]
pub struct Zone {
    /// The apex, lower-cased and fully qualified.
    pub origin: Name,
    /// File the zone came from.
    pub file: PathBuf,
    origin_labels: u8,
    nodes: HashMap<Name, Node>,
    /// The apex SOA with its TTL already set to min(SOA TTL, MINIMUM), for negative answers
    /// (RFC 2308 §3).
    negative_soa: Record,
}

impl Zone {
    /// Reads and validates a master file for `origin`.
    pub fn load(path: &Path, origin: &Name) -> Result<Zone, ZoneError> {
        let text = std::fs::read_to_string(path).map_err(|e| ZoneError {
            file: path.to_path_buf(),
            line: 1,
            reason: format!("cannot read zone file: {e}"),
        })?;
        Zone::parse(path, &text, origin)
    }

    /// Parses master-file text for `origin`; `path` is used for `$INCLUDE` and in errors.
    pub fn parse(path: &Path, text: &str, origin: &Name) -> Result<Zone, ZoneError> {
        let err = |line: usize, reason: String| ZoneError {
            file: path.to_path_buf(),
            line,
            reason,
        };
        let origin = origin.to_lowercase();
        let flat = flatten_groups(text).map_err(|(line, reason)| err(line, reason))?;
        let text = flat.as_str();
        let parsed = Parser::new(text, Some(path.to_path_buf()), Some(origin.clone())).parse();
        let (_, rrsets) = match parsed {
            Ok(ok) => ok,
            Err(e) => {
                let line = first_failing_line(path, text, &origin);
                return Err(err(line, format!("cannot parse record: {e}")));
            }
        };

        let mut zone = Zone {
            origin_labels: label_count(&origin),
            origin: origin.clone(),
            file: path.to_path_buf(),
            nodes: HashMap::new(),
            negative_soa: Record::from_rdata(origin.clone(), 0, RData::Update0(RecordType::SOA)),
        };
        zone.add_node(&origin);

        for (key, set) in rrsets {
            let owner = Name::from(key.name).to_lowercase();
            if !origin.zone_of(&owner) {
                return Err(err(
                    find_line(text, &owner, &origin),
                    format!("{owner} {} is outside zone {origin}", key.record_type),
                ));
            }
            let records: Vec<Record> = set.records_without_rrsigs().cloned().collect();
            if records.is_empty() {
                continue;
            }
            zone.add_node(&owner);
            let node = zone.nodes.get_mut(&owner).expect("just added");
            node.rrsets.push(RrSet {
                rtype: key.record_type,
                records,
            });
        }

        // Keep a stable order of RRsets per node: by type number, so ANY answers are
        // deterministic.
        for node in zone.nodes.values_mut() {
            node.rrsets.sort_by_key(|s| u16::from(s.rtype));
        }

        zone.validate(text)?;
        Ok(zone)
    }

    fn validate(&mut self, text: &str) -> Result<(), ZoneError> {
        let err = |line: usize, reason: String| ZoneError {
            file: self.file.clone(),
            line,
            reason,
        };
        let apex = self.nodes.get(&self.origin).expect("apex node exists");
        let soa = match apex.rrset(RecordType::SOA) {
            Some(set) if set.records.len() == 1 => set.records[0].clone(),
            Some(_) => {
                return Err(err(
                    1,
                    format!("zone {} has more than one SOA", self.origin),
                ));
            }
            None => {
                return Err(err(
                    1,
                    format!("zone {} has no SOA record at its apex", self.origin),
                ));
            }
        };
        if apex.rrset(RecordType::NS).is_none() {
            return Err(err(
                find_line(text, &self.origin, &self.origin),
                format!("zone {} has no NS records at its apex", self.origin),
            ));
        }
        let RData::SOA(soa_data) = &soa.data else {
            unreachable!("SOA RRset holds SOA data")
        };
        let mut negative = soa.clone();
        negative.ttl = soa.ttl.min(soa_data.minimum);
        self.negative_soa = negative;

        let mut cuts = Vec::new();
        for (name, node) in &self.nodes {
            if node.rrset(RecordType::CNAME).is_some() && node.rrsets.len() > 1 {
                return Err(err(
                    find_line(text, name, &self.origin),
                    format!("{name} has a CNAME and other data (RFC 1034 §3.6.2)"),
                ));
            }
            if *name != self.origin && node.rrset(RecordType::SOA).is_some() {
                return Err(err(
                    find_line(text, name, &self.origin),
                    format!(
                        "SOA record at {name}, which is not the apex of {}",
                        self.origin
                    ),
                ));
            }
            if *name != self.origin && node.rrset(RecordType::NS).is_some() {
                cuts.push(name.clone());
            }
        }
        for cut in cuts {
            self.nodes.get_mut(&cut).expect("cut exists").cut = true;
        }
        Ok(())
    }

    /// Inserts `name` and every ancestor up to the apex, so empty non-terminals exist (RFC 8020).
    fn add_node(&mut self, name: &Name) {
        let mut labels = label_count(name);
        while labels >= self.origin_labels {
            let n = name.trim_to(labels as usize);
            if self.nodes.contains_key(&n) {
                break;
            }
            self.nodes.insert(n, Node::default());
            if labels == 0 {
                break;
            }
            labels -= 1;
        }
    }

    /// Marks `name` as a service. Fails with the reason when the zone's own data conflicts.
    pub fn add_service(&mut self, name: &Name, service: usize) -> Result<(), String> {
        if let Some(node) = self.nodes.get(name) {
            for rtype in [RecordType::A, RecordType::AAAA, RecordType::CNAME] {
                if node.rrset(rtype).is_some() {
                    return Err(format!(
                        "service {name} also has {rtype} records in {}",
                        self.file.display()
                    ));
                }
            }
        }
        if let Found::Referral { cut_name, .. } = self.find(name, RecordType::A) {
            return Err(format!(
                "service {name} is below the delegation {cut_name} in {}",
                self.file.display()
            ));
        }
        self.add_node(name);
        self.nodes.get_mut(name).expect("just added").service = Some(service);
        Ok(())
    }

    /// The apex SOA with the negative-caching TTL, for the authority section of NXDOMAIN and
    /// NODATA answers (RFC 2308 §3).
    pub fn negative_soa(&self) -> &Record {
        &self.negative_soa
    }

    /// The apex node.
    pub fn apex(&self) -> &Node {
        &self.nodes[&self.origin]
    }

    /// The node at exactly `name`, ignoring zone cuts (used for glue).
    pub fn node(&self, name: &Name) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// Number of owner names, empty non-terminals included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when the zone has no names at all (never, once loaded: the apex exists).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Locates `qname` (which must be at or below the apex) following RFC 1034 §4.3.2.
    pub fn find(&self, qname: &Name, qtype: RecordType) -> Found<'_> {
        let qlabels = label_count(qname);
        let mut encloser = self.origin_labels;
        for labels in (self.origin_labels + 1)..=qlabels {
            let candidate = qname.trim_to(labels as usize);
            let Some((name, node)) = self.nodes.get_key_value(&candidate) else {
                break;
            };
            // The DS RRset at a cut belongs to the parent (RFC 4035 §3.1.4.1).
            if node.cut && !(labels == qlabels && qtype == RecordType::DS) {
                return Found::Referral {
                    cut_name: name,
                    cut: node,
                };
            }
            encloser = labels;
        }
        if encloser == qlabels {
            return Found::Exact(&self.nodes[qname]);
        }
        // RFC 4592 §3.3.1: the source of synthesis is `*.` + the closest encloser.
        let closest = qname.trim_to(encloser as usize);
        match closest.prepend_label("*") {
            Ok(wild) => match self.nodes.get(&wild) {
                Some(node) => Found::Wildcard(node),
                None => Found::NxDomain,
            },
            Err(_) => Found::NxDomain,
        }
    }
}

/// Rewrites every parenthesised multi-line entry onto its first line (RFC 1035 §5.1 grouping),
/// drops comments, and pads with empty lines so every entry keeps its line number.
///
/// hickory-proto's lexer treats `"` inside parentheses as an ordinary character, so
/// `TXT ( "a" "b" )` would load with the quotes in the data; on one line it is read correctly.
fn flatten_groups(text: &str) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(text.len());
    let (mut depth, mut in_quote, mut escaped, mut in_comment) = (0u32, false, false, false);
    let (mut line, mut open_line, mut pending) = (1usize, 0usize, 0usize);
    for c in text.chars() {
        if c == '\n' {
            line += 1;
            in_comment = false;
            if in_quote {
                return Err((line - 1, "unterminated quoted string".to_string()));
            }
            if depth > 0 {
                out.push(' ');
                pending += 1;
            } else {
                out.push('\n');
                out.extend(std::iter::repeat_n('\n', pending));
                pending = 0;
            }
            continue;
        }
        if in_comment {
            continue;
        }
        if escaped {
            escaped = false;
            out.push(c);
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                out.push(c);
            }
            '"' => {
                in_quote = !in_quote;
                out.push(c);
            }
            _ if in_quote => out.push(c),
            ';' => in_comment = true,
            '(' => {
                if depth == 0 {
                    open_line = line;
                }
                depth += 1;
                out.push(' ');
            }
            ')' if depth == 0 => return Err((line, "unmatched ')'".to_string())),
            ')' => {
                depth -= 1;
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    if depth > 0 {
        return Err((open_line, "'(' is never closed".to_string()));
    }
    if in_quote {
        return Err((line, "unterminated quoted string".to_string()));
    }
    out.extend(std::iter::repeat_n('\n', pending));
    Ok(out)
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

/// Best-effort line of the first record owned by `name` (for semantic errors, which the parser
/// does not locate). Falls back to line 1.
fn find_line(text: &str, name: &Name, origin: &Name) -> usize {
    let absolute = name.to_ascii().to_ascii_lowercase();
    let relative = if name == origin {
        "@".to_string()
    } else {
        let n = label_count(name) - label_count(origin);
        name.trim_to(label_count(name) as usize)
            .iter()
            .take(n as usize)
            .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join(".")
    };
    for (i, line) in text.lines().enumerate() {
        let first = line.split_whitespace().next().unwrap_or("");
        if line.starts_with(char::is_whitespace) {
            continue;
        }
        let first = first.to_ascii_lowercase();
        if first == absolute || first == relative || (name == origin && first == "$origin") {
            return i + 1;
        }
    }
    1
}

/// Number of labels in `name`, a leading `*` included (hickory's `num_labels` leaves it out,
/// as RRSIG label counts do).
pub fn label_count(name: &Name) -> u8 {
    name.iter().len() as u8
}

/// The zone origin a master file is named after: `example.test.zone` or `example.test`.
pub fn origin_from_file_name(path: &Path) -> Option<Name> {
    let file = path.file_name()?.to_str()?;
    let stem = file.strip_suffix(".zone").unwrap_or(file);
    if stem.is_empty() || stem.starts_with('.') {
        return None;
    }
    let mut name = Name::from_ascii(stem).ok()?;
    name.set_fqdn(true);
    Some(name.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(text: &str) -> Result<Zone, ZoneError> {
        Zone::parse(
            Path::new("t.zone"),
            text,
            &Name::from_ascii("example.test.").unwrap(),
        )
    }

    const HEAD: &str =
        "$TTL 300\n@ IN SOA ns1 host 1 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.1\n";

    #[test]
    fn negative_ttl_is_min_of_soa_ttl_and_minimum() {
        let z = zone(HEAD).unwrap();
        assert_eq!(z.negative_soa().ttl, 60);
    }

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

    #[test]
    fn quoted_strings_inside_parentheses_keep_their_meaning() {
        let text = format!("{HEAD}t TXT ( \"a b\" ; comment\n  \"c;d\" )\nafter A 192.0.2.9\n");
        let z = zone(&text).unwrap();
        let n = Name::from_ascii("t.example.test.").unwrap();
        let Found::Exact(node) = z.find(&n, RecordType::TXT) else {
            panic!("t exists")
        };
        let RData::TXT(txt) = &node.rrset(RecordType::TXT).unwrap().records[0].data else {
            panic!("TXT data")
        };
        let strings: Vec<&[u8]> = txt.txt_data.iter().map(|s| &s[..]).collect();
        assert_eq!(strings, [&b"a b"[..], &b"c;d"[..]]);
        let e = zone(&format!("{HEAD}x TXT ( \"a\"\ny A 192.0.2.1\n")).unwrap_err();
        assert_eq!((e.line, e.reason.as_str()), (5, "'(' is never closed"));
    }

    #[test]
    fn missing_soa_and_ns_are_refused() {
        let e = zone("$TTL 60\n@ NS ns1\n").unwrap_err();
        assert!(e.reason.contains("no SOA"), "{e}");
        let e = zone("$TTL 60\n@ SOA ns1 host 1 2 3 4 5\n").unwrap_err();
        assert!(e.reason.contains("no NS"), "{e}");
    }

    #[test]
    fn finds_exact_ent_wildcard_cut_and_nxdomain() {
        let text =
            format!("{HEAD}a.b A 192.0.2.3\n*.w A 192.0.2.4\nsub NS ns.sub\nns.sub A 192.0.2.5\n");
        let z = zone(&text).unwrap();
        let n = |s: &str| Name::from_ascii(s).unwrap();
        assert!(
            matches!(z.find(&n("A.B.example.test."), RecordType::A), Found::Exact(node) if !node.is_empty())
        );
        assert!(
            matches!(z.find(&n("b.example.test."), RecordType::A), Found::Exact(node) if node.is_empty())
        );
        assert!(matches!(
            z.find(&n("x.w.example.test."), RecordType::A),
            Found::Wildcard(_)
        ));
        assert!(matches!(
            z.find(&n("x.y.w.example.test."), RecordType::A),
            Found::Wildcard(_)
        ));
        assert!(matches!(
            z.find(&n("x.y.example.test."), RecordType::A),
            Found::NxDomain
        ));
        assert!(matches!(
            z.find(&n("www.sub.example.test."), RecordType::A),
            Found::Referral { .. }
        ));
        assert!(matches!(
            z.find(&n("sub.example.test."), RecordType::DS),
            Found::Exact(_)
        ));
        assert!(matches!(
            z.find(&n("nope.example.test."), RecordType::A),
            Found::NxDomain
        ));
    }
}
