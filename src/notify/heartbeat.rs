//! The heartbeat: a request to a URL every `interval` while the daemon polls and no critical
//! alert fires, from a task of its own.

use crate::http_client;
use crate::poller::{Published, Store};
use crate::rules::{AlertState, Severity};
use bytes::Bytes;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where and how often.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatSettings {
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
}

/// Its counters, exported as metrics.
#[derive(Debug, Default)]
pub struct HeartbeatStats {
    pub sent: AtomicU64,
    pub errors: AtomicU64,
    /// 1 while pings are held back (see [`withheld`]), else 0.
    pub withheld: AtomicU64,
    /// Ticks at which the ping was held back: how long the beats stopped, in intervals.
    pub held_back: AtomicU64,
    /// What the log was last told ("heartbeat sent", "heartbeat withheld: ..."): carried over a
    /// reload with the counters, so that a reload does not read as a start.
    pub told: std::sync::Mutex<Option<String>>,
}

/// Why no ping is due now, if none is: the poller has stopped publishing, or a critical alert
/// fires. Pure.
pub fn withheld(p: &Published, now: Instant, poll_interval: Duration) -> Option<String> {
    let fresh = p.at.is_some_and(|t| {
        now.saturating_duration_since(t) < poll_interval * 3 + Duration::from_secs(2)
    });
    if !fresh {
        return Some("the poller is not publishing".into());
    }
    p.alerts
        .iter()
        .find(|a| a.state == AlertState::Firing && a.severity == Severity::Critical)
        .map(|a| format!("{} fires on {}", a.alert, a.db))
}

/// Services such as healthchecks.io, Uptime Kuma or Cronitor page when the pings stop, which is
/// how a dead host, a dead daemon or a critical alert reaches a phone with nothing else
/// running. A task of its own: a slow or dead receiver delays nothing else.
///
/// Pings every `interval` (the first at once) until `stop` completes.
pub async fn run(
    settings: HeartbeatSettings,
    poll_interval: Duration,
    store: Arc<Store>,
    stats: Arc<HeartbeatStats>,
    stop: impl Future<Output = ()>,
) {
    let client = http_client::client();
    tokio::pin!(stop);
    // The first ping once the poller has published: a daemon still starting is not withheld.
    let mut published = store.subscribe();
    if store.latest().at.is_none() {
        tokio::select! {
            _ = published.changed() => {}
            _ = &mut stop => return,
        }
    }
    let mut ticks = tokio::time::interval(settings.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = &mut stop => return,
        }
        let reason = withheld(&store.latest(), Instant::now(), poll_interval);
        stats
            .withheld
            .store(u64::from(reason.is_some()), Ordering::Relaxed);
        if reason.is_some() {
            stats.held_back.fetch_add(1, Ordering::Relaxed);
        }
        let now_state = match reason {
            Some(why) => format!("heartbeat withheld: {why}"),
            None => {
                let sent = http_client::send_as(
                    &client,
                    (&settings.url, "the heartbeat URL"),
                    hyper::Request::get(&settings.url),
                    Bytes::new(),
                    settings.timeout,
                )
                .await;
                match sent {
                    Ok(_) => {
                        stats.sent.fetch_add(1, Ordering::Relaxed);
                        "heartbeat sent".to_string()
                    }
                    Err(e) => {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        format!("heartbeat failed: {e}")
                    }
                }
            }
        };
        // What was last logged, so that a state is told once, not at every tick.
        let mut told = stats.told.lock().unwrap_or_else(|e| e.into_inner());
        if told.as_deref() != Some(&now_state) {
            if now_state.starts_with("heartbeat sent") {
                tracing::info!(
                    "{now_state}; sending every {}",
                    humantime::format_duration(settings.interval)
                );
            } else {
                tracing::warn!("{now_state}");
            }
            *told = Some(now_state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::delivery::tests::alert;

    #[test]
    fn a_ping_is_held_back_by_a_stale_poller_or_a_critical_alert_only() {
        let now = Instant::now();
        let poll = Duration::from_secs(1);
        let mut p = Published::default();
        assert_eq!(
            withheld(&p, now, poll).unwrap(),
            "the poller is not publishing"
        );
        p.at = Some(now);
        assert_eq!(withheld(&p, now, poll), None);
        let mut warning = alert(AlertState::Firing);
        let mut pending = alert(AlertState::Pending);
        pending.severity = Severity::Critical;
        p.alerts = Arc::new(vec![warning.clone(), pending]);
        assert_eq!(
            withheld(&p, now, poll),
            None,
            "a warning or a pending alert pings"
        );
        warning.severity = Severity::Critical;
        p.alerts = Arc::new(vec![warning]);
        assert_eq!(
            withheld(&p, now, poll).unwrap(),
            "SQLiteDatabaseLarge fires on app"
        );
        p.alerts = Arc::new(vec![]);
        assert!(withheld(&p, now + Duration::from_secs(6), poll).is_some());
    }
}
