//! Where the Litestream watchers post what they find and the poller reads it: the latest
//! observation of every replica and what Litestream's own metrics say of each database. It
//! imports neither the poller nor the monitor; both depend on it.

use super::metrics::Process;
use super::position::Position;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// What one read of a replica found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Observation {
    /// `file`, `s3`, or the unsupported type's name.
    pub kind: String,
    pub local: Option<Position>,
    pub replica: Option<Position>,
    /// Every commit made before this time is in the replica (seconds since the epoch).
    pub replicated_at: Option<f64>,
    /// Where the live WAL stood when the replica's newest file was made (v0.5): a drill
    /// compares its copy with the live database only when the WAL still stands there.
    #[serde(skip)]
    pub replica_wal: Option<crate::format::litestream::WalMark>,
    /// When Litestream read the first commit it holds locally and the replica lacks (the
    /// timestamp of that local LTX file): the replica has lacked a commit at least since then.
    pub unreplicated_since: Option<f64>,
    /// Whether a restore would find an unbroken run of files (v0.5's LTX files, v0.3's WAL
    /// indices), from the last successful read: whole, or the gap said (naming the file after
    /// it) when not; `None` when not judged (an empty replica, or not read yet).
    pub chain: Option<super::chain::Verdict>,
    /// A gap seen by the last listing only: a listing taken while Litestream compacts can see a
    /// level's old files gone before it sees the file that replaced them, so a gap counts once
    /// two listings in a row show it.
    #[serde(skip)]
    pub chain_unconfirmed: Option<String>,
    /// When the replica was last read successfully.
    pub read_at: Option<f64>,
    /// Why the last read failed; `None` when it succeeded.
    pub error: Option<String>,
    /// Why Litestream's local state (its meta directory) could not be read; `None` when it
    /// was. Without it the local position is unknown, but the replica's lag is still measured.
    pub local_error: Option<String>,
    /// What the replica holds level by level, from the last successful read.
    pub storage: Option<std::sync::Arc<super::storage::Storage>>,
    /// What Litestream keeps on local disk for the database, from the last read of it.
    pub local_state: Option<std::sync::Arc<super::local_state::LocalState>>,
    /// Reads of the replica (listings: on S3 each is a LIST and, v0.5, a ranged GET).
    pub reads_total: u64,
    pub errors_total: u64,
}

/// What was posted of a database: the stamp of the last post, and each replica's observation.
#[derive(Debug, Default)]
struct Posted {
    stamp: u64,
    replicas: Vec<(String, Observation)>,
    /// The stamp again, where a poll reads it without the board's lock (see
    /// [`Board::stamp_of`]).
    signal: std::sync::Arc<AtomicU64>,
}

/// The latest observation of every replica, by database then replica (a poll looks a database
/// up by its name alone, allocating nothing), and what Litestream's own metrics say of each
/// database.
#[derive(Debug, Default)]
pub struct Board {
    /// By database: when it last changed (a stamp from `stamps`), and its replicas.
    inner: Mutex<HashMap<String, Posted>>,
    /// Counts every post: a poll that finds a database's stamp unchanged copies nothing.
    stamps: AtomicU64,
    processes: Mutex<HashMap<String, Process>>,
    /// When the poller last saw each replicated database other than settled (written, or in a
    /// transaction): Litestream's local position can only move after that, so a watcher whose
    /// replica held everything needs not look again before, and sleeps until woken.
    touched: Mutex<HashMap<String, Touched>>,
}

/// When the poller last saw a database other than settled, and the watchers' bell.
#[derive(Debug, Default)]
struct Touched {
    at: Option<Instant>,
    bell: std::sync::Arc<tokio::sync::Notify>,
}

/// The entry of `db`, made when there is none (looked up first: a post allocates no key for a
/// known database).
fn entry<'m>(map: &'m mut HashMap<String, Posted>, db: &str) -> &'m mut Posted {
    if !map.contains_key(db) {
        map.insert(db.to_string(), Posted::default());
    }
    map.get_mut(db).expect("just inserted")
}

impl Board {
    pub fn process(&self, db: &str) -> Option<Process> {
        self.processes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(db)
            .cloned()
    }

    pub(super) fn post_process(&self, db: &str, p: Process) {
        self.processes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(db.to_string(), p);
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        self.stamp(&mut map, db);
    }

    /// Marks `db` changed; returns its entry.
    fn stamp<'m>(
        &self,
        map: &'m mut HashMap<String, Posted>,
        db: &str,
    ) -> &'m mut Vec<(String, Observation)> {
        let stamp = self.stamps.fetch_add(1, Ordering::Relaxed) + 1;
        let entry = entry(map, db);
        entry.stamp = stamp;
        entry.signal.store(stamp, Ordering::Release);
        &mut entry.replicas
    }

    /// The stamp of `db`'s last post, shared: a poll compares it with the stamp it last took
    /// observations at and looks `db` up only when it moved (ten thousand tenants, one atomic
    /// load each a poll rather than a lock and a lookup). A reload's [`Board::retain`] may
    /// forget the entry it belongs to: take it again after one.
    pub fn stamp_of(&self, db: &str) -> std::sync::Arc<AtomicU64> {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        entry(&mut map, db).signal.clone()
    }

    /// The poller saw `db` other than settled now: its watchers wake.
    pub fn touch(&self, db: &str, now: Instant) {
        let mut touched = self.touched.lock().unwrap_or_else(|e| e.into_inner());
        let t = match touched.get_mut(db) {
            Some(t) => t,
            None => touched.entry(db.to_string()).or_default(),
        };
        t.at = Some(now);
        t.bell.notify_waiters();
    }

    /// When the poller last saw `db` other than settled; `None` if never.
    pub(super) fn touched(&self, db: &str) -> Option<Instant> {
        let touched = self.touched.lock().unwrap_or_else(|e| e.into_inner());
        touched.get(db)?.at
    }

    /// What rings when the poller sees `db` other than settled: a watcher with nothing to read
    /// waits on it (or its idle interval) instead of waking every second to ask.
    pub(super) fn bell(&self, db: &str) -> std::sync::Arc<tokio::sync::Notify> {
        let mut touched = self.touched.lock().unwrap_or_else(|e| e.into_inner());
        touched.entry(db.to_string()).or_default().bell.clone()
    }

    pub fn get(&self, db: &str, replica: &str) -> Option<Observation> {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (_, o) = map.get(db)?.replicas.iter().find(|(r, _)| r == replica)?;
        Some(o.clone())
    }

    /// The observations of every replica of `db` read so far, by replica name, with the stamp
    /// of the last post; `None` when nothing was posted of `db` since stamp `seen` (0: never
    /// seen), so that a settled fleet's polls copy nothing.
    pub fn observations_since(
        &self,
        db: &str,
        seen: u64,
    ) -> Option<(u64, Vec<(String, Observation)>)> {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.get(db)?;
        (entry.stamp != seen).then(|| (entry.stamp, entry.replicas.clone()))
    }

    pub(super) fn post(&self, db: &str, replica: &str, f: impl FnOnce(&mut Observation)) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let replicas = self.stamp(&mut map, db);
        match replicas.iter().position(|(r, _)| r == replica) {
            Some(i) => f(&mut replicas[i].1),
            None => {
                // Most databases have one replica: room for one more, not the four a first
                // push makes (a kilobyte a tenant).
                replicas.reserve_exact(1);
                replicas.push((replica.to_string(), Observation::default()));
                f(&mut replicas.last_mut().expect("just pushed").1)
            }
        }
    }

    /// Keeps the observations of the replicas `keep(db, replica)` and the processes
    /// `keep_process(db)` names, and forgets the rest: on a reload, what was read of a replica
    /// whose configuration did not change stays on the board until its new watcher reads it
    /// again, so its series never blink out of `/metrics`.
    pub fn retain(&self, keep: impl Fn(&str, &str) -> bool, keep_process: impl Fn(&str) -> bool) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let stamp = self.stamps.fetch_add(1, Ordering::Relaxed) + 1;
        map.retain(|db, posted| {
            posted.stamp = stamp;
            posted.signal.store(stamp, Ordering::Release);
            posted.replicas.retain(|(replica, _)| keep(db, replica));
            !posted.replicas.is_empty()
        });
        drop(map);
        self.processes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|db, _| keep_process(db));
        self.touched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|db, _| keep_process(db));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A poll copies a database's observations only when something was posted of it since the
    /// poll before: a replica read, Litestream's own metrics, a reload's retain.
    #[test]
    fn observations_are_copied_only_when_posted_since() {
        let board = Board::default();
        assert!(board.observations_since("app", 0).is_none(), "nothing yet");
        // The shared stamp, taken before the first post, moves with every post and retain.
        let signal = board.stamp_of("app");
        let read = || signal.load(Ordering::Acquire);
        assert_eq!(read(), 0);
        assert!(
            board.observations_since("app", 0).is_none(),
            "still nothing"
        );
        board.post("app", "s3", |o| o.reads_total = 1);
        board.post("other", "s3", |o| o.reads_total = 5);
        let (stamp, seen) = board.observations_since("app", 0).unwrap();
        assert_eq!((seen.len(), seen[0].1.reads_total), (1, 1));
        assert_eq!(
            read(),
            stamp,
            "the other database's post moved only its own"
        );
        assert!(
            board.observations_since("app", stamp).is_none(),
            "unchanged"
        );
        board.post("app", "s3", |o| o.reads_total = 2);
        let (again, seen) = board.observations_since("app", stamp).unwrap();
        assert_eq!(seen[0].1.reads_total, 2);
        board.post_process("app", Process::default());
        let (after, _) = board.observations_since("app", again).unwrap();
        assert_eq!(read(), after);
        board.retain(|_, _| true, |_| true);
        assert!(read() > after, "a retain moves it");
        assert!(
            board.observations_since("app", after).is_some(),
            "a reload retains"
        );
        assert_eq!(board.inner.lock().unwrap()["app"].replicas.capacity(), 1);
    }
}
