//! Reads each replica and Litestream's local state on an interval, off the poll path (an S3
//! listing may take seconds; a poll must not), and posts what it found on a [`Board`] that the
//! poller reads. One task per replica; a failing replica is an error on that replica only.

use super::board::{Board, Observation};
use super::chain::Verdict;
use super::config::LitestreamDb;
use super::listing::Listing;
use super::local_state::summarize;
use super::metrics::{self, Process};
use super::position::{Local, Position};
use super::replica::{read_local, read_replica, reader_of, Head, Reader, Remembered, ReplicaError};
use super::storage::since_seen;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::task::JoinHandle;

/// The running watchers, by what they watch, so that a change of the watched databases (a
/// tenant discovered or gone) starts and stops only the watchers it concerns. Every task is
/// aborted when this is dropped.
#[derive(Default)]
pub struct Watchers {
    /// One task per replica, by database name, with the entry they were started for.
    replicas: HashMap<String, (Arc<LitestreamDb>, Vec<JoinHandle<()>>)>,
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
        dbs: impl IntoIterator<Item = (&'a str, &'a Arc<LitestreamDb>)>,
        pace: Pace,
        board: &Arc<Board>,
    ) {
        let dbs: HashMap<&str, &Arc<LitestreamDb>> = dbs.into_iter().collect();
        self.replicas.retain(|name, (ls, tasks)| {
            let keep = dbs.get(name.as_str()).is_some_and(|new| *new == ls);
            if !keep {
                tasks.iter().for_each(JoinHandle::abort);
            }
            keep
        });
        for (name, ls) in &dbs {
            if !self.replicas.contains_key(*name) {
                let tasks = spawn_replicas(name, ls, pace, board.clone());
                self.replicas
                    .insert(name.to_string(), (Arc::clone(ls), tasks));
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
                let every = pace.every;
                let task =
                    tokio::spawn(async move { watch_metrics(url, list, every, board).await });
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

/// Starts one task per replica of `db` (named `name`), reading at `pace` until the
/// runtime stops.
fn spawn_replicas(
    name: &str,
    db: &Arc<LitestreamDb>,
    pace: Pace,
    board: Arc<Board>,
) -> Vec<JoinHandle<()>> {
    db.replicas
        .iter()
        .map(|replica| {
            let timeout = pace.every.max(Duration::from_secs(10));
            let kind = replica.kind.label();
            let reader = match reader_of(&replica.kind, timeout) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(db = %name, replica = %replica.name, error = %e, "cannot watch Litestream replica");
                    board.post(name, &replica.name, |o| {
                        o.kind = kind;
                        o.error = Some(e.to_string());
                        o.errors_total += 1;
                    });
                    // Nothing to watch: the error stands on the board (a task that is already
                    // done keeps the list one handle per replica).
                    return tokio::spawn(async {});
                }
            };
            let watcher = Box::new(Watcher {
                db: name.to_string(),
                litestream: Arc::clone(db),
                replica: replica.name.clone(),
                kind,
                reader,
                timeout,
                pace,
                board: board.clone(),
                local: Listing::default(),
                remembered: Remembered::default(),
                said: (Said::default(), Said::default()),
                quiet: None,
                checked: None,
                behind: Default::default(),
            });
            tokio::spawn(watch(watcher))
        })
        .collect()
}

/// One watcher: what it watches (a replica of a database, Litestream's local state of it, how
/// Litestream paces its work on it) and what it remembers between reads. Boxed, and the reads
/// boxed: a task keeps its future whole while it sleeps, so anything inline costs every idle
/// replica of a fleet (a_resting_watcher_is_small).
struct Watcher {
    db: String,
    /// Where Litestream keeps its local state and how it paces its work (shared with the
    /// target: a fleet's watchers hold no copy of their own).
    litestream: Arc<LitestreamDb>,
    replica: String,
    /// The replica's type, as the `type` label says it.
    kind: String,
    reader: Reader,
    timeout: Duration,
    pace: Pace,
    board: Arc<Board>,
    /// What the last read listed of Litestream's local state.
    local: Listing,
    /// What the last read listed of the replica and found in its headers.
    remembered: Remembered,
    /// What the log last said of the local state and of the replica: an error's text.
    said: (Said, Said),
    quiet: Option<Quiet>,
    /// When Litestream's local state was last read and found where the replica stood.
    checked: Option<Instant>,
    /// Per level, when a read first saw it behind the level it is made from.
    behind: std::collections::BTreeMap<std::borrow::Cow<'static, str>, f64>,
}

async fn watch(mut w: Box<Watcher>) {
    let bell = w.board.bell(&w.db);
    loop {
        // Made before the look at the board: a touch after the look still wakes it.
        let rung = bell.notified();
        // Settled since that read, the database gave Litestream nothing new: no read at all,
        // and no wake-up either until the poller sees it move or the idle interval ends (a
        // fleet's idle watchers woke every second to ask: 10,000 wake-ups a second).
        let untouched = w
            .checked
            .is_some_and(|c| w.board.touched(&w.db).is_none_or(|t| t <= c));
        let idle_left = (w.quiet.as_ref()).and_then(|q| w.pace.idle.checked_sub(q.at.elapsed()));
        if let (true, Some(left)) = (untouched, idle_left) {
            // Boxed, as the reads are: most of a fleet's watchers rest here.
            Box::pin(async {
                tokio::select! {
                    _ = rung => {}
                    _ = tokio::time::sleep(left) => {}
                }
            })
            .await;
            continue;
        }
        Box::pin(read(&mut w)).await;
        tokio::time::sleep(w.pace.every).await;
    }
}

/// One read: Litestream's local state, and the replica unless it can hold nothing new; posts
/// what it found.
async fn read(w: &mut Watcher) {
    let reading = Instant::now();
    let meta = &w.litestream.meta_path;
    let local = read_local(meta, &mut w.local)
        .await
        .map_err(|e| e.to_string());
    let db = &w.db;
    w.said
        .0
        .tell(local.as_ref().err(), |e| log_local(db, meta, e));
    let (local, local_error) = match local {
        Ok(l) => (Some(l), None),
        Err(e) => (None, Some(e)),
    };
    let position = local.as_ref().and_then(|l| l.position.clone());
    let local_state = local.as_ref().map(|l| {
        let kept = &w.litestream.schedule;
        let kept = (kept.local_kept, kept.shadow_wal_kept);
        Arc::new(summarize(&l.files, kept.0, kept.1))
    });
    if w.quiet
        .as_ref()
        .is_some_and(|q| q.still(position.as_ref(), w.pace.idle))
    {
        w.checked = Some(reading);
        // Nothing new can be in the replica: only the local state is news.
        w.board.post(&w.db, &w.replica, |o| {
            o.local_state = local_state;
            o.local = position;
            o.local_error = local_error;
        });
        return;
    }
    let generation = local.as_ref().and_then(|l: &Local| l.generation.clone());
    let read = read_replica(
        &w.reader,
        generation,
        &w.litestream.schedule,
        &mut w.remembered,
    );
    let result = within(w.timeout, read, &mut w.behind).await;
    let said = result.as_ref().err().map(ToString::to_string);
    let (db, replica) = (&w.db, &w.replica);
    w.said
        .1
        .tell(said.as_ref(), |e| log_replica(db, replica, e));
    w.quiet = Quiet::after(result.as_ref().ok(), position.as_ref());
    w.checked = w.quiet.as_ref().map(|_| reading);
    let now = crate::units::epoch_seconds(SystemTime::now());
    let meta = &w.litestream.meta_path;
    let unreplicated_since = unreplicated_since(meta, local.as_ref(), result.as_ref().ok());
    w.board.post(&w.db, &w.replica, |o| {
        o.kind = w.kind.clone();
        o.unreplicated_since = unreplicated_since;
        o.local_state = local_state;
        o.local = position;
        o.local_error = local_error;
        record(o, result, now);
    });
}

/// A read of the replica given `timeout`, each level's wait counted from the read that first
/// saw it behind (`behind`, kept between reads).
async fn within(
    timeout: Duration,
    read: impl std::future::Future<Output = Result<Option<Head>, ReplicaError>>,
    behind: &mut std::collections::BTreeMap<std::borrow::Cow<'static, str>, f64>,
) -> Result<Option<Head>, ReplicaError> {
    let read = tokio::time::timeout(timeout, read).await;
    let mut result = read.unwrap_or(Err(ReplicaError::Timeout(timeout)));
    let read_at = crate::units::epoch_seconds(SystemTime::now());
    if let Ok(Some(head)) = &mut result {
        since_seen(&mut head.storage, behind, read_at);
    }
    result
}

fn log_local(db: &str, meta: &std::path::Path, error: Option<&String>) {
    match error {
        Some(e) => {
            tracing::warn!(db = %db, meta = %meta.display(), error = %e, "cannot read Litestream's local state")
        }
        None => {
            tracing::info!(db = %db, meta = %meta.display(), "Litestream's local state readable again")
        }
    }
}

fn log_replica(db: &str, replica: &str, error: Option<&String>) {
    match error {
        Some(e) => {
            tracing::warn!(db = %db, replica = %replica, error = %e, "cannot read Litestream replica")
        }
        None => {
            tracing::info!(db = %db, replica = %replica, "Litestream replica readable again")
        }
    }
}

/// How often the watchers read: Litestream's local state always every `every`; a replica
/// every `every` while Litestream has something it may not hold, else every `idle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub every: Duration,
    pub idle: Duration,
}

impl Pace {
    /// Every read at the same interval (`check`'s short sample).
    pub fn uniform(every: Duration) -> Self {
        Pace { every, idle: every }
    }
}

/// A replica last read whole and holding everything Litestream had locally then: until
/// Litestream's local position moves, only Litestream's uploads (none: it has nothing new) and
/// its compaction and retention can change it, which a read every `idle` catches.
struct Quiet {
    at: Instant,
    local: Position,
}

impl Quiet {
    /// After a read of the replica (`None`: it failed) with Litestream's local position then.
    fn after(read: Option<&Option<Head>>, local: Option<&Position>) -> Option<Quiet> {
        let (held, local) = (&read?.as_ref()?.position, local?);
        covers(held, local).then(|| Quiet {
            at: Instant::now(),
            local: local.clone(),
        })
    }

    /// Whether the replica can still hold nothing new: the local position has not moved, and
    /// the last read is younger than `idle`.
    fn still(&self, local: Option<&Position>, idle: Duration) -> bool {
        local == Some(&self.local) && self.at.elapsed() < idle
    }
}

/// Whether a replica at `held` holds everything up to `local`. Pure.
fn covers(held: &Position, local: &Position) -> bool {
    match (held, local) {
        (Position::V5 { txid: h }, Position::V5 { txid: l }) => h >= l,
        (
            Position::V3 {
                generation: hg,
                index: hi,
                offset: ho,
            },
            Position::V3 {
                generation: lg,
                index: li,
                offset: lo,
            },
        ) => hg == lg && (hi, ho) >= (li, lo),
        _ => false,
    }
}

/// When Litestream read the first commit it holds locally that the replica lacks (v0.5: the
/// timestamp of that local LTX file); `None` when the replica holds all it has.
fn unreplicated_since(
    meta: &std::path::Path,
    local: Option<&Local>,
    read: Option<&Option<Head>>,
) -> Option<f64> {
    let files = &local?.files;
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
    let key = super::position::local_after(files, held)?;
    let buf = super::replica::ltx_head(&meta.join(key)).ok()?;
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
    o.reads_total += 1;
    match result {
        Ok(found) => {
            o.error = None;
            o.read_at = Some(now);
            o.replicated_at = found.as_ref().map(|h| h.at);
            o.replica_wal = found.as_ref().and_then(|h| h.wal);
            let seen = found.as_ref().and_then(|h| h.chain.verdict());
            (o.chain, o.chain_unconfirmed) =
                confirmed(o.chain.take(), o.chain_unconfirmed.take(), seen);
            (o.replica, o.storage) = match found {
                Some(h) => (Some(h.position), Some(Arc::new(h.storage))),
                None => (None, None),
            };
        }
        Err(e) => {
            o.error = Some(e.to_string());
            o.errors_total += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{confirmed, covers, Position, Quiet};
    use crate::litestream::chain::Verdict;
    use std::time::Duration;

    /// A replica read whole and holding what Litestream had locally is left alone until the
    /// local position moves or the idle interval passes; one behind, or a failed read, is not.
    #[test]
    fn a_replica_holding_all_is_read_again_when_litestream_moves_on() {
        let v5 = |txid| Position::V5 { txid };
        let v3 = |generation: &str, index, offset| Position::V3 {
            generation: generation.into(),
            index,
            offset,
        };
        assert!(covers(&v5(8), &v5(8)) && covers(&v5(9), &v5(8)) && !covers(&v5(7), &v5(8)));
        assert!(covers(&v3("a", 2, 10), &v3("a", 2, 10)));
        assert!(!covers(&v3("a", 2, 0), &v3("a", 2, 10)));
        assert!(
            !covers(&v3("b", 9, 0), &v3("a", 2, 10)),
            "another generation"
        );
        assert!(!covers(&v5(9), &v3("a", 2, 10)));

        let head = |txid| crate::litestream::replica::Head {
            position: v5(txid),
            at: 0.0,
            wal: None,
            chain: crate::litestream::chain::Chain::NotLtx,
            storage: Default::default(),
        };
        let idle = Duration::from_secs(60);
        let q = Quiet::after(Some(&Some(head(8))), Some(&v5(8))).unwrap();
        assert!(q.still(Some(&v5(8)), idle));
        assert!(!q.still(Some(&v5(9)), idle), "Litestream moved on");
        assert!(!q.still(None, idle), "local state unreadable");
        assert!(
            !q.still(Some(&v5(8)), Duration::ZERO),
            "the idle interval passed"
        );
        assert!(
            Quiet::after(Some(&Some(head(7))), Some(&v5(8))).is_none(),
            "behind"
        );
        assert!(
            Quiet::after(Some(&None), Some(&v5(8))).is_none(),
            "empty replica"
        );
        assert!(Quiet::after(None, Some(&v5(8))).is_none(), "read failed");
    }

    /// A fleet runs one watcher task per replica, each resting in its sleep most of the time: the
    /// task keeps its future whole, so a read's state (an S3 listing's) held inline would cost
    /// every idle replica kilobytes.
    #[test]
    fn a_resting_watcher_is_small() {
        use crate::litestream::config::{LitestreamDb, ReplicaKind};
        let kind = ReplicaKind::File {
            path: "/nonexistent".into(),
        };
        let watcher = Box::new(super::Watcher {
            db: "db".into(),
            litestream: std::sync::Arc::new(LitestreamDb {
                path: "/nonexistent".into(),
                metrics_url: None,
                meta_path: "/nonexistent".into(),
                replicas: Vec::new(),
                schedule: Default::default(),
                restore_from: None,
            }),
            replica: "file".into(),
            kind: "file".into(),
            reader: crate::litestream::replica::reader_of(&kind, Duration::from_secs(1)).unwrap(),
            timeout: Duration::from_secs(10),
            pace: super::Pace::uniform(Duration::from_secs(1)),
            board: std::sync::Arc::default(),
            local: Default::default(),
            remembered: Default::default(),
            said: Default::default(),
            quiet: None,
            checked: None,
            behind: Default::default(),
        });
        let task = super::watch(watcher);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 256, "a watcher task rests in {size} bytes");
    }

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
