//! `[dnssec."zone."]` validated: the zone is served, the key file is readable and holds a key
//! Meridian signs with (ECDSA P-256 or Ed25519, PKCS#8), the signature lifetime is sane, and the
//! zone file holds none of the records signing makes (DNSKEY, CDS, CDNSKEY, RRSIG, NSEC).

use std::path::Path;
use std::time::Duration;

use hickory_proto::rr::RecordType;

use super::Builder;
use super::zones::Zones;
use crate::config::{Config, ConfigError};
use crate::dnssec::{Signer, load_key};

/// Signature lifetime when none is configured.
pub const DEFAULT_SIGNATURE_LIFETIME: Duration = Duration::from_secs(2 * 86_400);

/// Records a signed zone's file may not hold: Meridian makes them.
const MADE_BY_SIGNING: [RecordType; 6] = [
    RecordType::DNSKEY,
    RecordType::CDS,
    RecordType::CDNSKEY,
    RecordType::RRSIG,
    RecordType::NSEC,
    RecordType::NSEC3,
];

impl Builder<'_> {
    /// Builds the signer of every `[dnssec]` zone into `zones`.
    pub(super) fn dnssec(&self, config: &Config, zones: &mut Zones) -> Result<(), ConfigError> {
        let base = self.src.path.parent().unwrap_or(Path::new("."));
        for (name, d) in &config.dnssec {
            let key = format!("dnssec.\"{name}\"");
            let origin = self.fqdn(d.span(), &key, name)?;
            let Some(zone) = zones.iter().find(|z| z.origin == origin) else {
                return self.err(d.span(), format!("{key}: {origin} is not a served zone"));
            };
            if let Some(set) = zone.node(&origin).and_then(|node| {
                node.rrsets
                    .iter()
                    .find(|s| MADE_BY_SIGNING.contains(&s.rtype))
            }) {
                return self.err(
                    d.span(),
                    format!(
                        "{key}: the zone file has {} records at the apex; a signed zone's \
                         DNSKEY, CDS, CDNSKEY, RRSIG and NSEC records are made by Meridian",
                        set.rtype
                    ),
                );
            }
            let cfg = d.get_ref();
            let lifetime = match &cfg.signature_lifetime {
                None => DEFAULT_SIGNATURE_LIFETIME,
                Some(v) => {
                    let lifetime = self.duration(&format!("{key}.signature_lifetime"), v)?;
                    if lifetime < Duration::from_secs(3600) || lifetime.as_secs() > 90 * 86_400 {
                        return self.err(
                            v.span(),
                            format!("{key}.signature_lifetime must be between 1h and 90d"),
                        );
                    }
                    lifetime
                }
            };
            let path = base.join(cfg.key.get_ref());
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    return self.err(
                        cfg.key.span(),
                        format!("{key}.key: cannot read {}: {e}", path.display()),
                    );
                }
            };
            let signer = load_key(&bytes)
                .and_then(|k| Signer::new(origin.clone(), k, lifetime.as_secs() as u32));
            let signer = match signer {
                Ok(s) => s,
                Err(e) => {
                    return self.err(
                        cfg.key.span(),
                        format!("{key}.key: {}: {e}", path.display()),
                    );
                }
            };
            zones.set_signer(&origin, signer);
        }
        Ok(())
    }
}
