//! Names as the zone keeps them: conversions from wire format to hickory's [`Name`], label
//! counts, and the hash map keyed by lower-cased wire names ([`crate::wire::WireName`]).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use hickory_proto::rr::Name;

/// The labels of a wire-format name.
pub(super) fn wire_labels(wire: &[u8]) -> impl Iterator<Item = &[u8]> {
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
        crate::hash::mix(self.0)
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

/// The wire form of `name` with its labels as hickory holds them (case kept).
pub(super) fn case_preserving_wire(name: &Name) -> Vec<u8> {
    let mut wire = Vec::with_capacity(usize::from(name.len() as u8) + 2);
    for label in name.iter() {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label);
    }
    wire.push(0);
    wire
}

/// Number of labels in `name`, a leading `*` included (hickory's `num_labels` leaves it out,
/// as RRSIG label counts do).
pub fn label_count(name: &Name) -> u8 {
    name.iter().len() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_convert_from_wire() {
        assert_eq!(
            name_from_wire(b"\x03www\x07example\x04test\x00"),
            Name::from_ascii("www.example.test.").unwrap()
        );
    }
}
