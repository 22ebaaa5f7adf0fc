//! State across polls for one database: turns each probe [`Sample`] into a plain [`DbSnapshot`]
//! (monotonic counters, checkpoint-lag age and starvation, WAL resets, rates). No I/O: the poller
//! reads files (`probe`) and `/proc` and hands them in. No Prometheus or HTTP: `export` renders.

pub mod counter;
pub mod groups;
pub mod lag;
pub mod pins;
pub mod rate;
pub mod rebuild;
pub mod replication;
mod snapshot;
pub mod starvation;
mod wal;
pub mod write_lock;

pub use snapshot::{
    DbSnapshot, Declared, PinnedBy, ReplicaSnapshot, Sustained, WalSnapshot, WriteLockSnapshot,
    Writer,
};

use crate::drill::DrillRecord;
use crate::format::db_header;
use crate::litestream::board::Observation;
use crate::litestream::metrics::Process;
use crate::litestream::position::Position;
use crate::probe::locks::Holder;
use crate::probe::process::Role;
use crate::probe::{ProbeError, Sample};
use counter::{Continuity, Source, TxCounter};
use rate::RateWindow;
use replication::CommitHistory;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use write_lock::WriteLockStats;

/// SQLite's default `wal_autocheckpoint`, in pages: a checkpoint is due once this many frames
/// wait (see [`starvation`]).
pub const DEFAULT_AUTOCHECKPOINT: u32 = 1000;

/// Window of the live write rate shown on the landing page and by the demo.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// Window of the rates that thresholds judge; the Prometheus rules use the same (`rate(...[5m])`).
pub const SUSTAINED_WINDOW: Duration = Duration::from_secs(300);

/// When a poll ran: the monotonic instant clocks are measured on, and the wall time published.
#[derive(Debug, Clone, Copy)]
pub struct PollTime {
    pub instant: Instant,
    /// Seconds since the Unix epoch.
    pub unix: f64,
}

/// What was seen of a database's replication away from its files, gathered by the poller for
/// [`Monitor::observe_replicas`]: the latest read of each replica, by name; Litestream's own
/// figures; what the restore drills found.
#[derive(Debug, Default)]
pub struct Replication {
    /// What the board holds of each replica; `None` when nothing changed since the last poll.
    pub observations: Option<Vec<(String, Observation)>>,
    pub process: Option<Process>,
    pub drill: Option<std::sync::Arc<DrillRecord>>,
}

/// Counters published with every snapshot, kept here so that a poll that finds the database
/// down publishes them unchanged.
#[derive(Debug, Default)]
struct Totals {
    wal_resets: u64,
    wal_written_bytes: u64,
    /// Failed probes by name.
    poll_errors: BTreeMap<&'static str, u64>,
}

impl Totals {
    fn count_error(&mut self, e: &ProbeError) {
        *self.poll_errors.entry(e.probe).or_insert(0) += 1;
    }
}

/// What the processes seen holding the write lock are, from the last naming of holders.
#[derive(Debug, Default)]
struct WriterRoles {
    writers: Vec<Writer>,
    application_writers: u64,
    /// Per role, when a process of that role was last seen holding the write lock (Unix s).
    last_held_at: BTreeMap<Role, f64>,
}

/// What the last poll published that the next one needs: whether the database was readable,
/// its write rate (for the lock sampling schedule), and the figures a poll that cannot read
/// them repeats (the WAL's when the wal-index is torn, the write lock's while down).
#[derive(Debug, Default)]
struct Last {
    up: bool,
    error: Option<String>,
    /// The header's SQLite version number and its text, made once until it changes.
    writer_version: Option<(u32, std::sync::Arc<str>)>,
    write_transactions_per_second: Option<f64>,
    wal: Option<WalSnapshot>,
    write_lock: Option<WriteLockSnapshot>,
}

/// Watches one database: the state that turns samples into snapshots.
///
/// The published snapshot is built afresh at every poll from the state kept here, so nothing a
/// poll must remember (totals, clocks, the last figures a torn poll repeats) lives in it.
pub struct Monitor {
    /// Shared with every snapshot it publishes.
    name: std::sync::Arc<str>,
    path: std::sync::Arc<Path>,
    declared: Declared,
    /// The application's `wal_autocheckpoint`: a checkpoint is due past this many frames.
    autocheckpoint: u32,
    tx: TxCounter,
    rate: RateWindow,
    sustained_tx: RateWindow,
    sustained_lock: RateWindow,
    totals: Totals,
    wal: wal::WalState,
    write_lock: WriteLockStats,
    roles: WriterRoles,
    /// The replicas as last observed, and Litestream's own figures.
    replicas: Vec<ReplicaSnapshot>,
    /// The same as the snapshots publish them: shared by every poll's snapshot until one of
    /// them changes (a fleet's idle tenants copy no replica a poll).
    published: std::sync::Arc<[ReplicaSnapshot]>,
    litestream_process: Option<std::sync::Arc<crate::litestream::metrics::Process>>,
    /// Commits seen, for the replication lag; only kept for replicated databases.
    commits: Option<CommitHistory>,
    last: Last,
}

impl Monitor {
    pub fn new(name: &str, path: &Path, declared: Declared) -> Self {
        Monitor {
            name: name.into(),
            path: path.into(),
            declared,
            autocheckpoint: DEFAULT_AUTOCHECKPOINT,
            tx: TxCounter::default(),
            rate: RateWindow::new(RATE_WINDOW),
            sustained_tx: RateWindow::new(SUSTAINED_WINDOW),
            sustained_lock: RateWindow::new(SUSTAINED_WINDOW),
            totals: Totals::default(),
            wal: wal::WalState::default(),
            write_lock: WriteLockStats::default(),
            roles: WriterRoles::default(),
            replicas: Vec::new(),
            published: Default::default(),
            litestream_process: None,
            commits: None,
            last: Last {
                error: Some("not polled yet".into()),
                ..Last::default()
            },
        }
    }

    /// Sets the application's `wal_autocheckpoint` (pages), which says when a checkpoint is due.
    pub fn with_autocheckpoint(mut self, pages: u32) -> Self {
        self.autocheckpoint = pages;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the last poll found the database readable, and if not why.
    pub fn last_state(&self) -> (bool, Option<&str>) {
        (self.last.up, self.last.error.as_deref())
    }

    /// Takes new declared facts and replicas after a config reload, keeping every counter.
    pub fn reconfigure(mut self, declared: Declared, replicas: &[(String, String)]) -> Self {
        self.declared = declared;
        if self.replicas_are(replicas) {
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
        self.replicas = replicas
            .iter()
            .map(|(name, kind)| ReplicaSnapshot {
                replica: name.as_str().into(),
                kind: kind.as_str().into(),
                error: Some("not read yet".into()),
                ..ReplicaSnapshot::default()
            })
            .collect();
        self.published = self.replicas.as_slice().into();
        self
    }

    /// Turns one poll's sample into the snapshot to publish. `sample` is what the probe read:
    /// an `Err` means the database itself was unreadable (`up == false` with the reason and
    /// an error count). `poll_duration_seconds` is left for the caller, who timed the I/O.
    pub fn apply(&mut self, sample: Result<Sample, ProbeError>, at: PollTime) -> DbSnapshot {
        let mut s = DbSnapshot::new(self.name.clone(), self.path.clone(), self.declared);
        s.polled_at = at.unix;
        s.files_read_at = at.unix;
        match sample {
            Ok(sample) => self.apply_sample(&mut s, sample, at),
            Err(e) => self.apply_down(&mut s, e, at.instant),
        }
        s.write_transactions_total = self.tx.total();
        s.wal_resets_total = self.totals.wal_resets;
        s.wal_written_bytes_total = self.totals.wal_written_bytes;
        s.poll_errors_total = self.totals.poll_errors.clone();
        s.litestream = self.published.clone();
        s.litestream_process = self.litestream_process.clone();
        self.last.up = s.up;
        self.last.error = s.error.clone();
        self.last.write_transactions_per_second = s.write_transactions_per_second;
        self.last.wal = s.wal.clone();
        self.last.write_lock = s.write_lock.clone();
        s
    }

    /// The snapshot `last` again at `at`, for a database whose files nobody has written since
    /// it was taken (see `poller::quiet`): what moves with time alone is brought up to `at` (the
    /// rates, the longest write-lock hold of the last minute, the checkpoint lag's age); the
    /// rest stands. The caller refreshes the free space and the replication lag.
    pub fn repeat(&mut self, last: &DbSnapshot, at: PollTime) -> DbSnapshot {
        let mut s = last.clone();
        s.polled_at = at.unix;
        self.observe_write_rates(&mut s, at.instant);
        if s.write_lock.is_some() {
            s.write_lock = Some(self.aged_write_lock(at.instant));
            self.observe_lock_utilisation(&mut s, at.instant);
        }
        // Frames waiting were dated by the wal-index path, the only one that leaves any.
        if let Some(w) = s.wal.as_mut().filter(|w| w.checkpoint_lag_frames > Some(0)) {
            w.checkpoint_lag_seconds = Some(self.wal.lag.age(at.instant).as_secs_f64());
        }
        self.last.write_transactions_per_second = s.write_transactions_per_second;
        s
    }

    fn apply_down(&mut self, s: &mut DbSnapshot, e: ProbeError, now: Instant) {
        self.totals.count_error(&e);
        // Readers and checkpoints go unwatched meanwhile; the counter waits where it was.
        self.wal.went_down();
        s.up = false;
        s.error = Some(e.to_string());
        // Nobody is seen holding the lock of a file that cannot be read (a deleted tenant's
        // last writer must not go on holding it for ever, nor page as a long transaction),
        // and the writers of the last minute leave it as it passes: a frozen copy kept
        // SQLiteMultipleWriters firing on a deleted database (seen in a walkthrough).
        if self.last.write_lock.is_some() {
            self.write_lock.sample(now, None);
            s.write_lock = Some(self.aged_write_lock(now));
        }
    }

    fn apply_sample(&mut self, s: &mut DbSnapshot, sample: Sample, at: PollTime) {
        for e in &sample.errors {
            self.totals.count_error(e);
        }
        let h = &sample.header;
        if sample.db_replaced {
            self.wal.db_replaced();
        }
        s.up = true;
        s.error = sample.errors.first().map(|e| e.to_string());
        s.journal_mode = Some(h.journal);
        let n = h.sqlite_version_number;
        let version = match &self.last.writer_version {
            Some((seen, text)) if *seen == n => text.clone(),
            _ => std::sync::Arc::from(db_header::version_string(n)),
        };
        self.last.writer_version = Some((n, version.clone()));
        s.last_writer_version = Some(version);
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
                self.wal.mark = None;
                let continuity = if sample.db_replaced {
                    Continuity::Unrelated
                } else {
                    Continuity::Continues
                };
                self.tx
                    .observe(Source::ChangeCounter, h.change_counter, continuity);
            }
            Some(ws) => self.apply_wal(s, ws, sample.db_replaced, at),
        }
        if let (Some(c), Some(t)) = (&mut self.commits, self.tx.total()) {
            c.observe(at.unix, t);
        }
        self.observe_write_rates(s, at.instant);

        match &sample.write_lock {
            Ok(h) => self.write_lock.sample(at.instant, h.map(|h| h.pid)),
            Err(e) => self.totals.count_error(e),
        }
        s.write_lock = Some(self.write_lock_snapshot(at.instant));
        self.observe_lock_utilisation(s, at.instant);
    }

    /// The write rates, live and sustained, of the total so far at `now`.
    fn observe_write_rates(&mut self, s: &mut DbSnapshot, now: Instant) {
        let total = self.tx.total().map(|t| t as f64);
        s.write_transactions_per_second = total.and_then(|t| self.rate.observe(now, t));
        s.sustained.write_transactions_per_second =
            total.and_then(|t| self.sustained_tx.observe(now, t));
        s.sustained.window_seconds = s
            .sustained
            .write_transactions_per_second
            .map(|_| self.sustained_tx.covered(now));
    }

    /// The writer's sustained utilisation, from the time the lock was seen held by `now`.
    fn observe_lock_utilisation(&mut self, s: &mut DbSnapshot, now: Instant) {
        s.sustained.write_lock_utilisation = self
            .sustained_lock
            .observe(now, self.write_lock.held_seconds_total())
            .map(|u| u.min(1.0));
    }

    /// The write lock brought up to `now` with no new look at it: holds leave the last
    /// minute's window, and with them the writers named at the last full poll.
    fn aged_write_lock(&mut self, now: Instant) -> WriteLockSnapshot {
        self.write_lock.expire(now);
        let mut wl = self.write_lock_snapshot(now);
        wl.writers.retain(|w| wl.writer_pids.contains(&w.pid));
        wl.application_writers = wl
            .writers
            .iter()
            .filter(|w| w.role.is_application())
            .count() as u64;
        wl
    }

    fn write_lock_snapshot(&self, now: Instant) -> WriteLockSnapshot {
        let wl = &self.write_lock;
        let holder = wl.holder(now);
        WriteLockSnapshot {
            held_seconds_total: wl.held_seconds_total(),
            longest_hold_seconds: wl.longest_hold(now).as_secs_f64(),
            writer_pids: wl.writer_pids(),
            holder_pid: holder.map(|(pid, _)| pid),
            holder_held_seconds: holder.map(|(_, d)| d.as_secs_f64()),
            // Roles come from `name_roles`; until then, the last cycle's.
            writers: self.roles.writers.clone(),
            application_writers: self.roles.application_writers,
            last_held_at: self.roles.last_held_at.clone(),
        }
    }

    /// Records a sample of who holds the write lock, taken between polls (see
    /// [`Self::wants_fast_lock_sampling`]).
    pub fn observe_write_lock(&mut self, now: Instant, holder: Result<Option<Holder>, ProbeError>) {
        match holder {
            Ok(h) => self.write_lock.sample(now, h.map(|h| h.pid)),
            Err(e) => self.totals.count_error(&e),
        }
    }

    /// A database that is writing (its lock seen held in the last 5 s, or at least one commit a
    /// second) deserves lock samples between polls; one written now and then is sampled only at
    /// each poll, which keeps 1,000 mostly idle databases cheap. What slips through is short
    /// transactions on a database that commits less than once a second.
    pub fn wants_fast_lock_sampling(&self, now: Instant) -> bool {
        self.last.up
            && (self.write_lock.active_within(now, Duration::from_secs(5))
                || self
                    .last
                    .write_transactions_per_second
                    .is_some_and(|r| r >= 1.0))
    }

    /// Gives the writers and the pinning reader their roles, and keeps when each role last held
    /// the write lock. `role_of` says what a pid is (the poller reads `/proc`). Call after
    /// [`Self::apply`].
    pub fn name_roles(
        &mut self,
        s: &mut DbSnapshot,
        role_of: &mut dyn FnMut(i32) -> Role,
        now: PollTime,
    ) {
        if let Some(wl) = &mut s.write_lock {
            self.roles.writers = wl
                .writer_pids
                .iter()
                .map(|&pid| Writer {
                    pid,
                    role: role_of(pid),
                })
                .collect();
            self.roles.application_writers = self
                .roles
                .writers
                .iter()
                .filter(|w| w.role.is_application())
                .count() as u64;
            for (pid, at) in self.write_lock.last_seen() {
                let role = role_of(pid);
                let t = now.unix - now.instant.saturating_duration_since(at).as_secs_f64();
                let e = self.roles.last_held_at.entry(role).or_insert(t);
                *e = e.max(t);
            }
            wl.writers = self.roles.writers.clone();
            wl.application_writers = self.roles.application_writers;
            wl.last_held_at = self.roles.last_held_at.clone();
            self.last.write_lock = Some(wl.clone());
        }
        if let Some(p) = s.wal.as_mut().and_then(|w| w.pinned_by.as_mut()) {
            p.role = p.pid.map(&mut *role_of);
        }
    }

    /// Whether it watches exactly `replicas` (name, type), in order.
    pub fn replicas_are(&self, replicas: &[(String, String)]) -> bool {
        let ours = self.replicas.iter().map(|r| (&*r.replica, &*r.kind));
        ours.eq(replicas.iter().map(|(n, k)| (n.as_str(), k.as_str())))
    }

    /// The names of the replicas whose observations [`Self::observe_replicas`] takes.
    pub fn replica_names(&self) -> impl Iterator<Item = &str> {
        self.replicas.iter().map(|r| &*r.replica)
    }

    /// Takes what was `seen` of the replicas (nothing, when the board holds nothing new) and
    /// computes each one's lag against the commits seen so far, brought up to this poll.
    /// Call after [`Self::apply`].
    pub fn observe_replicas(&mut self, s: &mut DbSnapshot, seen: Replication) {
        s.restore_drill = seen.drill;
        let Some(commits) = &mut self.commits else {
            return;
        };
        let mut changed = false;
        if let Some(observations) = seen.observations {
            self.litestream_process = seen.process.map(std::sync::Arc::new);
            let process_txid = self.litestream_process.as_ref().and_then(|p| p.txid);
            take_observations(&mut self.replicas, observations, process_txid);
            changed = true;
        }
        let now = s.polled_at;
        let live = self.wal.mark;
        let mut oldest: Option<f64> = None;
        for r in self.replicas.iter_mut().filter(|r| r.observed) {
            // Never read (or empty): every commit seen counts as not replicated.
            let mut at = r.replicated_at.unwrap_or(0.0);
            // The replica's newest file was made where the WAL stood at this poll's (or the
            // last full poll's) read: it holds every commit seen so far, whatever the clocks
            // say. Exact, where the two clocks only bound it (the drills use the same rule).
            if r.wal.is_some() && r.wal == live {
                at = at.max(now);
            }
            // A commit Litestream read locally and did not upload has waited at least since it
            // read it: what a fresh start (or check's short sample) knows in one look.
            let local_wait = r.unreplicated_since.map_or(0.0, |t| (now - t).max(0.0));
            let lag =
                (r.read || r.replicated_at.is_some()).then(|| commits.lag(at, now).max(local_wait));
            changed |= r.lag_seconds != lag;
            r.lag_seconds = lag;
            oldest = Some(oldest.map_or(at, |o: f64| o.min(at)));
        }
        if let Some(oldest) = oldest {
            commits.forget_before(oldest);
        }
        if changed {
            self.published = self.replicas.as_slice().into();
        }
        s.litestream = self.published.clone();
        s.litestream_process = self.litestream_process.clone();
    }
}

/// Each replica's latest observation, from the board (those not read yet are left as they are).
fn take_observations(
    replicas: &mut [ReplicaSnapshot],
    mut observations: Vec<(String, Observation)>,
    process_txid: Option<u64>,
) {
    for r in replicas {
        let Some(i) = observations.iter().position(|(n, _)| **n == *r.replica) else {
            continue;
        };
        let (_, o) = observations.swap_remove(i);
        if *r.kind != *o.kind {
            r.kind = o.kind.into();
        }
        r.observed = true;
        // Litestream's metrics stand in for its local files when those cannot be read.
        r.local = o.local.or(process_txid.map(|txid| Position::V5 { txid }));
        r.local_error = o.local_error;
        r.position = o.replica;
        r.replicated_at = o.replicated_at;
        r.wal = o.replica_wal;
        r.unreplicated_since = o.unreplicated_since;
        r.read = o.read_at.is_some();
        r.errors_total = o.errors_total;
        r.reads_total = o.reads_total;
        r.chain = o.chain;
        r.local_state = o.local_state;
        r.storage = o.storage;
        r.error = o.error.or_else(|| {
            r.position
                .is_none()
                .then(|| "the replica is empty: nothing replicated at its path yet".to_string())
        });
        r.up = r.error.is_none();
    }
}

#[cfg(test)]
mod tests;
