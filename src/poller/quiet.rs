//! What makes an idle database cheap: between full polls, a database whose last poll found it
//! settled (up, no write for a while, no writer and no reader in a transaction) is only looked
//! at, and its last snapshot published again, brought up to the time, while nothing changed.

use super::changes::{Changes, Token};
use crate::format::db_header::JournalKind;
use crate::monitor::DbSnapshot;
use crate::probe::who::{FileId, Locks};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// The longest a settled database goes without a full poll: a safety net, since every change
/// that matters is seen at once by the events or stamps and the locks.
pub const FULL_POLL_EVERY: Duration = Duration::from_secs(60);

/// A file's inode, size and modification time, or `None` when it is missing: what any write
/// changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(Option<(u64, u64, i64, i64)>);

impl Stamp {
    pub fn of(path: &Path) -> Stamp {
        Stamp(
            std::fs::metadata(path)
                .ok()
                .map(|m| (m.ino(), m.len(), m.mtime(), m.mtime_nsec())),
        )
    }
}

/// How a settled database's writes are seen: inotify, from the token taken before its files
/// were read, or the stamps of the database and the `-wal` taken then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeenBy {
    Events(Token),
    Stamps([Stamp; 2]),
}

/// What is taken just before a full poll reads a database's files, to see later whether they
/// were written since: an inotify token when its folder could be watched, and the stamps
/// unless inotify was trusted for it before (whether it may be is known once the poll has
/// found its filesystem).
pub struct Before {
    token: Option<Token>,
    stamps: Option<[Stamp; 2]>,
}

impl Before {
    pub fn reading(changes: &mut Changes, events_trusted: bool, db: &Path, wal: &Path) -> Before {
        let token = changes.watch(db);
        let stamps = (token.is_none() || !events_trusted).then(|| [Stamp::of(db), Stamp::of(wal)]);
        Before { token, stamps }
    }

    /// How the database's writes are seen from now on, given whether inotify may be trusted
    /// for its filesystem.
    pub fn seen_by(self, events_trusted: bool) -> Option<SeenBy> {
        match (self.token, self.stamps) {
            (Some(token), _) if events_trusted => Some(SeenBy::Events(token)),
            (_, Some(stamps)) => Some(SeenBy::Stamps(stamps)),
            _ => None,
        }
    }
}

impl SeenBy {
    /// Whether the files were written since; a question inotify can no longer answer is a yes.
    pub fn written(&self, changes: &Changes, db: &Path, wal: &Path) -> bool {
        match *self {
            SeenBy::Events(token) => changes.written_since(token) != Some(false),
            SeenBy::Stamps(stamps) => [Stamp::of(db), Stamp::of(wal)] != stamps,
        }
    }
}

/// The last full poll of a settled database, and how its changes are seen.
///
/// Looking at a settled database between full polls is an inotify event queue read once for all
/// (see `changes`), or two `stat`s where inotify cannot be trusted, and one `F_GETLK` (or the
/// machine's `/proc/locks`, read once for all). Any write to its files, any transaction, or
/// [`FULL_POLL_EVERY`] without a full poll, and it is polled in full again.
///
/// Counts stay exact: they come from SQLite's own counters at the next full poll, which follows
/// a commit at once (the commit writes the `-wal` or the database file). The figures that move
/// with time alone (rates, the longest hold of the last minute, the checkpoint lag's age, the
/// free space, the replication lag) are brought up to date at every poll (`Monitor::repeat`).
#[derive(Debug)]
pub struct Settled {
    pub snapshot: DbSnapshot,
    pub seen_by: SeenBy,
    pub at: Instant,
    /// Replicators (Litestream) whose read transaction does not keep the database from
    /// settling (see [`is_settled`]); their read marks are not a transaction in `/proc/locks`.
    pub replicators: Vec<i32>,
}

/// Whether a full poll's snapshot leaves the database settled: readable, no writer holding the
/// lock, and not busy (`busy`: the monitor samples its write lock between polls); readers in a
/// transaction only if each is a replicator whose snapshot pins nothing. Litestream holds a
/// read transaction on every database it replicates: a fleet replicated by it would otherwise
/// never settle. Returns the replicators' pids, `None` when not settled.
pub fn is_settled(s: &DbSnapshot, busy: bool) -> Option<Vec<i32>> {
    use crate::probe::process::Role;
    let replicator = |pid: i32| {
        s.processes.iter().any(|h| {
            h.identity.pid == pid && matches!(h.identity.role, Role::Litestream | Role::Replicator)
        })
    };
    let settled = s.up
        && !busy
        && s.write_lock.as_ref().is_none_or(|w| w.holder_pid.is_none())
        && s.wal.as_ref().is_none_or(|w| {
            w.readers == w.reader_slots.len() as u64
                && w.reader_slots
                    .iter()
                    .all(|r| r.pinning_seconds == 0.0 && r.pid.is_some_and(replicator))
        });
    settled.then(|| {
        s.wal
            .iter()
            .flat_map(|w| &w.reader_slots)
            .filter_map(|r| r.pid)
            .collect()
    })
}

/// Whether `/proc/locks` shows a process in a transaction on the database: in WAL mode any
/// lock on the `-shm`'s write or read-mark bytes (the "dead man switch" every connection holds
/// does not count), but the read marks of `replicators`; in rollback mode a reserved, pending
/// or exclusive lock. In WAL mode without a `-shm`, nobody has the database open. Unknown files
/// count as in a transaction, so that they are polled in full.
pub fn in_transaction(
    locks: &Locks,
    journal: Option<JournalKind>,
    (shm, db): (Option<FileId>, Option<FileId>),
    replicators: &[i32],
) -> bool {
    use crate::format::shm::lock_bytes as shm_bytes;
    match (journal, shm, db) {
        (Some(JournalKind::Wal), Some(shm), _) => locks.of(shm).iter().any(|l| {
            let write_side = (shm_bytes::WRITE..shm_bytes::READ_BASE).any(|b| l.covers(b));
            let reading = (shm_bytes::READ_BASE..shm_bytes::DMS).any(|b| l.covers(b));
            write_side || (reading && !replicators.contains(&l.pid))
        }),
        // No -shm: no connection has the database open (the first one creates it, which
        // inotify or the -wal's stamp shows). Most tenants of a fleet are like this.
        (Some(JournalKind::Wal), None, Some(_)) => false,
        (Some(JournalKind::Rollback), _, Some(db)) => locks.of(db).iter().any(|l| l.write),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::proc_locks::LockLine;

    fn lock(inode: u64, write: bool, start: u64, end: Option<u64>) -> LockLine {
        LockLine {
            write,
            pid: 42,
            major: 8,
            minor: 1,
            inode,
            start,
            end,
        }
    }

    #[test]
    fn only_a_transaction_keeps_a_database_from_settling() {
        let dev = libc::makedev(8, 1);
        let (shm, db) = (FileId::new(dev, 10), FileId::new(dev, 11));
        let wal = Some(JournalKind::Wal);
        let rollback = Some(JournalKind::Rollback);
        let with = |lines: Vec<LockLine>| Locks::from_lines(lines);
        // Every open connection holds the dead man switch (128): no transaction.
        let open = with(vec![lock(10, false, 128, Some(128))]);
        assert!(!in_transaction(&open, wal, (Some(shm), Some(db)), &[]));
        // A writer (120), a reader's mark (123..127), a checkpointer (121).
        for (write, byte) in [(true, 120), (false, 125), (true, 121)] {
            let l = with(vec![lock(10, write, byte, Some(byte))]);
            assert!(
                in_transaction(&l, wal, (Some(shm), Some(db)), &[]),
                "{byte}"
            );
        }
        // A lock to the end of the file from below covers them too.
        let l = with(vec![lock(10, false, 100, None)]);
        assert!(in_transaction(&l, wal, (Some(shm), Some(db)), &[]));
        // Another file's locks do not count; an unknown file or mode counts as busy.
        let other = with(vec![lock(99, true, 120, Some(120))]);
        assert!(!in_transaction(&other, wal, (Some(shm), Some(db)), &[]));
        assert!(
            !in_transaction(&other, wal, (None, Some(db)), &[]),
            "no -shm: closed"
        );
        assert!(in_transaction(&other, wal, (None, None), &[]));
        assert!(in_transaction(&other, None, (Some(shm), Some(db)), &[]));
        // Rollback mode: readers' shared locks are not a transaction; a write lock is.
        let shared = with(vec![lock(11, false, 1_073_741_826, Some(1_073_742_335))]);
        assert!(!in_transaction(&shared, rollback, (None, Some(db)), &[]));
        let reserved = with(vec![lock(11, true, 1_073_741_825, Some(1_073_741_825))]);
        assert!(in_transaction(&reserved, rollback, (None, Some(db)), &[]));
        // A replicator's read mark (Litestream's standing transaction) is not one; its
        // write lock, or another process's read mark, is.
        let litestream = |write: bool, byte: u64, pid: i32| {
            let mut l = lock(10, write, byte, Some(byte));
            l.pid = pid;
            with(vec![l])
        };
        let files = (Some(shm), Some(db));
        assert!(!in_transaction(
            &litestream(false, 124, 42),
            wal,
            files,
            &[42]
        ));
        assert!(in_transaction(
            &litestream(true, 120, 42),
            wal,
            files,
            &[42]
        ));
        assert!(in_transaction(
            &litestream(false, 124, 7),
            wal,
            files,
            &[42]
        ));
    }
}
