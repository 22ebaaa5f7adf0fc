//! Restore drills: every `restore_drill.interval`, each replicated database is restored from its
//! replica with the real Litestream, the copy checked and deleted ([`restore`], [`verify`]), and
//! the result kept in [`Records`], from which the poller puts it in the database's snapshot.

pub mod config;
pub mod error;
pub mod position;
pub mod record;
pub mod restore;
pub mod verify;

pub use error::DrillError;
pub use record::{DrillRecord, DrillResult, DrillSettings, Records};

use crate::litestream::board::Board;
use restore::{Job, Live, Outcome};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// What the poller last published of a database, by name: the figures a drill's copy is
/// compared with.
pub type LiveFigures = Arc<dyn Fn(&str) -> Live + Send + Sync>;

fn now() -> f64 {
    crate::units::epoch_seconds(SystemTime::now())
}

/// What the drills are doing, for the daemon's own series: process-wide, as one drill runs at
/// a time across all databases.
#[derive(Debug, Default)]
pub struct Activity {
    /// Whether drills are scheduled at all (no series without).
    started: AtomicBool,
    /// Drills due at the last look and waiting for the one that runs.
    waiting: std::sync::atomic::AtomicU64,
    /// The folder of the drill running now, in the scratch folder.
    folder: std::sync::Mutex<Option<std::path::PathBuf>>,
}

/// The drills of this process.
pub static ACTIVITY: Activity = Activity {
    started: AtomicBool::new(false),
    waiting: std::sync::atomic::AtomicU64::new(0),
    folder: std::sync::Mutex::new(None),
};

impl Activity {
    /// (drills waiting, whether one runs, the bytes its folder holds); `None` when no drill is
    /// scheduled. Reads the running drill's folder (one level: the restored copy and
    /// Litestream's own files beside it).
    pub fn read(&self) -> Option<(u64, bool, u64)> {
        use std::sync::atomic::Ordering::Relaxed;
        if !self.started.load(Relaxed) {
            return None;
        }
        let folder = self
            .folder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let bytes = folder.as_deref().map_or(0, |f| {
            let files = std::fs::read_dir(f).into_iter().flatten().flatten();
            files
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        });
        Some((self.waiting.load(Relaxed), folder.is_some(), bytes))
    }

    /// The running drill's folder, or `None` once it is removed.
    pub(crate) fn running_in(&self, folder: Option<&std::path::Path>) {
        *self.folder.lock().unwrap_or_else(|e| e.into_inner()) = folder.map(|f| f.to_path_buf());
    }
}

/// Runs the drills of `jobs` (a new list replaces the old, as discovery finds databases) one at
/// a time, until `stop` completes; a drill in progress is then cut short and cleaned up.
///
/// One drill at a time across all databases: a restore reads the whole replica and writes the
/// whole database.
pub async fn run(
    mut jobs: tokio::sync::watch::Receiver<Vec<Job>>,
    board: Arc<Board>,
    records: Arc<Records>,
    live: LiveFigures,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut due: HashMap<String, Instant> = HashMap::new();
    let mut cleaned = std::collections::HashSet::new();
    let mut mending = Mending::default();
    // Read again only when discovery sends a new list: a fleet's list is not copied and
    // scheduled again at each wake-up (every few seconds while a chain is being mended).
    let mut current = Vec::new();
    let mut fresh = true;
    ACTIVITY
        .started
        .store(true, std::sync::atomic::Ordering::Relaxed);
    loop {
        if std::mem::take(&mut fresh) {
            current = jobs.borrow_and_update().clone();
            schedule(&current, &mut due, &records, &mut cleaned);
        }
        mending.mended(&current, &board, &mut due);
        let next = current
            .iter()
            .filter_map(|j| due.get(&j.db).map(|t| (*t, j)))
            .min_by_key(|(t, _)| *t);
        let wake = next.map_or_else(|| Instant::now() + Duration::from_secs(3600), |(t, _)| t);
        let wake = mending.wake(wake);
        tokio::select! {
            _ = &mut stop => return,
            changed = jobs.changed() => {
                if changed.is_err() { return }
                fresh = true;
                continue;
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
        // Woken early to look at the chains being mended: the next drill is not due yet.
        let Some((_, job)) = next.filter(|(t, _)| *t <= Instant::now()) else {
            continue;
        };
        let job = job.clone();
        let now = Instant::now();
        due.insert(job.db.clone(), now + job.settings.interval);
        let waiting = (current.iter())
            .filter(|j| due.get(&j.db).is_some_and(|t| *t <= now))
            .count();
        ACTIVITY
            .waiting
            .store(waiting as u64, std::sync::atomic::Ordering::Relaxed);
        match drill(&job, (&board, &records), &live, &mut stop).await {
            Done::Stopped => return,
            Done::NotYet => {
                due.insert(job.db.clone(), Instant::now() + not_yet_retry(&job));
            }
            Done::Ran { failed: false } => mending.forget(&job.db),
            Done::Ran { failed: true } => {
                due.insert(job.db.clone(), Instant::now() + failed_retry(&job));
                mending.failed(&job, &board);
            }
        }
    }
}

/// How soon a failed drill is run again: its alert pages until a drill succeeds, and a day's
/// interval would page for a day after the replica was mended.
fn failed_retry(job: &Job) -> Duration {
    job.settings.interval.min(Duration::from_secs(3600))
}

/// The databases whose last drill failed while the chain check saw a gap in the replica (or had
/// not judged it yet): each is drilled again as soon as the chain is whole, so that a mended
/// replica stops paging as unrestorable within a listing, not at the next interval. Looked at
/// every [`MENDING_LOOK`] while any is waiting.
#[derive(Default)]
struct Mending(HashMap<String, String>);

/// How often the chain of a replica in [`Mending`] is looked at (on the board: no I/O).
const MENDING_LOOK: Duration = Duration::from_secs(2);

impl Mending {
    /// Whether the last listings found the chain whole (a gap one listing saw counts against).
    fn chain_whole(board: &Board, db: &str, replica: &str) -> Option<bool> {
        let seen = board.get(db, replica)?;
        match seen.chain_unconfirmed {
            Some(_) => Some(false),
            None => Some(seen.chain?.is_whole()),
        }
    }

    /// A drill failed: watched when the chain was not seen whole (broken, or not judged yet,
    /// as at a first drill soon after the start).
    fn failed(&mut self, job: &Job, board: &Board) {
        if Self::chain_whole(board, &job.db, &job.replica.0) != Some(true) {
            self.0.insert(job.db.clone(), job.replica.0.clone());
        }
    }

    fn forget(&mut self, db: &str) {
        self.0.remove(db);
    }

    /// Makes those whose chain is whole again due now; forgets the databases no longer drilled.
    fn mended(&mut self, jobs: &[Job], board: &Board, due: &mut HashMap<String, Instant>) {
        self.0.retain(|db, replica| {
            if !jobs.iter().any(|j| j.db == *db) {
                return false;
            }
            let whole = Self::chain_whole(board, db, replica) == Some(true);
            if whole {
                tracing::info!(db = %db, replica = %replica, "the replica's chain is whole again: drilling it again now");
                due.insert(db.clone(), Instant::now());
            }
            !whole
        });
    }

    fn wake(&self, wake: Instant) -> Instant {
        match self.0.is_empty() {
            true => wake,
            false => wake.min(Instant::now() + MENDING_LOOK),
        }
    }
}

/// Makes room in `due` for new jobs (their first drill soon) and forgets those gone; removes
/// what killed drills left in each scratch folder the first time it is seen.
fn schedule(
    jobs: &[Job],
    due: &mut HashMap<String, Instant>,
    records: &Records,
    cleaned: &mut std::collections::HashSet<std::path::PathBuf>,
) {
    let names: std::collections::HashSet<&str> = jobs.iter().map(|j| j.db.as_str()).collect();
    due.retain(|db, _| names.contains(db.as_str()));
    records.retain(|db| names.contains(db));
    for j in jobs {
        if cleaned.insert(j.settings.scratch_dir.clone()) {
            restore::clean_leftovers(&j.settings.scratch_dir);
        }
        let (replica, interval) = (j.replica.0.clone(), j.settings.interval.as_secs_f64());
        records.post(&j.db, |r| {
            r.replica = replica;
            r.interval_seconds = interval;
            if r.watched_since == 0.0 {
                r.watched_since = now();
            }
        });
        due.entry(j.db.clone())
            .or_insert_with(|| Instant::now() + j.settings.first_after);
    }
}

/// How soon a drill put off for a replica not read yet, or empty, is tried again.
fn not_yet_retry(job: &Job) -> Duration {
    job.settings.interval.min(Duration::from_secs(10))
}

/// How a drill ended, for the scheduler.
enum Done {
    /// Ran, or was refused (`failed`: ran and failed).
    Ran {
        failed: bool,
    },
    NotYet,
    Stopped,
}

/// Runs one drill off the runtime and posts what it found.
async fn drill(
    job: &Job,
    (board, records): (&Arc<Board>, &Records),
    live: &LiveFigures,
    stop: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Done {
    let cancel = Arc::new(AtomicBool::new(false));
    let task = {
        let (job, live, cancel) = (job.clone(), live.clone(), cancel.clone());
        let board = board.clone();
        tokio::task::spawn_blocking(move || {
            let before = live(&job.db);
            restore::run(&job, before, || board.get(&job.db, &job.replica.0), &cancel)
        })
    };
    tokio::pin!(task);
    let outcome = tokio::select! {
        done = &mut task => done,
        _ = stop.as_mut() => {
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = task.await;
            return Done::Stopped;
        }
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => Outcome::Refused(format!("the drill panicked: {e}")),
    };
    post(records, job, outcome)
}

/// Keeps a drill's outcome in the records and logs it.
fn post(records: &Records, job: &Job, outcome: Outcome) -> Done {
    let mut done = Done::Ran { failed: false };
    match outcome {
        Outcome::Stopped => return Done::Stopped,
        Outcome::Refused(why) => {
            tracing::warn!(db = %job.db, reason = %why, "restore drill skipped");
            records.post(&job.db, |r| r.refused = Some(why));
        }
        Outcome::NotYet(why) => {
            tracing::info!(db = %job.db, reason = %why, retry_in = %humantime::format_duration(not_yet_retry(job)), "restore drill put off");
            records.post(&job.db, |r| r.refused = Some(why));
            done = Done::NotYet;
        }
        Outcome::Ran(result) => {
            done = Done::Ran {
                failed: !result.success,
            };
            if result.success {
                let shown = |v: Option<String>| v.unwrap_or_else(|| "unknown".into());
                tracing::info!(db = %job.db, seconds = result.duration_seconds, bytes = %shown(result.restored_bytes.map(|b| b.to_string())), data_age_seconds = %shown(result.data_age_seconds.map(|a| a.to_string())), rows = %shown(result.rows.map(|r| r.to_string())), compared = %result.compared, "restore drill succeeded");
            } else {
                tracing::warn!(db = %job.db, error = %result.error.as_deref().unwrap_or("unknown"), "restore drill failed");
            }
            records.post(&job.db, |r| {
                r.refused = None;
                r.runs_total += 1;
                if result.success {
                    r.last_success_at = Some(result.finished_at);
                } else {
                    r.failures_total += 1;
                }
                r.last = Some(result);
            });
        }
    }
    done
}
