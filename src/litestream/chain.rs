//! Would a restore of a v0.5 replica find an unbroken run of LTX files, from its newest snapshot
//! to its newest file? Pure: over the names of one listing (the one that already gives the
//! replica's position, so the check costs no request of its own). v0.3's is `wal_chain`.

use crate::format::litestream::{parse_level, parse_ltx_header, parse_ltx_name};
use serde::{Serialize, Serializer};

/// The snapshot level of Litestream 0.5.
pub const SNAPSHOT_LEVEL: u32 = 9;

/// What a listing says of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chain {
    /// Nothing to judge: no file of the layout judged (no LTX file for `check`, no snapshot or
    /// segment of the generation for `wal_chain::check`).
    NotLtx,
    /// Every transaction from the newest snapshot (or the first file) up to `txid` is covered.
    Whole { txid: u64 },
    /// The run stops at `have`; the next file, `next` (its key in the listing), starts at
    /// `starts`, past `have + 1`.
    Gap {
        have: u64,
        starts: u64,
        next: String,
    },
    /// A file a restore would read (the newest snapshot, or one past it) whose header is not an
    /// LTX header or disagrees with its name (`problem`, in words); file replicas only.
    BadHeader { key: String, problem: String },
    /// v0.3: every WAL index from the generation's newest snapshot to `index` is there.
    WalWhole { index: u32 },
    /// v0.3: WAL index `index` of `generation`, which a restore reads, has no segment, or not its
    /// first (at offset 0); `next` is the first segment present from there on.
    WalMissing {
        generation: String,
        index: u32,
        next: String,
    },
    /// v0.3: `generation` has WAL segments (the first, `next`) and no snapshot to start from.
    NoSnapshot { generation: String, next: String },
}

/// Whether a restore would find an unbroken chain; a broken one says its gap in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Whole,
    Broken(String),
}

impl Verdict {
    pub fn is_whole(&self) -> bool {
        *self == Verdict::Whole
    }

    /// The gap, when broken.
    pub fn gap(&self) -> Option<&str> {
        match self {
            Verdict::Whole => None,
            Verdict::Broken(gap) => Some(gap),
        }
    }
}

/// As `/api/v1/status` has always shown it: `{"Ok": null}` or `{"Err": "the gap"}`.
impl Serialize for Verdict {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Verdict::Whole => Ok::<(), &str>(()).serialize(s),
            Verdict::Broken(gap) => Err::<(), &str>(gap).serialize(s),
        }
    }
}

impl Chain {
    /// The verdict; `None` when not judged.
    pub fn verdict(&self) -> Option<Verdict> {
        match self {
            Chain::NotLtx => None,
            Chain::Whole { .. } | Chain::WalWhole { .. } => Some(Verdict::Whole),
            Chain::Gap { .. }
            | Chain::BadHeader { .. }
            | Chain::WalMissing { .. }
            | Chain::NoSnapshot { .. } => self.describe().map(Verdict::Broken),
        }
    }

    /// The chain as a restore would read it, for people.
    pub fn describe(&self) -> Option<String> {
        match self {
            Chain::Gap { have, starts, next } => Some(format!(
                "LTX files are missing: the chain holds transactions up to {have:016x}, and the next file, {next}, starts at {starts:016x}"
            )),
            Chain::BadHeader { key, problem } => Some(format!(
                "an LTX file a restore would read is damaged: {key}: {problem}"
            )),
            Chain::WalMissing {
                generation,
                index,
                next,
            } => {
                let what = match next.contains(&format!("/{index:08x}_")) {
                    true => "has lost its first segment",
                    false => "has no segment",
                };
                Some(format!(
                    "WAL segments are missing: index {index:08x} of generation {generation} {what}; the next segment present is {next}"
                ))
            }
            Chain::NoSnapshot { generation, next } => Some(format!(
                "generation {generation} has no snapshot to restore from, only WAL segments from {next}"
            )),
            _ => None,
        }
    }
}

/// One LTX file of a listing.
#[derive(Debug, Clone, Copy)]
struct File<'a> {
    level: u32,
    min: u64,
    max: u64,
    key: &'a str,
}

/// Judges the LTX files among `keys` (`…/<level>/<min>-<max>.ltx`; other keys are ignored).
///
/// This is our reading of how `litestream restore` plans (its `CalcRestorePlan`): start at the
/// newest snapshot (level 9), then take, among the files of levels 0 to 8 that start at most one
/// past what is held and end beyond it, the one reaching furthest, until none does. A file left
/// over beyond that point starts after a gap: the restore refuses the replica ("non-contiguous ltx
/// files: have up to X but next file starts at Y"). A missing file that later compacted levels
/// cover is no gap, as it is none to the restore.
pub fn check<'a>(keys: impl IntoIterator<Item = &'a str>) -> Chain {
    let files: Vec<File> = keys
        .into_iter()
        .filter_map(|key| {
            let mut parts = key.rsplit('/');
            let name = parse_ltx_name(parts.next()?)?;
            let level = parse_level(parts.next()?)?;
            Some(File {
                level,
                min: name.min_txid,
                max: name.max_txid,
                key,
            })
        })
        .collect();
    if files.is_empty() {
        return Chain::NotLtx;
    }
    let snapshot = files
        .iter()
        .filter(|f| f.level == SNAPSHOT_LEVEL)
        .map(|f| f.max)
        .max();
    let mut rest: Vec<File> = files
        .into_iter()
        .filter(|f| f.level < SNAPSHOT_LEVEL)
        .collect();
    rest.sort_by_key(|f| (f.min, std::cmp::Reverse(f.max)));
    let mut have = snapshot.unwrap_or(0);
    // Files sorted by where they start: those that can extend the run are a prefix of what
    // is left, and the one reaching furthest among them is taken.
    let mut i = 0;
    loop {
        let mut best: Option<u64> = None;
        while i < rest.len() && rest[i].min <= have.saturating_add(1) {
            if rest[i].max > have {
                best = best.max(Some(rest[i].max));
            }
            i += 1;
        }
        match best {
            Some(max) => have = max,
            None => break,
        }
    }
    match rest[i..].iter().find(|f| f.max > have) {
        Some(f) => Chain::Gap {
            have,
            starts: f.min,
            next: f.key.to_string(),
        },
        None => Chain::Whole { txid: have },
    }
}

/// What is wrong with the header (`bytes`, the file's first bytes) of the LTX file named `key`:
/// not an LTX header, or other TXIDs than its name says, or a page size SQLite cannot have.
/// `None` when sound, or when `key` names no LTX file. Pure.
pub fn header_problem(key: &str, bytes: &[u8]) -> Option<String> {
    let name = parse_ltx_name(key.rsplit('/').next()?)?;
    let h = match parse_ltx_header(bytes) {
        Ok(h) => h,
        Err(e) => return Some(e.to_string()),
    };
    if (h.min_txid, h.max_txid) != (name.min_txid, name.max_txid) {
        return Some(format!(
            "its header holds transactions {:016x}-{:016x}, its name {:016x}-{:016x}",
            h.min_txid, h.max_txid, name.min_txid, name.max_txid
        ));
    }
    let sqlite_page = (512..=65536).contains(&h.page_size) && h.page_size.is_power_of_two();
    (!sqlite_page).then(|| format!("its header gives a page size of {}", h.page_size))
}

/// The files a restore would read among `keys`, whose headers are worth checking: the newest
/// snapshot and every file past it. Pure.
pub fn restore_reads<'a>(keys: impl IntoIterator<Item = &'a str> + Clone) -> Vec<&'a str> {
    let ltx = |key: &'a str| {
        let mut parts = key.rsplit('/');
        let name = parse_ltx_name(parts.next()?)?;
        Some((parse_level(parts.next()?)?, name.max_txid, key))
    };
    let snapshot = keys
        .clone()
        .into_iter()
        .filter_map(ltx)
        .filter(|(level, _, _)| *level == SNAPSHOT_LEVEL)
        .max_by_key(|(_, max, _)| *max);
    let floor = snapshot.map_or(0, |(_, max, _)| max);
    keys.into_iter()
        .filter_map(ltx)
        .filter(|(level, max, key)| {
            *max > floor || (*level == SNAPSHOT_LEVEL && Some(*key) == snapshot.map(|s| s.2))
        })
        .map(|(_, _, key)| key)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::litestream::LTX_HEADER_SIZE;

    fn k(level: u32, min: u64, max: u64) -> String {
        format!("ltx/{level}/{min:016x}-{max:016x}.ltx")
    }

    fn judge(files: &[(u32, u64, u64)]) -> Chain {
        let keys: Vec<String> = files.iter().map(|&(l, a, b)| k(l, a, b)).collect();
        check(keys.iter().map(String::as_str))
    }

    #[test]
    fn a_whole_chain_from_the_snapshot_to_the_newest_file() {
        // A snapshot to 5, level 1 compacted 6-8, level 0 still holding 6-8 and then 9, 10.
        let files = [
            (9, 1, 5),
            (1, 6, 8),
            (0, 6, 6),
            (0, 7, 8),
            (0, 9, 9),
            (0, 10, 10),
        ];
        assert_eq!(judge(&files), Chain::Whole { txid: 10 });
        // No snapshot yet: the run starts at the first transaction.
        assert_eq!(judge(&[(0, 1, 1), (0, 2, 3)]), Chain::Whole { txid: 3 });
    }

    #[test]
    fn a_file_removed_from_the_middle_is_named() {
        // As tried with Litestream 0.5.17: "have up to 0000000000000007 but next file starts at
        // 0000000000000009".
        let files = [(9, 1, 5), (0, 6, 6), (0, 7, 7), (0, 9, 9), (0, 10, 10)];
        assert_eq!(
            judge(&files),
            Chain::Gap {
                have: 7,
                starts: 9,
                next: k(0, 9, 9)
            }
        );
        let said = judge(&files).describe().unwrap();
        assert!(
            said.contains("0000000000000007") && said.contains(&k(0, 9, 9)),
            "{said}"
        );
    }

    #[test]
    fn a_gap_a_compacted_level_covers_is_no_gap() {
        // Level 0 lost 8, but level 1 holds 6-9: the restore takes it.
        let files = [
            (9, 1, 5),
            (1, 6, 9),
            (0, 6, 6),
            (0, 7, 7),
            (0, 9, 9),
            (0, 10, 10),
        ];
        assert_eq!(judge(&files), Chain::Whole { txid: 10 });
        // Files older than the snapshot, gaps among them included, do not matter.
        let files = [(0, 1, 1), (0, 3, 3), (9, 1, 5), (0, 6, 6)];
        assert_eq!(judge(&files), Chain::Whole { txid: 6 });
    }

    fn header(min: u64, max: u64, page: u32) -> Vec<u8> {
        let mut b = vec![0u8; LTX_HEADER_SIZE];
        b[0..4].copy_from_slice(b"LTX1");
        b[8..12].copy_from_slice(&page.to_be_bytes());
        b[16..24].copy_from_slice(&min.to_be_bytes());
        b[24..32].copy_from_slice(&max.to_be_bytes());
        b
    }

    #[test]
    fn a_header_must_be_ltx_and_agree_with_its_name() {
        let key = k(0, 6, 8);
        assert_eq!(header_problem(&key, &header(6, 8, 4096)), None);
        let said = header_problem(&key, &header(6, 9, 4096)).unwrap();
        assert!(
            said.contains("0000000000000009") && said.contains("its name"),
            "{said}"
        );
        assert!(header_problem(&key, b"garbage")
            .unwrap()
            .contains("at least 100"));
        let mut bad = header(6, 8, 4096);
        bad[0] = b'X';
        assert!(header_problem(&key, &bad).unwrap().contains("magic"));
        assert!(header_problem(&key, &header(6, 8, 1000))
            .unwrap()
            .contains("page size"));
        assert_eq!(header_problem("ltx/0/notes.txt", b""), None);
        let said = Chain::BadHeader {
            key: key.clone(),
            problem: "x".into(),
        }
        .describe()
        .unwrap();
        assert!(said.contains(&key), "{said}");
    }

    #[test]
    fn a_restore_reads_the_newest_snapshot_and_what_is_past_it() {
        let keys = [
            k(9, 1, 5),
            k(9, 1, 9),
            k(1, 1, 5),
            k(1, 6, 9),
            k(0, 10, 10),
            k(0, 9, 9),
        ];
        let reads = restore_reads(keys.iter().map(String::as_str));
        assert_eq!(reads, [k(9, 1, 9).as_str(), k(0, 10, 10).as_str()]);
    }

    #[test]
    fn other_listings_are_not_judged() {
        assert_eq!(
            check(["generations/abc/wal/00000001/00000000.wal.lz4", "x.txt"]),
            Chain::NotLtx
        );
    }
}
