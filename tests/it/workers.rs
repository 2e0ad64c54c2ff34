//! `[dns] workers`: how many DNS worker threads serve; validated, one per core by default.

use crate::config::{VALID, ZONE, error_of};

#[test]
fn workers_out_of_range_are_refused_with_file_and_line() {
    for (workers, value) in [("workers = 0", 0), ("workers = 1025", 1025)] {
        let config = VALID.replace(
            "zones = \"zones\"",
            &format!("zones = \"zones\"\n{workers}"),
        );
        assert_eq!(
            error_of(&config, ZONE),
            format!("DIR/meridian.toml:4: dns.workers = {value}: must be between 1 and 1024")
        );
    }
    let config = VALID.replace("zones = \"zones\"", "zones = \"zones\"\nworkers = -2");
    assert!(
        error_of(&config, ZONE).starts_with("DIR/meridian.toml:4: "),
        "a negative count is refused at its line"
    );
}

#[test]
fn workers_default_to_one_per_core_this_process_may_use() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    std::fs::write(dir.path().join("zones/example.test.zone"), ZONE).unwrap();
    let path = dir.path().join("meridian.toml");
    std::fs::write(&path, VALID).unwrap();
    let model = meridian::Model::load(&path).unwrap();
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(model.dns.workers, cores.min(1024));
    std::fs::write(
        &path,
        VALID.replace("zones = \"zones\"", "zones = \"zones\"\nworkers = 1024"),
    )
    .unwrap();
    assert_eq!(meridian::Model::load(&path).unwrap().dns.workers, 1024);
}
