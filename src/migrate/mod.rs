//! `sqlite-ops migrate-check`: what will break when this database moves to Postgres. Owns the
//! report's types and [`run`], which drives the steps the submodules own (`schema`, `types`,
//! `plan`, `scan`, `values`, `report`, `ddl`).

pub mod ddl;
pub mod error;
pub mod literals;
pub mod plan;
pub mod report;
pub mod scan;
pub mod schema;
pub mod types;
pub mod values;

pub use error::{BackupError, MigrateError};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How much a finding weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The data cannot load as it is: Postgres rejects these rows.
    Blocker,
    /// Work before or during the move: something that does not carry over as it is.
    Work,
    /// Worth knowing; nothing to do.
    Info,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub id: String,
    pub level: Level,
    /// The table, `table.column`, index, view or trigger.
    pub object: String,
    /// The table whose rows the examples are keys of (data findings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Row keys: the rowid, or the primary key values of a WITHOUT ROWID table.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone)]
pub struct MigrateOptions {
    pub database: PathBuf,
    pub emit_ddl: Option<PathBuf>,
    pub from_backup: bool,
    /// Where the --from-backup copy goes (the system's temporary directory by default).
    pub backup_dir: Option<PathBuf>,
    pub scan: scan::ScanOptions,
    /// Pages copied per backup step.
    pub backup_pages: i32,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub database: String,
    pub sqlite_version: String,
    /// ready, work or blocked.
    pub verdict: &'static str,
    pub exit_code: u8,
    pub cost: Cost,
    pub tables: Vec<TableReport>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cost {
    pub database_bytes: u64,
    pub tables: usize,
    pub rows: u64,
    /// Bytes of values read.
    pub read_bytes: u64,
    /// Time spent reading (inside statements), and the whole scan with the rate limit's pauses.
    pub read_seconds: f64,
    pub scan_seconds: f64,
    pub read_bytes_per_second: f64,
    /// Reading every value at the measured rate: the least a copy takes on this machine
    /// (Postgres's load and index builds come on top).
    pub estimated_copy_seconds: f64,
    /// The longest single statement of the scan: the longest read transaction held on the
    /// database (on the copy, with --from-backup).
    pub longest_read_transaction_seconds: f64,
    pub statements: u64,
    /// Chunks started over because a writer was changing the wal-index as the chunk began.
    pub retries: u64,
    /// `live`, or `backup` with the backup's duration, steps and longest step.
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupStats>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupStats {
    pub seconds: f64,
    pub steps: u64,
    pub longest_step_seconds: f64,
    pub restarts: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub name: String,
    pub rows: u64,
    pub columns: Vec<ColumnReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnReport {
    pub name: String,
    pub sqlite: String,
    pub postgres: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Values per storage class (typeof()).
    pub storage_classes: std::collections::BTreeMap<&'static str, u64>,
}

pub const SCHEMA_ID: &str = "sqlite-ops/migrate-check/v1";

/// Runs the check: schema, scan, report (and the DDL file when asked).
///
/// The schema is read (`schema`), a Postgres type proposed for every column (`types`, `plan`),
/// then every row is read in short chunks (`scan`) and each value checked against its proposed
/// type (`values`). The report (`report`) gives findings with counts and example row keys, the
/// cost of the move, and `--emit-ddl` writes the Postgres DDL (`ddl`).
///
/// Hands off production: the database is opened read-only through the read-only VFS, each
/// chunk is one statement (one short read transaction), chunks are paced by a rate limit, and
/// the longest read transaction is reported. `--from-backup` copies the database first with
/// SQLite's online backup API, a few pages per step, and scans the copy.
pub fn run(opts: &MigrateOptions) -> Result<Report, MigrateError> {
    let path = &opts.database;
    let meta = std::fs::metadata(path).map_err(|source| MigrateError::Metadata {
        path: path.clone(),
        source,
    })?;
    if !meta.is_file() {
        return Err(MigrateError::NotAFile(path.clone()));
    }
    let sql = |step| {
        move |source| MigrateError::Sql {
            path: path.clone(),
            step,
            source,
        }
    };
    let (conn, immutable) =
        crate::readonly::open_for_reading(path).map_err(sql("cannot open read-only"))?;
    // With --from-backup the schema and the data are read from the copy; the copy is kept
    // until the scan is over.
    let (schema, plan, stats, backup, _copy) = if opts.from_backup {
        let dir = opts.backup_dir.clone().unwrap_or_else(std::env::temp_dir);
        let (copy, backup) =
            backup(&conn, &dir, meta.len(), opts.backup_pages).map_err(|source| {
                MigrateError::Backup {
                    path: path.clone(),
                    dir: dir.clone(),
                    source,
                }
            })?;
        drop(conn);
        let copy_conn =
            rusqlite::Connection::open(copy.path()).map_err(sql("opening the backup copy"))?;
        let (schema, plan, stats) = read_and_scan(&copy_conn, opts, path)?;
        (schema, plan, stats, Some(backup), Some(copy))
    } else {
        let (schema, plan, stats) = read_and_scan(&conn, opts, path)?;
        drop(conn);
        (schema, plan, stats, None, None)
    };
    if immutable.is_some_and(|before| crate::readonly::changed_since(path, before)) {
        return Err(MigrateError::ChangedWhileRead(path.clone()));
    }
    if let Some(out) = &opts.emit_ddl {
        let text = ddl::emit(&schema, &plan, Some(&stats), &path.display().to_string());
        std::fs::write(out, text).map_err(|source| MigrateError::WriteDdl {
            path: out.clone(),
            source,
        })?;
    }
    Ok(report::build(path, meta.len(), &plan, &stats, backup))
}

fn read_and_scan(
    conn: &rusqlite::Connection,
    opts: &MigrateOptions,
    path: &Path,
) -> Result<(schema::Schema, plan::Plan, scan::ScanStats), MigrateError> {
    let sql = |step| {
        move |source| MigrateError::Sql {
            path: path.to_path_buf(),
            step,
            source,
        }
    };
    let schema =
        crate::readonly::retrying(|| schema::read(conn)).map_err(sql("reading the schema"))?;
    let plan = plan::plan(&schema);
    let stats = scan::scan(conn, &plan, opts.scan).map_err(sql("scanning the data"))?;
    Ok((schema, plan, stats))
}

/// Copies the database with the online backup API, `pages` per step with a pause between
/// steps (each step is a short read transaction on the source). A write by another connection
/// restarts the copy; after 50 restarts it gives up.
fn backup(
    src: &rusqlite::Connection,
    dir: &Path,
    size: u64,
    pages: i32,
) -> Result<(tempfile::NamedTempFile, BackupStats), BackupError> {
    use rusqlite::backup::StepResult;
    // The copy is as large as the database: refuse rather than fill the disk.
    let free = crate::probe::filesystem::free_bytes(dir).map_err(BackupError::FreeSpace)?;
    if free < size + size / 10 {
        return Err(BackupError::NoSpace {
            need_mb: size / 1_000_000,
            dir: dir.to_path_buf(),
            free_mb: free / 1_000_000,
        });
    }
    let copy = tempfile::Builder::new()
        .prefix("sqlite-ops-migrate-")
        .suffix(".db")
        .tempfile_in(dir)
        .map_err(BackupError::Create)?;
    let mut dst = rusqlite::Connection::open(copy.path())?;
    let started = Instant::now();
    let mut stats = BackupStats {
        seconds: 0.0,
        steps: 0,
        longest_step_seconds: 0.0,
        restarts: 0,
    };
    {
        let b = rusqlite::backup::Backup::new(src, &mut dst)?;
        let mut last_remaining = i32::MAX;
        loop {
            let t = Instant::now();
            let r = b.step(pages.max(1))?;
            stats.steps += 1;
            stats.longest_step_seconds = stats.longest_step_seconds.max(t.elapsed().as_secs_f64());
            let p = b.progress();
            if p.remaining > last_remaining {
                stats.restarts += 1;
                if stats.restarts > 50 {
                    return Err(BackupError::Restarts(stats.restarts));
                }
            }
            last_remaining = p.remaining;
            match r {
                StepResult::Done => break,
                StepResult::More | StepResult::Busy | StepResult::Locked => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
    stats.seconds = started.elapsed().as_secs_f64();
    Ok((copy, stats))
}

/// Exit codes: 0 ready, 1 work, 2 the data cannot load as it is.
pub fn exit_code(findings: &[Finding]) -> u8 {
    if findings.iter().any(|f| f.level == Level::Blocker) {
        2
    } else if findings.iter().any(|f| f.level == Level::Work) {
        1
    } else {
        0
    }
}
