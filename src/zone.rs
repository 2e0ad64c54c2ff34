//! Authoritative zone data: RFC 1035 master files read with hickory-proto's parser, stored as
//! the wire-format records an answer copies, keyed by lower-cased wire names, so the
//! RFC 1034 §4.3.2 questions (exact match, zone cut, empty non-terminal, wildcard source) are hash
//! lookups on slices of the query and a million-record zone stays small.
//!
//! Plain one-line records (A, AAAA, CNAME, NS, PTR, MX, TXT), almost all of a large zone, are read
//! straight into wire format by [`lines`]; every other entry goes to hickory's parser in chunks of
//! at most [`CHUNK_ENTRIES`](entries::CHUNK_ENTRIES) entries, each preceded by the `$ORIGIN` and
//! `$TTL` in force there, so the parser's own tree of records never holds more than one chunk.
//! Both give the same zone: RRsets take records as hickory's `RecordSet` does, whichever chunk
//! they come from.

mod entries;
mod flatten;
mod lines;
mod load;
mod lookup;
mod names;

use std::path::PathBuf;

use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, Restrict};

use crate::wire::WireName;
pub use load::origin_from_file_name;
pub use lookup::Found;
use names::wire_labels;
pub use names::{NameHasher, NameMap, label_count, name_from_wire};

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

/// The compression pointer to offset 12, where the question name starts: the owner of every
/// record an answer copies from an [`RrSet`] is the query name.
pub const OWNER_IS_QNAME: [u8; 2] = [0xC0, 0x0C];

/// All records of one type at one owner name, encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct RrSet {
    /// The type shared by every record.
    pub rtype: RecordType,
    /// Number of records.
    count: u16,
    /// The records in file order as they go into an answer: [`OWNER_IS_QNAME`], type, class,
    /// TTL, RDLENGTH and RDATA with uncompressed names.
    wire: Box<[u8]>,
}

impl RrSet {
    /// The encoded records, ready to copy into an answer whose question name is the owner.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// True for an RRset without records (never, once loaded).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The records, owned by `owner` (the RRset does not store its owner name).
    pub fn records(&self, owner: &Name) -> Vec<Record> {
        let mut out = Vec::with_capacity(self.len());
        let mut rest = &self.wire[..];
        while rest.len() >= 12 {
            let rtype = RecordType::from(u16::from_be_bytes([rest[2], rest[3]]));
            let class = DNSClass::from(u16::from_be_bytes([rest[4], rest[5]]));
            let ttl = u32::from_be_bytes([rest[6], rest[7], rest[8], rest[9]]);
            let len = usize::from(u16::from_be_bytes([rest[10], rest[11]]));
            let Some(rdata) = rest.get(12..12 + len) else {
                break;
            };
            let mut decoder = BinDecoder::new(rdata);
            // Encoded by `push` from parsed or directly read data: decoding it back cannot
            // fail.
            if let Ok(data) = RData::read(&mut decoder, rtype, Restrict::new(len as u16)) {
                let mut record = Record::from_rdata(owner.clone(), ttl, data);
                record.dns_class = class;
                out.push(record);
            }
            rest = &rest[12 + len..];
        }
        out
    }

    /// Adds one record as hickory's `RecordSet::insert` does, so that where chunk boundaries
    /// fall never changes a zone: a record equal to one already here (RFC 2136 §1.1.1: data,
    /// names without case, not the TTL; the class is always IN here) is dropped, a CNAME
    /// replaces the CNAME and an ANAME the ANAME (one per name, RFC 1034 and the ANAME draft),
    /// and a second SOA is an error.
    fn push(&mut self, class: DNSClass, ttl: u32, rdata: &[u8]) -> Result<(), String> {
        let rtype = self.rtype;
        let len =
            u16::try_from(rdata.len()).map_err(|_| format!("{rtype} record data too long"))?;
        match rtype {
            RecordType::SOA if self.count > 0 => {
                return Err("more than one SOA record".to_string());
            }
            RecordType::CNAME | RecordType::ANAME => {
                self.wire = Box::default();
                self.count = 0;
            }
            _ => {}
        }
        let mut at = 0;
        while at + 12 <= self.wire.len() {
            let have = usize::from(u16::from_be_bytes([self.wire[at + 10], self.wire[at + 11]]));
            let data = at + 12..at + 12 + have;
            if same_rdata(rtype, &self.wire[data.clone()], rdata) {
                return Ok(());
            }
            at = data.end;
        }
        // Sized exactly: most RRsets hold one record, and a zone can hold millions.
        let mut wire = Vec::with_capacity(self.wire.len() + 12 + rdata.len());
        wire.extend_from_slice(&self.wire);
        wire.extend_from_slice(&OWNER_IS_QNAME);
        wire.extend_from_slice(&u16::from(rtype).to_be_bytes());
        wire.extend_from_slice(&u16::from(class).to_be_bytes());
        wire.extend_from_slice(&ttl.to_be_bytes());
        wire.extend_from_slice(&len.to_be_bytes());
        wire.extend_from_slice(rdata);
        self.wire = wire.into_boxed_slice();
        self.count = self.count.saturating_add(1);
        Ok(())
    }
}

/// True when two RDATA of `rtype` are the same data as hickory's `RData` equality sees it:
/// equal bytes, or (rarely) bytes equal but for ASCII case whose names then compare equal.
fn same_rdata(rtype: RecordType, a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    if !a.eq_ignore_ascii_case(b) {
        return false;
    }
    let read = |data: &[u8]| {
        RData::read(
            &mut BinDecoder::new(data),
            rtype,
            Restrict::new(data.len() as u16),
        )
        .ok()
    };
    matches!((read(a), read(b)), (Some(a), Some(b)) if a == b)
}

/// Everything Meridian knows about one owner name inside a zone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    /// Static RRsets from the master file, ordered by type number.
    pub rrsets: Box<[RrSet]>,
    /// True when this name (below the apex) owns NS records: a delegation point (RFC 1034 §4.2.1).
    pub cut: bool,
    /// Index into the model's services when this name is a service (A/AAAA computed per query).
    pub service: Option<u32>,
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

/// One zone loaded from a master file.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// The apex, lower-cased and fully qualified.
    pub origin: Name,
    /// File the zone came from.
    pub file: PathBuf,
    origin_labels: u8,
    origin_wire: Box<[u8]>,
    nodes: NameMap<Node>,
    /// The apex SOA with its TTL already set to min(SOA TTL, MINIMUM), for negative answers
    /// (RFC 2308 §3).
    negative_soa: Record,
    /// The same record encoded without its owner: type, class, TTL, RDLENGTH, RDATA.
    negative_tail: Box<[u8]>,
}

impl Zone {
    /// Inserts `name` and every ancestor up to the apex, so empty non-terminals exist (RFC 8020).
    fn add_node(&mut self, name: &WireName) {
        let mut labels = name.label_count();
        while labels >= self.origin_labels {
            let key = name.suffix(labels);
            if self.nodes.contains_key(key) {
                break;
            }
            self.nodes.insert(key.into(), Node::default());
            if labels == 0 {
                break;
            }
            labels -= 1;
        }
    }

    /// Marks `name` as a service. Fails with the reason when the zone's own data conflicts.
    pub fn add_service(&mut self, name: &Name, service: usize) -> Result<(), String> {
        let wire = WireName::from_name(name).ok_or_else(|| format!("{name}: name too long"))?;
        if let Some(node) = self.nodes.get(wire.as_bytes()) {
            for rtype in [RecordType::A, RecordType::AAAA, RecordType::CNAME] {
                if node.rrset(rtype).is_some() {
                    return Err(format!(
                        "service {name} also has {rtype} records in {}",
                        self.file.display()
                    ));
                }
            }
        }
        if let Found::Referral { cut_labels, .. } = self.find_wire(&wire, RecordType::A) {
            return Err(format!(
                "service {name} is below the delegation {} in {}",
                name_from_wire(wire.suffix(cut_labels)),
                self.file.display()
            ));
        }
        self.add_node(&wire);
        self.nodes
            .get_mut(wire.as_bytes())
            .expect("just added")
            .service =
            Some(u32::try_from(service).map_err(|_| format!("service {name}: too many services"))?);
        Ok(())
    }

    /// The apex SOA with the negative-caching TTL, for the authority section of NXDOMAIN and
    /// NODATA answers (RFC 2308 §3).
    pub fn negative_soa(&self) -> &Record {
        &self.negative_soa
    }

    /// [`Zone::negative_soa`] encoded without its owner name (type, class, TTL, RDLENGTH,
    /// RDATA), for answers that point the owner at the apex inside the question.
    pub fn negative_tail(&self) -> &[u8] {
        &self.negative_tail
    }

    /// Number of labels of the apex.
    pub fn origin_labels(&self) -> u8 {
        self.origin_labels
    }

    /// The apex node.
    pub fn apex(&self) -> &Node {
        &self.nodes[&self.origin_wire]
    }

    /// Number of owner names, empty non-terminals included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when the zone has no names at all (never, once loaded: the apex exists).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    // What the submodules' tests share: a zone under `example.test.` and its first lines.

    pub(super) fn origin() -> Name {
        Name::from_ascii("example.test.").unwrap()
    }

    pub(super) fn zone(text: &str) -> Result<Zone, ZoneError> {
        Zone::parse(Path::new("t.zone"), text, &origin())
    }

    pub(super) const HEAD: &str =
        "$TTL 300\n@ IN SOA ns1 host 1 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.1\n";

    /// Found by the differential property test: a repeated record keeps its first TTL, as
    /// hickory keeps it within a chunk (RFC 2136 §1.1.1 equality ignores the TTL), whether the
    /// line reader or hickory reads the repeat.
    #[test]
    fn a_repeated_record_keeps_its_first_ttl() {
        let text = format!("{HEAD}a A 192.0.2.1\n  MX 0 .\n  60 ( MX\n 0 . )\n");
        for parsed in [
            zone(&text).unwrap(),
            Zone::parse_reference(Path::new("t.zone"), &text, &origin(), true).unwrap(),
        ] {
            let n = Name::from_ascii("a.example.test.").unwrap();
            let Found::Exact(node) = parsed.find(&n, RecordType::MX) else {
                panic!("a exists")
            };
            let records = node.rrset(RecordType::MX).unwrap().records(&n);
            assert_eq!(records.len(), 1);
            assert_eq!(records[0].ttl, 300);
        }
    }

    /// Found by the `zone` fuzz target (with its dictionary): hickory keeps one ANAME per name,
    /// the later, as it does for CNAME; two ANAME lines in different chunks (a line read
    /// directly between them) kept both.
    #[test]
    fn a_later_aname_replaces_the_earlier() {
        let text = format!("{HEAD}d ANAME one\nx A 192.0.2.1\nd ANAME two\n");
        let direct = zone(&text).unwrap();
        for chunked in [true, false] {
            let reference =
                Zone::parse_reference(Path::new("t.zone"), &text, &origin(), chunked).unwrap();
            assert_eq!(direct, reference);
        }
        let n = Name::from_ascii("d.example.test.").unwrap();
        let Found::Exact(node) = direct.find(&n, RecordType::ANAME) else {
            panic!("d exists")
        };
        let records = node.rrset(RecordType::ANAME).unwrap().records(&n);
        assert_eq!(records.len(), 1);
        assert_eq!(
            records[0].data.to_string(),
            "two.example.test.",
            "{records:?}"
        );
    }
}
