//! The write-ahead log file (`<db>-wal`): its 32-byte header, 24-byte frame headers, the
//! cumulative checksum, and an incremental scanner that counts commit frames. Pure: the probe
//! reads the bytes and hands them in.

use std::fmt;

/// Size of the WAL header in bytes.
pub const WAL_HEADER_SIZE: usize = 32;
/// Size of each frame header in bytes; the page image follows it.
pub const FRAME_HEADER_SIZE: usize = 24;
/// Magic with checksums over little-endian words; `| 1` means big-endian words.
pub const WAL_MAGIC: u32 = 0x377f_0682;
/// The only WAL format version SQLite has written.
pub const WAL_FORMAT_VERSION: u32 = 3_007_000;

/// The WAL header. All fields are big-endian in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalHeader {
    /// Checksums are computed over big-endian 32-bit words (magic ends in 3).
    pub big_endian_checksum: bool,
    /// Page size in bytes.
    pub page_size: u32,
    /// Checkpoint sequence number: per connection, not monotonic; never used to detect resets.
    pub checkpoint_seq: u32,
    /// The salt pair: changes on every WAL reset (salt-1 is incremented, salt-2 is random).
    pub salt: [u32; 2],
    /// Checksum of the first 24 header bytes; seeds the first frame's checksum.
    pub checksum: [u32; 2],
}

impl WalHeader {
    /// Bytes taken by one frame (header plus page image).
    pub fn frame_size(&self) -> u64 {
        FRAME_HEADER_SIZE as u64 + u64::from(self.page_size)
    }
}

/// Why a WAL header is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalError {
    /// Shorter than 32 bytes: an empty or truncated WAL (no frames). Read again later.
    Incomplete { len: usize },
    /// Not a WAL: wrong magic, an impossible page size or an unknown version.
    Invalid(&'static str),
    /// Checksum does not hold: SQLite treats the WAL as empty (a header being written).
    ChecksumMismatch,
}

impl fmt::Display for WalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalError::Incomplete { len } => {
                write!(f, "WAL header incomplete: {len} of {WAL_HEADER_SIZE} bytes")
            }
            WalError::Invalid(why) => write!(f, "invalid WAL header: {why}"),
            WalError::ChecksumMismatch => write!(f, "WAL header checksum does not hold"),
        }
    }
}

impl std::error::Error for WalError {}

fn be_u32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// SQLite's WAL checksum (`walChecksumBytes`): a Fletcher-like sum over pairs of 32-bit words,
/// read big- or little-endian, continuing from `seed`. `data.len()` must be a multiple of 8.
pub fn checksum(big_endian_words: bool, data: &[u8], seed: [u32; 2]) -> [u32; 2] {
    debug_assert_eq!(data.len() % 8, 0);
    let [mut s1, mut s2] = seed;
    let word = |c: &[u8]| {
        let w = [c[0], c[1], c[2], c[3]];
        if big_endian_words {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        }
    };
    for pair in data.chunks_exact(8) {
        s1 = s1.wrapping_add(word(&pair[..4])).wrapping_add(s2);
        s2 = s2.wrapping_add(word(&pair[4..])).wrapping_add(s1);
    }
    [s1, s2]
}

/// Parses and verifies the 32-byte WAL header.
pub fn parse_header(bytes: &[u8]) -> Result<WalHeader, WalError> {
    if bytes.len() < WAL_HEADER_SIZE {
        return Err(WalError::Incomplete { len: bytes.len() });
    }
    let b = &bytes[..WAL_HEADER_SIZE];
    let magic = be_u32(b, 0);
    if magic & !1 != WAL_MAGIC {
        return Err(WalError::Invalid("bad magic number"));
    }
    if be_u32(b, 4) != WAL_FORMAT_VERSION {
        return Err(WalError::Invalid("unknown format version"));
    }
    let page_size = be_u32(b, 8);
    if !page_size.is_power_of_two() || !(512..=65536).contains(&page_size) {
        return Err(WalError::Invalid(
            "page size is not a power of two from 512 to 65536",
        ));
    }
    let big_endian_checksum = magic & 1 == 1;
    let checksum_stored = [be_u32(b, 24), be_u32(b, 28)];
    if checksum(big_endian_checksum, &b[..24], [0, 0]) != checksum_stored {
        return Err(WalError::ChecksumMismatch);
    }
    Ok(WalHeader {
        big_endian_checksum,
        page_size,
        checkpoint_seq: be_u32(b, 12),
        salt: [be_u32(b, 16), be_u32(b, 20)],
        checksum: checksum_stored,
    })
}

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub page_number: u32,
    /// Database size in pages after this commit; 0 for frames that do not end a transaction.
    pub commit_size: u32,
    pub salt: [u32; 2],
    pub checksum: [u32; 2],
}

impl FrameHeader {
    pub fn is_commit(&self) -> bool {
        self.commit_size != 0
    }
}

/// Parses a frame header (no validation: see [`FrameScanner`]). `None` if under 24 bytes.
pub fn parse_frame_header(bytes: &[u8]) -> Option<FrameHeader> {
    let b = bytes.get(..FRAME_HEADER_SIZE)?;
    Some(FrameHeader {
        page_number: be_u32(b, 0),
        commit_size: be_u32(b, 4),
        salt: [be_u32(b, 8), be_u32(b, 12)],
        checksum: [be_u32(b, 16), be_u32(b, 20)],
    })
}

/// What one call of [`FrameScanner::scan`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanOutcome {
    /// Commit frames (write transactions) newly found.
    pub commits: u64,
    /// Frames newly covered by a commit, so now durable parts of the log.
    pub frames: u64,
    /// Scanning met a frame that is not (yet) valid: the end of the log for now. Frames after the
    /// last commit were forgotten and will be read again.
    pub stopped: bool,
}

/// Counts commit frames of one WAL generation incrementally, as SQLite's recovery validates them:
/// each frame's salt must match the header and its checksum must continue the running one.
///
/// As in SQLite and Litestream, a header or frame whose checksum or salt does not hold marks the
/// end of the valid log (a write in progress, or frames left from an earlier generation), not
/// corruption.
///
/// Frames after the last commit ("pending") are carried across calls so that a transaction of
/// any size streams through in chunks. SQLite may rewrite pending frames in place before it
/// commits, so when a frame fails to validate the pending ones are forgotten and the next scan
/// starts again at the last commit.
#[derive(Debug, Clone)]
pub struct FrameScanner {
    header: WalHeader,
    /// Valid frames up to and including the last commit frame seen.
    committed_frames: u64,
    /// Running checksum after the last commit frame.
    committed_checksum: [u32; 2],
    /// Valid frames after the last commit frame.
    pending_frames: u64,
    pending_checksum: [u32; 2],
}

impl FrameScanner {
    pub fn new(header: WalHeader) -> Self {
        FrameScanner {
            header,
            committed_frames: 0,
            committed_checksum: header.checksum,
            pending_frames: 0,
            pending_checksum: header.checksum,
        }
    }

    pub fn header(&self) -> &WalHeader {
        &self.header
    }

    /// Frames of this generation up to the last commit seen.
    pub fn committed_frames(&self) -> u64 {
        self.committed_frames
    }

    /// File offset where the next scan must start.
    pub fn next_offset(&self) -> u64 {
        WAL_HEADER_SIZE as u64
            + (self.committed_frames + self.pending_frames) * self.header.frame_size()
    }

    /// Scans whole frames from `bytes`, which must start at [`Self::next_offset`]. A trailing
    /// partial frame is ignored (offered again next time).
    pub fn scan(&mut self, bytes: &[u8]) -> ScanOutcome {
        let frame_size = self.header.frame_size() as usize;
        let be = self.header.big_endian_checksum;
        let mut out = ScanOutcome::default();
        for frame in bytes.chunks_exact(frame_size) {
            let fh = parse_frame_header(frame).expect("a frame is longer than its header");
            let mut running = self.pending_checksum;
            running = checksum(be, &frame[..8], running);
            running = checksum(be, &frame[FRAME_HEADER_SIZE..], running);
            if fh.salt != self.header.salt || fh.page_number == 0 || running != fh.checksum {
                self.pending_frames = 0;
                self.pending_checksum = self.committed_checksum;
                out.stopped = true;
                return out;
            }
            self.pending_frames += 1;
            self.pending_checksum = running;
            if fh.is_commit() {
                out.commits += 1;
                out.frames += self.pending_frames;
                self.committed_frames += self.pending_frames;
                self.committed_checksum = running;
                self.pending_frames = 0;
            }
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::format::oracle::{sqlite_checksum, RealWal};

    /// Builds a WAL image the way SQLite writes one: header, then frames chained by checksum.
    /// `commits[i]` says whether frame i ends a transaction.
    pub(crate) fn build_wal(page_size: u32, salt: [u32; 2], commits: &[bool]) -> Vec<u8> {
        let frames: Vec<(bool, u8)> = commits
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as u8))
            .collect();
        build_wal_with(page_size, salt, &frames)
    }

    /// As [`build_wal`], each frame given as (ends a transaction, byte its page is filled with).
    pub(crate) fn build_wal_with(page_size: u32, salt: [u32; 2], frames: &[(bool, u8)]) -> Vec<u8> {
        let mut w = Vec::new();
        w.extend_from_slice(&(WAL_MAGIC | 1).to_be_bytes());
        w.extend_from_slice(&WAL_FORMAT_VERSION.to_be_bytes());
        w.extend_from_slice(&page_size.to_be_bytes());
        w.extend_from_slice(&0u32.to_be_bytes());
        w.extend_from_slice(&salt[0].to_be_bytes());
        w.extend_from_slice(&salt[1].to_be_bytes());
        let mut ck = sqlite_checksum(true, &w, [0, 0]);
        w.extend_from_slice(&ck[0].to_be_bytes());
        w.extend_from_slice(&ck[1].to_be_bytes());
        for (i, &(commit, fill)) in frames.iter().enumerate() {
            let mut fh = Vec::new();
            fh.extend_from_slice(&(i as u32 + 1).to_be_bytes());
            fh.extend_from_slice(&(if commit { i as u32 + 1 } else { 0 }).to_be_bytes());
            fh.extend_from_slice(&salt[0].to_be_bytes());
            fh.extend_from_slice(&salt[1].to_be_bytes());
            let page = vec![fill; page_size as usize];
            ck = sqlite_checksum(true, &fh[..8], ck);
            ck = sqlite_checksum(true, &page, ck);
            fh.extend_from_slice(&ck[0].to_be_bytes());
            fh.extend_from_slice(&ck[1].to_be_bytes());
            w.extend_from_slice(&fh);
            w.extend_from_slice(&page);
        }
        w
    }

    #[test]
    fn parses_a_header_and_rejects_damage() {
        let w = build_wal(4096, [7, 99], &[]);
        let h = parse_header(&w).unwrap();
        assert_eq!(h.page_size, 4096);
        assert_eq!(h.salt, [7, 99]);
        assert!(h.big_endian_checksum);
        assert_eq!(
            parse_header(&w[..10]),
            Err(WalError::Incomplete { len: 10 })
        );
        let mut bad = w.clone();
        bad[0] = 0;
        assert!(matches!(parse_header(&bad), Err(WalError::Invalid(_))));
        let mut bad = w.clone();
        bad[17] ^= 1;
        assert_eq!(parse_header(&bad), Err(WalError::ChecksumMismatch));
    }

    #[test]
    fn counts_commit_frames_and_leaves_the_open_transaction() {
        // Three transactions: frames 1-2, 3, 4-5; frame 6 belongs to one still being written.
        let w = build_wal(512, [1, 2], &[false, true, true, false, true, false]);
        let mut s = FrameScanner::new(parse_header(&w).unwrap());
        let out = s.scan(&w[s.next_offset() as usize..]);
        assert_eq!(out.commits, 3);
        assert_eq!(out.frames, 5);
        assert_eq!(s.committed_frames(), 5);
        // Frame 6 is pending: the next scan starts after it and finds nothing new.
        assert_eq!(s.next_offset(), 32 + 6 * (24 + 512));
        let again = s.scan(&w[s.next_offset() as usize..]);
        assert_eq!(again, ScanOutcome::default());
    }

    #[test]
    fn incremental_scans_add_up_to_one_scan() {
        let commits = [true, false, true, true, false, false, true, true];
        let w = build_wal(1024, [5, 6], &commits);
        let header = parse_header(&w).unwrap();
        let mut s = FrameScanner::new(header);
        let mut total = 0;
        // Offer the file as it grows, one frame at a time.
        for n in 1..=commits.len() {
            let end = WAL_HEADER_SIZE + n * header.frame_size() as usize;
            total += s.scan(&w[s.next_offset() as usize..end]).commits;
        }
        assert_eq!(total, 5);
    }

    #[test]
    fn a_rewritten_pending_frame_is_scanned_again_from_the_last_commit() {
        // Seen first: frame 1 commits, frame 2 pending. Then SQLite rewrites frame 2 in place
        // with new content and commits with frame 3, recomputing the checksums.
        let before = build_wal_with(512, [1, 2], &[(true, 1), (false, 2)]);
        let after = build_wal_with(512, [1, 2], &[(true, 1), (false, 9), (true, 3)]);
        let mut s = FrameScanner::new(parse_header(&before).unwrap());
        assert_eq!(s.scan(&before[32..]).commits, 1);
        let f2 = 32 + 24 + 512;
        assert_eq!(s.next_offset(), (f2 + 24 + 512) as u64);
        // The pending frame 2 validated earlier no longer chains to frame 3.
        let out = s.scan(&after[s.next_offset() as usize..]);
        assert!(out.stopped);
        assert_eq!(out.commits, 0);
        assert_eq!(s.next_offset(), f2 as u64);
        let out = s.scan(&after[s.next_offset() as usize..]);
        assert_eq!((out.commits, out.frames, out.stopped), (1, 2, false));
    }

    #[test]
    fn stops_at_a_bad_checksum_or_a_stale_salt() {
        let w = build_wal(512, [1, 2], &[true, true, true]);
        let frame = 24 + 512;
        let mut torn = w.clone();
        torn[32 + frame + 100] ^= 0xff; // page image of frame 2
        let mut s = FrameScanner::new(parse_header(&torn).unwrap());
        let out = s.scan(&torn[32..]);
        assert_eq!((out.commits, out.stopped), (1, true));
        // Frames from an older generation (other salts) after a reset are not counted.
        let old = build_wal(512, [0, 9], &[true, true, true]);
        let mut mixed = build_wal(512, [1, 2], &[true]);
        mixed.extend_from_slice(&old[32 + frame..]);
        let mut s = FrameScanner::new(parse_header(&mixed).unwrap());
        assert_eq!(s.scan(&mixed[32..]).commits, 1);
    }

    #[test]
    fn a_wal_written_by_sqlite_scans_to_its_commits() {
        let real = RealWal::write(25, true);
        let wal = real.read("-wal");
        let h = parse_header(&wal).unwrap();
        assert_eq!(i64::from(h.page_size), real.pragma("page_size"));
        let mut s = FrameScanner::new(h);
        let out = s.scan(&wal[WAL_HEADER_SIZE..]);
        assert_eq!(
            out.commits,
            u64::from(real.commits),
            "one commit frame per commit"
        );
        assert_eq!(
            s.committed_frames(),
            u64::from(real.log_frames),
            "wal_checkpoint's log"
        );
    }

    proptest::proptest! {
        /// Scanning a log in pieces, however it is cut, finds what one scan of the whole
        /// does: every commit, and no frame after the last commit.
        #[test]
        fn scanning_in_pieces_finds_what_one_scan_finds(
            commits in proptest::collection::vec(proptest::bool::ANY, 0..24),
            cuts in proptest::collection::vec(0usize..24 * 536, 0..6),
        ) {
            let w = build_wal(512, [5, 6], &commits);
            let frames = &w[WAL_HEADER_SIZE..];
            let expected = commits.iter().filter(|c| **c).count() as u64;
            let last_commit = commits.iter().rposition(|c| *c).map_or(0, |i| i + 1) as u64;
            let mut s = FrameScanner::new(parse_header(&w).unwrap());
            let mut found = 0;
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|c| *c <= frames.len()).collect();
            cuts.push(frames.len());
            cuts.sort_unstable();
            for cut in cuts {
                let from = s.next_offset() as usize - WAL_HEADER_SIZE;
                if cut > from {
                    found += s.scan(&frames[from..cut]).commits;
                }
            }
            proptest::prop_assert_eq!(found, expected);
            proptest::prop_assert_eq!(s.committed_frames(), last_commit);
        }

        #[test]
        fn scanner_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..3000)) {
            let w = build_wal(512, [1, 2], &[true]);
            let mut s = FrameScanner::new(parse_header(&w).unwrap());
            let _ = s.scan(&bytes);
            let _ = parse_header(&bytes);
        }
    }
}
