//! Who holds what: every process holding one of a database's SQLite locks, from Linux's
//! `/proc/locks` (read at most every 2 s for all databases, grouped by file). Matching locks to
//! a database is pure; `process` says who each pid is.

use crate::format::db_header::lock_bytes as db_bytes;
use crate::format::proc_locks::{self, LockLine};
use crate::format::shm::{lock_bytes as shm_bytes, READ_SLOTS};
use crate::probe::process::{Identity, Role};
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
    /// Who it is: pid, name, command line and role (0 and `outside_namespace` for a holder
    /// this daemon cannot see).
    #[serde(flatten)]
    pub identity: Identity,
    /// What it holds: `open` (WAL: the -shm "dead man switch"; rollback: a shared lock),
    /// `writer` (the write lock), `reader N` (WAL read slot N), `pending` (rollback PENDING),
    /// `exclusive` (rollback EXCLUSIVE).
    pub roles: Vec<String>,
}

impl Holder {
    /// For people: `4321 python3 app.py [application]: open, writer`, or for a holder in another
    /// pid namespace `held by a process outside this pid namespace: writer`. `command` shows the
    /// whole command line rather than the process name.
    pub fn describe(&self, command: bool) -> String {
        let id = &self.identity;
        if id.role == Role::OutsideNamespace {
            return format!(
                "held by a process outside this pid namespace: {}",
                self.roles.join(", ")
            );
        }
        let who = if command {
            id.command.as_deref().or(id.name.as_deref())
        } else {
            id.name.as_deref()
        };
        let role = match &id.replicator {
            Some(r) => format!("replicator {r}"),
            None => id.role.as_str().to_string(),
        };
        format!(
            "{} {} [{role}]: {}",
            id.pid,
            who.unwrap_or("?"),
            self.roles.join(", ")
        )
    }
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
