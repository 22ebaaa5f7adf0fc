//! The poller's thread and what it publishes: the latest snapshots and alerts, read by HTTP
//! handlers and the notifier without ever waiting on file I/O.

use super::{PerDb, Poller};
use crate::monitor::DbSnapshot;
use crate::rules::Alert;
use crate::target::Target;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the poller published last.
#[derive(Debug, Clone, Default)]
pub struct Published {
    pub snapshots: Arc<Vec<DbSnapshot>>,
    /// Pending, firing and recently resolved alerts.
    pub alerts: Arc<Vec<Alert>>,
    /// The databases' thresholds and exported groups, in the order of `snapshots`.
    pub per_db: Arc<PerDb>,
    /// When the last cycle finished; `None` before the first.
    pub at: Option<Instant>,
    pub cycles: u64,
    /// How long the last cycle took, in seconds.
    pub cycle_seconds: f64,
    /// Cycles that took longer than the poll interval, so that the next one started late.
    pub late_cycles: u64,
}

impl Published {
    /// What was last published of database `db` that its drills compare their copy with.
    pub fn live_figures(&self, db: &str) -> crate::drill::restore::Live {
        self.snapshots
            .iter()
            .find(|s| *s.name == *db)
            .map(DbSnapshot::live_figures)
            .unwrap_or_default()
    }
}

/// The latest snapshots, shared by the poller (one writer) and any number of readers.
#[derive(Debug)]
pub struct Store {
    inner: RwLock<Published>,
    /// Ticks once per publish, for readers that wait for news (the Alertmanager notifier).
    cycles: tokio::sync::watch::Sender<u64>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            inner: RwLock::default(),
            cycles: tokio::sync::watch::channel(0).0,
        }
    }
}

impl Store {
    /// Publishes a cycle, which `took` that long and was `late` (longer than the interval);
    /// gives back the snapshots it replaces when no reader holds them any more, for the next
    /// cycle to fill again.
    pub fn publish(
        &self,
        (snapshots, alerts, per_db): (Vec<DbSnapshot>, Vec<Alert>, Arc<PerDb>),
        took: Duration,
        late: bool,
    ) -> Option<Vec<DbSnapshot>> {
        let (cycles, old) = {
            let mut p = self.inner.write().unwrap_or_else(|e| e.into_inner());
            let old = std::mem::replace(&mut p.snapshots, Arc::new(snapshots));
            p.alerts = Arc::new(alerts);
            p.per_db = per_db;
            p.at = Some(Instant::now());
            p.cycles += 1;
            p.cycle_seconds = took.as_secs_f64();
            p.late_cycles += u64::from(late);
            (p.cycles, old)
        };
        // Never blocks: a watch channel keeps only the latest value.
        self.cycles.send_replace(cycles);
        Arc::try_unwrap(old).ok()
    }

    pub fn latest(&self) -> Published {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A receiver that sees every publish.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.cycles.subscribe()
    }
}

/// A running poller thread; stops when dropped or on [`PollerHandle::stop`].
pub struct PollerHandle {
    /// New target lists; dropping the sender stops the thread.
    retarget: Option<mpsc::Sender<Vec<Target>>>,
    thread: Option<JoinHandle<Poller>>,
}

impl PollerHandle {
    /// Watches `targets` from the next cycle on (discovery found databases come or go): the
    /// databases kept keep their monitors and alerts, as on a reload.
    pub fn retarget(&self, targets: Vec<Target>) {
        if let Some(tx) = &self.retarget {
            let _ = tx.send(targets);
        }
    }

    /// Stops the thread and gives the poller back (`None` if the thread panicked).
    pub fn stop(mut self) -> Option<Poller> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Option<Poller> {
        drop(self.retarget.take());
        self.thread.take().and_then(|t| t.join().ok())
    }
}

impl Drop for PollerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts polling every `interval` (the first poll at once) and publishing into `store`, and
/// between polls samples the write lock of busy databases every `lock_interval`. A cycle that
/// overruns the interval delays the next one instead of queueing polls. Fails only when the
/// system refuses a thread.
pub fn spawn(
    mut poller: Poller,
    interval: Duration,
    lock_interval: Duration,
    store: Arc<Store>,
) -> std::io::Result<PollerHandle> {
    let (tx, rx) = mpsc::channel::<Vec<Target>>();
    let thread = std::thread::Builder::new()
        .name("poller".into())
        .spawn(move || {
            let mut next_poll = Instant::now();
            let mut spare = Vec::new();
            loop {
                let now = Instant::now();
                if now >= next_poll {
                    let (snapshots, alerts) = poller.cycle(spare);
                    let took = now.elapsed();
                    let published = (snapshots, alerts, poller.per_db());
                    spare = store
                        .publish(published, took, took > interval)
                        .unwrap_or_default();
                    next_poll = (next_poll + interval).max(now);
                } else {
                    poller.sample_locks(now);
                }
                let now = Instant::now();
                let wake = next_poll.min(now + lock_interval);
                match rx.recv_timeout(wake.saturating_duration_since(now)) {
                    Ok(targets) => poller = poller.retarget(&targets),
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            poller
        })
        .map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot start the poller thread: {e}"))
        })?;
    Ok(PollerHandle {
        retarget: Some(tx),
        thread: Some(thread),
    })
}
