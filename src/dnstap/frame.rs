//! Frame Streams, the framing dnstap travels in (the protocol of `fstrm`): a data frame is a
//! 32-bit big-endian length and the payload; a control frame is an escape (length 0), its own
//! length, its type and fields (only the content type is defined). On a socket the writer and
//! the reader shake hands both ways: READY → ACCEPT → START, data frames, STOP → FINISH.
//! Written here because the one Rust crate for it writes only the one-way (file) form, with no
//! READY/ACCEPT or FINISH, which readers on a socket such as `fstrm_capture` require.

use std::io::{self, Read};

/// The content type of a dnstap stream.
pub const CONTENT_TYPE: &[u8] = b"protobuf:dnstap.Dnstap";

/// Longest control frame accepted from a reader (fstrm's own limit).
pub const MAX_CONTROL: usize = 512;

/// The content-type field of a control frame.
const FIELD_CONTENT_TYPE: u32 = 1;

/// The types of control frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Reader → writer: the content types it takes.
    Accept = 1,
    /// Writer → reader: data frames of this content type follow.
    Start = 2,
    /// Writer → reader: no more data frames.
    Stop = 3,
    /// Writer → reader: the content types it offers.
    Ready = 4,
    /// Reader → writer: the STOP was read, the stream is over.
    Finish = 5,
}

impl Control {
    fn from_u32(v: u32) -> Option<Control> {
        Some(match v {
            1 => Control::Accept,
            2 => Control::Start,
            3 => Control::Stop,
            4 => Control::Ready,
            5 => Control::Finish,
            _ => return None,
        })
    }
}

/// Appends a control frame of `kind` to `out`, with a content-type field when given.
pub fn control(out: &mut Vec<u8>, kind: Control, content_type: Option<&[u8]>) {
    let fields = content_type.map_or(0, |ct| 8 + ct.len());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&(4 + fields as u32).to_be_bytes());
    out.extend_from_slice(&(kind as u32).to_be_bytes());
    if let Some(ct) = content_type {
        out.extend_from_slice(&FIELD_CONTENT_TYPE.to_be_bytes());
        out.extend_from_slice(&(ct.len() as u32).to_be_bytes());
        out.extend_from_slice(ct);
    }
}

/// Appends a data frame to `out` whose payload `write` appends; returns what `write` returned.
/// An empty payload would read as an escape, so `write` must append at least one byte.
pub fn data<T>(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    let result = write(out);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    result
}

/// A control frame as read: its type and the content types it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The frame's type.
    pub kind: Control,
    /// Its content-type fields, in order.
    pub content_types: Vec<Vec<u8>>,
}

impl Received {
    /// Does the frame name `content_type` (or no content type at all, which the protocol
    /// reads as "any")?
    pub fn accepts(&self, content_type: &[u8]) -> bool {
        self.content_types.is_empty() || self.content_types.iter().any(|c| c == content_type)
    }
}

/// Reads the body of a control frame (after the escape and the length).
pub fn parse_control(body: &[u8]) -> io::Result<Received> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("fstrm: {what}"));
    let word = |b: &[u8], at: usize| {
        b.get(at..at + 4)
            .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
    };
    let kind = word(body, 0)
        .and_then(Control::from_u32)
        .ok_or_else(|| bad("unknown control frame"))?;
    let mut content_types = Vec::new();
    let mut at = 4;
    while at < body.len() {
        let (Some(field), Some(len)) = (word(body, at), word(body, at + 4)) else {
            return Err(bad("truncated control field"));
        };
        let value = body
            .get(at + 8..at + 8 + len as usize)
            .ok_or_else(|| bad("control field longer than its frame"))?;
        if field == FIELD_CONTENT_TYPE {
            content_types.push(value.to_vec());
        }
        at += 8 + len as usize;
    }
    Ok(Received {
        kind,
        content_types,
    })
}

/// Reads one control frame from `r` (a reader only ever sends control frames to a writer).
pub fn read_control(r: &mut impl Read) -> io::Result<Received> {
    let mut head = [0u8; 8];
    r.read_exact(&mut head)?;
    let escape = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if escape != 0 || len > MAX_CONTROL {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "fstrm: expected a control frame",
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    parse_control(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_frames_are_the_bytes_fstrm_writes() {
        let mut out = Vec::new();
        control(&mut out, Control::Ready, Some(CONTENT_TYPE));
        let mut want = vec![0, 0, 0, 0, 0, 0, 0, 34, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 22];
        want.extend_from_slice(b"protobuf:dnstap.Dnstap");
        assert_eq!(out, want);

        out.clear();
        control(&mut out, Control::Stop, None);
        assert_eq!(out, [0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 3]);

        out.clear();
        control(&mut out, Control::Start, Some(CONTENT_TYPE));
        assert_eq!(&out[8..12], &[0, 0, 0, 2]);
        assert_eq!(out.len(), 8 + 34);
    }

    #[test]
    fn data_frames_carry_their_length() {
        let mut out = vec![9];
        let n = data(&mut out, |o| {
            o.extend_from_slice(b"abc");
            3
        });
        assert_eq!(n, 3);
        assert_eq!(out, [9, 0, 0, 0, 3, b'a', b'b', b'c']);
    }

    #[test]
    fn control_frames_read_back() {
        for kind in [
            Control::Accept,
            Control::Start,
            Control::Stop,
            Control::Ready,
            Control::Finish,
        ] {
            let mut out = Vec::new();
            control(&mut out, kind, Some(CONTENT_TYPE));
            let got = read_control(&mut &out[..]).unwrap();
            assert_eq!(got.kind, kind);
            assert_eq!(got.content_types, [CONTENT_TYPE.to_vec()]);
            assert!(got.accepts(CONTENT_TYPE));
            assert!(!got.accepts(b"protobuf:other"));
        }
        let mut bare = Vec::new();
        control(&mut bare, Control::Finish, None);
        let got = read_control(&mut &bare[..]).unwrap();
        assert!(got.content_types.is_empty() && got.accepts(CONTENT_TYPE));
    }

    #[test]
    fn bad_control_frames_are_errors_not_panics() {
        // A data frame where a control frame belongs, an unknown type, a field running past
        // the end, an oversized frame, a truncated one.
        let cases: [&[u8]; 5] = [
            &[0, 0, 0, 5, 1, 2, 3, 4, 5],
            &[0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 9],
            &[0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 99],
            &[0, 0, 0, 0, 0, 0, 255, 255],
            &[0, 0, 0, 0, 0, 0, 0, 8, 0, 0],
        ];
        for case in cases {
            assert!(read_control(&mut &case[..]).is_err(), "{case:?}");
        }
        assert!(parse_control(&[0, 0, 0, 1, 0, 0, 0, 1]).is_err());
    }
}
