#![no_main]
//! The /proc/locks parser never panics, and every lock it returns has a sane range.
use libfuzzer_sys::fuzz_target;
use sqlite_ops::format::proc_locks;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        for l in proc_locks::parse(s) {
            let _ = l.covers(l.start);
        }
    }
});
