//! Where a query name lands in a zone, following RFC 1034 §4.3.2: an exact match (possibly an
//! empty non-terminal), a zone cut, a wildcard (RFC 4592), or no such name.

use hickory_proto::rr::{Name, RecordType};

use super::{Node, WireName, Zone};

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

impl Zone {
    /// The node at exactly `name`, ignoring zone cuts (used for glue).
    pub fn node(&self, name: &Name) -> Option<&Node> {
        self.nodes.get(WireName::from_name(name)?.as_bytes())
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

#[cfg(test)]
mod tests {
    use hickory_proto::rr::{Name, RecordType};

    use super::*;
    use crate::zone::tests::{HEAD, zone};

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
