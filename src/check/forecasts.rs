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

/// Why `check --daemon` took nothing from the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot start an async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Http(#[from] crate::http_client::HttpError),
    #[error("{url}: not sqlite-ops {what} JSON ({source})")]
    NotOurs {
        url: String,
        what: &'static str,
        source: serde_json::Error,
    },
}

/// Reads the daemon at `base`.
pub fn from_daemon(base: &str) -> Result<FromDaemon, DaemonError> {
    let base = base.trim_end_matches('/');
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;
    let get = |path: &str, what: &'static str| {
        let url = format!("{base}{path}");
        let body = runtime.block_on(async {
            let client = crate::http_client::client();
            let req = hyper::Request::get(&url);
            crate::http_client::send(&client, &url, req, bytes::Bytes::new(), DAEMON_TIMEOUT).await
        })?;
        let not_ours = move |source| DaemonError::NotOurs { url, what, source };
        Ok::<_, DaemonError>((body, not_ours))
    };
    let (history, not_ours) = get("/api/v1/history?range=1h", "history")?;
    let forecasts = parse(&history).map_err(not_ours)?;
    let (status, not_ours) = get("/api/v1/status", "status")?;
    let drills = parse_drills(&status).map_err(not_ours)?;
    let (alerts, not_ours) = get("/api/v1/alerts", "alerts")?;
    let alerts = super::from_daemon::parse_alerts(&alerts).map_err(not_ours)?;
    Ok(FromDaemon {
        forecasts,
        drills,
        alerts,
    })
}

/// The `databases` list that `/api/v1/status` and `/api/v1/history` both answer with. Pure.
fn databases<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Vec<T>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Envelope<T> {
        databases: Vec<T>,
    }
    serde_json::from_slice::<Envelope<T>>(body).map(|e| e.databases)
}

/// The restore drills of `/api/v1/status`, by database. Pure.
pub fn parse_drills(body: &[u8]) -> Result<HashMap<String, DrillRecord>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Db {
        name: String,
        restore_drill: Option<DrillRecord>,
    }
    Ok(databases::<Db>(body)?
        .into_iter()
        .filter_map(|d| Some((d.name, d.restore_drill?)))
        .collect())
}

/// The forecasts of `/api/v1/history`, by database. Pure.
pub fn parse(body: &[u8]) -> Result<HashMap<String, Vec<Forecast>>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Db {
        db: String,
        forecasts: Vec<Forecast>,
    }
    Ok(databases::<Db>(body)?
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
        assert!(parse(b"<html>").is_err());
        assert!(parse(br#"{"forecasts": []}"#).is_err(), "no databases list");
    }
}
