#![no_main]
//! Litestream's names and LTX header parsers (and the header check), litestream.yml and the
//! chain checks of a listing (one key per line; v0.5 and v0.3) never panic, a chain judged whole
//! ends at a listed file's TXID (v0.3: a listed index), and the local state of a listing (one key per line, its line number its time)
//! never counts more overdue than it holds.
use libfuzzer_sys::fuzz_target;
use sqlite_ops::format::litestream as ls;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = ls::parse_ltx_header(data) {
        assert!(h.min_txid <= h.max_txid);
    }
    let named = "ltx/0/0000000000000001-0000000000000002.ltx";
    let _ = sqlite_ops::litestream::chain::header_problem(named, data);
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(n) = ls::parse_ltx_name(s) {
            assert!(n.min_txid <= n.max_txid);
        }
        let _ = ls::parse_level(s);
        let _ = ls::parse_segment_name(s);
        let _ = ls::parse_shadow_wal_name(s);
        let _ = ls::parse_generation(s);
        let _ = sqlite_ops::litestream::config::parse(s, |_| Some("x".into()));
        use sqlite_ops::litestream::chain::{check, Chain};
        if let Chain::Whole { txid } = check(s.lines()) {
            assert!(s
                .lines()
                .filter_map(|k| ls::parse_ltx_name(k.rsplit('/').next()?))
                .any(|n| n.max_txid == txid));
        }
        // v0.3's: a whole generation ends at a listed segment's index or its snapshot's.
        let generation = "0123456789abcdef";
        if let Chain::WalWhole { index } =
            sqlite_ops::litestream::wal_chain::check(s.lines(), generation)
        {
            assert!(s.lines().any(|k| {
                let name = k.rsplit('/').next().unwrap_or("");
                ls::parse_segment_name(name).map(|p| p.index) == Some(index)
                    || ls::parse_snapshot_name(name) == Some(index)
            }));
        }
        use sqlite_ops::litestream::{local_state::summarize, position::Entry};
        let files: Vec<Entry> = s
            .lines()
            .enumerate()
            .map(|(i, k)| Entry {
                key: k.to_string(),
                modified: std::time::UNIX_EPOCH + std::time::Duration::from_secs(i as u64 * 7),
                size: k.len() as u64,
            })
            .collect();
        let reads = sqlite_ops::litestream::chain::restore_reads(s.lines());
        assert!(reads.len() <= s.lines().count());
        let kept = std::time::Duration::from_secs(10);
        let state = summarize(&files, kept, kept);
        assert!(state.overdue_bytes <= state.bytes && state.overdue_files <= state.files);
    }
});
