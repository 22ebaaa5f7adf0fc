//! Pushes the rule engine's alerts to Alertmanager (`POST /api/v2/alerts`), as Prometheus does:
//! firing alerts are sent when they start and again every resend interval with `endsAt` a few
//! intervals ahead (so Alertmanager resolves them by itself if we die), resolved alerts once with
//! `endsAt` = when they resolved. Each URL (an HA pair is two) gets every alert from its own task.
//!
//! What is pending delivery is never a growing queue: each attempt rebuilds its batch from the
//! latest published alerts (at most rules x databases, resolved ones for 15 minutes), so an
//! Alertmanager that is down costs retries with backoff and nothing else. Polling and scraping
//! never wait on it.

use crate::poller::Store;
use crate::rules::{Alert, AlertState, Severity};
use bytes::Bytes;
use hyper::header::CONTENT_TYPE;
use hyper::Request;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Most alerts in one POST (Prometheus sends 256 too).
const MAX_BATCH: usize = 256;
/// First retry delay after a failed POST; doubles up to the resend interval.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Where and how to push.
#[derive(Debug, Clone)]
pub struct NotifierSettings {
    pub urls: Vec<String>,
    pub resend_interval: Duration,
    pub timeout: Duration,
    /// The `instance` label.
    pub instance: String,
    /// Base of `generatorURL`.
    pub external_url: String,
}

/// Delivery counters of one Alertmanager, exported as metrics.
#[derive(Debug, Default)]
pub struct NotifierStats {
    pub url: String,
    /// Alerts delivered (firing and resolved).
    pub sent: AtomicU64,
    /// POSTs that failed (connection, timeout or non-2xx status).
    pub errors: AtomicU64,
    /// Alerts due for delivery that have not been delivered yet.
    pub pending: AtomicU64,
}

/// One Alertmanager's delivery state: its counters and what it has been told. Kept across
/// reloads for every URL that stays configured, so a SIGHUP neither resends nor forgets.
#[derive(Debug, Default)]
pub struct Channel {
    pub stats: Arc<NotifierStats>,
    ledger: std::sync::Mutex<Ledger>,
}

impl Channel {
    /// One channel per URL of `urls`, reusing those of `previous` with the same URL.
    pub fn for_urls(urls: &[String], previous: &[Arc<Channel>]) -> Vec<Arc<Channel>> {
        urls.iter()
            .map(|url| {
                previous
                    .iter()
                    .find(|c| c.stats.url == *url)
                    .cloned()
                    .unwrap_or_else(|| {
                        Arc::new(Channel {
                            stats: Arc::new(NotifierStats {
                                url: url.clone(),
                                ..NotifierStats::default()
                            }),
                            ledger: Default::default(),
                        })
                    })
            })
            .collect()
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One alert as Alertmanager's API v2 (`postableAlert`) takes it.
#[derive(Debug, Serialize)]
pub struct Postable {
    pub labels: BTreeMap<&'static str, String>,
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
    let labels = BTreeMap::from([
        ("alertname", alert.alert.to_string()),
        ("db", alert.db.clone()),
        ("severity", alert.severity.as_str().to_string()),
        ("instance", settings.instance.clone()),
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

type Key = (String, &'static str, Severity);

/// What one Alertmanager has been told, to decide what is due. Pure.
#[derive(Debug, Default)]
pub struct Ledger {
    told: HashMap<Key, (AlertState, Instant)>,
}

impl Ledger {
    /// The alerts due now: firing ones not told or told `resend` ago, and resolutions of alerts
    /// that were told firing.
    pub fn due<'a>(&self, alerts: &'a [Alert], now: Instant, resend: Duration) -> Vec<&'a Alert> {
        alerts
            .iter()
            .filter(|a| {
                let told = self.told.get(&(a.db.clone(), a.alert, a.severity));
                match a.state {
                    AlertState::Pending => false,
                    AlertState::Firing => told.is_none_or(|&(state, at)| {
                        state != AlertState::Firing || now.saturating_duration_since(at) >= resend
                    }),
                    AlertState::Resolved => {
                        told.is_some_and(|&(state, _)| state == AlertState::Firing)
                    }
                }
            })
            .collect()
    }

    /// Records that `sent` were delivered at `now`, and forgets alerts no longer listed.
    pub fn delivered(&mut self, sent: &[&Alert], alerts: &[Alert], now: Instant) {
        for a in sent {
            self.told
                .insert((a.db.clone(), a.alert, a.severity), (a.state, now));
        }
        self.told.retain(|k, _| {
            alerts
                .iter()
                .any(|a| a.db == k.0 && a.alert == k.1 && a.severity == k.2)
        });
    }
}

use crate::http_client::{self, Client as HttpClient};

/// Pushes alerts to every configured Alertmanager (one channel each) until `shutdown`
/// completes.
pub async fn run(
    settings: NotifierSettings,
    store: Arc<Store>,
    channels: Vec<Arc<Channel>>,
    shutdown: impl Future<Output = ()>,
) {
    let client = http_client::client();
    let settings = Arc::new(settings);
    let tasks: Vec<_> = channels
        .into_iter()
        .map(|c| tokio::spawn(push_to(settings.clone(), client.clone(), store.clone(), c)))
        .collect();
    shutdown.await;
    for t in tasks {
        t.abort();
    }
}

async fn push_to(
    settings: Arc<NotifierSettings>,
    client: HttpClient,
    store: Arc<Store>,
    channel: Arc<Channel>,
) {
    let stats = &channel.stats;
    let endpoint = format!("{}/api/v2/alerts", stats.url.trim_end_matches('/'));
    let mut published = store.subscribe();
    let mut failures = 0u32;
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        let alerts = store.latest().alerts;
        let now = Instant::now();
        let due = channel.ledger().due(&alerts, now, settings.resend_interval);
        stats.pending.store(due.len() as u64, Ordering::Relaxed);
        let may_send = retry_at.is_none_or(|r| tokio::time::Instant::now() >= r);
        if !due.is_empty() && may_send {
            let wall = SystemTime::now();
            let mut delivered = Vec::new();
            let mut error = None;
            for batch in due.chunks(MAX_BATCH) {
                let body: Vec<Postable> =
                    batch.iter().map(|a| postable(a, &settings, wall)).collect();
                match post(&client, &endpoint, &body, settings.timeout).await {
                    Ok(()) => delivered.extend_from_slice(batch),
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            stats
                .sent
                .fetch_add(delivered.len() as u64, Ordering::Relaxed);
            channel
                .ledger()
                .delivered(&delivered, &alerts, Instant::now());
            match error {
                None => {
                    if failures > 0 {
                        tracing::info!(alertmanager = %stats.url, "alerts delivered again");
                    }
                    failures = 0;
                    retry_at = None;
                    stats.pending.store(0, Ordering::Relaxed);
                }
                Some(e) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    failures += 1;
                    let backoff = FIRST_BACKOFF
                        .saturating_mul(1 << failures.min(16))
                        .min(settings.resend_interval);
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(alertmanager = %stats.url, error = %e, failures, retry_in = ?backoff, "cannot deliver alerts");
                    }
                    retry_at = Some(tokio::time::Instant::now() + backoff);
                }
            }
        }
        // Wake for the next publish, the next retry, or the next resend, whichever is first.
        let wake =
            retry_at.unwrap_or_else(|| tokio::time::Instant::now() + settings.resend_interval);
        tokio::select! {
            changed = published.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

async fn post(
    client: &HttpClient,
    endpoint: &str,
    body: &[Postable],
    timeout: Duration,
) -> Result<(), http_client::HttpError> {
    // Serialising plain structs of strings and numbers cannot fail.
    let json = serde_json::to_vec(body).unwrap_or_default();
    let req = Request::post(endpoint).header(CONTENT_TYPE, "application/json");
    http_client::send(client, endpoint, req, Bytes::from(json), timeout)
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(state: AlertState) -> Alert {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        Alert {
            db: "app".into(),
            alert: "SQLiteDatabaseLarge",
            severity: Severity::Warning,
            state,
            value: 2e9,
            threshold: 1e9,
            active_since: t,
            fired_at: Some(t),
            resolved_at: (state == AlertState::Resolved).then_some(t + Duration::from_secs(90)),
            summary: "s".into(),
            description: "d".into(),
            runbook_url: "https://x/runbooks.md#sqlitedatabaselarge".into(),
        }
    }

    fn settings() -> NotifierSettings {
        NotifierSettings {
            urls: vec![],
            resend_interval: Duration::from_secs(60),
            timeout: Duration::from_secs(1),
            instance: "host:9934".into(),
            external_url: "http://host:9934/".into(),
        }
    }

    #[test]
    fn firing_alerts_end_ahead_and_resolved_ones_end_when_resolved() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100);
        let p = postable(&alert(AlertState::Firing), &settings(), now);
        assert_eq!(p.labels["alertname"], "SQLiteDatabaseLarge");
        assert_eq!(p.labels["instance"], "host:9934");
        assert_eq!(p.starts_at, "2023-11-14T22:13:20.000Z");
        assert_eq!(p.ends_at, "2023-11-14T22:19:00.000Z");
        assert_eq!(p.generator_url, "http://host:9934/api/v1/alerts");
        let p = postable(&alert(AlertState::Resolved), &settings(), now);
        assert_eq!(p.ends_at, "2023-11-14T22:14:50.000Z");
    }

    #[test]
    fn ledger_sends_new_resends_late_and_resolves_once() {
        let t0 = Instant::now();
        let resend = Duration::from_secs(60);
        let mut ledger = Ledger::default();
        let pending = [alert(AlertState::Pending)];
        assert!(ledger.due(&pending, t0, resend).is_empty());
        let resolved = [alert(AlertState::Resolved)];
        assert!(
            ledger.due(&resolved, t0, resend).is_empty(),
            "never told firing"
        );
        let firing = [alert(AlertState::Firing)];
        let due = ledger.due(&firing, t0, resend);
        assert_eq!(due.len(), 1);
        ledger.delivered(&due, &firing, t0);
        assert!(ledger
            .due(&firing, t0 + Duration::from_secs(59), resend)
            .is_empty());
        assert_eq!(ledger.due(&firing, t0 + resend, resend).len(), 1);
        let due = ledger.due(&resolved, t0 + Duration::from_secs(1), resend);
        assert_eq!(due.len(), 1);
        ledger.delivered(&due, &resolved, t0);
        assert!(ledger.due(&resolved, t0 + resend * 2, resend).is_empty());
        ledger.delivered(&[], &[], t0);
        assert!(ledger.told.is_empty(), "forgets alerts no longer listed");
    }
}
