//! The fixed hashes every decision that must agree across instances is made with: hash
//! steering and selection, the director's source hashing and member identities, and the keys
//! of the rate limiter's and the zone's tables. One place, so DNS and the director cannot hash
//! the same client differently, and nothing depends on a per-process seed.

use std::net::IpAddr;

use ipnet::IpNet;

/// A hash that is the same on every platform, instance and release (64-bit FNV-1a, then
/// [`mix`] to spread the bits), so hash steering and selection agree across the name servers
/// of one zone and survive restarts. Not for untrusted-key hash tables.
pub fn stable_hash(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// The SplitMix64 finaliser: a bijection that spreads every input bit over the output.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A stable key of one address (a client, or a backend's address).
pub fn addr_key(addr: IpAddr) -> u64 {
    match addr {
        IpAddr::V4(v4) => mix(u64::from(u32::from(v4))),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            mix((bits >> 64) as u64 ^ mix(bits as u64))
        }
    }
}

/// A stable key of a network (its address bits and prefix length).
pub fn network_key(net: IpNet) -> u64 {
    let mut bytes = [0u8; 17];
    match net.network() {
        IpAddr::V4(a) => bytes[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => bytes[..16].copy_from_slice(&a.octets()),
    }
    bytes[16] = net.prefix_len();
    stable_hash(&bytes)
}

/// Weighted rendezvous (highest random weight) score of `item` for `key`: the highest score
/// wins. `-w / ln(u)` with `u` uniform in (0, 1] from the pair's hash makes each item win in
/// proportion to its weight (0 counts as 1), and removing an item only moves the keys it won.
pub fn rendezvous(key: u64, item: u64, weight: u32) -> f64 {
    let h = mix(key ^ item.rotate_left(17));
    // 53 random bits, shifted into (0, 1].
    let u = ((h >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let w = f64::from(weight.max(1));
    -w / u.ln().min(-f64::MIN_POSITIVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_fixed_values() {
        // Instances of one fleet and releases must agree: these never change.
        assert_eq!(stable_hash(b""), mix(0xcbf2_9ce4_8422_2325));
        assert_eq!(mix(0), 0);
        assert_ne!(
            addr_key("192.0.2.1".parse().unwrap()),
            addr_key("192.0.2.2".parse().unwrap())
        );
        let a: IpNet = "192.0.2.0/24".parse().unwrap();
        let b: IpNet = "192.0.2.0/25".parse().unwrap();
        assert_ne!(network_key(a), network_key(b));
    }

    #[test]
    fn rendezvous_follows_weights() {
        let mut wins = [0u32; 2];
        for key in 0..20_000u64 {
            let a = rendezvous(mix(key), 1, 100);
            let b = rendezvous(mix(key), 2, 300);
            wins[usize::from(b > a)] += 1;
        }
        let share = f64::from(wins[1]) / 20_000.0;
        assert!(
            (share - 0.75).abs() < 0.02,
            "share of the weight-300 item: {share}"
        );
    }
}
