//! The server cookie byte for byte against RFC 9018 Appendix A, and the verdicts around it.

use std::path::PathBuf;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap()
}

fn secret(s: &str) -> CookieSecret {
    CookieSecret(hex(s).try_into().unwrap())
}

fn settings(current: &str, previous: Option<&str>, require: bool) -> CookieSettings {
    CookieSettings {
        secret: secret(current),
        previous: previous.map(secret),
        require,
        secret_file: PathBuf::from("unused"),
    }
}

/// Judges the COOKIE option data `option` (hex) as a UDP query.
fn reply(s: &CookieSettings, option: &str, client: &str, now: u64) -> CookieReply {
    let data = hex(option);
    let cookie = match data.split_first_chunk::<8>() {
        Some((client, server)) => Cookie::Present { client, server },
        None => Cookie::Malformed,
    };
    judge(
        Some(s),
        cookie,
        client.parse().unwrap(),
        Transport::Udp,
        now,
    )
}

fn sent(r: &CookieReply) -> (Verdict, String) {
    let option = r.option().expect("a cookie in the reply");
    (r.verdict().unwrap(), data_encoding::HEXLOWER.encode(option))
}

const A_SECRET: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";

#[test]
fn rfc_9018_a1_a_new_server_cookie() {
    let s = settings(A_SECRET, None, false);
    let r = reply(&s, "2464c4abcf10c957", "198.51.100.100", 1_559_731_985);
    assert_eq!(
        sent(&r),
        (
            Verdict::ClientOnly,
            "2464c4abcf10c957010000005cf79f111f8130c3eee29480".into()
        )
    );
    assert!(!r.badcookie());
}

#[test]
fn rfc_9018_a2_renewed_after_half_an_hour() {
    let s = settings(A_SECRET, None, false);
    let query = "2464c4abcf10c957010000005cf79f111f8130c3eee29480";
    let r = reply(&s, query, "198.51.100.100", 1_559_734_385);
    assert_eq!(
        sent(&r),
        (
            Verdict::Valid,
            "2464c4abcf10c957010000005cf7a871d4a564a1442aca77".into()
        )
    );
    // Ten minutes after it was made, the same cookie is echoed as it came.
    let r = reply(&s, query, "198.51.100.100", 1_559_731_985 + 600);
    assert_eq!(sent(&r), (Verdict::Valid, query.into()));
}

#[test]
fn rfc_9018_a3_reserved_bytes_are_hashed_and_the_lifetime_holds() {
    let s = settings(A_SECRET, None, false);
    let query = "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5";
    // Made at 0x5cf78f71 with reserved bytes abcdef: valid while young.
    let r = reply(&s, query, "203.0.113.203", 0x5cf7_8f71 + 10);
    assert_eq!(sent(&r), (Verdict::Valid, query.into()));
    // The example's reply comes 1 h 52 min later: past the lifetime, a fresh cookie.
    let r = reply(&s, query, "203.0.113.203", 1_559_734_700);
    assert_eq!(
        sent(&r),
        (
            Verdict::Invalid,
            "fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e".into()
        )
    );
}

#[test]
fn rfc_9018_a4_ipv6_after_a_rollover() {
    let old = "dd3bdf9344b678b185a6f5cb60fca715";
    let new = "445536bcd2513298075a5d379663c962";
    let query = "22681ab97d52c298010000005cf7c57926556bd0934c72f8";
    let client = "2001:db8:220:1:59de:d0f4:8769:82b8";
    let rolled = settings(new, Some(old), false);
    assert_eq!(
        sent(&reply(&rolled, query, client, 1_559_741_961)),
        (
            Verdict::Valid,
            "22681ab97d52c298010000005cf7c609a6bb79d16625507a".into()
        )
    );
    // Before the rollover the old secret echoes it; without the old one it is not ours.
    let before = settings(old, None, false);
    assert_eq!(
        sent(&reply(&before, query, client, 1_559_741_961)),
        (Verdict::Valid, query.into())
    );
    let forgotten = settings(new, None, false);
    assert_eq!(
        sent(&reply(&forgotten, query, client, 1_559_741_961)).0,
        Verdict::Invalid
    );
}

#[test]
fn the_layout_is_version_reserved_timestamp_hash() {
    let s = settings(A_SECRET, None, false);
    let c = server_cookie(
        &s.secret,
        &[7; 8],
        "192.0.2.1".parse().unwrap(),
        0x0102_0304,
    );
    assert_eq!(c[..8], [1, 0, 0, 0, 1, 2, 3, 4]);
    let mut input = vec![7u8; 8];
    input.extend_from_slice(&c[..8]);
    input.extend_from_slice(&[192, 0, 2, 1]);
    let expected = SipHasher24::new_with_key(&s.secret.0).hash(&input);
    assert_eq!(c[8..], expected.to_le_bytes());
    // A v4-mapped address hashes as the IPv4 address it is.
    let mapped = server_cookie(
        &s.secret,
        &[7; 8],
        "::ffff:192.0.2.1".parse().unwrap(),
        0x0102_0304,
    );
    assert_eq!(c, mapped);
}

#[test]
fn tampered_foreign_and_untimely_cookies_are_invalid() {
    let s = settings(A_SECRET, None, false);
    let now = 1_559_731_985u64;
    let good = "2464c4abcf10c957010000005cf79f111f8130c3eee29480";
    let verdict = |option: &str, client: &str, at: u64| reply(&s, option, client, at).verdict();
    assert_eq!(verdict(good, "198.51.100.100", now), Some(Verdict::Valid));
    let tampered = format!("{}81", &good[..46]);
    assert_eq!(
        verdict(&tampered, "198.51.100.100", now),
        Some(Verdict::Invalid)
    );
    assert_eq!(verdict(good, "198.51.100.101", now), Some(Verdict::Invalid));
    let version2 = format!("{}02{}", &good[..16], &good[18..]);
    assert_eq!(
        verdict(&version2, "198.51.100.100", now),
        Some(Verdict::Invalid)
    );
    let short = &good[..32];
    assert_eq!(
        verdict(short, "198.51.100.100", now),
        Some(Verdict::Invalid)
    );
    // One hour is the last second it holds; five minutes ahead is the skew allowed.
    assert_eq!(
        verdict(good, "198.51.100.100", now + 3600),
        Some(Verdict::Valid)
    );
    assert_eq!(
        verdict(good, "198.51.100.100", now + 3601),
        Some(Verdict::Invalid)
    );
    assert_eq!(
        verdict(good, "198.51.100.100", now - 300),
        Some(Verdict::Valid)
    );
    assert_eq!(
        verdict(good, "198.51.100.100", now - 301),
        Some(Verdict::Invalid)
    );
}

#[test]
fn timestamps_wrap_as_serial_numbers() {
    let s = settings(A_SECRET, None, false);
    let client: IpAddr = "192.0.2.1".parse().unwrap();
    let made = server_cookie(&s.secret, &[1; 8], client, u32::MAX - 100);
    let mut option = vec![1u8; 8];
    option.extend_from_slice(&made);
    let option = data_encoding::HEXLOWER.encode(&option);
    // 2^32 + 500 seconds: 601 seconds after the stamp, across the wrap.
    let r = reply(&s, &option, "192.0.2.1", (1 << 32) + 500);
    assert_eq!(sent(&r), (Verdict::Valid, option));
}

#[test]
fn require_asks_udp_for_a_valid_cookie_and_never_tcp() {
    let s = settings(A_SECRET, None, true);
    let r = reply(&s, "2464c4abcf10c957", "198.51.100.100", 1_559_731_985);
    assert!(r.badcookie(), "client only over UDP");
    let good = "2464c4abcf10c957010000005cf79f111f8130c3eee29480";
    assert!(!reply(&s, good, "198.51.100.100", 1_559_731_985).badcookie());
    let cookie = Cookie::Present {
        client: &[0x24; 8],
        server: &[],
    };
    let client = "198.51.100.100".parse().unwrap();
    let tcp = judge(Some(&s), cookie, client, Transport::Tcp, 1);
    assert!(!tcp.badcookie() && tcp.option().is_some());
    assert_eq!(
        judge(None, cookie, client, Transport::Udp, 1),
        CookieReply::None
    );
    let none = judge(Some(&s), Cookie::Absent, client, Transport::Udp, 1);
    assert_eq!(none, CookieReply::None);
    let bad = judge(Some(&s), Cookie::Malformed, client, Transport::Udp, 1);
    assert_eq!(bad.verdict(), Some(Verdict::Malformed));
}
