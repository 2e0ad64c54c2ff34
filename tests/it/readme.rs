//! The README's two top commands as a new user runs them: the test command installs what the
//! tests need with a fresh package list, as root without `sudo` and as a user with it
//! (`apt-get` and `sudo` are stand-ins that record their calls), and installs exactly what
//! `.ci/run` installs.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn repo_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The README's top `sh` block: (run command, test command), comments cut.
fn top_commands() -> (String, String) {
    let readme = repo_file("README.md");
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a ```sh block at the top of the README");
    let lines: Vec<String> = block
        .lines()
        .map(|l| l.split("  #").next().unwrap_or(l).trim().to_string())
        .collect();
    assert_eq!(lines.len(), 2, "{block}");
    (lines[0].clone(), lines[1].clone())
}

/// The packages of `apt-get install -y PKG…` in `command`.
fn installed(command: &str) -> BTreeSet<String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let start = words
        .windows(3)
        .position(|w| w == ["apt-get", "install", "-y"])
        .expect("apt-get install -y")
        + 3;
    words[start..]
        .iter()
        .take_while(|w| **w != "&&")
        .map(|w| w.to_string())
        .collect()
}

fn script(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs `command` with only stand-ins on PATH (and `sudo` among them when `with_sudo`);
/// returns what they recorded, one call per line.
fn run_with_stand_ins(command: &str, with_sudo: bool) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls");
    script(dir.path(), "apt-get", "echo \"apt-get $*\" >> \"$CALLS\"");
    script(dir.path(), "cargo", "echo \"cargo $*\" >> \"$CALLS\"");
    if with_sudo {
        script(
            dir.path(),
            "sudo",
            "echo \"sudo $1 $2\" >> \"$CALLS\"; exec \"$@\"",
        );
    }
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .env_clear()
        .env("PATH", dir.path())
        .env("CALLS", &log)
        .status()
        .expect("run /bin/sh");
    assert!(status.success(), "{command}: {status}");
    std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn the_test_command_works_as_root_without_sudo_and_as_a_user_with_it() {
    let (run, test) = top_commands();
    assert_eq!(
        run,
        "cargo run --release -- serve --config examples/meridian.toml"
    );
    assert!(test.ends_with("&& cargo test --locked"), "{test}");

    // Root on a fresh machine: no sudo; the package list is fetched before installing.
    assert_eq!(
        run_with_stand_ins(&test, false),
        ["apt-get update", "apt-get install", "cargo test"]
    );
    // A user with sudo: both apt-get calls go through it.
    assert_eq!(
        run_with_stand_ins(&test, true),
        [
            "sudo apt-get",
            "apt-get update",
            "sudo apt-get",
            "apt-get install",
            "cargo test"
        ]
    );
}

#[test]
fn ci_installs_what_the_readme_installs() {
    let (_, test) = top_commands();
    let ci = repo_file(".ci/run");
    let from_ci: BTreeSet<String> = ci
        .lines()
        .filter_map(|l| l.split("need+=(").nth(1))
        .filter_map(|rest| rest.split(')').next())
        .map(str::to_string)
        .collect();
    assert_eq!(installed(&test), from_ci);
    assert!(ci.contains("$sudo apt-get update"), "{ci}");
}
