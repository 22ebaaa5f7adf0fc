//! The audits of `check` that read the snapshot and file metadata (no SQL): thresholds as
//! findings, journal mode, page size, freelist, filesystem type, permissions, the SQLite version
//! that last wrote the file, and Litestream's presence.

use super::{Finding, Status};
use crate::format::db_header::JournalKind;
use crate::monitor::DbSnapshot;
use crate::rules::catalogue::Settles;
use crate::rules::{render_text, Condition};
use crate::units::{format_value, Unit};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Freelist share above which VACUUM is worth it, and the least it must return.
const FREELIST_RATIO: f64 = 0.25;
const FREELIST_MIN_BYTES: u64 = 64 * 1024 * 1024;

/// A threshold as a finding; `None` for figures that do not apply (WAL figures of a rollback
/// database).
pub fn threshold_finding(c: &Condition, s: &DbSnapshot, sampled: f64) -> Option<Finding> {
    let rule = c.setting.rule;
    let shown_level = c.breached.map(|(_, t)| t).or(c.setting.mildest())?;
    let threshold = format!(
        "{} {}",
        rule.op.promql(),
        format_value(rule.unit, shown_level)
    );
    let finding = |status, summary: String| Finding {
        alert: Some(rule.alert),
        ..Finding::new(rule.key, status, summary)
    };
    let Some(value) = c.value else {
        // Declared facts left out are worth saying; other figures just do not apply.
        return matches!(rule.key, "backend_engineers" | "regions").then(|| {
            finding(Status::Info, "not declared in config".into())
                .threshold(threshold)
                .fix(format!(
                    "Declare team.{} in the config so this migration signal is judged.",
                    rule.key
                ))
        });
    };
    let (mut shown, threshold) = shown_value(rule, value, s, threshold);
    let untold = match (rule.key, c.breached) {
        ("replication_lag", None) => lag_untold(s, shown_level),
        _ => None,
    };
    if untold.is_some() {
        // The sample's few seconds are a floor, not the lag: never a bare "7.8s" that reads
        // as a replica 7.8 s behind.
        shown = format!("at least {shown}");
    }
    let f = match c.breached {
        Some((severity, t)) => {
            finding(severity.into(), render_text(c.setting, s, value, t).0).fix(rule.fix)
        }
        None if rule.key == "database_down" => finding(Status::Ok, "readable".into()),
        None if untold.is_some() => {
            finding(Status::Unknown, untold.unwrap_or_default()).fix("Ask the running daemon, which has watched longer (check --daemon URL), or sample longer (--sample).")
        }
        // A clock that ran through the whole sample started before it: the sample cannot tell
        // how long it has really run (a reader pinning the WAL for minutes reads as the sample's
        // few seconds).
        None if rule.settles == Settles::AfterThreshold && value >= 1.0 && value >= 0.9 * sampled => {
            finding(
                Status::Unknown,
                format!(
                    "{} for the whole {} sample: it began before the sample, which cannot tell how long ago",
                    rule.label,
                    format_value(Unit::Seconds, sampled)
                ),
            )
            .fix("Ask the running daemon, which has watched longer (check --daemon URL), or sample longer than the threshold (--sample).")
        }
        None => finding(Status::Ok, format!("{} within threshold", rule.label)),
    };
    Some(Finding {
        measured: Some(value),
        limit: Some(shown_level),
        ..f.value(shown).threshold(threshold)
    })
}

/// A threshold finding's value and threshold as people read them.
fn shown_value(
    rule: &crate::rules::RuleDef,
    value: f64,
    s: &DbSnapshot,
    threshold: String,
) -> (String, String) {
    if rule.key == "database_down" {
        let shown = if s.up {
            "readable".to_string()
        } else {
            s.error.clone().unwrap_or_default()
        };
        (shown, "readable".to_string())
    } else if rule.key == "replica_down" {
        // 1 means every replica answers: say so, not a bare count a reader takes for "down".
        let shown = if value >= 1.0 {
            "every replica readable"
        } else {
            "a replica unreadable or empty"
        };
        (shown.to_string(), "readable".to_string())
    } else if matches!(rule.key, "write_tx_per_sec" | "writer_utilisation") {
        // check judges the sample, where the daemon waits for the rule's `for`.
        (
            format!("{} over the sample", format_value(rule.unit, value)),
            threshold,
        )
    } else if rule.key == "writer_processes" {
        // The daemon counts the writers of the last minute; a sample of seconds sees fewer.
        (
            format!(
                "{} seen writing in the sample",
                format_value(rule.unit, value)
            ),
            threshold,
        )
    } else {
        (format_value(rule.unit, value), threshold)
    }
}

/// Whether a replica of `s` lacks commits it was seen to miss (its lag is above 0).
pub fn lacks_commits(s: &DbSnapshot) -> bool {
    s.litestream
        .iter()
        .any(|r| r.lag_seconds.is_some_and(|l| l > 0.0))
}

/// Why a replication lag under `threshold` cannot be taken as OK from this sample: at its end
/// (after the grace a healthy Litestream needs to upload) a replica still lacks commits and
/// holds nothing newer than `threshold` ago, so the oldest commit it lacks may have waited
/// longer than the sample could see.
fn lag_untold(s: &DbSnapshot, threshold: f64) -> Option<String> {
    s.litestream
        .iter()
        .filter(|r| r.lag_seconds.is_some_and(|l| l > 0.0))
        .filter_map(|r| Some((r, s.polled_at - r.replicated_at?)))
        .find(|(_, since)| *since >= threshold)
        .map(|(r, since)| {
            let secs = |v: f64| format_value(Unit::Seconds, v);
            format!(
                "replica {} lacks commits and holds nothing newer than {} ago; the oldest it lacks has waited at least {}, and this sample cannot tell whether longer",
                r.replica,
                secs(since),
                secs(r.lag_seconds.unwrap_or(0.0))
            )
        })
}

/// Audits from the snapshot and the files' metadata.
pub fn file_audits(s: &DbSnapshot, replicated: bool) -> Vec<Finding> {
    let mut out = vec![journal_mode(s), page_size(s), freelist(s), processes(s)];
    out.extend(filesystem_type(s));
    out.push(permissions(&s.path));
    out.extend(writer_version(s));
    if !replicated {
        // With litestream.yml the replicas are judged by the replication thresholds instead.
        out.push(litestream(&s.path));
    }
    out
}

fn journal_mode(s: &DbSnapshot) -> Finding {
    match (s.journal_mode, s.locking_mode) {
        (Some(JournalKind::Wal), Some("exclusive")) => Finding::new(
            "journal_mode",
            Status::Info,
            "WAL in exclusive locking mode: one connection only, and no wal-index to read",
        )
        .value("wal (exclusive locking)")
        .threshold("wal")
        .fix("Use locking_mode=NORMAL unless only one connection ever opens the database."),
        (Some(JournalKind::Wal), _) => Finding::new("journal_mode", Status::Ok, "WAL mode")
            .value("wal")
            .threshold("wal"),
        (other, _) => Finding::new(
            "journal_mode",
            Status::Warning,
            "rollback journal: every write blocks every reader",
        )
        .value(other.map_or("unknown", |j| j.as_str()))
        .threshold("wal")
        .fix("Run PRAGMA journal_mode=WAL once (it persists in the file)."),
    }
}

/// Every process holding one of the database's locks (from /proc/locks), named.
fn processes(s: &DbSnapshot) -> Finding {
    let writers: Vec<_> = s
        .processes
        .iter()
        .filter(|p| p.roles.iter().any(|r| r == "writer"))
        .collect();
    let list = s
        .processes
        .iter()
        .map(|p| p.describe(true))
        .collect::<Vec<_>>()
        .join("; ");
    let summary = if s.processes.is_empty() {
        "no process holds a lock on it now".to_string()
    } else {
        format!("{} process(es) hold its locks: {list}", s.processes.len())
    };
    Finding::new("processes", Status::Ok, summary).value(format!(
        "{} open, {} writing now",
        s.processes.len(),
        writers.len()
    ))
}

fn page_size(s: &DbSnapshot) -> Finding {
    let size = s.page_size_bytes.unwrap_or(0);
    let f = Finding::new(
        "page_size",
        if size >= 4096 {
            Status::Ok
        } else {
            Status::Warning
        },
        if size >= 4096 {
            "page size matches the storage's 4,096-byte blocks".to_string()
        } else {
            format!("page size {size} B is smaller than a disk block: more I/O per row")
        },
    )
    .value(format!("{size} B"))
    .threshold(">= 4096 B");
    if size < 4096 {
        f.fix("Run PRAGMA page_size=4096 and then VACUUM (in WAL mode, switch to DELETE for the VACUUM).")
    } else {
        f
    }
}

fn freelist(s: &DbSnapshot) -> Finding {
    let pages = s.pages.unwrap_or(0).max(1);
    let free = s.freelist_pages.unwrap_or(0);
    let bytes = free * u64::from(s.page_size_bytes.unwrap_or(0));
    let ratio = free as f64 / pages as f64;
    let value = format!(
        "{} free of {} pages ({}), auto_vacuum {}",
        free,
        pages,
        format_value(Unit::Bytes, bytes as f64),
        s.auto_vacuum.unwrap_or("unknown")
    );
    let threshold = format!(
        "< {} and < {}",
        format_value(Unit::Ratio, FREELIST_RATIO),
        format_value(Unit::Bytes, FREELIST_MIN_BYTES as f64)
    );
    if ratio > FREELIST_RATIO && bytes >= FREELIST_MIN_BYTES {
        Finding::new(
            "freelist",
            Status::Warning,
            format!(
                "{} of the file is free pages: VACUUM would return {}",
                format_value(Unit::Ratio, ratio),
                format_value(Unit::Bytes, bytes as f64)
            ),
        )
        .value(value)
        .threshold(threshold)
        .fix("Run VACUUM in a quiet period (it rewrites the file and needs as much free disk), or set auto_vacuum=INCREMENTAL.")
    } else {
        Finding::new("freelist", Status::Ok, "little unused space")
            .value(value)
            .threshold(threshold)
    }
}

fn filesystem_type(s: &DbSnapshot) -> Option<Finding> {
    let fs = s.filesystem.as_ref()?;
    let network = crate::probe::filesystem::is_network(&fs.fs_type);
    let value = format!("{} on {}", fs.fs_type, fs.mount_point.display());
    Some(if network {
        Finding::new(
            "filesystem_type",
            Status::Critical,
            "the database is on a network filesystem, where SQLite's locks are not reliable: corruption risk",
        )
        .value(value)
        .threshold("a local filesystem")
        .fix("Move the database to a local disk; replicate with Litestream instead of sharing the file.")
    } else {
        Finding::new("filesystem_type", Status::Ok, "local filesystem")
            .value(value)
            .threshold("a local filesystem")
    })
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

fn permissions(path: &Path) -> Finding {
    let Ok(db) = std::fs::metadata(path) else {
        return Finding::new(
            "permissions",
            Status::Unknown,
            "cannot stat the database file",
        );
    };
    let mut problems = Vec::new();
    for (name, suffix) in [("database", ""), ("-wal", "-wal")] {
        if let Ok(m) = std::fs::metadata(sidecar(path, suffix)) {
            if m.mode() & 0o004 != 0 {
                problems.push(format!("{name} is readable by every user"));
            }
        }
    }
    for suffix in ["-wal", "-shm"] {
        if let Ok(m) = std::fs::metadata(sidecar(path, suffix)) {
            if m.uid() != db.uid() {
                problems.push(format!(
                    "{suffix} is owned by uid {} but the database by uid {}",
                    m.uid(),
                    db.uid()
                ));
            }
        }
    }
    let value = format!("mode {:o}, uid {}", db.mode() & 0o7777, db.uid());
    if problems.is_empty() {
        Finding::new(
            "permissions",
            Status::Ok,
            "private to its owner, -wal and -shm owned alike",
        )
        .value(value)
    } else {
        Finding::new("permissions", Status::Warning, problems.join("; "))
            .value(value)
            .threshold("not world-readable; one owner")
            .fix("chmod 600 (or 640 for a group) the database and -wal; run every process that opens it as the same user.")
    }
}

/// Whether SQLite `version` (`3.45.1`) has the WAL-reset corruption bug: 3.7.0 up to 3.51.2,
/// fixed in 3.51.3 and in the 3.44.6 and 3.50.7 backports. `None` when not a version.
pub fn has_wal_reset_bug(version: &str) -> Option<bool> {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    let (major, minor, patch) = (
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    );
    let v = (major, minor, patch);
    let affected = ((3, 7, 0)..=(3, 51, 2)).contains(&v)
        && !(minor == 44 && patch >= 6)
        && !(minor == 50 && patch >= 7);
    Some(major == 3 && affected)
}

fn writer_version(s: &DbSnapshot) -> Option<Finding> {
    let v = s.last_writer_version.as_deref()?;
    let threshold = ">= 3.51.3 (or 3.44.6, 3.50.7)";
    Some(match has_wal_reset_bug(v) {
        Some(true) => Finding::new(
            "sqlite_version",
            Status::Warning,
            format!("last written by SQLite {v}, which has the WAL-reset corruption bug (a checkpoint racing a WAL restart can corrupt the database)"),
        )
        .value(v)
        .threshold(threshold)
        .fix("Upgrade the SQLite library of every process that writes this database to 3.51.3 or later (or 3.44.6 / 3.50.7)."),
        Some(false) => Finding::new("sqlite_version", Status::Ok, format!("last written by SQLite {v}"))
            .value(v)
            .threshold(threshold),
        None => Finding::new("sqlite_version", Status::Unknown, "the header names no SQLite version").value(v),
    })
}

fn litestream(path: &Path) -> Finding {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let meta = dir.join(format!(".{name}-litestream"));
    if !meta.is_dir() {
        return Finding::new(
            "litestream",
            Status::Info,
            "no Litestream state next to the database: is it replicated?",
        )
        .value("not found")
        .threshold(format!("{} exists", meta.display()))
        .fix("Replicate the WAL with Litestream (or declare its meta-path in config).");
    }
    let layout = if meta.join("ltx").is_dir() {
        "v0.5 (ltx)"
    } else if meta.join("generations").is_dir() {
        "v0.3 (generations)"
    } else {
        "unknown layout"
    };
    let newest = newest_mtime(&meta, 3);
    let age = newest.and_then(|t| SystemTime::now().duration_since(t).ok());
    Finding::new(
        "litestream",
        Status::Ok,
        format!("Litestream state found, {layout}"),
    )
    .value(match age {
        Some(a) => format!(
            "updated {} ago",
            format_value(Unit::Seconds, a.as_secs_f64())
        ),
        None => "no files yet".into(),
    })
}

/// The newest modification time of any file under `dir`, `depth` levels down at most.
fn newest_mtime(dir: &Path, depth: u32) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let Ok(m) = entry.metadata() else { continue };
        let t = if m.is_dir() && depth > 0 {
            newest_mtime(&entry.path(), depth - 1)
        } else {
            m.modified().ok()
        };
        newest = newest.max(t);
    }
    newest
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replica that lacks commits and holds nothing newer than the threshold: the sample's
    /// lag is a floor, and says so (a walkthrough read a bare "7.8s" against a replica 6 minutes
    /// stale).
    #[test]
    fn a_lag_the_sample_cannot_tell_is_a_floor_not_a_figure() {
        use crate::monitor::{Declared, ReplicaSnapshot};
        let mut s = DbSnapshot::new("app", Path::new("/x/app.db"), Declared::default());
        s.up = true;
        s.polled_at = 10_000.0;
        s.litestream = vec![ReplicaSnapshot {
            replica: "file".into(),
            lag_seconds: Some(7.8),
            replicated_at: Some(10_000.0 - 398.0),
            ..ReplicaSnapshot::default()
        }]
        .into();
        let thresholds = crate::rules::DbThresholds::default();
        let conditions = crate::rules::conditions(&s, &thresholds);
        let lag = conditions
            .iter()
            .find(|c| c.setting.rule.key == "replication_lag")
            .unwrap();
        let f = threshold_finding(lag, &s, 7.8).unwrap();
        assert_eq!(f.status, Status::Unknown, "{f:?}");
        assert_eq!(f.value.as_deref(), Some("at least 7.8s"), "{f:?}");
        assert!(f.summary.contains("6m 38s ago"), "{f:?}");
    }

    #[test]
    fn wal_reset_bug_versions() {
        for v in ["3.7.0", "3.40.1", "3.44.5", "3.50.6", "3.51.2"] {
            assert_eq!(has_wal_reset_bug(v), Some(true), "{v}");
        }
        for v in ["3.6.23", "3.44.6", "3.50.7", "3.51.3", "3.54.1"] {
            assert_eq!(has_wal_reset_bug(v), Some(false), "{v}");
        }
        assert_eq!(has_wal_reset_bug("x"), None);
    }
}
