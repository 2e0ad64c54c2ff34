//! Authoritative zone data: RFC 1035 master files read with hickory-proto's parser, stored as
//! the wire-format records an answer copies, keyed by lower-cased wire names, so the
//! RFC 1034 §4.3.2 questions (exact match, zone cut, empty non-terminal, wildcard source) are hash
//! lookups on slices of the query and a million-record zone stays small.
//!
//! Plain one-line records (A, AAAA, CNAME, NS, PTR, MX, TXT), almost all of a large zone, are read
//! straight into wire format by [`lines`]; every other entry goes to hickory's parser in chunks of
//! at most [`CHUNK_ENTRIES`] entries, each preceded by the `$ORIGIN` and `$TTL` in force there, so
//! the parser's own tree of records never holds more than one chunk. Both give the same zone:
//! RRsets take records as hickory's `RecordSet` does, whichever chunk they come from.

mod lines;

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};

use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{
    BinDecoder, BinEncodable, BinEncoder, NameEncoding, Restrict,
};
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

/// Entries handed to the parser at a time (see the module docs).
const CHUNK_ENTRIES: usize = 25;

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

/// The RDATA of a parsed record, encoded with uncompressed names into `out`.
fn encode_rdata(record: &Record, out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    let mut encoder = BinEncoder::new(out);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    record
        .data
        .emit(&mut encoder)
        .map_err(|e| format!("cannot encode {} record: {e}", record.record_type()))
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

/// A domain name in lower-cased, uncompressed wire format with the offset of each label, kept
/// on the stack: what zone lookups take.
#[derive(Clone)]
pub struct WireName {
    buf: [u8; 255],
    len: u8,
    starts: [u8; 128],
    labels: u8,
}

impl WireName {
    fn empty() -> WireName {
        WireName {
            buf: [0; 255],
            len: 0,
            starts: [0; 128],
            labels: 0,
        }
    }

    /// Appends one label (lower-cased). False when the name would exceed 255 bytes.
    fn push_label(&mut self, label: &[u8]) -> bool {
        let at = usize::from(self.len);
        // Room for the length byte, the label and the root label that ends the name.
        if label.is_empty() || label.len() > 63 || at + 1 + label.len() + 1 > 255 {
            return false;
        }
        self.starts[usize::from(self.labels)] = self.len;
        self.buf[at] = label.len() as u8;
        for (dst, src) in self.buf[at + 1..at + 1 + label.len()].iter_mut().zip(label) {
            *dst = src.to_ascii_lowercase();
        }
        self.len += 1 + label.len() as u8;
        self.labels += 1;
        true
    }

    fn finish(mut self) -> WireName {
        self.buf[usize::from(self.len)] = 0;
        self.len += 1;
        self
    }

    /// The name of a hickory [`Name`] (treated as fully qualified).
    pub fn from_name(name: &Name) -> Option<WireName> {
        let mut w = WireName::empty();
        for label in name.iter() {
            if !w.push_label(label) {
                return None;
            }
        }
        Some(w.finish())
    }

    /// Reads an uncompressed name at `at` in `packet`: the name and the offset just past it.
    /// `None` for a compression pointer, a truncated name or one over 255 bytes.
    pub fn parse(packet: &[u8], mut at: usize) -> Option<(WireName, usize)> {
        let mut w = WireName::empty();
        loop {
            let len = usize::from(*packet.get(at)?);
            if len == 0 {
                return Some((w.finish(), at + 1));
            }
            if len > 63 {
                return None;
            }
            let label = packet.get(at + 1..at + 1 + len)?;
            if !w.push_label(label) {
                return None;
            }
            at += 1 + len;
        }
    }

    /// The whole name, root label included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// Number of labels, the root not counted.
    pub fn label_count(&self) -> u8 {
        self.labels
    }

    /// The name made of the last `labels` labels (0: the root).
    pub fn suffix(&self, labels: u8) -> &[u8] {
        let labels = labels.min(self.labels);
        let start = if labels == 0 {
            self.len.saturating_sub(1)
        } else {
            self.starts[usize::from(self.labels - labels)]
        };
        &self.buf[usize::from(start)..usize::from(self.len)]
    }
}

/// The labels of a wire-format name.
fn wire_labels(wire: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let len = usize::from(*wire.get(at)?);
        if len == 0 {
            return None;
        }
        let label = wire.get(at + 1..at + 1 + len)?;
        at += 1 + len;
        Some(label)
    })
}

/// A hickory [`Name`] from a wire-format name (for the slow path and messages).
pub fn name_from_wire(wire: &[u8]) -> Name {
    let mut name = Name::from_labels(wire_labels(wire)).unwrap_or_else(|_| Name::root());
    name.set_fqdn(true);
    name
}

/// FNV-1a over the key bytes: zone keys are short names chosen by the operator, and queries
/// only look up, never insert, so a keyed hash buys nothing here and costs per query.
#[derive(Default)]
pub struct NameHasher(u64);

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        crate::model::mix(self.0)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Hash map keyed by lower-cased wire names.
pub type NameMap<V> = HashMap<Box<[u8]>, V, BuildHasherDefault<NameHasher>>;

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
        /// Number of labels of the cut's name (a suffix of the query name).
        cut_labels: u8,
        /// The node at the cut.
        cut: &'z Node,
    },
    /// The name does not exist and no wildcard covers it.
    NxDomain,
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
    /// Reads and validates a master file for `origin`.
    pub fn load(path: &Path, origin: &Name) -> Result<Zone, ZoneError> {
        let text = std::fs::read_to_string(path).map_err(|e| ZoneError {
            file: path.to_path_buf(),
            line: 1,
            reason: format!("cannot read zone file: {e}"),
        })?;
        let flat = flatten_groups(&text).map_err(|(line, reason)| ZoneError {
            file: path.to_path_buf(),
            line,
            reason,
        })?;
        match flat {
            Cow::Borrowed(_) => Zone::parse_flat(path, &text, origin, Reader::Lines),
            Cow::Owned(flat) => {
                // Only the flattened copy is needed from here on: a large file is not held
                // twice.
                drop(text);
                Zone::parse_flat(path, &flat, origin, Reader::Lines)
            }
        }
    }

    /// Parses master-file text for `origin`; `path` is used for `$INCLUDE` and in errors.
    pub fn parse(path: &Path, text: &str, origin: &Name) -> Result<Zone, ZoneError> {
        Zone::parse_with(path, text, origin, Reader::Lines)
    }

    /// [`Zone::parse`] with every entry read by hickory's parser, in chunks as usual or (with
    /// `chunked` false) in one piece: the references the line reader and the chunking are
    /// checked against (tests and the `zone` fuzz target).
    #[doc(hidden)]
    pub fn parse_reference(
        path: &Path,
        text: &str,
        origin: &Name,
        chunked: bool,
    ) -> Result<Zone, ZoneError> {
        let reader = if chunked {
            Reader::HickoryOnly
        } else {
            Reader::HickoryUnchunked
        };
        Zone::parse_with(path, text, origin, reader)
    }

    fn parse_with(
        path: &Path,
        text: &str,
        origin: &Name,
        reader: Reader,
    ) -> Result<Zone, ZoneError> {
        let flat = flatten_groups(text).map_err(|(line, reason)| ZoneError {
            file: path.to_path_buf(),
            line,
            reason,
        })?;
        Zone::parse_flat(path, &flat, origin, reader)
    }

    /// [`Zone::parse`] on text [`flatten_groups`] already rewrote.
    fn parse_flat(
        path: &Path,
        text: &str,
        origin: &Name,
        reader: Reader,
    ) -> Result<Zone, ZoneError> {
        let err = |line: usize, reason: String| ZoneError {
            file: path.to_path_buf(),
            line,
            reason,
        };
        let origin = origin.to_lowercase();
        let origin_wire = WireName::from_name(&origin)
            .ok_or_else(|| err(1, format!("zone name {origin} is too long")))?;
        let mut zone = Zone {
            origin_labels: label_count(&origin),
            origin_wire: origin_wire.as_bytes().into(),
            origin: origin.clone(),
            file: path.to_path_buf(),
            nodes: NameMap::with_capacity_and_hasher(owner_lines(text), Default::default()),
            negative_soa: Record::from_rdata(origin.clone(), 0, RData::Update0(RecordType::SOA)),
            negative_tail: Box::default(),
        };
        zone.add_node(&origin_wire);

        let mut rdata = Vec::new();
        for_each_entry(path, text, &origin, reader, |entry| match entry {
            Entry::Parsed(record) => {
                let owner = WireName::from_name(&record.name)
                    .ok_or_else(|| format!("{}: name too long", record.name));
                owner
                    .and_then(|owner| {
                        encode_rdata(record, &mut rdata)?;
                        zone.add_wire(
                            &owner,
                            record.record_type(),
                            record.dns_class,
                            record.ttl,
                            &rdata,
                        )
                    })
                    .map_err(|reason| err(find_line(text, &record.name, &origin), reason))
            }
            Entry::Read {
                owner,
                rtype,
                ttl,
                rdata,
                line,
            } => zone
                .add_wire(owner, rtype, DNSClass::IN, ttl, rdata)
                .map_err(|reason| err(line, reason)),
        })?;

        // Keep a stable order of RRsets per node: by type number, so ANY answers are
        // deterministic.
        for node in zone.nodes.values_mut() {
            node.rrsets.sort_by_key(|s| u16::from(s.rtype));
        }

        zone.validate(text)?;
        Ok(zone)
    }

    /// Stores one record at its (lower-cased) owner.
    fn add_wire(
        &mut self,
        owner: &WireName,
        rtype: RecordType,
        class: DNSClass,
        ttl: u32,
        rdata: &[u8],
    ) -> Result<(), String> {
        if owner.label_count() < self.origin_labels
            || owner.suffix(self.origin_labels) != &*self.origin_wire
        {
            return Err(format!(
                "{} {rtype} is outside zone {}",
                name_from_wire(owner.as_bytes()),
                self.origin
            ));
        }
        if class != DNSClass::IN {
            return Err(format!(
                "{} {rtype}: only class IN is served, not {class}",
                name_from_wire(owner.as_bytes()),
            ));
        }
        let node = match self.nodes.get_mut(owner.as_bytes()) {
            Some(node) => node,
            None => {
                self.add_node(owner);
                self.nodes
                    .get_mut(owner.as_bytes())
                    .expect("add_node inserted it")
            }
        };
        let set = match node.rrsets.iter().position(|s| s.rtype == rtype) {
            Some(i) => &mut node.rrsets[i],
            None => {
                let mut sets = std::mem::take(&mut node.rrsets).into_vec();
                sets.push(RrSet {
                    rtype,
                    count: 0,
                    wire: Box::default(),
                });
                node.rrsets = sets.into_boxed_slice();
                node.rrsets.last_mut().expect("just pushed")
            }
        };
        set.push(class, ttl, rdata)
    }

    fn validate(&mut self, text: &str) -> Result<(), ZoneError> {
        let err = |line: usize, reason: String| ZoneError {
            file: self.file.clone(),
            line,
            reason,
        };
        let apex = self.apex();
        let soa = match apex.rrset(RecordType::SOA) {
            Some(set) if set.len() == 1 => set.records(&self.origin).remove(0),
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
        let mut tail = RrSet {
            rtype: RecordType::SOA,
            count: 0,
            wire: Box::default(),
        };
        let mut rdata = Vec::new();
        encode_rdata(&negative, &mut rdata)
            .and_then(|()| tail.push(negative.dns_class, negative.ttl, &rdata))
            .map_err(|reason| err(1, reason))?;
        self.negative_tail = tail.wire[OWNER_IS_QNAME.len()..].into();
        self.negative_soa = negative;

        let mut cuts = Vec::new();
        for (key, node) in &self.nodes {
            let at_apex = **key == *self.origin_wire;
            let name = || name_from_wire(key);
            if node.rrset(RecordType::CNAME).is_some() && node.rrsets.len() > 1 {
                let name = name();
                return Err(err(
                    find_line(text, &name, &self.origin),
                    format!("{name} has a CNAME and other data (RFC 1034 §3.6.2)"),
                ));
            }
            if !at_apex && node.rrset(RecordType::SOA).is_some() {
                let name = name();
                return Err(err(
                    find_line(text, &name, &self.origin),
                    format!(
                        "SOA record at {name}, which is not the apex of {}",
                        self.origin
                    ),
                ));
            }
            if !at_apex && node.rrset(RecordType::NS).is_some() {
                cuts.push(key.clone());
            }
        }
        for cut in cuts {
            self.nodes.get_mut(&cut).expect("cut exists").cut = true;
        }
        Ok(())
    }

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

    /// The node at exactly `name`, ignoring zone cuts (used for glue).
    pub fn node(&self, name: &Name) -> Option<&Node> {
        self.nodes.get(WireName::from_name(name)?.as_bytes())
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
        match WireName::from_name(qname) {
            Some(wire) => self.find_wire(&wire, qtype),
            None => Found::NxDomain,
        }
    }

    /// [`Zone::find`] for a name already in wire form.
    pub fn find_wire(&self, qname: &WireName, qtype: RecordType) -> Found<'_> {
        let qlabels = qname.label_count();
        let mut encloser = self.origin_labels;
        let mut exact = None;
        for labels in self.origin_labels..=qlabels {
            let Some(node) = self.nodes.get(qname.suffix(labels)) else {
                break;
            };
            // The DS RRset at a cut belongs to the parent (RFC 4035 §3.1.4.1).
            if node.cut && !(labels == qlabels && qtype == RecordType::DS) {
                return Found::Referral {
                    cut_labels: labels,
                    cut: node,
                };
            }
            encloser = labels;
            exact = Some(node);
        }
        if encloser == qlabels
            && let Some(node) = exact
        {
            return Found::Exact(node);
        }
        // RFC 4592 §3.3.1: the source of synthesis is `*.` + the closest encloser.
        let closest = qname.suffix(encloser);
        let mut wild = [0u8; 257];
        wild[0] = 1;
        wild[1] = b'*';
        wild[2..2 + closest.len()].copy_from_slice(closest);
        match self.nodes.get(&wild[..2 + closest.len()]) {
            Some(node) => Found::Wildcard(node),
            None => Found::NxDomain,
        }
    }
}

/// About the number of names: lines that start with an owner other than the line before's, so
/// the map is sized once instead of growing (and briefly holding two tables) while a large zone
/// loads, and not sized for every record either (a table twice too large is most of a zone's
/// memory).
fn owner_lines(text: &str) -> usize {
    let mut previous = "";
    let mut owners = 1;
    for line in text.split('\n') {
        if line.starts_with(|c: char| c.is_whitespace() || c == '$') {
            continue;
        }
        let owner = line.split([' ', '\t']).next().unwrap_or("");
        if !owner.is_empty() && owner != previous {
            owners += 1;
            previous = owner;
        }
    }
    owners
}

/// Which entries [`lines`] reads directly.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reader {
    /// Plain one-line records (the default).
    Lines,
    /// None: hickory reads everything (the reference).
    HickoryOnly,
    /// None, and hickory reads the whole file at once.
    HickoryUnchunked,
}

/// One entry of a master file, as it reaches the zone.
enum Entry<'a> {
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
fn for_each_entry(
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

/// The wire form of `name` with its labels as hickory holds them (case kept).
fn case_preserving_wire(name: &Name) -> Vec<u8> {
    let mut wire = Vec::with_capacity(usize::from(name.len() as u8) + 2);
    for label in name.iter() {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label);
    }
    wire.push(0);
    wire
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

/// Rewrites every parenthesised multi-line entry onto its first line (RFC 1035 §5.1 grouping),
/// drops comments, and pads with empty lines so every entry keeps its line number.
///
/// hickory-proto's lexer treats `"` inside parentheses as an ordinary character, so
/// `TXT ( "a" "b" )` would load with the quotes in the data; on one line it is read correctly.
fn flatten_groups(text: &str) -> Result<Cow<'_, str>, (usize, String)> {
    if text.bytes().any(|b| matches!(b, b'(' | b')' | b';')) {
        flatten_full(text).map(Cow::Owned)
    } else {
        // Nothing to rewrite (no groups, no comments): the text stands as it is, once its
        // quoting is checked as `flatten_full` checks it.
        check_quotes(text).map(|()| Cow::Borrowed(text))
    }
}

/// Where a character stands with respect to quoting, following hickory's lexer: a `"` opens a
/// string only where a word starts (at the start of a line, after blanks, after a string or a
/// parenthesis), elsewhere it is an ordinary character; inside a string `\` escapes the next
/// character. Unlike the lexer, a string may not run past the end of its line, so that every
/// line of the flattened text is one entry for both the line reader and the chunker.
#[derive(Default)]
struct Quoting {
    in_quote: bool,
    escaped: bool,
    word_start: bool,
}

impl Quoting {
    fn new_line(&mut self) {
        self.escaped = false;
        self.word_start = true;
    }

    /// Steps over `c` (not a newline); true when it is inside a string or is one of its quotes.
    fn step(&mut self, c: char) -> bool {
        if self.in_quote {
            if self.escaped {
                self.escaped = false;
            } else if c == '\\' {
                self.escaped = true;
            } else if c == '"' {
                self.in_quote = false;
                self.word_start = true;
            }
            return true;
        }
        if c == '"' && self.word_start {
            self.in_quote = true;
            return true;
        }
        self.word_start = c.is_whitespace() || c == '(' || c == ')';
        false
    }
}

/// The errors [`flatten_full`] gives a text without parentheses and comments.
fn check_quotes(text: &str) -> Result<(), (usize, String)> {
    let mut quoting = Quoting {
        word_start: true,
        ..Quoting::default()
    };
    for (index, line) in text.split('\n').enumerate() {
        quoting.new_line();
        for c in line.chars() {
            quoting.step(c);
        }
        if quoting.in_quote {
            return Err((index + 1, "unterminated quoted string".to_string()));
        }
    }
    Ok(())
}

/// [`flatten_groups`] for a text with groups or comments: a rewritten copy.
fn flatten_full(text: &str) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(text.len());
    let mut quoting = Quoting {
        word_start: true,
        ..Quoting::default()
    };
    let (mut depth, mut escaped, mut in_comment) = (0u32, false, false);
    let (mut line, mut open_line, mut pending) = (1usize, 0usize, 0usize);
    for c in text.chars() {
        if c == '\n' {
            if quoting.in_quote {
                return Err((line, "unterminated quoted string".to_string()));
            }
            line += 1;
            in_comment = false;
            escaped = false;
            quoting.new_line();
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
        if !quoting.in_quote && escaped {
            // `\(`, `\)` and `\;` outside strings are kept as written.
            escaped = false;
            quoting.step(c);
            out.push(c);
            continue;
        }
        if quoting.step(c) {
            out.push(c);
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                out.push(c);
            }
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
    if quoting.in_quote {
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
    } else if !origin.zone_of(name) {
        absolute.clone()
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

    fn origin() -> Name {
        Name::from_ascii("example.test.").unwrap()
    }

    fn zone(text: &str) -> Result<Zone, ZoneError> {
        Zone::parse(Path::new("t.zone"), text, &origin())
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
        let RData::TXT(txt) = &node.rrset(RecordType::TXT).unwrap().records(&n)[0].data else {
            panic!("TXT data")
        };
        let strings: Vec<&[u8]> = txt.txt_data.iter().map(|s| &s[..]).collect();
        assert_eq!(strings, [&b"a b"[..], &b"c;d"[..]]);
        let e = zone(&format!("{HEAD}x TXT ( \"a\"\ny A 192.0.2.1\n")).unwrap_err();
        assert_eq!((e.line, e.reason.as_str()), (5, "'(' is never closed"));
    }

    #[test]
    fn text_without_groups_is_checked_as_flattening_would() {
        for text in [
            "a TXT \"x\"\n",
            "a TXT \"x\n\"\n",
            "a TXT \"x\\\"\n",
            "a TXT x\\\n\"y\"\n",
            "a TXT x\"y \"z\n",
            "a TXT \"x",
            "a TXT \\\"x\n",
            "",
        ] {
            let quick = flatten_groups(text).map(|flat| flat.into_owned());
            assert_eq!(quick, flatten_full(text), "{text:?}");
        }
    }

    /// Found by the differential property test: a name outside the zone, in a multi-line entry
    /// read by hickory, made locating its line underflow.
    #[test]
    fn a_name_outside_the_zone_is_refused_with_its_line() {
        let e = zone(&format!("{HEAD}other.   ( A\n 192.0.2.1 ) ; note\n")).unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        assert!(e.reason.contains("outside zone"), "{e}");
    }

    /// Also found by it: a repeated record keeps its first TTL, as hickory keeps it within a
    /// chunk (RFC 2136 §1.1.1 equality ignores the TTL), whether the line reader or hickory
    /// reads the repeat.
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

    #[test]
    fn wire_names_lower_case_and_give_suffixes() {
        let (w, end) = WireName::parse(b"\x03WwW\x07Example\x04test\x00rest", 0).unwrap();
        assert_eq!(w.as_bytes(), b"\x03www\x07example\x04test\x00");
        assert_eq!((w.label_count(), end), (3, 18));
        assert_eq!(w.suffix(2), b"\x07example\x04test\x00");
        assert_eq!(w.suffix(0), b"\x00");
        assert_eq!(w.suffix(3), w.as_bytes());
        assert!(
            WireName::parse(b"\x03www\xc0\x0c", 0).is_none(),
            "pointers are not read"
        );
        assert!(WireName::parse(b"\x03ww", 0).is_none(), "truncated");
        let long = [&[63u8][..], &[b'a'; 63]].concat().repeat(4);
        assert!(
            WireName::parse(&[&long[..], &[0]].concat(), 0).is_none(),
            "over 255 bytes"
        );
        assert_eq!(
            name_from_wire(w.as_bytes()),
            Name::from_ascii("www.example.test.").unwrap()
        );
    }
}
