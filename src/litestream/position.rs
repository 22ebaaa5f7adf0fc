//! Replication positions: what Litestream has written locally and what a replica holds, from
//! listings. The choice of the newest entry is pure (over names and times); reading directories
//! and object listings is at the edge (`local`, `listing`, and the S3 code in `replica`).

use super::listing::{Entry, Listing, ReadError};
use crate::format::litestream::{
    parse_generation, parse_level, parse_ltx_name, parse_segment_name, parse_shadow_wal_name,
    parse_snapshot_name, WalPos,
};
use serde::Serialize;
use std::io;
use std::path::Path;
use std::time::SystemTime;

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

/// Reads the meta directory (through `listing`, what was read of it last time): the highest
/// local TXID (v0.5) or the current generation's shadow WAL index and size (v0.3), and every
/// file it holds.
pub fn local(meta: &Path, listing: &mut Listing) -> Result<Local, ReadError> {
    // Not there at all (Litestream has not started on this database yet): say so, not which of
    // its two layouts' files is missing.
    listing.read(meta, 3)?;
    if listing.has_dir("ltx") {
        let files = listing.entries().to_vec();
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
    if !listing.has_dir(&format!("generations/{generation}/wal")) {
        let gone = io::Error::new(io::ErrorKind::NotFound, "no such folder");
        return Err(ReadError::at(&wal_dir)(gone));
    }
    let files = listing.entries().to_vec();
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
