//! Which databases' files were written, from inotify: one watch per folder holding watched
//! databases, so that looking at ten thousand settled tenants between full polls costs one
//! read of the event queue, not two `stat`s each.

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Proof that a database's folder was watched from a given moment: where its flag is kept,
/// the number of that [`Changes::watch`], and the queue's overflow count then. Answering with
/// it hashes nothing: ten thousand settled databases are looked at every poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    slot: usize,
    stamp: u64,
    overflows: u64,
}

/// One database looked after.
struct Slot {
    /// The [`Changes::watch`] that last cleared it; a token of another is stale.
    stamp: u64,
    /// Its folder's watch, while that watch lasts.
    folder: Option<u64>,
    written: bool,
}

struct Folder {
    wd: WatchDescriptor,
    /// This watch's number: a folder watched again is another watch.
    id: u64,
}

/// Which databases' files were written, from one inotify watch per folder.
///
/// The kernel queues an event before the writer's `write` returns, so a database whose folder
/// was watched before its files were last read, and which has no event since, has not been
/// written since: a commit always writes the `-wal` (WAL mode) or the database file (rollback
/// mode), a checkpoint writes the database file, and a replacement is a create or a rename in
/// the folder. What inotify cannot promise is answered with `None` (the caller falls back to
/// `stat`): no inotify at all, a folder it could not watch (the per-user watch limit), a
/// folder deleted or renamed, or a queue that overflowed.
/// Writes made on another machine (a network share) raise no event; such databases are never
/// trusted to inotify.
pub struct Changes {
    inotify: Option<Inotify>,
    folders: HashMap<PathBuf, Folder>,
    by_wd: HashMap<WatchDescriptor, PathBuf>,
    /// Each database looked after, by path: its slot.
    slots_by_path: HashMap<PathBuf, usize>,
    slots: Vec<Slot>,
    /// Slots no database holds.
    free: Vec<usize>,
    next_id: u64,
    overflows: u64,
    buffer: Vec<u8>,
}

/// Reads of the event queue in one [`Changes::drain`], 64 KiB each.
const MAX_READS: usize = 64;

impl Default for Changes {
    fn default() -> Self {
        Self::new()
    }
}

/// The database a file in its folder belongs to: `app.db-wal`, `app.db-shm` and
/// `app.db-journal` are `app.db`'s.
fn database_of(name: &OsStr) -> &OsStr {
    let bytes = name.as_encoded_bytes();
    for suffix in [&b"-wal"[..], b"-shm", b"-journal"] {
        if let Some(base) = bytes.strip_suffix(suffix) {
            // SAFETY: cut at an ASCII boundary of bytes that came from an OsStr.
            return unsafe { OsStr::from_encoded_bytes_unchecked(base) };
        }
    }
    name
}

impl Changes {
    /// Without inotify (the instance limit reached, or a kernel without it) every answer is
    /// `None`.
    pub fn new() -> Self {
        let inotify = Inotify::init()
            .map_err(|e| tracing::info!(error = %e, "no inotify: settled databases are looked at with stat"))
            .ok();
        Changes {
            inotify,
            folders: HashMap::new(),
            by_wd: HashMap::new(),
            slots_by_path: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            next_id: 0,
            overflows: 0,
            buffer: vec![0; 64 * 1024],
        }
    }

    /// Starts (or goes on) looking after `db`, forgetting that it was written: call just before
    /// its files are read. Returns the token that [`Changes::written_since`] takes, or `None`
    /// when its folder cannot be watched.
    pub fn watch(&mut self, db: &Path) -> Option<Token> {
        let inotify = self.inotify.as_mut()?;
        let folder = db.parent()?;
        let id = match self.folders.get(folder) {
            Some(f) => f.id,
            None => {
                let mask = WatchMask::MODIFY
                    | WatchMask::ATTRIB
                    | WatchMask::CREATE
                    | WatchMask::DELETE
                    | WatchMask::MOVED_FROM
                    | WatchMask::MOVED_TO
                    | WatchMask::DELETE_SELF
                    | WatchMask::MOVE_SELF
                    | WatchMask::ONLYDIR;
                let wd = inotify
                    .watches()
                    .add(folder, mask)
                    .map_err(|e| tracing::debug!(folder = %folder.display(), error = %e, "folder not watched"))
                    .ok()?;
                self.next_id += 1;
                // The same folder reached by another path (a link) shares the descriptor.
                if let Some(other) = self.by_wd.insert(wd.clone(), folder.to_path_buf()) {
                    self.folders.remove(&other);
                }
                self.folders.insert(
                    folder.to_path_buf(),
                    Folder {
                        wd,
                        id: self.next_id,
                    },
                );
                self.next_id
            }
        };
        self.next_id += 1;
        let stamp = self.next_id;
        let slot = match self.slots_by_path.get(db) {
            Some(&i) => i,
            None => {
                let i = self.free.pop().unwrap_or_else(|| {
                    self.slots.push(Slot {
                        stamp,
                        folder: None,
                        written: false,
                    });
                    self.slots.len() - 1
                });
                self.slots_by_path.insert(db.to_path_buf(), i);
                i
            }
        };
        self.slots[slot] = Slot {
            stamp,
            folder: Some(id),
            written: false,
        };
        Some(Token {
            slot,
            stamp,
            overflows: self.overflows,
        })
    }

    /// Whether `db`'s files were written since the [`Changes::watch`] that gave `token`;
    /// `None` when inotify can no longer say (see [`Changes`]). Call
    /// [`Changes::drain`] first.
    pub fn written_since(&self, token: Token) -> Option<bool> {
        let slot = self.slots.get(token.slot)?;
        (slot.stamp == token.stamp && slot.folder.is_some() && self.overflows == token.overflows)
            .then_some(slot.written)
    }

    /// Reads every event queued so far, without waiting.
    pub fn drain(&mut self) {
        self.drain_at_most(MAX_READS);
    }

    fn drain_at_most(&mut self, max_reads: usize) {
        let Some(inotify) = self.inotify.as_mut() else {
            return;
        };
        let mut lost = Vec::new();
        let mut reads = 0;
        loop {
            // A folder written without pause (a log beside the databases) would keep this loop
            // going forever: past a bound, what is left unread is as good as an overflow.
            reads += 1;
            if reads > max_reads {
                self.overflows += 1;
                break;
            }
            let events = match inotify.read_events(&mut self.buffer) {
                Ok(events) => events,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::warn!(error = %e, "inotify read failed; settled databases are looked at with stat");
                    self.overflows += 1;
                    break;
                }
            };
            let mut any = false;
            for event in events {
                any = true;
                if event.mask.contains(EventMask::Q_OVERFLOW) {
                    self.overflows += 1;
                    continue;
                }
                let Some(folder) = self.by_wd.get(&event.wd) else {
                    continue;
                };
                if event
                    .mask
                    .intersects(EventMask::DELETE_SELF | EventMask::MOVE_SELF | EventMask::IGNORED)
                {
                    lost.push(event.wd.clone());
                } else if let Some(name) = event.name {
                    if let Some(&i) = self.slots_by_path.get(&folder.join(database_of(name))) {
                        self.slots[i].written = true;
                    }
                }
            }
            if !any {
                break;
            }
        }
        for wd in lost {
            self.forget(&wd);
        }
    }

    /// Stops looking after every database not in `keep`, and unwatches folders left empty.
    /// The tokens of those kept still answer: a tenant added to a fleet does not make the ten
    /// thousand others read in full. Slots let go are taken again by the next databases.
    pub fn retain(&mut self, keep: &std::collections::HashSet<&Path>) {
        let slots = &mut self.slots;
        let free = &mut self.free;
        self.slots_by_path.retain(|db, &mut i| {
            let kept = keep.contains(db.as_path());
            if !kept {
                slots[i] = Slot {
                    stamp: 0,
                    folder: None,
                    written: true,
                };
                free.push(i);
            }
            kept
        });
        let folders: std::collections::HashSet<&Path> = self
            .slots_by_path
            .keys()
            .filter_map(|db| db.parent())
            .collect();
        let gone: Vec<WatchDescriptor> = self
            .folders
            .iter()
            .filter(|(path, _)| !folders.contains(path.as_path()))
            .map(|(_, f)| f.wd.clone())
            .collect();
        for wd in gone {
            if let Some(inotify) = self.inotify.as_mut() {
                let _ = inotify.watches().remove(wd.clone());
            }
            self.forget(&wd);
        }
    }

    fn forget(&mut self, wd: &WatchDescriptor) {
        let Some(folder) = self.by_wd.remove(wd) else {
            return;
        };
        if let Some(f) = self.folders.remove(&folder) {
            for slot in &mut self.slots {
                if slot.folder == Some(f.id) {
                    slot.folder = None;
                }
            }
        }
    }

    /// Folders watched now.
    #[cfg(test)]
    pub fn folders(&self) -> usize {
        self.folders.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_files_belong_to_their_database() {
        for (name, db) in [
            ("app.db-wal", "app.db"),
            ("app.db-shm", "app.db"),
            ("app.db-journal", "app.db"),
            ("app.db", "app.db"),
            ("wal", "wal"),
            ("-wal", ""),
        ] {
            assert_eq!(database_of(OsStr::new(name)), OsStr::new(db), "{name}");
        }
    }

    #[test]
    fn a_write_rename_or_delete_is_seen_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        let other = dir.path().join("b.db");
        std::fs::write(&db, b"x").unwrap();
        std::fs::write(&other, b"x").unwrap();
        let mut c = Changes::new();
        let t = c.watch(&db).expect("inotify on a temporary folder");
        let t_other = c.watch(&other).unwrap();
        c.drain();
        assert_eq!(c.written_since(t), Some(false));
        // Reading is not writing.
        std::fs::read(&db).unwrap();
        c.drain();
        assert_eq!(c.written_since(t), Some(false));
        std::fs::write(dir.path().join("a.db-wal"), b"frames").unwrap();
        c.drain();
        assert_eq!(c.written_since(t), Some(true), "the -wal is the db's");
        assert_eq!(c.written_since(t_other), Some(false));
        // Watching again forgets; a rename over it is seen.
        let t = c.watch(&db).unwrap();
        std::fs::write(dir.path().join("new"), b"y").unwrap();
        c.drain();
        assert_eq!(c.written_since(t), Some(false), "another file");
        std::fs::rename(dir.path().join("new"), &db).unwrap();
        c.drain();
        assert_eq!(c.written_since(t), Some(true));
        // A stale token is no answer; a folder removed is no answer.
        let old = t;
        let t = c.watch(&db).unwrap();
        assert_eq!(
            c.written_since(old),
            None,
            "a token older than the last watch is stale"
        );
        let t_other = c.watch(&other).unwrap();
        c.retain(&[other.as_path()].into_iter().collect());
        assert_eq!(c.written_since(t), None, "no longer looked after");
        assert_eq!(c.written_since(t_other), Some(false), "kept: still answers");
        let t_third = c.watch(&dir.path().join("c.db")).unwrap();
        assert_eq!(c.written_since(t), None, "its slot is another's now");
        assert_eq!(c.written_since(t_third), Some(false));
        let t_other = c.watch(&other).unwrap();
        drop(dir);
        c.drain();
        assert_eq!(c.written_since(t_other), None, "folder gone");
        assert_eq!(c.folders(), 0);
    }

    #[test]
    fn events_left_unread_past_the_bound_are_an_overflow() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        std::fs::write(&db, b"x").unwrap();
        let mut c = Changes::new();
        let t = c.watch(&db).unwrap();
        // Ten events of other files; a buffer that holds one at a time, two reads allowed.
        for i in 0..10 {
            std::fs::write(dir.path().join(format!("log{i}")), b"x").unwrap();
        }
        c.buffer = vec![0; 64];
        c.drain_at_most(2);
        assert_eq!(c.written_since(t), None, "unread events: no answer");
        let t = c.watch(&db).unwrap();
        c.buffer = vec![0; 64 * 1024];
        c.drain();
        assert_eq!(c.written_since(t), Some(false), "all read: an answer again");
    }
}
