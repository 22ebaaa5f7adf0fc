//! The wal-index header at the start of `<db>-shm` (wal.c, `WalIndexHdr` and `WalCkptInfo`).
//! Pure: the probe `pread`s the first 136 bytes and hands them in with the host's byte order.

use std::fmt;

/// One copy of the wal-index header, in bytes.
pub const INDEX_HEADER_SIZE: usize = 48;
/// Offset of the checkpoint info (after the two header copies).
pub const CKPT_INFO_OFFSET: usize = 2 * INDEX_HEADER_SIZE;
/// Bytes to read: two header copies plus the 40-byte checkpoint info.
pub const SHM_HEADER_SIZE: usize = 136;
/// `iVersion` of every wal-index SQLite writes.
pub const WALINDEX_VERSION: u32 = 3_007_000;
/// Number of reader slots (`WAL_NREADER`); slot 0 reads the database file only, not the WAL.
pub const READ_SLOTS: usize = 5;
/// An unused read mark.
pub const READMARK_NOT_USED: u32 = 0xffff_ffff;

/// Byte offsets in `-shm` of SQLite's POSIX advisory locks (unix VFS, `UNIX_SHM_BASE` = 120).
pub mod lock_bytes {
    /// Held exclusively by the one writer for a whole write transaction.
    pub const WRITE: u64 = 120;
    /// Held exclusively while a checkpoint runs.
    pub const CHECKPOINT: u64 = 121;
    /// Held while the wal-index is rebuilt.
    pub const RECOVER: u64 = 122;
    /// Read slot `i` is byte `READ_BASE + i`; readers hold it shared for a read transaction.
    pub const READ_BASE: u64 = 123;
    /// "Dead man switch": every connection holds it shared while the database is open.
    pub const DMS: u64 = 128;
}

/// Byte order of the host that wrote the wal-index (it is native-endian shared memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    Little,
    Big,
}

impl ByteOrder {
    pub const NATIVE: ByteOrder = if cfg!(target_endian = "big") {
        ByteOrder::Big
    } else {
        ByteOrder::Little
    };

    fn u32_at(self, b: &[u8], off: usize) -> u32 {
        let w = [b[off], b[off + 1], b[off + 2], b[off + 3]];
        match self {
            ByteOrder::Little => u32::from_le_bytes(w),
            ByteOrder::Big => u32::from_be_bytes(w),
        }
    }

    fn u16_at(self, b: &[u8], off: usize) -> u16 {
        let w = [b[off], b[off + 1]];
        match self {
            ByteOrder::Little => u16::from_le_bytes(w),
            ByteOrder::Big => u16::from_be_bytes(w),
        }
    }
}

/// The wal-index header (one copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexHeader {
    /// Incremented exactly once by every commit that wrote frames; survives checkpoints and WAL
    /// resets; starts from 0 when the wal-index is rebuilt.
    pub change: u32,
    /// Page size in bytes.
    pub page_size: u32,
    /// Index of the last valid frame in the WAL (frames are numbered from 1).
    pub max_frame: u32,
    /// Size of the database in pages after the last commit.
    pub page_count: u32,
    /// The WAL's salt pair (changes on every WAL reset).
    pub salt: [u32; 2],
}

/// The checkpoint info that follows the two header copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// Frames already copied back into the database by checkpoints.
    pub backfill: u32,
    /// Read marks: the `max_frame` each reader slot's snapshot was taken at.
    pub read_marks: [u32; READ_SLOTS],
    /// Frames a checkpointer has attempted to copy (may exceed `backfill` while one runs).
    pub backfill_attempted: u32,
}

/// The parsed start of `-shm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalIndex {
    pub header: IndexHeader,
    pub ckpt: CheckpointInfo,
}

impl IndexHeader {
    /// Where the WAL ends after the last commit (32-byte header, then frames of a 24-byte
    /// header and a page each) and its salts as the WAL header holds them: what Litestream's
    /// LTX headers record.
    pub fn wal_mark(&self) -> crate::format::litestream::WalMark {
        let (frames, page) = (u64::from(self.max_frame), u64::from(self.page_size));
        crate::format::litestream::WalMark::after(self.salt, frames, page)
    }
}

impl WalIndex {
    /// Frames in the WAL that no checkpoint has copied back yet.
    pub fn checkpoint_lag_frames(&self) -> u32 {
        self.header.max_frame.saturating_sub(self.ckpt.backfill)
    }
}

/// Why the wal-index header was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShmError {
    /// Fewer than 136 bytes: the file was just truncated by the first connection to open the
    /// database and is being rebuilt. Read again.
    Incomplete { len: usize },
    /// The two copies differ: a writer was updating them. Read again.
    CopiesDiffer,
    /// `isInit` is 0: the wal-index is being (re)built. Read again.
    NotInitialised,
    /// The header checksum does not hold: a torn write. Read again.
    ChecksumMismatch,
    /// An unknown `iVersion`: not a wal-index this tool understands.
    UnknownVersion(u32),
}

impl ShmError {
    /// True when a later read may succeed (the header is torn or being written).
    pub fn is_transient(&self) -> bool {
        !matches!(self, ShmError::UnknownVersion(_))
    }
}

impl fmt::Display for ShmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShmError::Incomplete { len } => {
                write!(
                    f,
                    "wal-index header incomplete: {len} of {SHM_HEADER_SIZE} bytes"
                )
            }
            ShmError::CopiesDiffer => write!(f, "wal-index header copies differ (torn read)"),
            ShmError::NotInitialised => write!(f, "wal-index header not initialised"),
            ShmError::ChecksumMismatch => write!(f, "wal-index header checksum does not hold"),
            ShmError::UnknownVersion(v) => write!(f, "unknown wal-index version {v}"),
        }
    }
}

impl std::error::Error for ShmError {}

/// Offsets in one copy of the wal-index header (`WalIndexHdr` in SQLite's wal.c).
mod hdr {
    pub const VERSION: usize = 0;
    pub const CHANGE: usize = 8;
    pub const IS_INIT: usize = 12;
    pub const PAGE_SIZE: usize = 14;
    pub const MAX_FRAME: usize = 16;
    pub const PAGE_COUNT: usize = 20;
    pub const SALT: usize = 32;
    /// The checksum covers the bytes before it.
    pub const CHECKSUM: usize = 40;
}

/// Offsets in the checkpoint information after the two header copies (`WalCkptInfo`).
mod ckpt {
    pub const BACKFILL: usize = 0;
    pub const READ_MARKS: usize = 4;
    pub const BACKFILL_ATTEMPTED: usize = 32;
}

/// The checksum SQLite keeps over the first 40 bytes of the header, in native word order.
fn header_checksum(order: ByteOrder, b: &[u8]) -> [u32; 2] {
    let (mut s1, mut s2) = (0u32, 0u32);
    for off in (0..hdr::CHECKSUM).step_by(8) {
        s1 = s1.wrapping_add(order.u32_at(b, off)).wrapping_add(s2);
        s2 = s2.wrapping_add(order.u32_at(b, off + 4)).wrapping_add(s1);
    }
    [s1, s2]
}

/// Parses the first 136 bytes of `-shm` written by a host of byte order `order`.
///
/// Accepted exactly as SQLite's own reader (`walIndexTryHdr`) accepts it: copy 1 equals copy 2,
/// `isInit` is set, and the checksum over bytes 0-39 holds. Anything else is a torn or not yet
/// initialised header: read again; only an unknown version is reported as corrupt.
pub fn parse(bytes: &[u8], order: ByteOrder) -> Result<WalIndex, ShmError> {
    if bytes.len() < SHM_HEADER_SIZE {
        return Err(ShmError::Incomplete { len: bytes.len() });
    }
    let (copy1, copy2) = (
        &bytes[..INDEX_HEADER_SIZE],
        &bytes[INDEX_HEADER_SIZE..CKPT_INFO_OFFSET],
    );
    if copy1 != copy2 {
        return Err(ShmError::CopiesDiffer);
    }
    let h = copy1;
    if h[hdr::IS_INIT] == 0 {
        return Err(ShmError::NotInitialised);
    }
    let stored = [
        order.u32_at(h, hdr::CHECKSUM),
        order.u32_at(h, hdr::CHECKSUM + 4),
    ];
    if header_checksum(order, h) != stored {
        return Err(ShmError::ChecksumMismatch);
    }
    let version = order.u32_at(h, hdr::VERSION);
    if version != WALINDEX_VERSION {
        return Err(ShmError::UnknownVersion(version));
    }
    // szPage packs 65536 into 16 bits: bits 8-15 are kept, bit 0 stands for bit 16.
    let sz = u32::from(order.u16_at(h, hdr::PAGE_SIZE));
    let page_size = (sz & 0xfe00) + ((sz & 0x0001) << 16);
    // The salts are a raw copy of the WAL header's big-endian bytes.
    let be = |at: usize| u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let salt = [be(hdr::SALT), be(hdr::SALT + 4)];
    let c = &bytes[CKPT_INFO_OFFSET..SHM_HEADER_SIZE];
    let mut read_marks = [0u32; READ_SLOTS];
    for (i, mark) in read_marks.iter_mut().enumerate() {
        *mark = order.u32_at(c, ckpt::READ_MARKS + 4 * i);
    }
    Ok(WalIndex {
        header: IndexHeader {
            change: order.u32_at(h, hdr::CHANGE),
            page_size,
            max_frame: order.u32_at(h, hdr::MAX_FRAME),
            page_count: order.u32_at(h, hdr::PAGE_COUNT),
            salt,
        },
        ckpt: CheckpointInfo {
            backfill: order.u32_at(c, ckpt::BACKFILL),
            read_marks,
            backfill_attempted: order.u32_at(c, ckpt::BACKFILL_ATTEMPTED),
        },
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::format::oracle::{sqlite_checksum, RealWal};

    /// Writes a wal-index header as SQLite does (`walIndexWriteHdr`), in `order`.
    pub(crate) fn build(order: ByteOrder, change: u32, max_frame: u32, backfill: u32) -> Vec<u8> {
        let put = |v: u32| match order {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        };
        let mut h = Vec::with_capacity(48);
        h.extend_from_slice(&put(WALINDEX_VERSION));
        h.extend_from_slice(&put(0));
        h.extend_from_slice(&put(change));
        h.push(1); // isInit
        h.push(0); // bigEndCksum
        let sz: u16 = 4096;
        h.extend_from_slice(&match order {
            ByteOrder::Little => sz.to_le_bytes(),
            ByteOrder::Big => sz.to_be_bytes(),
        });
        h.extend_from_slice(&put(max_frame));
        h.extend_from_slice(&put(10)); // nPage
        h.extend_from_slice(&put(0x1111));
        h.extend_from_slice(&put(0x2222));
        h.extend_from_slice(&0xAABB_CCDDu32.to_be_bytes());
        h.extend_from_slice(&0x0102_0304u32.to_be_bytes());
        let ck = sqlite_checksum(order == ByteOrder::Big, &h, [0, 0]);
        h.extend_from_slice(&put(ck[0]));
        h.extend_from_slice(&put(ck[1]));
        let mut out = h.clone();
        out.extend_from_slice(&h);
        out.extend_from_slice(&put(backfill));
        for mark in [
            0,
            max_frame,
            READMARK_NOT_USED,
            READMARK_NOT_USED,
            READMARK_NOT_USED,
        ] {
            out.extend_from_slice(&put(mark));
        }
        out.extend_from_slice(&[0u8; 8]); // lock bytes
        out.extend_from_slice(&put(backfill)); // nBackfillAttempted
        out.extend_from_slice(&put(0));
        out
    }

    #[test]
    fn parses_both_byte_orders() {
        for order in [ByteOrder::Little, ByteOrder::Big] {
            let idx = parse(&build(order, 137, 50, 20), order).unwrap();
            assert_eq!(idx.header.change, 137);
            assert_eq!(idx.header.max_frame, 50);
            assert_eq!(idx.header.page_size, 4096);
            assert_eq!(idx.header.page_count, 10);
            assert_eq!(idx.header.salt, [0xAABB_CCDD, 0x0102_0304]);
            assert_eq!(idx.ckpt.backfill, 20);
            assert_eq!(idx.ckpt.read_marks[1], 50);
            assert_eq!(idx.checkpoint_lag_frames(), 30);
        }
    }

    #[test]
    fn packed_page_size_of_65536() {
        let mut b = build(ByteOrder::Little, 1, 1, 0);
        // SQLite stores 65536 as (65536 & 0xff00) | (65536 >> 16) = 1.
        for copy in [0, 48] {
            b[copy + 14..copy + 16].copy_from_slice(&1u16.to_le_bytes());
            let ck = sqlite_checksum(false, &b[copy..copy + 40], [0, 0]);
            b[copy + 40..copy + 44].copy_from_slice(&ck[0].to_le_bytes());
            b[copy + 44..copy + 48].copy_from_slice(&ck[1].to_le_bytes());
        }
        assert_eq!(
            parse(&b, ByteOrder::Little).unwrap().header.page_size,
            65536
        );
    }

    #[test]
    fn torn_headers_are_transient() {
        let good = build(ByteOrder::Little, 5, 5, 0);
        assert_eq!(
            parse(&good[..3], ByteOrder::Little),
            Err(ShmError::Incomplete { len: 3 })
        );
        let mut torn = good.clone();
        torn[8] = 6; // copy 1 updated, copy 2 not yet
        assert_eq!(parse(&torn, ByteOrder::Little), Err(ShmError::CopiesDiffer));
        let mut both = good.clone();
        both[8] = 6;
        both[56] = 6; // both copies changed but the checksum was not rewritten
        assert_eq!(
            parse(&both, ByteOrder::Little),
            Err(ShmError::ChecksumMismatch)
        );
        let mut zero = good.clone();
        zero[12] = 0;
        zero[60] = 0;
        assert_eq!(
            parse(&zero, ByteOrder::Little),
            Err(ShmError::NotInitialised)
        );
        assert!(ShmError::ChecksumMismatch.is_transient());
        assert!(!ShmError::UnknownVersion(1).is_transient());
        // Read in the wrong byte order, the checksum cannot hold.
        assert!(parse(&good, ByteOrder::Big).is_err());
    }

    #[test]
    fn a_wal_index_written_by_sqlite_reads_as_sqlite_reports_it() {
        let real = RealWal::write(25, true);
        let shm = real.read("-shm");
        let idx = parse(&shm[..SHM_HEADER_SIZE], ByteOrder::NATIVE).unwrap();
        assert_eq!(idx.header.change, real.commits, "one change per commit");
        assert_eq!(
            idx.header.max_frame, real.log_frames,
            "wal_checkpoint's log"
        );
        assert_eq!(
            idx.ckpt.backfill, real.checkpointed,
            "wal_checkpoint's checkpointed"
        );
        assert_eq!(i64::from(idx.header.page_size), real.pragma("page_size"));
        assert_eq!(i64::from(idx.header.page_count), real.pragma("page_count"));
        let wal = real.read("-wal");
        let be = |at: usize| u32::from_be_bytes(wal[at..at + 4].try_into().unwrap());
        assert_eq!(idx.header.salt, [be(16), be(20)], "the WAL header's salts");
        let mark = idx.header.wal_mark();
        assert_eq!(mark.end, wal.len() as u64, "no frame past the last commit");
        assert_eq!(&mark.salt[..], &wal[16..24]);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = parse(&bytes, ByteOrder::Little);
        }

        /// What a writer wrote (with SQLite's checksum, computed by the oracle) reads back.
        #[test]
        fn written_headers_read_back(change: u32, max_frame: u32, backfill: u32, big: bool) {
            let order = if big { ByteOrder::Big } else { ByteOrder::Little };
            let idx = parse(&build(order, change, max_frame, backfill), order).unwrap();
            proptest::prop_assert_eq!(
                (idx.header.change, idx.header.max_frame, idx.ckpt.backfill, idx.header.page_size),
                (change, max_frame, backfill, 4096)
            );
        }

        /// A header caught while a writer was between its two copies is never accepted,
        /// whichever bit of the first copy it had changed.
        #[test]
        fn a_header_whose_copies_differ_is_never_accepted(byte in 0usize..INDEX_HEADER_SIZE, bit in 0u8..8) {
            let mut b = build(ByteOrder::Little, 7, 9, 3);
            b[byte] ^= 1 << bit;
            proptest::prop_assert_eq!(parse(&b, ByteOrder::Little), Err(ShmError::CopiesDiffer));
        }
    }
}
