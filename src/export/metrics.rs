//! Renders snapshots as Prometheus text exposition. [`METRICS`] names every metric with its help
//! text and type: the documented contract that dashboards, rules and tests depend on.

pub use super::exposition::{BuildInfo, Exposition, PollCycles};
use crate::monitor::groups::{Group, Groups};
use crate::monitor::{DbSnapshot, WalSnapshot};
use crate::rules::catalogue::Op;
use crate::rules::{AlertState, Severity};
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// Prometheus metric type of a documented metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

/// One exported metric: name, type, labels and HELP text.
#[derive(Debug)]
pub struct MetricDef {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

const fn def(
    name: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricDef {
    MetricDef {
        name,
        kind,
        labels,
        help,
    }
}

use Kind::{Counter as C, Gauge as G};
const DB: &[&str] = &["db"];
const DB_MOUNT: &[&str] = &["db", "mountpoint"];

/// Every metric sqlite-ops exports, in exposition order.
///
/// The rules catalogue writes some of these names again in PromQL, as the dashboards do;
/// `tests/dashboards.rs` checks that every name a rule or a dashboard uses is exported.
pub const METRICS: &[MetricDef] = &[
    def("sqlite_up", G, DB, "Whether the last poll could read the database file and its header (1) or not (0)."),
    def("sqlite_info", G, &["db", "journal_mode", "locking_mode", "last_writer_version", "text_encoding", "auto_vacuum"],
        "Constant 1, labelled with the journal mode and locking mode seen from the files, the SQLite version that last wrote the database (header offset 96), its text encoding and auto_vacuum mode."),
    def("sqlite_database_size_bytes", G, DB, "Size of the main database file in bytes, from stat(2)."),
    def("sqlite_page_size_bytes", G, DB, "Database page size in bytes, from the database header."),
    def("sqlite_pages", G, DB, "Pages in the database: in WAL mode as of the last commit (wal-index nPage), otherwise from the database header."),
    def("sqlite_freelist_pages", G, DB, "Unused pages on the freelist, from the database header (in WAL mode as of the last checkpoint); VACUUM would return them."),
    def("sqlite_wal_size_bytes", G, DB, "Size of the -wal file in bytes, from stat(2); 0 when it does not exist."),
    def("sqlite_wal_frames", G, DB, "Valid frames in the WAL (wal-index mxFrame; commit frames counted in the WAL in exclusive locking mode)."),
    def("sqlite_wal_checkpointed_frames", G, DB, "WAL frames already copied back into the database by checkpoints (wal-index nBackfill)."),
    def("sqlite_checkpoint_lag_frames", G, DB, "WAL frames not yet copied back into the database (mxFrame - nBackfill)."),
    def("sqlite_checkpoint_lag_bytes", G, DB, "Bytes of pages in the WAL not yet copied back into the database (checkpoint lag frames times page size)."),
    def("sqlite_checkpoint_lag_seconds", G, DB, "How long the oldest WAL frame not yet checkpointed has waited, in seconds (resolution one poll interval)."),
    def("sqlite_wal_resets_total", C, DB, "Times the WAL was restarted from its beginning, counted from changes of the WAL salt pair."),
    def("sqlite_write_transactions_total", C, DB, "Committed write transactions, counted exactly: wal-index iChange in WAL mode, the file change counter in rollback mode, commit frames in WAL exclusive locking mode."),
    def("sqlite_wal_written_bytes_total", C, DB, "Bytes of frames appended to the WAL (frames times page size plus frame header), from the growth of mxFrame."),
    def("sqlite_wal_readers", G, DB, "WAL reader slots held by a read transaction, tested with F_GETLK on the -shm read-lock bytes (nothing is acquired)."),
    def("sqlite_oldest_snapshot_age_seconds", G, DB, "How long the oldest snapshot held by a reader has kept checkpoints from reaching the end of the WAL, in seconds; 0 when no reader does. Litestream's guard shows here too, harmlessly: the alert reads sqlite_snapshot_pinned_seconds."),
    def("sqlite_checkpoint_starved_seconds", G, DB, "How long a due checkpoint (more frames waiting than wal_autocheckpoint) has made no progress while writes went on, in seconds; 0 when none is due or the database is idle. Drives SQLiteCheckpointStarved."),
    def("sqlite_snapshot_pinned_seconds", G, &["db", "holder"], "How long the reader holding checkpoints back longest has stopped a due checkpoint while writes went on, in seconds; 0 when none does. holder is that reader's role (application, litestream, replicator, outside_namespace, unknown; none when 0). Drives SQLiteSnapshotPinned."),
    def("sqlite_checkpoint_last_progress_timestamp_seconds", G, DB, "When a checkpoint was last seen copying frames back or the WAL restarting (Unix seconds); absent until one is seen."),
    def("sqlite_lock_holder_processes", G, &["db", "role"], "Processes holding one of the database's locks now, by role: application, litestream (recognised by its Go build information or command line), replicator (config replicators:), outside_namespace (a holder in another pid namespace, all of them counted as one)."),
    def("sqlite_write_lock_last_held_timestamp_seconds", G, &["db", "role"], "When a process of this role was last seen holding the write lock (Unix seconds): Litestream takes it for each of its checkpoints."),
    def("sqlite_write_lock_held_seconds_total", C, DB, "Seconds SQLite's write lock was seen held (WAL: -shm byte 120; rollback: the RESERVED byte), sampled with F_GETLK; rate() is the writer utilisation."),
    def("sqlite_write_lock_longest_hold_seconds", G, DB, "Longest time one process held the write lock within the last minute, including a hold in progress, in seconds."),
    def("sqlite_writer_processes", G, DB, "Distinct application processes seen holding the write lock within the last minute; more than one breaks single-writer discipline. Litestream and configured replicators write their own bookkeeping and are not counted."),
    def("sqlite_declared_backend_engineers", G, DB, "Backend engineers working against this database, as declared in config (team.backend_engineers); drives SQLiteTeamOutgrown."),
    def("sqlite_declared_regions", G, DB, "Regions the application must serve writes from, as declared in config (team.regions); drives SQLiteMultiRegion."),
    def("sqlite_threshold", G, &["alert", "severity", "db"], "The configured threshold of each alert and severity, in the base unit of the figure it judges (bytes, seconds, a 0-1 ratio, per second, a count): one series without db for the config's global level (absent when that level is off), and one per database whose own level differs (+Inf or -Inf where it is off). The rules of `sqlite-ops rules` and the dashboards compare against it, so they always judge by this host's config."),
    def("sqlite_alert", G, &["db", "alert", "severity", "mountpoint"], "1 while the alert fires, as evaluated by sqlite-ops's own rules (the same thresholds as `sqlite-ops rules` and `sqlite-ops check`)."),
    def("sqlite_litestream_up", G, &["db", "replica"], "Whether the last read of this Litestream replica succeeded and found replicated data (1) or not (0)."),
    def("sqlite_litestream_replication_lag_seconds", G, &["db", "replica"], "How long the oldest commit this replica does not hold has waited, in seconds; 0 when it holds every commit sqlite-ops has seen."),
    def("sqlite_litestream_last_replicated_timestamp_seconds", G, &["db", "replica"], "Every commit made before this time (Unix seconds) is in the replica: the timestamp of its newest LTX file (v0.5) or the time its newest WAL segment was written (v0.3)."),
    def("sqlite_litestream_local_txid", G, DB, "Highest TXID Litestream v0.5 has written to its local LTX files."),
    def("sqlite_litestream_replica_txid", G, &["db", "replica"], "Highest TXID held by the replica, across its LTX levels (Litestream v0.5)."),
    def("sqlite_litestream_local_wal_index", G, DB, "WAL index of Litestream v0.3's local shadow WAL in the current generation."),
    def("sqlite_litestream_local_wal_offset", G, DB, "Bytes in Litestream v0.3's newest local shadow WAL file."),
    def("sqlite_litestream_replica_files", G, &["db", "replica", "level"], "Files the replica holds at each level (Litestream 0.5: 0-9, 9 the snapshots; 0.3: snapshots, wal), from the listing each read takes."),
    def("sqlite_litestream_replica_bytes", G, &["db", "replica", "level"], "Bytes the replica holds at each level: its storage, and how it grows."),
    def("sqlite_litestream_replica_newest_file_timestamp_seconds", G, &["db", "replica", "level"], "When the replica's newest file at each level was written (Unix seconds, the file's or object's modification time): at level 9 (0.5) or snapshots (0.3), the newest snapshot; at a compacted level, its last compaction."),
    def("sqlite_litestream_replica_oldest_file_timestamp_seconds", G, &["db", "replica"], "When the replica's oldest file was written (Unix seconds): how far back retention keeps."),
    def("sqlite_litestream_compaction_lag_seconds", G, &["db", "replica", "level"], "How long the oldest change a compacted level (Litestream 0.5, litestream.yml's levels:) does not hold had waited in the level it is made from when Litestream last wrote there, in seconds, counted from the later of the file's time and the read that first saw the level behind: a stopped Litestream or an idle database stops the count. 0 when it holds all; up to one interval while Litestream compacts."),
    def("sqlite_litestream_compaction_interval_seconds", G, &["db", "replica", "level"], "How often Litestream compacts into the level (levels: in litestream.yml, or its defaults 30s, 5m, 1h)."),
    def("sqlite_litestream_snapshot_lag_seconds", G, &["db", "replica"], "How long the oldest change no snapshot holds had waited in the replica when Litestream last wrote a change there, in seconds (Litestream 0.5): a stopped Litestream or an idle database stops the count. 0 when the newest snapshot holds all; up to one snapshot interval while Litestream snapshots."),
    def("sqlite_litestream_snapshot_interval_seconds", G, &["db", "replica"], "How often Litestream writes a snapshot (snapshot: interval: in litestream.yml, or its default 24h)."),
    def("sqlite_litestream_local_bytes", G, DB, "Bytes of Litestream's local state for this database (its meta directory: .<file>-litestream beside it, or meta-path / meta-dir)."),
    def("sqlite_litestream_local_files", G, DB, "Files in Litestream's local state for this database."),
    def("sqlite_litestream_local_oldest_file_timestamp_seconds", G, DB, "When the oldest file of Litestream's local state was last written (Unix seconds)."),
    def("sqlite_litestream_local_overdue_bytes", G, DB, "Bytes of local change files (LTX for Litestream 0.5, shadow WAL for 0.3) kept past their time: Litestream wrote a newer one in the same folder more than twice l0-retention + the level-1 interval + l0-retention-check-interval after they could go (a newer file let them) and has not removed them. 0 while uploads, compaction and retention run, and when Litestream is stopped (it writes nothing newer); SQLiteLitestreamLocalStateGrowing fires past its threshold."),
    def("sqlite_litestream_replica_wal_index", G, &["db", "replica"], "WAL index of the replica's newest segment in the current generation (Litestream v0.3)."),
    def("sqlite_litestream_replica_wal_offset", G, &["db", "replica"], "End offset of the replica's newest segment in the current generation (Litestream v0.3)."),
    def("sqlite_litestream_info", G, &["db", "replica", "type", "format", "generation"], "Constant 1, labelled with the replica's type (file, s3, or an unsupported one), the layout found (v0.5, v0.3) and the v0.3 generation."),
    def("sqlite_litestream_process_up", G, DB, "Whether Litestream's own metrics endpoint (addr: in litestream.yml) answered and listed this database (1) or not (0): 0 while writes go on means Litestream is not running."),
    def("sqlite_litestream_sync_errors_total", C, DB, "Sync errors Litestream itself counted for this database (its litestream_sync_error_count)."),
    def("sqlite_litestream_read_errors_total", C, &["db", "replica"], "Reads of this replica (listing, LTX header) that failed."),
    def("sqlite_litestream_reads_total", C, &["db", "replica"], "Reads of this replica: on S3 each is a LIST (one per 1,000 objects) and, Litestream 0.5, a ranged GET, so its rate is what sqlite-ops costs in requests. Every litestream.interval while Litestream has changes the replica may lack, every litestream.idle_interval otherwise."),
    def("sqlite_litestream_chain_intact", G, &["db", "replica"], "Whether a restore would find an unbroken run of files from the replica's newest snapshot to its newest file (1) or a gap (0), judged from its last listing: LTX files (Litestream 0.5), or the current generation's WAL indices (0.3)."),
    def("sqlite_restore_drill_success", G, &["db", "replica"], "Whether the last restore drill (litestream restore into a scratch folder, integrity_check, row counts) succeeded (1) or failed (0)."),
    def("sqlite_restore_drill_last_success_timestamp_seconds", G, &["db", "replica"], "When a restore drill of this database last succeeded (Unix seconds)."),
    def("sqlite_restore_drill_duration_seconds", G, &["db", "replica"], "How long the last restore drill took, restore and checks: the restore time the size signal only guesses at."),
    def("sqlite_restore_drill_restored_bytes", G, &["db", "replica"], "Size of the copy the last restore drill restored."),
    def("sqlite_restore_drill_data_age_seconds", G, &["db", "replica"], "How old the newest data in the last drill's copy was when the replica was read (the replication lag then): the recovery point achieved."),
    def("sqlite_restore_drill_skipped", G, &["db", "replica"], "1 when the last restore drill did not run (no room in the scratch folder, no usable Litestream binary, a replica type it cannot restore; the log says why), else 0."),
    def("sqlite_restore_drill_stale_seconds", G, &["db", "replica"], "Seconds since a restore drill of this database last succeeded, or since drills began when none has: SQLiteRestoreDrillStale fires past two intervals."),
    def("sqlite_restore_drill_interval_seconds", G, &["db", "replica"], "How often this database is drilled (restore_drill.interval), in seconds."),
    def("sqlite_restore_drill_runs_total", C, &["db", "replica"], "Restore drills of this database that ran to a verdict."),
    def("sqlite_restore_drill_failures_total", C, &["db", "replica"], "Restore drills of this database that failed."),
    def("sqlite_filesystem_free_bytes", G, DB_MOUNT, "Bytes available to unprivileged users on the filesystem holding the database (statvfs f_bavail); mountpoint names the filesystem."),
    def("sqlite_filesystem_size_bytes", G, DB_MOUNT, "Total size in bytes of the filesystem holding the database; mountpoint names the filesystem."),
    def("sqlite_fleet_databases", G, &["state"], "Databases watched, by state: up (readable at the last poll) or down. Exported whatever the metrics: groups."),
    def("sqlite_fleet_database_size_bytes", G, &[], "Sum of the sizes of the readable databases' main files, in bytes."),
    def("sqlite_fleet_wal_size_bytes", G, &[], "Sum of the sizes of the readable databases' -wal files, in bytes."),
    def("sqlite_fleet_write_transactions_per_second", G, &[], "Sum of every database's write transactions per second over the last few seconds."),
    def("sqlite_fleet_alerts", G, &["alert", "severity"], "Databases this alert fires for (filesystems, for the disk alert), at this severity; 0 for every level of the catalogue when none does."),
    def("sqlite_fleet_threshold_nearest_ratio", G, &["alert", "db"], "The five databases nearest each alert's first threshold: the value as a fraction of the threshold (1 at it, above 1 past it; for free space, the threshold over the value). Computed at scrape time from the same thresholds as sqlite-ops's own rules."),
    def("sqlite_ops_build_info", G, &["version", "sqlite_version"], "Constant 1, labelled with the sqlite-ops version and the version of its bundled SQLite library."),
    def("process_cpu_seconds_total", C, &[], "Total user and system CPU time spent by sqlite-ops, in seconds (client_golang's name and meaning)."),
    def("process_resident_memory_bytes", G, &[], "Resident memory size of sqlite-ops in bytes."),
    def("process_virtual_memory_bytes", G, &[], "Virtual memory size of sqlite-ops in bytes."),
    def("process_open_fds", G, &[], "Open file descriptors of sqlite-ops."),
    def("process_max_fds", G, &[], "The limit on open file descriptors of sqlite-ops (its soft limit, which it raises to the hard one at start)."),
    def("process_start_time_seconds", G, &[], "When sqlite-ops started, in seconds since the Unix epoch."),
    def("process_threads", G, &[], "Operating system threads of the sqlite-ops process."),
    def("sqlite_ops_poll_duration_seconds", G, DB, "Wall time the last poll of this database took, in seconds."),
    def("sqlite_ops_poll_errors_total", C, &["db", "probe"], "Probes of this database that failed, by probe (database, header, wal, wal_index, locks, filesystem)."),
    def("sqlite_ops_poll_cycles_total", C, &[], "Cycles of polling every database since sqlite-ops started (a reload carries the count on)."),
    def("sqlite_ops_poll_cycles_late_total", C, &[], "Poll cycles that took longer than poll_interval, so that the next one started late: the daemon falls behind its databases."),
    def("sqlite_ops_poll_cycle_duration_seconds", G, &[], "How long the last cycle of polling every database took, in seconds."),
    def("sqlite_ops_poll_interval_seconds", G, &[], "The configured poll_interval, in seconds: a cycle longer than it is late."),
    def("sqlite_ops_descriptors_reserved", G, &[], "File descriptors kept for everything but watched files (HTTP, Alertmanager, Litestream, /proc): a quarter of the limit, within 64 and 1024."),
    def("sqlite_ops_descriptors_watched_limit", G, &[], "File descriptors watched files may hold at once: the limit less the reserve and what was open at start. Past half of it quiet databases give theirs back between polls."),
    def("sqlite_ops_descriptors_watched", G, &[], "File descriptors watched files (databases, -wal, -shm) hold now."),
    def("sqlite_ops_descriptors_refused_total", C, &[], "Watched files refused a descriptor because watched files held the whole budget: their databases are down until the limit is raised (each poll asks again)."),
    def("sqlite_ops_discovery_walks_total", C, &[], "Walks for the databases to watch (glob: entries, --discover folders, Litestream's dir: entries, the host's open files): at start, every discover_interval when there is anything to walk again, and on SIGHUP."),
    def("sqlite_ops_discovery_walk_duration_seconds", G, &[], "How long the last walk for the databases to watch took, in seconds."),
    def("sqlite_ops_discovery_databases", G, &[], "Databases the last walk gave to watch, those the config names included."),
    def("sqlite_ops_drills_waiting", G, &[], "Restore drills due and waiting for the one that runs (drills run one at a time across all databases), at the last start of one; only with restore_drill: set."),
    def("sqlite_ops_drill_running", G, &[], "Whether a restore drill runs now (1) or not (0); only with restore_drill: set."),
    def("sqlite_ops_drill_scratch_bytes", G, &[], "Bytes the running drill's folder holds in the scratch folder (the restored copy), 0 between drills; only with restore_drill: set."),
    def("sqlite_ops_descriptors_releases_total", C, &[], "Polls after which a database gave its descriptors back, to open them again at its next poll: quiet databases do once watched files hold half their share."),
    def("sqlite_ops_history_databases", G, &[], "Databases with a history for the status page (history.databases at most)."),
    def("sqlite_ops_history_bytes", G, &[], "Memory the status page's history holds, in bytes."),
    def("sqlite_ops_litestream_config_up", G, &[], "Whether Litestream's config (litestream.yml) could be read and parsed (1) or not (0); only exported when one is given."),
    def("sqlite_ops_alertmanager_sent_alerts_total", C, &["alertmanager"], "Alerts delivered to this Alertmanager (firing and resolved)."),
    def("sqlite_ops_alertmanager_errors_total", C, &["alertmanager"], "POSTs to this Alertmanager that failed: connection refused, timeout or a non-2xx answer."),
    def("sqlite_ops_alertmanager_pending_alerts", G, &["alertmanager"], "Alerts due for delivery to this Alertmanager that it has not acknowledged yet."),
    def("sqlite_ops_webhook_sent_alerts_total", C, &["webhook"], "Alerts delivered to this webhook (firing and resolved); the label is its name, never its URL."),
    def("sqlite_ops_webhook_errors_total", C, &["webhook"], "POSTs to this webhook that failed: connection refused, timeout or a non-2xx answer."),
    def("sqlite_ops_webhook_pending_alerts", G, &["webhook"], "Alerts due for delivery to this webhook that it has not acknowledged yet."),
    def("sqlite_ops_heartbeat_sent_total", C, &[], "Heartbeat requests answered with a 2xx status."),
    def("sqlite_ops_heartbeat_errors_total", C, &[], "Heartbeat requests that failed: connection refused, timeout or a non-2xx answer."),
    def("sqlite_ops_heartbeat_withheld", G, &[], "Whether heartbeats are held back (1) because a critical alert fires or the poller stopped publishing, or sent (0)."),
    def("sqlite_ops_heartbeat_held_back_total", C, &[], "Heartbeat intervals at which the ping was held back (a critical alert fired or the poller had stopped)."),
];

/// Probe names always exported for `sqlite_ops_poll_errors_total`, so that rate() sees the
/// first error.
pub const PROBES: &[&str] = &[
    "database",
    "header",
    "wal",
    "wal_index",
    "locks",
    "filesystem",
];

/// The groups (`metrics:` in config) each per-database metric is exported in; `None` for
/// those always exported: `sqlite_alert` (only while an alert fires) and the rest, which carry
/// no `db` label.
pub fn group_of(name: &str) -> Option<Group> {
    Some(match name {
        "sqlite_up"
        | "sqlite_database_size_bytes"
        | "sqlite_wal_size_bytes"
        | "sqlite_write_transactions_total"
        | "sqlite_checkpoint_lag_seconds"
        | "sqlite_filesystem_free_bytes"
        | "sqlite_filesystem_size_bytes" => Group::Health,
        "sqlite_info"
        | "sqlite_page_size_bytes"
        | "sqlite_pages"
        | "sqlite_freelist_pages"
        | "sqlite_declared_backend_engineers"
        | "sqlite_declared_regions" => Group::Info,
        "sqlite_wal_frames"
        | "sqlite_wal_checkpointed_frames"
        | "sqlite_checkpoint_lag_frames"
        | "sqlite_checkpoint_lag_bytes"
        | "sqlite_wal_resets_total"
        | "sqlite_wal_written_bytes_total"
        | "sqlite_wal_readers"
        | "sqlite_oldest_snapshot_age_seconds"
        | "sqlite_checkpoint_starved_seconds"
        | "sqlite_snapshot_pinned_seconds"
        | "sqlite_checkpoint_last_progress_timestamp_seconds" => Group::Wal,
        "sqlite_lock_holder_processes"
        | "sqlite_write_lock_last_held_timestamp_seconds"
        | "sqlite_write_lock_held_seconds_total"
        | "sqlite_write_lock_longest_hold_seconds"
        | "sqlite_writer_processes" => Group::Locks,
        "sqlite_ops_poll_duration_seconds" | "sqlite_ops_poll_errors_total" => Group::Poll,
        n if n.starts_with("sqlite_litestream_") || n.starts_with("sqlite_restore_drill_") => {
            Group::Litestream
        }
        _ => return None,
    })
}

/// One series as added: label names and values borrowed from the snapshots, and its value.
/// Ten thousand databases are 350,000 of these per scrape: they are turned into the prometheus
/// crate's protobuf messages one family at a time, so that at most one family's messages (not
/// every series', 150 MB at that size) exist at once.
type Sample<'a> = (Vec<(&'static str, &'a str)>, f64);

struct Families<'a> {
    metrics: HashMap<&'static str, Vec<Sample<'a>>>,
    /// The groups of the database whose series are being added.
    groups: Groups,
}

impl Default for Families<'_> {
    fn default() -> Self {
        Families {
            metrics: HashMap::new(),
            groups: Groups::ALL,
        }
    }
}

impl<'a> Families<'a> {
    fn add(&mut self, name: &'static str, labels: &[(&'static str, &'a str)], value: f64) {
        if group_of(name).is_some_and(|g| !self.groups.contains(g)) {
            return;
        }
        debug_assert!(
            METRICS
                .iter()
                .any(|d| d.name == name && labels.iter().all(|(k, _)| d.labels.contains(k))),
            "{name} is documented in METRICS with these labels"
        );
        self.metrics
            .entry(name)
            .or_default()
            .push((labels.to_vec(), value));
    }

    /// Encodes every family, in [`METRICS`] order, into the text exposition.
    fn encode(mut self) -> Vec<u8> {
        let mut out = Vec::new();
        for d in METRICS {
            let Some(samples) = self.metrics.remove(d.name) else {
                continue;
            };
            let mut f = MetricFamily::default();
            f.set_name(d.name.to_string());
            f.set_help(d.help.to_string());
            f.set_field_type(match d.kind {
                Kind::Gauge => MetricType::GAUGE,
                Kind::Counter => MetricType::COUNTER,
            });
            f.set_metric(samples.into_iter().map(|s| metric(d.kind, s)).collect());
            TextEncoder::new()
                .encode(&[f], &mut out)
                .expect("encoding well-formed families into memory cannot fail");
        }
        out
    }
}

/// The protobuf message of one series.
fn metric(kind: Kind, (labels, value): Sample) -> Metric {
    let pairs = labels
        .into_iter()
        .map(|(k, v)| {
            let mut p = LabelPair::default();
            p.set_name(k.to_string());
            p.set_value(v.to_string());
            p
        })
        .collect();
    let mut m = Metric::from_label(pairs);
    match kind {
        Kind::Gauge => {
            let mut g = Gauge::default();
            g.set_value(value);
            m.set_gauge(g);
        }
        Kind::Counter => {
            let mut c = Counter::default();
            c.set_value(value);
            m.set_counter(c);
        }
    }
    m
}

fn b(v: bool) -> f64 {
    if v {
        1.0
    } else {
        0.0
    }
}

fn add_snapshot<'a>(f: &mut Families<'a>, s: &'a DbSnapshot) {
    add_counters(f, s);
    add_litestream(f, s);
    add_drill(f, s);
    // Counters survive a database going down; gauges are only exported while it is readable.
    if !s.up {
        return;
    }
    add_declared(f, s);
    add_writers(f, s);
    add_file(f, s);
    if let Some(w) = &s.wal {
        add_wal(f, &s.name, w);
    }
}

/// What is exported whether or not the database is readable: up, the poll's own figures and
/// the counters.
fn add_counters<'a>(f: &mut Families<'a>, s: &'a DbSnapshot) {
    let db: &[(&str, &str)] = &[("db", &s.name)];
    f.add("sqlite_up", db, b(s.up));
    f.add(
        "sqlite_ops_poll_duration_seconds",
        db,
        s.poll_duration_seconds,
    );
    for probe in PROBES {
        let n = s.poll_errors_total.get(probe).copied().unwrap_or(0);
        f.add(
            "sqlite_ops_poll_errors_total",
            &[("db", &s.name), ("probe", probe)],
            n as f64,
        );
    }
    if let Some(n) = s.write_transactions_total {
        f.add("sqlite_write_transactions_total", db, n as f64);
    }
    if s.journal_mode == Some(crate::format::db_header::JournalKind::Wal) || s.wal_resets_total > 0
    {
        f.add("sqlite_wal_resets_total", db, s.wal_resets_total as f64);
        f.add(
            "sqlite_wal_written_bytes_total",
            db,
            s.wal_written_bytes_total as f64,
        );
    }
    if let Some(wl) = &s.write_lock {
        f.add(
            "sqlite_write_lock_held_seconds_total",
            db,
            wl.held_seconds_total,
        );
    }
}

fn add_declared<'a>(f: &mut Families<'a>, s: &'a DbSnapshot) {
    let db: &[(&str, &str)] = &[("db", &s.name)];
    if let Some(n) = s.declared.backend_engineers {
        f.add("sqlite_declared_backend_engineers", db, f64::from(n));
    }
    if let Some(n) = s.declared.regions {
        f.add("sqlite_declared_regions", db, f64::from(n));
    }
}

/// The write lock's holders and every lock holder by role.
fn add_writers<'a>(f: &mut Families<'a>, s: &'a DbSnapshot) {
    let db: &[(&str, &str)] = &[("db", &s.name)];
    if let Some(wl) = &s.write_lock {
        f.add(
            "sqlite_write_lock_longest_hold_seconds",
            db,
            wl.longest_hold_seconds,
        );
        f.add("sqlite_writer_processes", db, wl.application_writers as f64);
        for (role, at) in &wl.last_held_at {
            f.add(
                "sqlite_write_lock_last_held_timestamp_seconds",
                &[("db", &s.name), ("role", role.as_str())],
                *at,
            );
        }
    }
    for role in crate::probe::process::Role::ALL {
        let n = s
            .processes
            .iter()
            .filter(|p| p.identity.role == role)
            .count();
        f.add(
            "sqlite_lock_holder_processes",
            &[("db", &s.name), ("role", role.as_str())],
            n as f64,
        );
    }
}

/// The database file: its header facts, sizes and the filesystem it lives on.
fn add_file<'a>(f: &mut Families<'a>, s: &'a DbSnapshot) {
    let db: &[(&str, &str)] = &[("db", &s.name)];
    f.add(
        "sqlite_info",
        &[
            ("db", &s.name),
            ("journal_mode", s.journal_mode.map_or("", |j| j.as_str())),
            ("locking_mode", s.locking_mode.unwrap_or("")),
            (
                "last_writer_version",
                s.last_writer_version.as_deref().unwrap_or(""),
            ),
            ("text_encoding", s.text_encoding.unwrap_or("")),
            ("auto_vacuum", s.auto_vacuum.unwrap_or("")),
        ],
        1.0,
    );
    let gauges = [
        ("sqlite_database_size_bytes", s.database_size_bytes),
        ("sqlite_page_size_bytes", s.page_size_bytes.map(u64::from)),
        ("sqlite_pages", s.pages),
        ("sqlite_freelist_pages", s.freelist_pages),
    ];
    for (name, v) in gauges {
        if let Some(v) = v {
            f.add(name, db, v as f64);
        }
    }
    // With the filesystem's mount point: the disk alert is one per filesystem (`min by
    // (job, instance, mountpoint)`), however many databases it holds.
    if let Some(fs) = &s.filesystem {
        let mount = fs.mount_point.to_str().unwrap_or_default();
        let labels = [db[0], ("mountpoint", mount)];
        for (name, v) in [
            ("sqlite_filesystem_free_bytes", fs.free_bytes),
            ("sqlite_filesystem_size_bytes", fs.size_bytes),
        ] {
            if let Some(v) = v {
                f.add(name, &labels, v as f64);
            }
        }
    }
}

/// WAL mode: the WAL, checkpoints and the readers that hold them back.
fn add_wal<'a>(f: &mut Families<'a>, name: &'a str, w: &'a WalSnapshot) {
    let db: &[(&str, &str)] = &[("db", name)];
    f.add("sqlite_wal_size_bytes", db, w.size_bytes as f64);
    f.add("sqlite_wal_frames", db, w.frames as f64);
    f.add("sqlite_wal_readers", db, w.readers as f64);
    let optional = [
        (
            "sqlite_wal_checkpointed_frames",
            w.checkpointed_frames.map(|v| v as f64),
        ),
        (
            "sqlite_checkpoint_lag_frames",
            w.checkpoint_lag_frames.map(|v| v as f64),
        ),
        (
            "sqlite_checkpoint_lag_bytes",
            w.checkpoint_lag_bytes.map(|v| v as f64),
        ),
        ("sqlite_checkpoint_lag_seconds", w.checkpoint_lag_seconds),
        (
            "sqlite_oldest_snapshot_age_seconds",
            w.oldest_snapshot_age_seconds,
        ),
        (
            "sqlite_checkpoint_starved_seconds",
            w.checkpoint_starved_seconds,
        ),
        (
            "sqlite_checkpoint_last_progress_timestamp_seconds",
            w.last_checkpoint_at,
        ),
    ];
    for (metric, v) in optional {
        if let Some(v) = v {
            f.add(metric, db, v);
        }
    }
    if let Some(v) = w.snapshot_pinned_seconds {
        f.add(
            "sqlite_snapshot_pinned_seconds",
            &[("db", name), ("holder", w.pinned_holder())],
            v,
        );
    }
}

/// The restore drills' figures, once drills are scheduled for the database.
fn add_drill<'a>(f: &mut Families<'a>, s: &'a DbSnapshot) {
    let Some(d) = &s.restore_drill else { return };
    let l: &[(&str, &str)] = &[("db", &s.name), ("replica", &d.replica)];
    f.add("sqlite_restore_drill_skipped", l, b(d.refused.is_some()));
    f.add(
        "sqlite_restore_drill_stale_seconds",
        l,
        d.since_success(s.polled_at),
    );
    f.add(
        "sqlite_restore_drill_interval_seconds",
        l,
        d.interval_seconds,
    );
    f.add("sqlite_restore_drill_runs_total", l, d.runs_total as f64);
    f.add(
        "sqlite_restore_drill_failures_total",
        l,
        d.failures_total as f64,
    );
    if let Some(at) = d.last_success_at {
        f.add("sqlite_restore_drill_last_success_timestamp_seconds", l, at);
    }
    let Some(last) = &d.last else { return };
    f.add("sqlite_restore_drill_success", l, b(last.success));
    f.add(
        "sqlite_restore_drill_duration_seconds",
        l,
        last.duration_seconds,
    );
    if let Some(n) = last.restored_bytes {
        f.add("sqlite_restore_drill_restored_bytes", l, n as f64);
    }
    if let Some(age) = last.data_age_seconds {
        f.add("sqlite_restore_drill_data_age_seconds", l, age);
    }
}

/// What one replica holds, level by level.
fn add_storage<'a>(
    f: &mut Families<'a>,
    s: &'a DbSnapshot,
    r: &'a crate::monitor::ReplicaSnapshot,
    storage: &'a crate::litestream::storage::Storage,
) {
    if let Some(at) = storage.oldest_at {
        let l: &[(&str, &str)] = &[("db", &s.name), ("replica", &r.replica)];
        f.add(
            "sqlite_litestream_replica_oldest_file_timestamp_seconds",
            l,
            at,
        );
    }
    for level in &storage.levels {
        let l: &[(&str, &str)] = &[
            ("db", &s.name),
            ("replica", &r.replica),
            ("level", &level.level),
        ];
        f.add("sqlite_litestream_replica_files", l, level.files as f64);
        f.add("sqlite_litestream_replica_bytes", l, level.bytes as f64);
        if let Some(at) = level.newest_at {
            f.add(
                "sqlite_litestream_replica_newest_file_timestamp_seconds",
                l,
                at,
            );
        }
        let (Some(lag), Some(interval)) = (level.lag(), level.interval) else {
            continue;
        };
        let (lag_name, interval_name, l) = match level.is_snapshots() {
            true => (
                "sqlite_litestream_snapshot_lag_seconds",
                "sqlite_litestream_snapshot_interval_seconds",
                &l[..2],
            ),
            false => (
                "sqlite_litestream_compaction_lag_seconds",
                "sqlite_litestream_compaction_interval_seconds",
                l,
            ),
        };
        f.add(lag_name, l, lag);
        f.add(interval_name, l, interval);
    }
}

/// Litestream's local state of the database, once (each replica's watcher reads the same).
fn add_local_state<'a>(f: &mut Families<'a>, s: &'a DbSnapshot) {
    let db: &[(&str, &str)] = &[("db", &s.name)];
    let Some(state) = s.litestream.iter().find_map(|r| r.local_state.as_ref()) else {
        return;
    };
    f.add("sqlite_litestream_local_bytes", db, state.bytes as f64);
    f.add("sqlite_litestream_local_files", db, state.files as f64);
    if let Some(at) = state.oldest_at {
        f.add(
            "sqlite_litestream_local_oldest_file_timestamp_seconds",
            db,
            at,
        );
    }
    f.add(
        "sqlite_litestream_local_overdue_bytes",
        db,
        state.overdue_bytes as f64,
    );
}

fn add_litestream<'a>(f: &mut Families<'a>, s: &'a DbSnapshot) {
    use crate::litestream::position::Position;
    if let Some(p) = &s.litestream_process {
        let db: &[(&str, &str)] = &[("db", &s.name)];
        f.add("sqlite_litestream_process_up", db, b(p.up));
        if let Some(n) = p.sync_errors {
            f.add("sqlite_litestream_sync_errors_total", db, n);
        }
    }
    add_local_state(f, s);
    let db: &[(&str, &str)] = &[("db", &s.name)];
    let mut local_done = false;
    for r in s.litestream.iter() {
        let l: &[(&str, &str)] = &[("db", &s.name), ("replica", &r.replica)];
        if r.observed {
            f.add("sqlite_litestream_up", l, b(r.up));
        }
        f.add(
            "sqlite_litestream_read_errors_total",
            l,
            r.errors_total as f64,
        );
        f.add("sqlite_litestream_reads_total", l, r.reads_total as f64);
        if let Some(lag) = r.lag_seconds {
            f.add("sqlite_litestream_replication_lag_seconds", l, lag);
        }
        if let Some(chain) = &r.chain {
            f.add("sqlite_litestream_chain_intact", l, b(chain.is_whole()));
        }
        if let Some(at) = r.replicated_at {
            f.add("sqlite_litestream_last_replicated_timestamp_seconds", l, at);
        }
        if let Some(storage) = &r.storage {
            add_storage(f, s, r, storage);
        }
        let (format, generation) = match r.position.as_ref().or(r.local.as_ref()) {
            Some(Position::V5 { .. }) => ("v0.5", ""),
            Some(Position::V3 { generation, .. }) => ("v0.3", generation.as_str()),
            None => ("", ""),
        };
        f.add(
            "sqlite_litestream_info",
            &[
                ("db", &s.name),
                ("replica", &r.replica),
                ("type", &r.kind),
                ("format", format),
                ("generation", generation),
            ],
            1.0,
        );
        match &r.position {
            Some(Position::V5 { txid }) => f.add("sqlite_litestream_replica_txid", l, *txid as f64),
            Some(Position::V3 { index, offset, .. }) => {
                f.add("sqlite_litestream_replica_wal_index", l, f64::from(*index));
                f.add(
                    "sqlite_litestream_replica_wal_offset",
                    l,
                    f64::from(*offset),
                );
            }
            None => {}
        }
        if local_done {
            continue;
        }
        match &r.local {
            Some(Position::V5 { txid }) => f.add("sqlite_litestream_local_txid", db, *txid as f64),
            Some(Position::V3 { index, offset, .. }) => {
                f.add("sqlite_litestream_local_wal_index", db, f64::from(*index));
                f.add("sqlite_litestream_local_wal_offset", db, f64::from(*offset));
            }
            None => continue,
        }
        local_done = true;
    }
}

/// Renders the text exposition format (version 0.0.4).
pub fn render(e: &Exposition) -> String {
    let (snapshots, build) = (e.snapshots, e.build);
    let mut f = Families::default();
    f.add(
        "sqlite_ops_build_info",
        &[
            ("version", build.version),
            ("sqlite_version", build.sqlite_version),
        ],
        1.0,
    );
    for (i, s) in snapshots.iter().enumerate() {
        f.groups = e.per_db.metrics.get(i).copied().unwrap_or_default();
        add_snapshot(&mut f, s);
    }
    f.groups = Groups::ALL;
    super::fleet::add(&mut |name, labels, v| f.add(name, labels, v), e);
    super::process::add(&mut |name, labels, v| f.add(name, labels, v));
    add_thresholds(&mut f, e);
    for a in e.alerts.iter().filter(|a| a.state == AlertState::Firing) {
        let subject = crate::rules::catalogue::subject_label(a.alert);
        let labels = [("alert", a.alert), ("severity", a.severity.as_str())];
        if subject == "db" {
            f.add(
                "sqlite_alert",
                &[&[("db", a.db.as_str())], &labels[..]].concat(),
                1.0,
            );
        } else {
            f.add(
                "sqlite_alert",
                &[&labels[..], &[(subject, a.db.as_str())]].concat(),
                1.0,
            );
        }
    }
    add_daemon(&mut f, e);
    String::from_utf8(f.encode()).expect("text exposition is UTF-8")
}

/// The daemon's own work: litestream.yml, the poll cycles, and what each alert destination and
/// the heartbeat were told.
fn add_daemon<'a>(f: &mut Families<'a>, e: &Exposition<'a>) {
    if let Some(r) = e.litestream_config {
        f.add("sqlite_ops_litestream_config_up", &[], b(r.is_ok()));
    }
    let c = e.cycles;
    f.add("sqlite_ops_poll_cycles_total", &[], c.total as f64);
    f.add("sqlite_ops_poll_cycles_late_total", &[], c.late as f64);
    f.add(
        "sqlite_ops_poll_cycle_duration_seconds",
        &[],
        c.last_seconds,
    );
    f.add("sqlite_ops_poll_interval_seconds", &[], c.interval_seconds);
    if let Some(d) = e.descriptors {
        f.add(
            "sqlite_ops_descriptors_reserved",
            &[],
            d.plan.reserve as f64,
        );
        let limit = d.plan.for_files as f64;
        f.add("sqlite_ops_descriptors_watched_limit", &[], limit);
        f.add("sqlite_ops_descriptors_watched", &[], d.held as f64);
        let refused = d.refused as f64;
        f.add("sqlite_ops_descriptors_refused_total", &[], refused);
        let released = d.released as f64;
        f.add("sqlite_ops_descriptors_releases_total", &[], released);
    }
    if let Some((walks, secs, found)) = e.walks {
        f.add("sqlite_ops_discovery_walks_total", &[], walks as f64);
        f.add("sqlite_ops_discovery_walk_duration_seconds", &[], secs);
        f.add("sqlite_ops_discovery_databases", &[], found as f64);
    }
    if let Some((waiting, running, bytes)) = e.drills {
        f.add("sqlite_ops_drills_waiting", &[], waiting as f64);
        f.add("sqlite_ops_drill_running", &[], b(running));
        f.add("sqlite_ops_drill_scratch_bytes", &[], bytes as f64);
    }
    f.add("sqlite_ops_history_databases", &[], e.history.0 as f64);
    f.add("sqlite_ops_history_bytes", &[], e.history.1 as f64);
    let n = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed) as f64;
    let destinations = [
        (
            "alertmanager",
            e.alertmanagers,
            [
                "sqlite_ops_alertmanager_sent_alerts_total",
                "sqlite_ops_alertmanager_errors_total",
                "sqlite_ops_alertmanager_pending_alerts",
            ],
        ),
        (
            "webhook",
            e.webhooks,
            [
                "sqlite_ops_webhook_sent_alerts_total",
                "sqlite_ops_webhook_errors_total",
                "sqlite_ops_webhook_pending_alerts",
            ],
        ),
    ];
    for (kind, stats, [sent, errors, pending]) in destinations {
        for s in stats {
            let l: &[(&str, &str)] = &[(kind, &s.url)];
            f.add(sent, l, n(&s.sent));
            f.add(errors, l, n(&s.errors));
            f.add(pending, l, n(&s.pending));
        }
    }
    if let Some(h) = e.heartbeat {
        f.add("sqlite_ops_heartbeat_sent_total", &[], n(&h.sent));
        f.add("sqlite_ops_heartbeat_errors_total", &[], n(&h.errors));
        f.add("sqlite_ops_heartbeat_withheld", &[], n(&h.withheld));
        f.add("sqlite_ops_heartbeat_held_back_total", &[], n(&h.held_back));
    }
}

/// `sqlite_threshold`: each rule's global levels, and each database's where they differ.
fn add_thresholds<'a>(f: &mut Families<'a>, e: &Exposition<'a>) {
    let off = |op: Op| match op {
        Op::Above => f64::INFINITY,
        Op::Below => f64::NEG_INFINITY,
    };
    for global in e.thresholds.rules.iter() {
        for severity in Severity::ALL {
            let labels = [
                ("alert", global.rule.alert),
                ("severity", severity.as_str()),
            ];
            let level = global.threshold(severity);
            if let Some(t) = level {
                f.add("sqlite_threshold", &labels, t);
            }
            for (s, own) in e.snapshots.iter().zip(&e.per_db.thresholds) {
                let Some(own) = own.get(global.rule.key) else {
                    continue;
                };
                let own_level = own.threshold(severity);
                if own_level != level {
                    let v = own_level.unwrap_or(off(global.rule.op));
                    f.add(
                        "sqlite_threshold",
                        &[labels[0], labels[1], ("db", &s.name)],
                        v,
                    );
                }
            }
        }
    }
}

/// Content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_conventions() {
        for d in METRICS {
            // Ours, or the standard process series every exporter shares (with no labels).
            assert!(
                d.name.starts_with("sqlite_")
                    || (d.name.starts_with("process_") && d.labels.is_empty()),
                "{}",
                d.name
            );
            assert!(
                d.labels.first() == Some(&"db")
                    || d.name == "sqlite_threshold"
                    || d.name.starts_with("sqlite_ops_")
                    || d.name.starts_with("sqlite_fleet_")
                    || d.labels.is_empty(),
                "{}: per-database metrics lead with db",
                d.name
            );
            // Every per-database series can be turned off, but the alerts; fleet series
            // cannot (they stay small at any count).
            let per_db = d.labels.first() == Some(&"db");
            assert_eq!(
                group_of(d.name).is_some(),
                per_db && d.name != "sqlite_alert",
                "{}: in a metrics: group exactly when it is per database",
                d.name
            );
            assert!(
                d.help.ends_with('.') && d.help.len() > 30,
                "HELP of {} is a full sentence",
                d.name
            );
            if d.kind == Kind::Counter {
                assert!(d.name.ends_with("_total"), "{}", d.name);
            }
        }
        let mut names: Vec<_> = METRICS.iter().map(|d| d.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), METRICS.len(), "no duplicate names");
    }
}
