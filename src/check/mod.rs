//! `sqlite-ops check`: a one-shot audit for cron, CI and on-call, with the daemon's probes,
//! monitor and shared rules over a short sample, then the audits a single look can do. The worst
//! status is the exit code, as monitoring plugins do.

pub mod audits;
pub mod drill;
pub mod forecasts;
pub mod from_daemon;
pub mod report;
pub mod sql;

use crate::config::Config;
use crate::history::DbHistory;
use crate::monitor::DbSnapshot;
use crate::poller::Poller;
use crate::rules::{self, Severity};
use crate::target::Target;
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// How often the sample polls each database, and samples busy databases' write locks.
const SAMPLE_POLL: Duration = Duration::from_millis(100);
const SAMPLE_LOCKS: Duration = Duration::from_millis(10);

/// The statement every connection should run: per-connection settings cannot be read from
/// another process, so `check` prints them instead of judging them.
pub const RECOMMENDED_PRAGMAS: &str = "\
PRAGMA journal_mode = WAL;         -- once; persists in the file
PRAGMA synchronous = NORMAL;       -- durable at checkpoints; safe with WAL
PRAGMA busy_timeout = 5000;        -- wait up to 5 s for the write lock
PRAGMA foreign_keys = ON;          -- off by default, per connection
PRAGMA cache_size = -20000;        -- 20 MB page cache per connection
PRAGMA mmap_size = 268435456;      -- 268 MB of memory-mapped reads
PRAGMA wal_autocheckpoint = 1000;  -- checkpoint every 1000 pages (the default)
PRAGMA temp_store = MEMORY;";

/// Status of a finding, a database or the whole check, in the order monitoring plugins rank
/// them (the worst wins); `info` is reported but never raises the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Info,
    Warning,
    Unknown,
    Critical,
}

impl Status {
    /// Monitoring-plugin exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Ok | Status::Info => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Info => "info",
            Status::Warning => "warning",
            Status::Unknown => "unknown",
            Status::Critical => "critical",
        }
    }
}

impl From<Severity> for Status {
    fn from(s: Severity) -> Self {
        match s {
            Severity::Info => Status::Info,
            Severity::Warning => Status::Warning,
            Severity::Critical => Status::Critical,
        }
    }
}

/// A database's status: its worst finding. Info is reported, never a state: a database with only
/// info findings is OK.
fn status_of(findings: &[Finding]) -> Status {
    findings
        .iter()
        .map(|f| f.status)
        .filter(|s| *s != Status::Info)
        .max()
        .unwrap_or(Status::Ok)
}

/// The mount point of the filesystem `s` is on, when known (the disk alert's subject).
fn mount_of(s: &DbSnapshot) -> Option<String> {
    s.filesystem
        .as_ref()
        .map(|fs| fs.mount_point.display().to_string())
}

/// One audit result: an id, a status, the measured value, the threshold and a one-line fix.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable identifier: a threshold's config key (`database_size`) or an audit's name.
    pub id: &'static str,
    pub status: Status,
    /// The alert a threshold finding corresponds to (`SQLiteDatabaseLarge`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<&'static str>,
    pub summary: String,
    /// What was measured, for people (`53.1 GB`); `null` when it could not be.
    pub value: Option<String>,
    /// What it was judged against (`> 50 GB`).
    pub threshold: Option<String>,
    /// For thresholds: the value and the threshold as numbers in the rule's base unit (bytes,
    /// seconds, a 0-1 ratio, per second, a count).
    pub measured: Option<f64>,
    pub limit: Option<f64>,
    /// One line saying what to do; `null` when nothing needs doing.
    pub fix: Option<String>,
    /// Where the verdict comes from: `sample` (this check's own), or `daemon` (the running
    /// daemon's alerts, with `--daemon URL`).
    pub source: &'static str,
}

impl Finding {
    pub fn new(id: &'static str, status: Status, summary: impl Into<String>) -> Self {
        Finding {
            id,
            status,
            alert: None,
            summary: summary.into(),
            value: None,
            threshold: None,
            measured: None,
            limit: None,
            source: "sample",
            fix: None,
        }
    }

    pub fn value(mut self, v: impl Into<String>) -> Self {
        self.value = Some(v.into());
        self
    }

    pub fn threshold(mut self, t: impl Into<String>) -> Self {
        self.threshold = Some(t.into());
        self
    }

    pub fn fix(mut self, f: impl Into<String>) -> Self {
        self.fix = Some(f.into());
        self
    }
}

/// The findings of one database.
#[derive(Debug, Clone, Serialize)]
pub struct DbReport {
    pub db: String,
    pub path: PathBuf,
    pub status: Status,
    pub findings: Vec<Finding>,
    /// The figures the findings were judged on.
    pub snapshot: DbSnapshot,
    /// When it crosses its thresholds at its recent pace (see `forecasts_from`).
    pub forecasts: Vec<crate::history::outlook::Forecast>,
}

/// The whole check. Its JSON form is documented in docs/check.md (schema `sqlite-ops/check/v1`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub status: Status,
    pub exit_code: u8,
    #[serde(with = "humantime_serde")]
    pub checked_at: SystemTime,
    pub sample_seconds: f64,
    pub version: &'static str,
    pub databases: Vec<DbReport>,
    /// `daemon <url>` when the forecasts are a running daemon's, else `sample`.
    pub forecasts_from: String,
    /// Said once for the whole check.
    pub notes: Vec<String>,
    pub recommended_pragmas: &'static str,
}

/// What to check and how.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub config: Option<PathBuf>,
    pub databases: Vec<PathBuf>,
    /// How long to watch before judging (write rate, lock figures).
    pub sample: Duration,
    /// Run `PRAGMA quick_check` too.
    pub integrity: bool,
    /// Longest any one SQL statement may run before it is interrupted.
    pub statement_timeout: Duration,
    /// Litestream's config, overriding `litestream.config` of the config file.
    pub litestream_config: Option<PathBuf>,
    /// A running daemon (`http://127.0.0.1:9934`) whose forecasts, drawn from its history,
    /// are printed instead of the sample's.
    pub daemon: Option<String>,
    /// Run one restore drill of each replicated database now (`--restore-drill`).
    pub restore_drill: bool,
}

/// Why the check could not run at all (a database that cannot be read is a finding instead).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("no database to check: give DB paths or a --config file with databases:")]
    NoDatabase,
    #[error("cannot start the async runtime that reads Litestream replicas: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Runs the check. Errors are configuration problems (exit code 3); a database that cannot be
/// read is a finding.
///
/// It watches each database for a short sample (the same probes and monitor as the daemon, so
/// rates and lock figures are measured, not guessed), judges every threshold with the shared
/// rules, then runs the audits a single look can do.
pub fn run(opts: &CheckOptions) -> Result<Report, CheckError> {
    let (cfg, source) = match &opts.config {
        Some(p) => (Config::load(p)?, p.display().to_string()),
        None => (Config::default(), "command line".to_string()),
    };
    let mut discovery = cfg.discovery(&opts.databases, &source)?;
    let litestream_yml = cfg.litestream_path(opts.litestream_config.as_deref());
    if let Some(path) = &litestream_yml {
        cfg.attach_litestream_file(&source, path, &mut discovery)?;
    }
    let targets = discovery.scan(Instant::now());
    if targets.is_empty() {
        return Err(CheckError::NoDatabase);
    }
    let replicators = cfg.replicator_matches(&source)?;
    let started = Instant::now();
    let (snapshots, histories, board) = sample(&targets, replicators, opts.sample)?;
    let sample_seconds = started.elapsed().as_secs_f64();
    let mut notes = vec![
        "synchronous, mmap_size, cache_size, busy_timeout, wal_autocheckpoint and foreign_keys are per-connection settings that cannot be read from another process: set the recommended block on every connection.".into(),
    ];
    let daemon = read_daemon(opts, &mut notes, sample_seconds);
    let mut databases = Vec::new();
    for ((target, snapshot), history) in targets.iter().zip(snapshots).zip(&histories) {
        let mut findings = judge(target, &snapshot, opts);
        if let Some((_, d)) = &daemon {
            let mount = mount_of(&snapshot);
            from_daemon::overlay(&mut findings, (&target.name, mount.as_deref()), &d.alerts);
        }
        if opts.restore_drill {
            findings.extend(drill::finding(
                target,
                &snapshot,
                litestream_yml.as_deref(),
                &board,
            ));
        } else if let Some(d) = daemon
            .as_ref()
            .and_then(|(_, f)| f.drills.get(&target.name))
        {
            findings.push(drill::from_daemon(d, snapshot.polled_at));
        }
        let forecasts = daemon
            .as_ref()
            .and_then(|(_, f)| f.forecasts.get(&target.name).cloned())
            .unwrap_or_else(|| forecasts::from_sample(target, history, &snapshot));
        databases.push(DbReport {
            db: target.name.clone(),
            path: target.path.clone(),
            status: status_of(&findings),
            findings,
            snapshot,
            forecasts,
        });
    }
    let status = databases
        .iter()
        .map(|d| d.status)
        .max()
        .unwrap_or(Status::Ok);
    Ok(Report {
        schema: "sqlite-ops/check/v1",
        status,
        exit_code: status.exit_code(),
        checked_at: SystemTime::now(),
        sample_seconds,
        version: env!("CARGO_PKG_VERSION"),
        databases,
        forecasts_from: daemon
            .map_or_else(|| "sample".to_string(), |(url, _)| format!("daemon {url}")),
        notes,
        recommended_pragmas: RECOMMENDED_PRAGMAS,
    })
}

/// What the daemon of `--daemon` says, if one was named and answered; a note says why not.
fn read_daemon<'a>(
    opts: &'a CheckOptions,
    notes: &mut Vec<String>,
    sample_seconds: f64,
) -> Option<(&'a String, forecasts::FromDaemon)> {
    let url = opts.daemon.as_ref()?;
    match forecasts::from_daemon(url) {
        Ok(f) => Some((url, f)),
        Err(e) => {
            notes.push(format!("the daemon did not answer ({e}): the forecasts are drawn from this check's {sample_seconds:.0} s sample"));
            None
        }
    }
}

/// How much longer the sample runs while a replica lacks commits.
const LAG_GRACE: Duration = Duration::from_secs(3);

type Sampled = (
    Vec<DbSnapshot>,
    Vec<DbHistory>,
    std::sync::Arc<crate::litestream::board::Board>,
);

/// Watches every target for `duration` and returns the last snapshots, each target's history
/// over the sample, and the board with what the replicas' watchers last read. The probes are closed before any SQL audit opens a connection
/// (closing a descriptor drops a process's POSIX locks).
fn sample(
    targets: &[Target],
    replicators: Vec<crate::probe::process::ReplicatorMatch>,
    duration: Duration,
) -> Result<Sampled, CheckError> {
    let mut histories = vec![DbHistory::default(); targets.len()];
    let mut record = |snapshots: &[DbSnapshot]| {
        for (h, s) in histories.iter_mut().zip(snapshots) {
            h.record(s);
        }
    };
    let mut poller = Poller::new(targets, "").with_replicators(replicators);
    // Litestream replicas are read by their watchers meanwhile, as in the daemon; without
    // replicas there is nothing asynchronous to run.
    let runtime = if targets.iter().any(|t| t.litestream.is_some()) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(CheckError::Runtime)?;
        let mut watchers = crate::litestream::watcher::Watchers::default();
        {
            let _entered = runtime.enter();
            watchers.update(
                crate::target::replicated(targets),
                crate::litestream::watcher::Pace::uniform(SAMPLE_POLL * 5),
                &poller.board(),
            );
        }
        Some((runtime, watchers))
    } else {
        None
    };
    let start = Instant::now();
    let deadline = start + duration;
    let mut next_poll = start;
    loop {
        let now = Instant::now();
        if now >= deadline {
            let last = poller.poll_once();
            record(&last);
            // A replica seen lacking commits gets a few seconds more: a healthy Litestream
            // uploads within its sync interval, a stuck one does not (see `audits::lag_untold`).
            if now < deadline + LAG_GRACE && last.iter().any(audits::lacks_commits) {
                std::thread::sleep(SAMPLE_POLL);
                continue;
            }
            if let Some((r, watchers)) = runtime {
                drop(watchers);
                r.shutdown_background();
            }
            return Ok((last, histories, poller.board()));
        }
        if now >= next_poll {
            record(&poller.poll_once());
            next_poll = now + SAMPLE_POLL;
        } else {
            poller.sample_locks(now);
        }
        std::thread::sleep(SAMPLE_LOCKS.min(deadline.saturating_duration_since(Instant::now())));
    }
}

/// Every finding for one database: the thresholds first, then the audits.
fn judge(target: &Target, s: &DbSnapshot, opts: &CheckOptions) -> Vec<Finding> {
    let mut out = Vec::new();
    for c in rules::conditions(s, &target.thresholds) {
        if let Some(f) = audits::threshold_finding(&c, s, opts.sample.as_secs_f64()) {
            out.push(f);
        }
    }
    if !s.up {
        return out;
    }
    out.extend(audits::file_audits(s, target.litestream.is_some()));
    out.extend(sql::audits(s, opts.integrity, opts.statement_timeout));
    out
}
