//! State across polls for one database: turns each probe [`Sample`] into a plain
//! [`DbSnapshot`] (monotonic counters, checkpoint-lag age and starvation, WAL resets, rates). Knows nothing
//! about Prometheus or HTTP; `export` renders snapshots.

pub mod counter;
pub mod lag;
pub mod pins;
pub mod rate;
pub mod replication;
pub mod starvation;
pub mod write_lock;

use crate::format::db_header::{self, JournalKind};
use crate::format::shm::IndexHeader;
use crate::format::wal::FRAME_HEADER_SIZE;
use crate::litestream::board::Board;
use crate::litestream::position::Position;
use crate::probe::file::FileStatus;
use crate::probe::filesystem::{Filesystems, FsStat};
use crate::probe::locks::LockKind;
use crate::probe::process::{Processes, Role};
use crate::probe::{DbProbe, ProbeError, Sample, WalSample};
use counter::{Continuity, Source, TxCounter};
use lag::LagClock;
use rate::RateWindow;
use replication::CommitHistory;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use write_lock::WriteLockStats;

/// SQLite's default `wal_autocheckpoint`, in pages: a checkpoint is due once this many frames
/// wait (see [`starvation`]).
pub const DEFAULT_AUTOCHECKPOINT: u32 = 1000;

/// Window of the live write rate shown on the landing page and by the demo.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// Window of the rates that thresholds judge; the Prometheus rules use the same (`rate(...[5m])`).
pub const SUSTAINED_WINDOW: Duration = Duration::from_secs(300);

/// Facts about a database that cannot be measured, declared in config (`team:`): they drive two
/// of the migrate-to-Postgres signals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declared {
    /// Backend engineers shipping code against this database.
    pub backend_engineers: Option<u32>,
    /// Regions the application must serve writes from.
    pub regions: Option<u32>,
}

/// Rates over [`SUSTAINED_WINDOW`] (or since watching began, when that is shorter).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Sustained {
    pub write_transactions_per_second: Option<f64>,
    /// Fraction of the time the write lock was held.
    pub write_lock_utilisation: Option<f64>,
}

/// WAL-mode figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WalSnapshot {
    pub size_bytes: u64,
    /// `mxFrame`: valid frames in the WAL.
    pub frames: u64,
    /// `nBackfill`: frames already copied back into the database. `None` in exclusive locking
    /// mode, where the wal-index lives in the writer's private memory.
    pub checkpointed_frames: Option<u64>,
    pub checkpoint_lag_frames: Option<u64>,
    pub checkpoint_lag_bytes: Option<u64>,
    pub checkpoint_lag_seconds: Option<f64>,
    /// Reader slots held by a read transaction (`F_GETLK` on the `-shm` read-lock bytes).
    pub readers: u64,
    /// Read marks of the held reader slots: the `mxFrame` each pinned snapshot was taken at.
    pub reader_marks: Vec<u32>,
    /// The held reader slots: mark, a holder's pid, and how long each has pinned the WAL.
    pub reader_slots: Vec<pins::ReaderSlot>,
    /// How long the oldest pinned snapshot has kept checkpoints from the end of the WAL; 0
    /// when none does. `None` without a wal-index (exclusive locking mode).
    pub oldest_snapshot_age_seconds: Option<f64>,
    /// How long a due checkpoint (more frames waiting than `wal_autocheckpoint`) has made no
    /// progress while writes went on; 0 when none is due or the database is idle.
    pub checkpoint_starved_seconds: Option<f64>,
    /// How long the reader that holds checkpoints back longest has stopped a due checkpoint
    /// while writes went on; 0 when no reader does.
    pub snapshot_pinned_seconds: Option<f64>,
    /// That reader: its slot, pid and role.
    pub pinned_by: Option<PinnedBy>,
    /// When a checkpoint was last seen making progress (frames copied back, or the WAL
    /// restarted), in seconds since the Unix epoch.
    pub last_checkpoint_at: Option<f64>,
}

impl WalSnapshot {
    /// The role of the reader holding checkpoints back: `none` when none does, `unknown` before
    /// its holder was identified.
    pub fn pinned_holder(&self) -> &'static str {
        match &self.pinned_by {
            None => "none",
            Some(p) => p.role.map_or("unknown", |r| r.as_str()),
        }
    }
}

/// The reader that holds checkpoints back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PinnedBy {
    pub slot: usize,
    pub pid: Option<i32>,
    /// Its role, once the holders of the cycle have been identified.
    pub role: Option<Role>,
}

/// Who holds the write lock and for how long, from frequent `F_GETLK` samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WriteLockSnapshot {
    /// Seconds the write lock was seen held since watching began: `rate()` is the utilisation.
    pub held_seconds_total: f64,
    /// Longest hold within the last minute, including one in progress.
    pub longest_hold_seconds: f64,
    /// Distinct processes seen holding the write lock within the last minute.
    pub writer_pids: Vec<i32>,
    /// The same processes with their roles.
    pub writers: Vec<Writer>,
    /// Application processes among them (Litestream and configured replicators write their
    /// own bookkeeping and are not counted): single-writer discipline.
    pub application_writers: u64,
    /// Per role, when a process of that role was last seen holding the write lock (Unix
    /// seconds): Litestream takes it for each of its checkpoints.
    pub last_held_at: BTreeMap<Role, f64>,
    /// The process holding it at the last poll, and for how long it has.
    pub holder_pid: Option<i32>,
    pub holder_held_seconds: Option<f64>,
}

/// A process seen holding the write lock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Writer {
    pub pid: i32,
    pub role: Role,
}

/// One Litestream replica of the database, as last read, with the lag computed against the
/// commits this monitor has seen.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplicaSnapshot {
    /// The `replica` label.
    pub replica: String,
    /// `file`, `s3`, or an unsupported type.
    pub kind: String,
    /// Whether the replica has been read at all since watching began: until then its state is
    /// unknown, neither up nor down (no `sqlite_litestream_up`, no alert).
    pub observed: bool,
    /// Whether the last read of the replica succeeded and found something.
    pub up: bool,
    pub error: Option<String>,
    /// What Litestream has written locally, and what the replica holds.
    pub local: Option<Position>,
    /// Why Litestream's local state could not be read (the lag is measured without it).
    pub local_error: Option<String>,
    pub position: Option<Position>,
    /// Every commit before this time (seconds since the epoch) is in the replica.
    pub replicated_at: Option<f64>,
    /// How long the oldest commit the replica does not hold has waited; 0 when it holds all.
    pub lag_seconds: Option<f64>,
    pub errors_total: u64,
}

/// Everything known about one database after a poll. Plain data, shared by every output.
#[derive(Debug, Clone, Serialize)]
pub struct DbSnapshot {
    pub name: String,
    pub path: PathBuf,
    pub up: bool,
    /// Why the database is down, or the last probe that failed while it is up.
    pub error: Option<String>,
    pub journal_mode: Option<JournalKind>,
    /// `normal` or `exclusive` (WAL mode only).
    pub locking_mode: Option<&'static str>,
    /// SQLite version that last wrote the file (header offset 96).
    pub last_writer_version: Option<String>,
    pub text_encoding: Option<&'static str>,
    /// `none`, `full` or `incremental`.
    pub auto_vacuum: Option<&'static str>,
    pub page_size_bytes: Option<u32>,
    pub pages: Option<u64>,
    pub freelist_pages: Option<u64>,
    pub database_size_bytes: Option<u64>,
    pub wal: Option<WalSnapshot>,
    pub write_transactions_total: Option<u64>,
    /// Write transactions per second over the last few seconds.
    pub write_transactions_per_second: Option<f64>,
    pub sustained: Sustained,
    pub declared: Declared,
    pub wal_resets_total: u64,
    pub wal_written_bytes_total: u64,
    /// `None` until the database was first readable.
    pub write_lock: Option<WriteLockSnapshot>,
    /// Litestream replicas, when configured.
    pub litestream: Vec<ReplicaSnapshot>,
    /// Every process holding one of the database's locks, with its roles (from /proc/locks).
    pub processes: Vec<crate::probe::who::Holder>,
    /// What Litestream's own metrics endpoint says, when litestream.yml sets `addr:`.
    pub litestream_process: Option<crate::litestream::metrics::Process>,
    pub filesystem: Option<FsStat>,
    pub poll_duration_seconds: f64,
    /// Failed probes by name since start.
    pub poll_errors_total: BTreeMap<&'static str, u64>,
    /// When this poll ran, in seconds since the Unix epoch.
    pub polled_at: f64,
}

impl DbSnapshot {
    /// A database not polled yet.
    pub fn new(name: &str, path: &Path, declared: Declared) -> Self {
        DbSnapshot {
            name: name.to_string(),
            path: path.to_path_buf(),
            up: false,
            error: Some("not polled yet".into()),
            journal_mode: None,
            locking_mode: None,
            last_writer_version: None,
            text_encoding: None,
            auto_vacuum: None,
            page_size_bytes: None,
            pages: None,
            freelist_pages: None,
            database_size_bytes: None,
            wal: None,
            write_transactions_total: None,
            write_transactions_per_second: None,
            sustained: Sustained::default(),
            declared,
            wal_resets_total: 0,
            wal_written_bytes_total: 0,
            write_lock: None,
            litestream: Vec::new(),
            litestream_process: None,
            processes: Vec::new(),
            filesystem: None,
            poll_duration_seconds: 0.0,
            poll_errors_total: BTreeMap::new(),
            polled_at: 0.0,
        }
    }
}

/// The WAL as the previous poll left it.
#[derive(Debug, Clone, Copy)]
struct WalPosition {
    salt: [u32; 2],
    frames: u64,
}

/// Watches one database: its probe and the state that turns samples into snapshots.
pub struct Monitor {
    probe: DbProbe,
    snapshot: DbSnapshot,
    tx: TxCounter,
    rate: RateWindow,
    sustained_tx: RateWindow,
    sustained_lock: RateWindow,
    lag: LagClock,
    last_index: Option<IndexHeader>,
    /// Some signal said the wal-index will be rebuilt (no connection left, `-shm` truncated,
    /// WAL gone): the next changed header restarted `iChange` from 0.
    rebuild_pending: bool,
    wal_position: Option<WalPosition>,
    write_lock: WriteLockStats,
    pins: pins::PinClock,
    /// Commits seen, for the replication lag; only kept for replicated databases.
    commits: Option<CommitHistory>,
    starvation: starvation::StarvationClock,
    /// The application's `wal_autocheckpoint`: a checkpoint is due past this many frames.
    autocheckpoint: u32,
    /// When a checkpoint last made progress, in Unix seconds.
    last_checkpoint_at: Option<f64>,
}

impl Monitor {
    pub fn new(name: &str, path: &Path, declared: Declared) -> Self {
        Monitor {
            probe: DbProbe::new(path),
            snapshot: DbSnapshot::new(name, path, declared),
            tx: TxCounter::default(),
            rate: RateWindow::new(RATE_WINDOW),
            sustained_tx: RateWindow::new(SUSTAINED_WINDOW),
            sustained_lock: RateWindow::new(SUSTAINED_WINDOW),
            lag: LagClock::default(),
            last_index: None,
            rebuild_pending: false,
            wal_position: None,
            write_lock: WriteLockStats::default(),
            pins: pins::PinClock::default(),
            commits: None,
            starvation: starvation::StarvationClock::default(),
            autocheckpoint: DEFAULT_AUTOCHECKPOINT,
            last_checkpoint_at: None,
        }
    }

    /// Sets the application's `wal_autocheckpoint` (pages), which says when a checkpoint is due.
    pub fn with_autocheckpoint(mut self, pages: u32) -> Self {
        self.autocheckpoint = pages;
        self
    }

    /// Names every process holding one of this database's locks, from the machine's
    /// `/proc/locks` read once per cycle, and gives the writers and the pinning reader their
    /// roles. Holders `F_GETLK` reports as pid 0 (outside this pid namespace, absent from
    /// `/proc/locks`) are listed as one such holder. Call after [`Self::poll`].
    pub fn observe_holders(&mut self, locks: &crate::probe::who::Locks, processes: &mut Processes) {
        use crate::probe::who;
        let (shm, db) = self.probe.lock_files();
        let mut roles = match (self.snapshot.journal_mode, shm, db) {
            (Some(JournalKind::Wal), Some(shm), _) => who::wal_roles(locks, shm),
            (Some(JournalKind::Rollback), _, Some(db)) => who::rollback_roles(locks, db),
            _ => Vec::new(),
        };
        let unseen = self.unseen_holder_roles();
        if !unseen.is_empty() {
            roles.insert(0, (0, unseen));
        }
        self.snapshot.processes = roles
            .into_iter()
            .map(|(pid, roles)| who::Holder {
                identity: processes.identify(pid).clone(),
                roles,
            })
            .collect();
        let wall = self.snapshot.polled_at;
        let now = Instant::now();
        if let Some(wl) = &mut self.snapshot.write_lock {
            wl.writers = wl
                .writer_pids
                .iter()
                .map(|&pid| Writer {
                    pid,
                    role: processes.identify(pid).role,
                })
                .collect();
            wl.application_writers = wl
                .writers
                .iter()
                .filter(|w| w.role.is_application())
                .count() as u64;
            for (pid, at) in self.write_lock.last_seen() {
                let role = processes.identify(pid).role;
                let t = wall - now.saturating_duration_since(at).as_secs_f64();
                let e = wl.last_held_at.entry(role).or_insert(t);
                *e = e.max(t);
            }
        }
        if let Some(p) = self
            .snapshot
            .wal
            .as_mut()
            .and_then(|w| w.pinned_by.as_mut())
        {
            p.role = p.pid.map(|pid| processes.identify(pid).role);
        }
    }

    /// What `F_GETLK` saw held by pid 0 (a process in another pid namespace), which
    /// `/proc/locks` does not list.
    fn unseen_holder_roles(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.snapshot.write_lock.as_ref().and_then(|w| w.holder_pid) == Some(0) {
            out.push("writer".to_string());
        }
        for slot in self.snapshot.wal.iter().flat_map(|w| &w.reader_slots) {
            if slot.pid == Some(0) {
                out.push(format!("reader {}", slot.slot));
            }
        }
        out
    }

    /// Takes new declared facts and replicas after a config reload, keeping every counter.
    pub fn reconfigure(mut self, declared: Declared, replicas: &[(String, String)]) -> Self {
        self.snapshot.declared = declared;
        let keep = self
            .snapshot
            .litestream
            .iter()
            .map(|r| (r.replica.clone(), r.kind.clone()))
            .collect::<Vec<_>>()
            == replicas;
        if keep {
            self
        } else {
            self.with_replicas(replicas)
        }
    }

    /// Names the Litestream replicas of this database (label and type), whose observations
    /// [`Self::observe_replicas`] turns into lag.
    pub fn with_replicas(mut self, replicas: &[(String, String)]) -> Self {
        if !replicas.is_empty() {
            self.commits.get_or_insert_with(CommitHistory::default);
        } else {
            self.commits = None;
        }
        self.snapshot.litestream = replicas
            .iter()
            .map(|(name, kind)| ReplicaSnapshot {
                replica: name.clone(),
                kind: kind.clone(),
                error: Some("not read yet".into()),
                ..ReplicaSnapshot::default()
            })
            .collect();
        self
    }

    /// Reads the latest replica observations from `board` and computes each replica's lag
    /// against the commits seen so far. Call after [`Self::poll`].
    pub fn observe_replicas(&mut self, board: &Board) {
        let Some(commits) = &mut self.commits else {
            return;
        };
        let now = self.snapshot.polled_at;
        self.snapshot.litestream_process = board.process(&self.snapshot.name);
        let process_txid = self
            .snapshot
            .litestream_process
            .as_ref()
            .and_then(|p| p.txid);
        let mut oldest: Option<f64> = None;
        for r in &mut self.snapshot.litestream {
            let Some(o) = board.get(&self.snapshot.name, &r.replica) else {
                continue;
            };
            r.kind = o.kind;
            r.observed = true;
            // Litestream's metrics stand in for its local files when those cannot be read.
            r.local = o.local.or(process_txid.map(|txid| Position::V5 { txid }));
            r.local_error = o.local_error;
            r.position = o.replica;
            r.replicated_at = o.replicated_at;
            r.errors_total = o.errors_total;
            r.error = o.error.or_else(|| {
                r.position
                    .is_none()
                    .then(|| "the replica is empty: nothing replicated at its path yet".to_string())
            });
            r.up = r.error.is_none();
            // Never read (or empty): every commit seen counts as not replicated.
            let at = r.replicated_at.unwrap_or(0.0);
            r.lag_seconds =
                (o.read_at.is_some() || r.replicated_at.is_some()).then(|| commits.lag(at, now));
            oldest = Some(oldest.map_or(at, |o: f64| o.min(at)));
        }
        if let Some(oldest) = oldest {
            commits.forget_before(oldest);
        }
    }

    pub fn path(&self) -> &Path {
        self.probe.path()
    }

    /// The figures of the last poll.
    pub fn snapshot(&self) -> &DbSnapshot {
        &self.snapshot
    }

    /// Polls the database once and returns the new snapshot. Never fails: a broken database is
    /// `up == false` with the reason and an error count.
    pub fn poll(&mut self, fs: &mut Filesystems) -> &DbSnapshot {
        let started = Instant::now();
        self.snapshot.polled_at = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        match self.probe.sample(fs) {
            Ok(sample) => {
                self.apply(sample, started);
                self.sample_write_lock(started);
                let wl = &self.write_lock;
                let holder = wl.holder(started);
                let previous = self.snapshot.write_lock.take().unwrap_or_default();
                self.snapshot.write_lock = Some(WriteLockSnapshot {
                    held_seconds_total: wl.held_seconds_total(),
                    longest_hold_seconds: wl.longest_hold(started).as_secs_f64(),
                    writer_pids: wl.writer_pids(),
                    holder_pid: holder.map(|(pid, _)| pid),
                    holder_held_seconds: holder.map(|(_, d)| d.as_secs_f64()),
                    // Roles come from `observe_holders`; until then, the last cycle's.
                    ..previous
                });
                self.snapshot.sustained.write_lock_utilisation = self
                    .sustained_lock
                    .observe(started, wl.held_seconds_total())
                    .map(|u| u.min(1.0));
            }
            Err(e) => self.down(e),
        }
        self.snapshot.poll_duration_seconds = started.elapsed().as_secs_f64();
        &self.snapshot
    }

    /// Samples who holds the write lock (between polls too, see [`Self::wants_fast_lock_sampling`]).
    pub fn sample_write_lock(&mut self, now: Instant) {
        match self.probe.write_lock_holder() {
            Ok(h) => self.write_lock.sample(now, h.map(|h| h.pid)),
            Err(e) => self.count_error(&e),
        }
    }

    /// A database that is writing (its lock seen held in the last 5 s, or at least one commit a
    /// second) deserves lock samples between polls; one written now and then is sampled only at
    /// each poll, which keeps 1,000 mostly idle databases cheap. What slips through is short
    /// transactions on a database that commits less than once a second.
    pub fn wants_fast_lock_sampling(&self, now: Instant) -> bool {
        self.snapshot.up
            && (self.write_lock.active_within(now, Duration::from_secs(5))
                || self
                    .snapshot
                    .write_transactions_per_second
                    .is_some_and(|r| r >= 1.0))
    }

    fn count_error(&mut self, e: &ProbeError) {
        *self.snapshot.poll_errors_total.entry(e.probe).or_insert(0) += 1;
    }

    fn down(&mut self, e: ProbeError) {
        self.count_error(&e);
        if self.snapshot.up || self.snapshot.error.as_deref() != Some(&e.to_string()) {
            tracing::warn!(db = %self.snapshot.name, path = %self.path().display(), error = %e, "database unreadable");
        }
        // The file may come back as another file or with a rebuilt wal-index.
        self.rebuild_pending = true;
        self.pins.reset();
        self.starvation.reset();
        let s = &mut self.snapshot;
        s.up = false;
        s.error = Some(e.to_string());
        s.journal_mode = None;
        s.locking_mode = None;
        s.last_writer_version = None;
        s.text_encoding = None;
        s.auto_vacuum = None;
        s.page_size_bytes = None;
        s.pages = None;
        s.freelist_pages = None;
        s.database_size_bytes = None;
        s.wal = None;
        s.write_transactions_per_second = None;
        s.sustained = Sustained::default();
        s.filesystem = None;
    }

    fn apply(&mut self, sample: Sample, now: Instant) {
        for e in &sample.errors {
            self.count_error(e);
        }
        if !self.snapshot.up {
            tracing::info!(db = %self.snapshot.name, path = %self.path().display(), "database readable");
        }
        let h = &sample.header;
        if sample.db_replaced {
            self.lag.reset();
            self.wal_position = None;
            self.starvation.reset();
            self.last_checkpoint_at = None;
        }
        let s = &mut self.snapshot;
        s.up = true;
        s.error = sample.errors.first().map(|e| e.to_string());
        s.journal_mode = Some(h.journal);
        s.last_writer_version = Some(db_header::version_string(h.sqlite_version_number));
        s.text_encoding = Some(h.text_encoding.as_str());
        s.auto_vacuum = Some(match (h.auto_vacuum, h.incremental_vacuum) {
            (false, _) => "none",
            (true, false) => "full",
            (true, true) => "incremental",
        });
        s.page_size_bytes = Some(h.page_size);
        s.freelist_pages = Some(u64::from(h.freelist_pages));
        s.database_size_bytes = Some(sample.db_size_bytes);
        s.filesystem = sample.filesystem.clone();
        let file_pages = sample.db_size_bytes / u64::from(h.page_size);
        s.pages = Some(h.page_count.map_or(file_pages, u64::from));

        match &sample.wal {
            None => {
                s.locking_mode = None;
                s.wal = None;
                let continuity = if sample.db_replaced {
                    Continuity::Unrelated
                } else {
                    Continuity::Continues
                };
                self.tx
                    .observe(Source::ChangeCounter, h.change_counter, continuity);
            }
            Some(ws) => self.apply_wal(ws, &sample, now),
        }
        self.snapshot.write_transactions_total = self.tx.total();
        if let (Some(c), Some(t)) = (&mut self.commits, self.tx.total()) {
            c.observe(self.snapshot.polled_at, t);
        }
        let total = self.tx.total().map(|t| t as f64);
        self.snapshot.write_transactions_per_second = total.and_then(|t| self.rate.observe(now, t));
        self.snapshot.sustained.write_transactions_per_second =
            total.and_then(|t| self.sustained_tx.observe(now, t));
    }

    fn apply_wal(&mut self, ws: &WalSample, sample: &Sample, now: Instant) {
        let page_size = u64::from(sample.header.page_size);
        let frame_bytes = page_size + FRAME_HEADER_SIZE as u64;
        let wal_size = match ws.wal_file {
            FileStatus::Present { size, .. } => size,
            FileStatus::Missing => 0,
        };
        let exclusive = ws.exclusive_lock && ws.shm_in_use != Some(true);
        self.snapshot.locking_mode = Some(if exclusive { "exclusive" } else { "normal" });
        let readers: Vec<u32> = ws
            .read_locks
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_some_and(|h| h.kind == LockKind::Read))
            .map(|(i, _)| ws.index.map_or(0, |idx| idx.ckpt.read_marks[i]))
            .collect();

        // Signals that the wal-index was rebuilt since the last poll, or will be.
        let replaced = |f: FileStatus| matches!(f, FileStatus::Present { replaced: true, .. });
        let rebuilt_now = replaced(ws.wal_file) || replaced(ws.shm_file);
        // No process holding the -shm "dead man switch" means every connection closed, but only
        // while nothing writes: a header that keeps changing without it means a writer lost its
        // locks (a process closed a descriptor of the file), not a rebuild, and is not trusted.
        let index_changed = match (ws.index, self.last_index) {
            (Some(idx), Some(last)) => idx.header != last,
            _ => false,
        };
        let nobody_connected = ws.shm_in_use == Some(false) && !index_changed;
        let rebuild_coming = ws.wal_file == FileStatus::Missing
            || ws.shm_file == FileStatus::Missing
            || nobody_connected
            || ws.index_error.as_ref().is_some_and(|e| e.is_rebuild());

        let wal = if let Some(fc) = ws.frames {
            // Exclusive locking mode (or no -shm at all): count commit frames in the WAL.
            self.pins.reset();
            self.starvation.reset();
            self.tx.add_frames(fc.commits);
            self.snapshot.wal_written_bytes_total += fc.frames * frame_bytes;
            self.note_wal_position(fc.salt, fc.committed_frames);
            self.last_index = None;
            WalSnapshot {
                size_bytes: wal_size,
                frames: fc.committed_frames,
                ..WalSnapshot::default()
            }
        } else if let Some(idx) = ws.index {
            let hdr = idx.header;
            let changed = self.last_index.is_some_and(|last| last != hdr);
            let continuity = if sample.db_replaced {
                Continuity::Unrelated
            } else if rebuilt_now
                || (self.rebuild_pending && changed && ws.shm_in_use != Some(false))
            {
                // A rebuilt wal-index is held by the connection that rebuilt it. Without that,
                // a drop of the counter below its last value still reads as a restart.
                Continuity::RestartedFromZero
            } else {
                Continuity::Continues
            };
            if continuity != Continuity::Continues {
                tracing::debug!(db = %self.snapshot.name, ?continuity, rebuilt_now, pending = self.rebuild_pending, wal = ?ws.wal_file, shm = ?ws.shm_file, shm_in_use = ?ws.shm_in_use, index_error = ?ws.index_error, change = hdr.change, "wal-index continuity");
            }
            self.tx.observe(Source::WalIndex, hdr.change, continuity);
            self.rebuild_pending = (self.rebuild_pending && !changed) || rebuild_coming;
            self.last_index = Some(hdr);

            let frames = u64::from(hdr.max_frame);
            let grown = match self.wal_position {
                Some(p) if p.salt == hdr.salt => frames.saturating_sub(p.frames),
                _ if self.wal_position.is_some() => frames,
                _ => 0,
            };
            self.snapshot.wal_written_bytes_total += grown * frame_bytes;
            self.note_wal_position(hdr.salt, frames);
            if hdr.max_frame > 0 && hdr.page_count > 0 {
                self.snapshot.pages = Some(u64::from(hdr.page_count));
            }
            let held = std::array::from_fn(|i| {
                ws.read_locks[i]
                    .filter(|h| h.kind == LockKind::Read)
                    .map(|h| (idx.ckpt.read_marks[i], Some(h.pid)))
            });
            let mut reader_slots = self
                .pins
                .observe(now, &held, hdr.max_frame, idx.ckpt.backfill);
            let harm = self.starvation.observe(
                now,
                starvation::Observation {
                    salt: hdr.salt,
                    max_frame: hdr.max_frame,
                    backfill: idx.ckpt.backfill,
                    held: held.map(|h| h.map(|(mark, _)| mark)),
                },
                self.autocheckpoint,
            );
            for r in &mut reader_slots {
                r.holding_back_seconds = harm.pinned[r.slot].map_or(0.0, |d| d.as_secs_f64());
            }
            if harm.progressed {
                self.last_checkpoint_at = Some(self.snapshot.polled_at);
            }
            let worst = harm.worst_pin();
            let lag_frames = u64::from(idx.checkpoint_lag_frames());
            let age = self
                .lag
                .observe(hdr.salt, hdr.max_frame, idx.ckpt.backfill, now);
            WalSnapshot {
                size_bytes: wal_size,
                frames,
                checkpointed_frames: Some(u64::from(idx.ckpt.backfill)),
                checkpoint_lag_frames: Some(lag_frames),
                checkpoint_lag_bytes: Some(lag_frames * page_size),
                checkpoint_lag_seconds: Some(age.as_secs_f64()),
                oldest_snapshot_age_seconds: Some(pins::oldest(&reader_slots)),
                checkpoint_starved_seconds: Some(harm.starved.as_secs_f64()),
                snapshot_pinned_seconds: Some(worst.map_or(0.0, |(_, d)| d.as_secs_f64())),
                pinned_by: worst.map(|(slot, _)| PinnedBy {
                    slot,
                    pid: held[slot].and_then(|(_, pid)| pid),
                    role: None,
                }),
                last_checkpoint_at: self.last_checkpoint_at,
                reader_slots,
                readers: 0,
                reader_marks: Vec::new(),
            }
        } else if ws.index_error.is_some() {
            // Torn beyond retries: keep the last figures for this poll (the error is counted).
            self.rebuild_pending |= rebuild_coming;
            self.snapshot.wal.clone().unwrap_or_default()
        } else {
            // No -shm and no valid WAL: no connection is open and nothing waits to be copied.
            self.rebuild_pending = true;
            self.pins.reset();
            self.starvation.reset();
            WalSnapshot {
                oldest_snapshot_age_seconds: Some(0.0),
                checkpoint_starved_seconds: Some(0.0),
                snapshot_pinned_seconds: Some(0.0),
                last_checkpoint_at: self.last_checkpoint_at,
                size_bytes: wal_size,
                checkpointed_frames: Some(0),
                checkpoint_lag_frames: Some(0),
                checkpoint_lag_bytes: Some(0),
                checkpoint_lag_seconds: Some(0.0),
                ..WalSnapshot::default()
            }
        };
        self.snapshot.wal = Some(WalSnapshot {
            size_bytes: wal_size,
            readers: readers.len() as u64,
            reader_marks: readers,
            ..wal
        });
    }

    /// Counts WAL resets from the salt pair: salt-1 goes up by one per reset, so a jump of a few
    /// counts the resets that happened between two polls.
    fn note_wal_position(&mut self, salt: [u32; 2], frames: u64) {
        if let Some(prev) = self.wal_position {
            if prev.salt != salt {
                let step = salt[0].wrapping_sub(prev.salt[0]);
                self.snapshot.wal_resets_total += if (1..=1000).contains(&step) {
                    u64::from(step)
                } else {
                    1
                };
            }
        }
        self.wal_position = Some(WalPosition { salt, frames });
    }
}
