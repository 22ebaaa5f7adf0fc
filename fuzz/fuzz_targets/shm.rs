#![no_main]
//! The wal-index header parser never panics in either byte order.
use libfuzzer_sys::fuzz_target;
use sqlite_ops::format::shm;

fuzz_target!(|data: &[u8]| {
    for order in [shm::ByteOrder::Big, shm::ByteOrder::Little] {
        if let Ok(idx) = shm::parse(data, order) {
            let _ = idx.checkpoint_lag_frames();
        }
    }
});
