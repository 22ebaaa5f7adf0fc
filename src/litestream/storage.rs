//! What a replica holds level by level (0.5's levels 0-9, 9 the snapshots; 0.3's `snapshots` and
//! `wal`): files, bytes, newest file and TXID, and its oldest file (is retention running?). Pure:
//! over the listing each read already takes, so it costs no request of its own.

use super::position::Entry;
use crate::format::litestream::{parse_level, parse_ltx_name, parse_segment_name};
use serde::Serialize;
use std::collections::BTreeMap;

/// One level of a replica (v0.5 `0`-`9`) or one kind of file (v0.3 `snapshots`, `wal`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Level {
    pub level: String,
    pub files: u64,
    pub bytes: u64,
    /// When its newest file was written (Unix seconds: the file's or object's modification time).
    pub newest_at: f64,
    /// The highest TXID its files reach (v0.5).
    pub max_txid: Option<u64>,
}

/// A replica's storage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Storage {
    /// By level, in order (numbers first, then `snapshots`, `wal`).
    pub levels: Vec<Level>,
    /// When its oldest file was written: how far back retention keeps.
    pub oldest_at: Option<f64>,
}

/// The level a key belongs to, and the highest TXID it holds (v0.5); `None` for a file that is
/// no part of a replica (a temporary file, anything else in the folder).
fn level_of(key: &str) -> Option<(String, Option<u64>)> {
    let mut parts = key.rsplit('/');
    let (name, parent) = (parts.next()?, parts.next()?);
    if let Some(ltx) = parse_ltx_name(name) {
        return Some((parse_level(parent)?.to_string(), Some(ltx.max_txid)));
    }
    let in_generation = parts.nth(1) == Some("generations");
    match parent {
        "snapshots" if in_generation && name.contains(".snapshot") => {
            Some(("snapshots".into(), None))
        }
        "wal" if in_generation && parse_segment_name(name).is_some() => Some(("wal".into(), None)),
        _ => None,
    }
}

/// Sums one listing of a replica, level by level.
pub fn summarize(entries: &[Entry]) -> Storage {
    // Numbers sort as numbers, before the v0.3 names.
    let mut levels: BTreeMap<(u32, String), Level> = BTreeMap::new();
    let mut oldest_at: Option<f64> = None;
    for e in entries {
        let Some((level, txid)) = level_of(&e.key) else {
            continue;
        };
        let at = crate::units::epoch_seconds(e.modified);
        oldest_at = Some(oldest_at.map_or(at, |o| o.min(at)));
        let order = level.parse().unwrap_or(u32::MAX);
        let l = levels.entry((order, level.clone())).or_insert(Level {
            level,
            files: 0,
            bytes: 0,
            newest_at: at,
            max_txid: None,
        });
        l.files += 1;
        l.bytes += e.size;
        l.newest_at = l.newest_at.max(at);
        l.max_txid = l.max_txid.max(txid);
    }
    Storage {
        levels: levels.into_values().collect(),
        oldest_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn e(key: &str, secs: u64, size: u64) -> Entry {
        Entry {
            key: key.into(),
            modified: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            size,
        }
    }

    /// As `litestream ltx -level all` printed it for a 0.5.17 file replica (sizes and times
    /// shortened): per level, the files, their bytes, the newest and the highest TXID.
    #[test]
    fn v05_levels_files_bytes_newest() {
        let listing = [
            e("ltx/0/000000000000001b-000000000000001b.ltx", 73, 191),
            e("ltx/1/0000000000000001-0000000000000001.ltx", 14, 18888),
            e("ltx/1/000000000000000c-0000000000000018.ltx", 43, 245058),
            e("ltx/1/000000000000001b-000000000000001b.ltx", 73, 191),
            e("ltx/9/0000000000000001-0000000000000002.ltx", 15, 39234),
            e("ltx/9/0000000000000001-000000000000001b.ltx", 600, 468641),
            e("ltx/1/000000000000001c-000000000000001c.ltx.tmp", 80, 5),
            e("ltx/10/notes.txt", 1, 5),
        ];
        let s = summarize(&listing);
        let got: Vec<(&str, u64, u64, f64, Option<u64>)> = s
            .levels
            .iter()
            .map(|l| (l.level.as_str(), l.files, l.bytes, l.newest_at, l.max_txid))
            .collect();
        assert_eq!(
            got,
            [
                ("0", 1, 191, 73.0, Some(0x1b)),
                ("1", 3, 264137, 73.0, Some(0x1b)),
                ("9", 2, 507875, 600.0, Some(0x1b)),
            ]
        );
        assert_eq!(s.oldest_at, Some(14.0));
        // S3 names its levels in hex, with no ltx/ folder.
        let s3 = summarize(&[e("0009/0000000000000001-0000000000000009.ltx", 5, 10)]);
        assert_eq!(s3.levels[0].level, "9");
    }

    #[test]
    fn v03_snapshots_and_wal_across_generations() {
        let g = "generations/19c19ebf760dedb6";
        let listing = [
            e(&format!("{g}/snapshots/00000000.snapshot.lz4"), 9, 1000),
            e(&format!("{g}/wal/00000000_00000000.wal.lz4"), 10, 300),
            e(&format!("{g}/wal/00000001_000060b0.wal.lz4"), 12, 200),
            e(
                "generations/aaaaaaaaaaaaaaaa/wal/00000009_00000000.wal.lz4",
                5,
                50,
            ),
            e("elsewhere/wal/00000001_00000000.wal.lz4", 1, 7),
        ];
        let s = summarize(&listing);
        let got: Vec<(&str, u64, u64, f64)> = s
            .levels
            .iter()
            .map(|l| (l.level.as_str(), l.files, l.bytes, l.newest_at))
            .collect();
        assert_eq!(got, [("snapshots", 1, 1000, 9.0), ("wal", 3, 550, 12.0)]);
        assert_eq!(s.oldest_at, Some(5.0));
        assert_eq!(summarize(&[]), Storage::default());
    }
}
