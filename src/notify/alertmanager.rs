//! Pushes the rule engine's alerts to Alertmanager (`POST /api/v2/alerts`) as Prometheus does;
//! the sending, retries and counters are [`super::delivery`]'s.

use super::delivery::{self, Channel, Destination, Post};
use crate::poller::Store;
use crate::rules::{Alert, AlertState};
use bytes::Bytes;
use hyper::header::CONTENT_TYPE;
use hyper::Request;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Most alerts in one POST (Prometheus sends 256 too).
const MAX_BATCH: usize = 256;

/// Where and how to push.
#[derive(Debug, Clone)]
pub struct NotifierSettings {
    pub urls: Vec<String>,
    pub resend_interval: Duration,
    pub timeout: Duration,
    /// The `instance` label.
    pub instance: String,
    /// The `job` label.
    pub job: String,
    /// More labels on every alert (config `alertmanager.labels`).
    pub labels: BTreeMap<String, String>,
    /// Base of `generatorURL`.
    pub external_url: String,
}

/// One alert as Alertmanager's API v2 (`postableAlert`) takes it.
#[derive(Debug, Serialize)]
pub struct Postable {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<&'static str, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// The API form of `alert` at `now`. Pure.
pub fn postable(alert: &Alert, settings: &NotifierSettings, now: SystemTime) -> Postable {
    // The labels Prometheus gives the same alert from `sqlite-ops rules` (alertname, db or
    // mountpoint, severity, job, instance, and what the user adds), so that Alertmanager holds one alert
    // when both paths run.
    let mut labels = settings.labels.clone();
    labels.extend([
        ("alertname".to_string(), alert.alert.to_string()),
        (
            crate::rules::catalogue::subject_label(alert.alert).to_string(),
            alert.db.clone(),
        ),
        ("severity".to_string(), alert.severity.as_str().to_string()),
        ("instance".to_string(), settings.instance.clone()),
        ("job".to_string(), settings.job.clone()),
    ]);
    let annotations = BTreeMap::from([
        ("summary", alert.summary.clone()),
        ("description", alert.description.clone()),
        ("runbook_url", alert.runbook_url.clone()),
    ]);
    let ends_at = match alert.resolved_at {
        Some(t) if alert.state == AlertState::Resolved => t,
        _ => now + 4 * settings.resend_interval,
    };
    Postable {
        labels,
        annotations,
        starts_at: rfc3339(alert.active_since),
        ends_at: rfc3339(ends_at),
        generator_url: format!(
            "{}/api/v1/alerts",
            settings.external_url.trim_end_matches('/')
        ),
    }
}

/// One Alertmanager, as a [`Destination`].
struct Alertmanager {
    endpoint: String,
    settings: Arc<NotifierSettings>,
}

impl Destination for Alertmanager {
    fn resend(&self) -> Option<Duration> {
        Some(self.settings.resend_interval)
    }
    fn max_batch(&self) -> usize {
        MAX_BATCH
    }
    fn timeout(&self) -> Duration {
        self.settings.timeout
    }
    fn max_backoff(&self) -> Duration {
        self.settings.resend_interval
    }
    fn kind(&self) -> &'static str {
        "alertmanager"
    }
    fn post(&self, batch: &[&Alert], now: SystemTime) -> Post {
        let body: Vec<Postable> = batch
            .iter()
            .map(|a| postable(a, &self.settings, now))
            .collect();
        // Serialising plain structs of strings and numbers cannot fail.
        let json = serde_json::to_vec(&body).unwrap_or_default();
        Post {
            url: self.endpoint.clone(),
            builder: Request::post(&self.endpoint).header(CONTENT_TYPE, "application/json"),
            body: Bytes::from(json),
        }
    }
}

/// Firing alerts are sent when they start and again every resend interval with `endsAt` a few
/// intervals ahead (so Alertmanager resolves them by itself if we die), resolved alerts once
/// with `endsAt` = when they resolved. Each URL (an HA pair is two) gets every alert from its
/// own task.
///
/// Pushes alerts to every configured Alertmanager (one channel each) until `shutdown`
/// completes.
pub async fn run(
    settings: NotifierSettings,
    store: Arc<Store>,
    channels: Vec<Arc<Channel>>,
    shutdown: impl Future<Output = ()>,
) {
    let settings = Arc::new(settings);
    let destinations = channels
        .into_iter()
        .map(|c| {
            let am: Arc<dyn Destination> = Arc::new(Alertmanager {
                endpoint: format!("{}/api/v2/alerts", c.stats.url.trim_end_matches('/')),
                settings: settings.clone(),
            });
            (am, c)
        })
        .collect();
    delivery::run(destinations, store, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::delivery::tests::alert;

    fn settings() -> NotifierSettings {
        NotifierSettings {
            urls: vec![],
            resend_interval: Duration::from_secs(60),
            timeout: Duration::from_secs(1),
            instance: "host:9934".into(),
            job: "sqlite-ops".into(),
            labels: BTreeMap::from([("env".to_string(), "prod".to_string())]),
            external_url: "http://host:9934/".into(),
        }
    }

    #[test]
    fn firing_alerts_end_ahead_and_resolved_ones_end_when_resolved() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100);
        let p = postable(&alert(AlertState::Firing), &settings(), now);
        assert_eq!(p.labels["alertname"], "SQLiteDatabaseLarge");
        assert_eq!(p.labels["instance"], "host:9934");
        assert_eq!(p.labels["job"], "sqlite-ops");
        assert_eq!(p.labels["env"], "prod");
        assert_eq!(p.starts_at, "2023-11-14T22:13:20.000Z");
        assert_eq!(p.ends_at, "2023-11-14T22:19:00.000Z");
        assert_eq!(p.generator_url, "http://host:9934/api/v1/alerts");
        let p = postable(&alert(AlertState::Resolved), &settings(), now);
        assert_eq!(p.ends_at, "2023-11-14T22:14:50.000Z");
    }
}
