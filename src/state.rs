//! The state file (config `state_file:`): the pending and firing alerts, written whenever they
//! change and read back at start, so that a restart or a deploy neither resolves a true alert in
//! Alertmanager nor restarts its `for` clock.

use crate::rules::{Alert, AlertState, Severity};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub const SCHEMA: &str = "sqlite-ops/state/v1";

/// What the file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    pub schema: String,
    #[serde(with = "humantime_serde")]
    pub saved_at: SystemTime,
    pub alerts: Vec<Alert>,
}

/// Why the state file could not be read or written: the file and the cause.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read the state file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the state file {} is not sqlite-ops state ({SCHEMA}): {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("cannot write the state file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The alerts that are saved: the pending and firing ones.
fn saved(alerts: &[Alert]) -> impl Iterator<Item = &Alert> {
    alerts.iter().filter(|a| a.state != AlertState::Resolved)
}

/// The pending and firing alerts among `alerts`, as saved. Pure.
pub fn to_save(alerts: &[Alert]) -> Vec<Alert> {
    saved(alerts).cloned().collect()
}

/// What decides whether the state file must be written again: which alerts are saved, in what
/// state, since when; not their changing values. Pure.
pub fn identity(alerts: &[Alert]) -> Vec<(&str, &'static str, Severity, AlertState, SystemTime)> {
    saved(alerts)
        .map(|a| (a.db.as_str(), a.alert, a.severity, a.state, a.active_since))
        .collect()
}

/// Reads the state file; `Ok(None)` when there is none yet (a first start).
pub fn load(path: &Path) -> Result<Option<Saved>, StateError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let saved: Saved = serde_json::from_str(&text).map_err(|e| StateError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if saved.schema != SCHEMA {
        return Err(StateError::Invalid {
            path: path.to_path_buf(),
            message: format!("schema {:?}", saved.schema),
        });
    }
    Ok(Some(saved))
}

/// Writes `alerts` as the state at `now`: a temporary file next to it, synced, then renamed, so
/// a crash leaves the old state or the new one, never half of one. The state file is the
/// daemon's own, never next to what it watches unless configured so.
pub fn save(path: &Path, alerts: Vec<Alert>, now: SystemTime) -> Result<(), StateError> {
    let saved = Saved {
        schema: SCHEMA.into(),
        saved_at: now,
        alerts,
    };
    let write_err = |source| StateError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let json = serde_json::to_vec_pretty(&saved).map_err(|e| write_err(e.into()))?;
    let mut f = std::fs::File::create(&tmp).map_err(write_err)?;
    f.write_all(&json)
        .and_then(|_| f.sync_all())
        .map_err(write_err)?;
    std::fs::rename(&tmp, path).map_err(write_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn alert(state: AlertState) -> Alert {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        Alert {
            db: "app".into(),
            alert: "SQLiteTeamOutgrown",
            severity: Severity::Warning,
            state,
            value: 5.0,
            threshold: 3.0,
            active_since: t,
            fired_at: (state != AlertState::Pending).then_some(t),
            resolved_at: None,
            summary: "s".into(),
            description: "d".into(),
            runbook_url: "r".into(),
        }
    }

    #[test]
    fn round_trips_pending_and_firing_and_leaves_resolved_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert!(load(&path).unwrap().is_none(), "no file yet");
        let alerts = [
            alert(AlertState::Pending),
            alert(AlertState::Firing),
            alert(AlertState::Resolved),
        ];
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100);
        save(&path, to_save(&alerts), now).unwrap();
        let back = load(&path).unwrap().unwrap();
        assert_eq!(back.saved_at, now);
        assert_eq!(back.alerts.len(), 2);
        assert_eq!(back.alerts[1].state, AlertState::Firing);
        assert_eq!(back.alerts[1].active_since, alerts[1].active_since);
    }

    #[test]
    fn a_file_written_before_alerts_were_saved_whole_still_loads() {
        // As 0.x up to issue 30 wrote it: no resolved_at or runbook_url; a rule since removed.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(
            &path,
            r#"{"schema": "sqlite-ops/state/v1", "saved_at": "2023-11-14T22:13:20Z", "alerts": [
              {"db": "app", "alert": "SQLiteTeamOutgrown", "severity": "warning", "state": "firing",
               "value": 5.0, "threshold": 3.0, "active_since": "2023-11-14T22:13:20Z",
               "fired_at": "2023-11-14T22:13:20Z", "summary": "s", "description": "d"},
              {"db": "app", "alert": "SQLiteGone", "severity": "info", "state": "pending",
               "value": 1.0, "threshold": 1.0, "active_since": "2023-11-14T22:13:20Z"}]}"#,
        )
        .unwrap();
        let back = load(&path).unwrap().unwrap();
        assert_eq!(
            back.alerts[0],
            Alert {
                runbook_url: String::new(),
                ..alert(AlertState::Firing)
            }
        );
        assert_eq!(back.alerts[1].alert, "", "a rule this build does not know");
    }

    #[test]
    fn errors_name_the_file_and_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{not json").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(
            e.contains("state.json") && e.contains("key must be a string"),
            "{e}"
        );
        let e = save(
            &dir.path().join("no/such/dir/state.json"),
            vec![],
            SystemTime::now(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("no/such/dir/state.json") && e.contains("No such file"),
            "{e}"
        );
    }
}
