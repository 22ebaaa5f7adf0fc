//! Reads each replica and Litestream's local state on an interval, off the poll path (an S3
//! listing may take seconds; a poll must not), and posts what it found on a [`Board`] that the
//! poller reads. One task per replica; a failing replica is an error on that replica only.

use super::board::{Board, Observation};
use super::chain::Verdict;
use super::config::{LitestreamDb, Replica, ReplicaKind, Schedule};
use super::local_state::summarize;
use super::metrics::{self, Process};
use super::position::{Local, Position};
use super::replica::{read_local, read_replica, reader_of, Head, Headers, ReplicaError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::task::JoinHandle;

/// The running watchers, by what they watch, so that a change of the watched databases (a
/// tenant discovered or gone) starts and stops only the watchers it concerns. Every task is
/// aborted when this is dropped.
#[derive(Default)]
pub struct Watchers {
    /// One task per replica, by database name, with the entry they were started for.
    replicas: HashMap<String, (LitestreamDb, Vec<JoinHandle<()>>)>,
    /// One task per Litestream metrics endpoint, by URL, with the databases it reads there.
    endpoints: HashMap<String, (Vec<DbAtEndpoint>, JoinHandle<()>)>,
}

/// A database as a Litestream metrics endpoint is read for it: (name, path as Litestream
/// knows it).
type DbAtEndpoint = (String, String);

impl Watchers {
    /// Watches the replicas of `dbs` (name, Litestream entry) and nothing else: starts what is
    /// new or changed and stops what is gone. Must run inside the runtime.
    pub fn update<'a>(
        &mut self,
        dbs: impl IntoIterator<Item = (&'a str, &'a LitestreamDb)>,
        interval: Duration,
        board: &Arc<Board>,
    ) {
        let dbs: HashMap<&str, &LitestreamDb> = dbs.into_iter().collect();
        self.replicas.retain(|name, (ls, tasks)| {
            let keep = dbs.get(name.as_str()).is_some_and(|new| *new == ls);
            if !keep {
                tasks.iter().for_each(JoinHandle::abort);
            }
            keep
        });
        for (name, ls) in &dbs {
            if !self.replicas.contains_key(*name) {
                let tasks = spawn_replicas(name, ls, interval, board.clone());
                self.replicas
                    .insert(name.to_string(), ((*ls).clone(), tasks));
            }
        }
        let mut endpoints: HashMap<String, Vec<DbAtEndpoint>> = HashMap::new();
        for (name, ls) in &dbs {
            if let Some(url) = &ls.metrics_url {
                endpoints
                    .entry(url.clone())
                    .or_default()
                    .push((name.to_string(), ls.path.display().to_string()));
            }
        }
        endpoints.values_mut().for_each(|v| v.sort());
        self.endpoints.retain(|url, (read, task)| {
            let keep = endpoints.get(url) == Some(read);
            if !keep {
                task.abort();
            }
            keep
        });
        for (url, read) in endpoints {
            if let std::collections::hash_map::Entry::Vacant(slot) = self.endpoints.entry(url) {
                let (board, list, url) = (board.clone(), read.clone(), slot.key().clone());
                let task =
                    tokio::spawn(async move { watch_metrics(url, list, interval, board).await });
                slot.insert((read, task));
            }
        }
    }
}

impl Drop for Watchers {
    fn drop(&mut self) {
        for (_, tasks) in self.replicas.values() {
            tasks.iter().for_each(JoinHandle::abort);
        }
        for (_, task) in self.endpoints.values() {
            task.abort();
        }
    }
}

/// Scrapes Litestream's metrics endpoint every `interval` for `dbs` (name, path as Litestream
/// knows it).
async fn watch_metrics(url: String, dbs: Vec<DbAtEndpoint>, interval: Duration, board: Arc<Board>) {
    let timeout = interval.max(Duration::from_secs(5));
    let client = crate::http_client::client();
    loop {
        let scraped = metrics::fetch(&client, &url, timeout)
            .await
            .map(|t| metrics::parse(&t));
        for (name, path) in &dbs {
            let p = match &scraped {
                Ok(m) => m.get(path).cloned().unwrap_or_else(|| Process {
                    error: Some(format!(
                        "{url} does not list {path}: is Litestream replicating it?"
                    )),
                    ..Process::default()
                }),
                Err(e) => Process {
                    error: Some(format!(
                        "Litestream's metrics endpoint does not answer: {e}"
                    )),
                    ..Process::default()
                },
            };
            board.post_process(name, p);
        }
        tokio::time::sleep(interval).await;
    }
}

/// Starts one task per replica of `db` (named `name`), reading every `interval` until the
/// runtime stops.
fn spawn_replicas(
    name: &str,
    db: &LitestreamDb,
    interval: Duration,
    board: Arc<Board>,
) -> Vec<JoinHandle<()>> {
    db.replicas
        .iter()
        .map(|replica| {
            let (name, board) = (name.to_string(), board.clone());
            let local = LocalDir {
                meta: db.meta_path.clone(),
                schedule: db.schedule.clone(),
            };
            let replica = replica.clone();
            tokio::spawn(async move { watch(name, local, replica, interval, board).await })
        })
        .collect()
}

/// Litestream's local state of a database, and how Litestream paces its work on it.
struct LocalDir {
    meta: std::path::PathBuf,
    schedule: Schedule,
}

async fn watch(
    db: String,
    LocalDir { meta, schedule }: LocalDir,
    replica: Replica,
    interval: Duration,
    board: Arc<Board>,
) {
    let kind_name = match &replica.kind {
        ReplicaKind::File { .. } => "file".to_string(),
        ReplicaKind::S3(_) => "s3".to_string(),
        ReplicaKind::Unsupported { kind } => kind.clone(),
    };
    let timeout = interval.max(Duration::from_secs(10));
    let reader = match reader_of(&replica.kind, timeout) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(db = %db, replica = %replica.name, error = %e, "cannot watch Litestream replica");
            board.post(&db, &replica.name, |o| {
                o.kind = kind_name.clone();
                o.error = Some(e.to_string());
                o.errors_total += 1;
            });
            return;
        }
    };
    let mut headers = Headers::default();
    let mut local_said = Said::default();
    let mut replica_said = Said::default();
    loop {
        // What the board shows, and what the log says when it changes: the error's text.
        let local = read_local(&meta).await.map_err(|e| e.to_string());
        local_said.tell(local.as_ref().err(), |e| match e {
            Some(e) => {
                tracing::warn!(db = %db, meta = %meta.display(), error = %e, "cannot read Litestream's local state")
            }
            None => {
                tracing::info!(db = %db, meta = %meta.display(), "Litestream's local state readable again")
            }
        });
        let (local, local_error) = match local {
            Ok(l) => (Some(l), None),
            Err(e) => (None, Some(e)),
        };
        let generation = local.as_ref().and_then(|l: &Local| l.generation.clone());
        let read = read_replica(&reader, generation, &schedule, &mut headers);
        let read = tokio::time::timeout(timeout, read);
        let read = read.await;
        let result = read.unwrap_or(Err(ReplicaError::Timeout(timeout)));
        let said = result.as_ref().err().map(ToString::to_string);
        replica_said.tell(said.as_ref(), |e| match e {
            Some(e) => {
                tracing::warn!(db = %db, replica = %replica.name, error = %e, "cannot read Litestream replica")
            }
            None => {
                tracing::info!(db = %db, replica = %replica.name, "Litestream replica readable again")
            }
        });
        let now = crate::units::epoch_seconds(SystemTime::now());
        let unreplicated_since = unreplicated_since(&meta, local.as_ref(), result.as_ref().ok());
        let kept = schedule.local_kept;
        let local_state = local.as_ref().map(|l| summarize(&l.files, kept));
        board.post(&db, &replica.name, |o| {
            o.kind = kind_name.clone();
            o.unreplicated_since = unreplicated_since;
            o.local_state = local_state;
            o.local = local.and_then(|l| l.position);
            o.local_error = local_error;
            record(o, result, now);
        });
        tokio::time::sleep(interval).await;
    }
}

/// When Litestream read the first commit it holds locally that the replica lacks (v0.5: the
/// timestamp of that local LTX file); `None` when the replica holds all it has.
fn unreplicated_since(
    meta: &std::path::Path,
    local: Option<&Local>,
    read: Option<&Option<Head>>,
) -> Option<f64> {
    let local = match local?.position.as_ref()? {
        Position::V5 { txid } => *txid,
        Position::V3 { .. } => return None,
    };
    let held = match read?.as_ref().map(|h| &h.position) {
        Some(Position::V5 { txid }) => *txid,
        None => 0,
        Some(Position::V3 { .. }) => return None,
    };
    if local <= held {
        return None;
    }
    let path = super::position::local_after(meta, held)?;
    let buf = super::replica::ltx_head(&path).ok()?;
    let h = crate::format::litestream::parse_ltx_header(&buf).ok()?;
    Some(h.timestamp_ms as f64 / 1000.0)
}

/// The last error logged, so that an error is logged when it starts or changes and its end
/// once, not on every read.
#[derive(Default)]
struct Said(Option<String>);

impl Said {
    fn tell(&mut self, now: Option<&String>, log: impl FnOnce(Option<&String>)) {
        if now != self.0.as_ref() {
            // The end of an error is news; the absence of one at start is not.
            if now.is_some() || self.0.is_some() {
                log(now);
            }
            self.0 = now.cloned();
        }
    }
}

/// The chain's verdict after a listing that saw `seen`: a gap is reported once two listings in
/// a row show the same one (the second value: a gap seen once, held until then). Pure.
fn confirmed(
    before: Option<Verdict>,
    unconfirmed: Option<String>,
    seen: Option<Verdict>,
) -> (Option<Verdict>, Option<String>) {
    match seen {
        Some(Verdict::Broken(gap)) if unconfirmed.as_ref() == Some(&gap) => {
            (Some(Verdict::Broken(gap)), None)
        }
        Some(Verdict::Broken(gap)) if matches!(before, Some(Verdict::Broken(_))) => {
            (Some(Verdict::Broken(gap)), None)
        }
        Some(Verdict::Broken(gap)) => (before, Some(gap)),
        other => (other, None),
    }
}

/// Records one read of the replica in its observation.
fn record(o: &mut Observation, result: Result<Option<Head>, ReplicaError>, now: f64) {
    match result {
        Ok(found) => {
            o.error = None;
            o.read_at = Some(now);
            o.replicated_at = found.as_ref().map(|h| h.at);
            o.replica_wal = found.as_ref().and_then(|h| h.wal);
            o.storage = found.as_ref().map(|h| h.storage.clone());
            let seen = found.as_ref().and_then(|h| h.chain.verdict());
            (o.chain, o.chain_unconfirmed) =
                confirmed(o.chain.take(), o.chain_unconfirmed.take(), seen);
            o.replica = found.map(|h| h.position);
        }
        Err(e) => {
            o.error = Some(e.to_string());
            o.errors_total += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::confirmed;
    use crate::litestream::chain::Verdict;

    #[test]
    fn a_gap_counts_once_two_listings_in_a_row_show_it() {
        let gap = || Some(Verdict::Broken("gap at 9".to_string()));
        // Whole, then a gap seen once (mid-compaction): still whole.
        let (now, held) = confirmed(Some(Verdict::Whole), None, gap());
        assert_eq!(now, Some(Verdict::Whole));
        // The next listing whole again: the gap is forgotten.
        let (now, held) = confirmed(now, held, Some(Verdict::Whole));
        assert_eq!((now, held), (Some(Verdict::Whole), None));
        // Seen twice in a row: reported.
        let (now, held) = confirmed(Some(Verdict::Whole), None, gap());
        let (now, _) = confirmed(now, held, gap());
        assert_eq!(now, gap());
        // Not judged (v0.3) is said at once.
        assert_eq!(confirmed(Some(Verdict::Whole), None, None).0, None);
    }
}
