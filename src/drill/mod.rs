//! Restore drills: every `restore_drill.interval`, each replicated database is restored from
//! its replica with the real Litestream, the copy checked and deleted ([`restore`],
//! [`verify`]), and the result posted on the Litestream board, from which the poller puts it
//! in the database's snapshot (metrics, alerts, the status page). One drill at a time across
//! all databases: a restore reads the whole replica and writes the whole database.

pub mod position;
pub mod restore;
pub mod verify;

use crate::litestream::board::Board;
use crate::litestream::drill::DrillSettings;
use crate::poller::{Store, Target};
use restore::{Job, Live, Outcome};
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// The drills `targets` call for: replicated databases with `restore_drill:` set, when
/// Litestream's config is known.
pub fn jobs(targets: &[Target], litestream_yml: Option<&Path>) -> Vec<Job> {
    let Some(yml) = litestream_yml else {
        return Vec::new();
    };
    targets
        .iter()
        .filter_map(|t| job(t, yml, t.restore_drill.clone()?))
        .collect()
}

/// The drill of `target` with `settings`, restored with `litestream_yml` (or the config of its
/// own a `dir:` entry gives it); `None` when it has no replica.
pub fn job(target: &Target, litestream_yml: &Path, settings: DrillSettings) -> Option<Job> {
    Some(Job {
        db: target.name.clone(),
        path: target.path.clone(),
        litestream_yml: litestream_yml.to_path_buf(),
        restore_yml: target.litestream.as_ref()?.restore_yml.clone(),
        replica: target.replicas().into_iter().next()?,
        settings,
    })
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// What the poller last published of database `db`.
fn live(store: &Store, db: &str) -> Live {
    let published = store.latest();
    let Some(s) = published.snapshots.iter().find(|s| s.name == db) else {
        return Live::default();
    };
    Live {
        size: s.database_size_bytes,
        lag: s.litestream.first().and_then(|r| r.lag_seconds),
    }
}

/// Runs the drills of `jobs` (a new list replaces the old, as discovery finds databases) one at
/// a time, until `stop` completes; a drill in progress is then cut short and cleaned up.
pub async fn run(
    mut jobs: tokio::sync::watch::Receiver<Vec<Job>>,
    board: Arc<Board>,
    store: Arc<Store>,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut due: HashMap<String, Instant> = HashMap::new();
    let mut cleaned = std::collections::HashSet::new();
    loop {
        let current = jobs.borrow_and_update().clone();
        schedule(&current, &mut due, &board, &mut cleaned);
        let next = current
            .iter()
            .filter_map(|j| due.get(&j.db).map(|t| (*t, j)))
            .min_by_key(|(t, _)| *t);
        let wake = next.map_or_else(|| Instant::now() + Duration::from_secs(3600), |(t, _)| t);
        tokio::select! {
            _ = &mut stop => return,
            changed = jobs.changed() => {
                if changed.is_err() { return }
                continue;
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
        let Some((_, job)) = next else { continue };
        let job = job.clone();
        due.insert(job.db.clone(), Instant::now() + job.settings.interval);
        match drill(&job, &board, &store, &mut stop).await {
            Done::Stopped => return,
            Done::NotYet => {
                due.insert(job.db.clone(), Instant::now() + not_yet_retry(&job));
            }
            Done::Ran => {}
        }
    }
}

/// Makes room in `due` for new jobs (their first drill soon) and forgets those gone; removes
/// what killed drills left in each scratch folder the first time it is seen.
fn schedule(
    jobs: &[Job],
    due: &mut HashMap<String, Instant>,
    board: &Board,
    cleaned: &mut std::collections::HashSet<std::path::PathBuf>,
) {
    let names: std::collections::HashSet<&str> = jobs.iter().map(|j| j.db.as_str()).collect();
    due.retain(|db, _| names.contains(db.as_str()));
    board.retain_drills(|db| names.contains(db));
    for j in jobs {
        if cleaned.insert(j.settings.scratch_dir.clone()) {
            restore::clean_leftovers(&j.settings.scratch_dir);
        }
        let (replica, interval) = (j.replica.0.clone(), j.settings.interval.as_secs_f64());
        board.post_drill(&j.db, |r| {
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
    Ran,
    NotYet,
    Stopped,
}

/// Runs one drill off the runtime and posts what it found.
async fn drill(
    job: &Job,
    board: &Arc<Board>,
    store: &Arc<Store>,
    stop: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Done {
    let cancel = Arc::new(AtomicBool::new(false));
    let task = {
        let (job, store, cancel) = (job.clone(), store.clone(), cancel.clone());
        let board = board.clone();
        tokio::task::spawn_blocking(move || {
            let before = live(&store, &job.db);
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
    post(board, job, outcome)
}

/// Posts a drill's outcome on the board and logs it.
fn post(board: &Board, job: &Job, outcome: Outcome) -> Done {
    let mut done = Done::Ran;
    match outcome {
        Outcome::Stopped => return Done::Stopped,
        Outcome::Refused(why) => {
            tracing::warn!(db = %job.db, reason = %why, "restore drill skipped");
            board.post_drill(&job.db, |r| r.refused = Some(why));
        }
        Outcome::NotYet(why) => {
            tracing::info!(db = %job.db, reason = %why, retry_in = %humantime::format_duration(not_yet_retry(job)), "restore drill put off");
            board.post_drill(&job.db, |r| r.refused = Some(why));
            done = Done::NotYet;
        }
        Outcome::Ran(result) => {
            if result.success {
                let shown = |v: Option<String>| v.unwrap_or_else(|| "unknown".into());
                tracing::info!(db = %job.db, seconds = result.duration_seconds, bytes = %shown(result.restored_bytes.map(|b| b.to_string())), data_age_seconds = %shown(result.data_age_seconds.map(|a| a.to_string())), rows = %shown(result.rows.map(|r| r.to_string())), compared = %result.compared, "restore drill succeeded");
            } else {
                tracing::warn!(db = %job.db, error = %result.error.as_deref().unwrap_or("unknown"), "restore drill failed");
            }
            board.post_drill(&job.db, |r| {
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
