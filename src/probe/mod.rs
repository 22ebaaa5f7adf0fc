//! I/O for one database: `stat`, `pread` and `F_GETLK` on the database, `-wal` and `-shm` files,
//! returned as a plain [`Sample`]. No SQL, no writes, no locks taken: nothing here can change
//! what it watches. State across polls (counters, rates, ages) is `monitor`'s job.

pub mod descriptors;
pub mod file;
pub mod filesystem;
pub mod locks;
pub mod process;
pub mod who;

use crate::format::db_header::{self, DbHeader, JournalKind};
use crate::format::shm::{self, lock_bytes, ShmError, WalIndex};
use crate::format::wal::{self, FrameScanner, WalError};
use file::{FileStatus, WatchedFile};
use filesystem::{Filesystems, FsStat};
use locks::{Holder, LockKind};
use std::fmt;
use std::path::{Path, PathBuf};

/// Reads of a torn wal-index header before a poll reports it (SQLite's reader retries too).
const SHM_READ_ATTEMPTS: usize = 5;
/// Bytes of WAL read per `pread` when counting frames (exclusive locking mode only).
const WAL_SCAN_CHUNK: usize = 1 << 20;
/// Most WAL bytes scanned in one poll; the rest waits for the next poll.
const WAL_SCAN_BUDGET: u64 = 64 << 20;

/// A failed probe: which part and why. Data for `sqlite_ops_poll_errors_total`, never a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeError {
    /// Short stable name, used as the `probe` label: database, header, wal, wal_index, locks,
    /// filesystem.
    pub probe: &'static str,
    pub message: String,
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.probe, self.message)
    }
}

fn err(probe: &'static str, message: impl fmt::Display) -> ProbeError {
    ProbeError {
        probe,
        message: message.to_string(),
    }
}

/// An I/O error of `probe` on `file`: the message names the file and keeps the system's error.
fn io_err(probe: &'static str, file: &WatchedFile, e: std::io::Error) -> ProbeError {
    err(probe, format!("{}: {e}", file.path().display()))
}

/// What the WAL-mode files showed.
#[derive(Debug, Clone)]
pub struct WalSample {
    pub wal_file: FileStatus,
    pub shm_file: FileStatus,
    /// The wal-index header; `None` when `-shm` is absent or could not be read consistently.
    pub index: Option<WalIndex>,
    /// Why the wal-index header was not accepted, when it was not.
    pub index_error: Option<IndexError>,
    /// Some connection holds the `-shm` "dead man switch": the wal-index is live. `None` when
    /// there is no `-shm` or the lock test failed.
    pub shm_in_use: Option<bool>,
    /// Another process holds an EXCLUSIVE lock on the database file: in WAL mode, a connection
    /// in `locking_mode=EXCLUSIVE`, which keeps its wal-index in private memory.
    pub exclusive_lock: bool,
    /// Per reader slot, the lock held on it (a reader holds it shared).
    pub read_locks: [Option<Holder>; shm::READ_SLOTS],
    /// Commit frames counted in the WAL itself, when no live wal-index exists.
    pub frames: Option<FrameCount>,
}

/// Why a wal-index header was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexError {
    /// Read, but torn or not valid (the parser's verdict).
    Format(ShmError),
    /// `-shm` could not be read: the message names the file and the system's error.
    Io(String),
}

impl IndexError {
    /// A header being (re)built by a connection: the next poll should see a valid one.
    pub fn is_rebuild(&self) -> bool {
        matches!(
            self,
            IndexError::Format(ShmError::Incomplete { .. } | ShmError::NotInitialised)
        )
    }
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexError::Format(e) => e.fmt(f),
            IndexError::Io(m) => f.write_str(m),
        }
    }
}

/// Reads the wal-index header of the `-shm` at `path` through `read_at` (its first bytes) as
/// SQLite's reader does, retrying a torn read a few times. An I/O error is reported as such,
/// with the file: never as a short header.
pub fn read_wal_index(
    path: &Path,
    read_at: impl Fn(&mut [u8]) -> std::io::Result<usize>,
) -> Result<WalIndex, IndexError> {
    let mut buf = [0u8; shm::SHM_HEADER_SIZE];
    let mut last = ShmError::Incomplete { len: 0 };
    for _ in 0..SHM_READ_ATTEMPTS {
        let n = read_at(&mut buf)
            .map_err(|e| IndexError::Io(format!("cannot read {}: {e}", path.display())))?;
        match shm::parse(&buf[..n], shm::ByteOrder::NATIVE) {
            Ok(idx) => return Ok(idx),
            Err(e) if e.is_transient() => last = e,
            Err(e) => return Err(IndexError::Format(e)),
        }
        std::thread::yield_now();
    }
    Err(IndexError::Format(last))
}

/// What the frame scanner found in this poll (exclusive locking mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameCount {
    /// The scan started over on a new WAL generation (the salt pair changed).
    pub new_generation: bool,
    pub salt: [u32; 2],
    /// Commit frames found since the previous poll.
    pub commits: u64,
    /// Frames found since the previous poll.
    pub frames: u64,
    /// Committed frames in the current generation.
    pub committed_frames: u64,
}

/// Everything one poll read about a database whose header could be read.
#[derive(Debug, Clone)]
pub struct Sample {
    pub db_size_bytes: u64,
    /// The database path names a new inode since the last poll.
    pub db_replaced: bool,
    pub header: DbHeader,
    /// Present in WAL mode.
    pub wal: Option<WalSample>,
    pub filesystem: Option<FsStat>,
    /// Probes that failed while the database itself was readable.
    pub errors: Vec<ProbeError>,
    /// Who held the write lock at the end of the sample. Its failure is counted but is not
    /// the snapshot's error (it is retried between polls).
    pub write_lock: Result<Option<Holder>, ProbeError>,
}

/// The open files of one database and the little I/O state kept between polls.
pub struct DbProbe {
    db: WatchedFile,
    wal: WatchedFile,
    shm: WatchedFile,
    /// Canonical directory of the database, for the filesystem lookup.
    dir: Option<PathBuf>,
    scanner: Option<FrameScanner>,
    buf: Vec<u8>,
    /// Journal mode of the last sample: says which byte is the write lock.
    journal: Option<JournalKind>,
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl DbProbe {
    pub fn new(path: &Path) -> Self {
        DbProbe {
            db: WatchedFile::new(path.to_path_buf()),
            wal: WatchedFile::new(sibling(path, "-wal")),
            shm: WatchedFile::new(sibling(path, "-shm")),
            dir: None,
            scanner: None,
            buf: Vec::new(),
            journal: None,
        }
    }

    /// The files whose locks say who uses the database: the -shm (WAL mode) and the database.
    pub fn lock_files(&self) -> (Option<who::FileId>, Option<who::FileId>) {
        let id = |f: &WatchedFile| f.identity().map(|(dev, ino)| who::FileId::new(dev, ino));
        (id(&self.shm), id(&self.db))
    }

    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// The path of the `-wal` beside the database.
    pub fn wal_path(&self) -> &Path {
        self.wal.path()
    }

    /// Makes the next sample look every path up again (see `WatchedFile::recheck_path`).
    pub fn recheck_paths(&mut self) {
        for f in [&mut self.db, &mut self.wal, &mut self.shm] {
            f.recheck_path();
        }
    }

    /// The filesystem holding the database, as last found (its free space is current).
    pub fn filesystem(&self, fs: &mut Filesystems) -> Option<FsStat> {
        fs.stat(self.dir.as_deref()?)
    }

    /// Closes the descriptors of the database, its `-wal` and `-shm` until the next sample,
    /// which opens them again and knows them for the same files (see `WatchedFile::release`).
    pub fn release(&mut self) {
        for f in [&mut self.db, &mut self.wal, &mut self.shm] {
            f.release();
        }
    }

    /// Reads one sample. An `Err` means the database itself is unreadable (`sqlite_up 0`).
    pub fn sample(&mut self, fs: &mut Filesystems) -> Result<Sample, ProbeError> {
        let (db_size_bytes, db_replaced) = match self.db.refresh() {
            Ok(FileStatus::Present { size, replaced }) => (size, replaced),
            Ok(FileStatus::Missing) => return Err(err("database", "file not found")),
            Err(e) => return Err(io_err("database", &self.db, e)),
        };
        let mut head = [0u8; db_header::HEADER_SIZE];
        let n = self
            .db
            .read_at(&mut head, 0)
            .map_err(|e| io_err("header", &self.db, e))?;
        let header = db_header::parse(&head[..n]).map_err(|e| err("header", e))?;
        self.journal = Some(header.journal);

        let mut errors = Vec::new();
        if db_replaced || self.dir.is_none() {
            let parent = self
                .db
                .path()
                .parent()
                .filter(|p| !p.as_os_str().is_empty());
            self.dir = parent.unwrap_or(Path::new(".")).canonicalize().ok();
        }
        let filesystem = match &self.dir {
            Some(dir) => fs.stat(dir),
            None => None,
        };
        if filesystem.is_none() {
            errors.push(err(
                "filesystem",
                "no statvfs-able filesystem found for the database",
            ));
        }
        let wal = match header.journal {
            JournalKind::Wal => Some(self.sample_wal(db_replaced, &mut errors)?),
            JournalKind::Rollback => {
                self.scanner = None;
                None
            }
        };
        Ok(Sample {
            db_size_bytes,
            db_replaced,
            header,
            wal,
            filesystem,
            errors,
            write_lock: self.write_lock_holder(),
        })
    }

    fn sample_wal(
        &mut self,
        db_replaced: bool,
        errors: &mut Vec<ProbeError>,
    ) -> Result<WalSample, ProbeError> {
        // A file refused a descriptor leaves the whole database down (`is_exhausted`).
        let wal_file = match self.wal.refresh() {
            Err(e) if descriptors::is_exhausted(&e) => return Err(io_err("wal", &self.wal, e)),
            Err(e) => {
                errors.push(io_err("wal", &self.wal, e));
                FileStatus::Missing
            }
            Ok(f) => f,
        };
        let shm_file = match self.shm.refresh() {
            Err(e) if descriptors::is_exhausted(&e) => {
                return Err(io_err("wal_index", &self.shm, e))
            }
            Err(e) => {
                errors.push(io_err("wal_index", &self.shm, e));
                FileStatus::Missing
            }
            Ok(f) => f,
        };
        let (index, index_error) = match shm_file {
            FileStatus::Present { .. } => match self.read_index() {
                Ok(idx) => (Some(idx), None),
                Err(e) => {
                    errors.push(err("wal_index", &e));
                    (None, Some(e))
                }
            },
            FileStatus::Missing => (None, None),
        };

        let (shm_in_use, read_locks) = self.shm_locks(errors);
        let exclusive_lock = shm_in_use != Some(true) && self.exclusive_lock(errors);

        // Without a live wal-index, commits can only be counted in the WAL itself.
        let no_live_index =
            shm_file == FileStatus::Missing || (shm_in_use == Some(false) && exclusive_lock);
        if db_replaced || !no_live_index {
            self.scanner = None;
        }
        let frames = if no_live_index {
            match self.scan_wal(wal_file) {
                Ok(f) => f,
                Err(e) => {
                    errors.push(e);
                    None
                }
            }
        } else {
            None
        };
        Ok(WalSample {
            wal_file,
            shm_file,
            index,
            index_error,
            shm_in_use,
            exclusive_lock,
            read_locks,
            frames,
        })
    }

    /// Whether some connection holds the `-shm` "dead man switch", and who holds each reader
    /// slot. `(None, none held)` when there is no `-shm` or a lock test failed.
    fn shm_locks(
        &self,
        errors: &mut Vec<ProbeError>,
    ) -> (Option<bool>, [Option<Holder>; shm::READ_SLOTS]) {
        let mut read_locks = [None; shm::READ_SLOTS];
        let Some(f) = self.shm.file() else {
            return (None, read_locks);
        };
        let tested = (|| -> std::io::Result<bool> {
            let in_use = locks::conflicting(f, lock_bytes::DMS, 1, LockKind::Write)?.is_some();
            // One test of all five read slots; each on its own only when one is held.
            let any_reader = locks::conflicting(
                f,
                lock_bytes::READ_BASE,
                shm::READ_SLOTS as u64,
                LockKind::Write,
            )?;
            if any_reader.is_some() {
                for (i, slot) in read_locks.iter_mut().enumerate() {
                    *slot = locks::conflicting(
                        f,
                        lock_bytes::READ_BASE + i as u64,
                        1,
                        LockKind::Write,
                    )?;
                }
            }
            Ok(in_use)
        })();
        match tested {
            Ok(in_use) => (Some(in_use), read_locks),
            Err(e) => {
                errors.push(io_err("locks", &self.shm, e));
                (None, read_locks)
            }
        }
    }

    /// Whether another process holds an EXCLUSIVE lock on the database file (a connection in
    /// `locking_mode=EXCLUSIVE`).
    fn exclusive_lock(&self, errors: &mut Vec<ProbeError>) -> bool {
        let Some(f) = self.db.file() else {
            return false;
        };
        let range = (
            db_header::lock_bytes::SHARED_FIRST,
            db_header::lock_bytes::SHARED_SIZE,
        );
        match locks::conflicting(f, range.0, range.1, LockKind::Read) {
            Ok(h) => h.is_some(),
            Err(e) => {
                errors.push(io_err("locks", &self.db, e));
                false
            }
        }
    }

    /// Who holds SQLite's write lock right now, with the descriptors of the last sample: in WAL
    /// mode byte 120 of `-shm`, in rollback mode the RESERVED byte of the database file (held
    /// from a writer's first write until its commit). One `F_GETLK`; nothing is acquired.
    pub fn write_lock_holder(&self) -> Result<Option<Holder>, ProbeError> {
        let (file, byte) = match self.journal {
            Some(JournalKind::Wal) => (self.shm.file(), lock_bytes::WRITE),
            Some(JournalKind::Rollback) => (self.db.file(), db_header::lock_bytes::RESERVED),
            None => return Ok(None),
        };
        let Some(file) = file else { return Ok(None) };
        let holder =
            locks::conflicting(file, byte, 1, LockKind::Write).map_err(|e| err("locks", e))?;
        Ok(holder.filter(|h| h.kind == LockKind::Write))
    }

    /// Whether another process is in a transaction on the database now, from one `F_GETLK`
    /// on the descriptor kept open: in WAL mode any lock on the `-shm`'s write, checkpoint,
    /// recovery or read-mark bytes (120-127; not the "dead man switch" every connection holds);
    /// in rollback mode a write lock on the reserved byte. `None` when the descriptor is not
    /// open (released) or the mode unknown.
    pub fn in_transaction(&self) -> Option<bool> {
        let (file, start, len) = match self.journal? {
            JournalKind::Wal => (
                self.shm.file()?,
                lock_bytes::WRITE,
                lock_bytes::DMS - lock_bytes::WRITE,
            ),
            JournalKind::Rollback => (self.db.file()?, db_header::lock_bytes::RESERVED, 1),
        };
        let held = locks::conflicting(file, start, len, LockKind::Write).ok()?;
        Some(held.is_some())
    }

    /// Reads the wal-index header as SQLite's reader does, retrying a torn read a few times.
    /// An I/O error is reported as such, with the file: never as a short header.
    fn read_index(&mut self) -> Result<WalIndex, IndexError> {
        read_wal_index(self.shm.path(), |buf| self.shm.read_at(buf, 0))
    }

    /// Counts commit frames appended to the WAL since the previous poll.
    fn scan_wal(&mut self, wal_file: FileStatus) -> Result<Option<FrameCount>, ProbeError> {
        let FileStatus::Present { size, replaced } = wal_file else {
            self.scanner = None;
            return Ok(None);
        };
        let mut head = [0u8; wal::WAL_HEADER_SIZE];
        let n = self
            .wal
            .read_at(&mut head, 0)
            .map_err(|e| io_err("wal", &self.wal, e))?;
        let header = match wal::parse_header(&head[..n]) {
            Ok(h) => h,
            // An empty or half-written header: the WAL holds no valid frames yet.
            Err(WalError::Incomplete { .. } | WalError::ChecksumMismatch) => return Ok(None),
            Err(e) => return Err(err("wal", e)),
        };
        let new_generation = replaced
            || self
                .scanner
                .as_ref()
                .is_none_or(|s| s.header().salt != header.salt);
        if new_generation {
            self.scanner = Some(FrameScanner::new(header));
        }
        let scanner = self.scanner.as_mut().expect("set above");
        let frame_size = header.frame_size();
        let mut count = FrameCount {
            new_generation,
            salt: header.salt,
            commits: 0,
            frames: 0,
            committed_frames: scanner.committed_frames(),
        };
        // Whole frames from where the last scan stopped, in bounded chunks, up to a budget.
        let end = size.min(scanner.next_offset() + WAL_SCAN_BUDGET);
        let chunk_frames = (WAL_SCAN_CHUNK as u64 / frame_size).max(1);
        loop {
            let start = scanner.next_offset();
            let whole = (end.saturating_sub(start) / frame_size).min(chunk_frames);
            if whole == 0 {
                break;
            }
            self.buf.resize((whole * frame_size) as usize, 0);
            let got = self
                .wal
                .read_at(&mut self.buf, start)
                .map_err(|e| io_err("wal", &self.wal, e))?;
            let out = scanner.scan(&self.buf[..got]);
            count.commits += out.commits;
            count.frames += out.frames;
            if out.stopped || got < self.buf.len() {
                break;
            }
        }
        count.committed_frames = scanner.committed_frames();
        Ok(Some(count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An I/O error reading `-shm` is reported as one, naming the file and the system's error,
    /// never as a short wal-index header. `/proc/self/mem` is a regular file whose first page
    /// cannot be read: EIO.
    #[test]
    fn an_unreadable_shm_is_an_io_error_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x);")
            .unwrap();
        drop(c);
        std::fs::write(sibling(&db, "-wal"), b"").unwrap();
        std::os::unix::fs::symlink("/proc/self/mem", sibling(&db, "-shm")).unwrap();
        let mut probe = DbProbe::new(&db);
        let sample = probe.sample(&mut Filesystems::new()).unwrap();
        let wal = sample.wal.unwrap();
        let Some(IndexError::Io(message)) = &wal.index_error else {
            panic!("{:?}", wal.index_error)
        };
        assert!(
            message.contains("app.db-shm") && message.contains("Input/output error"),
            "{message}"
        );
        assert!(
            sample
                .errors
                .iter()
                .any(|e| e.probe == "wal_index" && e.message == *message),
            "{:?}",
            sample.errors
        );
        assert!(
            !wal.index_error.as_ref().unwrap().is_rebuild(),
            "an I/O error is no rebuild"
        );
    }

    #[test]
    fn an_unreadable_database_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("gone.db");
        std::os::unix::fs::symlink("/proc/self/mem", &db).unwrap();
        let e = DbProbe::new(&db)
            .sample(&mut Filesystems::new())
            .unwrap_err();
        assert_eq!(e.probe, "header");
        assert!(
            e.message.contains("gone.db") && e.message.contains("Input/output error"),
            "{e}"
        );
    }
}
