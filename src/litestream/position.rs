//! Replication positions: what Litestream has written locally and what a replica holds, from
//! listings. The choice of the newest entry is pure (over names and times); reading directories
//! and object listings is at the edge (`local`, `file_listing`, and the S3 code in `watcher`).

use crate::format::litestream::{
    parse_generation, parse_level, parse_ltx_name, parse_segment_name, parse_shadow_wal_name,
    parse_snapshot_name, WalPos,
};
use serde::Serialize;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A directory or file of Litestream's that could not be read, with the path and the cause
/// (`Display` carries both, as they reach the status page and the log).
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub struct ReadError {
    pub path: PathBuf,
    pub source: io::Error,
}

impl ReadError {
    fn at(path: &Path) -> impl FnOnce(io::Error) -> ReadError + '_ {
        move |source| ReadError {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A position in Litestream's stream of changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "format")]
pub enum Position {
    /// v0.5: the highest TXID held.
    #[serde(rename = "v0.5")]
    V5 { txid: u64 },
    /// v0.3: generation, WAL index and byte offset.
    #[serde(rename = "v0.3")]
    V3 {
        generation: String,
        index: u32,
        offset: u32,
    },
}

/// One listed file or object, its key relative to the replica root with `/` separators
/// (`ltx/0/…ltx` on files, `0000/…ltx` on S3, `generations/<gen>/wal/…wal.lz4` for v0.3).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub modified: SystemTime,
    /// Its size in bytes.
    pub size: u64,
}

/// The newest entry of a replica listing and the position it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Newest {
    pub position: Position,
    /// The key to read the LTX header from (v0.5), for its timestamp.
    pub key: String,
    pub modified: SystemTime,
}

/// Picks the replica's position from a listing: the highest max TXID across levels (v0.5, the
/// lowest level holding it, whose header dates it most closely), else the newest segment of the
/// current generation (v0.3; the generation with the newest segment when not known). `None` for
/// an empty replica.
pub fn newest(entries: &[Entry], generation: Option<&str>) -> Option<Newest> {
    let v5 = entries
        .iter()
        .filter_map(|e| {
            let mut parts = e.key.rsplit('/');
            let name = parse_ltx_name(parts.next()?)?;
            let level = parse_level(parts.next()?)?;
            Some((name.max_txid, std::cmp::Reverse(level), e))
        })
        .max_by_key(|(txid, level, _)| (*txid, *level));
    if let Some((txid, _, e)) = v5 {
        return Some(Newest {
            position: Position::V5 { txid },
            key: e.key.clone(),
            modified: e.modified,
        });
    }
    // A snapshot holds every commit up to the start of its WAL index at least: right after a new
    // generation starts, Litestream writes it before the first WAL segment, and the replica is
    // not empty then. On a tie a segment wins (it is the finer position).
    let segments: Vec<((WalPos, bool), &str, &Entry)> = entries
        .iter()
        .filter_map(|e| {
            let parts: Vec<&str> = e.key.split('/').collect();
            match parts.as_slice() {
                [.., "generations", g, "wal", seg] => {
                    Some(((parse_segment_name(seg)?, true), parse_generation(g)?, e))
                }
                [.., "generations", g, "snapshots", snap] => {
                    let index = parse_snapshot_name(snap)?;
                    Some((
                        (WalPos { index, offset: 0 }, false),
                        parse_generation(g)?,
                        e,
                    ))
                }
                _ => None,
            }
        })
        .collect();
    let generation = generation.map(String::from).or_else(|| {
        segments
            .iter()
            .max_by_key(|(_, _, e)| e.modified)
            .map(|(_, g, _)| g.to_string())
    })?;
    segments
        .iter()
        .filter(|(_, g, _)| *g == generation)
        .max_by_key(|(pos, _, _)| *pos)
        .map(|((pos, _), g, e)| Newest {
            position: Position::V3 {
                generation: g.to_string(),
                index: pos.index,
                offset: pos.offset,
            },
            key: e.key.clone(),
            modified: e.modified,
        })
}

/// Lists a file replica (both layouts), keys relative to `root`. A directory that cannot be
/// read is an error, never an empty replica; an entry that vanishes while listed is skipped
/// (Litestream removes compacted files all the time).
pub fn file_listing(root: &Path) -> Result<Vec<Entry>, ReadError> {
    let mut out = Vec::new();
    walk(root, "", 3, &mut out)?;
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, depth: u32, out: &mut Vec<Entry>) -> Result<(), ReadError> {
    let entries = std::fs::read_dir(dir).map_err(ReadError::at(dir))?;
    for e in entries {
        let e = e.map_err(ReadError::at(dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let key = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let path = e.path();
        // The directory listing says what each entry is: a folder costs no stat of its own (a
        // filesystem that does not say is asked by the stat).
        let listed_dir = e.file_type().is_ok_and(|t| t.is_dir());
        let m = match listed_dir {
            true => None,
            false => match e.metadata() {
                Ok(m) => Some(m),
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(ReadError::at(&path)(err)),
            },
        };
        let Some(m) = m.filter(|m| !m.is_dir()) else {
            if depth > 0 {
                match walk(&path, &key, depth - 1, out) {
                    Err(err) if err.source.kind() == io::ErrorKind::NotFound => {}
                    other => other?,
                }
            }
            continue;
        };
        out.push(Entry {
            key,
            modified: m.modified().map_err(ReadError::at(&path))?,
            size: m.len(),
        });
    }
    Ok(())
}

/// What Litestream has written locally, from its meta directory.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Local {
    pub position: Option<Position>,
    /// The current generation (v0.3), to pick the replica's segments.
    #[serde(skip)]
    pub generation: Option<String>,
    /// Every file of the meta directory, keys relative to it (`ltx/0/…ltx`,
    /// `generations/<gen>/wal/…wal`): what the local state holds on disk.
    #[serde(skip)]
    pub files: Vec<Entry>,
}

/// Litestream's local level-0 file holding the first transaction past `txid` (v0.5), its key
/// in the meta directory's listing (`files`, as [`local`] walked it): it was read from the WAL
/// before its header's timestamp, so a replica holding only `txid` has lacked it at least since
/// then. `None` when there is none. Pure.
pub fn local_after(files: &[Entry], txid: u64) -> Option<&str> {
    files
        .iter()
        .filter_map(|e| {
            let name = parse_ltx_name(e.key.strip_prefix("ltx/0/")?)?;
            (name.max_txid > txid).then_some((name.min_txid, e.key.as_str()))
        })
        .min_by_key(|(min, _)| *min)
        .map(|(_, key)| key)
}

/// Reads the meta directory in one walk: the highest local TXID (v0.5) or the current
/// generation's shadow WAL index and size (v0.3), and every file it holds.
pub fn local(meta: &Path) -> Result<Local, ReadError> {
    // Not there at all (Litestream has not started on this database yet): say so, not which of
    // its two layouts' files is missing.
    std::fs::metadata(meta).map_err(ReadError::at(meta))?;
    if meta.join("ltx").is_dir() {
        let mut files = Vec::new();
        walk(meta, "", 2, &mut files)?;
        let ltx: Vec<Entry> = files
            .iter()
            .filter_map(|e| {
                let key = e.key.strip_prefix("ltx/")?.to_string();
                Some(Entry { key, ..e.clone() })
            })
            .collect();
        return Ok(Local {
            position: newest(&ltx, None).map(|n| n.position),
            generation: None,
            files,
        });
    }
    let generation_file = meta.join("generation");
    let generation =
        std::fs::read_to_string(&generation_file).map_err(ReadError::at(&generation_file))?;
    let generation = parse_generation(&generation)
        .ok_or_else(|| {
            ReadError::at(&generation_file)(io::Error::new(
                io::ErrorKind::InvalidData,
                "it does not hold a generation",
            ))
        })?
        .to_string();
    let wal_dir = meta.join("generations").join(&generation).join("wal");
    // The current generation's WAL folder must be readable: without it there is no position.
    std::fs::metadata(&wal_dir).map_err(ReadError::at(&wal_dir))?;
    let mut files = Vec::new();
    walk(meta, "", 3, &mut files)?;
    let in_wal = format!("generations/{generation}/wal/");
    let newest_wal = files
        .iter()
        .filter_map(|e| {
            let name = e.key.strip_prefix(&in_wal)?;
            Some((parse_shadow_wal_name(name)?, e.size))
        })
        .max();
    Ok(Local {
        position: newest_wal.map(|(index, size)| Position::V3 {
            generation: generation.clone(),
            index,
            offset: size as u32,
        }),
        generation: Some(generation),
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn e(key: &str, secs: u64) -> Entry {
        Entry {
            key: key.into(),
            modified: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            size: 0,
        }
    }

    #[test]
    fn v5_highest_txid_across_levels_lowest_level_first() {
        let listing = [
            e("ltx/0/0000000000000001-0000000000000004.ltx", 10),
            e("ltx/0/0000000000000005-0000000000000007.ltx", 12),
            e("ltx/1/0000000000000001-0000000000000007.ltx", 40),
            e("ltx/9/0000000000000001-0000000000000001.ltx", 5),
            e("ltx/0/garbage.tmp", 50),
        ];
        let n = newest(&listing, None).unwrap();
        assert_eq!(n.position, Position::V5 { txid: 7 });
        assert_eq!(n.key, "ltx/0/0000000000000005-0000000000000007.ltx");
        // The S3 layout: hex levels, no ltx/.
        let s3 = [e("0001/0000000000000001-0000000000000009.ltx", 1)];
        assert_eq!(
            newest(&s3, None).unwrap().position,
            Position::V5 { txid: 9 }
        );
        assert_eq!(newest(&[], None), None);
    }

    #[test]
    fn v3_newest_segment_of_the_current_generation() {
        let listing = [
            e(
                "generations/19c19ebf760dedb6/wal/00000000_00000000.wal.lz4",
                10,
            ),
            e(
                "generations/19c19ebf760dedb6/wal/00000001_000060b0.wal.lz4",
                12,
            ),
            e(
                "generations/19c19ebf760dedb6/wal/00000001_00001000.wal.lz4",
                11,
            ),
            e(
                "generations/19c19ebf760dedb6/snapshots/00000000.snapshot.lz4",
                9,
            ),
            e(
                "generations/aaaaaaaaaaaaaaaa/wal/00000009_00000000.wal.lz4",
                5,
            ),
        ];
        let n = newest(&listing, Some("19c19ebf760dedb6")).unwrap();
        assert_eq!(
            n.position,
            Position::V3 {
                generation: "19c19ebf760dedb6".into(),
                index: 1,
                offset: 0x60b0
            }
        );
        // Unknown generation: the one written last.
        assert_eq!(newest(&listing, None).unwrap().modified, n.modified);
        assert_eq!(newest(&listing, Some("bbbbbbbbbbbbbbbb")), None);
    }

    /// Right after a new generation starts, Litestream 0.3 has written its snapshot and no WAL
    /// segment yet: the replica holds the snapshot, it is not empty.
    #[test]
    fn v3_a_snapshot_alone_is_a_position() {
        let g = "19c19ebf760dedb6";
        let listing = [e(
            &format!("generations/{g}/snapshots/00000002.snapshot.lz4"),
            9,
        )];
        let n = newest(&listing, Some(g)).unwrap();
        assert_eq!(
            n.position,
            Position::V3 {
                generation: g.into(),
                index: 2,
                offset: 0
            }
        );
        // A segment at the same place is the finer position.
        let listing = [
            e(
                &format!("generations/{g}/snapshots/00000002.snapshot.lz4"),
                9,
            ),
            e(
                &format!("generations/{g}/wal/00000002_00000000.wal.lz4"),
                10,
            ),
        ];
        assert!(newest(&listing, Some(g)).unwrap().key.contains("/wal/"));
    }
}
