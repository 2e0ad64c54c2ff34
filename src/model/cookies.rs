//! `[dns.cookies]` after validation: the server secret (RFC 7873, RFC 9018 §5) read from its file, or
//! created there with a random one when the file is absent, so that a restart keeps the
//! cookies clients hold and a fleet can share one file; and the BADCOOKIE policy.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand::RngCore;

use super::Builder;
use crate::config::{ConfigError, CookiesConfig};

/// Bytes of a server secret (SipHash-2-4's key, RFC 9018 §4.4).
pub const SECRET_LEN: usize = 16;

/// Where the secret is kept when `secret_file` is not set, beside the config file.
pub const DEFAULT_SECRET_FILE: &str = "meridian.cookie-secret";

/// Largest secret file read: two lines of hex and some comments; a wrong path such as
/// `/dev/zero` must not make a reload read forever.
const SECRET_FILE_MAX: u64 = 4096;

/// A server secret; never shown in `Debug` output or logs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CookieSecret(pub [u8; SECRET_LEN]);

impl fmt::Debug for CookieSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieSecret(***)")
    }
}

/// `[dns.cookies]` after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSettings {
    /// The secret new server cookies are made with (the file's first line).
    pub secret: CookieSecret,
    /// A second secret cookies still verify with (the file's second line), during a rollover.
    pub previous: Option<CookieSecret>,
    /// UDP queries with a client cookie and no valid server cookie get BADCOOKIE.
    pub require: bool,
    /// Where the secrets were read from (or created).
    pub secret_file: PathBuf,
}

/// Why the secret file cannot be used; the line is the file's own.
#[derive(Debug, thiserror::Error)]
enum SecretFileError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a regular file", .0.display())]
    NotAFile(PathBuf),
    #[error("{} is larger than {SECRET_FILE_MAX} bytes (it holds one or two secrets)", .0.display())]
    TooLarge(PathBuf),
    #[error("{}:{line}: {text:?} is not a secret of 32 hex digits (16 bytes)", path.display())]
    NotHex {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error("{}: holds no secret (one line of 32 hex digits)", .0.display())]
    Empty(PathBuf),
    #[error("{}:{line}: a third secret; the file holds the secret cookies are made with and at most one previous one", path.display())]
    TooMany { path: PathBuf, line: usize },
}

impl Builder<'_> {
    /// `[dns.cookies]`: every key is checked (and the secret read) even when `enabled = false`.
    pub(super) fn cookies(
        &self,
        config: Option<&CookiesConfig>,
    ) -> Result<Option<CookieSettings>, ConfigError> {
        let Some(c) = config else {
            return Ok(None);
        };
        let base = self.src.path.parent().unwrap_or(Path::new("."));
        let (secret_file, span) = match &c.secret_file {
            Some(f) => (base.join(f.get_ref()), f.span()),
            // The table's own line is not known; the file's first line is the best there is.
            None => (base.join(DEFAULT_SECRET_FILE), 0..0),
        };
        let (secret, previous) = match read_or_create(&secret_file) {
            Ok(secrets) => secrets,
            Err(reason) => return self.err(span, format!("dns.cookies.secret_file: {reason}")),
        };
        let settings = CookieSettings {
            secret,
            previous,
            require: c.require.as_ref().is_some_and(|v| *v.get_ref()),
            secret_file,
        };
        let enabled = c.enabled.as_ref().is_none_or(|v| *v.get_ref());
        Ok(enabled.then_some(settings))
    }
}

/// The secrets in `path`; when it does not exist, a random secret written there first (mode
/// 0600, never over a file another instance created at the same moment).
fn read_or_create(path: &Path) -> Result<(CookieSecret, Option<CookieSecret>), SecretFileError> {
    let read = |source| SecretFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => return Err(SecretFileError::NotAFile(path.to_path_buf())),
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => create(path)?,
        Err(e) => return Err(read(e)),
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(SECRET_FILE_MAX + 1).read_to_end(&mut bytes))
        .map_err(read)?;
    if bytes.len() as u64 > SECRET_FILE_MAX {
        return Err(SecretFileError::TooLarge(path.to_path_buf()));
    }
    parse(path, &String::from_utf8_lossy(&bytes))
}

/// Writes a fresh random secret to `path`, readable by its owner only. A file that appeared
/// since the caller looked is left as it is (and read).
fn create(path: &Path) -> Result<(), SecretFileError> {
    let mut secret = [0u8; SECRET_LEN];
    rand::rng().fill_bytes(&mut secret);
    let text = format!("{}\n", data_encoding::HEXLOWER.encode(&secret));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()));
    match written {
        Err(e) if e.kind() != ErrorKind::AlreadyExists => Err(SecretFileError::Create {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// One secret per line (32 hex digits, an optional `0x` as Knot writes them); blank lines and
/// lines starting with `#` are skipped. The first makes cookies, the second only verifies.
fn parse(path: &Path, text: &str) -> Result<(CookieSecret, Option<CookieSecret>), SecretFileError> {
    let mut secrets = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let hex = line.strip_prefix("0x").unwrap_or(line);
        let secret = data_encoding::HEXLOWER_PERMISSIVE
            .decode(hex.as_bytes())
            .ok()
            .and_then(|b| <[u8; SECRET_LEN]>::try_from(b).ok())
            .ok_or_else(|| SecretFileError::NotHex {
                path: path.to_path_buf(),
                line: n + 1,
                text: line.chars().take(40).collect(),
            })?;
        if secrets.len() == 2 {
            return Err(SecretFileError::TooMany {
                path: path.to_path_buf(),
                line: n + 1,
            });
        }
        secrets.push(CookieSecret(secret));
    }
    match secrets[..] {
        [] => Err(SecretFileError::Empty(path.to_path_buf())),
        [current] => Ok((current, None)),
        [current, previous, ..] => Ok((current, Some(previous))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_files_are_read_line_by_line() {
        let p = Path::new("s");
        let (a, b) = parse(p, "# fleet secret\n\nE5E973E5A6B2A43F48E7DC849E37BFCF\n").unwrap();
        assert_eq!(a.0[..2], [0xe5, 0xe9]);
        assert!(b.is_none());
        let (a, b) = parse(
            p,
            "0x445536bcd2513298075a5d379663c962\ndd3bdf9344b678b185a6f5cb60fca715\n",
        )
        .unwrap();
        assert_eq!((a.0[0], b.unwrap().0[0]), (0x44, 0xdd));
        let err = |text: &str| parse(p, text).unwrap_err().to_string();
        assert_eq!(
            err("\nabc\n"),
            "s:2: \"abc\" is not a secret of 32 hex digits (16 bytes)"
        );
        assert!(err("e5e973e5a6b2a43f48e7dc849e37bfcf00\n").starts_with("s:1: "));
        assert!(err("zz e973e5a6b2a43f48e7dc849e37bfcf\n").starts_with("s:1: "));
        assert_eq!(
            err("# none\n"),
            "s: holds no secret (one line of 32 hex digits)"
        );
        let three = "e5e973e5a6b2a43f48e7dc849e37bfcf\n".repeat(3);
        assert!(err(&three).starts_with("s:3: a third secret"));
        assert_eq!(format!("{a:?}"), "CookieSecret(***)");
    }
}
