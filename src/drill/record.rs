//! Restore drills, the plain part: how a drill is set up, what the drills of each database
//! found (kept in [`Records`], read by the poller into each snapshot), and the pure decisions:
//! which Litestream versions can restore, whether the scratch folder has room.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Where restored copies live while they are checked, unless `restore_drill.scratch_dir` says.
pub const DEFAULT_SCRATCH: &str = "/var/tmp/sqlite-ops";
/// Longest one drill may take, unless `restore_drill.timeout` says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);
/// The Litestream binary, looked up in PATH, unless `restore_drill.litestream` says.
pub const DEFAULT_LITESTREAM: &str = "litestream";

/// How a database is drilled (config `restore_drill:`, global or per database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillSettings {
    pub interval: Duration,
    /// How soon after a database is first watched its first drill runs (at most `interval`):
    /// a restart does not put off the proof by a whole interval.
    pub first_after: Duration,
    /// Where restored copies live while they are checked; each drill gets a folder of its own
    /// here, removed when it ends.
    pub scratch_dir: PathBuf,
    /// The Litestream binary: a path, or a name looked up in PATH.
    pub litestream: PathBuf,
    /// Longest a drill may take, restore and checks together.
    pub timeout: Duration,
}

impl DrillSettings {
    /// One drill now with the defaults of `restore_drill:` (`check --restore-drill` of a
    /// database for which none is configured).
    pub fn one_off() -> Self {
        DrillSettings {
            interval: Duration::from_secs(86_400),
            first_after: Duration::ZERO,
            scratch_dir: DEFAULT_SCRATCH.into(),
            litestream: DEFAULT_LITESTREAM.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// What the last drills of one database found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrillRecord {
    /// The replica the copy came from (the database's first).
    pub replica: String,
    /// The drills' interval, in seconds.
    pub interval_seconds: f64,
    /// When drills of this database began to be scheduled (seconds since the epoch): a drill
    /// is stale once no success came within two intervals of this or of the last success.
    pub watched_since: f64,
    /// The last drill that ran to a verdict.
    pub last: Option<DrillResult>,
    /// Why the last attempt did not run, when it did not (no room, no binary, ...); cleared
    /// by the next drill that runs.
    pub refused: Option<String>,
    /// When a drill last succeeded (seconds since the epoch).
    pub last_success_at: Option<f64>,
    pub runs_total: u64,
    pub failures_total: u64,
}

/// One drill that ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrillResult {
    pub success: bool,
    /// When it finished (seconds since the epoch).
    pub finished_at: f64,
    pub duration_seconds: f64,
    /// Size of the restored copy.
    pub restored_bytes: Option<u64>,
    /// How old the newest data in the copy was when the replica was read: the replication
    /// lag at that moment (0 when the replica held every commit). The recovery point achieved.
    pub data_age_seconds: Option<f64>,
    /// Tables in the copy, and their rows.
    pub tables: Option<u64>,
    pub rows: Option<u64>,
    /// What the row counts were compared with, or why they were not.
    pub compared: String,
    /// Why it failed: Litestream's own error, the integrity check's, the counts'.
    pub error: Option<String>,
}

/// Litestream versions whose `restore -config FILE -o OUT DB` the drills use: 0.3 and 0.5,
/// as `litestream version` prints them (`v0.3.13`, `0.5.17`). Pure.
pub fn supported_version(printed: &str) -> Result<String, super::error::DrillError> {
    let v = printed.trim();
    let bare = v.strip_prefix('v').unwrap_or(v);
    let mut parts = bare.split('.');
    match (parts.next(), parts.next()) {
        (Some("0"), Some("3" | "5")) => Ok(v.to_string()),
        _ => Err(super::error::DrillError::Version(v.to_string())),
    }
}

/// When what `litestream restore` printed shows that it refused how it was called (a config
/// it cannot resolve the database in, a flag it does not know) rather than failing to restore
/// the backup: why, in words. Pure.
pub fn refused_invocation(said: &str) -> Option<&'static str> {
    const REFUSALS: [(&str, &str); 6] = [
        (
            "database not found in config",
            "Litestream did not find the database in the config it was given",
        ),
        (
            "flag provided but not defined",
            "this Litestream does not take a flag sqlite-ops gave it",
        ),
        (
            "no replicas",
            "the config it was given has no replica for the database",
        ),
        (
            "replica not found",
            "the config it was given has no such replica",
        ),
        (
            "config file not found",
            "Litestream did not find the config it was given",
        ),
        (
            "cannot load aws config",
            "Litestream could not set up its S3 client from its environment (0.5 refuses AWS_CA_BUNDLE, for one)",
        ),
    ];
    let said = said.to_ascii_lowercase();
    REFUSALS
        .iter()
        .find(|(text, _)| said.contains(text))
        .map(|(_, why)| *why)
}

/// Room a drill needs in the scratch folder for a database of `size` bytes: the copy, plus a
/// fifth of it or 16 MiB, whichever is more, for the WAL Litestream replays and the checks.
pub fn room_needed(size: u64) -> u64 {
    size.saturating_add((size / 5).max(16 << 20))
}

/// What the drills of every database found: posted by the drills, read by the poller into each
/// database's snapshot.
#[derive(Debug, Default)]
pub struct Records(Mutex<HashMap<String, std::sync::Arc<DrillRecord>>>);

impl Records {
    /// The record of `db`, shared: every poll's snapshot holds it until a drill changes it.
    pub fn get(&self, db: &str) -> Option<std::sync::Arc<DrillRecord>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(db)
            .cloned()
    }

    /// Changes the record of `db` (made when there is none).
    pub fn post(&self, db: &str, f: impl FnOnce(&mut DrillRecord)) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(std::sync::Arc::make_mut(
            map.entry(db.to_string()).or_default(),
        ));
    }

    /// Forgets the records of databases `keep` does not name.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|db, _| keep(db));
    }
}

impl DrillRecord {
    /// Seconds since a drill last succeeded, or since drills began when none has: the value
    /// the stale alert reads at `now`.
    pub fn since_success(&self, now: f64) -> f64 {
        (now - self.last_success_at.unwrap_or(self.watched_since)).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_call_is_told_from_a_failed_restore() {
        // What Litestream 0.5.17 prints for a database that only a dir: entry covers.
        let refused = "time=… level=INFO msg=… / Error: database not found in config: /data/app.db";
        assert!(refused_invocation(refused).is_some());
        // A damaged replica: the backup's fault.
        let failed = "Error: cannot calc restore plan: non-contiguous ltx files: have up to 0000000000000007 but next file starts at 0000000000000009";
        assert_eq!(refused_invocation(failed), None);
        assert_eq!(refused_invocation("decode ltx: unexpected EOF"), None);
    }

    #[test]
    fn versions_0_3_and_0_5_are_supported_as_litestream_prints_them() {
        assert_eq!(supported_version("v0.3.13\n").unwrap(), "v0.3.13");
        assert_eq!(supported_version("0.5.17").unwrap(), "0.5.17");
        assert!(supported_version("0.4.0")
            .unwrap_err()
            .to_string()
            .contains("(0.3 or 0.5)"));
        assert!(supported_version("development build").is_err());
        assert!(supported_version("").is_err());
    }

    #[test]
    fn room_is_the_copy_and_a_margin() {
        assert_eq!(room_needed(0), 16 << 20);
        assert_eq!(room_needed(1 << 30), (1 << 30) + (1 << 30) / 5);
        assert_eq!(room_needed(u64::MAX), u64::MAX);
    }

    #[test]
    fn staleness_counts_from_the_last_success_or_the_start() {
        let mut r = DrillRecord {
            watched_since: 100.0,
            ..Default::default()
        };
        assert_eq!(r.since_success(160.0), 60.0);
        r.last_success_at = Some(150.0);
        assert_eq!(r.since_success(160.0), 10.0);
        assert_eq!(r.since_success(0.0), 0.0);
    }
}
