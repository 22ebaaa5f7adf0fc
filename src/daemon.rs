//! Runs the exporter: the poller thread, the Litestream watchers and the Alertmanager push,
//! publishing to the HTTP server's [`Site`], until a shutdown future completes. The server
//! itself runs across reloads ([`Server`]). Shared by `run` and `demo`.

use crate::discovery::Discovery;
use crate::drill;
use crate::export::metrics::BuildInfo;
use crate::history::History;
use crate::litestream::board::Board;
use crate::litestream::watcher::{Pace, Watchers};
use crate::notify::alertmanager::{self, NotifierSettings};
use crate::notify::delivery::Channel;
use crate::notify::heartbeat::{self, HeartbeatSettings, HeartbeatStats};
use crate::notify::webhook::{self, Webhook};
use crate::poller::{self, Poller, Store};
use crate::target::Target;
use crate::web::server::{self as http, Site, WebState};
use crate::web::web_config::WebSecurity;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The config's global thresholds (`sqlite_threshold` without `db`).
    pub thresholds: crate::rules::DbThresholds,
    pub poll_interval: Duration,
    /// How often busy databases' write locks are sampled between polls.
    pub lock_sample_interval: Duration,
    pub telemetry_path: String,
    /// Each alert links to its section of this document.
    pub runbook_base_url: String,
    /// Where to push alerts, if anywhere.
    pub alertmanager: Option<NotifierSettings>,
    /// How often Litestream's local state and replicas are read.
    pub litestream_pace: Pace,
    /// Whether a litestream.yml was given, and why it could not be used if so.
    pub litestream_config: Option<Result<(), crate::config::ConfigError>>,
    /// TLS, basic auth and response headers for the HTTP server.
    pub security: Arc<WebSecurity>,
    /// Processes that are replicators rather than the application (config `replicators:`).
    pub replicators: Vec<crate::probe::process::ReplicatorMatch>,
    /// Where alerts are kept across restarts (config `state_file:`).
    pub state_file: Option<std::path::PathBuf>,
    /// How often `glob:` entries are walked again.
    pub discover_interval: Duration,
    /// How many databases keep a history for the status page (config `history.databases`).
    pub history_databases: usize,
    /// Where alerts are POSTed without an Alertmanager (config `notify.webhooks`).
    pub webhooks: Vec<Webhook>,
    /// The dead-man's-switch ping (config `notify.heartbeat`).
    pub heartbeat: Option<HeartbeatSettings>,
    /// How this daemon names itself in webhook messages (`host:port`).
    pub instance: String,
    /// litestream.yml, when it could be read: restore drills pass it to `litestream restore`.
    pub litestream_config_path: Option<std::path::PathBuf>,
}

/// What a reload carries from one run to the next: the poller (monitors, counters, alert
/// states), each Alertmanager's delivery state and the databases' history. `Default` for a
/// first start.
#[derive(Default)]
pub struct Carried {
    pub poller: Option<Poller>,
    pub channels: Vec<Arc<Channel>>,
    pub history: Option<Arc<RwLock<History>>>,
    /// Each webhook's delivery state, as `channels` for Alertmanagers.
    pub webhooks: Vec<Arc<Channel>>,
    pub heartbeat: Option<Arc<HeartbeatStats>>,
    /// The databases the previous run watched: a reload logs what changed, not a start.
    pub targets: Option<Vec<Target>>,
    /// Whether the config was read again for this run (a failed reload runs the old one on).
    pub reloaded: bool,
}

/// Why [`run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// SIGINT or SIGTERM: exit.
    Terminated,
    /// SIGHUP: read the config again and run anew on the same listener.
    Reload,
}

impl Default for Settings {
    /// The defaults of the config file, with nothing configured: no Alertmanager, no
    /// litestream.yml, plain HTTP on `/metrics`.
    fn default() -> Self {
        use crate::config::defaults;
        Settings {
            thresholds: Default::default(),
            poll_interval: defaults::POLL_INTERVAL,
            lock_sample_interval: defaults::LOCK_SAMPLE_INTERVAL,
            telemetry_path: "/metrics".into(),
            runbook_base_url: crate::config::default_runbook_base_url(),
            alertmanager: None,
            litestream_pace: Pace {
                every: defaults::LITESTREAM_INTERVAL,
                idle: defaults::LITESTREAM_IDLE_INTERVAL,
            },
            litestream_config: None,
            security: Default::default(),
            replicators: Vec::new(),
            state_file: None,
            discover_interval: defaults::DISCOVER_INTERVAL,
            history_databases: crate::history::DEFAULT_DATABASES,
            webhooks: Vec::new(),
            heartbeat: None,
            instance: "sqlite-ops".into(),
            litestream_config_path: None,
        }
    }
}

/// The HTTP server of the process: serves what its [`Site`] holds, in a task of its own, so
/// that reloads replace what it serves and never touch the server or its socket.
pub struct Server {
    site: Arc<Site>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Starts serving on `listener`; the site is empty (503 on `/metrics`) until [`run`]
    /// publishes into it.
    pub fn start(listener: TcpListener) -> Self {
        let site = Arc::new(Site::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = site.clone();
        let task = tokio::spawn(async move {
            http::serve(&listener, served, async {
                let _ = stopped.await;
            })
            .await
        });
        Server { site, stop, task }
    }

    pub fn site(&self) -> &Site {
        &self.site
    }

    /// Stops serving and waits for the connections in flight.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        self.task.await.map_err(std::io::Error::other)?
    }
}

/// Polls the databases `discovery` finds (walking its globs again every `discover_interval`;
/// the first walk's result may be given) and publishes to `site` until `shutdown` completes; returns why, and what a reload passes
/// back in as `carried` so that counters and alert states carry on.
pub async fn run(
    (discovery, first): (Discovery, Option<Vec<Target>>),
    settings: &Settings,
    site: &Site,
    store: Arc<Store>,
    mut carried: Carried,
    shutdown: impl Future<Output = Stopped>,
) -> std::io::Result<(Stopped, Carried)> {
    let (discovery, targets) = match first {
        Some(found) => (discovery, found),
        None => scan(discovery).await,
    };
    match (carried.targets.take(), carried.reloaded) {
        (None, _) => log_changes(&[], &targets),
        (Some(before), true) => log_reload(&before, &targets),
        (Some(before), false) => log_changes(&before, &targets),
    }
    let targets = &targets;
    let poller = poller_for(targets, settings, carried.poller.take());
    let (board, drills) = (poller.board(), poller.drills());
    let mut watchers = Watchers::default();
    watchers.update(
        crate::target::replicated(targets),
        settings.litestream_pace,
        &board,
    );
    let poller = poller::spawn(
        poller,
        settings.poll_interval,
        settings.lock_sample_interval,
        store.clone(),
    )?;
    let (drill_jobs, jobs) = tokio::sync::watch::channel(crate::target::drill_jobs(
        targets,
        settings.litestream_config_path.as_deref(),
    ));
    let companions = Companions::start(settings, &store, carried, (board.clone(), drills, jobs));
    let state = Arc::new(WebState {
        alertmanagers: companions
            .channels
            .iter()
            .map(|c| c.stats.clone())
            .collect(),
        litestream_config: settings.litestream_config.clone(),
        exposition: std::sync::Mutex::new(None),
        store,
        telemetry_path: settings.telemetry_path.clone(),
        poll_interval: settings.poll_interval,
        build: BuildInfo::current(),
        started: SystemTime::now(),
        security: settings.security.clone(),
        history: companions.history.clone(),
        webhooks: companions
            .webhooks
            .iter()
            .map(|c| c.stats.clone())
            .collect(),
        heartbeat: companions.heartbeat.clone(),
        thresholds: settings.thresholds.clone(),
    });
    site.set(state);
    let why = tokio::select! {
        why = shutdown => why,
        never = rediscover(discovery, targets.clone(), settings, &poller, (&mut watchers, &drill_jobs), &board) => match never {},
    };
    drop(watchers);
    // Stopping the poller joins its thread: do it off the async runtime.
    let poller = tokio::task::spawn_blocking(move || poller.stop())
        .await
        .ok()
        .flatten();
    // Then the tasks beside it, which have seen its last publish.
    let mut carried = companions.stop().await;
    carried.poller = poller;
    carried.targets = Some(targets.clone());
    Ok((why, carried))
}

/// The tasks beside the poller, reading what it publishes: the Alertmanager push, the webhooks,
/// the heartbeat, the history recorder and the state-file saver. They stop together, once the
/// poller has published for the last time.
struct Companions {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    channels: Vec<Arc<Channel>>,
    webhooks: Vec<Arc<Channel>>,
    heartbeat: Option<Arc<HeartbeatStats>>,
    history: Arc<RwLock<History>>,
}

/// What the poller last published of each database, for the drills to compare their copies with.
fn live_figures(store: Arc<Store>) -> drill::LiveFigures {
    Arc::new(move |db: &str| store.latest().live_figures(db))
}

impl Companions {
    /// Starts them, with the delivery states, counters and history a reload carried over, and
    /// the restore drills of `jobs`, which read replicas' observations on `board` and keep
    /// what they find in `drills`.
    fn start(
        settings: &Settings,
        store: &Arc<Store>,
        carried: Carried,
        (board, drills, jobs): (
            Arc<Board>,
            Arc<drill::Records>,
            tokio::sync::watch::Receiver<Vec<drill::restore::Job>>,
        ),
    ) -> Self {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let until_stopped = || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            }
        };
        let mut tasks = Vec::new();
        let urls = settings.alertmanager.as_ref().map_or(&[][..], |n| &n.urls);
        let channels = Channel::for_urls(urls, &carried.channels);
        if let Some(n) = settings.alertmanager.clone() {
            let channels = channels.clone();
            tasks.push(tokio::spawn(alertmanager::run(
                n,
                store.clone(),
                channels,
                until_stopped(),
            )));
        }
        let keys: Vec<_> = settings.webhooks.iter().map(Webhook::key).collect();
        let webhooks = Channel::for_keys(&keys, &carried.webhooks);
        if !webhooks.is_empty() {
            tasks.push(tokio::spawn(webhook::run(
                settings.webhooks.clone(),
                settings.instance.clone(),
                store.clone(),
                webhooks.clone(),
                until_stopped(),
            )));
        }
        let heartbeat = settings.heartbeat.clone().map(|h| {
            let stats = carried.heartbeat.clone().unwrap_or_default();
            let poll = settings.poll_interval;
            tasks.push(tokio::spawn(heartbeat::run(
                h,
                poll,
                store.clone(),
                stats.clone(),
                until_stopped(),
            )));
            stats
        });
        let history = history_for(settings, carried.history);
        tasks.push(tokio::spawn(record_history(
            history.clone(),
            store.clone(),
            until_stopped(),
        )));
        if let Some(path) = settings.state_file.clone() {
            tasks.push(tokio::spawn(save_alerts(
                path,
                store.clone(),
                until_stopped(),
            )));
        }
        let live = live_figures(store.clone());
        let drilling = drill::run(jobs, board, drills, live, until_stopped());
        tasks.push(tokio::spawn(drilling));
        Companions {
            stop,
            tasks,
            channels,
            webhooks,
            heartbeat,
            history,
        }
    }

    /// Stops them and gives back what the next run carries on (the poller aside).
    async fn stop(self) -> Carried {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        Carried {
            poller: None,
            channels: self.channels,
            webhooks: self.webhooks,
            heartbeat: self.heartbeat,
            history: Some(self.history),
            targets: None,
            reloaded: false,
        }
    }
}

/// The poller for `targets`: the one a reload carried over, reconfigured, or a new one with
/// the alerts of the state file.
fn poller_for(targets: &[Target], settings: &Settings, carried: Option<Poller>) -> Poller {
    let first_start = carried.is_none();
    let mut poller = match carried {
        Some(p) => p.reconfigure(targets, &settings.runbook_base_url),
        None => Poller::new(targets, &settings.runbook_base_url),
    }
    .with_replicators(settings.replicators.clone());
    if first_start {
        if let Some(path) = &settings.state_file {
            restore_alerts(&mut poller, path);
        }
    }
    poller
}

/// Walks `discovery`'s globs off the async runtime (a walk over thousands of files is
/// blocking I/O); gives it back with what it found, or `None` (logged) if the walk failed.
async fn try_scan(mut discovery: Discovery) -> (Discovery, Option<Vec<Target>>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let walk = std::panic::AssertUnwindSafe(|| discovery.scan(std::time::Instant::now()));
        let found = std::panic::catch_unwind(walk).ok();
        if found.is_none() {
            tracing::error!(
                "walking the glob: entries failed; the databases found before are kept"
            );
        }
        let _ = tx.send((discovery, found));
    });
    match rx.await {
        Ok(done) => done,
        // The walk's thread is gone with the discovery in it: nothing more can be found.
        Err(_) => (Discovery::fixed(Vec::new()), None),
    }
}

/// As [`try_scan`], with no database at all when the first walk fails.
async fn scan(discovery: Discovery) -> (Discovery, Vec<Target>) {
    let (discovery, found) = try_scan(discovery).await;
    (discovery, found.unwrap_or_default())
}

/// Walks the globs again every `discover_interval`; when the databases found change, starts
/// and stops their Litestream watchers and hands the poller the new list. Runs until dropped.
async fn rediscover(
    mut discovery: Discovery,
    mut current: Vec<Target>,
    settings: &Settings,
    poller: &poller::PollerHandle,
    (watchers, drill_jobs): (
        &mut Watchers,
        &tokio::sync::watch::Sender<Vec<drill::restore::Job>>,
    ),
    board: &Arc<Board>,
) -> std::convert::Infallible {
    loop {
        if !discovery.rescans() {
            return std::future::pending().await;
        }
        tokio::time::sleep(settings.discover_interval).await;
        let found;
        (discovery, found) = try_scan(discovery).await;
        let Some(found) = found else { continue };
        if found != current {
            log_changes(&current, &found);
            watchers.update(
                crate::target::replicated(&found),
                settings.litestream_pace,
                board,
            );
            poller.retarget(found.clone());
            drill_jobs.send_replace(crate::target::drill_jobs(
                &found,
                settings.litestream_config_path.as_deref(),
            ));
            current = found;
        }
    }
}

/// One line for a reload: the databases added and removed, and those whose thresholds changed.
fn log_reload(before: &[Target], now: &[Target]) {
    let old: HashMap<(&str, &Path), &Target> = before
        .iter()
        .map(|t| ((t.name.as_str(), t.path.as_path()), t))
        .collect();
    let new: HashSet<(&str, &Path)> = now
        .iter()
        .map(|t| (t.name.as_str(), t.path.as_path()))
        .collect();
    let added: Vec<&str> = now
        .iter()
        .filter(|t| !old.contains_key(&(t.name.as_str(), t.path.as_path())))
        .map(|t| t.name.as_str())
        .collect();
    let removed: Vec<&str> = before
        .iter()
        .filter(|t| !new.contains(&(t.name.as_str(), t.path.as_path())))
        .map(|t| t.name.as_str())
        .collect();
    let retuned: Vec<&str> = now
        .iter()
        .filter(|t| {
            old.get(&(t.name.as_str(), t.path.as_path()))
                .is_some_and(|o| o.thresholds.rules != t.thresholds.rules)
        })
        .map(|t| t.name.as_str())
        .collect();
    let few = |names: &[&str]| match names.len() {
        0 => "none".to_string(),
        n if n <= 10 => names.join(", "),
        n => format!("{n} databases"),
    };
    tracing::info!(
        watching = now.len(),
        "config reloaded: databases added: {}; removed: {}; thresholds changed on: {}",
        few(&added),
        few(&removed),
        few(&retuned)
    );
}

/// Logs the databases that `now` watches and `before` did not, and those it no longer does:
/// one line each for a few, counts for a fleet.
fn log_changes(before: &[Target], now: &[Target]) {
    let key = |t: &Target| (t.name.clone(), t.path.clone());
    let old: std::collections::HashSet<_> = before.iter().map(key).collect();
    let new: std::collections::HashSet<_> = now.iter().map(key).collect();
    let added: Vec<&Target> = now.iter().filter(|t| !old.contains(&key(t))).collect();
    let gone: Vec<&Target> = before.iter().filter(|t| !new.contains(&key(t))).collect();
    const ONE_LINE_EACH: usize = 50;
    if added.len() + gone.len() <= ONE_LINE_EACH {
        for t in added {
            tracing::info!(db = %t.name, path = %t.path.display(), "watching");
        }
        for t in gone {
            tracing::info!(db = %t.name, path = %t.path.display(), "no longer watching: gone from disk for longer than discover_grace");
        }
    } else {
        tracing::info!(
            added = added.len(),
            removed = gone.len(),
            watching = now.len(),
            "databases found"
        );
    }
}

/// Carries over the alerts saved in the state file at `path`; a file that cannot be used is
/// logged and alerts start afresh.
fn restore_alerts(poller: &mut Poller, path: &std::path::Path) {
    match crate::state::load(path) {
        Ok(Some(saved)) => {
            let age = SystemTime::now()
                .duration_since(saved.saved_at)
                .unwrap_or_default();
            if age > crate::rules::engine::RESTORE_TOLERANCE {
                tracing::info!(state_file = %path.display(), saved = %humantime::format_duration(Duration::from_secs(age.as_secs())), "the saved alerts are too old to carry over; alerts start afresh");
            } else {
                tracing::info!(state_file = %path.display(), alerts = saved.alerts.len(), saved = %humantime::format_duration(Duration::from_secs(age.as_secs())), "carrying over the alerts of the previous run");
            }
            poller.restore_alerts(&saved);
        }
        Ok(None) => {
            tracing::info!(state_file = %path.display(), "no saved alerts yet (a first start)")
        }
        Err(e) => tracing::warn!(error = %e, "alerts start afresh"),
    }
}

/// Writes the pending and firing alerts to `path` whenever they change (not their values),
/// and once more when `stop` completes. A failed write is logged once per new error; the
/// daemon goes on.
async fn save_alerts(path: std::path::PathBuf, store: Arc<Store>, stop: impl Future<Output = ()>) {
    use crate::state;
    let mut published = store.subscribe();
    tokio::pin!(stop);
    // What was last written (see `state::identity`), owned.
    let mut written: Option<Vec<_>> = None;
    let mut last_error: Option<String> = None;
    let mut stopping = false;
    loop {
        let latest = store.latest().alerts;
        let identity = state::identity(&latest);
        let unchanged = written
            .as_ref()
            .is_some_and(|w: &Vec<(String, _, _, _, _)>| {
                w.iter()
                    .map(|(db, a, sev, st, t)| (db.as_str(), *a, *sev, *st, *t))
                    .eq(identity.iter().copied())
            });
        if stopping || !unchanged {
            let (p, alerts) = (path.clone(), state::to_save(&latest));
            let result =
                tokio::task::spawn_blocking(move || state::save(&p, alerts, SystemTime::now()))
                    .await;
            match result {
                Ok(Ok(())) => {
                    written = Some(
                        identity
                            .iter()
                            .map(|&(db, a, sev, st, t)| (db.to_string(), a, sev, st, t))
                            .collect(),
                    );
                    last_error = None;
                }
                Ok(Err(e)) => {
                    let e = e.to_string();
                    if last_error.as_ref() != Some(&e) {
                        tracing::warn!(error = %e, "alerts are not saved; a restart would start them afresh");
                    }
                    last_error = Some(e);
                }
                Err(e) => tracing::warn!(error = %e, "saving alerts failed"),
            }
        }
        if stopping {
            return;
        }
        tokio::select! {
            changed = published.changed() => if changed.is_err() { stopping = true },
            _ = &mut stop => stopping = true,
        }
    }
}

/// The history a reload carried over, or a new one, keeping `history.databases` databases.
fn history_for(settings: &Settings, carried: Option<Arc<RwLock<History>>>) -> Arc<RwLock<History>> {
    let history =
        carried.unwrap_or_else(|| Arc::new(RwLock::new(History::new(settings.history_databases))));
    history
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .set_limit(settings.history_databases);
    history
}

/// Adds each published cycle to `history` until `stop` completes. Off the poller's thread: the
/// page's readers and this writer share the lock, never the poll.
async fn record_history(
    history: Arc<RwLock<History>>,
    store: Arc<Store>,
    stop: impl Future<Output = ()>,
) {
    let mut published = store.subscribe();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            changed = published.changed() => if changed.is_err() { return },
            _ = &mut stop => return,
        }
        let latest = store.latest();
        history
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .record(&latest.snapshots);
    }
}

/// The signals the daemon answers, installed once at start: SIGINT and SIGTERM stop it, SIGHUP
/// reloads it. Installing can fail (a seccomp policy, a runtime without signal support): that
/// is an error for the caller to report, never a panic.
pub struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        let install = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot install a {name} handler: {e}"))
            })
        };
        Ok(Signals {
            interrupt: install(SignalKind::interrupt(), "SIGINT")?,
            terminate: install(SignalKind::terminate(), "SIGTERM")?,
            hangup: install(SignalKind::hangup(), "SIGHUP")?,
        })
    }

    /// Completes on SIGINT or SIGTERM, or with `Reload` on SIGHUP.
    pub async fn stopped(&mut self) -> Stopped {
        tokio::select! {
            _ = self.interrupt.recv() => Stopped::Terminated,
            _ = self.terminate.recv() => Stopped::Terminated,
            _ = self.hangup.recv() => Stopped::Reload,
        }
    }

    /// Completes on SIGINT or SIGTERM.
    pub async fn terminated(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
