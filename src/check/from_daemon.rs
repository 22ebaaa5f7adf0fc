//! `check --daemon URL`: the daemon's pending and firing alerts laid over the sample's threshold
//! findings, so that `check` says what the running daemon says. The daemon has watched for
//! hours; the sample for seconds. A finding taken from the daemon says so (`source`).

use super::{Finding, Status};
use crate::rules::{Severity, RULES};
use crate::units::{format_against, format_value};
use serde::Deserialize;
use std::collections::HashMap;

/// One pending or firing alert of the daemon's `/api/v1/alerts`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DaemonAlert {
    pub db: String,
    pub alert: String,
    pub severity: Severity,
    pub state: String,
    pub value: f64,
    pub threshold: f64,
    pub summary: String,
}

/// The pending and firing alerts of `/api/v1/alerts`, by (db, alert), the highest severity of
/// each (firing before pending). Pure.
pub fn parse_alerts(
    body: &[u8],
) -> Result<HashMap<(String, String), DaemonAlert>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Alerts {
        alerts: Vec<DaemonAlert>,
    }
    let all: Alerts = serde_json::from_slice(body)?;
    let rank = |a: &DaemonAlert| (a.state == "firing", a.severity);
    let mut out: HashMap<(String, String), DaemonAlert> = HashMap::new();
    for a in all.alerts.into_iter().filter(|a| a.state != "resolved") {
        let key = (a.db.clone(), a.alert.clone());
        if out.get(&key).is_none_or(|kept| rank(&a) > rank(kept)) {
            out.insert(key, a);
        }
    }
    Ok(out)
}

/// Lays the daemon's alerts on `db` over its threshold findings: a firing alert sets the
/// status, value and summary; a pending one is said beside the sample's own verdict. The disk
/// alert is the filesystem's: looked up by `mountpoint`, the one `db` is on (left to the sample
/// when that is not known). Pure.
pub fn overlay(
    findings: &mut [Finding],
    (db, mountpoint): (&str, Option<&str>),
    alerts: &HashMap<(String, String), DaemonAlert>,
) {
    for f in findings.iter_mut() {
        let Some(name) = f.alert else { continue };
        let rule = RULES.iter().find(|r| r.alert == name);
        let subject = match rule.map(|r| r.scope) {
            Some(crate::rules::Scope::Filesystem) => match mountpoint {
                Some(m) => m,
                None => continue,
            },
            _ => db,
        };
        f.source = "daemon";
        let Some(a) = alerts.get(&(subject.to_string(), name.to_string())) else {
            // The daemon evaluates every threshold: silence is its verdict.
            if matches!(f.status, Status::Warning | Status::Critical) {
                f.summary = format!(
                    "{} (this sample only: the daemon, which has watched longer, does not alert)",
                    f.summary
                );
                f.status = Status::Ok;
            }
            continue;
        };
        let shown = rule.map(|r| format_against(r.unit, a.value, a.threshold));
        if a.state == "firing" {
            f.status = a.severity.into();
            f.summary = format!("firing in the daemon: {}", a.summary);
            f.value = shown.or(f.value.take());
            f.measured = Some(a.value);
            f.limit = Some(a.threshold);
            if let Some(r) = rule {
                f.threshold = Some(format!(
                    "{} {}",
                    r.op.promql(),
                    format_value(r.unit, a.threshold)
                ));
                f.fix = Some(r.fix.to_string());
            }
        } else {
            f.summary = format!(
                "{}; pending in the daemon at {} ({})",
                f.summary,
                shown.unwrap_or_else(|| a.value.to_string()),
                a.severity.as_str()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"alerts": [
      {"db": "app", "alert": "SQLiteReplicationLag", "severity": "warning", "state": "firing", "value": 181.2, "threshold": 10, "summary": "lag of app"},
      {"db": "app", "alert": "SQLiteReplicationLag", "severity": "critical", "state": "firing", "value": 181.2, "threshold": 60, "summary": "lag of app, critical"},
      {"db": "app", "alert": "SQLiteSnapshotPinned", "severity": "warning", "state": "pending", "value": 12, "threshold": 300, "summary": "pinned"},
      {"db": "app", "alert": "SQLiteDatabaseDown", "severity": "critical", "state": "resolved", "value": 0, "threshold": 1, "summary": "down"}
    ]}"#;

    fn finding(id: &'static str, alert: &'static str, status: Status) -> Finding {
        Finding {
            alert: Some(alert),
            ..Finding::new(id, status, "from the sample")
        }
    }

    #[test]
    fn the_daemon_s_firing_alert_decides_and_a_pending_one_is_said() {
        let alerts = parse_alerts(BODY.as_bytes()).unwrap();
        assert_eq!(alerts.len(), 2, "resolved ones are not kept: {alerts:?}");
        let mut f = vec![
            finding("replication_lag", "SQLiteReplicationLag", Status::Ok),
            finding("snapshot_age", "SQLiteSnapshotPinned", Status::Ok),
            finding("database_size", "SQLiteDatabaseLarge", Status::Warning),
            Finding::new("journal_mode", Status::Ok, "WAL mode"),
            finding("regions", "SQLiteMultiRegion", Status::Info),
        ];
        overlay(&mut f, ("app", None), &alerts);
        assert_eq!(
            f[0].status,
            Status::Critical,
            "the critical one: {:?}",
            f[0]
        );
        assert_eq!(f[0].value.as_deref(), Some("3m 1s"));
        assert_eq!(
            f[0].threshold.as_deref(),
            Some("> 1m"),
            "the level that fires"
        );
        assert!(
            f[0].fix.as_deref().is_some_and(|x| !x.contains("--daemon")),
            "{:?}",
            f[0].fix
        );
        assert_eq!(f[4].status, Status::Info, "not declared stays said");
        assert!(f[0].summary.contains("lag of app, critical"));
        assert_eq!(f[1].status, Status::Ok);
        assert!(
            f[1].summary
                .ends_with("pending in the daemon at 12s (warning)"),
            "{}",
            f[1].summary
        );
        assert_eq!(f[2].status, Status::Ok, "the daemon does not alert");
        assert_eq!((f[0].source, f[3].source), ("daemon", "sample"));
        // Another database's alerts are not this one's.
        let mut other = vec![finding(
            "replication_lag",
            "SQLiteReplicationLag",
            Status::Ok,
        )];
        overlay(&mut other, ("jobs", None), &alerts);
        assert_eq!(other[0].status, Status::Ok);
    }

    #[test]
    fn the_disk_alert_is_found_by_the_database_s_mountpoint() {
        let body = r#"{"alerts": [{"db": "/data", "alert": "SQLiteFilesystemLowSpace", "severity": "critical", "state": "firing", "value": 0.048, "threshold": 0.05, "summary": "The filesystem at /data has 4.8% free"}]}"#;
        let alerts = parse_alerts(body.as_bytes()).unwrap();
        let disk = || {
            vec![finding(
                "filesystem_free",
                "SQLiteFilesystemLowSpace",
                Status::Ok,
            )]
        };
        let mut on = disk();
        overlay(&mut on, ("app", Some("/data")), &alerts);
        assert_eq!(on[0].status, Status::Critical, "{:?}", on[0]);
        let mut elsewhere = disk();
        overlay(&mut elsewhere, ("app", Some("/other")), &alerts);
        assert_eq!(elsewhere[0].status, Status::Ok);
        let mut unknown = vec![finding(
            "filesystem_free",
            "SQLiteFilesystemLowSpace",
            Status::Warning,
        )];
        overlay(&mut unknown, ("app", None), &alerts);
        assert_eq!(
            (unknown[0].status, unknown[0].source),
            (Status::Warning, "sample"),
            "left to the sample"
        );
    }
}
