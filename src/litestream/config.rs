//! Reads Litestream's own configuration (`litestream.yml`) to find the databases it replicates
//! and where. Unknown fields are ignored: the file is Litestream's, not ours.

use serde_yaml::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a replica lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaKind {
    File {
        path: PathBuf,
    },
    S3(S3Spec),
    /// A type sqlite-ops does not read (gcs, abs, sftp, nats, webdav, ...).
    Unsupported {
        kind: String,
    },
}

impl ReplicaKind {
    /// The replica's type, as the `type` label says it.
    pub fn label(&self) -> String {
        match self {
            ReplicaKind::File { .. } => "file".to_string(),
            ReplicaKind::S3(_) => "s3".to_string(),
            ReplicaKind::Unsupported { kind } => kind.clone(),
        }
    }
}

/// An S3-compatible replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Spec {
    pub bucket: String,
    /// Key prefix, without leading or trailing slashes.
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub force_path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// The `replica` label: its `name:`, else its type (numbered when repeated).
    pub name: String,
    pub kind: ReplicaKind,
    pub sync_interval: Option<Duration>,
}

/// One database Litestream replicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LitestreamDb {
    pub path: PathBuf,
    /// Litestream's own metrics endpoint, from `addr:` (`http://127.0.0.1:9090/metrics`).
    pub metrics_url: Option<String>,
    /// Litestream's local state directory (`meta-path`, default `.<file>-litestream` beside it).
    pub meta_path: PathBuf,
    pub replicas: Vec<Replica>,
    /// How Litestream paces compaction, snapshots and the removal of local files.
    pub schedule: Schedule,
    /// What a litestream.yml of its own is written from, when litestream.yml names it only
    /// through a `dir:` entry (`litestream restore -config` resolves `path:` entries only).
    pub restore_from: Option<RestoreFrom>,
}

/// A database of a `dir:` entry, as its own restore config is written: the entry as written and
/// the database's path relative to the directory. The text is written when a drill needs it,
/// not on every walk of a fleet's directory (a YAML document per tenant every
/// `discover_interval`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreFrom {
    raw: std::sync::Arc<RawDir>,
    rel: String,
}

impl LitestreamDb {
    /// A litestream.yml of its own to restore it with (see [`RestoreFrom`]); `None` when
    /// litestream.yml names it by `path:`, or the entry's replicas cannot be written.
    pub fn restore_yml(&self) -> Option<String> {
        let from = self.restore_from.as_ref()?;
        from.raw.restore_yml(&self.path, &from.rel)
    }

    /// Whether `other` reads the replica named `replica` exactly as this does (same database,
    /// same local state, same replica settings), so that what was read of it still holds.
    pub fn same_replica(&self, other: &LitestreamDb, replica: &str) -> bool {
        let find = |db: &LitestreamDb| db.replicas.iter().find(|r| r.name == replica).cloned();
        self.path == other.path
            && self.meta_path == other.meta_path
            && find(self).is_some_and(|r| Some(r) == find(other))
    }

    /// Whether `other` reads Litestream's own metrics for this database as this does.
    pub fn same_process(&self, other: &LitestreamDb) -> bool {
        self.path == other.path && self.metrics_url == other.metrics_url
    }
}

/// A directory Litestream replicates (`dir:`, v0.5): every SQLite file matching `pattern` in
/// it (and below it with `recursive: true`), each replicated under its path relative to `dir`.
#[derive(Debug, Clone)]
pub struct LitestreamDir {
    pub dir: PathBuf,
    /// Matched against the file name, as Go's `filepath.Match` does.
    pub pattern: String,
    pub recursive: bool,
    /// `meta-dir` (0.5.13): the local state of each database under this root, mirroring its
    /// relative path; `None`: `.<file>-litestream` beside each database.
    pub meta_dir: Option<PathBuf>,
    pub metrics_url: Option<String>,
    pub schedule: Schedule,
    /// As configured: each database's replica is these with its relative path appended.
    pub replicas: Vec<Replica>,
    /// The entry as written (before `$VAR` expansion, which Litestream does itself), to write
    /// each database's own restore config from.
    raw: std::sync::Arc<RawDir>,
    matcher: globset::GlobMatcher,
}

/// A `dir:` entry's replica settings and the file's top-level settings (credentials, ...), as
/// written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RawDir {
    top: serde_yaml::Mapping,
    /// `replica` or `replicas`, and its value.
    replicas: Option<(String, Value)>,
}

impl RawDir {
    /// A litestream.yml with one `path:` entry for the database at `path`, whose replicas are
    /// the directory's with `rel` appended to their path, as Litestream's directory form does.
    fn restore_yml(&self, path: &Path, rel: &str) -> Option<String> {
        let (key, value) = self.replicas.as_ref()?;
        let value = match value {
            Value::Sequence(rs) => Value::Sequence(rs.iter().map(|r| below(r, rel)).collect()),
            r => below(r, rel),
        };
        let mut entry = serde_yaml::Mapping::new();
        entry.insert("path".into(), path.to_string_lossy().into_owned().into());
        entry.insert(key.as_str().into(), value);
        let mut top = self.top.clone();
        top.insert("dbs".into(), Value::Sequence(vec![Value::Mapping(entry)]));
        serde_yaml::to_string(&top).ok()
    }
}

/// A replica's settings with `rel` appended to where it writes: its `url:` (before any query),
/// else its `path:`, else a new `path:`.
fn below(replica: &Value, rel: &str) -> Value {
    let mut r = replica.clone();
    let Some(m) = r.as_mapping_mut() else {
        return r;
    };
    let join = |base: &str| format!("{}/{rel}", base.trim_end_matches('/'));
    if let Some(url) = m.get("url").and_then(Value::as_str) {
        let (loc, query) = url
            .split_once('?')
            .map_or((url, None), |(l, q)| (l, Some(q)));
        let url = match query {
            Some(q) => format!("{}?{q}", join(loc)),
            None => join(loc),
        };
        m.insert("url".into(), url.into());
    } else if let Some(path) = m.get("path").and_then(Value::as_str) {
        let path = join(path);
        m.insert("path".into(), path.into());
    } else {
        m.insert("path".into(), rel.into());
    }
    r
}

impl PartialEq for LitestreamDir {
    fn eq(&self, other: &Self) -> bool {
        (&self.dir, &self.pattern, self.recursive, &self.meta_dir)
            == (&other.dir, &other.pattern, other.recursive, &other.meta_dir)
            && (&self.metrics_url, &self.replicas) == (&other.metrics_url, &other.replicas)
    }
}

impl LitestreamDir {
    /// The files it replicates, as a `glob:` pattern (`<dir>/**/<pattern>` when recursive).
    pub fn glob(&self) -> String {
        let below = if self.recursive { "**/" } else { "" };
        format!("{}/{below}{}", self.dir.display(), self.pattern)
    }

    /// The Litestream entry of the database at `path`, if this directory replicates it: where
    /// Litestream writes its replicas (the relative path appended to each replica's) and keeps
    /// its local state.
    pub fn db(&self, path: &Path) -> Option<LitestreamDb> {
        let rel = path.strip_prefix(&self.dir).ok()?;
        let name = rel.file_name()?.to_string_lossy().into_owned();
        let nested = rel.components().count() > 1;
        if (nested && !self.recursive) || !self.matcher.is_match(&name) {
            return None;
        }
        let rel_text = rel.to_string_lossy().replace('\\', "/");
        let replicas = self
            .replicas
            .iter()
            .map(|r| {
                let kind = match &r.kind {
                    ReplicaKind::File { path } => ReplicaKind::File {
                        path: path.join(rel),
                    },
                    ReplicaKind::S3(s3) => ReplicaKind::S3(S3Spec {
                        prefix: match s3.prefix.is_empty() {
                            true => rel_text.clone(),
                            false => format!("{}/{rel_text}", s3.prefix),
                        },
                        ..s3.clone()
                    }),
                    other => other.clone(),
                };
                Replica { kind, ..r.clone() }
            })
            .collect();
        let meta_path = match &self.meta_dir {
            Some(root) => root
                .join(rel.parent().unwrap_or(Path::new("")))
                .join(format!("{name}-litestream")),
            None => default_meta_path(path),
        };
        Some(LitestreamDb {
            path: path.to_path_buf(),
            metrics_url: self.metrics_url.clone(),
            meta_path,
            replicas,
            schedule: self.schedule.clone(),
            restore_from: Some(RestoreFrom {
                raw: self.raw.clone(),
                rel: rel_text,
            }),
        })
    }
}

/// What litestream.yml lists: single databases (`path:`) and directories (`dir:`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Litestream {
    /// Shared with the targets that watch them (each scan of a fleet copies no entry).
    pub dbs: Vec<std::sync::Arc<LitestreamDb>>,
    pub dirs: Vec<LitestreamDir>,
}

/// The default local state directory of `db`.
pub fn default_meta_path(db: &Path) -> PathBuf {
    let name = db
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    db.parent()
        .unwrap_or(Path::new("."))
        .join(format!(".{name}-litestream"))
}

/// Expands `$VAR` and `${VAR}` as Go's `os.ExpandEnv` does: unknown variables become empty, a
/// `$` not followed by a name stays.
pub fn expand_env(text: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(braced) = after.strip_prefix('{') {
            if let Some(end) = braced.find('}') {
                out.push_str(&lookup(&braced[..end]).unwrap_or_default());
                rest = &braced[end + 1..];
                continue;
            }
        }
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if len == 0 {
            out.push('$');
        } else {
            out.push_str(&lookup(&after[..len]).unwrap_or_default());
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// The metrics URL of Litestream's `addr:` (`:9090`, `0.0.0.0:9090` or `host:9090`), reached
/// on loopback when it listens on every interface.
fn metrics_url(addr: &str) -> String {
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "9090"));
    let host = match host {
        "" | "0.0.0.0" | "[::]" | "::" => "127.0.0.1",
        h => h,
    };
    format!("http://{host}:{port}/metrics")
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn bool_field(v: &Value, key: &str) -> Option<bool> {
    match v.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// What is wrong in litestream.yml: the field (empty for the file as a whole) and what was
/// expected there.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct LitestreamConfigError {
    pub field: String,
    pub message: String,
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> LitestreamConfigError {
    LitestreamConfigError {
        field: field.into(),
        message: message.into(),
    }
}

/// What is wrong with one replica's settings; its field is added by the caller.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplicaSpecError {
    #[error("url {0:?} is not a URL; expected s3://bucket/path or file:///path")]
    NotAUrl(String),
    #[error("has no type, url or path; expected type: file or type: s3")]
    NoType,
    #[error("type file needs path:")]
    NoPath,
    #[error("type s3 needs bucket: (or url: s3://bucket/path)")]
    NoBucket,
}

/// Parses litestream.yml text (already read; the caller names the file in errors).
///
/// Reads single databases (`path:`) and directories (`dir:`, `pattern:`, `recursive:`,
/// `meta-dir:`; v0.5), the `replica:` (v0.5) and `replicas:` (v0.3) forms, `type: file` and
/// `type: s3` with bucket, path, endpoint, region and force-path-style or the URL form
/// `s3://bucket/path`, `meta-path`, and `$VAR` / `${VAR}` expansion of the whole file, as
/// Litestream does.
pub fn parse(
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Litestream, LitestreamConfigError> {
    let expanded = expand_env(text, env);
    let root: Value =
        serde_yaml::from_str(&expanded).map_err(|e| bad("", format!("not valid YAML: {e}")))?;
    let raw: Option<Value> = serde_yaml::from_str(text).ok();
    let metrics_url = str_field(&root, "addr").map(metrics_url);
    let global_key = str_field(&root, "access-key-id").map(String::from);
    let global_secret = str_field(&root, "secret-access-key").map(String::from);
    let schedule = schedule(&root)?;
    let Some(dbs) = root.get("dbs") else {
        return Err(bad("dbs", "missing; expected a list of databases"));
    };
    let dbs = dbs
        .as_sequence()
        .ok_or_else(|| bad("dbs", "expected a list of databases"))?;
    let mut out = Litestream::default();
    for (i, db) in dbs.iter().enumerate() {
        let field = format!("dbs[{i}]");
        if let Some(dir) = str_field(db, "dir") {
            let replicas = parse_replicas(db, &field, &global_key, &global_secret)?;
            let mut parsed = parse_dir(db, &field, dir, &metrics_url, replicas)?;
            parsed.schedule = schedule.clone();
            parsed.raw = std::sync::Arc::new(raw_dir(raw.as_ref(), &root, i));
            out.dirs.push(parsed);
            continue;
        }
        let path = str_field(db, "path").ok_or_else(|| {
            bad(
                format!("{field}.path"),
                "missing; expected the path of the database (or dir: and pattern:)",
            )
        })?;
        let replicas = parse_replicas(db, &field, &global_key, &global_secret)?;
        let path = PathBuf::from(path);
        let meta_path = str_field(db, "meta-path")
            .map(PathBuf::from)
            .unwrap_or_else(|| default_meta_path(&path));
        let schedule = Schedule {
            shadow_wal_kept: shadow_wal_kept(db, &replicas),
            ..schedule.clone()
        };
        out.dbs.push(std::sync::Arc::new(LitestreamDb {
            path,
            metrics_url: metrics_url.clone(),
            meta_path,
            replicas,
            schedule,
            restore_from: None,
        }));
    }
    Ok(out)
}

/// How Litestream 0.5 paces its work on each database, from litestream.yml's top level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The compaction intervals of levels 1, 2, … (`levels:`).
    pub levels: Vec<Duration>,
    /// How often a snapshot is written (`snapshot: interval:`).
    pub snapshot: Duration,
    /// How long a local change file lives while Litestream works: a level-0 file is removed once
    /// level 1 covers it and it is `l0-retention` old (checked every
    /// `l0-retention-check-interval`, and after each level-1 compaction), so at most retention +
    /// L1 interval + check interval; twice that, so that a slow compaction or a late check is not
    /// a fault.
    pub local_kept: Duration,
    /// The same for a shadow WAL file of Litestream 0.3: it removes one at the next sync (every
    /// `monitor-interval`) once every replica holds the index after it (each replica uploads
    /// every `sync-interval`), so at most the slowest sync-interval + monitor-interval; twice
    /// that and 30 s for an upload, so that a slow one is not a fault. Per database.
    pub shadow_wal_kept: Duration,
}

/// Litestream 0.3's default sync-interval and monitor-interval (its replica.go and db.go), and
/// the time allowed for an upload.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);
const MONITOR_INTERVAL: Duration = Duration::from_secs(1);
const UPLOAD: Duration = Duration::from_secs(30);

/// Litestream 0.5's defaults, from its store.go and compaction_level.go.
const L0_RETENTION: Duration = Duration::from_secs(300);
const L0_RETENTION_CHECK: Duration = Duration::from_secs(15);
const LEVELS: [Duration; 3] = [
    Duration::from_secs(30),
    Duration::from_secs(300),
    Duration::from_secs(3600),
];
const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(24 * 3600);

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            levels: LEVELS.to_vec(),
            snapshot: SNAPSHOT_INTERVAL,
            local_kept: 2 * (L0_RETENTION + LEVELS[0] + L0_RETENTION_CHECK),
            shadow_wal_kept: 2 * (SYNC_INTERVAL + MONITOR_INTERVAL) + UPLOAD,
        }
    }
}

/// How long Litestream 0.3 may keep a shadow WAL file of `db` (its fields; see
/// [`Schedule::shadow_wal_kept`]) replicated to `replicas`.
fn shadow_wal_kept(db: &Value, replicas: &[Replica]) -> Duration {
    let duration = |v: Option<&str>| v.and_then(|t| humantime::parse_duration(t).ok());
    let monitor = duration(str_field(db, "monitor-interval")).unwrap_or(MONITOR_INTERVAL);
    let sync = replicas
        .iter()
        .map(|r| r.sync_interval.unwrap_or(SYNC_INTERVAL))
        .max()
        .unwrap_or(SYNC_INTERVAL);
    2 * (sync + monitor) + UPLOAD
}

/// The schedule litestream.yml sets (its defaults where it is silent).
fn schedule(root: &Value) -> Result<Schedule, LitestreamConfigError> {
    let duration = |field: &str, v: Option<&str>, default: Duration| match v {
        None => Ok(default),
        Some(text) => humantime::parse_duration(text).map_err(|_| {
            bad(
                field,
                format!("{text:?} is not a duration; expected one like 5m or 30s"),
            )
        }),
    };
    let retention = duration(
        "l0-retention",
        str_field(root, "l0-retention"),
        L0_RETENTION,
    )?;
    let check = duration(
        "l0-retention-check-interval",
        str_field(root, "l0-retention-check-interval"),
        L0_RETENTION_CHECK,
    )?;
    let levels = match root.get("levels").and_then(Value::as_sequence) {
        Some(levels) => levels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let field = format!("levels[{i}].interval");
                let text = str_field(l, "interval")
                    .ok_or_else(|| bad(&field, "missing; expected a duration like 30s"))?;
                duration(&field, Some(text), Duration::ZERO)
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => LEVELS.to_vec(),
    };
    let snapshot = root.get("snapshot").and_then(|s| str_field(s, "interval"));
    let snapshot = duration("snapshot.interval", snapshot, SNAPSHOT_INTERVAL)?;
    let l1 = levels.first().copied().unwrap_or(LEVELS[0]);
    Ok(Schedule {
        local_kept: 2 * (retention + l1 + check),
        levels,
        snapshot,
        ..Schedule::default()
    })
}

/// What `dbs[i]` of the file as written holds for a `dir:` entry (see [`RawDir`]); the expanded
/// entry when the file does not parse before expansion.
fn raw_dir(raw: Option<&Value>, expanded: &Value, i: usize) -> RawDir {
    let root = raw.unwrap_or(expanded);
    let mut top = root.as_mapping().cloned().unwrap_or_default();
    // Litestream's own server settings play no part in a restore.
    for key in ["dbs", "addr", "mcp-addr", "exec"] {
        top.remove(key);
    }
    let entry = root.get("dbs").and_then(|d| d.get(i));
    let replicas = ["replica", "replicas"].into_iter().find_map(|k| {
        entry
            .and_then(|e| e.get(k))
            .map(|v| (k.to_string(), v.clone()))
    });
    RawDir { top, replicas }
}

/// A `dir:` entry: its pattern (required), `recursive:`, `meta-dir:`.
fn parse_dir(
    db: &Value,
    field: &str,
    dir: &str,
    metrics_url: &Option<String>,
    replicas: Vec<Replica>,
) -> Result<LitestreamDir, LitestreamConfigError> {
    let pattern = str_field(db, "pattern").ok_or_else(|| {
        bad(
            format!("{field}.pattern"),
            "missing; dir: needs a pattern like \"*.db\"",
        )
    })?;
    let matcher = globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| {
            bad(
                format!("{field}.pattern"),
                format!("{pattern:?} is not a valid pattern: {}", e.kind()),
            )
        })?
        .compile_matcher();
    Ok(LitestreamDir {
        dir: PathBuf::from(dir.trim_end_matches('/')),
        pattern: pattern.to_string(),
        recursive: bool_field(db, "recursive").unwrap_or(false),
        meta_dir: str_field(db, "meta-dir").map(PathBuf::from),
        metrics_url: metrics_url.clone(),
        schedule: Schedule::default(),
        replicas,
        raw: Default::default(),
        matcher,
    })
}

/// The `replica:` and `replicas:` of one entry, named uniquely.
fn parse_replicas(
    db: &Value,
    field: &str,
    global_key: &Option<String>,
    global_secret: &Option<String>,
) -> Result<Vec<Replica>, LitestreamConfigError> {
    let mut specs: Vec<(String, &Value)> = Vec::new();
    if let Some(r) = db.get("replica") {
        specs.push((format!("{field}.replica"), r));
    }
    if let Some(rs) = db.get("replicas") {
        let rs = rs
            .as_sequence()
            .ok_or_else(|| bad(format!("{field}.replicas"), "expected a list"))?;
        specs.extend(
            rs.iter()
                .enumerate()
                .map(|(j, r)| (format!("{field}.replicas[{j}]"), r)),
        );
    }
    if specs.is_empty() {
        // Litestream 0.5 refuses such an entry ("must specify replica for database"); read as
        // an entry with nothing to watch, a misspelt `replica:` would switch the lag and the
        // drills off without a word.
        return Err(bad(
            field,
            "has no replica: or replicas:; expected one, like replica: {type: file, path: /backup/app}",
        ));
    }
    let mut replicas: Vec<Replica> = Vec::new();
    for (rfield, r) in specs {
        let mut replica =
            parse_replica(r, global_key, global_secret).map_err(|e| bad(&rfield, e.to_string()))?;
        if replicas.iter().any(|o| o.name == replica.name) {
            replica.name = format!("{}{}", replica.name, replicas.len() + 1);
        }
        replicas.push(replica);
    }
    Ok(replicas)
}

fn parse_replica(
    r: &Value,
    global_key: &Option<String>,
    global_secret: &Option<String>,
) -> Result<Replica, ReplicaSpecError> {
    let url = str_field(r, "url");
    let (scheme, url_rest) = match url.and_then(|u| u.split_once("://")) {
        Some((s, rest)) => (Some(s.to_string()), Some(rest)),
        None if url.is_some() => {
            return Err(ReplicaSpecError::NotAUrl(
                url.unwrap_or_default().to_string(),
            ))
        }
        None => (None, None),
    };
    let kind = str_field(r, "type")
        .map(String::from)
        .or(scheme)
        .or_else(|| str_field(r, "path").map(|_| "file".to_string()))
        .ok_or(ReplicaSpecError::NoType)?;
    let sync_interval =
        str_field(r, "sync-interval").and_then(|s| humantime::parse_duration(s).ok());
    let kind = match kind.as_str() {
        "file" => {
            let path = url_rest
                .map(String::from)
                .or_else(|| str_field(r, "path").map(String::from))
                .ok_or(ReplicaSpecError::NoPath)?;
            ReplicaKind::File {
                path: PathBuf::from(path),
            }
        }
        "s3" => ReplicaKind::S3(s3_spec(r, url_rest, global_key, global_secret)?),
        other => ReplicaKind::Unsupported {
            kind: other.to_string(),
        },
    };
    let name = str_field(r, "name")
        .map(String::from)
        .unwrap_or_else(|| match &kind {
            ReplicaKind::File { .. } => "file".into(),
            ReplicaKind::S3(_) => "s3".into(),
            ReplicaKind::Unsupported { kind } => kind.clone(),
        });
    Ok(Replica {
        name,
        kind,
        sync_interval,
    })
}

/// An S3 replica: `bucket:`/`path:` fields or `url: s3://bucket/prefix?endpoint=...&region=...
/// &forcePathStyle=true`, the fields winning; credentials default to the file's global ones.
fn s3_spec(
    r: &Value,
    url_rest: Option<&str>,
    global_key: &Option<String>,
    global_secret: &Option<String>,
) -> Result<S3Spec, ReplicaSpecError> {
    let (mut bucket, mut prefix, mut query) = (None, None, "");
    if let Some(rest) = url_rest {
        let (loc, q) = rest.split_once('?').unwrap_or((rest, ""));
        query = q;
        let (b, p) = loc.split_once('/').unwrap_or((loc, ""));
        bucket = Some(b.to_string());
        prefix = Some(p.to_string());
    }
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    let field = |name: &str| str_field(r, name).map(String::from);
    let bucket = field("bucket")
        .or(bucket)
        .filter(|b| !b.is_empty())
        .ok_or(ReplicaSpecError::NoBucket)?;
    let prefix = field("path")
        .or(prefix)
        .unwrap_or_default()
        .trim_matches('/')
        .to_string();
    Ok(S3Spec {
        bucket,
        prefix,
        endpoint: field("endpoint").or_else(|| param("endpoint")),
        region: field("region").or_else(|| param("region")),
        force_path_style: bool_field(r, "force-path-style")
            .or_else(|| param("forcePathStyle").and_then(|v| v.parse().ok()))
            .unwrap_or(false),
        access_key_id: field("access-key-id").or_else(|| global_key.clone()),
        secret_access_key: field("secret-access-key").or_else(|| global_secret.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "BUCKET" => Some("backups".into()),
            "KEY" => Some("AKID".into()),
            _ => None,
        }
    }

    #[test]
    fn env_expansion_as_go_does_it() {
        assert_eq!(
            expand_env("a $BUCKET ${KEY} $NOPE ${NOPE}!", env),
            "a backups AKID  !"
        );
        assert_eq!(expand_env("cost: 5$ and $", env), "cost: 5$ and $");
    }

    #[test]
    fn a_replica_is_the_same_only_when_everything_that_reads_it_is() {
        let yml = |replica_path: &str, meta: &str, addr: &str| {
            parse(
                &format!(
                    "addr: \"{addr}\"\ndbs:\n  - path: /data/app.db\n    meta-path: {meta}\n    replicas:\n      - name: first\n        path: {replica_path}\n      - name: second\n        path: /backup/second\n"
                ),
                env,
            )
            .unwrap()
            .dbs
            .remove(0)
        };
        let before = yml("/backup/first", "/meta", ":9090");
        assert!(before.same_replica(&yml("/backup/first", "/meta", ":9091"), "first"));
        assert!(!before.same_replica(&yml("/backup/moved", "/meta", ":9090"), "first"));
        assert!(before.same_replica(&yml("/backup/moved", "/meta", ":9090"), "second"));
        assert!(!before.same_replica(&yml("/backup/first", "/other", ":9090"), "first"));
        assert!(!before.same_replica(&before, "third"));
        assert!(before.same_process(&yml("/backup/moved", "/meta", ":9090")));
        assert!(!before.same_process(&yml("/backup/first", "/meta", ":9091")));
    }

    /// The levels' and snapshots' intervals, and how long a local file is kept (twice
    /// l0-retention + the level-1 interval + the check interval), as written (Go's durations,
    /// `5m0s` included) or Litestream's defaults; a `dir:` entry's databases too; a duration
    /// that is not one is an error naming its field.
    #[test]
    fn how_litestream_paces_its_work() {
        let schedule = |top: &str| {
            let yml = format!("{top}\ndbs:\n  - path: /d/a.db\n    replica: {{path: /b}}\n  - dir: /d\n    pattern: \"*.db\"\n    replica: {{path: /b}}\n");
            parse(&yml, env).map(|l| {
                let dir = l.dirs[0].db(Path::new("/d/x.db")).unwrap().schedule;
                assert_eq!(l.dbs[0].schedule, dir);
                dir
            })
        };
        let secs = Duration::from_secs;
        let d = schedule("").unwrap();
        assert_eq!(d, Schedule::default());
        assert_eq!(
            (d.local_kept, d.levels, d.snapshot),
            (
                secs(690),
                vec![secs(30), secs(300), secs(3600)],
                secs(86400)
            )
        );
        let set = "l0-retention: 1m0s\nl0-retention-check-interval: 5s\nlevels:\n  - interval: 10s\n  - interval: 5m\nsnapshot:\n  interval: 1h";
        let s = schedule(set).unwrap();
        assert_eq!(
            (s.local_kept, s.levels, s.snapshot),
            (secs(150), vec![secs(10), secs(300)], secs(3600))
        );
        let e = schedule("l0-retention: soon").unwrap_err();
        assert_eq!(e.field, "l0-retention");
        assert!(e.message.contains("\"soon\" is not a duration"), "{e:?}");
        let e = schedule("levels:\n  - {}").unwrap_err();
        assert_eq!(e.field, "levels[0].interval");
        // Litestream 0.3's shadow WAL: per database, from its slowest replica and its monitor.
        assert_eq!(d.shadow_wal_kept, secs(34));
        let yml = "dbs:\n  - path: /d/a.db\n    monitor-interval: 5s\n    replicas:\n      - {path: /b, sync-interval: 10s}\n      - {path: /c}\n";
        let l = parse(yml, env).unwrap();
        assert_eq!(l.dbs[0].schedule.shadow_wal_kept, secs(60));
    }

    #[test]
    fn both_forms_file_s3_url_and_meta_path() {
        let dbs = parse(
            r#"
addr: ":9090"
access-key-id: ${KEY}
secret-access-key: secret
dbs:
  - path: /data/app.db
    replica:
      type: s3
      bucket: $BUCKET
      path: /app/db/
      endpoint: http://127.0.0.1:9000
      region: us-east-1
      force-path-style: true
      sync-interval: 1s
  - path: /data/jobs.db
    meta-path: /var/lib/ls/jobs
    replicas:
      - path: /backup/jobs
      - url: s3://other/jobs?endpoint=http://127.0.0.1:9000&forcePathStyle=true
        name: offsite
      - type: gcs
        bucket: x
"#,
            env,
        )
        .unwrap()
        .dbs;
        assert_eq!(dbs[0].meta_path, PathBuf::from("/data/.app.db-litestream"));
        assert_eq!(
            dbs[0].metrics_url.as_deref(),
            Some("http://127.0.0.1:9090/metrics")
        );
        assert_eq!(
            dbs[0].replicas[0].kind,
            ReplicaKind::S3(S3Spec {
                bucket: "backups".into(),
                prefix: "app/db".into(),
                endpoint: Some("http://127.0.0.1:9000".into()),
                region: Some("us-east-1".into()),
                force_path_style: true,
                access_key_id: Some("AKID".into()),
                secret_access_key: Some("secret".into()),
            })
        );
        assert_eq!(
            dbs[0].replicas[0].sync_interval,
            Some(Duration::from_secs(1))
        );
        let jobs = &dbs[1];
        assert_eq!(jobs.meta_path, PathBuf::from("/var/lib/ls/jobs"));
        assert_eq!(
            jobs.replicas[0].kind,
            ReplicaKind::File {
                path: "/backup/jobs".into()
            }
        );
        assert_eq!(jobs.replicas[1].name, "offsite");
        let ReplicaKind::S3(s3) = &jobs.replicas[1].kind else {
            panic!()
        };
        assert_eq!((s3.bucket.as_str(), s3.prefix.as_str()), ("other", "jobs"));
        assert!(s3.force_path_style);
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(
            jobs.replicas[2].kind,
            ReplicaKind::Unsupported { kind: "gcs".into() }
        );
    }

    #[test]
    fn a_directory_replicates_each_match_under_its_relative_path() {
        let listed = parse(
            r#"
dbs:
  - dir: /data/tenants/
    pattern: "*.db"
    recursive: true
    replicas:
      - {name: local, type: file, path: /backup/tenants}
      - {name: offsite, url: s3://bucket/tenants}
      - {name: bare, url: s3://bucket}
  - dir: /data/flat
    pattern: "t-*.db"
    meta-dir: /var/lib/ls-meta
    replica: {type: file, path: /backup/flat}
"#,
            env,
        )
        .unwrap();
        assert!(listed.dbs.is_empty());
        let (deep, flat) = (&listed.dirs[0], &listed.dirs[1]);
        assert_eq!(deep.glob(), "/data/tenants/**/*.db");
        assert_eq!(flat.glob(), "/data/flat/t-*.db");
        let db = deep.db(Path::new("/data/tenants/eu/acme.db")).unwrap();
        assert_eq!(
            db.meta_path,
            PathBuf::from("/data/tenants/eu/.acme.db-litestream")
        );
        assert_eq!(
            db.replicas[0].kind,
            ReplicaKind::File {
                path: "/backup/tenants/eu/acme.db".into()
            }
        );
        let prefix = |r: &Replica| match &r.kind {
            ReplicaKind::S3(s) => s.prefix.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(prefix(&db.replicas[1]), "tenants/eu/acme.db");
        assert_eq!(prefix(&db.replicas[2]), "eu/acme.db");
        assert!(deep.db(Path::new("/data/tenants/acme.sqlite")).is_none());
        assert!(deep.db(Path::new("/data/other/acme.db")).is_none());
        // Not recursive: only files directly in the folder; meta-dir mirrors the relative path.
        assert!(flat.db(Path::new("/data/flat/sub/t-1.db")).is_none());
        assert!(flat.db(Path::new("/data/flat/u-1.db")).is_none());
        let db = flat.db(Path::new("/data/flat/t-1.db")).unwrap();
        assert_eq!(
            db.meta_path,
            PathBuf::from("/var/lib/ls-meta/t-1.db-litestream")
        );
        let LitestreamConfigError {
            field,
            message: msg,
        } = parse("dbs: [{dir: /d, replica: {type: file, path: /b}}]", env).unwrap_err();
        assert_eq!(field, "dbs[0].pattern");
        assert!(msg.contains("pattern"), "{msg}");
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            parse("dbs: [{replica: {type: s3}}]", env)
                .unwrap_err()
                .field,
            "dbs[0].path"
        );
        let LitestreamConfigError {
            field,
            message: msg,
        } = parse("dbs: [{path: /a.db, replica: {type: s3}}]", env).unwrap_err();
        // A misspelt replica: is no entry without replicas (Litestream refuses it too).
        let misspelt = parse("dbs: [{path: /a.db, replcia: {type: file, path: /b}}]", env);
        assert_eq!(misspelt.unwrap_err().field, "dbs[0]");
        assert_eq!(field, "dbs[0].replica");
        assert!(msg.contains("bucket"), "{msg}");
        assert!(parse("dbs: [", env).unwrap_err().message.contains("YAML"));
        assert_eq!(parse("addr: :9090", env).unwrap_err().field, "dbs");
    }

    /// `litestream restore -config` finds only `path:` entries: a database of a `dir:` entry
    /// is restored with a config of its own, its replica below the directory's, `$VAR`s left
    /// for Litestream to expand (no secret is written out) and nothing of the server kept.
    #[test]
    fn a_directory_database_gets_a_restore_config_of_its_own() {
        let ls = parse(
            r#"
addr: ":9090"
access-key-id: ${KEY}
secret-access-key: $SECRET
dbs:
  - dir: /data/tenants
    pattern: "*.db"
    recursive: true
    replica:
      type: s3
      bucket: $BUCKET
      path: backups/
      endpoint: http://127.0.0.1:9000
      force-path-style: true
  - dir: /data/url
    pattern: "*.db"
    replica:
      url: s3://b/pre?endpoint=http://127.0.0.1:9000&forcePathStyle=true
  - dir: /data/files
    pattern: "*.db"
    replicas:
      - path: /backup/files
"#,
            env,
        )
        .unwrap();
        let yml = |i: usize, db: &str| -> Value {
            let text = ls.dirs[i].db(Path::new(db)).unwrap().restore_yml().unwrap();
            serde_yaml::from_str(&text).unwrap()
        };
        let y = yml(0, "/data/tenants/eu/a.db");
        assert_eq!(y["access-key-id"], "${KEY}");
        assert_eq!(y["secret-access-key"], "$SECRET");
        assert!(y.get("addr").is_none());
        let db = &y["dbs"][0];
        assert_eq!(db["path"], "/data/tenants/eu/a.db");
        assert_eq!(db["replica"]["path"], "backups/eu/a.db");
        assert_eq!(db["replica"]["bucket"], "$BUCKET");
        assert_eq!(db["replica"]["force-path-style"], true);
        assert_eq!(
            yml(1, "/data/url/b.db")["dbs"][0]["replica"]["url"],
            "s3://b/pre/b.db?endpoint=http://127.0.0.1:9000&forcePathStyle=true"
        );
        assert_eq!(
            yml(2, "/data/files/c.db")["dbs"][0]["replicas"][0]["path"],
            "/backup/files/c.db"
        );
        assert_eq!(ls.dirs[2].db(Path::new("/data/files/x/c.db")), None);
    }
}
