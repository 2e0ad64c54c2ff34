//! The module graph stays the one ARCHITECTURE.md draws: its "Dependency rules" table gives each
//! top-level module of `src/` a rank, and a module may only name modules of a lower rank
//! (`use crate::…` lines and inline `crate::…` paths; test modules and comments aside). Also:
//! no two top-level modules name each other, every module is in the table, and no file in
//! `src/` is over 900 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 900;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Module → rank, from the table under "## Dependency rules" in ARCHITECTURE.md: rows
/// `| rank | `a`, `b` | … |`.
fn ranks() -> BTreeMap<String, u32> {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let section = doc
        .split("\n## Dependency rules")
        .nth(1)
        .expect("ARCHITECTURE.md has a \"## Dependency rules\" section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut ranks = BTreeMap::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(rank), Some(modules)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let Ok(rank) = rank.parse::<u32>() else {
            continue;
        };
        for module in modules.split(',') {
            let module = module.trim().trim_matches('`');
            assert!(
                ranks.insert(module.to_string(), rank).is_none(),
                "{module} is in the table twice"
            );
        }
    }
    assert!(ranks.len() > 5, "the table was not read: {ranks:?}");
    ranks
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`src/dns/fast.rs` → `dns`); `None` for
/// the crate root and the binary.
fn module_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(root().join("src")).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// The code of a file without comments and without `#[cfg(test)]` items.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut skip_depth: Option<i64> = None;
    let mut depth = 0i64;
    let mut test_next = false;
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("").to_string();
        let trimmed = code.trim();
        let opens = code.matches('{').count() as i64;
        let closes = code.matches('}').count() as i64;
        if skip_depth.is_none() && test_next && !trimmed.is_empty() && !trimmed.starts_with("#[") {
            test_next = false;
            skip_depth = Some(depth);
        }
        if trimmed == "#[cfg(test)]" && skip_depth.is_none() {
            test_next = true;
        }
        depth += opens - closes;
        match skip_depth {
            Some(d) => {
                // The item ends where its braces close (or at its `;` for a one-line item).
                if depth <= d && (closes > 0 || trimmed.ends_with(';')) {
                    skip_depth = None;
                }
            }
            None => out.push((i + 1, code)),
        }
    }
    out
}

/// The top-level modules a piece of code names through `crate::`, with the text that names
/// them: inline paths and the members of `use crate::{…}` groups.
fn named_modules(code: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        let after = &rest[at + "crate::".len()..];
        rest = after;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `mycrate::`, not `crate::`.
        }
        if let Some(group) = after.strip_prefix('{') {
            let mut level = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => level += 1,
                    '}' if level == 0 => break,
                    '}' => level -= 1,
                    ',' if level == 0 => {
                        push_first_segment(&item, &mut out);
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            push_first_segment(&item, &mut out);
        } else {
            push_first_segment(after, &mut out);
        }
    }
    out
}

fn push_first_segment(path: &str, out: &mut Vec<(String, String)>) {
    let path = path.trim();
    let name: String = path
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if !name.is_empty() && name.chars().next().is_some_and(|c| c.is_lowercase()) {
        let shown: String = path
            .chars()
            .take_while(|c| !matches!(c, ';' | ',' | '(' | ' '))
            .collect();
        out.push((name, format!("crate::{shown}")));
    }
}

#[test]
fn modules_only_use_modules_below_them() {
    let ranks = ranks();
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    files.sort();
    let mut broken = Vec::new();
    let mut edges: BTreeSet<(String, String)> = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read source");
        let shown = file
            .strip_prefix(root())
            .unwrap_or(file)
            .display()
            .to_string();
        let lines = text.lines().count();
        if lines > MAX_LINES {
            broken.push(format!(
                "{shown}: {lines} lines, over {MAX_LINES}: it holds two things"
            ));
        }
        let Some(module) = module_of(file) else {
            continue;
        };
        let Some(&rank) = ranks.get(&module) else {
            broken.push(format!(
                "{shown}: module `{module}` is not in ARCHITECTURE.md's dependency rules"
            ));
            continue;
        };
        for (line, code) in code_lines(&text) {
            for (used, path) in named_modules(&code) {
                if used == module {
                    continue;
                }
                edges.insert((module.clone(), used.clone()));
                match ranks.get(&used) {
                    Some(&r) if r < rank => {}
                    Some(&r) => broken.push(format!(
                        "{shown}:{line}: `{path}`: {module} (rank {rank}) may not use {used} (rank {r})"
                    )),
                    None => broken.push(format!(
                        "{shown}:{line}: `{path}`: {used} is not in ARCHITECTURE.md's dependency rules"
                    )),
                }
            }
        }
    }
    for (a, b) in &edges {
        if edges.contains(&(b.clone(), a.clone())) && a < b {
            broken.push(format!("{a} and {b} use each other"));
        }
    }
    assert!(broken.is_empty(), "\n{}\n", broken.join("\n"));
    assert!(
        edges.contains(&("dns".to_string(), "select".to_string())),
        "the scan found the imports: {edges:?}"
    );
}

#[test]
fn the_scanner_reads_groups_paths_and_skips_tests() {
    let found = |code: &str| -> Vec<String> {
        code_lines(code)
            .iter()
            .flat_map(|(_, c)| named_modules(c))
            .map(|(m, _)| m)
            .collect()
    };
    assert_eq!(
        found("use crate::{model::{Model, Pool}, select::pick, wire};\n"),
        ["model", "select", "wire"]
    );
    assert_eq!(
        found("let x = crate::hash::mix(1); // crate::api\n"),
        ["hash"]
    );
    assert_eq!(
        found(
            "use crate::zone::Zone;\n#[cfg(test)]\nmod tests {\n    use crate::api::x;\n}\nuse crate::geo::Geo;\n"
        ),
        ["zone", "geo"]
    );
    assert_eq!(
        found("/// [`crate::dns::rrl`]\nfn f() {}\n"),
        Vec::<String>::new()
    );
}
