//! Alert states across evaluations, as Prometheus keeps them: a breached threshold is pending
//! until it has held for the rule's `for`, then firing; when it clears, the alert is resolved and
//! kept for a while so that notifiers can deliver the resolution. Pure: time is passed in.

use super::catalogue::Severity;
use super::{conditions, render_text, DbThresholds};
use crate::monitor::DbSnapshot;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

/// How long a resolved alert stays listed (Prometheus keeps them 15 minutes too).
pub const RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Pending,
    Firing,
    Resolved,
}

/// One alert of one database at one severity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub db: String,
    pub alert: &'static str,
    pub severity: Severity,
    pub state: AlertState,
    /// The last value seen while the threshold was breached.
    pub value: f64,
    pub threshold: f64,
    /// When the threshold was first seen breached in this episode.
    #[serde(with = "humantime_serde")]
    pub active_since: SystemTime,
    #[serde(with = "humantime_serde")]
    pub fired_at: Option<SystemTime>,
    #[serde(with = "humantime_serde")]
    pub resolved_at: Option<SystemTime>,
    pub summary: String,
    pub description: String,
    pub runbook_url: String,
}

type Key = (String, &'static str, Severity);

/// A threshold breached in this evaluation.
struct Breach {
    value: f64,
    threshold: f64,
    for_: Duration,
    summary: String,
    description: String,
}

#[derive(Debug)]
struct Track {
    alert: Alert,
    since: Instant,
    resolved: Option<Instant>,
}

/// Keeps every alert's state between evaluations.
#[derive(Debug)]
pub struct Engine {
    runbook_base_url: String,
    tracks: BTreeMap<Key, Track>,
}

impl Engine {
    /// `runbook_base_url` is the runbook document; each alert links to its anchor there.
    pub fn new(runbook_base_url: &str) -> Self {
        Engine {
            runbook_base_url: runbook_base_url.to_string(),
            tracks: BTreeMap::new(),
        }
    }

    /// Evaluates every threshold of every database and returns the alerts that are pending,
    /// firing, or resolved within [`RESOLVED_RETENTION`], ordered by database, rule, severity.
    pub fn evaluate<'a>(
        &mut self,
        dbs: impl IntoIterator<Item = (&'a DbSnapshot, &'a DbThresholds)>,
        now: Instant,
        wall: SystemTime,
    ) -> Vec<Alert> {
        let mut breaches: BTreeMap<Key, Breach> = BTreeMap::new();
        for (snapshot, thresholds) in dbs {
            for c in conditions(snapshot, thresholds) {
                let Some(value) = c.value else { continue };
                for (severity, threshold) in c.setting.levels() {
                    if c.setting.rule.op.breached(value, threshold) {
                        let (summary, description) =
                            render_text(c.setting, snapshot, value, threshold);
                        breaches.insert(
                            (snapshot.name.clone(), c.setting.rule.alert, severity),
                            Breach {
                                value,
                                threshold,
                                for_: c.setting.for_,
                                summary,
                                description,
                            },
                        );
                    }
                }
            }
        }
        // What is no longer breached: pending is forgotten, firing is resolved, resolved ages out.
        self.tracks.retain(|key, t| {
            if breaches.contains_key(key) {
                return true;
            }
            match t.alert.state {
                AlertState::Pending => false,
                AlertState::Firing => {
                    t.alert.state = AlertState::Resolved;
                    t.alert.resolved_at = Some(wall);
                    t.resolved = Some(now);
                    true
                }
                AlertState::Resolved => t
                    .resolved
                    .is_some_and(|r| now.saturating_duration_since(r) < RESOLVED_RETENTION),
            }
        });
        for (key, b) in breaches {
            let runbook_url = format!("{}#{}", self.runbook_base_url, key.1.to_lowercase());
            let t = self.tracks.entry(key.clone()).or_insert_with(|| Track {
                alert: Alert {
                    db: key.0.clone(),
                    alert: key.1,
                    severity: key.2,
                    state: AlertState::Pending,
                    value: b.value,
                    threshold: b.threshold,
                    active_since: wall,
                    fired_at: None,
                    resolved_at: None,
                    summary: String::new(),
                    description: String::new(),
                    runbook_url,
                },
                since: now,
                resolved: None,
            });
            if t.alert.state == AlertState::Resolved {
                // A new episode.
                t.alert.state = AlertState::Pending;
                t.alert.active_since = wall;
                t.alert.fired_at = None;
                t.alert.resolved_at = None;
                t.since = now;
                t.resolved = None;
            }
            if t.alert.state == AlertState::Pending
                && now.saturating_duration_since(t.since) >= b.for_
            {
                t.alert.state = AlertState::Firing;
                t.alert.fired_at = Some(wall);
            }
            t.alert.value = b.value;
            t.alert.threshold = b.threshold;
            t.alert.summary = b.summary;
            t.alert.description = b.description;
        }
        self.tracks.values().map(|t| t.alert.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::Declared;
    use crate::rules::ThresholdsConfig;
    use std::path::Path;

    fn snapshot(size: u64) -> DbSnapshot {
        let mut s = DbSnapshot::new("app", Path::new("/x/app.db"), Declared::default());
        s.up = true;
        s.database_size_bytes = Some(size);
        s
    }

    fn thresholds(yaml: &str) -> DbThresholds {
        let layer: ThresholdsConfig = serde_yaml::from_str(yaml).unwrap();
        DbThresholds::resolve(&[("thresholds", &layer)]).unwrap()
    }

    fn states(alerts: &[Alert]) -> Vec<(&str, Severity, AlertState)> {
        alerts
            .iter()
            .map(|a| (a.alert, a.severity, a.state))
            .collect()
    }

    #[test]
    fn pending_for_then_firing_then_resolved_then_gone() {
        let t = thresholds("database_size: {warning: 1000, critical: 2000, for: 10s}\n");
        let mut e = Engine::new("https://r/runbooks.md");
        let t0 = Instant::now();
        let w0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |s: u64| (t0 + Duration::from_secs(s), w0 + Duration::from_secs(s));
        let big = snapshot(1500);
        let (i, w) = at(0);
        let a = e.evaluate([(&big, &t)], i, w);
        assert_eq!(
            states(&a),
            [(
                "SQLiteDatabaseLarge",
                Severity::Warning,
                AlertState::Pending
            )]
        );
        let (i, w) = at(9);
        assert_eq!(e.evaluate([(&big, &t)], i, w)[0].state, AlertState::Pending);
        let (i, w) = at(10);
        let a = e.evaluate([(&big, &t)], i, w);
        assert_eq!(a[0].state, AlertState::Firing);
        assert_eq!(a[0].active_since, w0);
        assert_eq!(a[0].fired_at, Some(w));
        assert_eq!(a[0].value, 1500.0);
        assert_eq!(a[0].threshold, 1000.0);
        assert!(
            a[0].description.contains("1.5 kB") && a[0].description.contains("1 kB"),
            "{}",
            a[0].description
        );
        assert_eq!(
            a[0].runbook_url,
            "https://r/runbooks.md#sqlitedatabaselarge"
        );
        // Falling below: resolved, kept for the retention, then forgotten.
        let small = snapshot(10);
        let (i, w) = at(11);
        let a = e.evaluate([(&small, &t)], i, w);
        assert_eq!(a[0].state, AlertState::Resolved);
        assert_eq!(a[0].resolved_at, Some(w));
        let later = RESOLVED_RETENTION.as_secs() + 12;
        let (i, w) = at(later);
        assert!(e.evaluate([(&small, &t)], i, w).is_empty());
    }

    #[test]
    fn a_pending_alert_that_clears_never_fires_and_zero_for_fires_at_once() {
        let t = thresholds("database_size: {warning: 1000, critical: 2000, for: 10s}\n");
        let mut e = Engine::new("r");
        let t0 = Instant::now();
        let w0 = SystemTime::now();
        e.evaluate([(&snapshot(1500), &t)], t0, w0);
        assert!(e
            .evaluate([(&snapshot(10), &t)], t0 + Duration::from_secs(5), w0)
            .is_empty());
        let a = e.evaluate([(&snapshot(1500), &t)], t0 + Duration::from_secs(12), w0);
        assert_eq!(a[0].state, AlertState::Pending, "the clock restarted");

        let t = thresholds("database_size: {warning: 1000, critical: 2000}\n");
        let a = Engine::new("r").evaluate([(&snapshot(2500), &t)], t0, w0);
        assert_eq!(
            states(&a),
            [
                ("SQLiteDatabaseLarge", Severity::Warning, AlertState::Firing),
                (
                    "SQLiteDatabaseLarge",
                    Severity::Critical,
                    AlertState::Firing
                )
            ]
        );
    }

    #[test]
    fn an_unmeasured_figure_is_not_a_breach_and_down_is() {
        let t = DbThresholds::default();
        let mut down = DbSnapshot::new("app", Path::new("/x"), Declared::default());
        down.up = false;
        let t0 = Instant::now();
        let w0 = SystemTime::now();
        let mut e = Engine::new("r");
        let a = e.evaluate([(&down, &t)], t0, w0);
        assert_eq!(
            states(&a),
            [(
                "SQLiteDatabaseDown",
                Severity::Critical,
                AlertState::Pending
            )]
        );
        let a = e.evaluate([(&down, &t)], t0 + Duration::from_secs(60), w0);
        assert_eq!(a[0].state, AlertState::Firing);
    }
}
