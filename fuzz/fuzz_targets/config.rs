//! Fuzz target: config text in, a model or a `file:line: reason` error out. No input may panic,
//! and an error's line must be a line of the input (or the line after its end).
#![no_main]

use libfuzzer_sys::fuzz_target;
use meridian::Model;
use meridian::config::ConfigError;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");
    let path = std::path::Path::new(root).join("fuzz.toml");
    if let Err(ConfigError::Invalid { line, .. }) = Model::from_text(&path, text) {
        assert!(
            line >= 1 && line <= text.lines().count() + 1,
            "line {line} out of range"
        );
    }
});
