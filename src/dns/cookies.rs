//! DNS Cookies on the answering side: what a query's COOKIE option (RFC 7873 §4) earns its reply
//! (RFC 7873 §5.2), and the server cookie of RFC 9018 §4: Version 1, three reserved bytes, a
//! 32-bit timestamp and SipHash-2-4(client cookie | version | reserved | timestamp | client IP)
//! keyed with the server secret. Pure: the time and the client's address come in, so both
//! paths of the core and every instance sharing the secret judge a cookie alike.
//!
//! A valid server cookie younger than half an hour is echoed as it came (no hash to compute);
//! an older one, one made with the previous secret, an invalid one or none gets a fresh one.

use std::net::IpAddr;

use siphasher::sip::SipHasher24;

use super::Transport;
use crate::model::{CookieSecret, CookieSettings};
use crate::wire::{CLIENT_COOKIE_LEN, Cookie};

/// Length of the server cookies Meridian makes (RFC 9018 §4: 8 fixed bytes and the hash).
pub const SERVER_COOKIE_LEN: usize = 16;

/// Length of the COOKIE option data a reply carries: client cookie and server cookie.
pub const OPTION_LEN: usize = CLIENT_COOKIE_LEN + SERVER_COOKIE_LEN;

/// The server cookie layout's version (RFC 9018 §4.2).
const VERSION: u8 = 1;

/// How long a server cookie is accepted after its timestamp, in seconds (RFC 9018 §4.3).
pub const LIFETIME: u32 = 3600;

/// How far a timestamp may be ahead of our clock, for skew between servers (RFC 9018 §4.3).
pub const FUTURE: u32 = 300;

/// Age from which a valid cookie is replaced by a fresh one (RFC 9018 §4.3: half the lifetime).
pub const REISSUE_AFTER: u32 = 1800;

/// What a query's COOKIE option turned out to be (the `result` the counters count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A client cookie without a server cookie.
    ClientOnly,
    /// A server cookie this instance (or one sharing its secret) made, within its lifetime.
    Valid,
    /// A server cookie that does not verify: another secret, tampered, stale or from the
    /// future, another layout.
    Invalid,
    /// An option of the wrong length (RFC 7873 §5.2.2): FORMERR.
    Malformed,
}

/// What the reply does about the query's cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieReply {
    /// No COOKIE option, or cookies are off: the reply carries none.
    None,
    /// FORMERR (RFC 7873 §5.2.2).
    Malformed,
    /// The reply carries `option` (the client cookie, then our server cookie).
    Send {
        /// What the query's cookie was.
        verdict: Verdict,
        /// The COOKIE option data to send.
        option: [u8; OPTION_LEN],
        /// BADCOOKIE instead of an answer (RFC 7873 §5.2.3, when `require` is set).
        badcookie: bool,
    },
}

impl CookieReply {
    /// The verdict, for the counters; `None` when there was no cookie to judge.
    pub fn verdict(&self) -> Option<Verdict> {
        match self {
            CookieReply::None => None,
            CookieReply::Malformed => Some(Verdict::Malformed),
            CookieReply::Send { verdict, .. } => Some(*verdict),
        }
    }

    /// The COOKIE option data to put in the reply's OPT record.
    pub fn option(&self) -> Option<&[u8; OPTION_LEN]> {
        match self {
            CookieReply::Send { option, .. } => Some(option),
            _ => None,
        }
    }

    /// The reply is BADCOOKIE.
    pub fn badcookie(&self) -> bool {
        matches!(
            self,
            CookieReply::Send {
                badcookie: true,
                ..
            }
        )
    }
}

/// Judges `cookie` from `client` at Unix time `now` and says what the reply carries. With
/// `require`, a UDP query without a valid server cookie gets BADCOOKIE; over TCP the
/// handshake already proved the address, so it is answered.
pub fn judge(
    settings: Option<&CookieSettings>,
    cookie: Cookie<'_>,
    client: IpAddr,
    transport: Transport,
    now: u64,
) -> CookieReply {
    let Some(settings) = settings else {
        return CookieReply::None;
    };
    let (client_cookie, server) = match cookie {
        Cookie::Absent => return CookieReply::None,
        Cookie::Malformed => return CookieReply::Malformed,
        Cookie::Present { client, server } => (client, server),
    };
    // RFC 9018 §4.3: timestamps are serial numbers (RFC 1982), so they wrap in 2106.
    let now = now as u32;
    let (verdict, reuse) = match check(settings, client_cookie, server, client, now) {
        Check::Echo => (Verdict::Valid, true),
        Check::Renew => (Verdict::Valid, false),
        Check::Invalid => (Verdict::Invalid, false),
        Check::None => (Verdict::ClientOnly, false),
    };
    let mut option = [0u8; OPTION_LEN];
    option[..CLIENT_COOKIE_LEN].copy_from_slice(client_cookie);
    if reuse {
        option[CLIENT_COOKIE_LEN..].copy_from_slice(server);
    } else {
        option[CLIENT_COOKIE_LEN..].copy_from_slice(&server_cookie(
            &settings.secret,
            client_cookie,
            client,
            now,
        ));
    }
    CookieReply::Send {
        verdict,
        option,
        badcookie: settings.require && transport == Transport::Udp && verdict != Verdict::Valid,
    }
}

/// How a sent server cookie checks out.
enum Check {
    /// Valid, made with the current secret and younger than [`REISSUE_AFTER`]: sent back as is.
    Echo,
    /// Valid, but old or made with the previous secret: a fresh one goes back.
    Renew,
    /// Not valid.
    Invalid,
    /// No server cookie.
    None,
}

fn check(
    settings: &CookieSettings,
    client_cookie: &[u8; CLIENT_COOKIE_LEN],
    server: &[u8],
    client: IpAddr,
    now: u32,
) -> Check {
    if server.is_empty() {
        return Check::None;
    }
    let Ok(server) = <&[u8; SERVER_COOKIE_LEN]>::try_from(server) else {
        return Check::Invalid;
    };
    let (head, hash) = server.split_at(8);
    if head[0] != VERSION {
        return Check::Invalid;
    }
    let stamp = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    // Seconds since the stamp, negative when it is ahead of our clock.
    let age = now.wrapping_sub(stamp) as i32;
    if age > LIFETIME as i32 || age < -(FUTURE as i32) {
        return Check::Invalid;
    }
    let head: &[u8; 8] = head.try_into().unwrap_or(&[0; 8]);
    let matches = |secret: &CookieSecret| same(&mac(secret, client_cookie, head, client), hash);
    if matches(&settings.secret) {
        if age >= REISSUE_AFTER as i32 {
            Check::Renew
        } else {
            Check::Echo
        }
    } else if settings.previous.as_ref().is_some_and(matches) {
        Check::Renew
    } else {
        Check::Invalid
    }
}

/// A fresh server cookie for `client_cookie` from `client`, stamped `now` (RFC 9018 §4.2;
/// the reserved bytes zero).
pub fn server_cookie(
    secret: &CookieSecret,
    client_cookie: &[u8; CLIENT_COOKIE_LEN],
    client: IpAddr,
    now: u32,
) -> [u8; SERVER_COOKIE_LEN] {
    let mut cookie = [0u8; SERVER_COOKIE_LEN];
    cookie[0] = VERSION;
    cookie[4..8].copy_from_slice(&now.to_be_bytes());
    let head: [u8; 8] = [
        cookie[0], 0, 0, 0, cookie[4], cookie[5], cookie[6], cookie[7],
    ];
    cookie[8..].copy_from_slice(&mac(secret, client_cookie, &head, client));
    cookie
}

/// SipHash-2-4 over client cookie, the server cookie's first 8 bytes as sent and the client's
/// address (4 bytes for IPv4, also when it came as a v4-mapped IPv6 address; else 16), keyed
/// with `secret`; its 64 bits in little-endian order, as the reference implementation and
/// Knot write them (RFC 9018 §4.4, Appendix A).
fn mac(
    secret: &CookieSecret,
    client_cookie: &[u8; CLIENT_COOKIE_LEN],
    head: &[u8; 8],
    client: IpAddr,
) -> [u8; 8] {
    let mut input = [0u8; CLIENT_COOKIE_LEN + 8 + 16];
    input[..8].copy_from_slice(client_cookie);
    input[8..16].copy_from_slice(head);
    let len = match client.to_canonical() {
        IpAddr::V4(a) => {
            input[16..20].copy_from_slice(&a.octets());
            20
        }
        IpAddr::V6(a) => {
            input[16..32].copy_from_slice(&a.octets());
            32
        }
    };
    SipHasher24::new_with_key(&secret.0)
        .hash(&input[..len])
        .to_le_bytes()
}

/// Compares two hashes in time that does not depend on where they differ.
fn same(a: &[u8; 8], b: &[u8]) -> bool {
    b.len() == a.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
