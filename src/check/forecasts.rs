//! What `check` takes from a running daemon (`--daemon URL`): its forecasts, drawn from hours or
//! days of history (else those the check's own sample can support: a few seconds say little of
//! growth, and the forecasts say so), and what its restore drills last found.

use crate::drill::DrillRecord;
use crate::history::outlook::{self, Forecast};
use crate::history::DbHistory;
use crate::monitor::DbSnapshot;
use crate::target::Target;
use std::collections::HashMap;
use std::time::Duration;

/// How long the daemon gets to answer.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(3);

/// What a daemon said, per database name.
#[derive(Debug, Default)]
pub struct FromDaemon {
    pub forecasts: HashMap<String, Vec<Forecast>>,
    pub drills: HashMap<String, DrillRecord>,
    /// Its pending and firing alerts, by (db, alert).
    pub alerts: HashMap<(String, String), super::from_daemon::DaemonAlert>,
}

/// Reads the daemon at `base`; an error says why nothing could be.
pub fn from_daemon(base: &str) -> Result<FromDaemon, String> {
    let base = base.trim_end_matches('/');
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start an async runtime: {e}"))?;
    let get = |path: &str| {
        let url = format!("{base}{path}");
        let body = runtime.block_on(async {
            let client = crate::http_client::client();
            let req = hyper::Request::get(&url);
            crate::http_client::send(&client, &url, req, bytes::Bytes::new(), DAEMON_TIMEOUT).await
        });
        body.map_err(|e| e.to_string()).map(|b| (url, b))
    };
    let (url, history) = get("/api/v1/history?range=1h")?;
    let forecasts = parse(&history).map_err(|e| format!("{url}: {e}"))?;
    let (url, status) = get("/api/v1/status")?;
    let drills = parse_drills(&status).map_err(|e| format!("{url}: {e}"))?;
    let (url, alerts) = get("/api/v1/alerts")?;
    let alerts = super::from_daemon::parse_alerts(&alerts).map_err(|e| format!("{url}: {e}"))?;
    Ok(FromDaemon {
        forecasts,
        drills,
        alerts,
    })
}

/// The restore drills of `/api/v1/status`, by database. Pure.
pub fn parse_drills(body: &[u8]) -> Result<HashMap<String, DrillRecord>, String> {
    #[derive(serde::Deserialize)]
    struct Db {
        name: String,
        restore_drill: Option<DrillRecord>,
    }
    #[derive(serde::Deserialize)]
    struct Status {
        databases: Vec<Db>,
    }
    let s: Status =
        serde_json::from_slice(body).map_err(|e| format!("not sqlite-ops status JSON ({e})"))?;
    Ok(s.databases
        .into_iter()
        .filter_map(|d| Some((d.name, d.restore_drill?)))
        .collect())
}

/// The forecasts of `/api/v1/history`, by database. Pure.
pub fn parse(body: &[u8]) -> Result<HashMap<String, Vec<Forecast>>, String> {
    #[derive(serde::Deserialize)]
    struct Db {
        db: String,
        forecasts: Vec<Forecast>,
    }
    #[derive(serde::Deserialize)]
    struct History {
        databases: Vec<Db>,
    }
    let h: History =
        serde_json::from_slice(body).map_err(|e| format!("not sqlite-ops history JSON ({e})"))?;
    Ok(h.databases
        .into_iter()
        .map(|d| (d.db, d.forecasts))
        .collect())
}

/// The forecasts the sample supports, for `target`.
pub fn from_sample(target: &Target, history: &DbHistory, s: &DbSnapshot) -> Vec<Forecast> {
    outlook::forecasts(history, s, &target.thresholds, s.polled_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_forecasts_of_the_history_api() {
        let body = br#"{"now": 1, "databases": [{"db": "app", "ranges": {}, "forecasts": [
            {"signal": "disk_full", "severity": null, "limit": 0.0, "value": 5e9, "reached": false,
             "eta_seconds": 864000.0, "basis_seconds": 604800.0, "text": "Free disk 5 GB: full in 10 days"}]}]}"#;
        let f = parse(body).unwrap();
        assert_eq!(f["app"][0].eta_seconds, Some(864000.0));
        assert_eq!(f["app"][0].signal, "disk_full");
        assert!(parse(b"<html>")
            .unwrap_err()
            .contains("not sqlite-ops history JSON"));
    }
}
