//! What a replica holds level by level (0.5's levels 0-9, 9 the snapshots; 0.3's `snapshots` and
//! `wal`): files, bytes, newest file and TXID, and its oldest file (is retention running?). Pure:
//! over the listing each read already takes, so it costs no request of its own.

use super::chain::SNAPSHOT_LEVEL;
use super::config::Schedule;
use super::listing::Entry;
use crate::format::litestream::{parse_level, parse_ltx_name, parse_segment_name};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// One level of a replica (v0.5 `0`-`9`) or one kind of file (v0.3 `snapshots`, `wal`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Level {
    /// `0`-`9`, `snapshots` or `wal`: a static name (each replica of a fleet has a few levels,
    /// each of which would otherwise hold a string of its own).
    pub level: Cow<'static, str>,
    pub files: u64,
    pub bytes: u64,
    /// When its newest file was written (Unix seconds: the file's or object's modification
    /// time); `None` when it has none yet.
    pub newest_at: Option<f64>,
    /// The highest TXID its files reach (v0.5).
    pub max_txid: Option<u64>,
    /// How often Litestream compacts into it or snapshots (v0.5, levels it schedules), seconds.
    pub interval: Option<f64>,
    /// When the oldest change it does not hold yet reached the level it is made from (the
    /// previous one; every lower one for snapshots), Unix seconds. `None` when it holds all, or
    /// is not scheduled.
    pub waiting_since: Option<f64>,
    /// When Litestream last wrote the level it is made from (Unix seconds).
    pub source_newest: Option<f64>,
    /// How long that change had waited when Litestream last wrote the level it is made from:
    /// the count stops when Litestream does (stopped, or the database idle), so that only a
    /// Litestream that goes on working without compacting is behind.
    pub waited: Option<f64>,
}

impl Level {
    /// How long the oldest change it lacks had waited when Litestream last wrote below it
    /// ([`Level::waited`]), 0 when it holds all; `None` for a level Litestream does not schedule.
    pub fn lag(&self) -> Option<f64> {
        self.interval?;
        Some(self.waited.unwrap_or(0.0))
    }

    /// Whether it is the snapshot level (v0.5).
    pub fn is_snapshots(&self) -> bool {
        self.level == name(SNAPSHOT_LEVEL)
    }
}

/// A replica's storage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Storage {
    /// By level, in order (numbers first, then `snapshots`, `wal`).
    pub levels: Vec<Level>,
    /// When its oldest file was written: how far back retention keeps.
    pub oldest_at: Option<f64>,
}

/// The name of v0.5 level `n`.
fn name(n: u32) -> Cow<'static, str> {
    const NAMES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    match NAMES.get(n as usize) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(n.to_string()),
    }
}

/// The level a key belongs to, and the highest TXID it holds (v0.5); `None` for a file that is
/// no part of a replica (a temporary file, anything else in the folder).
fn level_of(key: &str) -> Option<(Cow<'static, str>, Option<u64>)> {
    let mut parts = key.rsplit('/');
    let (file, parent) = (parts.next()?, parts.next()?);
    if let Some(ltx) = parse_ltx_name(file) {
        return Some((name(parse_level(parent)?), Some(ltx.max_txid)));
    }
    let in_generation = parts.nth(1) == Some("generations");
    match parent {
        "snapshots" if in_generation && file.contains(".snapshot") => {
            Some((Cow::Borrowed("snapshots"), None))
        }
        "wal" if in_generation && parse_segment_name(file).is_some() => {
            Some((Cow::Borrowed("wal"), None))
        }
        _ => None,
    }
}

/// Sums one listing of a replica, level by level, and dates what each level Litestream
/// schedules (v0.5) has yet to take in.
pub fn summarize(entries: &[Entry], schedule: &Schedule) -> Storage {
    // Numbers sort as numbers, before the v0.3 names.
    let mut levels: BTreeMap<(u32, Cow<'static, str>), Level> = BTreeMap::new();
    let mut oldest_at: Option<f64> = None;
    // v0.5 files: (level, max TXID, time).
    let mut ltx: Vec<(u32, u64, f64)> = Vec::new();
    for e in entries {
        let Some((level, txid)) = level_of(&e.key) else {
            continue;
        };
        let at = crate::units::epoch_seconds(e.modified);
        oldest_at = Some(oldest_at.map_or(at, |o| o.min(at)));
        let order = level.parse().unwrap_or(u32::MAX);
        if let Some(txid) = txid {
            ltx.push((order, txid, at));
        }
        let l = levels
            .entry((order, level.clone()))
            .or_insert_with(|| empty(level));
        l.files += 1;
        l.bytes += e.size;
        l.newest_at = Some(l.newest_at.map_or(at, |n| n.max(at)));
        l.max_txid = l.max_txid.max(txid);
    }
    if !ltx.is_empty() {
        // Each level Litestream schedules, made from the one before it (level 1 from 0); the
        // snapshots from the database, whose changes the lower levels hold.
        let scheduled = (1..).zip(&schedule.levels);
        let snapshots = std::iter::once((SNAPSHOT_LEVEL, &schedule.snapshot));
        for (level, interval) in scheduled.chain(snapshots) {
            let l = levels
                .entry((level, name(level)))
                .or_insert_with(|| empty(name(level)));
            l.interval = Some(interval.as_secs_f64());
            let held = l.max_txid.unwrap_or(0);
            let from = |source: u32| match level {
                SNAPSHOT_LEVEL => source < SNAPSHOT_LEVEL,
                _ => source + 1 == level,
            };
            let sources = ltx.iter().filter(|(source, _, _)| from(*source));
            let newest = sources.clone().map(|(_, _, at)| *at).max_by(f64::total_cmp);
            l.waiting_since = sources
                .filter(|(_, max, _)| *max > held)
                .map(|(_, _, at)| *at)
                .min_by(f64::total_cmp);
            l.source_newest = newest;
            l.waited = l.waiting_since.zip(newest).map(|(w, n)| (n - w).max(0.0));
        }
    }
    Storage {
        levels: levels.into_values().collect(),
        oldest_at,
    }
}

/// Counts each compacted level's wait from no earlier than the read that first saw it behind (`behind`:
/// level to that read's time, kept between reads): a file's time is when Litestream made it,
/// and files held back by an upload outage arrive already old, though their level has had them
/// for a moment only (seen in a walkthrough: 64 s "waited" a few milliseconds before
/// compaction took them).
pub fn since_seen(
    storage: &mut Storage,
    behind: &mut BTreeMap<Cow<'static, str>, f64>,
    read_at: f64,
) {
    // Not the snapshots: a day's interval dwarfs an outage, and their wait must survive a
    // restart of sqlite-ops (a stale snapshot is not news to be found two days late).
    for l in storage.levels.iter_mut().filter(|l| !l.is_snapshots()) {
        match l.waiting_since {
            Some(since) => {
                let seen = *behind.entry(l.level.clone()).or_insert(read_at);
                l.waiting_since = Some(since.max(seen));
                let newest = l.source_newest.map(|n| n.max(seen));
                l.waited = newest.map(|n| (n - since.max(seen)).max(0.0));
            }
            None => {
                behind.remove(&l.level);
            }
        }
    }
}

/// A level with nothing counted yet.
fn empty(level: Cow<'static, str>) -> Level {
    Level {
        level,
        files: 0,
        bytes: 0,
        newest_at: None,
        max_txid: None,
        interval: None,
        waiting_since: None,
        source_newest: None,
        waited: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn k(level: u32, min: u64, max: u64) -> String {
        format!("ltx/{level}/{min:016x}-{max:016x}.ltx")
    }

    /// When the oldest change a level lacks reached the level it is made from: level 1 from 0,
    /// level 2 from 1, the snapshots from any; `None` when it holds all.
    #[test]
    fn what_each_level_has_waited_for() {
        let listing = [
            e(&k(9, 1, 5), 100, 1),
            e(&k(1, 1, 5), 100, 1),
            e(&k(1, 6, 8), 130, 1),
            e(&k(0, 6, 6), 101, 1),
            e(&k(0, 7, 8), 102, 1),
            e(&k(0, 9, 9), 140, 1),
            e(&k(0, 10, 10), 141, 1),
            e(&k(2, 1, 5), 100, 1),
        ];
        let schedule = Schedule {
            levels: vec![Duration::from_secs(30), Duration::from_secs(300)],
            ..Schedule::default()
        };
        let s = summarize(&listing, &schedule);
        let waiting: Vec<_> = s
            .levels
            .iter()
            .map(|l| (l.level.as_ref(), l.interval, l.waiting_since, l.lag()))
            .collect();
        assert_eq!(
            waiting,
            [
                ("0", None, None, None),
                // Level 1 holds up to 8; level 0's 9 arrived at 140, its newest at 141.
                ("1", Some(30.0), Some(140.0), Some(1.0)),
                // Level 2 holds up to 5; level 1's 6-8 arrived at 130 (level 0's are not its),
                // and nothing newer came to level 1.
                ("2", Some(300.0), Some(130.0), Some(0.0)),
                // The snapshot holds up to 5; the oldest change past it, in any level, arrived
                // at 101 and the newest at 141.
                ("9", Some(86400.0), Some(101.0), Some(40.0)),
            ]
        );
        // Caught up: nothing waits.
        let caught_up = [
            e(&k(9, 1, 5), 100, 1),
            e(&k(2, 1, 5), 95, 1),
            e(&k(1, 1, 5), 90, 1),
            e(&k(0, 5, 5), 80, 1),
        ];
        let s = summarize(&caught_up, &schedule);
        assert!(s.levels.iter().all(|l| l.waiting_since.is_none()), "{s:?}");
        assert_eq!(s.levels[1].lag(), Some(0.0));
        assert_eq!(s.levels[0].lag(), None, "level 0 is not compacted into");
        // A level not written yet waits for what the level below holds: since 90, and
        // Litestream wrote level 1 until 150.
        let mut below = vec![caught_up[0].clone(), caught_up[2].clone()];
        below.push(e(&k(1, 6, 6), 150, 1));
        let s = summarize(&below, &schedule);
        let two = s.levels.iter().find(|l| l.level == "2").unwrap();
        assert_eq!(
            (two.files, two.waiting_since, two.lag()),
            (0, Some(90.0), Some(60.0))
        );
    }

    fn e(key: &str, secs: u64, size: u64) -> Entry {
        Entry {
            key: key.into(),
            modified: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            size,
        }
    }

    /// A burst of level-0 files uploaded after an outage, made 64 s before: level 1 has had
    /// them since the read that saw them, not since they were made; a level behind from read to
    /// read counts from the first of them; caught up, it is forgotten.
    #[test]
    fn a_level_waits_from_the_read_that_first_saw_it_behind() {
        let schedule = Schedule {
            levels: vec![Duration::from_secs(1)],
            ..Schedule::default()
        };
        let burst = [
            e(&k(9, 1, 5), 10, 1),
            e(&k(1, 1, 5), 10, 1),
            e(&k(0, 6, 6), 100, 1),
            e(&k(0, 7, 7), 164, 1),
        ];
        let mut behind = BTreeMap::new();
        let mut s = summarize(&burst, &schedule);
        assert_eq!(s.levels[1].lag(), Some(64.0), "from the files alone");
        since_seen(&mut s, &mut behind, 164.5);
        assert_eq!(
            s.levels[1].lag(),
            Some(0.0),
            "level 1 has had them for a moment"
        );
        // Still behind at a read 10 s later, Litestream having written on (a file at 174).
        let mut later = burst.to_vec();
        later.push(e(&k(0, 8, 8), 174, 1));
        let mut s = summarize(&later, &schedule);
        since_seen(&mut s, &mut behind, 174.5);
        assert_eq!(s.levels[1].lag(), Some(9.5));
        // Caught up: forgotten, so the next wait counts afresh.
        let caught_up = [e(&k(1, 1, 8), 175, 1), e(&k(0, 8, 8), 174, 1)];
        let mut s = summarize(&caught_up, &schedule);
        since_seen(&mut s, &mut behind, 176.0);
        assert!(!behind.contains_key("1"), "{behind:?}");
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
        let s = summarize(&listing, &Schedule::default());
        let got: Vec<_> = s
            .levels
            .iter()
            .map(|l| (l.level.as_ref(), l.files, l.bytes, l.newest_at, l.max_txid))
            .collect();
        assert_eq!(
            got,
            [
                ("0", 1, 191, Some(73.0), Some(0x1b)),
                ("1", 3, 264137, Some(73.0), Some(0x1b)),
                ("2", 0, 0, None, None),
                ("3", 0, 0, None, None),
                ("9", 2, 507875, Some(600.0), Some(0x1b)),
            ]
        );
        assert_eq!(s.oldest_at, Some(14.0));
        // S3 names its levels in hex, with no ltx/ folder.
        let s3 = summarize(
            &[e("0009/0000000000000001-0000000000000009.ltx", 5, 10)],
            &Schedule::default(),
        );
        assert_eq!(s3.levels.last().unwrap().level, "9");
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
        let s = summarize(&listing, &Schedule::default());
        let got: Vec<_> = s
            .levels
            .iter()
            .map(|l| (l.level.as_ref(), l.files, l.bytes, l.newest_at, l.interval))
            .collect();
        assert_eq!(
            got,
            [
                ("snapshots", 1, 1000, Some(9.0), None),
                ("wal", 3, 550, Some(12.0), None)
            ]
        );
        assert_eq!(s.oldest_at, Some(5.0));
        assert_eq!(summarize(&[], &Schedule::default()), Storage::default());
    }
}
