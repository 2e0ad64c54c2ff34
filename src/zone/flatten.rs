//! Master-file text before its entries are read: parenthesised groups rewritten onto their
//! first line and comments dropped, so that every line is one entry and keeps its line number;
//! quoting checked as hickory's lexer sees it; and the count of owner names a zone's map is
//! sized for.

use std::borrow::Cow;

/// About the number of names: lines that start with an owner other than the line before's, so
/// the map is sized once instead of growing (and briefly holding two tables) while a large zone
/// loads, and not sized for every record either (a table twice too large is most of a zone's
/// memory).
pub(super) fn owner_lines(text: &str) -> usize {
    let mut previous = "";
    let mut owners = 1;
    for line in text.split('\n') {
        if line.starts_with(|c: char| c.is_whitespace() || c == '$') {
            continue;
        }
        let owner = line.split([' ', '\t']).next().unwrap_or("");
        if !owner.is_empty() && owner != previous {
            owners += 1;
            previous = owner;
        }
    }
    owners
}

/// Rewrites every parenthesised multi-line entry onto its first line (RFC 1035 §5.1 grouping),
/// drops comments, and pads with empty lines so every entry keeps its line number.
///
/// hickory-proto's lexer treats `"` inside parentheses as an ordinary character, so
/// `TXT ( "a" "b" )` would load with the quotes in the data; on one line it is read correctly.
pub(super) fn flatten_groups(text: &str) -> Result<Cow<'_, str>, (usize, String)> {
    if text.bytes().any(|b| matches!(b, b'(' | b')' | b';')) {
        flatten_full(text).map(Cow::Owned)
    } else {
        // Nothing to rewrite (no groups, no comments): the text stands as it is, once its
        // quoting is checked as `flatten_full` checks it.
        check_quotes(text).map(|()| Cow::Borrowed(text))
    }
}

/// Where a character stands with respect to quoting, following hickory's lexer: a `"` opens a
/// string only where a word starts (at the start of a line, after blanks, after a string or a
/// parenthesis), elsewhere it is an ordinary character; inside a string `\` escapes the next
/// character. Unlike the lexer, a string may not run past the end of its line, so that every
/// line of the flattened text is one entry for both the line reader and the chunker.
#[derive(Default)]
struct Quoting {
    in_quote: bool,
    escaped: bool,
    word_start: bool,
}

impl Quoting {
    fn new_line(&mut self) {
        self.escaped = false;
        self.word_start = true;
    }

    /// Steps over `c` (not a newline); true when it is inside a string or is one of its quotes.
    fn step(&mut self, c: char) -> bool {
        if self.in_quote {
            if self.escaped {
                self.escaped = false;
            } else if c == '\\' {
                self.escaped = true;
            } else if c == '"' {
                self.in_quote = false;
                self.word_start = true;
            }
            return true;
        }
        if c == '"' && self.word_start {
            self.in_quote = true;
            return true;
        }
        self.word_start = c.is_whitespace() || c == '(' || c == ')';
        false
    }
}

/// The errors [`flatten_full`] gives a text without parentheses and comments.
fn check_quotes(text: &str) -> Result<(), (usize, String)> {
    let mut quoting = Quoting {
        word_start: true,
        ..Quoting::default()
    };
    for (index, line) in text.split('\n').enumerate() {
        quoting.new_line();
        for c in line.chars() {
            quoting.step(c);
        }
        if quoting.in_quote {
            return Err((index + 1, "unterminated quoted string".to_string()));
        }
    }
    Ok(())
}

/// [`flatten_groups`] for a text with groups or comments: a rewritten copy.
fn flatten_full(text: &str) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(text.len());
    let mut quoting = Quoting {
        word_start: true,
        ..Quoting::default()
    };
    let (mut depth, mut escaped, mut in_comment) = (0u32, false, false);
    let (mut line, mut open_line, mut pending) = (1usize, 0usize, 0usize);
    for c in text.chars() {
        if c == '\n' {
            if quoting.in_quote {
                return Err((line, "unterminated quoted string".to_string()));
            }
            line += 1;
            in_comment = false;
            escaped = false;
            quoting.new_line();
            if depth > 0 {
                out.push(' ');
                pending += 1;
            } else {
                out.push('\n');
                out.extend(std::iter::repeat_n('\n', pending));
                pending = 0;
            }
            continue;
        }
        if in_comment {
            continue;
        }
        if !quoting.in_quote && escaped {
            // `\(`, `\)` and `\;` outside strings are kept as written.
            escaped = false;
            quoting.step(c);
            out.push(c);
            continue;
        }
        if quoting.step(c) {
            out.push(c);
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                out.push(c);
            }
            ';' => in_comment = true,
            '(' => {
                if depth == 0 {
                    open_line = line;
                }
                depth += 1;
                out.push(' ');
            }
            ')' if depth == 0 => return Err((line, "unmatched ')'".to_string())),
            ')' => {
                depth -= 1;
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    if depth > 0 {
        return Err((open_line, "'(' is never closed".to_string()));
    }
    if quoting.in_quote {
        return Err((line, "unterminated quoted string".to_string()));
    }
    out.extend(std::iter::repeat_n('\n', pending));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::{Name, RData, RecordType};

    use super::*;
    use crate::zone::Found;
    use crate::zone::tests::{HEAD, zone};

    #[test]
    fn quoted_strings_inside_parentheses_keep_their_meaning() {
        let text = format!("{HEAD}t TXT ( \"a b\" ; comment\n  \"c;d\" )\nafter A 192.0.2.9\n");
        let z = zone(&text).unwrap();
        let n = Name::from_ascii("t.example.test.").unwrap();
        let Found::Exact(node) = z.find(&n, RecordType::TXT) else {
            panic!("t exists")
        };
        let RData::TXT(txt) = &node.rrset(RecordType::TXT).unwrap().records(&n)[0].data else {
            panic!("TXT data")
        };
        let strings: Vec<&[u8]> = txt.txt_data.iter().map(|s| &s[..]).collect();
        assert_eq!(strings, [&b"a b"[..], &b"c;d"[..]]);
        let e = zone(&format!("{HEAD}x TXT ( \"a\"\ny A 192.0.2.1\n")).unwrap_err();
        assert_eq!((e.line, e.reason.as_str()), (5, "'(' is never closed"));
    }

    #[test]
    fn text_without_groups_is_checked_as_flattening_would() {
        for text in [
            "a TXT \"x\"\n",
            "a TXT \"x\n\"\n",
            "a TXT \"x\\\"\n",
            "a TXT x\\\n\"y\"\n",
            "a TXT x\"y \"z\n",
            "a TXT \"x",
            "a TXT \\\"x\n",
            "",
        ] {
            let quick = flatten_groups(text).map(|flat| flat.into_owned());
            assert_eq!(quick, flatten_full(text), "{text:?}");
        }
    }
}
