//! Every threshold sqlite-ops knows, defined once: how to read its value from a snapshot (for
//! the engine and `check`) and as PromQL (for `sqlite-ops rules`), so the two cannot drift apart.
//! Defaults come from the production guide (../shared/DESIGN.md, "Thresholds").

use crate::monitor::write_lock::WINDOW as WRITE_LOCK_WINDOW;
use crate::monitor::{DbSnapshot, ReplicaSnapshot, SUSTAINED_WINDOW};
pub use crate::units::Unit;
use serde::Serialize;

/// Alert severity, as the `severity` label.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Planning: a fact to act on in weeks (declared team size, a database past 50 GB).
    Info,
    /// Act within hours: something degrades.
    Warning,
    /// Act now: data or availability is at risk.
    Critical,
}

impl Severity {
    /// Mildest first; `severity as usize` indexes it.
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Why a threshold exists: the database has outgrown SQLite, or something is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    Migration,
    Health,
}

/// What one alert of a rule is about: a database, or the filesystem that holds databases (ten
/// thousand tenants on one volume are one disk alert, not ten thousand).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Labelled `db`: the database's name.
    Database,
    /// Labelled `mountpoint`: where the filesystem is mounted. Its threshold is the global one.
    Filesystem,
}

impl Scope {
    /// The label naming an alert's subject.
    pub fn label(self) -> &'static str {
        match self {
            Scope::Database => "db",
            Scope::Filesystem => "mountpoint",
        }
    }
}

/// How soon after the daemon starts a rule's value means again what it meant before it stopped.
/// An alert carried across a restart is held, not resolved, until then (`Engine::restore`):
/// a clock that restarted from zero or a window not yet filled is no evidence of recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settles {
    /// Read by the first polls (sizes, declared facts, whether a replica answers).
    AtOnce,
    /// A rate or a count over this window.
    Over(std::time::Duration),
    /// A duration measured from zero again: it reaches the threshold only that long after start.
    AfterThreshold,
}

/// Which side of the threshold is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Above,
    Below,
}

impl Op {
    pub fn breached(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Above => value > threshold,
            Op::Below => value < threshold,
        }
    }

    pub fn promql(self) -> &'static str {
        match self {
            Op::Above => ">",
            Op::Below => "<",
        }
    }
}

/// One threshold. Text templates take `{db}`, `{value}`, `{threshold}`, `{for}`, `{holder}`
/// (the role of the reader holding checkpoints back, the `holder` label in PromQL),
/// `{mountpoint}` (the filesystem of a [`Scope::Filesystem`] rule), `{gap}` (where a
/// replica's chain of LTX files breaks) and `{level}` (the compacted level furthest behind).
#[derive(Debug)]
pub struct RuleDef {
    /// The alert name (CamelCase, prefix `SQLite`), also the runbook anchor in lower case.
    pub alert: &'static str,
    /// The key under `thresholds:` in config.
    pub key: &'static str,
    pub group: Group,
    pub scope: Scope,
    pub unit: Unit,
    pub op: Op,
    pub info: Option<f64>,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    /// How long the condition must hold before the alert fires, in seconds.
    pub for_secs: u64,
    /// How soon after a start the value is measured again as it was before the stop.
    pub settles: Settles,
    /// The value in PromQL; `{SEL}` is replaced by a label selector (or nothing).
    pub promql: &'static str,
    /// The same value read from a snapshot; `None` when not measured (as an absent series).
    pub value: fn(&DbSnapshot) -> Option<f64>,
    /// What is measured, in a few words (`database size`).
    pub label: &'static str,
    pub summary: &'static str,
    pub description: &'static str,
    /// One line saying what to do.
    pub fix: &'static str,
}

impl RuleDef {
    /// The built-in threshold of one level.
    pub fn default_level(&self, severity: Severity) -> Option<f64> {
        match severity {
            Severity::Info => self.info,
            Severity::Warning => self.warning,
            Severity::Critical => self.critical,
        }
    }
}

const GB: f64 = 1e9;
const MB: f64 = 1e6;

fn up(s: &DbSnapshot) -> Option<f64> {
    Some(if s.up { 1.0 } else { 0.0 })
}
fn write_rate(s: &DbSnapshot) -> Option<f64> {
    s.sustained.write_transactions_per_second
}
fn database_size(s: &DbSnapshot) -> Option<f64> {
    s.database_size_bytes.map(|v| v as f64)
}
fn backend_engineers(s: &DbSnapshot) -> Option<f64> {
    s.declared.backend_engineers.map(f64::from)
}
fn regions(s: &DbSnapshot) -> Option<f64> {
    s.declared.regions.map(f64::from)
}
fn wal_size(s: &DbSnapshot) -> Option<f64> {
    s.wal.as_ref().map(|w| w.size_bytes as f64)
}
fn checkpoint_starved(s: &DbSnapshot) -> Option<f64> {
    s.wal.as_ref().and_then(|w| w.checkpoint_starved_seconds)
}
fn snapshot_pinned(s: &DbSnapshot) -> Option<f64> {
    s.wal.as_ref().and_then(|w| w.snapshot_pinned_seconds)
}
fn filesystem_free(s: &DbSnapshot) -> Option<f64> {
    let fs = s.filesystem.as_ref()?;
    let (free, size) = (fs.free_bytes?, fs.size_bytes?);
    (size > 0).then(|| free as f64 / size as f64)
}
fn writer_utilisation(s: &DbSnapshot) -> Option<f64> {
    s.sustained.write_lock_utilisation
}
fn write_lock_hold(s: &DbSnapshot) -> Option<f64> {
    s.write_lock.as_ref().map(|w| w.longest_hold_seconds)
}
fn replication_lag(s: &DbSnapshot) -> Option<f64> {
    s.litestream
        .iter()
        .filter_map(|r| r.lag_seconds)
        .max_by(f64::total_cmp)
}
/// 0 when any replica judged by `ok` (`None`: not judged) fails it, 1 when all pass; `None`
/// when none is judged.
fn every_replica(s: &DbSnapshot, ok: impl Fn(&ReplicaSnapshot) -> Option<bool>) -> Option<f64> {
    s.litestream
        .iter()
        .filter_map(ok)
        .map(|ok| if ok { 1.0 } else { 0.0 })
        .min_by(f64::total_cmp)
}
fn replica_up(s: &DbSnapshot) -> Option<f64> {
    every_replica(s, |r| r.observed.then_some(r.up))
}
fn drill_success(s: &DbSnapshot) -> Option<f64> {
    let last = s.restore_drill.as_ref()?.last.as_ref()?;
    Some(if last.success { 1.0 } else { 0.0 })
}
fn chain_intact(s: &DbSnapshot) -> Option<f64> {
    every_replica(s, |r| r.chain.as_ref().map(|c| c.is_whole()))
}
/// The most intervals any level (the snapshots, or the compacted ones) of any replica has let
/// its oldest missing change wait.
/// The level furthest behind, in its own intervals, among the snapshot level or the others.
fn level_behind(s: &DbSnapshot, snapshots: bool) -> Option<(&str, f64)> {
    s.litestream
        .iter()
        .filter_map(|r| r.storage.as_ref())
        .flat_map(|st| &st.levels)
        .filter(|l| l.is_snapshots() == snapshots)
        .filter_map(|l| {
            Some((
                l.level.as_ref(),
                l.lag()? / l.interval.filter(|i| *i > 0.0)?,
            ))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
}
fn compaction_behind(s: &DbSnapshot) -> Option<f64> {
    level_behind(s, false).map(|(_, behind)| behind)
}
fn snapshot_behind(s: &DbSnapshot) -> Option<f64> {
    level_behind(s, true).map(|(_, behind)| behind)
}
/// The compacted level furthest behind (`{level}` in a rule's text), as "level 2".
pub fn stalled_level(s: &DbSnapshot) -> Option<String> {
    level_behind(s, false).map(|(level, _)| format!("level {level}"))
}
fn local_overdue(s: &DbSnapshot) -> Option<f64> {
    let state = s.litestream.iter().find_map(|r| r.local_state.as_ref())?;
    Some(state.overdue_bytes as f64)
}
fn drill_stale(s: &DbSnapshot) -> Option<f64> {
    let d = s.restore_drill.as_ref()?;
    (d.interval_seconds > 0.0).then(|| d.since_success(s.polled_at) / d.interval_seconds)
}
fn restore_duration(s: &DbSnapshot) -> Option<f64> {
    let last = s.restore_drill.as_ref()?.last.as_ref()?;
    last.success.then_some(last.duration_seconds)
}
fn writer_processes(s: &DbSnapshot) -> Option<f64> {
    s.write_lock.as_ref().map(|w| w.application_writers as f64)
}

/// Every rule, in the order they are evaluated and printed.
pub const RULES: &[RuleDef] = &[
    RuleDef {
        alert: "SQLiteDatabaseDown",
        key: "database_down",
        group: Group::Health,
        scope: Scope::Database,
        unit: Unit::Count,
        op: Op::Below,
        info: None,
        warning: None,
        critical: Some(1.0),
        for_secs: 60,
        settles: Settles::AtOnce,
        promql: "sqlite_up{SEL}",
        value: up,
        label: "database readable",
        summary: "SQLite database {db} cannot be read",
        description: "sqlite-ops has not been able to read the database file or header of {db} for {for}. The file, its directory or its permissions changed, or it is not an SQLite database. The error is on /api/v1/status and counted in sqlite_ops_poll_errors_total.",
        fix: "Check that the path exists, is an SQLite database, and that sqlite-ops can read it and its directory.",
    },
    RuleDef {
        alert: "SQLiteWriteRateHigh",
        key: "write_tx_per_sec",
        group: Group::Migration,
        scope: Scope::Database,
        unit: Unit::PerSecond,
        op: Op::Above,
        info: None,
        warning: Some(500.0),
        critical: None,
        for_secs: 600,
        settles: Settles::Over(SUSTAINED_WINDOW),
        promql: "rate(sqlite_write_transactions_total{SEL}[WINDOW])",
        value: write_rate,
        label: "write transactions per second",
        summary: "SQLite database {db} sustains more write transactions than one writer should: plan the move to Postgres",
        description: "{db} commits {value} write transactions (rate over WINDOW), above {threshold} for {for}. SQLite serializes writers; at this rate lock contention is measurable and growth has no headroom.",
        fix: "Batch writes into fewer transactions, and plan the move to Postgres (docs/runbooks.md).",
    },
    RuleDef {
        alert: "SQLiteDatabaseLarge",
        key: "database_size",
        group: Group::Migration,
        scope: Scope::Database,
        unit: Unit::Bytes,
        op: Op::Above,
        info: Some(50.0 * GB),
        warning: Some(100.0 * GB),
        critical: None,
        for_secs: 900,
        settles: Settles::AtOnce,
        promql: "sqlite_database_size_bytes{SEL}",
        value: database_size,
        label: "database size",
        summary: "SQLite database {db} is larger than {threshold}: plan the move to Postgres",
        description: "The database file of {db} is {value}, above {threshold}. Backups, restores, VACUUM and schema changes grow with the file; past this size the production guide moves to Postgres.",
        fix: "Archive or delete old rows and VACUUM, and plan the move to Postgres (sqlite-ops migrate-check).",
    },
    RuleDef {
        alert: "SQLiteTeamOutgrown",
        key: "backend_engineers",
        group: Group::Migration,
        scope: Scope::Database,
        unit: Unit::Count,
        op: Op::Above,
        info: Some(3.0),
        warning: None,
        critical: None,
        for_secs: 900,
        settles: Settles::AtOnce,
        promql: "sqlite_declared_backend_engineers{SEL}",
        value: backend_engineers,
        label: "declared backend engineers",
        summary: "More backend engineers work on {db} than one SQLite writer suits",
        description: "The config declares {value} backend engineers for {db}, above {threshold}. Several teams shipping migrations and write paths against one single-writer database is where the production guide moves to Postgres.",
        fix: "Plan the move to Postgres, or split the data by owning team.",
    },
    RuleDef {
        alert: "SQLiteMultiRegion",
        key: "regions",
        group: Group::Migration,
        scope: Scope::Database,
        unit: Unit::Count,
        op: Op::Above,
        info: Some(1.0),
        warning: None,
        critical: None,
        for_secs: 900,
        settles: Settles::AtOnce,
        promql: "sqlite_declared_regions{SEL}",
        value: regions,
        label: "declared regions",
        summary: "{db} is declared to serve several regions; SQLite is single-node",
        description: "The config declares {value} regions for {db}, above {threshold}. SQLite has one writer on one machine: writes from other regions cross the network, and failover is a restore.",
        fix: "Serve one region from SQLite, or move to a database with replication across regions.",
    },
    RuleDef {
        alert: "SQLiteReplicationLag",
        key: "replication_lag",
        group: Group::Health,
        scope: Scope::Database,
        unit: Unit::Seconds,
        op: Op::Above,
        info: None,
        warning: Some(10.0),
        critical: Some(60.0),
        for_secs: 60,
        settles: Settles::AfterThreshold,
        promql: "max by (db) (sqlite_litestream_replication_lag_seconds{SEL})",
        value: replication_lag,
        label: "Litestream replication lag",
        summary: "Litestream replication of {db} is {value} behind",
        description: "The oldest commit to {db} that its Litestream replica does not hold has waited {value}, above {threshold}. Writes go on and the replica does not advance: Litestream stopped, or cannot reach its replica. A restore now would lose those commits.",
        fix: "Check that Litestream runs (systemctl status litestream) and its log for sync errors; check the bucket and its credentials.",
    },
    RuleDef {
        alert: "SQLiteReplicaUnreachable",
        key: "replica_down",
        group: Group::Health,
        scope: Scope::Database,
        unit: Unit::Count,
        op: Op::Below,
        info: None,
        warning: Some(1.0),
        critical: None,
        for_secs: 60,
        settles: Settles::AtOnce,
        promql: "min by (db) (sqlite_litestream_up{SEL})",
        value: replica_up,
        label: "Litestream replica readable",
        summary: "A Litestream replica of {db} cannot be read, or is empty",
        description: "sqlite-ops could not read a Litestream replica of {db} for {for}, or found nothing replicated there: the bucket or directory is unreachable, the credentials are wrong, or the replica's path is not where Litestream writes. Replication lag cannot be measured meanwhile.",
        fix: "See the replica's error on /api/v1/status; check litestream.yml's replica path, endpoint and credentials.",
    },
    RuleDef {
        alert: "SQLiteWalLarge",
        key: "wal_size",
        group: Group::Health,
        scope: Scope::Database,
        unit: Unit::Bytes,
        op: Op::Above,
        info: None,
        warning: Some(GB),
        critical: None,
        for_secs: 300,
        settles: Settles::AtOnce,
        promql: "sqlite_wal_size_bytes{SEL}",
        value: wal_size,
        label: "WAL size",
        summary: "The WAL of {db} has grown past {threshold}",
        description: "The -wal file of {db} is {value}, above {threshold}. Checkpoints are not resetting it: a long reader, a checkpoint-starved writer or wal_autocheckpoint=0. Reads slow down as the WAL grows.",
        fix: "Find the long reader (sqlite_wal_readers) or run PRAGMA wal_checkpoint(TRUNCATE) from the application.",
    },
    RuleDef {
        alert: "SQLiteCheckpointStarved",
        key: "checkpoint_lag_age",
        group: Group::Health,
        scope: Scope::Database,
        unit: Unit::Seconds,
        op: Op::Above,
        info: None,
        warning: Some(300.0),
        critical: None,
        for_secs: 60,
        settles: Settles::AfterThreshold,
        promql: "sqlite_checkpoint_starved_seconds{SEL}",
        value: checkpoint_starved,
        label: "checkpoint starvation",
        summary: "Checkpoints of {db} have made no progress for {value} while writes go on",
        description: "More frames than wal_autocheckpoint have waited in the WAL of {db} for {value} without a checkpoint making progress while writes went on, above {threshold}. The WAL grows without bound until one can: a reader pins an old snapshot, the checkpointer stopped (Litestream frozen, wal_autocheckpoint=0), or it cannot keep up. Frames waiting on an idle database are not counted.",
        fix: "End long read transactions (pinned_by in /api/v1/status) and keep wal_autocheckpoint on; if Litestream holds the WAL, check that it runs.",
    },
    RuleDef {
        alert: "SQLiteSnapshotPinned",
        key: "snapshot_age",
        group: Group::Health,
        scope: Scope::Database,
        unit: Unit::Seconds,
        op: Op::Above,
        info: None,
        warning: Some(300.0),
        critical: None,
        for_secs: 60,
        settles: Settles::AfterThreshold,
        promql: "max by (db) (sqlite_snapshot_pinned_seconds{SEL})",
        value: snapshot_pinned,
        label: "reader holding checkpoints back",
        summary: "A reader of {db} ({holder}) has pinned its snapshot for {reader_open}, holding a due checkpoint back for {value}",
        description: "A read transaction of a process with role {holder} has kept its snapshot of {db} for {reader_open} while newer commits came, and has stopped a due checkpoint from copying past it for {value} while writes went on, above {threshold}: the WAL grows without bound until it ends. The second clock starts when a checkpoint falls due (more frames waiting than wal_autocheckpoint), which at a few commits a second takes minutes. Litestream's own guard on an idle or healthy database is not counted; a frozen Litestream is.",
        fix: "End the long read transaction (pinned_by in /api/v1/status names the pid); if the holder is litestream, Litestream is stuck: check its log and restart it.",
    },
    RuleDef {
        alert: "SQLiteFilesystemLowSpace",
        key: "filesystem_free",
        group: Group::Health,
        scope: Scope::Filesystem,
        unit: Unit::Ratio,
        op: Op::Below,
        info: None,
        warning: Some(0.10),
        critical: Some(0.05),
        for_secs: 600,
        settles: Settles::AtOnce,
        promql: "sqlite_filesystem_free_bytes{SEL} / sqlite_filesystem_size_bytes{SEL}",
        value: filesystem_free,
        label: "filesystem free",
        summary: "The filesystem at {mountpoint} has {value} free",
        description: "The filesystem at {mountpoint}, which holds watched SQLite databases, has {value} of its space free, below {threshold}. A full disk fails every write, and a checkpoint or VACUUM needs room to run. One alert per filesystem, however many databases it holds.",
        fix: "Free or add disk space before writes and checkpoints fail.",
    },
    RuleDef {
        alert: "SQLiteWriterSaturated",
        key: "writer_utilisation",
        group: Group::Migration,
        scope: Scope::Database,
        unit: Unit::Ratio,
        op: Op::Above,
        info: None,
        warning: Some(0.5),
        critical: None,
        for_secs: 600,
        settles: Settles::Over(SUSTAINED_WINDOW),
        promql: "rate(sqlite_write_lock_held_seconds_total{SEL}[WINDOW])",
        value: writer_utilisation,
        label: "writer utilisation",
        summary: "The write lock of {db} is held {value} of the time: writers queue",
        description: "SQLite's write lock on {db} was held {value} of the time over WINDOW, above {threshold} for {for}. Writers wait on each other; latency grows before throughput does.",
        fix: "Shorten write transactions and batch small writes; beyond that, plan the move to Postgres.",
    },
    RuleDef {
        alert: "SQLiteLongWriteTransaction",
        key: "write_lock_hold",
        group: Group::Health,
        scope: Scope::Database,
        unit: Unit::Seconds,
        op: Op::Above,
        info: None,
        warning: Some(5.0),
        critical: None,
        for_secs: 30,
        settles: Settles::AfterThreshold,
        promql: "sqlite_write_lock_longest_hold_seconds{SEL}",
        value: write_lock_hold,
        label: "longest write lock hold",
        summary: "A write transaction on {db} held the lock for {value}",
        description: "One process held the write lock of {db} for {value} within the last minute, above {threshold} (the guide's busy_timeout): every other writer got SQLITE_BUSY meanwhile. Keep write transactions short and do no I/O inside them.",
        fix: "Keep write transactions short: no network calls or user waits between BEGIN and COMMIT.",
    },
    RuleDef {
        alert: "SQLiteMultipleWriters",
        key: "writer_processes",
        group: Group::Health,
        scope: Scope::Database,
        unit: Unit::Count,
        op: Op::Above,
        info: None,
        warning: Some(1.0),
        critical: None,
        for_secs: 30,
        settles: Settles::Over(WRITE_LOCK_WINDOW),
        promql: "sqlite_writer_processes{SEL}",
        value: writer_processes,
        label: "writer processes",
        summary: "{value} application processes wrote to {db} within a minute",
        description: "{value} distinct application processes held the write lock of {db} within the last minute, above {threshold} (Litestream and configured replicators are not counted). The guide routes every mutation through one write connection; several writers contend and get SQLITE_BUSY.",
        fix: "Route every mutation through one write connection in one process.",
    },
    RuleDef {
        alert: "SQLiteRestoreDrillFailed",
        key: "restore_drill_failed",
        group: Group::Health,
        scope: Scope::Database,
        unit: Unit::Count,
        op: Op::Below,
        info: None,
        warning: None,
        critical: Some(1.0),
        for_secs: 60,
        settles: Settles::AtOnce,
        promql: "min by (db) (sqlite_restore_drill_success{SEL})",
        value: drill_success,
        label: "last restore drill succeeded",
        summary: "The last restore drill of {db} failed: its backup does not restore",
        description: "sqlite-ops restored {db} from its Litestream replica with litestream restore and the copy failed: Litestream's own error, the integrity check, or rows missing against the live database (the reason is on /api/v1/status and in the log). A restore in a disaster would fail the same way.",
        fix: "Run litestream restore by hand into a scratch folder, repair the replica (or start a new one), and run sqlite-ops check --restore-drill.",
    },
    RuleDef {
        alert: "SQLiteReplicaChainBroken",
        key: "replica_chain",
        group: Group::Health,
        scope: Scope::Database,
        unit: Unit::Count,
        op: Op::Below,
        info: None,
        warning: None,
        critical: Some(1.0),
        // A listing taken while Litestream compacts may miss a file for a moment.
        for_secs: 60,
        settles: Settles::AtOnce,
        promql: "min by (db) (sqlite_litestream_chain_intact{SEL})",
        value: chain_intact,
        label: "Litestream replica's LTX chain unbroken",
        summary: "The Litestream replica of {db} would not restore: its chain of LTX files is broken",
        description: "A restore of {db} from its Litestream replica would stop partway: {gap}. litestream restore refuses such a replica (\"non-contiguous ltx files\" from 0.5, \"missing WAL index\" from 0.3, or a file it cannot decode), so the backup does not restore until the file is back whole or a newer snapshot starts past it. Found from the replica's listing and its files' headers, between restore drills.",
        fix: "Put the missing file back if a copy exists; otherwise have Litestream write a new snapshot past the gap (restart it against a fresh replica path), then run sqlite-ops check --restore-drill.",
    },
    RuleDef {
        alert: "SQLiteLitestreamLocalStateGrowing",
        key: "litestream_local_state",
        group: Group::Health,
        scope: Scope::Database,
        unit: Unit::Bytes,
        op: Op::Above,
        info: None,
        warning: Some(100.0 * MB),
        critical: None,
        for_secs: 600,
        settles: Settles::AtOnce,
        promql: "max by (db) (sqlite_litestream_local_overdue_bytes{SEL})",
        value: local_overdue,
        label: "Litestream's local files kept past their time",
        summary: "Litestream keeps {value} on local disk for {db} that it should have removed",
        description: "Litestream's local state of {db} holds {value} of change files it should have removed, above {threshold}: it went on writing newer ones for more than twice l0-retention + the level-1 interval + the check interval after they could go. While this lasts, the local state grows with every commit until the disk is full (Litestream #784, #1104, #1197): uploads fail, compaction stalls, or retention does not run.",
        fix: "Read Litestream's log for upload, compaction or retention errors (sqlite_litestream_up and the replication lag say whether uploads get through); fix the replica, then watch sqlite_litestream_local_overdue_bytes fall.",
    },
    RuleDef {
        alert: "SQLiteLitestreamCompactionStalled",
        key: "litestream_compaction",
        group: Group::Health,
        scope: Scope::Database,
        unit: Unit::Count,
        op: Op::Above,
        info: None,
        warning: Some(3.0),
        critical: None,
        for_secs: 600,
        // Counted from the first read that saw a level behind: from zero again after a start.
        settles: Settles::AfterThreshold,
        promql: "max by (db) (sqlite_litestream_compaction_lag_seconds{SEL} / sqlite_litestream_compaction_interval_seconds{SEL})",
        value: compaction_behind,
        label: "compaction intervals the oldest uncompacted change has waited",
        summary: "Litestream has not compacted {level} of the replica of {db} for {value} of its intervals",
        description: "The oldest change that {level} of the Litestream replica of {db} lacks has waited {value} of that level's intervals in the level below, above {threshold}: compaction has stalled (Litestream's log says \"compaction failed\"). Restores read ever more small files, and level-0 files, kept until level 1 holds them, pile up in the replica and on local disk.",
        fix: "Read Litestream's log for compaction errors (permissions or space where the replica keeps that level: ltx/<level>/ in a folder).",
    },
    RuleDef {
        alert: "SQLiteLitestreamSnapshotStale",
        key: "litestream_snapshot",
        group: Group::Health,
        scope: Scope::Database,
        unit: Unit::Count,
        op: Op::Above,
        info: None,
        warning: Some(2.0),
        critical: None,
        for_secs: 600,
        settles: Settles::AtOnce,
        promql: "max by (db) (sqlite_litestream_snapshot_lag_seconds{SEL} / sqlite_litestream_snapshot_interval_seconds{SEL})",
        value: snapshot_behind,
        label: "snapshot intervals the oldest change no snapshot holds has waited",
        summary: "The newest Litestream snapshot of {db} lacks changes {value} snapshot intervals old",
        description: "The oldest change to {db} that no Litestream snapshot holds has waited {value} snapshot intervals in its replica, above {threshold}: snapshots are not being written (Litestream's log says \"compaction failed\" at level 9). A restore replays every file since the newest snapshot, slower the longer this lasts, and retention keeps everything since.",
        fix: "Read Litestream's log for snapshot errors (space or permissions where the replica keeps level 9); litestream ltx -level 9 lists the snapshots.",
    },
    RuleDef {
        alert: "SQLiteRestoreDrillStale",
        key: "restore_drill_stale",
        group: Group::Health,
        scope: Scope::Database,
        unit: Unit::Count,
        op: Op::Above,
        info: None,
        warning: Some(2.0),
        critical: None,
        for_secs: 300,
        settles: Settles::AfterThreshold,
        promql: "max by (db) (sqlite_restore_drill_stale_seconds{SEL} / sqlite_restore_drill_interval_seconds{SEL})",
        value: drill_stale,
        label: "drill intervals without a successful restore",
        summary: "No restore drill of {db} has succeeded for {value} drill intervals",
        description: "No restore drill of {db} has succeeded for {value} of its intervals, above {threshold}: drills fail, or are refused (no room in the scratch folder, no usable Litestream binary; sqlite_restore_drill_skipped and the log say why). Nobody knows whether the backup restores.",
        fix: "See the drill's refusal or error on /api/v1/status; give it room and a Litestream 0.3 or 0.5 binary, or repair the replica.",
    },
    RuleDef {
        alert: "SQLiteRestoreSlow",
        key: "restore_duration",
        group: Group::Migration,
        scope: Scope::Database,
        unit: Unit::Seconds,
        op: Op::Above,
        info: None,
        warning: Some(3600.0),
        critical: None,
        for_secs: 900,
        settles: Settles::AtOnce,
        promql: "max by (db) (sqlite_restore_drill_duration_seconds{SEL} and sqlite_restore_drill_success{SEL} == 1)",
        value: restore_duration,
        label: "restore time",
        summary: "Restoring {db} from its backup takes {value}: plan the move to Postgres",
        description: "The last successful restore drill of {db} took {value}, restore and checks, above {threshold}. This is the production guide's real reason behind its size limit: a restore this long is an outage this long.",
        fix: "Shrink the database (archive old rows, VACUUM), or plan the move to Postgres (sqlite-ops migrate-check).",
    },
];

/// The rule with this config key.
pub fn by_key(key: &str) -> Option<&'static RuleDef> {
    RULES.iter().find(|r| r.key == key)
}

/// The label naming the subject of an alert called `alert` (`db` unless its rule says
/// otherwise).
pub fn subject_label(alert: &str) -> &'static str {
    RULES
        .iter()
        .find(|r| r.alert == alert)
        .map_or("db", |r| r.scope.label())
}

/// The window of the sustained rates, as PromQL writes it (`5m`).
pub fn window() -> String {
    humantime::format_duration(SUSTAINED_WINDOW).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_well_formed() {
        let mut keys: Vec<_> = RULES.iter().map(|r| r.key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), RULES.len(), "keys are unique");
        for r in RULES {
            assert!(r.alert.starts_with("SQLite"), "{}", r.alert);
            assert!(
                Severity::ALL.iter().any(|&s| r.default_level(s).is_some()),
                "{}",
                r.alert
            );
            assert!(r.promql.contains("{SEL}"), "{} takes a selector", r.alert);
            if let (Some(w), Some(c)) = (r.warning, r.critical) {
                assert!(
                    r.op.breached(c, w),
                    "{}: critical is beyond warning",
                    r.alert
                );
            }
        }
    }
}
