//! Reading a DNS query once, on the request path and without allocating: its header, its first
//! question and its OPT record with the options Meridian acts on (RFC 1035 §4.1, RFC 6891 §6,
//! RFC 7871 §6, RFC 5001, RFC 7873 §4). The answering core, the query counters and the rate limiter all
//! take what [`Query::parse`] found, so no stage reads the packet again and none can read it
//! differently. A leaf: it knows the wire format and nothing of Meridian.

mod name;

use std::net::IpAddr;

pub use name::WireName;

/// Size of the fixed DNS header (RFC 1035 §4.1.1).
pub const HEADER_LEN: usize = 12;
/// RR type of the EDNS OPT pseudo-record (RFC 6891 §6.1.1).
pub const TYPE_OPT: u16 = 41;
/// Class IN, as the two bytes of a question or record.
pub const CLASS_IN: [u8; 2] = [0, 1];
/// EDNS option code of the name server identifier (RFC 5001 §2.3).
pub const OPTION_NSID: u16 = 3;
/// EDNS option code of EDNS Client Subnet (RFC 7871 §6).
pub const OPTION_ECS: u16 = 8;
/// EDNS option code of DNS Cookies (RFC 7873 §4).
pub const OPTION_COOKIE: u16 = 10;
/// Length of a client cookie (RFC 7873 §4.1).
pub const CLIENT_COOKIE_LEN: usize = 8;

/// What one query says, as far as answering, counting and limiting need it.
#[derive(Clone)]
pub struct Query<'p> {
    packet: &'p [u8],
    /// The only question, when QDCOUNT is 1 and its name is plain labels (no compression
    /// pointer) of at most 255 bytes followed by type and class.
    pub question: Option<Question>,
    /// QTYPE of the first question however its name is written; `None` when unreadable.
    pub first_qtype: Option<u16>,
    /// The first OPT record of the additional section, when the sections before it could be
    /// read.
    pub opt: Option<Opt<'p>>,
    /// The message is exactly a header, one plain question and, if ARCOUNT is 1, an OPT record
    /// owned by the root that ends the packet: nothing else to look at.
    pub plain: bool,
}

/// A query's question.
#[derive(Clone)]
pub struct Question {
    /// QNAME, lower-cased.
    pub name: WireName,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// Offset just past the question.
    pub end: usize,
}

/// An OPT record's fixed fields and the options Meridian reads.
#[derive(Debug, Clone, Copy)]
pub struct Opt<'p> {
    /// The requestor's UDP payload size (RFC 6891 §6.2.3).
    pub payload: u16,
    /// The upper eight bits of the extended RCODE.
    pub ext_rcode: u8,
    /// EDNS version.
    pub version: u8,
    /// The DO bit (RFC 3225).
    pub dnssec_ok: bool,
    /// The EDNS Client Subnet option.
    pub ecs: Ecs<'p>,
    /// An NSID option was present (RFC 5001 §2.1: the query's is empty).
    pub nsid: bool,
    /// The first COOKIE option (later ones are ignored, as Knot does).
    pub cookie: Cookie<'p>,
    /// The options fill the RDATA exactly, each with its whole length.
    pub well_formed: bool,
    /// Owned by the root name (RFC 6891 §6.1.2).
    root_owner: bool,
    /// Offset just past the record.
    end: usize,
}

/// The EDNS Client Subnet option of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ecs<'p> {
    /// No ECS option.
    Absent,
    /// One valid ECS option.
    Valid(Subnet<'p>),
    /// One that RFC 7871 §6 says to answer with FORMERR (an unknown family, a source prefix
    /// longer than the address, more or fewer address bytes than the prefix needs, bits set
    /// beyond it), or more than one ECS option.
    Malformed,
}

/// The COOKIE option of a query (RFC 7873 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cookie<'p> {
    /// No COOKIE option.
    Absent,
    /// A client cookie and the server cookie sent with it: empty, or 8 to 32 bytes.
    Present {
        /// The client cookie.
        client: &'p [u8; CLIENT_COOKIE_LEN],
        /// The server cookie as sent (empty when the client has none yet).
        server: &'p [u8],
    },
    /// A length other than 8 or 16 to 40, which RFC 7873 §5.2.2 answers with FORMERR.
    Malformed,
}

/// A valid client subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet<'p> {
    /// The option's data as sent: family, source prefix, scope, address bytes.
    pub data: &'p [u8],
    /// The address, zero-filled past the prefix.
    pub addr: IpAddr,
    /// SOURCE PREFIX-LENGTH.
    pub source: u8,
}

impl Subnet<'_> {
    /// The SCOPE PREFIX-LENGTH to echo for an answer that depended on `scope` bits of the
    /// client's address: never more than the source prefix (RFC 7871 §7.2.1).
    pub fn scope_for(&self, scope: u8) -> u8 {
        scope.min(self.source)
    }
}

impl<'p> Query<'p> {
    /// Reads `packet`; `None` when it is shorter than a header. Inlined so the name is read
    /// straight into the caller's frame rather than copied out (it is 385 bytes).
    #[inline]
    pub fn parse(packet: &'p [u8]) -> Option<Query<'p>> {
        if packet.len() < HEADER_LEN {
            return None;
        }
        // The question is read in place: the name is 385 bytes, too many to move around.
        let mut q = Query {
            packet,
            question: Some(Question {
                name: WireName::empty(),
                qtype: 0,
                qclass: 0,
                end: 0,
            }),
            first_qtype: None,
            opt: None,
            plain: false,
        };
        let count = |i: usize| usize::from(u16::from_be_bytes([packet[i], packet[i + 1]]));
        let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
        let read = qd == 1
            && q.question.as_mut().is_some_and(|question| {
                let Some(end) = question.name.read_into(packet, HEADER_LEN) else {
                    return false;
                };
                let Some(t) = packet.get(end..end + 4) else {
                    return false;
                };
                question.qtype = u16::from_be_bytes([t[0], t[1]]);
                question.qclass = u16::from_be_bytes([t[2], t[3]]);
                question.end = end + 4;
                true
            });
        if !read {
            q.question = None;
        }
        let mut at = HEADER_LEN;
        for n in 0..qd {
            let Some(end) = skip_name(packet, at).filter(|end| end + 4 <= packet.len()) else {
                return Some(q);
            };
            if n == 0 {
                q.first_qtype = Some(u16::from_be_bytes([packet[end], packet[end + 1]]));
            }
            at = end + 4;
        }
        let question_end = at;
        for n in 0..an + ns + ar {
            let Some(end) = skip_name(packet, at) else {
                break;
            };
            let Some(fixed) = packet.get(end..end + 10) else {
                break;
            };
            let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
            let Some(rdata) = packet.get(end + 10..end + 10 + rdlen) else {
                break;
            };
            if n >= an + ns && u16::from_be_bytes([fixed[0], fixed[1]]) == TYPE_OPT {
                q.opt = Some(Opt::read(
                    fixed,
                    rdata,
                    end - at == 1 && packet[at] == 0,
                    end,
                ));
                break;
            }
            at = end + 10 + rdlen;
        }
        q.plain = qd == 1
            && an == 0
            && ns == 0
            && q.question.is_some()
            && match (ar, &q.opt) {
                (0, _) => question_end == packet.len(),
                (1, Some(opt)) => opt.root_owner && opt.end == packet.len(),
                _ => false,
            };
        Some(q)
    }

    /// The message as received.
    pub fn packet(&self) -> &'p [u8] {
        self.packet
    }

    /// The ID.
    pub fn id(&self) -> u16 {
        u16::from_be_bytes([self.packet[0], self.packet[1]])
    }

    /// The third header byte: QR, OPCODE, AA, TC, RD.
    pub fn flags(&self) -> u8 {
        self.packet[2]
    }

    /// QR is set: the message is a response.
    pub fn is_response(&self) -> bool {
        self.packet[2] & 0x80 != 0
    }

    /// RD, to be copied into the reply.
    pub fn recursion_desired(&self) -> bool {
        self.packet[2] & 0x01 != 0
    }

    /// The bytes of the only question, as sent (letter case kept), when it could be read.
    pub fn question_bytes(&self) -> Option<&'p [u8]> {
        let end = self.question.as_ref()?.end;
        Some(&self.packet[HEADER_LEN..end])
    }

    /// True when the OPT record carries an ECS option, valid or not (what the counters count).
    pub fn has_ecs(&self) -> bool {
        self.opt.is_some_and(|o| o.ecs != Ecs::Absent)
    }
}

impl<'p> Opt<'p> {
    /// `fixed` is TYPE, CLASS, TTL and RDLENGTH; `rdata` the options.
    fn read(fixed: &[u8], mut rdata: &'p [u8], root_owner: bool, at: usize) -> Opt<'p> {
        let mut opt = Opt {
            payload: u16::from_be_bytes([fixed[2], fixed[3]]),
            ext_rcode: fixed[4],
            version: fixed[5],
            dnssec_ok: fixed[6] & 0x80 != 0,
            ecs: Ecs::Absent,
            nsid: false,
            cookie: Cookie::Absent,
            well_formed: true,
            root_owner,
            end: at + 10 + rdata.len(),
        };
        while !rdata.is_empty() {
            let Some(head) = rdata.get(..4) else {
                opt.well_formed = false;
                break;
            };
            let code = u16::from_be_bytes([head[0], head[1]]);
            let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
            let Some(data) = rdata.get(4..4 + len) else {
                opt.well_formed = false;
                break;
            };
            match code {
                OPTION_ECS => {
                    opt.ecs = match opt.ecs {
                        Ecs::Absent => subnet(data).map_or(Ecs::Malformed, Ecs::Valid),
                        _ => Ecs::Malformed,
                    }
                }
                OPTION_NSID => opt.nsid = true,
                OPTION_COOKIE if opt.cookie == Cookie::Absent => opt.cookie = cookie(data),
                _ => {}
            }
            rdata = &rdata[4 + len..];
        }
        opt
    }
}

/// An ECS option whose address has exactly the source prefix's bytes and no bit set beyond it
/// (RFC 7871 §6).
fn subnet(data: &[u8]) -> Option<Subnet<'_>> {
    let (family, source) = (
        u16::from_be_bytes([*data.first()?, *data.get(1)?]),
        *data.get(2)?,
    );
    let addr = data.get(4..)?;
    let max = match family {
        1 => 32,
        2 => 128,
        _ => return None,
    };
    if source > max || addr.len() != usize::from(source).div_ceil(8) {
        return None;
    }
    if let Some(&last) = addr.last() {
        let spare = (8 - source % 8) % 8;
        if last & ((1u8 << spare) - 1) != 0 {
            return None;
        }
    }
    let addr = if family == 1 {
        let mut a = [0u8; 4];
        a[..addr.len()].copy_from_slice(addr);
        IpAddr::from(a)
    } else {
        let mut a = [0u8; 16];
        a[..addr.len()].copy_from_slice(addr);
        IpAddr::from(a)
    };
    Some(Subnet { data, addr, source })
}

/// A COOKIE option's data split into client and server cookie (RFC 7873 §5.2.2).
fn cookie(data: &[u8]) -> Cookie<'_> {
    match (data.len(), data.split_first_chunk::<CLIENT_COOKIE_LEN>()) {
        (8 | 16..=40, Some((client, server))) => Cookie::Present { client, server },
        _ => Cookie::Malformed,
    }
}

/// The offset after the name starting at `at`, which may end in a compression pointer.
fn skip_name(m: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *m.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xC0 == 0xC0 => return m.get(at + 1).map(|_| at + 2),
            l if l & 0xC0 == 0 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
}

/// What the counters need from a reply: the full response code (header RCODE plus the OPT
/// record's extended bits) and the TC bit. Read by whoever wrote the reply, so nothing parses
/// it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyCode {
    /// RCODE, extended (RFC 6891 §6.1.3).
    pub rcode: u16,
    /// TC.
    pub truncated: bool,
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as HQuery};
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
    use hickory_proto::rr::{Name, RecordType};

    use super::*;

    fn message(qtype: RecordType, edns: Option<Edns>) -> Message {
        let mut m = Message::new(1, MessageType::Query, OpCode::Query);
        m.add_query(HQuery::query(
            Name::from_ascii("www.Example.test.").unwrap(),
            qtype,
        ));
        if let Some(e) = edns {
            m.set_edns(e);
        }
        m
    }

    fn with_opt(options: &[u8]) -> Vec<u8> {
        let mut p = message(RecordType::A, None).to_vec().unwrap();
        p[11] = 1;
        p.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0x80, 0]);
        p.extend_from_slice(&(options.len() as u16).to_be_bytes());
        p.extend_from_slice(options);
        p
    }

    #[test]
    fn a_plain_query_gives_its_question() {
        let p = message(RecordType::AAAA, None).to_vec().unwrap();
        let q = Query::parse(&p).unwrap();
        let question = q.question.as_ref().unwrap();
        assert_eq!(question.name.as_bytes(), b"\x03www\x07example\x04test\x00");
        assert_eq!(
            (question.qtype, question.qclass, question.end),
            (28, 1, p.len())
        );
        assert_eq!(q.first_qtype, Some(28));
        assert_eq!(q.question_bytes().unwrap(), &p[HEADER_LEN..]);
        assert!(q.plain && q.opt.is_none() && !q.has_ecs());
        assert!(Query::parse(&p[..11]).is_none(), "shorter than a header");
    }

    #[test]
    fn the_opt_record_and_its_options() {
        let mut edns = Edns::new();
        edns.set_max_payload(1400);
        edns.set_dnssec_ok(true);
        edns.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(
                "192.0.2.0".parse().unwrap(),
                24,
                0,
            )));
        let p = message(RecordType::A, Some(edns)).to_vec().unwrap();
        let q = Query::parse(&p).unwrap();
        let opt = q.opt.unwrap();
        assert_eq!((opt.payload, opt.version, opt.dnssec_ok), (1400, 0, true));
        let Ecs::Valid(s) = opt.ecs else {
            panic!("ECS not read: {:?}", opt.ecs)
        };
        assert_eq!((s.addr, s.source), ("192.0.2.0".parse().unwrap(), 24));
        assert_eq!((s.scope_for(32), s.scope_for(16)), (24, 16));
        assert!(q.plain && q.has_ecs() && opt.well_formed && !opt.nsid);

        let nsid = with_opt(&[0, 3, 0, 0]);
        let opt = Query::parse(&nsid).unwrap().opt.unwrap();
        assert!(opt.nsid && opt.well_formed && opt.ecs == Ecs::Absent);
        assert_eq!(
            (opt.payload, opt.ext_rcode, opt.version, opt.dnssec_ok),
            (1232, 0, 0, true)
        );
    }

    #[test]
    fn client_subnets_are_held_to_rfc_7871() {
        let ecs = |data: &[u8]| {
            let mut option = vec![0, 8];
            option.extend_from_slice(&(data.len() as u16).to_be_bytes());
            option.extend_from_slice(data);
            let p = with_opt(&option);
            Query::parse(&p).unwrap().opt.unwrap().ecs == Ecs::Malformed
        };
        assert!(!ecs(&[0, 1, 24, 0, 192, 0, 2]), "valid /24");
        assert!(!ecs(&[0, 1, 0, 0]), "valid /0");
        assert!(
            !ecs(&[0, 2, 56, 0, 0x20, 1, 0xd, 0xb8, 0, 0, 0]),
            "valid v6 /56"
        );
        assert!(
            ecs(&[0, 1, 24, 0, 192, 0, 2, 0]),
            "an address byte too many"
        );
        assert!(ecs(&[0, 1, 24, 0, 192, 0]), "an address byte too few");
        assert!(ecs(&[0, 1, 23, 0, 192, 0, 3]), "a bit set past the prefix");
        assert!(
            ecs(&[0, 1, 33, 0, 1, 2, 3, 4, 0]),
            "prefix longer than IPv4"
        );
        assert!(ecs(&[0, 3, 8, 0, 1]), "unknown family");
        assert!(ecs(&[0, 1, 8]), "runt");
        let twice = [&[0, 8, 0, 4, 0, 1, 0, 0][..], &[0, 8, 0, 4, 0, 1, 0, 0]].concat();
        let p = with_opt(&twice);
        assert_eq!(Query::parse(&p).unwrap().opt.unwrap().ecs, Ecs::Malformed);
        let p = with_opt(&[0, 8, 0, 9, 0]);
        let opt = Query::parse(&p).unwrap().opt.unwrap();
        assert!(!opt.well_formed, "an option longer than the RDATA");
    }

    #[test]
    fn cookies_are_split_and_bad_lengths_malformed() {
        // The client and server cookies as read, `None` when malformed.
        let cookie = |len: usize| {
            let mut option = vec![0, 10, 0, len as u8];
            option.extend((0..len).map(|i| i as u8));
            let p = with_opt(&option);
            match Query::parse(&p).unwrap().opt.unwrap().cookie {
                Cookie::Present { client, server } => Some((client.to_vec(), server.to_vec())),
                Cookie::Malformed => None,
                Cookie::Absent => panic!("no cookie read"),
            }
        };
        for len in [0, 1, 7, 9, 15, 41, 48] {
            assert_eq!(cookie(len), None, "length {len}");
        }
        assert_eq!(cookie(8), Some(((0..8).collect(), vec![])));
        for len in [16, 24, 40] {
            let (_, server) = cookie(len).unwrap();
            assert_eq!((server.len(), server[0]), (len - 8, 8), "length {len}");
        }
        let first_wins = [
            &[0, 10, 0, 8, 1, 1, 1, 1, 1, 1, 1, 1][..],
            &[0, 10, 0, 3, 2, 2, 2],
        ]
        .concat();
        let p = with_opt(&first_wins);
        let opt = Query::parse(&p).unwrap().opt.unwrap();
        assert!(matches!(
            opt.cookie,
            Cookie::Present {
                client: [1, ..],
                ..
            }
        ));
        let p = with_opt(&[0, 8, 0, 4, 0, 1, 0, 0]);
        assert_eq!(
            Query::parse(&p).unwrap().opt.unwrap().cookie,
            Cookie::Absent
        );
    }

    #[test]
    fn compressed_or_extra_records_are_not_plain() {
        // QNAME as a pointer to itself: no question, no type either (the name cannot be read
        // past the pointer's target, but skipping it works).
        let mut p = message(RecordType::MX, None).to_vec().unwrap();
        p.truncate(HEADER_LEN);
        p.extend_from_slice(&[0xC0, 12, 0, 15, 0, 1]);
        let q = Query::parse(&p).unwrap();
        assert!(q.question.is_none() && !q.plain);
        assert_eq!(q.first_qtype, Some(15), "the type is read past a pointer");

        let mut two = message(RecordType::A, None).to_vec().unwrap();
        two.extend_from_slice(&[0, 0, 1, 0, 1]);
        two[5] = 2;
        let q = Query::parse(&two).unwrap();
        assert!(q.question.is_none() && !q.plain && q.first_qtype == Some(1));

        let mut trailing = message(RecordType::A, None).to_vec().unwrap();
        trailing.push(0);
        assert!(
            !Query::parse(&trailing).unwrap().plain,
            "bytes after the question"
        );
        let mut opt = with_opt(&[]);
        assert!(Query::parse(&opt).unwrap().plain);
        opt.push(0);
        assert!(
            !Query::parse(&opt).unwrap().plain,
            "bytes after the OPT record"
        );
    }
}
