//! Delivering alert changes over HTTP, shared by the Alertmanager push and the webhooks: what
//! each destination has been told (the [`Ledger`]), its counters, and the loop that sends what
//! is due with backoff.

use crate::http_client::{self, Client, HttpError};
use crate::poller::Store;
use crate::rules::{Alert, AlertState, Severity};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// First retry delay after a failed POST; doubles up to [`Destination::max_backoff`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Delivery counters of one destination, exported as metrics.
#[derive(Debug, Default)]
pub struct NotifierStats {
    /// The destination as shown in labels and logs: the URL of an Alertmanager, the name of a
    /// webhook (its URL is a secret).
    pub url: String,
    /// Alerts delivered (firing and resolved).
    pub sent: AtomicU64,
    /// POSTs that failed (connection, timeout or non-2xx status).
    pub errors: AtomicU64,
    /// Alerts due for delivery that have not been delivered yet.
    pub pending: AtomicU64,
}

/// One destination's delivery state: its counters and what it has been told. Kept across
/// reloads for every destination that stays configured, so a SIGHUP neither resends nor
/// forgets.
#[derive(Debug, Default)]
pub struct Channel {
    /// What identifies the destination across reloads (its URL and settings).
    key: String,
    pub stats: Arc<NotifierStats>,
    ledger: std::sync::Mutex<Ledger>,
}

impl Channel {
    /// One channel per (key, shown name), reusing those of `previous` with the same key.
    pub fn for_keys(keys: &[(String, String)], previous: &[Arc<Channel>]) -> Vec<Arc<Channel>> {
        keys.iter()
            .map(|(key, shown)| {
                previous
                    .iter()
                    .find(|c| c.key == *key)
                    .cloned()
                    .unwrap_or_else(|| {
                        Arc::new(Channel {
                            key: key.clone(),
                            stats: Arc::new(NotifierStats {
                                url: shown.clone(),
                                ..NotifierStats::default()
                            }),
                            ledger: Default::default(),
                        })
                    })
            })
            .collect()
    }

    /// One channel per URL, shown as itself.
    pub fn for_urls(urls: &[String], previous: &[Arc<Channel>]) -> Vec<Arc<Channel>> {
        let keys: Vec<_> = urls.iter().map(|u| (u.clone(), u.clone())).collect();
        Self::for_keys(&keys, previous)
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type Key = (String, &'static str, Severity);

/// What one destination has been told, to decide what is due. Pure.
#[derive(Debug, Default)]
pub struct Ledger {
    told: HashMap<Key, (AlertState, Instant)>,
}

impl Ledger {
    /// The alerts due now: firing ones not told, or told `resend` ago (never again when
    /// `None`), and resolutions of alerts that were told firing.
    pub fn due<'a>(
        &self,
        alerts: &'a [Alert],
        now: Instant,
        resend: Option<Duration>,
    ) -> Vec<&'a Alert> {
        alerts
            .iter()
            .filter(|a| {
                let told = self.told.get(&(a.db.clone(), a.alert, a.severity));
                match a.state {
                    AlertState::Pending => false,
                    AlertState::Firing => told.is_none_or(|&(state, at)| {
                        state != AlertState::Firing
                            || resend.is_some_and(|r| now.saturating_duration_since(at) >= r)
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

/// One HTTP request carrying a batch of alerts.
pub struct Post {
    pub url: String,
    pub builder: hyper::http::request::Builder,
    pub body: Bytes,
}

/// Where alerts go and in what form.
pub trait Destination: Send + Sync + 'static {
    /// Firing alerts are told again this often; `None`: once.
    fn resend(&self) -> Option<Duration>;
    /// Most alerts in one request.
    fn max_batch(&self) -> usize;
    fn timeout(&self) -> Duration;
    /// The longest wait between retries.
    fn max_backoff(&self) -> Duration;
    /// The request for `batch` at `now`.
    fn post(&self, batch: &[&Alert], now: SystemTime) -> Post;
    /// The field that names the destination in logs.
    fn kind(&self) -> &'static str;
}

/// What is pending is never a growing queue: each attempt rebuilds its batch from the latest
/// published alerts (at most rules x databases, resolved ones for 15 minutes), so a destination
/// that is down costs retries and nothing else, and polling and scraping never wait on it.
///
/// Delivers to every destination (each with its channel) from its own task until `shutdown`
/// completes.
pub async fn run(
    destinations: Vec<(Arc<dyn Destination>, Arc<Channel>)>,
    store: Arc<Store>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let client = http_client::client();
    let tasks: Vec<_> = destinations
        .into_iter()
        .map(|(d, c)| tokio::spawn(deliver(d, client.clone(), store.clone(), c)))
        .collect();
    shutdown.await;
    for t in tasks {
        t.abort();
    }
}

/// Delivers the published alerts that are due to `channel`'s destination, until aborted.
pub async fn deliver(
    destination: Arc<dyn Destination>,
    client: Client,
    store: Arc<Store>,
    channel: Arc<Channel>,
) {
    let stats = &channel.stats;
    let kind = destination.kind();
    let mut published = store.subscribe();
    let mut failures = 0u32;
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        let alerts = store.latest().alerts;
        let due = channel
            .ledger()
            .due(&alerts, Instant::now(), destination.resend());
        stats.pending.store(due.len() as u64, Ordering::Relaxed);
        let may_send = retry_at.is_none_or(|r| tokio::time::Instant::now() >= r);
        if !due.is_empty() && may_send {
            let (delivered, error) = send_batches(&*destination, &client, stats, &due).await;
            stats
                .sent
                .fetch_add(delivered.len() as u64, Ordering::Relaxed);
            channel
                .ledger()
                .delivered(&delivered, &alerts, Instant::now());
            match error {
                None => {
                    if failures > 0 {
                        tracing::info!(destination = kind, to = %stats.url, "alerts delivered again");
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
                        .min(destination.max_backoff());
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(destination = kind, to = %stats.url, error = %e, failures, retry_in = %humantime::format_duration(backoff), "cannot deliver alerts");
                    }
                    retry_at = Some(tokio::time::Instant::now() + backoff);
                }
            }
        }
        // Wake for the next publish, the next retry, or the next resend, whichever is first.
        let idle = destination.resend().unwrap_or(Duration::from_secs(3600));
        let wake = retry_at.unwrap_or_else(|| tokio::time::Instant::now() + idle);
        tokio::select! {
            changed = published.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

/// Sends `due` in batches; returns those delivered and the error that stopped the rest.
async fn send_batches<'a>(
    destination: &dyn Destination,
    client: &Client,
    stats: &NotifierStats,
    due: &[&'a Alert],
) -> (Vec<&'a Alert>, Option<HttpError>) {
    let wall = SystemTime::now();
    let mut delivered = Vec::new();
    for batch in due.chunks(destination.max_batch()) {
        let post = destination.post(batch, wall);
        let sent = http_client::send_as(
            client,
            (&post.url, &stats.url),
            post.builder,
            post.body,
            destination.timeout(),
        )
        .await;
        match sent {
            Ok(_) => delivered.extend_from_slice(batch),
            Err(e) => return (delivered, Some(e)),
        }
    }
    (delivered, None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn alert(state: AlertState) -> Alert {
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

    #[test]
    fn ledger_sends_new_resends_late_and_resolves_once() {
        let t0 = Instant::now();
        let resend = Some(Duration::from_secs(60));
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
        assert_eq!(
            ledger
                .due(&firing, t0 + Duration::from_secs(60), resend)
                .len(),
            1
        );
        assert!(
            ledger
                .due(&firing, t0 + Duration::from_secs(86_400), None)
                .is_empty(),
            "without resend, a firing alert is told once"
        );
        let due = ledger.due(&resolved, t0 + Duration::from_secs(1), resend);
        assert_eq!(due.len(), 1);
        ledger.delivered(&due, &resolved, t0);
        assert!(ledger
            .due(&resolved, t0 + Duration::from_secs(120), resend)
            .is_empty());
        ledger.delivered(&[], &[], t0);
        assert!(ledger.told.is_empty(), "forgets alerts no longer listed");
    }

    #[test]
    fn channels_carry_over_by_key_and_show_their_name() {
        let first = Channel::for_keys(&[("https://h/secret".into(), "ops".into())], &[]);
        first[0].stats.sent.store(3, Ordering::Relaxed);
        let again = Channel::for_keys(
            &[
                ("https://h/secret".into(), "ops".into()),
                ("https://h/other".into(), "dev".into()),
            ],
            &first,
        );
        assert!(Arc::ptr_eq(&first[0], &again[0]));
        assert_eq!(again[0].stats.url, "ops");
        assert_eq!(again[1].stats.sent.load(Ordering::Relaxed), 0);
    }
}
