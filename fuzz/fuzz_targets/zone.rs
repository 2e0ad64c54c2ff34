//! Fuzz target: master-file text in, a zone or a `file:line: reason` error out. No input may
//! panic, and reading plain lines directly gives the same zone as hickory's parser alone, in
//! chunks or in one piece (all three load it, identically, or all refuse it).
#![no_main]

use hickory_proto::rr::Name;
use libfuzzer_sys::fuzz_target;
use meridian::zone::Zone;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // $INCLUDE would read files of the fuzzing machine: not what this target is about.
    if text.contains("$INCLUDE") {
        return;
    }
    let origin = Name::from_ascii("example.test.").unwrap();
    let path = std::path::Path::new("example.test.zone");
    let direct = Zone::parse(path, text, &origin);
    let chunked = Zone::parse_reference(path, text, &origin, true);
    let whole = Zone::parse_reference(path, text, &origin, false);
    match (direct, chunked, whole) {
        (Ok(direct), Ok(chunked), Ok(whole)) => {
            assert_eq!(direct, chunked);
            assert_eq!(direct, whole);
        }
        (Err(_), Err(_), Err(_)) => {}
        (direct, chunked, whole) => panic!(
            "not all refused: direct {:?}, chunked {:?}, whole {:?}",
            direct.err().map(|e| e.to_string()),
            chunked.err().map(|e| e.to_string()),
            whole.err().map(|e| e.to_string())
        ),
    }
});
