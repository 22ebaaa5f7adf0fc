//! Test-only oracles for the parsers, independent of the code under test: SQLite's WAL and
//! wal-index checksum written again from the file-format document ([`sqlite_checksum`]), and a
//! WAL database written by real SQLite ([`RealWal`]).

use rusqlite::Connection;
use std::path::PathBuf;

/// "The checksum is computed by interpreting the input as an even number of unsigned 32-bit
/// integers: x(0) through x(N) ... s0 += x(i) + s1; s1 += x(i+1) + s0" (fileformat2.html).
///
/// SQLite's WAL and wal-index checksum, written again from the file-format document
/// (<https://www.sqlite.org/fileformat2.html#walformat>) instead of reusing the parsers' own,
/// so that fixtures built with it check the parsers' implementation rather than agree with it.
pub fn sqlite_checksum(words_big_endian: bool, data: &[u8], seed: [u32; 2]) -> [u32; 2] {
    assert_eq!(data.len() % 8, 0, "the input is pairs of 32-bit words");
    let word = |b: &[u8]| {
        let w: [u8; 4] = b.try_into().unwrap();
        if words_big_endian {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        }
    };
    let [mut s0, mut s1] = seed;
    for pair in data.chunks_exact(8) {
        s0 = s0.wrapping_add(word(&pair[..4])).wrapping_add(s1);
        s1 = s1.wrapping_add(word(&pair[4..])).wrapping_add(s0);
    }
    [s0, s1]
}

/// A WAL database written by real SQLite (the bundled library, through SQL), its connection
/// still open (so `-wal` and `-shm` stay), with what SQLite itself reports about it through
/// PRAGMAs, for the parsers to read back.
pub struct RealWal {
    pub conn: Connection,
    pub path: PathBuf,
    _dir: tempfile::TempDir,
    /// Write transactions committed: `PRAGMA application_id` (it writes page 1), `CREATE
    /// TABLE`, and one per insert.
    pub commits: u32,
    /// `PRAGMA wal_checkpoint(PASSIVE)`'s reply after the commits: frames in the WAL, and
    /// frames checkpointed.
    pub log_frames: u32,
    pub checkpointed: u32,
}

impl RealWal {
    /// `inserts` one-row transactions after a `CREATE TABLE`, no automatic checkpoint, then
    /// one PASSIVE checkpoint that copies back `copy_back` (all or none, by holding a reader).
    pub fn write(inserts: u32, copy_back: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("real.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; PRAGMA application_id=1234567;
             CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);",
        )
        .unwrap();
        for i in 0..inserts {
            conn.execute("INSERT INTO t(v) VALUES (?1)", [format!("row {i}")])
                .unwrap();
        }
        // A reader on another connection holding the newest snapshot does not stop a PASSIVE
        // checkpoint; one holding an older snapshot would. `copy_back` false: no checkpoint.
        let (log_frames, checkpointed) = if copy_back {
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get::<_, u32>(1)?, r.get::<_, u32>(2)?))
            })
            .unwrap()
        } else {
            (u32::MAX, 0)
        };
        RealWal {
            conn,
            path,
            _dir: dir,
            commits: inserts + 2,
            log_frames,
            checkpointed,
        }
    }

    pub fn read(&self, suffix: &str) -> Vec<u8> {
        std::fs::read(format!("{}{suffix}", self.path.display())).unwrap()
    }

    pub fn pragma(&self, name: &str) -> i64 {
        self.conn
            .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .unwrap()
    }

    /// SQLITE_VERSION_NUMBER of the library, from `sqlite_version()` ("3.46.1" -> 3046001).
    pub fn library_version_number(&self) -> u32 {
        let v: String = self
            .conn
            .query_row("SELECT sqlite_version()", [], |r| r.get(0))
            .unwrap();
        let p: Vec<u32> = v.split('.').map(|n| n.parse().unwrap()).collect();
        p[0] * 1_000_000 + p[1] * 1000 + p.get(2).copied().unwrap_or(0)
    }
}
