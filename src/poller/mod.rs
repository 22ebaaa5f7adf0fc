//! Polls every watched database on a fixed schedule in one dedicated thread (file reads are
//! blocking and short) and publishes the snapshots. Readers (HTTP, demo) take the last published
//! set and never wait on file I/O.

use crate::drill::Records;
use crate::litestream::board::Board;
use crate::litestream::config::LitestreamDb;
use crate::monitor::DbSnapshot;
use crate::probe::filesystem::Filesystems;
use crate::probe::process::{Processes, ReplicatorMatch};
use crate::rules::{Alert, DbThresholds, Engine};
use crate::target::Target;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use watched::Watched;

mod alert_log;
mod changes;
mod quiet;
mod thread;
mod watched;

pub use thread::{spawn, PollerHandle, Published, Store};

/// What the config says of each database, in the order of the snapshots: published beside
/// them, for the fleet series and the groups of series exported.
#[derive(Debug, Default)]
pub struct PerDb {
    pub thresholds: Vec<DbThresholds>,
    pub metrics: Vec<crate::monitor::groups::Groups>,
}

/// The set of monitors, their thresholds, the alert engine and the shared filesystem view.
pub struct Poller {
    monitors: Vec<Watched>,
    /// Per monitor, its database's thresholds and exported groups.
    per_db: Arc<PerDb>,
    engine: Engine,
    fs: Filesystems,
    /// What the Litestream watchers found (see `litestream::watcher`).
    board: Arc<Board>,
    /// What the restore drills found (see `crate::drill`).
    drills: Arc<Records>,
    /// Where Litestream replicates each database, by name: what the board's observations are
    /// of, so that a reload keeps only those that still hold.
    replicated: HashMap<String, Arc<LitestreamDb>>,
    /// Where alerts' runbook links point.
    runbook_base_url: String,
    /// The machine's POSIX locks, from /proc/locks, and when they were read.
    locks: (crate::probe::who::Locks, Option<Instant>),
    /// Who each lock holder is, read once per process.
    processes: Processes,
    /// Which databases' files were written (inotify), for the settled ones.
    changes: changes::Changes,
    /// What the log was last told of each alert.
    said: alert_log::AlertLog,
    /// The monitors busy at the last cycle (see `Monitor::wants_fast_lock_sampling`): the
    /// only ones sampled between polls, so that ten thousand idle ones cost nothing then.
    busy: Vec<usize>,
}

/// How long one read of /proc/locks serves: naming holders is for people, and reading it costs
/// as much as polling a database.
const HOLDERS_REFRESH: Duration = Duration::from_secs(2);

impl Poller {
    /// Alerts link to their section of the runbook at `runbook_base_url`.
    pub fn new(targets: &[Target], runbook_base_url: &str) -> Self {
        Self::build(
            targets,
            runbook_base_url,
            Vec::new(),
            Filesystems::new(),
            (Processes::default(), changes::Changes::new()),
        )
    }

    /// Carries on the alerts a previous run saved (see `Engine::restore`).
    pub fn restore_alerts(&mut self, saved: &crate::state::Saved) {
        self.engine.restore(
            &saved.alerts,
            saved.saved_at,
            Instant::now(),
            SystemTime::now(),
        );
    }

    /// Processes whose command line matches one of `replicators` are replicators, not the
    /// application (config `replicators:`). Processes already known keep what was read of them.
    pub fn with_replicators(mut self, replicators: Vec<ReplicatorMatch>) -> Self {
        self.processes.set_replicators(replicators);
        self
    }

    /// The same poller for `targets` under the same settings (discovery found databases come
    /// or go).
    pub fn retarget(self, targets: &[Target]) -> Self {
        let url = self.runbook_base_url.clone();
        self.reconfigure(targets, &url)
    }

    /// The same poller for new targets (a config reload): databases that keep their name and
    /// path keep their monitor, and so their counters, clocks and write-lock history; the
    /// processes already identified stay known; alerts keep their state and start times, but
    /// for rules whose settings changed, whose pending alerts start again.
    pub fn reconfigure(self, targets: &[Target], runbook_base_url: &str) -> Self {
        let mut engine = self.engine;
        engine.set_runbook_base_url(runbook_base_url);
        let old: HashMap<&str, &DbThresholds> = self
            .monitors
            .iter()
            .map(|m| m.monitor.name())
            .zip(&self.per_db.thresholds)
            .collect();
        let changed: HashSet<(String, &'static str)> = targets
            .iter()
            .flat_map(|t| {
                let old = old.get(t.name.as_str());
                t.thresholds.rules.iter().filter_map(move |setting| {
                    let kept =
                        old.and_then(|o| o.rules.iter().find(|r| r.rule.key == setting.rule.key));
                    (kept != Some(setting)).then(|| (t.name.clone(), setting.rule.alert))
                })
            })
            .collect();
        engine.settings_changed(&changed);
        let mut p = Self::build(
            targets,
            runbook_base_url,
            self.monitors,
            self.fs,
            (self.processes, self.changes),
        );
        p.engine = engine;
        p.said = self.said;
        let (old, new) = (&self.replicated, &p.replicated);
        self.board.retain(
            |db, replica| {
                matches!((old.get(db), new.get(db)),
                    (Some(o), Some(n)) if o.same_replica(n, replica))
            },
            |db| matches!((old.get(db), new.get(db)), (Some(o), Some(n)) if o.same_process(n)),
        );
        p.board = self.board;
        p.drills = self.drills;
        p
    }

    /// A poller for `targets`, reusing the monitors of `previous` that watch the same database.
    fn build(
        targets: &[Target],
        runbook_base_url: &str,
        previous: Vec<Watched>,
        fs: Filesystems,
        (processes, mut changes): (Processes, changes::Changes),
    ) -> Self {
        changes.retain(&targets.iter().map(|t| t.path.as_path()).collect());
        // By (name, path): thousands of tenants are matched in one pass, not one scan each.
        let mut previous: HashMap<(String, PathBuf), Watched> =
            previous.into_iter().map(|m| (m.key(), m)).collect();
        let monitors = targets
            .iter()
            .map(
                |t| match previous.remove(&(t.name.clone(), t.path.clone())) {
                    Some(m) => m.reconfigure(t),
                    None => Watched::new(t),
                },
            )
            .collect();
        Poller {
            monitors,
            per_db: Arc::new(PerDb {
                thresholds: targets.iter().map(|t| t.thresholds.clone()).collect(),
                metrics: targets.iter().map(|t| t.metrics).collect(),
            }),
            engine: Engine::new(runbook_base_url),
            fs,
            board: Arc::new(Board::default()),
            drills: Arc::new(Records::default()),
            runbook_base_url: runbook_base_url.to_string(),
            replicated: crate::target::replicated(targets)
                .map(|(name, ls)| (name.to_string(), ls.clone()))
                .collect(),
            locks: Default::default(),
            processes,
            changes,
            said: Default::default(),
            busy: Vec::new(),
        }
    }

    /// Each database's thresholds and groups, in the order of the snapshots.
    pub fn per_db(&self) -> Arc<PerDb> {
        self.per_db.clone()
    }

    /// Where Litestream watchers post what they find for this poller's databases.
    pub fn board(&self) -> Arc<Board> {
        self.board.clone()
    }

    /// Where the restore drills keep what they found, and this poller reads it.
    pub fn drills(&self) -> Arc<Records> {
        self.drills.clone()
    }

    /// Samples the write lock of the databases that are busy (see
    /// `Monitor::wants_fast_lock_sampling`).
    pub fn sample_locks(&mut self, now: Instant) {
        for &i in &self.busy {
            self.monitors[i].sample_write_lock(now);
        }
    }

    /// Polls every database once and returns copies of the snapshots.
    pub fn poll_once(&mut self) -> Vec<DbSnapshot> {
        self.poll_into(Vec::new())
    }

    /// [`Self::poll_once`] into `out`, emptied first: the poller thread passes the vector
    /// the cycle before last published, so that ten thousand snapshots (9 MB) are not fresh
    /// pages, zeroed by the kernel, every second.
    fn poll_into(&mut self, mut out: Vec<DbSnapshot>) -> Vec<DbSnapshot> {
        out.clear();
        self.fs.begin_cycle();
        let now = Instant::now();
        if self
            .locks
            .1
            .is_none_or(|t| now.duration_since(t) >= HOLDERS_REFRESH)
        {
            self.locks = (crate::probe::who::Locks::read(), Some(now));
            self.processes.prune(now);
        }
        self.changes.drain();
        let locks = &self.locks.0;
        let processes = &mut self.processes;
        out.extend(self.monitors.iter_mut().map(|m| {
            m.poll(
                &mut self.fs,
                locks,
                processes,
                (&self.board, &self.drills),
                &mut self.changes,
            )
        }));
        self.busy = (0..self.monitors.len())
            .filter(|&i| self.monitors[i].busy)
            .collect();
        out
    }

    /// Polls every database once reading all its files, settled or not: what a poll costs
    /// without the quiet path (benchmarks compare the two).
    pub fn poll_once_in_full(&mut self) -> Vec<DbSnapshot> {
        for m in &mut self.monitors {
            m.unsettle();
        }
        self.poll_once()
    }

    /// Polls every database once (into `spare`, see `Self::poll_into`) and evaluates the
    /// thresholds on the result.
    pub fn cycle(&mut self, spare: Vec<DbSnapshot>) -> (Vec<DbSnapshot>, Vec<Alert>) {
        let snapshots = self.poll_into(spare);
        let alerts = self.engine.evaluate(
            snapshots.iter().zip(&self.per_db.thresholds),
            Instant::now(),
            SystemTime::now(),
        );
        self.said.tell(&alerts);
        (snapshots, alerts)
    }
}
