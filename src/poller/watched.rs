//! One watched database: the probe that reads its files and the monitor that remembers what
//! they said. This is where a poll's I/O (the files, `/proc/locks`, who a pid is) meets the
//! pure monitor.

use super::changes::Changes;
use super::quiet::{self, Before, Settled};
use crate::drill::Records;
use crate::format::db_header::JournalKind;
use crate::litestream::board::Board;
use crate::monitor::{DbSnapshot, Monitor, PollTime, Replication};
use crate::probe::filesystem::{self, Filesystems};
use crate::probe::process::Processes;
use crate::probe::{descriptors, who, DbProbe};
use crate::target::Target;
use std::time::Instant;

pub(super) struct Watched {
    probe: DbProbe,
    pub(super) monitor: Monitor,
    /// The last full poll, while the database is settled (see `quiet`).
    settled: Option<Settled>,
    /// Whether the last full poll found the database on a filesystem where inotify sees every
    /// write (see `filesystem::local_writes_only`).
    events_trusted: bool,
    /// Whether the last poll found it busy (`Monitor::wants_fast_lock_sampling`): the poller
    /// samples the write lock of these between polls. A settled database is not.
    pub(super) busy: bool,
    /// The board's stamp of this database when a poll last took its observations (0: never).
    board_stamp: u64,
    /// The board's stamp of this database as it moves (`Board::stamp_of`), once taken.
    board_signal: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

impl Watched {
    pub(super) fn new(t: &Target) -> Self {
        Watched {
            probe: DbProbe::new(&t.path),
            monitor: Monitor::new(&t.name, &t.path, t.declared)
                .with_replicas(&t.replicas())
                .with_autocheckpoint(t.wal_autocheckpoint),
            settled: None,
            events_trusted: false,
            busy: false,
            board_stamp: 0,
            board_signal: None,
        }
    }

    /// What a reload matches it by: the same name and the same path are the same database.
    pub(super) fn key(&self) -> (String, std::path::PathBuf) {
        (
            self.monitor.name().to_string(),
            self.monitor.path().to_path_buf(),
        )
    }

    /// The same database under a reloaded config: files, counters and clocks are kept, and
    /// so is its settled state if what it publishes of the config (declared facts, replicas)
    /// did not change: discovery retargets the poller for every tenant added.
    pub(super) fn reconfigure(self, t: &Target) -> Self {
        let replicas = t.replicas();
        let same_replicas = self.monitor.replicas_are(&replicas);
        let settled = self
            .settled
            .filter(|s| s.snapshot.declared == t.declared && same_replicas);
        Watched {
            probe: self.probe,
            monitor: self
                .monitor
                .reconfigure(t.declared, &replicas)
                .with_autocheckpoint(t.wal_autocheckpoint),
            settled,
            events_trusted: self.events_trusted,
            busy: self.busy,
            // The replicas may have changed: the next poll takes the board's observations,
            // and the stamp again (the reload's retain may have dropped its entry).
            board_stamp: 0,
            board_signal: None,
        }
    }

    /// Reads the files in full at the next poll.
    pub(super) fn unsettle(&mut self) {
        self.settled = None;
    }

    /// Samples who holds the write lock, if the database is busy enough to deserve it between
    /// polls.
    pub(super) fn sample_write_lock(&mut self, now: Instant) {
        if self.monitor.wants_fast_lock_sampling(now) {
            self.monitor
                .observe_write_lock(now, self.probe.write_lock_holder());
        }
    }

    /// Polls the database once. Never fails: a broken database is `up == false` with the
    /// reason and an error count.
    pub(super) fn poll(
        &mut self,
        fs: &mut Filesystems,
        locks: &who::Locks,
        processes: &mut Processes,
        seen: (&Board, &Records),
        changes: &mut Changes,
    ) -> DbSnapshot {
        let at = now();
        if let Some(s) = self.unchanged(fs, locks, seen, changes, at) {
            return s;
        }
        let busy = self.monitor.wants_fast_lock_sampling(at.instant);
        // Taken before the files are read: a write during the poll shows at the next look.
        let before = (!busy).then(|| {
            Before::reading(
                changes,
                self.events_trusted,
                self.probe.path(),
                self.probe.wal_path(),
            )
        });
        let (was_up, was_error) = {
            let (up, error) = self.monitor.last_state();
            (up, error.map(str::to_string))
        };
        let sample = self.probe.sample(fs);
        let mut s = self.monitor.apply(sample, at);
        s.poll_duration_seconds = at.instant.elapsed().as_secs_f64();
        // Readable again after an error; a database readable from the start was logged as
        // "watching" (a fleet's first poll would be ten thousand lines).
        if s.up && !was_up && was_error.is_some() {
            tracing::info!(db = %s.name, path = %s.path.display(), "database readable");
        } else if !s.up && (was_up || was_error != s.error) {
            tracing::warn!(db = %s.name, path = %s.path.display(), error = s.error.as_deref().unwrap_or(""), "database unreadable");
        }
        s.processes = self
            .holders(locks, &s)
            .into_iter()
            .map(|(pid, roles)| who::Holder {
                identity: processes.identify(pid).clone(),
                roles,
            })
            .collect();
        self.monitor
            .name_roles(&mut s, &mut |pid| processes.identify(pid).role, at);
        let replication = self.replication(seen);
        self.monitor.observe_replicas(&mut s, replication);
        // Descriptors are kept where they pay: when they run short, a quiet database gives
        // its back and its next poll opens them again.
        let busy = self.monitor.wants_fast_lock_sampling(at.instant);
        self.busy = busy;
        if descriptors::should_release(!busy) {
            self.probe.release();
            descriptors::note_release();
        }
        self.events_trusted = s
            .filesystem
            .as_ref()
            .is_some_and(|f| filesystem::local_writes_only(&f.fs_type));
        self.settled = before
            .zip(quiet::is_settled(&s, busy))
            .and_then(|(b, replicators)| Some((b.seen_by(self.events_trusted)?, replicators)))
            .map(|(seen_by, replicators)| Settled {
                snapshot: without_replicas(&mut s),
                seen_by,
                at: at.instant,
                replicators,
            });
        if self.settled.is_none() && self.monitor.replica_names().next().is_some() {
            // Litestream may have something new: its watchers look again.
            seen.0.touch(self.monitor.name(), at.instant);
        }
        s
    }

    /// The last snapshot again, if the database is settled and nothing changed since (no
    /// write to its files, no transaction), brought up to now (`Monitor::repeat`, the free
    /// space, the replication lag).
    fn unchanged(
        &mut self,
        fs: &mut Filesystems,
        locks: &who::Locks,
        seen: (&Board, &Records),
        changes: &Changes,
        at: PollTime,
    ) -> Option<DbSnapshot> {
        let settled = self.settled.as_ref()?;
        let (db, wal) = (self.probe.path(), self.probe.wal_path());
        // One F_GETLK says whether anyone is in a transaction, but not who: with a replicator
        // reading, /proc/locks (read every few seconds) tells its read mark from others'.
        let in_transaction = || {
            quiet::in_transaction(
                locks,
                settled.snapshot.journal_mode,
                self.probe.lock_files(),
                &settled.replicators,
            )
        };
        let fast = settled
            .replicators
            .is_empty()
            .then(|| self.probe.in_transaction())
            .flatten();
        if at.instant.duration_since(settled.at) >= quiet::FULL_POLL_EVERY
            || fast.unwrap_or_else(in_transaction)
        {
            self.settled = None;
            return None;
        }
        if settled.seen_by.written(changes, db, wal) {
            // Maybe a rename over the file, or of it: its path is looked up again at once.
            self.probe.recheck_paths();
            self.settled = None;
            return None;
        }
        let mut s = self.monitor.repeat(&settled.snapshot, at);
        if let Some(f) = self.probe.filesystem(fs) {
            s.filesystem = Some(f);
        }
        s.poll_duration_seconds = at.instant.elapsed().as_secs_f64();
        let replication = self.replication(seen);
        self.monitor.observe_replicas(&mut s, replication);
        Some(s)
    }

    /// What the Litestream watchers and the drills last posted of this database; the board's
    /// observations only when they changed since the last poll took them.
    fn replication(&mut self, (board, drills): (&Board, &Records)) -> Replication {
        let db = self.monitor.name();
        if self.monitor.replica_names().next().is_none() {
            // Not replicated, so neither watched nor drilled: nothing to read (a fleet's tenants
            // pay no lock for it).
            return Replication::default();
        }
        let signal = self.board_signal.get_or_insert_with(|| board.stamp_of(db));
        let moved = signal.load(std::sync::atomic::Ordering::Acquire) != self.board_stamp;
        let fresh = moved
            .then(|| board.observations_since(db, self.board_stamp))
            .flatten();
        let observations = fresh.map(|(stamp, o)| {
            self.board_stamp = stamp;
            o
        });
        Replication {
            process: observations.as_ref().and_then(|_| board.process(db)),
            observations,
            drill: drills.get(db),
        }
    }

    /// Every process holding one of the database's locks, with what it holds: those
    /// `/proc/locks` shows on the `-shm` (WAL mode) or the database file (rollback mode), and
    /// first, as pid 0, what `F_GETLK` saw held by a process in another pid namespace, which
    /// `/proc/locks` does not list.
    fn holders(&self, locks: &who::Locks, s: &DbSnapshot) -> Vec<(i32, Vec<String>)> {
        let mut holders = match (s.journal_mode, self.probe.lock_files()) {
            (Some(JournalKind::Wal), (Some(shm), _)) => who::wal_roles(locks, shm),
            (Some(JournalKind::Rollback), (_, Some(db))) => who::rollback_roles(locks, db),
            _ => Vec::new(),
        };
        let mut unseen = Vec::new();
        if s.write_lock.as_ref().and_then(|w| w.holder_pid) == Some(0) {
            unseen.push("writer".to_string());
        }
        for slot in s.wal.iter().flat_map(|w| &w.reader_slots) {
            if slot.pid == Some(0) {
                unseen.push(format!("reader {}", slot.slot));
            }
        }
        if !unseen.is_empty() {
            holders.insert(0, (0, unseen));
        }
        holders
    }
}

/// When a poll runs: read here, at the edge, so that the monitor reads no clock.
fn now() -> PollTime {
    PollTime {
        instant: std::time::Instant::now(),
        unix: crate::units::epoch_seconds(std::time::SystemTime::now()),
    }
}

/// A copy of `s` without its replicas, for a settled database to repeat: the monitor holds
/// them and puts them in each poll's snapshot (a copy in the settled one would be copied and
/// dropped again every poll).
fn without_replicas(s: &mut DbSnapshot) -> DbSnapshot {
    let replicas = std::mem::take(&mut s.litestream);
    let copy = s.clone();
    s.litestream = replicas;
    copy
}
