#![no_main]
//! The Go build-information parser never panics, and a main package it reports is one field of
//! one line.
use libfuzzer_sys::fuzz_target;
use sqlite_ops::format::go_buildinfo;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = go_buildinfo::parse(data) {
        if let Some(p) = info.path {
            assert!(!p.contains('\t') && !p.contains('\n'));
        }
    }
});
