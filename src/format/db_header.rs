//! The 100-byte database header at the start of every SQLite file (fileformat2.html §1.3).
//! Pure: bytes in, a typed header or error out. Reading the bytes is `probe`'s job.

use std::fmt;

/// Size of the header in bytes.
pub const HEADER_SIZE: usize = 100;
/// The 16-byte magic string every database file starts with.
pub const MAGIC: &[u8; 16] = b"SQLite format 3\0";

// Byte offsets of the fields we read (all integers big-endian).
const OFF_PAGE_SIZE: usize = 16; // u16, 1 means 65536
const OFF_WRITE_VERSION: usize = 18; // u8, 1 legacy (rollback), 2 WAL
const OFF_READ_VERSION: usize = 19; // u8
const OFF_RESERVED: usize = 20; // u8, bytes reserved at the end of each page
const OFF_PAYLOAD_FRACTIONS: usize = 21; // 3 x u8, must be 64, 32, 32
const OFF_CHANGE_COUNTER: usize = 24; // u32, bumped by every rollback-mode write transaction
const OFF_PAGE_COUNT: usize = 28; // u32, valid only when OFF_VERSION_VALID_FOR matches
const OFF_FREELIST_PAGES: usize = 36; // u32
const OFF_SCHEMA_COOKIE: usize = 40; // u32
const OFF_LARGEST_ROOT: usize = 52; // u32, non-zero when auto_vacuum is on
const OFF_TEXT_ENCODING: usize = 56; // u32, 1 UTF-8, 2 UTF-16le, 3 UTF-16be
const OFF_INCREMENTAL_VACUUM: usize = 64; // u32
const OFF_APPLICATION_ID: usize = 68; // u32
const OFF_VERSION_VALID_FOR: usize = 92; // u32
const OFF_SQLITE_VERSION: usize = 96; // u32, SQLITE_VERSION_NUMBER of the last writer

/// Byte offsets in the database file of SQLite's rollback-mode POSIX locks (unix VFS). The
/// bytes sit at 1 GiB whatever the file size; they are never read or written, only locked.
pub mod lock_bytes {
    /// Held exclusively while a writer moves to EXCLUSIVE (blocks new readers).
    pub const PENDING: u64 = 0x4000_0000;
    /// Held exclusively by the connection that intends to write (RESERVED).
    pub const RESERVED: u64 = PENDING + 1;
    /// Start of the range readers lock shared (SHARED) and a committing writer exclusively.
    pub const SHARED_FIRST: u64 = PENDING + 2;
    /// Length of the SHARED range.
    pub const SHARED_SIZE: u64 = 510;
}

/// How the file says it is journaled (header bytes 18 and 19).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JournalKind {
    /// Rollback journal (delete, truncate, persist, memory or off: the file cannot tell which).
    Rollback,
    /// Write-ahead log.
    Wal,
}

impl JournalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JournalKind::Rollback => "rollback",
            JournalKind::Wal => "wal",
        }
    }
}

/// Text encoding of the database (header offset 56).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum TextEncoding {
    #[serde(rename = "UTF-8")]
    Utf8,
    #[serde(rename = "UTF-16le")]
    Utf16Le,
    #[serde(rename = "UTF-16be")]
    Utf16Be,
    /// 0: not yet set (a database with no schema).
    #[serde(rename = "unset")]
    Unset,
}

impl TextEncoding {
    pub fn as_str(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "UTF-8",
            TextEncoding::Utf16Le => "UTF-16le",
            TextEncoding::Utf16Be => "UTF-16be",
            TextEncoding::Unset => "unset",
        }
    }
}

/// The fields of the header that sqlite-ops uses.
///
/// In WAL mode the header in the main file is as of the last checkpoint; callers take the
/// current page count from the wal-index instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbHeader {
    /// Page size in bytes (512 to 65536).
    pub page_size: u32,
    pub journal: JournalKind,
    pub reserved_bytes: u8,
    /// File change counter: incremented by every write transaction in rollback mode.
    pub change_counter: u32,
    /// In-header database size in pages; `None` when the header says it is not valid.
    pub page_count: Option<u32>,
    pub freelist_pages: u32,
    pub schema_cookie: u32,
    /// auto_vacuum is on (full or incremental).
    pub auto_vacuum: bool,
    pub incremental_vacuum: bool,
    pub text_encoding: TextEncoding,
    pub application_id: u32,
    /// SQLITE_VERSION_NUMBER of the library that last wrote the file, e.g. 3045001.
    pub sqlite_version_number: u32,
}

/// Why a header could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than 100 bytes: an empty file not yet written, or one being created. Read again.
    Incomplete { len: usize },
    /// The magic string is wrong: this is not an SQLite database.
    NotSqlite,
    /// The magic is right but a field is impossible.
    Corrupt(&'static str),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Incomplete { len: 0 } => {
                write!(f, "database file is empty (0 bytes): not yet initialised")
            }
            HeaderError::Incomplete { len } => {
                write!(
                    f,
                    "database header incomplete: {len} of {HEADER_SIZE} bytes"
                )
            }
            HeaderError::NotSqlite => write!(f, "not an SQLite database (bad magic string)"),
            HeaderError::Corrupt(why) => write!(f, "corrupt database header: {why}"),
        }
    }
}

impl std::error::Error for HeaderError {}

fn be_u32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Decodes a page size as stored in the database header (u16, where 1 means 65536) and checks
/// that it is a power of two from 512 to 65536.
pub fn decode_page_size(raw: u16) -> Option<u32> {
    let size = if raw == 1 { 65536 } else { u32::from(raw) };
    (size.is_power_of_two() && (512..=65536).contains(&size)).then_some(size)
}

/// Parses the first 100 bytes of a database file. Extra bytes are ignored.
pub fn parse(bytes: &[u8]) -> Result<DbHeader, HeaderError> {
    if bytes.len() < HEADER_SIZE {
        // A short file that does not even start like SQLite is not SQLite.
        let n = bytes.len().min(MAGIC.len());
        if bytes[..n] != MAGIC[..n] {
            return Err(HeaderError::NotSqlite);
        }
        return Err(HeaderError::Incomplete { len: bytes.len() });
    }
    let b = &bytes[..HEADER_SIZE];
    if &b[..16] != MAGIC {
        return Err(HeaderError::NotSqlite);
    }
    let raw_page_size = u16::from_be_bytes([b[OFF_PAGE_SIZE], b[OFF_PAGE_SIZE + 1]]);
    let page_size = decode_page_size(raw_page_size).ok_or(HeaderError::Corrupt(
        "page size is not a power of two from 512 to 65536",
    ))?;
    let journal = match (b[OFF_WRITE_VERSION], b[OFF_READ_VERSION]) {
        (1, 1) => JournalKind::Rollback,
        (2, 2) => JournalKind::Wal,
        _ => {
            return Err(HeaderError::Corrupt(
                "file format versions are not 1/1 or 2/2",
            ))
        }
    };
    if b[OFF_PAYLOAD_FRACTIONS..OFF_PAYLOAD_FRACTIONS + 3] != [64, 32, 32] {
        return Err(HeaderError::Corrupt("payload fractions are not 64/32/32"));
    }
    let reserved_bytes = b[OFF_RESERVED];
    if page_size - u32::from(reserved_bytes) < 480 {
        return Err(HeaderError::Corrupt("usable page size below 480 bytes"));
    }
    let text_encoding = match be_u32(b, OFF_TEXT_ENCODING) {
        0 => TextEncoding::Unset,
        1 => TextEncoding::Utf8,
        2 => TextEncoding::Utf16Le,
        3 => TextEncoding::Utf16Be,
        _ => return Err(HeaderError::Corrupt("unknown text encoding")),
    };
    let change_counter = be_u32(b, OFF_CHANGE_COUNTER);
    let in_header_pages = be_u32(b, OFF_PAGE_COUNT);
    // The in-header size is trusted only when the change counter matches "version-valid-for"
    // (older libraries did not maintain it).
    let page_count = (in_header_pages != 0 && change_counter == be_u32(b, OFF_VERSION_VALID_FOR))
        .then_some(in_header_pages);
    Ok(DbHeader {
        page_size,
        journal,
        reserved_bytes,
        change_counter,
        page_count,
        freelist_pages: be_u32(b, OFF_FREELIST_PAGES),
        schema_cookie: be_u32(b, OFF_SCHEMA_COOKIE),
        auto_vacuum: be_u32(b, OFF_LARGEST_ROOT) != 0,
        incremental_vacuum: be_u32(b, OFF_INCREMENTAL_VACUUM) != 0,
        text_encoding,
        application_id: be_u32(b, OFF_APPLICATION_ID),
        sqlite_version_number: be_u32(b, OFF_SQLITE_VERSION),
    })
}

/// Formats an SQLITE_VERSION_NUMBER (3045001) as "3.45.1".
pub fn version_string(number: u32) -> String {
    format!(
        "{}.{}.{}",
        number / 1_000_000,
        number / 1000 % 1000,
        number % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header as SQLite 3.45.1 writes it for a fresh WAL database with 4096-byte pages.
    pub(crate) fn sample() -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[..16].copy_from_slice(MAGIC);
        b[16..18].copy_from_slice(&4096u16.to_be_bytes());
        b[18] = 2;
        b[19] = 2;
        b[21..24].copy_from_slice(&[64, 32, 32]);
        b[24..28].copy_from_slice(&7u32.to_be_bytes());
        b[28..32].copy_from_slice(&12u32.to_be_bytes());
        b[36..40].copy_from_slice(&3u32.to_be_bytes());
        b[56..60].copy_from_slice(&1u32.to_be_bytes());
        b[92..96].copy_from_slice(&7u32.to_be_bytes());
        b[96..100].copy_from_slice(&3045001u32.to_be_bytes());
        b
    }

    #[test]
    fn parses_a_wal_header() {
        let h = parse(&sample()).unwrap();
        assert_eq!(h.page_size, 4096);
        assert_eq!(h.journal, JournalKind::Wal);
        assert_eq!(h.change_counter, 7);
        assert_eq!(h.page_count, Some(12));
        assert_eq!(h.freelist_pages, 3);
        assert_eq!(h.text_encoding, TextEncoding::Utf8);
        assert_eq!(version_string(h.sqlite_version_number), "3.45.1");
    }

    #[test]
    fn page_size_one_means_65536() {
        let mut b = sample();
        b[16..18].copy_from_slice(&1u16.to_be_bytes());
        assert_eq!(parse(&b).unwrap().page_size, 65536);
    }

    #[test]
    fn stale_in_header_page_count_is_ignored() {
        let mut b = sample();
        b[92..96].copy_from_slice(&6u32.to_be_bytes());
        assert_eq!(parse(&b).unwrap().page_count, None);
    }

    #[test]
    fn errors_separate_incomplete_from_foreign_and_corrupt() {
        assert_eq!(parse(&[]), Err(HeaderError::Incomplete { len: 0 }));
        assert_eq!(
            parse(&sample()[..50]),
            Err(HeaderError::Incomplete { len: 50 })
        );
        assert_eq!(
            parse(b"hello world, this is text"),
            Err(HeaderError::NotSqlite)
        );
        let mut b = sample();
        b[16..18].copy_from_slice(&1000u16.to_be_bytes());
        assert!(matches!(parse(&b), Err(HeaderError::Corrupt(_))));
        let mut b = sample();
        b[18] = 3;
        assert!(matches!(parse(&b), Err(HeaderError::Corrupt(_))));
    }

    #[test]
    fn a_header_written_by_sqlite_reads_as_its_pragmas() {
        // Checkpointed, so that the database file holds the newest page 1.
        let real = crate::format::oracle::RealWal::write(25, true);
        let h = parse(&real.read("")).unwrap();
        assert_eq!(h.journal, JournalKind::Wal);
        assert_eq!(i64::from(h.page_size), real.pragma("page_size"));
        assert_eq!(h.page_count.map(i64::from), Some(real.pragma("page_count")));
        assert_eq!(i64::from(h.freelist_pages), real.pragma("freelist_count"));
        assert_eq!(i64::from(h.schema_cookie), real.pragma("schema_version"));
        assert_eq!(i64::from(h.application_id), real.pragma("application_id"));
        assert_eq!(h.text_encoding, TextEncoding::Utf8);
        assert_eq!(h.sqlite_version_number, real.library_version_number());
    }

    /// A header as the file-format document lays it out (fileformat2.html, "The Database
    /// Header"), written here field by field rather than through the parser's offsets.
    #[allow(clippy::too_many_arguments)]
    fn written(
        page_size: u32,
        wal: bool,
        change: u32,
        pages: u32,
        freelist: u32,
        encoding: u32,
        app: u32,
        version: u32,
    ) -> Vec<u8> {
        let mut b = b"SQLite format 3\0".to_vec();
        b.extend_from_slice(
            &(if page_size == 65536 {
                1
            } else {
                page_size as u16
            })
            .to_be_bytes(),
        );
        b.extend_from_slice(if wal { &[2, 2] } else { &[1, 1] });
        b.extend_from_slice(&[0, 64, 32, 32]);
        for v in [change, pages, 0, freelist, 1, 4, 0, 0, encoding, 0, 0, app] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&[0; 20]);
        b.extend_from_slice(&change.to_be_bytes()); // version-valid-for
        b.extend_from_slice(&version.to_be_bytes());
        assert_eq!(b.len(), HEADER_SIZE);
        b
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = parse(&bytes);
        }

        /// Every valid header reads back as written.
        #[test]
        fn written_headers_read_back(shift in 9u32..=16, wal: bool, change: u32, pages in 1u32.., freelist: u32,
                                     encoding in 1u32..=3, app: u32, version: u32) {
            let page_size = 1u32 << shift;
            let h = parse(&written(page_size, wal, change, pages, freelist, encoding, app, version)).unwrap();
            proptest::prop_assert_eq!(h.page_size, page_size);
            proptest::prop_assert_eq!(h.journal, if wal { JournalKind::Wal } else { JournalKind::Rollback });
            proptest::prop_assert_eq!(
                (h.change_counter, h.page_count, h.freelist_pages, h.application_id, h.sqlite_version_number),
                (change, Some(pages), freelist, app, version)
            );
            proptest::prop_assert_eq!(h.text_encoding.as_str(), ["UTF-8", "UTF-16le", "UTF-16be"][encoding as usize - 1]);
        }

        /// Anything that is not a power of two from 512 to 65536 is never taken as a page size.
        #[test]
        fn odd_page_sizes_are_refused(raw: u16) {
            let ok = raw == 1 || (raw.is_power_of_two() && raw >= 512);
            let mut b = written(4096, true, 1, 1, 0, 1, 0, 3_046_001);
            b[16..18].copy_from_slice(&raw.to_be_bytes());
            proptest::prop_assert_eq!(parse(&b).is_ok(), ok);
        }
    }
}
