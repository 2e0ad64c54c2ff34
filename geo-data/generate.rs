//! Regenerates the sample GeoIP database from its readable source:
//!
//! ```text
//! cargo run --example geo-data [-- INPUT.csv OUTPUT.mmdb]
//! ```
//!
//! Defaults to `geo-data/sample.csv` → `geo-data/sample.mmdb` in the source tree, from
//! whatever directory it is run. The output is byte-identical for the same input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use meridian::geo::GeoDb;

mod sample;

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let (input, output) = match &args[..] {
        [] => (
            root.join("geo-data/sample.csv"),
            root.join("geo-data/sample.mmdb"),
        ),
        [input, output] => (input.clone(), output.clone()),
        _ => {
            eprintln!("usage: cargo run --example geo-data [-- INPUT.csv OUTPUT.mmdb]");
            return ExitCode::from(2);
        }
    };
    let count = match sample::generate(&input, &output) {
        Ok(count) => count,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Read it back the way `meridian serve` will.
    match GeoDb::open(&output) {
        Ok(db) => {
            println!(
                "wrote {}: {count} networks, {}",
                output.display(),
                db.describe()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
