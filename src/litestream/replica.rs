//! Reading one replica: how (a directory, or an S3 client with its credentials), its newest
//! position and the time up to which it holds every commit, and Litestream's local state.
//! Every error names the file or `s3://bucket/key` and keeps its cause.

use super::chain::Chain;
use super::config::{ReplicaKind, S3Spec, Schedule};
use super::listing::{Entry, Listing};
use super::position::{self, Local, Newest, Position};
use crate::format::litestream::{
    parse_level, parse_ltx_header, parse_ltx_name, LtxError, WalMark, LTX_HEADER_SIZE,
};
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Why a replica, or Litestream's local state, could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("no credentials: set access-key-id and secret-access-key in litestream.yml, or LITESTREAM_ACCESS_KEY_ID and LITESTREAM_SECRET_ACCESS_KEY (or the AWS_ ones) for sqlite-ops")]
    NoCredentials,
    #[error("cannot configure the S3 client: {0}")]
    S3Client(#[source] object_store::Error),
    #[error("replica type {kind:?} is not supported by sqlite-ops (it reads file and s3 replicas); its lag is not measured")]
    Unsupported { kind: String },
    #[error("cannot list s3://{bucket}/{prefix}: {}", short(.source))]
    List {
        bucket: String,
        prefix: String,
        source: object_store::Error,
    },
    #[error("cannot read s3://{bucket}/{key}: {}", short(.source))]
    Get {
        bucket: String,
        key: String,
        source: object_store::Error,
    },
    #[error("cannot read {}: {source}", .path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A replica directory, or Litestream's local state, could not be read.
    #[error(transparent)]
    Read(#[from] super::listing::ReadError),
    #[error("{key}: {source}")]
    Ltx { key: String, source: LtxError },
    #[error("no answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("the reading task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// How a replica is read.
pub(super) enum Reader {
    File(std::path::PathBuf),
    S3 {
        store: AmazonS3,
        bucket: String,
        prefix: String,
    },
}

/// The S3 client for a replica, or why there cannot be one.
fn s3_store(spec: &S3Spec, timeout: Duration) -> Result<AmazonS3, ReplicaError> {
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
        return Err(ReplicaError::NoCredentials);
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
    b.build().map_err(ReplicaError::S3Client)
}

/// How a replica of this kind is read, or why it cannot be.
pub(super) fn reader_of(kind: &ReplicaKind, timeout: Duration) -> Result<Reader, ReplicaError> {
    match kind {
        ReplicaKind::File { path } => Ok(Reader::File(path.clone())),
        ReplicaKind::S3(spec) => s3_store(spec, timeout).map(|store| Reader::S3 {
            store,
            bucket: spec.bucket.clone(),
            prefix: spec.prefix.clone(),
        }),
        ReplicaKind::Unsupported { kind } => Err(ReplicaError::Unsupported { kind: kind.clone() }),
    }
}

/// Reads of Litestream's local state and of file replicas at once, at most: each runs on one of
/// tokio's blocking threads, and a fleet's watchers, all due together at start, grew that pool
/// to its 512 threads (and the daemon's memory with their stacks and heaps).
static FILE_READS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// `read` on a blocking thread, within [`FILE_READS`].
async fn blocking<T: Send + 'static>(
    read: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    let _permit = FILE_READS.acquire().await;
    tokio::task::spawn_blocking(read).await
}

/// Litestream's local state, off the async runtime, through what was listed of it last time;
/// the error names the file and the cause.
pub(super) async fn read_local(meta: &Path, listing: &mut Listing) -> Result<Local, ReplicaError> {
    let meta = meta.to_path_buf();
    let mut listed = std::mem::take(listing);
    let (read, listed) = blocking(move || (position::local(&meta, &mut listed), listed)).await?;
    *listing = listed;
    Ok(read?)
}

/// What a watcher keeps of a file replica between reads: its last listing, and the headers
/// already checked.
#[derive(Debug, Default)]
pub(super) struct Remembered {
    listing: Listing,
    headers: Headers,
    /// The newest file's header, with the file's id, size and time when it was read.
    newest: Option<(FileStamp, [u8; LTX_HEADER_SIZE])>,
}

/// An LTX file as a listing shows it: its id, size and modification time.
type FileStamp = (Option<LtxId>, u64, SystemTime);

/// What a replica holds: its newest position, the time up to which it holds every commit, and
/// (v0.5, a level-0 file) where the live WAL stood when that file was made.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub position: Position,
    pub at: f64,
    pub wal: Option<WalMark>,
    /// Whether a restore would find an unbroken run of LTX files (v0.5), from the same listing.
    pub chain: super::chain::Chain,
    /// What it holds level by level, from the same listing.
    pub storage: super::storage::Storage,
}

/// The replica's newest position ([`Head`]); `None` when empty.
pub(super) async fn read_replica(
    reader: &Reader,
    generation: Option<String>,
    schedule: &Schedule,
    remembered: &mut Remembered,
) -> Result<Option<Head>, ReplicaError> {
    match reader {
        Reader::File(root) => {
            let (root, schedule) = (root.clone(), schedule.clone());
            let mut kept = std::mem::take(remembered);
            let (read, kept) = blocking(move || {
                let read = read_directory(&root, generation, &schedule, &mut kept);
                (read, kept)
            })
            .await?;
            *remembered = kept;
            read
        }
        Reader::S3 {
            store,
            bucket,
            prefix,
        } => read_s3(store, bucket, prefix, generation, schedule).await,
    }
}

/// A replica in a directory (blocking I/O).
fn read_directory(
    root: &Path,
    generation: Option<String>,
    schedule: &Schedule,
    Remembered {
        listing,
        headers,
        newest,
    }: &mut Remembered,
) -> Result<Option<Head>, ReplicaError> {
    listing.read(root, 3)?;
    let entries = listing.entries();
    let Some(n) = position::newest(entries, generation.as_deref()) else {
        return Ok(None);
    };
    let mut head = dated(n, (entries, schedule), |n| {
        // The newest file's header, read again only when the file changed.
        let e = entries.iter().find(|e| e.key == n.key);
        let stamp = e.map(|e| (ltx_id(&e.key), e.size, e.modified));
        if let Some((_, bytes)) = newest.as_ref().filter(|(k, _)| Some(*k) == stamp) {
            return Ok(bytes.to_vec());
        }
        let path = root.join(&n.key);
        let bytes = ltx_head(&path).map_err(|source| ReplicaError::File { path, source })?;
        *newest = stamp.map(|s| (s, bytes));
        Ok(bytes.to_vec())
    })?;
    if let (Chain::Whole { .. }, Some((key, problem))) = (&head.chain, headers.check(root, entries))
    {
        head.chain = Chain::BadHeader { key, problem };
    }
    Ok(Some(head))
}

/// An LTX file of a replica: (level, min TXID, max TXID).
type LtxId = (u32, u64, u64);

/// An LTX file's id, from its key.
fn ltx_id(key: &str) -> Option<LtxId> {
    let mut parts = key.rsplit('/');
    let name = parse_ltx_name(parts.next()?)?;
    Some((parse_level(parts.next()?)?, name.min_txid, name.max_txid))
}

/// The headers of a file replica's LTX files already checked, by (level, min TXID, max TXID),
/// with the size and time they had then: a file is read once, and again only when it changes.
/// Keyed by numbers, not paths: a fleet keeps one such table a replica.
#[derive(Debug, Default)]
pub(super) struct Headers(HashMap<LtxId, (u64, SystemTime, Option<String>)>);

impl Headers {
    /// The first file a restore would read (the newest snapshot, or one past it) whose header
    /// is damaged, and what is wrong with it; files that vanish while read are skipped.
    fn check(&mut self, root: &Path, entries: &[Entry]) -> Option<(String, String)> {
        let by_key: HashMap<&str, &Entry> = entries.iter().map(|e| (e.key.as_str(), e)).collect();
        let mut reads = super::chain::restore_reads(by_key.keys().copied());
        reads.sort_unstable();
        let mut first = None;
        let mut checked = HashSet::new();
        for key in reads {
            let e = by_key[key];
            let Some(id) = ltx_id(key) else { continue };
            checked.insert(id);
            let cached = self
                .0
                .get(&id)
                .filter(|c| (c.0, c.1) == (e.size, e.modified));
            let problem = match cached {
                Some(c) => c.2.clone(),
                None => {
                    let mut bytes = Vec::with_capacity(LTX_HEADER_SIZE);
                    let read = std::fs::File::open(root.join(key))
                        .and_then(|f| f.take(LTX_HEADER_SIZE as u64).read_to_end(&mut bytes));
                    if read.is_err() {
                        continue;
                    }
                    let problem = super::chain::header_problem(key, &bytes);
                    self.0.insert(id, (e.size, e.modified, problem.clone()));
                    problem
                }
            };
            if let (None, Some(p)) = (&first, problem) {
                first = Some((key.to_string(), p));
            }
        }
        self.0.retain(|id, _| checked.contains(id));
        first
    }
}

/// The first bytes of the LTX file at `path`: its header.
pub(super) fn ltx_head(path: &Path) -> std::io::Result<[u8; LTX_HEADER_SIZE]> {
    let mut buf = [0u8; LTX_HEADER_SIZE];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut buf))?;
    Ok(buf)
}

/// A replica under `s3://bucket/prefix`: one listing, and one ranged read of the newest LTX
/// file's header (v0.5).
async fn read_s3(
    store: &AmazonS3,
    bucket: &str,
    prefix: &str,
    generation: Option<String>,
    schedule: &Schedule,
) -> Result<Option<Head>, ReplicaError> {
    let base = object_store::path::Path::from(prefix);
    let objects: Vec<_> = store
        .list(if prefix.is_empty() { None } else { Some(&base) })
        .try_collect()
        .await
        .map_err(|source| ReplicaError::List {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            source,
        })?;
    let entries: Vec<Entry> = objects
        .iter()
        .map(|o| {
            let key = o.location.as_ref();
            let rel = key
                .strip_prefix(prefix)
                .unwrap_or(key)
                .trim_start_matches('/');
            Entry {
                key: rel.to_string(),
                modified: SystemTime::from(o.last_modified),
                size: o.size,
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
                .map_err(|source| ReplicaError::Get {
                    bucket: bucket.to_string(),
                    key,
                    source,
                }),
        )
    } else {
        None
    };
    let listing = (&entries[..], schedule);
    dated(n, listing, move |_| header.unwrap_or(Ok(Vec::new()))).map(Some)
}

/// The time up to which the newest entry covers commits: the LTX header's timestamp (v0.5,
/// when Litestream read the WAL), or the segment's modification time (v0.3); with the chain and
/// the storage read from the same listing.
fn dated(
    n: Newest,
    (entries, schedule): (&[Entry], &Schedule),
    header: impl FnOnce(&Newest) -> Result<Vec<u8>, ReplicaError>,
) -> Result<Head, ReplicaError> {
    let (at, wal) = match n.position {
        Position::V5 { .. } => {
            let bytes = header(&n)?;
            let h = parse_ltx_header(&bytes).map_err(|source| ReplicaError::Ltx {
                key: n.key.clone(),
                source,
            })?;
            (h.timestamp_ms as f64 / 1000.0, h.wal)
        }
        Position::V3 { .. } => (crate::units::epoch_seconds(n.modified), None),
    };
    let keys = entries.iter().map(|e| e.key.as_str());
    let chain = match &n.position {
        Position::V5 { .. } => super::chain::check(keys),
        Position::V3 { generation, .. } => super::wal_chain::check(keys, generation),
    };
    Ok(Head {
        position: n.position,
        at,
        wal,
        chain,
        storage: super::storage::summarize(entries, schedule),
    })
}

/// The first line of an object-store error, which otherwise carries a whole HTTP exchange.
fn short(e: &object_store::Error) -> String {
    let s = e.to_string();
    s.lines().next().unwrap_or(&s).chars().take(300).collect()
}
