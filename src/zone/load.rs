//! A master file read into a [`Zone`]: the text flattened, its entries stored as RRsets at their
//! owners, then the checks a zone must pass to be served (one SOA and NS records at the apex, no
//! CNAME beside other data, no SOA below the apex), with zone cuts marked.

use std::borrow::Cow;
use std::path::Path;

use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use super::entries::{Entry, Reader, for_each_entry};
use super::flatten::{flatten_groups, owner_lines};
use super::{
    NameMap, OWNER_IS_QNAME, RrSet, WireName, Zone, ZoneError, label_count, name_from_wire,
};

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
    use crate::zone::tests::{HEAD, zone};

    #[test]
    fn negative_ttl_is_min_of_soa_ttl_and_minimum() {
        let z = zone(HEAD).unwrap();
        assert_eq!(z.negative_soa().ttl, 60);
    }

    /// Found by the differential property test: a name outside the zone, in a multi-line entry
    /// read by hickory, made locating its line underflow.
    #[test]
    fn a_name_outside_the_zone_is_refused_with_its_line() {
        let e = zone(&format!("{HEAD}other.   ( A\n 192.0.2.1 ) ; note\n")).unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        assert!(e.reason.contains("outside zone"), "{e}");
    }

    #[test]
    fn missing_soa_and_ns_are_refused() {
        let e = zone("$TTL 60\n@ NS ns1\n").unwrap_err();
        assert!(e.reason.contains("no SOA"), "{e}");
        let e = zone("$TTL 60\n@ SOA ns1 host 1 2 3 4 5\n").unwrap_err();
        assert!(e.reason.contains("no NS"), "{e}");
    }
}
