//! Alert states across evaluations, as Prometheus keeps them: a breached threshold is pending
//! until it has held for the rule's `for`, then firing; when it clears, the alert is resolved and
//! kept for a while so that notifiers can deliver the resolution. Pure: time is passed in.

use super::catalogue::{Settles, Severity, RULES};
use super::{render_text, DbThresholds, RuleSetting};
use crate::monitor::DbSnapshot;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

/// How long a resolved alert stays listed (Prometheus keeps them 15 minutes too).
pub const RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);
/// Alerts saved longer ago than this start afresh (Prometheus's `for` outage tolerance is 1h
/// too): after a long outage nobody remembers the old episode.
pub const RESTORE_TOLERANCE: Duration = Duration::from_secs(60 * 60);
/// Time for the first polls and replica reads after a start (`Settles::AtOnce`), and the slack
/// added to the other settling times.
pub const SETTLE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Pending,
    Firing,
    Resolved,
}

/// One alert of one database (or filesystem) at one severity: what the engine tracks, the API
/// serves and the state file keeps across a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The subject: the database's name, or the filesystem's mount point for a rule of
    /// [`super::Scope::Filesystem`] (labelled `mountpoint` then, see `catalogue::subject_label`).
    pub db: String,
    /// The rule's alert name; read back from a state file as the catalogue's own name, or ""
    /// for a rule this build does not know (which `Engine::restore` drops).
    #[serde(deserialize_with = "rule_name")]
    pub alert: AlertName,
    pub severity: Severity,
    pub state: AlertState,
    /// The last value seen while the threshold was breached.
    pub value: f64,
    pub threshold: f64,
    /// When the threshold was first seen breached in this episode.
    #[serde(with = "humantime_serde")]
    pub active_since: SystemTime,
    #[serde(with = "humantime_serde", default)]
    pub fired_at: Option<SystemTime>,
    #[serde(with = "humantime_serde", default)]
    pub resolved_at: Option<SystemTime>,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub runbook_url: String,
}

/// A rule's alert name, the catalogue's own string. Named so that serde's derive, which borrows
/// any field written `&str` from its input, reads it through `rule_name` instead.
pub type AlertName = &'static str;

/// An alert name as the catalogue spells it ("" when it names no rule).
fn rule_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let name = String::deserialize(d)?;
    Ok(RULES
        .iter()
        .find(|r| r.alert == name)
        .map_or("", |r| r.alert))
}

type Key = (String, &'static str, Severity);

/// A threshold breached in this evaluation.
struct Breach<'a> {
    value: f64,
    threshold: f64,
    for_: Duration,
    /// What the text is rendered from, when it changed (see `Track::text_of`).
    setting: &'a RuleSetting,
    snapshot: &'a DbSnapshot,
}

impl Breach<'_> {
    /// Everything the alert's text depends on besides the database's name.
    fn text_inputs(&self) -> TextInputs {
        let holder = self
            .snapshot
            .wal
            .as_ref()
            .map_or("none", |w| w.pinned_holder());
        // Where a replica's chain breaks: a second gap or a damaged file, found while the alert
        // fires with the same value, is news the text must carry.
        let gap = self
            .snapshot
            .litestream
            .iter()
            .find_map(|r| r.chain.as_ref().and_then(|c| c.gap()))
            .map(|g| {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                g.hash(&mut h);
                h.finish()
            });
        (
            self.value.to_bits(),
            self.threshold.to_bits(),
            holder,
            self.for_,
            gap,
        )
    }
}

/// Value, threshold (as bits), the pinning reader's role, `for`, and a hash of where a chain
/// breaks.
type TextInputs = (u64, u64, &'static str, Duration, Option<u64>);

#[derive(Debug)]
struct Track {
    alert: Alert,
    since: Instant,
    resolved: Option<Instant>,
    /// A firing alert carried across a restart is not resolved before this: its value is not
    /// measured as before yet (see [`Settles`]).
    held_until: Option<Instant>,
    /// Time already pending before `since` (in a previous run): counted towards `for`.
    credit: Duration,
    /// What the summary and description were last rendered from: ten thousand databases
    /// breaching a disk-space threshold at once are not ten thousand texts every poll.
    text_of: Option<TextInputs>,
}

/// Every threshold breached by `dbs` now, at each severity.
fn breaches<'a>(
    dbs: impl IntoIterator<Item = (&'a DbSnapshot, &'a DbThresholds)>,
) -> BTreeMap<Key, Breach<'a>> {
    let mut out = BTreeMap::new();
    for (snapshot, thresholds) in dbs {
        for setting in thresholds.rules.iter() {
            let rule = setting.rule;
            let Some(value) = (rule.value)(snapshot) else {
                continue;
            };
            // Most figures of most databases breach nothing: their subject is not spelt out
            // (ten thousand tenants' rules each cycle).
            if !setting.levels().any(|(_, t)| rule.op.breached(value, t)) {
                continue;
            }
            // The database's name, or (for the disk) its filesystem's mount point: the first
            // database seen on a filesystem speaks for all of them, which share its figure and,
            // the threshold being global, its level.
            let Some(subject) = super::subject(rule, snapshot) else {
                continue;
            };
            for (severity, threshold) in setting.levels() {
                if rule.op.breached(value, threshold) {
                    out.entry((subject.clone(), rule.alert, severity))
                        .or_insert(Breach {
                            value,
                            threshold,
                            for_: setting.for_,
                            setting,
                            snapshot,
                        });
                }
            }
        }
    }
    out
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
        let breaches = breaches(dbs);
        self.retire(&breaches, now, wall);
        for (key, b) in breaches {
            self.advance(key, b, now, wall);
        }
        self.tracks.values().map(|t| t.alert.clone()).collect()
    }

    /// What is no longer breached: pending is forgotten, firing is resolved (unless held after
    /// a restart), resolved ages out.
    fn retire(&mut self, breaches: &BTreeMap<Key, Breach>, now: Instant, wall: SystemTime) {
        self.tracks.retain(|key, t| {
            if breaches.contains_key(key) {
                return true;
            }
            match t.alert.state {
                AlertState::Pending => false,
                AlertState::Firing if t.held_until.is_some_and(|h| now < h) => true,
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
    }

    /// A breach seen now: a new alert is pending, a resolved one starts a new episode, a
    /// pending one fires once it has held for the rule's `for`.
    fn advance(&mut self, key: Key, b: Breach, now: Instant, wall: SystemTime) {
        let base = &self.runbook_base_url;
        let runbook_url = || format!("{base}#{}", key.1.to_lowercase());
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
                runbook_url: runbook_url(),
            },
            since: now,
            resolved: None,
            held_until: None,
            credit: Duration::ZERO,
            text_of: None,
        });
        if t.alert.state == AlertState::Resolved {
            t.alert.state = AlertState::Pending;
            t.alert.active_since = wall;
            t.alert.fired_at = None;
            t.alert.resolved_at = None;
            t.since = now;
            t.credit = Duration::ZERO;
            t.resolved = None;
        }
        if t.alert.state == AlertState::Pending
            && now.saturating_duration_since(t.since) + t.credit >= b.for_
        {
            t.alert.state = AlertState::Firing;
            t.alert.fired_at = Some(wall);
        }
        // Measured breached again: a restored alert is an ordinary one from here on.
        t.held_until = None;
        t.alert.value = b.value;
        t.alert.threshold = b.threshold;
        let inputs = b.text_inputs();
        if t.text_of != Some(inputs) {
            (t.alert.summary, t.alert.description) =
                render_text(b.setting, b.snapshot, b.value, b.threshold);
            t.text_of = Some(inputs);
        }
    }

    /// Takes back what a previous run saved at `saved_at`, as Prometheus restores its `for`
    /// state: a pending alert keeps the time it has been pending, and a firing alert stays
    /// firing with its start time, so Alertmanager sees the same alert go on. A firing alert is
    /// not resolved before its rule's value is measured again as before ([`Settles`]): a
    /// restart is no recovery. Alerts of rules that no longer exist, or saved longer than
    /// [`RESTORE_TOLERANCE`] ago, are dropped.
    pub fn restore(
        &mut self,
        saved: &[Alert],
        saved_at: SystemTime,
        now: Instant,
        wall: SystemTime,
    ) {
        if wall.duration_since(saved_at).unwrap_or_default() > RESTORE_TOLERANCE {
            return;
        }
        for a in saved {
            let Some(rule) = RULES.iter().find(|r| r.alert == a.alert) else {
                continue;
            };
            if a.state == AlertState::Resolved {
                continue;
            }
            let active_for = wall.duration_since(a.active_since).unwrap_or_default();
            let settles = match rule.settles {
                Settles::AtOnce => Duration::ZERO,
                Settles::Over(window) => window,
                Settles::AfterThreshold => Duration::from_secs_f64(a.threshold.clamp(0.0, 1e7)),
            } + SETTLE;
            let key = (a.db.clone(), rule.alert, a.severity);
            self.tracks.insert(
                key,
                Track {
                    alert: Alert {
                        alert: rule.alert,
                        resolved_at: None,
                        runbook_url: format!(
                            "{}#{}",
                            self.runbook_base_url,
                            rule.alert.to_lowercase()
                        ),
                        ..a.clone()
                    },
                    since: now,
                    resolved: None,
                    held_until: (a.state == AlertState::Firing).then_some(now + settles),
                    credit: active_for,
                    text_of: None,
                },
            );
        }
    }

    /// A reload changed the settings of these (database, alert) pairs: their pending alerts
    /// start again under the new ones; a firing one stays, and the next evaluation keeps or
    /// resolves it by the new threshold. Everything else keeps its state and start time.
    pub fn settings_changed(&mut self, changed: &HashSet<(String, &'static str)>) {
        self.tracks.retain(|(db, alert, _), t| {
            // A filesystem's alert follows the global setting every database shares.
            let changed_here = if super::catalogue::subject_label(alert) == "db" {
                changed.contains(&(db.clone(), *alert))
            } else {
                changed.iter().any(|(_, a)| a == alert)
            };
            t.alert.state != AlertState::Pending || !changed_here
        });
    }

    /// The runbook the alerts link to (a reload may change it).
    pub fn set_runbook_base_url(&mut self, url: &str) {
        if url != self.runbook_base_url {
            self.runbook_base_url = url.to_string();
            for t in self.tracks.values_mut() {
                t.alert.runbook_url = format!("{url}#{}", t.alert.alert.to_lowercase());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::Declared;
    use std::path::Path;

    fn snapshot(size: u64) -> DbSnapshot {
        let mut s = DbSnapshot::new("app", Path::new("/x/app.db"), Declared::default());
        s.up = true;
        s.database_size_bytes = Some(size);
        s
    }

    fn thresholds(text: &str) -> DbThresholds {
        let layer = crate::rules::thresholds::layer(text);
        DbThresholds::resolve(&[("thresholds", &layer)]).unwrap()
    }

    fn states(alerts: &[Alert]) -> Vec<(&str, Severity, AlertState)> {
        alerts
            .iter()
            .map(|a| (a.alert, a.severity, a.state))
            .collect()
    }

    #[test]
    fn the_disk_alert_is_one_per_filesystem_however_many_databases_it_holds() {
        let on = |name: &str, mount: &str, free: u64| {
            let mut s = snapshot(10);
            s.name = name.into();
            s.filesystem = Some(crate::probe::filesystem::FsStat {
                mount_point: Path::new(mount).into(),
                fs_type: "ext4".into(),
                free_bytes: Some(free),
                size_bytes: Some(100),
            });
            s
        };
        let t = thresholds("filesystem_free: {warning: 10%, critical: 'off', for: 0s}\n");
        let dbs = [
            on("a", "/data", 5),
            on("b", "/data", 5),
            on("c", "/other", 5),
        ];
        let alerts = Engine::new("r").evaluate(
            dbs.iter().map(|s| (s, &t)),
            Instant::now(),
            SystemTime::now(),
        );
        let disk: Vec<(&str, &str)> = alerts
            .iter()
            .filter(|a| a.alert == "SQLiteFilesystemLowSpace")
            .map(|a| (a.db.as_str(), a.summary.as_str()))
            .collect();
        assert_eq!(
            disk,
            [
                ("/data", "The filesystem at /data has 5% free"),
                ("/other", "The filesystem at /other has 5% free")
            ]
        );
    }

    /// A chain alert firing on one gap, then on another with the same value (0, broken): the
    /// text names the new one (found when a header check followed a gap that was mended).
    #[test]
    fn a_firing_chain_alert_names_the_break_it_sees_now() {
        use crate::litestream::chain::Verdict;
        let t = thresholds("replica_chain: {critical: 1, for: 0s}\n");
        let broken = |gap: &str| {
            let mut s = snapshot(10);
            s.litestream = vec![crate::monitor::ReplicaSnapshot {
                replica: "file".into(),
                chain: Some(Verdict::Broken(gap.into())),
                ..Default::default()
            }]
            .into();
            s
        };
        let mut e = Engine::new("r");
        let (i, w) = (Instant::now(), SystemTime::now());
        let first = e.evaluate([(&broken("ltx/0/5.ltx is missing"), &t)], i, w);
        assert!(
            first[0].description.contains("5.ltx"),
            "{}",
            first[0].description
        );
        let second = e.evaluate([(&broken("ltx/0/9.ltx is damaged"), &t)], i, w);
        assert_eq!(second[0].state, AlertState::Firing);
        assert!(
            second[0].description.contains("9.ltx"),
            "{}",
            second[0].description
        );
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
        // Prometheus's 15 minutes, written out.
        let later = 15 * 60 + 12;
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

        let t = thresholds("database_size: {warning: 1000, critical: 2000, for: 0s}\n");
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

    fn saved(alert: &'static str, state: AlertState, threshold: f64, since: SystemTime) -> Alert {
        Alert {
            db: "app".into(),
            alert,
            severity: Severity::Warning,
            state,
            value: threshold * 2.0,
            threshold,
            active_since: since,
            fired_at: (state == AlertState::Firing).then_some(since),
            summary: "s".into(),
            description: "d".into(),
            resolved_at: None,
            runbook_url: String::new(),
        }
    }

    #[test]
    fn a_restored_alert_is_held_until_its_value_settles_then_resolved() {
        let t = DbThresholds::default();
        let t0 = Instant::now();
        let w0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let since = w0 - Duration::from_secs(3600 - 60);
        let mut e = Engine::new("r");
        // Starvation is measured from zero again after a start: held for its threshold (300 s)
        // plus the settling slack; a size is read at once: held for the slack only.
        e.restore(
            &[
                saved("SQLiteCheckpointStarved", AlertState::Firing, 300.0, since),
                saved("SQLiteDatabaseLarge", AlertState::Firing, 1e9, since),
                saved("SQLiteNoSuchRule", AlertState::Firing, 1.0, since),
            ],
            w0 - Duration::from_secs(5),
            t0,
            w0,
        );
        let healthy = snapshot(10);
        let at = |s: u64| (t0 + Duration::from_secs(s), w0 + Duration::from_secs(s));
        let (i, w) = at(1);
        let a = e.evaluate([(&healthy, &t)], i, w);
        assert_eq!(a.len(), 2, "an unknown rule is dropped: {a:?}");
        assert!(a.iter().all(|a| a.state == AlertState::Firing));
        assert!(a
            .iter()
            .all(|a| a.active_since == since && a.summary == "s"));
        // docs/operations.md: held until the value has had its time to be measured again, plus 30 s.
        let (i, w) = at(30);
        let a = e.evaluate([(&healthy, &t)], i, w);
        let state = |name: &str| a.iter().find(|a| a.alert == name).unwrap().state;
        assert_eq!(state("SQLiteDatabaseLarge"), AlertState::Resolved);
        assert_eq!(state("SQLiteCheckpointStarved"), AlertState::Firing);
        let (i, w) = at(300 + 30);
        let a = e.evaluate([(&healthy, &t)], i, w);
        assert!(a.iter().all(|a| a.state == AlertState::Resolved), "{a:?}");
    }

    #[test]
    fn a_restored_pending_alert_keeps_its_clock_and_old_state_is_ignored() {
        let t = thresholds("database_size: {warning: 1000, critical: 'off', for: 10m}\n");
        let t0 = Instant::now();
        let w0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let big = snapshot(1500);
        let pending_since = w0 - Duration::from_secs(9 * 60);
        let mut e = Engine::new("r");
        let s = [saved(
            "SQLiteDatabaseLarge",
            AlertState::Pending,
            1000.0,
            pending_since,
        )];
        e.restore(&s, w0, t0, w0);
        let a = e.evaluate([(&big, &t)], t0, w0);
        assert_eq!(a[0].state, AlertState::Pending);
        let a = e.evaluate([(&big, &t)], t0 + Duration::from_secs(60), w0);
        assert_eq!(a[0].state, AlertState::Firing, "9 minutes before, 1 after");
        assert_eq!(a[0].active_since, pending_since);

        // docs/operations.md: "State saved more than an hour ago is ignored" (the figures written out here,
        // not the constant under test).
        let since_after_restore = |saved_at: SystemTime| {
            let mut e = Engine::new("r");
            e.restore(&s, saved_at, t0, w0);
            e.evaluate([(&big, &t)], t0, w0)[0].active_since
        };
        assert_eq!(
            since_after_restore(w0 - Duration::from_secs(3600 + 1)),
            w0,
            "too old to carry over: a new episode"
        );
        assert_eq!(
            since_after_restore(w0 - Duration::from_secs(3600 - 60)),
            pending_since,
            "59 minutes old is carried over"
        );
    }

    #[test]
    fn changed_settings_restart_that_rules_pending_alerts_only() {
        let t = thresholds("database_size: {warning: 1000, critical: 2000, for: 10s}\n");
        let t0 = Instant::now();
        let w0 = SystemTime::now();
        let mut e = Engine::new("r");
        let at = |s: u64| t0 + Duration::from_secs(s);
        e.evaluate([(&snapshot(1500), &t)], at(0), w0);
        e.evaluate([(&snapshot(2500), &t)], at(10), w0);
        let a = e.evaluate([(&snapshot(2500), &t)], at(15), w0);
        assert_eq!(
            states(&a),
            [
                ("SQLiteDatabaseLarge", Severity::Warning, AlertState::Firing),
                (
                    "SQLiteDatabaseLarge",
                    Severity::Critical,
                    AlertState::Pending
                )
            ]
        );
        e.settings_changed(&HashSet::from([
            ("other".to_string(), "SQLiteDatabaseLarge"),
            ("app".to_string(), "SQLiteWalLarge"),
        ]));
        let a = e.evaluate([(&snapshot(2500), &t)], at(20), w0);
        assert_eq!(
            a[1].state,
            AlertState::Firing,
            "other rules and databases keep theirs"
        );
        let mut e2 = Engine::new("r");
        e2.evaluate([(&snapshot(1500), &t)], at(0), w0);
        e2.evaluate([(&snapshot(2500), &t)], at(10), w0);
        e2.evaluate([(&snapshot(2500), &t)], at(15), w0);
        e2.settings_changed(&HashSet::from([("app".to_string(), "SQLiteDatabaseLarge")]));
        let a = e2.evaluate([(&snapshot(2500), &t)], at(20), w0);
        assert_eq!(a[0].state, AlertState::Firing, "firing stays");
        assert_eq!(a[1].state, AlertState::Pending, "pending starts again");
        let a = e2.evaluate([(&snapshot(2500), &t)], at(29), w0);
        assert_eq!(a[1].state, AlertState::Pending);
        let a = e2.evaluate([(&snapshot(2500), &t)], at(30), w0);
        assert_eq!(a[1].state, AlertState::Firing);
    }
}
