#![no_main]
//! The WAL header parser and the incremental frame scanner never panic; the scanner never
//! counts more commit frames than frames, and scanning in two pieces agrees with one piece.
use libfuzzer_sys::fuzz_target;
use sqlite_ops::format::wal;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = wal::parse_header(data) else { return };
    let frames = &data[wal::WAL_HEADER_SIZE.min(data.len())..];
    let mut whole = wal::FrameScanner::new(header);
    let all = whole.scan(frames);
    assert!(all.commits <= all.frames);
    let split = frames.len() / 2;
    let mut parts = wal::FrameScanner::new(header);
    let a = parts.scan(&frames[..split]);
    let offset = (parts.next_offset() as usize).saturating_sub(wal::WAL_HEADER_SIZE);
    let b = parts.scan(frames.get(offset..).unwrap_or(&[]));
    assert_eq!(a.commits + b.commits, all.commits, "streaming agrees with one pass");
});
