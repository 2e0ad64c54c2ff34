//! The PROXY protocol header (HAProxy's "The PROXY protocol", versions 1 and 2) that tells a
//! backend who the client is, since the backend sees the director's address. Pure encoding: the
//! connection path writes the bytes to the backend before anything the client sent.

use std::net::{IpAddr, SocketAddr};

use crate::model::ProxyVersion;

/// The 12-byte signature that starts every v2 header (spec §2.2).
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The header for a connection from `client` to `local` (the address the client connected
/// to). IPv4-mapped IPv6 addresses (a dual-stack listener) are sent as IPv4.
pub fn header(version: ProxyVersion, client: SocketAddr, local: SocketAddr) -> Vec<u8> {
    let src = (client.ip().to_canonical(), client.port());
    let dst = (local.ip().to_canonical(), local.port());
    match version {
        ProxyVersion::V1 => v1(src, dst),
        ProxyVersion::V2 => v2(src, dst),
    }
}

/// Spec §2.1: `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n`, or `PROXY UNKNOWN\r\n` when the two
/// addresses are of different families.
fn v1(src: (IpAddr, u16), dst: (IpAddr, u16)) -> Vec<u8> {
    let family = match (src.0, dst.0) {
        (IpAddr::V4(_), IpAddr::V4(_)) => "TCP4",
        (IpAddr::V6(_), IpAddr::V6(_)) => "TCP6",
        _ => return b"PROXY UNKNOWN\r\n".to_vec(),
    };
    format!("PROXY {family} {} {} {} {}\r\n", src.0, dst.0, src.1, dst.1).into_bytes()
}

/// Spec §2.2: signature, version 2 + PROXY command (0x21), family and protocol (0x11 TCP over
/// IPv4, 0x21 TCP over IPv6, 0x00 unspecified), address length, then source address,
/// destination address, source port and destination port in network order. No TLVs.
fn v2(src: (IpAddr, u16), dst: (IpAddr, u16)) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + 36);
    out.extend_from_slice(&V2_SIGNATURE);
    out.push(0x21);
    match (src.0, dst.0) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.push(0x11);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            out.push(0x21);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        _ => {
            out.push(0x00);
            out.extend_from_slice(&0u16.to_be_bytes());
            return out;
        }
    }
    out.extend_from_slice(&src.1.to_be_bytes());
    out.extend_from_slice(&dst.1.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v1_text() {
        let h = header(
            ProxyVersion::V1,
            sa("192.0.2.7:51000"),
            sa("198.51.100.1:443"),
        );
        assert_eq!(h, b"PROXY TCP4 192.0.2.7 198.51.100.1 51000 443\r\n");
        let h = header(
            ProxyVersion::V1,
            sa("[2001:db8::7]:1"),
            sa("[2001:db8::1]:443"),
        );
        assert_eq!(h, b"PROXY TCP6 2001:db8::7 2001:db8::1 1 443\r\n");
        let h = header(
            ProxyVersion::V1,
            sa("[::ffff:192.0.2.7]:2"),
            sa("[::ffff:198.51.100.1]:443"),
        );
        assert_eq!(h, b"PROXY TCP4 192.0.2.7 198.51.100.1 2 443\r\n");
        let h = header(ProxyVersion::V1, sa("192.0.2.7:2"), sa("[2001:db8::1]:443"));
        assert_eq!(h, b"PROXY UNKNOWN\r\n");
    }

    #[test]
    fn v2_binary() {
        let h = header(
            ProxyVersion::V2,
            sa("192.0.2.7:51000"),
            sa("198.51.100.1:443"),
        );
        let mut want = b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a\x21\x11\x00\x0c".to_vec();
        want.extend_from_slice(&[192, 0, 2, 7, 198, 51, 100, 1, 0xc7, 0x38, 0x01, 0xbb]);
        assert_eq!(h, want);
        let h = header(ProxyVersion::V2, sa("[2001:db8::7]:1"), sa("[::1]:2"));
        assert_eq!(h.len(), 16 + 36);
        assert_eq!(&h[12..16], &[0x21, 0x21, 0x00, 0x24]);
        assert_eq!(&h[48..], &[0, 1, 0, 2]);
    }
}
