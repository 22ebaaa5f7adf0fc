#![no_main]
//! The mountinfo parser never panics, and every mount it returns contains itself.
use libfuzzer_sys::fuzz_target;
use sqlite_ops::format::mountinfo;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let mounts = mountinfo::parse(s);
        for m in &mounts {
            if m.mount_point.is_absolute() {
                assert!(mountinfo::containing(&mounts, &m.mount_point).is_some());
            }
        }
    }
});
