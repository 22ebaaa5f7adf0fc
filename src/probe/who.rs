//! Who holds what: every process holding one of a database's SQLite locks, from Linux's
//! `/proc/locks` (read at most every 2 s for all databases, grouped by file), with its name and command line
//! from `/proc/<pid>/`. Matching locks to a database is pure; reading `/proc` is at the edge.

use crate::format::db_header::lock_bytes as db_bytes;
use crate::format::proc_locks::{self, LockLine};
use crate::format::shm::{lock_bytes as shm_bytes, READ_SLOTS};
use serde::Serialize;
use std::collections::HashMap;

/// A file's identity as `/proc/locks` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    pub major: u32,
    pub minor: u32,
    pub inode: u64,
}

impl FileId {
    pub fn new(dev: u64, inode: u64) -> Self {
        FileId {
            major: libc::major(dev),
            minor: libc::minor(dev),
            inode,
        }
    }

    fn of(l: &LockLine) -> Self {
        FileId {
            major: l.major,
            minor: l.minor,
            inode: l.inode,
        }
    }
}

/// The machine's POSIX locks grouped by file, so that each database looks up its own few
/// instead of every poll scanning every lock of the machine.
#[derive(Debug, Default)]
pub struct Locks(HashMap<FileId, Vec<LockLine>>);

impl Locks {
    pub fn from_lines(lines: impl IntoIterator<Item = LockLine>) -> Self {
        let mut by_file: HashMap<FileId, Vec<LockLine>> = HashMap::new();
        for l in lines {
            by_file.entry(FileId::of(&l)).or_default().push(l);
        }
        Locks(by_file)
    }

    /// Every POSIX lock on the machine; none where `/proc/locks` cannot be read.
    pub fn read() -> Self {
        std::fs::read_to_string("/proc/locks")
            .map(|t| Self::from_lines(proc_locks::parse(&t)))
            .unwrap_or_default()
    }

    /// The locks held on `file`.
    pub fn of(&self, file: FileId) -> &[LockLine] {
        self.0.get(&file).map_or(&[], Vec::as_slice)
    }
}

/// A process and what it holds on one database.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Holder {
    pub pid: i32,
    /// `/proc/<pid>/comm`, when readable.
    pub name: Option<String>,
    /// `/proc/<pid>/cmdline`, arguments joined by spaces.
    pub command: Option<String>,
    /// `open` (WAL: holds the -shm "dead man switch"; rollback: a shared lock), `writer`
    /// (the write lock), `reader N` (WAL read slot N), `pending` (rollback PENDING),
    /// `exclusive` (rollback EXCLUSIVE).
    pub roles: Vec<String>,
}

/// The roles of every pid holding a lock of a WAL database (`shm` is its -shm file).
pub fn wal_roles(locks: &Locks, shm: FileId) -> Vec<(i32, Vec<String>)> {
    roles(locks.of(shm), |l, out| {
        if l.covers(shm_bytes::DMS) {
            out.push("open".to_string());
        }
        if l.write && l.covers(shm_bytes::WRITE) {
            out.push("writer".to_string());
        }
        for slot in 0..READ_SLOTS as u64 {
            if !l.write && l.covers(shm_bytes::READ_BASE + slot) {
                out.push(format!("reader {slot}"));
            }
        }
    })
}

/// The roles of every pid holding a lock of a rollback-journal database (`db` is its file).
pub fn rollback_roles(locks: &Locks, db: FileId) -> Vec<(i32, Vec<String>)> {
    roles(locks.of(db), |l, out| {
        let shared = l.covers(db_bytes::SHARED_FIRST);
        if l.write && l.covers(db_bytes::RESERVED) {
            out.push("writer".to_string());
        }
        if l.covers(db_bytes::PENDING) {
            out.push("pending".to_string());
        }
        if shared && l.write {
            out.push("exclusive".to_string());
        } else if shared {
            out.push("open".to_string());
        }
    })
}

/// The roles `classify` finds in one file's locks, grouped by pid.
fn roles(
    locks: &[LockLine],
    classify: impl Fn(&LockLine, &mut Vec<String>),
) -> Vec<(i32, Vec<String>)> {
    let mut out: Vec<(i32, Vec<String>)> = Vec::new();
    for l in locks {
        let mut found = Vec::new();
        classify(l, &mut found);
        if found.is_empty() {
            continue;
        }
        match out.iter_mut().find(|(pid, _)| *pid == l.pid) {
            Some((_, r)) => r.extend(found),
            None => out.push((l.pid, found)),
        }
    }
    for (_, r) in &mut out {
        r.sort();
        r.dedup();
    }
    out.sort_by_key(|(pid, _)| *pid);
    out
}

/// A process's name and command line.
pub fn describe(pid: i32, roles: Vec<String>) -> Holder {
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string());
    let command = std::fs::read(format!("/proc/{pid}/cmdline")).ok().map(|b| {
        b.split(|&c| c == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    });
    Holder {
        pid,
        name,
        command,
        roles,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(write: bool, pid: i32, inode: u64, start: u64, end: u64) -> LockLine {
        LockLine {
            write,
            pid,
            major: 8,
            minor: 1,
            inode,
            start,
            end: Some(end),
        }
    }

    #[test]
    fn wal_roles_from_shm_locks() {
        let shm = FileId {
            major: 8,
            minor: 1,
            inode: 7,
        };
        let locks = [
            line(false, 10, 7, 128, 128),
            line(true, 10, 7, 120, 120),
            line(false, 11, 7, 128, 128),
            line(false, 11, 7, 124, 124),
            line(false, 12, 7, 124, 124),
            line(false, 12, 7, 128, 128),
            line(true, 13, 99, 120, 120), // another file
        ];
        assert_eq!(
            wal_roles(&Locks::from_lines(locks), shm),
            vec![
                (10, vec!["open".to_string(), "writer".to_string()]),
                (11, vec!["open".to_string(), "reader 1".to_string()]),
                (12, vec!["open".to_string(), "reader 1".to_string()]),
            ]
        );
    }

    #[test]
    fn rollback_roles_from_database_locks() {
        let db = FileId {
            major: 8,
            minor: 1,
            inode: 5,
        };
        let first = db_bytes::SHARED_FIRST;
        let locks = [
            line(false, 20, 5, first, first + db_bytes::SHARED_SIZE - 1),
            line(true, 20, 5, db_bytes::RESERVED, db_bytes::RESERVED),
            line(false, 21, 5, first, first + db_bytes::SHARED_SIZE - 1),
            line(true, 22, 5, db_bytes::PENDING, db_bytes::PENDING),
            line(true, 22, 5, first, first + db_bytes::SHARED_SIZE - 1),
        ];
        let r = rollback_roles(&Locks::from_lines(locks), db);
        assert_eq!(r[0], (20, vec!["open".to_string(), "writer".to_string()]));
        assert_eq!(r[1], (21, vec!["open".to_string()]));
        assert_eq!(
            r[2],
            (22, vec!["exclusive".to_string(), "pending".to_string()])
        );
    }
}
