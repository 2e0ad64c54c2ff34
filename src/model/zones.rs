//! The served zones as the model holds them: every zone file of the zones directory loaded,
//! found by longest-suffix match of a query name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hickory_proto::rr::Name;

use super::Builder;
use crate::config::{Config, ConfigError};
use crate::dnssec::Signer;
use crate::wire::WireName;
use crate::zone::{NameMap, Zone, ZoneError, origin_from_file_name};

impl From<ZoneError> for ConfigError {
    fn from(e: ZoneError) -> ConfigError {
        ConfigError::Zone {
            file: e.file,
            line: e.line,
            reason: e.reason,
        }
    }
}

/// The served zones, found by longest-suffix match.
#[derive(Debug, Clone, Default)]
pub struct Zones {
    list: Vec<Zone>,
    /// Zone index by lower-cased wire-format origin.
    by_origin: NameMap<usize>,
    /// The most labels of any origin: longer suffixes of a query name cannot match.
    max_labels: u8,
    /// The signer of each zone signed with DNSSEC, by zone index.
    signers: Vec<Option<Arc<Signer>>>,
}

impl Zones {
    /// The zone `qname` belongs to (the one with the longest matching origin), if any.
    pub fn find(&self, qname: &Name) -> Option<&Zone> {
        self.position(qname).map(|i| &self.list[i])
    }

    /// [`Zones::find`] for a name already in wire form.
    pub fn find_wire(&self, qname: &WireName) -> Option<&Zone> {
        self.position_wire(qname).map(|i| &self.list[i])
    }

    /// [`Zones::find`] with the zone's signer, when it is signed.
    pub fn find_signed(&self, qname: &Name) -> Option<(&Zone, Option<&Signer>)> {
        self.position(qname)
            .map(|i| (&self.list[i], self.signer_at(i)))
    }

    /// [`Zones::find_signed`] for a name already in wire form: one search gives the zone and
    /// its signer.
    pub fn find_signed_wire(&self, qname: &WireName) -> Option<(&Zone, Option<&Signer>)> {
        self.position_wire(qname)
            .map(|i| (&self.list[i], self.signer_at(i)))
    }

    /// Every signer, in zone order.
    pub fn signers(&self) -> impl Iterator<Item = &Signer> {
        self.signers.iter().flatten().map(|s| &**s)
    }

    /// The signer of `origin`'s zone, if it is signed.
    pub fn signer_of(&self, origin: &Name) -> Option<&Signer> {
        self.position(origin)
            .filter(|&i| self.list[i].origin == *origin)
            .and_then(|i| self.signer_at(i))
    }

    fn signer_at(&self, i: usize) -> Option<&Signer> {
        self.signers.get(i).and_then(Option::as_deref)
    }

    /// Keeps the signature caches of `previous`'s signers that sign with the same key, so a
    /// reload does not make every signed answer miss at once.
    pub fn adopt_signature_caches(&mut self, previous: &Zones) {
        for signer in self.signers.iter_mut().flatten() {
            let origin = signer.origin().clone();
            if let (Some(old), Some(new)) = (previous.signer_of(&origin), Arc::get_mut(signer)) {
                new.adopt_cache(old);
            }
        }
    }

    pub(super) fn set_signer(&mut self, origin: &Name, signer: Signer) -> bool {
        let Some(i) = self
            .position(origin)
            .filter(|&i| self.list[i].origin == *origin)
        else {
            return false;
        };
        self.signers.resize(self.list.len(), None);
        self.signers[i] = Some(Arc::new(signer));
        true
    }

    /// Index of the zone with the longest origin that `qname` is at or below.
    fn position(&self, qname: &Name) -> Option<usize> {
        self.position_wire(&WireName::from_name(qname)?)
    }

    fn position_wire(&self, qname: &WireName) -> Option<usize> {
        (0..=qname.label_count().min(self.max_labels))
            .rev()
            .find_map(|labels| self.by_origin.get(qname.suffix(labels)).copied())
    }

    /// Every zone.
    pub fn iter(&self) -> impl Iterator<Item = &Zone> {
        self.list.iter()
    }

    /// Number of zones.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when no zone is served.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(super) fn find_mut(&mut self, qname: &Name) -> Option<&mut Zone> {
        self.position(qname).map(|i| &mut self.list[i])
    }
}

impl Builder<'_> {
    pub(super) fn zones(&self, config: &Config) -> Result<Zones, ConfigError> {
        let dir_value = &config.dns.zones;
        let base = self.src.path.parent().unwrap_or(Path::new("."));
        let dir = base.join(dir_value.get_ref());
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                return self.err(
                    dir_value.span(),
                    format!("dns.zones: cannot read directory {}: {e}", dir.display()),
                );
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                !name.starts_with('.') && !name.ends_with('~')
            })
            .collect();
        files.sort();
        let mut zones = Zones::default();
        let mut seen: BTreeMap<Name, PathBuf> = BTreeMap::new();
        for file in files {
            let Some(origin) = origin_from_file_name(&file) else {
                return self.err(
                    dir_value.span(),
                    format!(
                        "{}: file name is not a zone name (expected e.g. example.test.zone)",
                        file.display()
                    ),
                );
            };
            if let Some(other) = seen.get(&origin) {
                return self.err(
                    dir_value.span(),
                    format!(
                        "zone {origin} is defined twice: {} and {}",
                        other.display(),
                        file.display()
                    ),
                );
            }
            let zone = Zone::load(&file, &origin)?;
            let key = WireName::from_name(&origin)
                .map(|w| Box::<[u8]>::from(w.as_bytes()))
                .unwrap_or_default();
            zones.max_labels = zones.max_labels.max(origin.num_labels());
            seen.insert(origin, file);
            zones.by_origin.insert(key, zones.list.len());
            zones.list.push(zone);
        }
        if zones.list.is_empty() {
            return self.err(
                dir_value.span(),
                format!("dns.zones: no zone files in {}", dir.display()),
            );
        }
        Ok(zones)
    }
}
