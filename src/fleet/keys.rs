//! The fleet's etcd key layout under the prefix: `instances/NAME`,
//! `observations/NAME/POOL/MEMBER` and `overrides/POOL/MEMBER`.

use crate::health::fleet::MemberKey;

/// Builds and reads the keys of one fleet, for one instance.
#[derive(Debug, Clone)]
pub struct Keys {
    root: String,
    me: String,
}

/// What a key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// An instance's registration.
    Instance(String),
    /// An instance's observation of a member.
    Observation(String, MemberKey),
    /// A member's override.
    Override(MemberKey),
}

impl Keys {
    /// The keys under `prefix` for instance `me`.
    pub fn new(prefix: &str, me: &str) -> Keys {
        Keys {
            root: format!("{prefix}/"),
            me: me.to_string(),
        }
    }

    /// This instance's name.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// Everything the fleet writes (the prefix, with its `/`).
    pub fn root(&self) -> String {
        self.root.clone()
    }

    /// The registration of instance `name`.
    pub fn instance(&self, name: &str) -> String {
        format!("{}instances/{name}", self.root)
    }

    /// This instance's observations (a prefix).
    pub fn own_observations(&self) -> String {
        format!("{}observations/{}/", self.root, self.me)
    }

    /// Instance `name`'s observation of `member`.
    pub fn observation(&self, name: &str, member: &MemberKey) -> String {
        format!(
            "{}observations/{name}/{}/{}",
            self.root, member.pool, member.member
        )
    }

    /// The override of `member`.
    pub fn override_key(&self, member: &MemberKey) -> String {
        format!("{}overrides/{}/{}", self.root, member.pool, member.member)
    }

    /// What `key` names, if it is one of the fleet's. Pool names may hold `/`; instance
    /// names and member ids never do.
    pub fn parse(&self, key: &str) -> Option<Key> {
        let rest = key.strip_prefix(&self.root)?;
        let member = |s: &str| {
            s.rsplit_once('/').map(|(pool, member)| MemberKey {
                pool: pool.to_string(),
                member: member.to_string(),
            })
        };
        if let Some(name) = rest.strip_prefix("instances/") {
            return (!name.is_empty() && !name.contains('/')).then(|| Key::Instance(name.into()));
        }
        if let Some(rest) = rest.strip_prefix("observations/") {
            let (name, m) = rest.split_once('/')?;
            return Some(Key::Observation(name.to_string(), member(m)?));
        }
        if let Some(rest) = rest.strip_prefix("overrides/") {
            return Some(Key::Override(member(rest)?));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_as_what_they_name() {
        let keys = Keys::new("/meridian/prod", "ns1");
        let m = MemberKey {
            pool: "eu/west".into(),
            member: "[2001:db8::1]:443".into(),
        };
        assert_eq!(
            keys.parse(&keys.instance("ns2")),
            Some(Key::Instance("ns2".into()))
        );
        assert_eq!(
            keys.parse(&keys.observation("ns2", &m)),
            Some(Key::Observation("ns2".into(), m.clone()))
        );
        assert_eq!(keys.parse(&keys.override_key(&m)), Some(Key::Override(m)));
        assert!(
            keys.own_observations()
                .starts_with("/meridian/prod/observations/ns1/")
        );
        assert_eq!(keys.parse("/meridian/prodx/instances/a"), None);
        assert_eq!(keys.parse("/meridian/prod/other/a"), None);
    }
}
