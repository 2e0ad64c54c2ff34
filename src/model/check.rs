//! The check types beyond a connect and an HTTP request, after validation: a TCP dialogue
//! (`send`/`expect` steps, as HAProxy's `tcp-check`), a DNS query of the member, and a command
//! run with the member's address. Pure descriptions; the prober runs them.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use toml::Spanned;

use super::Builder;
use super::monitor::{DEFAULT_BODY_LIMIT, ProbeKind};
use crate::config::{ConfigError, MonitorConfig};

/// Commands of one `exec` monitor running at once unless configured otherwise.
pub const DEFAULT_MAX_CONCURRENT: usize = 8;

/// A TCP dialogue: each step sends its bytes, then reads until its expectation is met.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TcpScript {
    /// The steps, in order; at least one.
    pub steps: Vec<Step>,
    /// Bytes read at most per step while looking for its expectation.
    pub body_limit: usize,
}

/// One step of a [`TcpScript`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Step {
    /// Sent first (may be empty: a banner is only read).
    pub send: Vec<u8>,
    /// What the answer must hold; `None`: nothing is read.
    pub expect: Option<Expect>,
}

/// What a step's answer must hold.
#[derive(Debug, Clone)]
pub enum Expect {
    /// These bytes, anywhere.
    Substring(Vec<u8>),
    /// A match of this expression.
    Regex(regex::bytes::Regex),
}

impl Expect {
    /// Does `answer` meet it?
    pub fn met_by(&self, answer: &[u8]) -> bool {
        match self {
            Expect::Substring(s) => s.is_empty() || answer.windows(s.len()).any(|w| w == s),
            Expect::Regex(r) => r.is_match(answer),
        }
    }
}

impl std::fmt::Display for Expect {
    /// `"+PONG"` or `/role:master/`, as reasons show it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Substring(s) => write!(f, "\"{}\"", s.escape_ascii()),
            Expect::Regex(r) => write!(f, "/{}/", r.as_str()),
        }
    }
}

impl PartialEq for Expect {
    fn eq(&self, other: &Expect) -> bool {
        match (self, other) {
            (Expect::Substring(a), Expect::Substring(b)) => a == b,
            (Expect::Regex(a), Expect::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl Eq for Expect {}

impl Hash for Expect {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Expect::Substring(s) => (0u8, s).hash(state),
            Expect::Regex(r) => (1u8, r.as_str()).hash(state),
        }
    }
}

/// A DNS query sent to the member, and what the answer must be.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsCheck {
    /// The name asked.
    pub name: Name,
    /// The type asked.
    pub qtype: RecordType,
    /// The response code that counts as up.
    pub rcode: ResponseCode,
    /// An address the answer must hold.
    pub address: Option<IpAddr>,
}

/// A command run per probe: exit 0 is up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExecCheck {
    /// The program (a path, or a name looked up in `PATH`).
    pub command: String,
    /// Its arguments, with `{address}` and `{port}` still in them.
    pub args: Vec<String>,
    /// Most commands of this monitor running at once.
    pub max_concurrent: usize,
    /// `weight_from = "exit"`: the exit status reports a weight share ([`exit_share`]).
    pub exit_weight: bool,
}

/// What an exit status says under `weight_from = "exit"` (keepalived's `misc_dynamic`, as a
/// share): 0 is up at a share of 100, 1 is down (`None`), 2 to 102 are up at a share of
/// status − 2 (0 to 100 %), and above 102 counts as 100.
pub fn exit_share(code: i32) -> Option<u8> {
    match code {
        0 => Some(100),
        2..=102 => u8::try_from(code - 2).ok(),
        103..=255 => Some(100),
        _ => None,
    }
}

/// Which keys belong to which monitor types (`tcp+` is a tcp monitor with send/expect).
const KEYS: [(&str, &[&str]); 18] = [
    ("path", &["http", "https"]),
    ("method", &["http", "https"]),
    ("host", &["http", "https"]),
    ("expect_status", &["http", "https"]),
    ("expect_body", &["http", "https"]),
    ("verify_tls", &["https"]),
    ("body_limit", &["http", "https", "tcp"]),
    ("send", &["tcp"]),
    ("expect", &["tcp"]),
    ("expect_regex", &["tcp"]),
    ("steps", &["tcp"]),
    ("query_name", &["dns"]),
    ("query_type", &["dns"]),
    ("expect_rcode", &["dns"]),
    ("expect_address", &["dns"]),
    ("command", &["exec"]),
    ("args", &["exec"]),
    ("weight_from", &["http", "https", "exec"]),
];

fn set_keys(cfg: &MonitorConfig) -> [bool; 18] {
    [
        cfg.path.is_some(),
        cfg.method.is_some(),
        cfg.host.is_some(),
        cfg.expect_status.is_some(),
        cfg.expect_body.is_some(),
        cfg.verify_tls.is_some(),
        cfg.body_limit.is_some(),
        cfg.send.is_some(),
        cfg.expect.is_some(),
        cfg.expect_regex.is_some(),
        cfg.steps.is_some(),
        cfg.query_name.is_some(),
        cfg.query_type.is_some(),
        cfg.expect_rcode.is_some(),
        cfg.expect_address.is_some(),
        cfg.command.is_some(),
        cfg.args.is_some(),
        cfg.weight_from.is_some(),
    ]
}

impl Builder<'_> {
    /// Refuses a key that does not apply to the monitor's type.
    pub(super) fn check_keys(
        &self,
        name: &str,
        m: &Spanned<MonitorConfig>,
    ) -> Result<(), ConfigError> {
        let cfg = m.get_ref();
        let kind = cfg.kind.get_ref().as_str();
        let known = ["http", "https", "tcp", "dns", "exec", "agent"].contains(&kind);
        for ((key, types), set) in KEYS.iter().zip(set_keys(cfg)) {
            if set && known && !types.contains(&kind) {
                let which = match types {
                    [one] => format!("{one} monitors"),
                    [many @ .., last] => format!("{} and {last} monitors", many.join(", ")),
                    [] => unreachable!("every key applies to some type"),
                };
                return self.err(
                    m.span(),
                    format!("monitors.{name}.{key} applies to {which} only"),
                );
            }
        }
        if cfg.max_concurrent.is_some() && kind != "exec" {
            return self.err(
                m.span(),
                format!("monitors.{name}.max_concurrent applies to exec monitors only"),
            );
        }
        Ok(())
    }

    /// The kind of a `tcp` monitor with `send`/`expect`/`steps`, of a `dns` or an `exec`
    /// monitor; `None` for the other types.
    pub(super) fn check_kind(
        &self,
        name: &str,
        m: &Spanned<MonitorConfig>,
    ) -> Result<Option<ProbeKind>, ConfigError> {
        let cfg = m.get_ref();
        match cfg.kind.get_ref().as_str() {
            "tcp" => self.tcp_script(name, m),
            "dns" => self.dns_check(name, m).map(|c| Some(ProbeKind::Dns(c))),
            "exec" => self.exec_check(name, m).map(|c| Some(ProbeKind::Exec(c))),
            _ => Ok(None),
        }
    }

    fn tcp_script(
        &self,
        name: &str,
        m: &Spanned<MonitorConfig>,
    ) -> Result<Option<ProbeKind>, ConfigError> {
        let cfg = m.get_ref();
        let single = cfg.send.is_some() || cfg.expect.is_some() || cfg.expect_regex.is_some();
        let mut steps = Vec::new();
        match &cfg.steps {
            Some(_) if single => {
                return self.err(
                    m.span(),
                    format!("monitors.{name}: give either send/expect or steps, not both"),
                );
            }
            Some(list) if list.is_empty() => {
                return self.err(m.span(), format!("monitors.{name}.steps is empty"));
            }
            Some(list) => {
                for (i, step) in list.iter().enumerate() {
                    let s = step.get_ref();
                    let key = format!("monitors.{name}.steps[{i}]");
                    steps.push(self.step(
                        &key,
                        step.span(),
                        &s.send,
                        &s.expect,
                        &s.expect_regex,
                    )?);
                }
            }
            None if single => {
                let key = format!("monitors.{name}");
                steps.push(self.step(&key, m.span(), &cfg.send, &cfg.expect, &cfg.expect_regex)?);
            }
            None => {
                if cfg.body_limit.is_some() {
                    return self.err(
                        m.span(),
                        format!("monitors.{name}.body_limit needs expect or steps"),
                    );
                }
                return Ok(None);
            }
        }
        Ok(Some(ProbeKind::TcpScript(TcpScript {
            steps,
            body_limit: cfg.body_limit.unwrap_or(DEFAULT_BODY_LIMIT),
        })))
    }

    fn step(
        &self,
        key: &str,
        span: std::ops::Range<usize>,
        send: &Option<Spanned<String>>,
        expect: &Option<Spanned<String>>,
        expect_regex: &Option<Spanned<String>>,
    ) -> Result<Step, ConfigError> {
        let bytes = |v: &Spanned<String>, what: &str| {
            unescape(v.get_ref())
                .or_else(|e| self.err(v.span(), format!("{key}.{what} = {:?}: {e}", v.get_ref())))
        };
        let send = match send {
            Some(v) => bytes(v, "send")?,
            None => Vec::new(),
        };
        let expect = match (expect, expect_regex) {
            (Some(_), Some(_)) => {
                return self.err(
                    span,
                    format!("{key}: give expect or expect_regex, not both"),
                );
            }
            (Some(v), None) => Some(Expect::Substring(bytes(v, "expect")?)),
            (None, Some(v)) => match regex::bytes::Regex::new(v.get_ref()) {
                Ok(r) => Some(Expect::Regex(r)),
                Err(e) => {
                    let first = e.to_string();
                    let first = first.lines().last().unwrap_or_default().trim().to_string();
                    return self.err(
                        v.span(),
                        format!("{key}.expect_regex = {:?}: {first}", v.get_ref()),
                    );
                }
            },
            (None, None) => None,
        };
        if send.is_empty() && expect.is_none() {
            return self.err(span, format!("{key}: a step needs send or expect"));
        }
        Ok(Step { send, expect })
    }

    fn dns_check(&self, name: &str, m: &Spanned<MonitorConfig>) -> Result<DnsCheck, ConfigError> {
        let cfg = m.get_ref();
        let key = format!("monitors.{name}");
        let Some(query) = &cfg.query_name else {
            return self.err(m.span(), format!("{key}: a dns monitor needs query_name"));
        };
        let qname = match Name::from_ascii(query.get_ref()) {
            Ok(mut n) => {
                n.set_fqdn(true);
                n
            }
            Err(e) => {
                return self.err(
                    query.span(),
                    format!(
                        "{key}.query_name = {:?}: not a DNS name: {e}",
                        query.get_ref()
                    ),
                );
            }
        };
        let qtype = match &cfg.query_type {
            None => RecordType::A,
            Some(t) => match t.get_ref().to_ascii_uppercase().parse::<RecordType>() {
                Ok(t) => t,
                Err(_) => {
                    return self.err(
                        t.span(),
                        format!("{key}.query_type = {:?}: not a record type", t.get_ref()),
                    );
                }
            },
        };
        let rcode = match &cfg.expect_rcode {
            None => ResponseCode::NoError,
            Some(r) => match rcode(r.get_ref()) {
                Some(code) => code,
                None => {
                    return self.err(
                        r.span(),
                        format!(
                            "{key}.expect_rcode = {:?}: expected NOERROR, NXDOMAIN, SERVFAIL, REFUSED, FORMERR or NOTIMP",
                            r.get_ref()
                        ),
                    );
                }
            },
        };
        let address = match &cfg.expect_address {
            None => None,
            Some(a) => match a.get_ref().parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    return self.err(
                        a.span(),
                        format!(
                            "{key}.expect_address = {:?}: not an IP address",
                            a.get_ref()
                        ),
                    );
                }
            },
        };
        Ok(DnsCheck {
            name: qname,
            qtype,
            rcode,
            address,
        })
    }

    fn exec_check(&self, name: &str, m: &Spanned<MonitorConfig>) -> Result<ExecCheck, ConfigError> {
        let cfg = m.get_ref();
        let key = format!("monitors.{name}");
        let command = match &cfg.command {
            Some(c) if !c.get_ref().is_empty() => c.get_ref().clone(),
            _ => return self.err(m.span(), format!("{key}: an exec monitor needs command")),
        };
        let max_concurrent = match &cfg.max_concurrent {
            None => DEFAULT_MAX_CONCURRENT,
            Some(n) if *n.get_ref() == 0 => {
                return self.err(n.span(), format!("{key}.max_concurrent must be at least 1"));
            }
            Some(n) => *n.get_ref(),
        };
        let exit_weight = match &cfg.weight_from {
            None => false,
            Some(w) if w.get_ref() == "exit" => true,
            Some(w) => {
                return self.err(
                    w.span(),
                    format!(
                        "{key}.weight_from = {:?}: an exec monitor reads its share from \"exit\" (the exit status) only",
                        w.get_ref()
                    ),
                );
            }
        };
        Ok(ExecCheck {
            command,
            args: cfg.args.clone().unwrap_or_default(),
            max_concurrent,
            exit_weight,
        })
    }
}

/// A response code by its mnemonic (RFC 1035 §4.1.1, RFC 2136).
fn rcode(word: &str) -> Option<ResponseCode> {
    Some(match word.to_ascii_uppercase().as_str() {
        "NOERROR" => ResponseCode::NoError,
        "FORMERR" => ResponseCode::FormErr,
        "SERVFAIL" => ResponseCode::ServFail,
        "NXDOMAIN" => ResponseCode::NXDomain,
        "NOTIMP" => ResponseCode::NotImp,
        "REFUSED" => ResponseCode::Refused,
        _ => return None,
    })
}

/// The bytes of a `send`/`expect` string: `\r`, `\n`, `\t`, `\0`, `\\` and `\xHH` are read as
/// escapes (TOML's own escapes in "basic" strings have been applied already, so this serves
/// 'literal' strings and bytes TOML cannot write).
pub fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some((&e, tail)) = rest.split_first() else {
            return Err("ends with a lone \\".to_string());
        };
        rest = tail;
        out.push(match e {
            b'r' => b'\r',
            b'n' => b'\n',
            b't' => b'\t',
            b'0' => 0,
            b'\\' => b'\\',
            b'x' => {
                let hex = rest
                    .get(..2)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or("\\x needs two hex digits")?;
                rest = &rest[2..];
                hex
            }
            other => return Err(format!("unknown escape \\{}", other as char)),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(unescape(r"PING\r\n").unwrap(), b"PING\r\n");
        assert_eq!(unescape("PING\r\n").unwrap(), b"PING\r\n");
        assert_eq!(unescape(r"\x00\xff\\\t").unwrap(), b"\x00\xff\\\t");
        assert_eq!(unescape(r"a\q").unwrap_err(), "unknown escape \\q");
        assert_eq!(unescape(r"\x4").unwrap_err(), "\\x needs two hex digits");
        assert_eq!(unescape("a\\").unwrap_err(), "ends with a lone \\");
    }

    #[test]
    fn expectations() {
        assert!(Expect::Substring(b"+PONG".to_vec()).met_by(b"+PONG\r\n"));
        assert!(!Expect::Substring(b"+PONG".to_vec()).met_by(b"-ERR\r\n"));
        let r = Expect::Regex(regex::bytes::Regex::new("role:(master|primary)").unwrap());
        assert!(r.met_by(b"# Replication\r\nrole:master\r\n"));
        assert!(!r.met_by(b"role:slave"));
        assert_eq!(r.to_string(), "/role:(master|primary)/");
        assert_eq!(
            Expect::Substring(b"+PONG".to_vec()).to_string(),
            "\"+PONG\""
        );
    }

    #[test]
    fn exit_statuses_as_shares() {
        let cases = [
            (0, Some(100)),
            (1, None),
            (2, Some(0)),
            (27, Some(25)),
            (102, Some(100)),
            (103, Some(100)),
            (255, Some(100)),
            (-1, None),
            (256, None),
        ];
        for (code, share) in cases {
            assert_eq!(exit_share(code), share, "exit {code}");
        }
    }
}
