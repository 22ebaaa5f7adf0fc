//! What a poll publishes about one database: plain data, shared by every output (metrics, the
//! rules, the status page, `check`). Built by [`super::Monitor`]; holds no state across polls.

use super::pins;
use crate::format::db_header::JournalKind;
use crate::litestream::position::Position;
use crate::probe::filesystem::FsStat;
use crate::probe::process::Role;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

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

/// Rates over [`super::SUSTAINED_WINDOW`] (or since watching began, when that is shorter).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Sustained {
    pub write_transactions_per_second: Option<f64>,
    /// Fraction of the time the write lock was held.
    pub write_lock_utilisation: Option<f64>,
    /// How many seconds the write rate's window covers (the utilisation's begins at the same
    /// first poll): less than the window's span while the database has been watched for less,
    /// so that a page says "1m avg so far", not "5m avg".
    pub window_seconds: Option<f64>,
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
    /// The `replica` label (shared by every poll's snapshot, as the type is).
    pub replica: std::sync::Arc<str>,
    /// `file`, `s3`, or an unsupported type.
    pub kind: std::sync::Arc<str>,
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
    /// Whether a restore would find an unbroken run of files (v0.5's LTX files, v0.3's WAL
    /// indices): whole, or the gap said (naming the file after it); `None` until read.
    pub chain: Option<crate::litestream::chain::Verdict>,
    /// What the replica holds level by level (shared with the board and every later
    /// snapshot until the next read of the replica: a fleet's polls copy no levels).
    pub storage: Option<std::sync::Arc<crate::litestream::storage::Storage>>,
    /// What Litestream keeps on local disk for the database (the same for each replica).
    pub local_state: Option<std::sync::Arc<crate::litestream::local_state::LocalState>>,
    /// Reads of the replica (on S3, a LIST and a ranged GET each).
    pub reads_total: u64,
    pub errors_total: u64,
    /// When Litestream read the first commit it holds locally and the replica lacks: the lag
    /// is at least the time since (brought up to each poll).
    #[serde(skip)]
    pub unreplicated_since: Option<f64>,
    /// Whether the replica was ever read successfully (its lag is known, if only as "all of
    /// it").
    #[serde(skip)]
    pub read: bool,
    /// Where the live WAL stood when Litestream made the replica's newest file (v0.5, a
    /// level-0 file): when the live WAL still stands there, the replica holds every commit.
    #[serde(skip)]
    pub wal: Option<crate::format::litestream::WalMark>,
}

/// Everything known about one database after a poll. Plain data, shared by every output.
#[derive(Debug, Clone, Serialize)]
pub struct DbSnapshot {
    /// Shared by every snapshot of the database (a fleet's polls copy no name or path).
    pub name: std::sync::Arc<str>,
    pub path: std::sync::Arc<Path>,
    pub up: bool,
    /// Why the database is down, or the last probe that failed while it is up.
    pub error: Option<String>,
    pub journal_mode: Option<JournalKind>,
    /// `normal` or `exclusive` (WAL mode only).
    pub locking_mode: Option<&'static str>,
    /// SQLite version that last wrote the file (header offset 96).
    pub last_writer_version: Option<std::sync::Arc<str>>,
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
    /// Litestream replicas, when configured (shared by every poll's snapshot until one of them
    /// changes: a fleet's polls copy none).
    pub litestream: std::sync::Arc<[ReplicaSnapshot]>,
    /// Every process holding one of the database's locks, with its roles (from /proc/locks).
    pub processes: Vec<crate::probe::who::Holder>,
    /// What Litestream's own metrics endpoint says, when litestream.yml sets `addr:` (shared
    /// by every poll's snapshot until it changes, as the drills' record is).
    pub litestream_process: Option<std::sync::Arc<crate::litestream::metrics::Process>>,
    /// What its restore drills found, when they are configured.
    pub restore_drill: Option<std::sync::Arc<crate::drill::DrillRecord>>,
    pub filesystem: Option<FsStat>,
    pub poll_duration_seconds: f64,
    /// Failed probes by name since start.
    pub poll_errors_total: BTreeMap<&'static str, u64>,
    /// When this poll ran, in seconds since the Unix epoch.
    pub polled_at: f64,
    /// When the files were last read in full, in seconds since the Unix epoch: earlier than
    /// `polled_at` while a settled database's figures are repeated (see `poller/quiet.rs`).
    pub files_read_at: f64,
}

impl DbSnapshot {
    /// What a restore drill compares its copy with: the size and the first replica's lag.
    pub fn live_figures(&self) -> crate::drill::restore::Live {
        crate::drill::restore::Live {
            size: self.database_size_bytes,
            lag: self.litestream.first().and_then(|r| r.lag_seconds),
        }
    }

    /// A database not polled yet.
    pub fn new(
        name: impl Into<std::sync::Arc<str>>,
        path: impl Into<std::sync::Arc<Path>>,
        declared: Declared,
    ) -> Self {
        DbSnapshot {
            name: name.into(),
            path: path.into(),
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
            litestream: Default::default(),
            litestream_process: None,
            restore_drill: None,
            processes: Vec::new(),
            filesystem: None,
            poll_duration_seconds: 0.0,
            poll_errors_total: BTreeMap::new(),
            polled_at: 0.0,
            files_read_at: 0.0,
        }
    }
}
