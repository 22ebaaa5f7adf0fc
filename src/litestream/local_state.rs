//! How much Litestream keeps on local disk for one database, and how much of it it should have
//! removed by now (its local state grew without bound in Litestream #784, #1104, #1197). Pure:
//! over one listing of the meta directory.

use super::listing::Entry;
use crate::format::litestream::{parse_ltx_name, parse_shadow_wal_name};
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

/// Litestream's local state of one database, on disk.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LocalState {
    pub bytes: u64,
    pub files: u64,
    /// When the oldest file was last written (Unix seconds); `None` when there is none.
    pub oldest_at: Option<f64>,
    /// LTX (v0.5) and shadow WAL (v0.3) files older than Litestream keeps them when uploads,
    /// compaction and retention run, other than the newest of each folder (which Litestream
    /// keeps however old: an idle database's last changes).
    pub overdue_bytes: u64,
    pub overdue_files: u64,
}

/// Sums a listing of the meta directory. Litestream always keeps a folder's newest LTX file (an
/// idle database's last changes) and its two newest shadow WAL files (0.3 keeps an extra one);
/// an older file may go once enough newer ones exist. It is overdue when Litestream went on
/// writing for more than `ltx_kept` (an LTX file) or `wal_kept` (a shadow WAL file) after that
/// and did not remove it. A stopped Litestream writes nothing newer, so what it left is not
/// overdue (the replication lag says it stopped).
pub fn summarize(files: &[Entry], ltx_kept: Duration, wal_kept: Duration) -> LocalState {
    let mut state = LocalState {
        bytes: files.iter().map(|e| e.size).sum(),
        files: files.len() as u64,
        oldest_at: files
            .iter()
            .map(|e| crate::units::epoch_seconds(e.modified))
            .min_by(f64::total_cmp),
        ..LocalState::default()
    };
    // Per folder, its change files, how many of the newest Litestream always keeps, and for
    // how long it may keep the others.
    let mut folders: HashMap<&str, (Vec<&Entry>, usize, Duration)> = HashMap::new();
    for e in files {
        let Some((folder, name)) = e.key.rsplit_once('/') else {
            continue;
        };
        let (keeps, kept) = match (parse_ltx_name(name), parse_shadow_wal_name(name)) {
            (Some(_), _) => (1, ltx_kept),
            (_, Some(_)) => (2, wal_kept),
            _ => continue,
        };
        let f = folders.entry(folder).or_default();
        f.0.push(e);
        (f.1, f.2) = (f.1.max(keeps), f.2.max(kept));
    }
    for (mut changes, keeps, kept) in folders.into_values() {
        // Names sort by position (hex TXIDs, hex WAL indexes).
        changes.sort_by(|a, b| a.key.cmp(&b.key));
        let Some(newest) = changes.iter().map(|e| e.modified).max() else {
            continue;
        };
        // A file may go once the one `keeps` after it exists (it is no longer among the newest),
        // and must be gone `kept` after that, if Litestream went on writing meanwhile.
        for (e, next) in changes.iter().zip(changes.iter().skip(keeps)) {
            if newest
                .duration_since(next.modified)
                .is_ok_and(|after| after > kept)
            {
                state.overdue_bytes += e.size;
                state.overdue_files += 1;
            }
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn e(key: &str, secs: u64, size: u64) -> Entry {
        Entry {
            key: key.into(),
            modified: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            size,
        }
    }

    const KEPT: Duration = Duration::from_secs(100);

    /// Litestream went on writing past a file's keeping time without removing it: overdue,
    /// counted from when the next file made it removable. The newest file never is.
    #[test]
    fn a_file_is_overdue_once_litestream_writes_past_its_time() {
        let files = [
            e("ltx/0/0000000000000001-0000000000000001.ltx", 950, 10),
            e("ltx/0/0000000000000002-0000000000000002.ltx", 990, 10),
            e("ltx/0/0000000000000003-0000000000000003.ltx", 1000, 10),
        ];
        let s = summarize(&files, KEPT, KEPT);
        assert_eq!((s.bytes, s.files, s.oldest_at), (30, 3, Some(950.0)));
        assert_eq!(s.overdue_files, 0);
        // A file written 101 s after the second: the first is overdue (removable since 990),
        // the second only removable since 1000, the third since 1091.
        let mut later = files.to_vec();
        later.push(e("ltx/0/0000000000000004-0000000000000004.ltx", 1091, 40));
        let s = summarize(&later, KEPT, KEPT);
        assert_eq!((s.overdue_bytes, s.overdue_files), (10, 1));
        later[3].modified = SystemTime::UNIX_EPOCH + Duration::from_secs(1101);
        assert_eq!(summarize(&later, KEPT, KEPT).overdue_files, 2);
        // Exactly 100 s after is not past it.
        later[3].modified = SystemTime::UNIX_EPOCH + Duration::from_secs(1090);
        assert_eq!(summarize(&later, KEPT, KEPT).overdue_files, 0);
    }

    /// An idle database written once more, long after: its old last file became removable only
    /// now, so it is not overdue yet.
    #[test]
    fn a_write_after_a_long_idle_time_is_not_a_fault() {
        let files = [
            e("ltx/0/0000000000000008-0000000000000008.ltx", 10, 500),
            e("ltx/0/0000000000000009-0000000000000009.ltx", 5000, 700),
        ];
        assert_eq!(summarize(&files, KEPT, KEPT).overdue_files, 0);
    }

    /// Litestream stopped (or the database idle): nothing newer is written, so what it left is
    /// not overdue however old.
    #[test]
    fn nothing_is_overdue_when_nothing_newer_is_written() {
        let files = [
            e("ltx/0/0000000000000008-0000000000000008.ltx", 10, 500),
            e("ltx/0/0000000000000009-0000000000000009.ltx", 60, 700),
        ];
        let s = summarize(&files, KEPT, KEPT);
        assert_eq!((s.bytes, s.overdue_bytes), (1200, 0));
    }

    /// v0.3: a shadow WAL index left behind while Litestream went on writing, past the two
    /// newest it always keeps, is overdue; the `generation` file and temporary files count in
    /// size only; folders are judged apart.
    #[test]
    fn v03_shadow_wal_files_and_other_files() {
        let g = "generations/19c19ebf760dedb6/wal";
        let files = [
            e("generation", 1, 17),
            e(&format!("{g}/00000000.wal"), 1, 4000),
            e(&format!("{g}/00000001.wal"), 2, 2000),
            e(&format!("{g}/00000002.wal"), 3, 3000),
            e(&format!("{g}/00000003.wal"), 500, 5000),
            e("ltx/0/0000000000000001-0000000000000001.ltx.tmp", 1, 300),
            e("generations/aaaaaaaaaaaaaaaa/wal/00000009.wal", 2, 50),
        ];
        let s = summarize(&files, KEPT, KEPT);
        assert_eq!((s.bytes, s.files), (14367, 7));
        // Index 0 went removable when index 2 appeared (at 3 s), and Litestream wrote until 500;
        // index 1 is one of the two newest that 0.3 keeps until index 3 exists.
        assert_eq!((s.overdue_bytes, s.overdue_files), (4000, 1));
        // Shadow WAL files are judged by their own keeping time, not the LTX files'.
        let long = Duration::from_secs(1000);
        assert_eq!(summarize(&files, KEPT, long).overdue_files, 0);
        assert_eq!(summarize(&files, long, KEPT).overdue_files, 1);
        assert_eq!(summarize(&[], KEPT, KEPT), LocalState::default());
    }
}
