//! Domain names as lookups take them: lower-cased, uncompressed wire format kept on the stack,
//! with the offset of each label, so a query's name is read once and compared as bytes.

use hickory_proto::rr::Name;

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
    /// A name with no labels yet; [`WireName::push_label`] adds them, [`WireName::finish`]
    /// ends it with the root.
    pub fn empty() -> WireName {
        WireName {
            buf: [0; 255],
            len: 0,
            starts: [0; 128],
            labels: 0,
        }
    }

    /// Appends one label (lower-cased). False when the name would exceed 255 bytes.
    pub fn push_label(&mut self, label: &[u8]) -> bool {
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

    /// Ends the name with the root label.
    pub fn finish(mut self) -> WireName {
        self.end_with_root();
        self
    }

    fn end_with_root(&mut self) {
        self.buf[usize::from(self.len)] = 0;
        self.len += 1;
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
    pub fn parse(packet: &[u8], at: usize) -> Option<(WireName, usize)> {
        let mut w = WireName::empty();
        let end = w.read_into(packet, at)?;
        Some((w, end))
    }

    /// [`WireName::parse`] into `self` (whatever it held before), so a caller keeps the name
    /// where it will use it instead of moving 385 bytes: the offset just past the name.
    #[inline]
    pub fn read_into(&mut self, packet: &[u8], mut at: usize) -> Option<usize> {
        self.len = 0;
        self.labels = 0;
        loop {
            let len = usize::from(*packet.get(at)?);
            if len == 0 {
                self.end_with_root();
                return Some(at + 1);
            }
            if len > 63 {
                return None;
            }
            let label = packet.get(at + 1..at + 1 + len)?;
            if !self.push_label(label) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
            WireName::from_name(&Name::from_ascii("WWW.example.test.").unwrap())
                .unwrap()
                .as_bytes(),
            w.as_bytes()
        );
    }
}
