//! Fuzz target: master-file text in, a zone or a `file:line: reason` error out. No input may
//! panic, and reading plain lines directly gives the same zone as hickory's parser alone (both
//! load it, identically, or both refuse it).
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
    let reference = Zone::parse_with_hickory_only(path, text, &origin);
    match (direct, reference) {
        (Ok(direct), Ok(reference)) => assert_eq!(direct, reference),
        (Err(_), Err(_)) => {}
        (direct, reference) => panic!(
            "only one reader refused: direct {:?}, hickory {:?}",
            direct.err().map(|e| e.to_string()),
            reference.err().map(|e| e.to_string())
        ),
    }
});
