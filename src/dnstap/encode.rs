//! A [`Record`] as dnstap protobuf messages (`AUTH_QUERY`, `AUTH_RESPONSE`), each in its own
//! Frame Streams data frame. The types come from the vendored `proto/dnstap.proto` (prost,
//! `build.rs`); the query and response bytes go in as slices of the record's one buffer.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;

use super::frame;
use super::{Protocol, Record};

/// The generated dnstap types.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/dnstap.rs"));
}

use proto::message::Type as MessageType;
use proto::{Dnstap, SocketFamily, SocketProtocol};

/// What every message says about its sender: `identity` and `version` (absent when empty).
#[derive(Debug, Clone, Default)]
pub struct Sender {
    identity: Option<Bytes>,
    version: Option<Bytes>,
}

impl Sender {
    /// The sender fields from the configured strings.
    pub fn new(identity: &str, version: &str) -> Sender {
        let field = |s: &str| (!s.is_empty()).then(|| Bytes::copy_from_slice(s.as_bytes()));
        Sender {
            identity: field(identity),
            version: field(version),
        }
    }
}

/// Appends `record`'s messages to `out`, a data frame each; returns how many.
pub fn encode(record: Record, sender: &Sender, out: &mut Vec<u8>) -> u64 {
    let data = Bytes::from(record.data);
    let split = record.query_len.map_or(0, |n| n as usize);
    let mut base = proto::Message {
        r#type: 0,
        socket_family: Some(family(record.client) as i32),
        socket_protocol: Some(match record.protocol {
            Protocol::Udp => SocketProtocol::Udp,
            Protocol::Tcp => SocketProtocol::Tcp,
        } as i32),
        query_address: Some(address(record.client)),
        query_port: Some(u32::from(record.client.port())),
        response_address: Some(address(record.server)),
        response_port: Some(u32::from(record.server.port())),
        query_time_sec: Some(record.query_time.as_secs()),
        query_time_nsec: Some(record.query_time.subsec_nanos()),
        ..Default::default()
    };
    let mut n = 0;
    if record.query_len.is_some() {
        let mut query = base.clone();
        query.set_type(MessageType::AuthQuery);
        query.query_message = Some(data.slice(..split));
        frame_of(query, sender, out);
        n += 1;
    }
    if record.response {
        base.set_type(MessageType::AuthResponse);
        base.response_time_sec = Some(record.response_time.as_secs());
        base.response_time_nsec = Some(record.response_time.subsec_nanos());
        base.response_message = Some(data.slice(split..));
        frame_of(base, sender, out);
        n += 1;
    }
    n
}

fn frame_of(message: proto::Message, sender: &Sender, out: &mut Vec<u8>) {
    let tap = Dnstap {
        identity: sender.identity.clone(),
        version: sender.version.clone(),
        extra: None,
        r#type: proto::dnstap::Type::Message as i32,
        message: Some(message),
    };
    // Encoding into a Vec only fails for lack of capacity, which a Vec does not have.
    frame::data(out, |o| tap.encode(o).is_ok());
}

fn family(addr: SocketAddr) -> SocketFamily {
    match addr {
        SocketAddr::V4(_) => SocketFamily::Inet,
        SocketAddr::V6(_) => SocketFamily::Inet6,
    }
}

fn address(addr: SocketAddr) -> Bytes {
    match addr {
        SocketAddr::V4(a) => Bytes::copy_from_slice(&a.ip().octets()),
        SocketAddr::V6(a) => Bytes::copy_from_slice(&a.ip().octets()),
    }
}

/// A time as seconds and nanoseconds, as a decoded message gives it back.
pub fn time_of(sec: Option<u64>, nsec: Option<u32>) -> Duration {
    Duration::new(sec.unwrap_or(0), nsec.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnstap::Logging;

    fn decode_frames(mut bytes: &[u8]) -> Vec<Dnstap> {
        let mut out = Vec::new();
        while let [a, b, c, d, rest @ ..] = bytes {
            let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
            out.push(Dnstap::decode(&rest[..len]).expect("decodes"));
            bytes = &rest[len..];
        }
        out
    }

    #[test]
    fn query_and_response_round_trip() {
        let client: SocketAddr = "192.0.2.7:5300".parse().unwrap();
        let server: SocketAddr = "[2001:db8::53]:53".parse().unwrap();
        let (q_at, r_at) = (
            Duration::new(1_700_000_000, 5),
            Duration::new(1_700_000_000, 900),
        );
        let both = Logging {
            queries: true,
            responses: true,
        };
        let record = Record::new(
            both,
            Protocol::Tcp,
            (client, server),
            q_at,
            b"query",
            Some(b"reply!"),
            r_at,
        )
        .expect("something to log");
        assert_eq!(record.messages(), 2);
        let mut out = Vec::new();
        assert_eq!(
            encode(record, &Sender::new("ns1", "meridian 9"), &mut out),
            2
        );
        let frames = decode_frames(&out);
        assert_eq!(frames.len(), 2);
        for f in &frames {
            assert_eq!(f.identity.as_deref(), Some(&b"ns1"[..]));
            assert_eq!(f.version.as_deref(), Some(&b"meridian 9"[..]));
            assert_eq!(f.r#type(), proto::dnstap::Type::Message);
            let m = f.message.as_ref().unwrap();
            assert_eq!(m.socket_family(), SocketFamily::Inet);
            assert_eq!(m.socket_protocol(), SocketProtocol::Tcp);
            assert_eq!(m.query_address.as_deref(), Some(&[192, 0, 2, 7][..]));
            assert_eq!(m.query_port, Some(5300));
            assert_eq!(m.response_address.as_deref().map(<[u8]>::len), Some(16));
            assert_eq!(m.response_port, Some(53));
            assert_eq!(time_of(m.query_time_sec, m.query_time_nsec), q_at);
        }
        let (q, r) = (
            frames[0].message.as_ref().unwrap(),
            frames[1].message.as_ref().unwrap(),
        );
        assert_eq!(q.r#type(), MessageType::AuthQuery);
        assert_eq!(q.query_message.as_deref(), Some(&b"query"[..]));
        assert_eq!(q.response_message, None);
        assert_eq!(r.r#type(), MessageType::AuthResponse);
        assert_eq!(r.response_message.as_deref(), Some(&b"reply!"[..]));
        assert_eq!(time_of(r.response_time_sec, r.response_time_nsec), r_at);
    }

    #[test]
    fn only_what_is_logged_is_encoded() {
        let ends = (
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        let t = Duration::ZERO;
        let responses = Logging {
            queries: false,
            responses: true,
        };
        assert!(Record::new(responses, Protocol::Udp, ends, t, b"q", None, t).is_none());
        let record = Record::new(responses, Protocol::Udp, ends, t, b"q", Some(b"r"), t).unwrap();
        let mut out = Vec::new();
        assert_eq!(encode(record, &Sender::new("", ""), &mut out), 1);
        let frames = decode_frames(&out);
        let m = frames[0].message.as_ref().unwrap();
        assert_eq!(m.r#type(), MessageType::AuthResponse);
        assert_eq!(m.response_message.as_deref(), Some(&b"r"[..]));
        assert_eq!(m.socket_protocol(), SocketProtocol::Udp);
        assert_eq!(
            (frames[0].identity.clone(), frames[0].version.clone()),
            (None, None)
        );
        let queries = Logging {
            queries: true,
            responses: false,
        };
        let record = Record::new(queries, Protocol::Udp, ends, t, b"q", Some(b"r"), t).unwrap();
        assert_eq!(record.messages(), 1);
        out.clear();
        encode(record, &Sender::default(), &mut out);
        let m = decode_frames(&out).remove(0).message.unwrap();
        assert_eq!(m.r#type(), MessageType::AuthQuery);
        assert_eq!(m.query_message.as_deref(), Some(&b"q"[..]));
    }
}
