//! Litestream's on-disk and in-bucket names and the LTX header, as pure functions: v0.5's LTX
//! files, v0.3's generations, shadow WALs, segments and snapshots.

/// Size of the LTX header.
pub const LTX_HEADER_SIZE: usize = 100;

/// A v0.5 LTX file name: the TXID range it holds.
///
/// v0.5 writes LTX files named `<minTXID>-<maxTXID>.ltx` (16 lower-case hex digits each) under
/// `ltx/<level>/` locally and on file replicas, and under `<%04x level>/` on S3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LtxName {
    pub min_txid: u64,
    pub max_txid: u64,
}

fn hex_u64(s: &str, digits: usize) -> Option<u64> {
    (s.len() == digits && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(s, 16).ok())
        .flatten()
}

/// Parses `0000000000000001-0000000000000004.ltx`.
pub fn parse_ltx_name(name: &str) -> Option<LtxName> {
    let stem = name.strip_suffix(".ltx")?;
    let (min, max) = stem.split_once('-')?;
    let (min_txid, max_txid) = (hex_u64(min, 16)?, hex_u64(max, 16)?);
    (min_txid <= max_txid).then_some(LtxName { min_txid, max_txid })
}

/// Parses a level directory: `0`..`9` on file replicas and locally, `0000`..`0009` (hex) on S3.
pub fn parse_level(name: &str) -> Option<u32> {
    match name.len() {
        1 => name.parse().ok(),
        4 => hex_u64(name, 4).map(|v| v as u32),
        _ => None,
    }
}

/// The fields of an LTX header that replication needs.
///
/// Each LTX file starts with a 100-byte header: magic `LTX1`, flags, page size, commit, min and
/// max TXID, and the creation time in milliseconds since the epoch at bytes 32-39, and (level-0
/// files) the WAL offset, size and salts it was read from at bytes 48-71, all big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LtxHeader {
    pub page_size: u32,
    pub min_txid: u64,
    pub max_txid: u64,
    /// Milliseconds since the Unix epoch when Litestream wrote the file.
    pub timestamp_ms: u64,
    /// The stretch of the live WAL this file was made from (level-0 files of v0.5; compacted
    /// files and snapshots leave it zero): where the database stood when Litestream read it.
    pub wal: Option<WalMark>,
}

/// A position in a database's WAL: the byte just past the last frame read, and the WAL's
/// salts as they stand in its header (bytes 16-23), which change at every WAL reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WalMark {
    pub end: u64,
    pub salt: [u8; 8],
}

impl WalMark {
    /// Where a WAL of `frames` committed frames of `page_size`-byte pages ends (a 32-byte
    /// header, then frames of a 24-byte header and a page each), with the salts as SQLite's
    /// wal-index and frame counts hold them (two big-endian words in the file).
    pub fn after(salt: [u32; 2], frames: u64, page_size: u64) -> WalMark {
        let [a, b] = [salt[0].to_be_bytes(), salt[1].to_be_bytes()];
        WalMark {
            end: 32 + frames * (page_size + 24),
            salt: [a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LtxError {
    #[error("LTX header is {0} bytes; expected at least 100")]
    Short(usize),
    #[error("not an LTX file (magic is not LTX1)")]
    BadMagic,
    #[error("LTX header is inconsistent (min TXID {min} > max TXID {max})")]
    BadRange { min: u64, max: u64 },
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Parses the first 100 bytes of an LTX file.
pub fn parse_ltx_header(b: &[u8]) -> Result<LtxHeader, LtxError> {
    if b.len() < LTX_HEADER_SIZE {
        return Err(LtxError::Short(b.len()));
    }
    if &b[0..4] != b"LTX1" {
        return Err(LtxError::BadMagic);
    }
    let (min_txid, max_txid) = (be64(b, 16), be64(b, 24));
    if min_txid > max_txid {
        return Err(LtxError::BadRange {
            min: min_txid,
            max: max_txid,
        });
    }
    Ok(LtxHeader {
        page_size: be32(b, 8),
        min_txid,
        max_txid,
        timestamp_ms: be64(b, 32),
        // WALOffset (48), WALSize (56), WALSalt1 and WALSalt2 (64-71), after the checksum.
        wal: (be64(b, 56) > 0).then(|| WalMark {
            end: be64(b, 48).saturating_add(be64(b, 56)),
            salt: b[64..72].try_into().expect("8 bytes"),
        }),
    })
}

/// A v0.3 position: WAL index and byte offset within a generation.
///
/// v0.3 keeps a `generation` file naming the current generation (16 hex digits), a shadow WAL
/// `generations/<gen>/wal/<%08x index>.wal` locally, and replica segments
/// `generations/<gen>/wal/<%08x index>_<%08x offset>.wal.lz4` and snapshots
/// `generations/<gen>/snapshots/<%08x index>.snapshot.lz4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct WalPos {
    pub index: u32,
    pub offset: u32,
}

/// Parses a v0.3 generation name (16 hex digits).
pub fn parse_generation(name: &str) -> Option<&str> {
    hex_u64(name.trim(), 16).map(|_| name.trim())
}

/// Parses a v0.3 replica WAL segment name, `00000000_000060b0.wal.lz4`.
pub fn parse_segment_name(name: &str) -> Option<WalPos> {
    let stem = name.strip_suffix(".wal.lz4")?;
    let (index, offset) = stem.split_once('_')?;
    Some(WalPos {
        index: hex_u64(index, 8)? as u32,
        offset: hex_u64(offset, 8)? as u32,
    })
}

/// Parses a v0.3 replica snapshot name, `00000001.snapshot.lz4`: the WAL index it was taken at.
pub fn parse_snapshot_name(name: &str) -> Option<u32> {
    hex_u64(name.strip_suffix(".snapshot.lz4")?, 8).map(|v| v as u32)
}

/// Parses a v0.3 local shadow WAL name, `00000000.wal`: its index.
pub fn parse_shadow_wal_name(name: &str) -> Option<u32> {
    hex_u64(name.strip_suffix(".wal")?, 8).map(|v| v as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The header of a real v0.5.17 L0 file (txid 4), as written on this machine.
    const REAL_HEADER: [u8; 100] = {
        let mut h = [0u8; 100];
        let head: [u8; 40] = [
            0x4c, 0x54, 0x58, 0x31, 0, 0, 0, 2, 0, 0, 0x10, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 4,
            0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0x01, 0xa2, 0x13, 0xd0, 0x49, 0x93,
        ];
        let mut i = 0;
        while i < 40 {
            h[i] = head[i];
            i += 1;
        }
        h
    };

    #[test]
    fn ltx_names_and_levels() {
        assert_eq!(
            parse_ltx_name("0000000000000001-00000000000000ff.ltx"),
            Some(LtxName {
                min_txid: 1,
                max_txid: 255
            })
        );
        for bad in [
            "1-2.ltx",
            "0000000000000002-0000000000000001.ltx",
            "0000000000000001-0000000000000001.ltx.tmp",
            "000000000000000g-0000000000000001.ltx",
        ] {
            assert_eq!(parse_ltx_name(bad), None, "{bad}");
        }
        assert_eq!(parse_level("9"), Some(9));
        assert_eq!(parse_level("0009"), Some(9));
        assert_eq!(parse_level("000a"), Some(10));
        assert_eq!(parse_level("ltx"), None);
    }

    #[test]
    fn real_ltx_header() {
        let h = parse_ltx_header(&REAL_HEADER).unwrap();
        assert_eq!(h.page_size, 4096);
        assert_eq!((h.min_txid, h.max_txid), (4, 4));
        assert_eq!(h.timestamp_ms, 1_795_628_747_155);
        assert_eq!(
            parse_ltx_header(&REAL_HEADER[..99]),
            Err(LtxError::Short(99))
        );
        assert_eq!(h.wal, None, "a header without a WAL stretch");
        let mut bad = REAL_HEADER;
        bad[0] = b'X';
        assert_eq!(parse_ltx_header(&bad), Err(LtxError::BadMagic));
    }

    /// A level-0 file of Litestream 0.5.17 made from frames 7 (WAL offset 0x60b0, one 4 KiB
    /// frame of 0x1018 bytes): the WAL stood at byte 28,872 = 32 + 7 × 4,120, the live `-shm`'s
    /// mxFrame 7.
    #[test]
    fn a_level_0_header_says_where_the_wal_stood() {
        let mut b = REAL_HEADER;
        b[48..56].copy_from_slice(&0x60b0u64.to_be_bytes());
        b[56..64].copy_from_slice(&0x1018u64.to_be_bytes());
        b[64..72].copy_from_slice(&[0x98, 0x9e, 0x94, 0x72, 0x30, 0x01, 0x0a, 0x33]);
        let h = parse_ltx_header(&b).unwrap();
        assert_eq!(
            h.wal,
            Some(WalMark {
                end: 28_872,
                salt: [0x98, 0x9e, 0x94, 0x72, 0x30, 0x01, 0x0a, 0x33]
            })
        );
    }

    #[test]
    fn v03_names() {
        assert_eq!(
            parse_segment_name("00000001_000060b0.wal.lz4"),
            Some(WalPos {
                index: 1,
                offset: 0x60b0
            })
        );
        assert_eq!(parse_segment_name("00000001.wal.lz4"), None);
        assert_eq!(parse_shadow_wal_name("0000000a.wal"), Some(10));
        assert_eq!(
            parse_generation("19c19ebf760dedb6\n"),
            Some("19c19ebf760dedb6")
        );
        assert_eq!(parse_generation("xyz"), None);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), s in ".{0,40}") {
            let _ = parse_ltx_header(&bytes);
            let _ = parse_ltx_name(&s);
            let _ = parse_segment_name(&s);
            let _ = parse_shadow_wal_name(&s);
            let _ = parse_level(&s);
            let _ = parse_generation(&s);
        }
    }
}
