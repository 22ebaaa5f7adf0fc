#![no_main]
//! The 100-byte database header parser never panics, and what it accepts is self-consistent.
use libfuzzer_sys::fuzz_target;
use sqlite_ops::format::db_header;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = db_header::parse(data) {
        assert!(h.page_size.is_power_of_two() && (512..=65536).contains(&h.page_size));
        let _ = db_header::version_string(h.sqlite_version_number);
    }
});
