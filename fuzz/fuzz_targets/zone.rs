//! Fuzz target: master-file text in, a zone or a `file:line: reason` error out. No input may
//! panic.
#![no_main]

use hickory_proto::rr::Name;
use libfuzzer_sys::fuzz_target;
use meridian::zone::Zone;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let origin = Name::from_ascii("example.test.").unwrap();
    let _ = Zone::parse(std::path::Path::new("example.test.zone"), text, &origin);
});
