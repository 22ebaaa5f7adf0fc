//! Polls every watched database on a fixed schedule in one dedicated thread (file reads are
//! blocking and short) and publishes the snapshots. Readers (HTTP, demo) take the last published
//! set and never wait on file I/O.

use crate::monitor::{DbSnapshot, Monitor};
use crate::probe::filesystem::Filesystems;
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A database to watch: its name (the `db` label) and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub path: PathBuf,
}

/// The set of monitors and the shared filesystem view.
pub struct Poller {
    monitors: Vec<Monitor>,
    fs: Filesystems,
}

impl Poller {
    pub fn new(targets: &[Target]) -> Self {
        Poller {
            monitors: targets
                .iter()
                .map(|t| Monitor::new(&t.name, &t.path))
                .collect(),
            fs: Filesystems::new(),
        }
    }

    /// Samples the write lock of the databases that are busy (see
    /// `Monitor::wants_fast_lock_sampling`).
    pub fn sample_locks(&mut self, now: Instant) {
        for m in self
            .monitors
            .iter_mut()
            .filter(|m| m.wants_fast_lock_sampling(now))
        {
            m.sample_write_lock(now);
        }
    }

    /// Polls every database once and returns copies of the snapshots.
    pub fn poll_once(&mut self) -> Vec<DbSnapshot> {
        self.fs.begin_cycle();
        self.monitors
            .iter_mut()
            .map(|m| m.poll(&mut self.fs).clone())
            .collect()
    }
}

/// What the poller published last.
#[derive(Debug, Clone, Default)]
pub struct Published {
    pub snapshots: Arc<Vec<DbSnapshot>>,
    /// When the last cycle finished; `None` before the first.
    pub at: Option<Instant>,
    pub cycles: u64,
}

/// The latest snapshots, shared by the poller (one writer) and any number of readers.
#[derive(Debug, Default)]
pub struct Store {
    inner: RwLock<Published>,
}

impl Store {
    pub fn publish(&self, snapshots: Vec<DbSnapshot>) {
        let mut p = self.inner.write().unwrap_or_else(|e| e.into_inner());
        p.snapshots = Arc::new(snapshots);
        p.at = Some(Instant::now());
        p.cycles += 1;
    }

    pub fn latest(&self) -> Published {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A running poller thread; stops when dropped or on [`PollerHandle::stop`].
pub struct PollerHandle {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl PollerHandle {
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for PollerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts polling every `interval` (the first poll at once) and publishing into `store`, and
/// between polls samples the write lock of busy databases every `lock_interval`. A cycle that
/// overruns the interval delays the next one instead of queueing polls.
pub fn spawn(
    mut poller: Poller,
    interval: Duration,
    lock_interval: Duration,
    store: Arc<Store>,
) -> PollerHandle {
    let (tx, rx) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("poller".into())
        .spawn(move || {
            let mut next_poll = Instant::now();
            loop {
                let now = Instant::now();
                if now >= next_poll {
                    store.publish(poller.poll_once());
                    next_poll = (next_poll + interval).max(now);
                } else {
                    poller.sample_locks(now);
                }
                let now = Instant::now();
                let wake = next_poll.min(now + lock_interval);
                match rx.recv_timeout(wake.saturating_duration_since(now)) {
                    Err(RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            }
        })
        .expect("spawning the poller thread");
    PollerHandle {
        stop: Some(tx),
        thread: Some(thread),
    }
}
