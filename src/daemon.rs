//! Runs the exporter: the poller thread, the Litestream watchers and the Alertmanager push,
//! publishing to the HTTP server's [`Site`], until a shutdown future completes. The server
//! itself runs across reloads ([`serve`]). Shared by `run` and `demo`.

use crate::export::alertmanager::{self, NotifierSettings, NotifierStats};
use crate::export::http::{self, Site, WebState};
use crate::export::metrics::BuildInfo;
use crate::export::web_config::WebSecurity;
use crate::poller::{self, Poller, Store, Target};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub poll_interval: Duration,
    /// How often busy databases' write locks are sampled between polls.
    pub lock_sample_interval: Duration,
    pub telemetry_path: String,
    /// Each alert links to its section of this document.
    pub runbook_base_url: String,
    /// Where to push alerts, if anywhere.
    pub alertmanager: Option<NotifierSettings>,
    /// How often Litestream replicas are read.
    pub litestream_interval: Duration,
    /// Whether a litestream.yml was given, and why it could not be used if so.
    pub litestream_config: Option<Result<(), String>>,
    /// TLS, basic auth and response headers for the HTTP server.
    pub security: Arc<WebSecurity>,
    /// Processes that are replicators rather than the application (config `replicators:`).
    pub replicators: Vec<crate::probe::process::ReplicatorMatch>,
}

/// Why [`run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// SIGINT or SIGTERM: exit.
    Terminated,
    /// SIGHUP: read the config again and run anew on the same listener.
    Reload,
}

/// Serves HTTP on `listener` from `site` until `stop` completes (a task of its own, so that
/// reloads do not touch it).
pub fn serve(
    listener: TcpListener,
    site: Arc<Site>,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        http::serve(&listener, site, async {
            let _ = stop.await;
        })
        .await
    })
}

/// Polls `targets` and publishes to `site` until `shutdown` completes; returns why, and the
/// poller, which a reload passes back in as `previous` so that counters carry on.
pub async fn run(
    targets: &[Target],
    settings: &Settings,
    site: &Site,
    store: Arc<Store>,
    previous: Option<Poller>,
    shutdown: impl Future<Output = Stopped>,
) -> std::io::Result<(Stopped, Option<Poller>)> {
    let poller = match previous {
        Some(p) => p.reconfigure(targets, &settings.runbook_base_url),
        None => Poller::new(targets, &settings.runbook_base_url),
    }
    .with_replicators(settings.replicators.clone());
    let board = poller.board();
    let watchers =
        crate::litestream::watcher::spawn_all(targets, settings.litestream_interval, &board);
    let poller = poller::spawn(
        poller,
        settings.poll_interval,
        settings.lock_sample_interval,
        store.clone(),
    )?;
    let stats: Vec<Arc<NotifierStats>> = settings
        .alertmanager
        .iter()
        .flat_map(|n| &n.urls)
        .map(|url| {
            Arc::new(NotifierStats {
                url: url.clone(),
                ..NotifierStats::default()
            })
        })
        .collect();
    let (stop_notifier, notifier_stopped) = tokio::sync::oneshot::channel::<()>();
    let notifier = settings.alertmanager.clone().map(|n| {
        tokio::spawn(alertmanager::run(n, store.clone(), stats.clone(), async {
            let _ = notifier_stopped.await;
        }))
    });
    let state = Arc::new(WebState {
        alertmanagers: stats,
        litestream_config: settings.litestream_config.clone(),
        exposition: std::sync::Mutex::new(None),
        store,
        telemetry_path: settings.telemetry_path.clone(),
        poll_interval: settings.poll_interval,
        build: BuildInfo::current(),
        started: SystemTime::now(),
        security: settings.security.clone(),
    });
    site.set(state);
    let why = shutdown.await;
    let _ = stop_notifier.send(());
    for w in watchers {
        w.abort();
    }
    if let Some(n) = notifier {
        let _ = n.await;
    }
    // Stopping the poller joins its thread: do it off the async runtime.
    let poller = tokio::task::spawn_blocking(move || poller.stop())
        .await
        .ok()
        .flatten();
    Ok((why, poller))
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
