//! Reads each replica and Litestream's local state on an interval, off the poll path (an S3
//! listing may take seconds; a poll must not), and posts what it found on a [`Board`] that the
//! poller reads. One task per replica; a failing replica is an error on that replica only.

use super::board::{Board, Observation};
use super::config::{LitestreamDb, Replica, ReplicaKind, S3Spec};
use super::metrics::{self, Process};
use super::position::{self, Entry, Local, Newest, Position};
use crate::format::litestream::{parse_ltx_header, LTX_HEADER_SIZE};
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// How a replica is read.
enum Reader {
    File(std::path::PathBuf),
    S3 {
        store: AmazonS3,
        bucket: String,
        prefix: String,
    },
}

/// The S3 client for a replica, or why there cannot be one.
fn s3_store(spec: &S3Spec, timeout: Duration) -> Result<AmazonS3, String> {
    let env = |names: &[&str]| names.iter().find_map(|n| std::env::var(n).ok());
    let key = spec
        .access_key_id
        .clone()
        .or_else(|| env(&["LITESTREAM_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"]));
    let secret = spec
        .secret_access_key
        .clone()
        .or_else(|| env(&["LITESTREAM_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"]));
    let (Some(key), Some(secret)) = (key, secret) else {
        return Err("no credentials: set access-key-id and secret-access-key in litestream.yml, or LITESTREAM_ACCESS_KEY_ID and LITESTREAM_SECRET_ACCESS_KEY (or the AWS_ ones) for sqlite-ops".into());
    };
    let mut b = AmazonS3Builder::new()
        .with_bucket_name(&spec.bucket)
        .with_region(spec.region.clone().unwrap_or_else(|| "us-east-1".into()))
        .with_access_key_id(key)
        .with_secret_access_key(secret)
        .with_virtual_hosted_style_request(!spec.force_path_style)
        .with_client_options(
            ClientOptions::new()
                .with_timeout(timeout)
                .with_connect_timeout(timeout.min(Duration::from_secs(5))),
        )
        .with_retry(RetryConfig {
            max_retries: 1,
            retry_timeout: timeout,
            ..RetryConfig::default()
        });
    if let Some(ep) = &spec.endpoint {
        b = b
            .with_endpoint(ep)
            .with_allow_http(ep.starts_with("http://"));
    }
    b.build()
        .map_err(|e| format!("cannot configure the S3 client: {e}"))
}

/// Starts the watchers of every replicated target: one task per replica, and one per
/// Litestream metrics endpoint. They run until aborted or the runtime stops.
pub fn spawn_all<'a>(
    dbs: impl IntoIterator<Item = (&'a str, &'a LitestreamDb)>,
    interval: Duration,
    board: &Arc<Board>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let mut endpoints: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for (name, ls) in dbs {
        tasks.extend(spawn_replicas(name, ls, interval, board.clone()));
        if let Some(url) = &ls.metrics_url {
            endpoints
                .entry(url.clone())
                .or_default()
                .push((name.to_string(), ls.path.display().to_string()));
        }
    }
    for (url, dbs) in endpoints {
        let board = board.clone();
        tasks.push(tokio::spawn(async move {
            watch_metrics(url, dbs, interval, board).await
        }));
    }
    tasks
}

/// Scrapes Litestream's metrics endpoint every `interval` for `dbs` (name, path as Litestream
/// knows it).
async fn watch_metrics(
    url: String,
    dbs: Vec<(String, String)>,
    interval: Duration,
    board: Arc<Board>,
) {
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
) -> Vec<tokio::task::JoinHandle<()>> {
    db.replicas
        .iter()
        .map(|replica| {
            let (name, meta, board) = (name.to_string(), db.meta_path.clone(), board.clone());
            let replica = replica.clone();
            tokio::spawn(async move { watch(name, meta, replica, interval, board).await })
        })
        .collect()
}

async fn watch(
    db: String,
    meta: std::path::PathBuf,
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
                o.error = Some(e);
                o.errors_total += 1;
            });
            return;
        }
    };
    let mut local_said = Said::default();
    let mut replica_said = Said::default();
    loop {
        let local = read_local(&meta).await;
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
        let read = tokio::time::timeout(timeout, read_replica(&reader, generation)).await;
        let result = read.unwrap_or_else(|_| {
            Err(format!(
                "no answer within {}",
                humantime::format_duration(timeout)
            ))
        });
        replica_said.tell(result.as_ref().err(), |e| match e {
            Some(e) => {
                tracing::warn!(db = %db, replica = %replica.name, error = %e, "cannot read Litestream replica")
            }
            None => {
                tracing::info!(db = %db, replica = %replica.name, "Litestream replica readable again")
            }
        });
        let now = epoch(SystemTime::now());
        board.post(&db, &replica.name, |o| {
            o.kind = kind_name.clone();
            o.local = local.and_then(|l| l.position);
            o.local_error = local_error;
            record(o, result, now);
        });
        tokio::time::sleep(interval).await;
    }
}

/// How a replica of this kind is read, or why it cannot be.
fn reader_of(kind: &ReplicaKind, timeout: Duration) -> Result<Reader, String> {
    match kind {
        ReplicaKind::File { path } => Ok(Reader::File(path.clone())),
        ReplicaKind::S3(spec) => s3_store(spec, timeout).map(|store| Reader::S3 {
            store,
            bucket: spec.bucket.clone(),
            prefix: spec.prefix.clone(),
        }),
        ReplicaKind::Unsupported { kind } => Err(format!(
            "replica type {kind:?} is not supported by sqlite-ops (it reads file and s3 replicas); its lag is not measured"
        )),
    }
}

/// Litestream's local state, off the async runtime; the error names the file and the cause.
async fn read_local(meta: &std::path::Path) -> Result<Local, String> {
    let meta = meta.to_path_buf();
    tokio::task::spawn_blocking(move || position::local(&meta))
        .await
        .map_err(|e| format!("reading Litestream's local state failed: {e}"))
        .and_then(|r| r.map_err(|e| e.to_string()))
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

/// Records one read of the replica in its observation.
fn record(o: &mut Observation, result: Result<Option<(Position, f64)>, String>, now: f64) {
    match result {
        Ok(found) => {
            o.error = None;
            o.read_at = Some(now);
            o.replica = found.as_ref().map(|(pos, _)| pos.clone());
            o.replicated_at = found.map(|(_, at)| at);
        }
        Err(e) => {
            o.error = Some(e);
            o.errors_total += 1;
        }
    }
}

/// The replica's position and the time up to which it holds every commit; `None` when empty.
async fn read_replica(
    reader: &Reader,
    generation: Option<String>,
) -> Result<Option<(Position, f64)>, String> {
    match reader {
        Reader::File(root) => {
            let root = root.clone();
            tokio::task::spawn_blocking(move || {
                let entries = position::file_listing(&root).map_err(|e| e.to_string())?;
                let Some(n) = position::newest(&entries, generation.as_deref()) else {
                    return Ok(None);
                };
                let at = dated(&n, || {
                    let mut buf = [0u8; LTX_HEADER_SIZE];
                    let path = Path::new(&root).join(&n.key);
                    std::fs::File::open(&path)
                        .and_then(|mut f| f.read_exact(&mut buf))
                        .map(|_| buf.to_vec())
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))
                })?;
                Ok(Some((n.position, at)))
            })
            .await
            .map_err(|e| e.to_string())?
        }
        Reader::S3 {
            store,
            bucket,
            prefix,
        } => {
            let base = object_store::path::Path::from(prefix.as_str());
            let objects: Vec<_> = store
                .list(if prefix.is_empty() { None } else { Some(&base) })
                .try_collect()
                .await
                .map_err(|e| format!("cannot list s3://{bucket}/{prefix}: {}", short(&e)))?;
            let entries: Vec<Entry> = objects
                .iter()
                .map(|o| {
                    let key = o.location.as_ref();
                    let rel = key
                        .strip_prefix(prefix.as_str())
                        .unwrap_or(key)
                        .trim_start_matches('/');
                    Entry {
                        key: rel.to_string(),
                        modified: SystemTime::from(o.last_modified),
                    }
                })
                .collect();
            let Some(n) = position::newest(&entries, generation.as_deref()) else {
                return Ok(None);
            };
            let header = if matches!(n.position, Position::V5 { .. }) {
                let key = if prefix.is_empty() {
                    n.key.clone()
                } else {
                    format!("{prefix}/{}", n.key)
                };
                Some(
                    store
                        .get_range(
                            &object_store::path::Path::from(key.as_str()),
                            0..LTX_HEADER_SIZE as u64,
                        )
                        .await
                        .map(|b| b.to_vec())
                        .map_err(|e| format!("cannot read s3://{bucket}/{key}: {}", short(&e))),
                )
            } else {
                None
            };
            let at = dated(&n, || header.clone().unwrap_or(Ok(Vec::new())))?;
            Ok(Some((n.position, at)))
        }
    }
}

/// The time up to which the newest entry covers commits: the LTX header's timestamp (v0.5,
/// when Litestream read the WAL), or the segment's modification time (v0.3).
fn dated(n: &Newest, header: impl FnOnce() -> Result<Vec<u8>, String>) -> Result<f64, String> {
    match n.position {
        Position::V5 { .. } => {
            let bytes = header()?;
            let h = parse_ltx_header(&bytes).map_err(|e| format!("{}: {e}", n.key))?;
            Ok(h.timestamp_ms as f64 / 1000.0)
        }
        Position::V3 { .. } => Ok(epoch(n.modified)),
    }
}

/// The first line of an object-store error, which otherwise carries a whole HTTP exchange.
fn short(e: &object_store::Error) -> String {
    let s = e.to_string();
    s.lines().next().unwrap_or(&s).chars().take(300).collect()
}
