//! Which databases to watch now: the fixed ones (the config's `path:` entries and `--db`), the
//! SQLite files matching `glob:` entries, walked again every `discover_interval` and on SIGHUP,
//! the databases Litestream replicates, and (given nothing) those the host's processes hold open.

pub mod host;
pub mod pattern;
mod walk;

use crate::litestream::config::Litestream;
use crate::target::Target;
use pattern::Pattern;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A `glob:` entry of the config: its pattern, and the settings every match gets (a
/// [`Target`] with no name or path yet).
#[derive(Debug, Clone)]
pub struct GlobEntry {
    /// Where it is written, like `databases[2]`, for messages.
    pub field: String,
    pub pattern: Pattern,
    pub template: Target,
    /// The folder of `--discover DIR`: its matches are named by their whole path, as what the
    /// host shows is (two folders may hold an `app.db` each), and each new one is logged with
    /// the folder; `None` for a config's `glob:`, whose fleet may be thousands.
    pub folder: Option<PathBuf>,
}

/// A glob match, and since when it no longer matches.
#[derive(Debug, Clone)]
struct Found {
    target: Target,
    missing_since: Option<Instant>,
}

/// The sources of databases and what the globs found so far.
///
/// A match that stops matching stays, down, for a grace period (a file replaced by rename, a
/// folder moved and back), then is forgotten and its series go. The grace (`discover_grace`,
/// 30 s) is shorter than SQLiteDatabaseDown's `for` (1 m), so a tenant deleted on purpose never
/// pages.
#[derive(Debug, Clone)]
pub struct Discovery {
    fixed: Vec<Target>,
    /// The config's `glob:` entries, then Litestream's `dir:` entries.
    globs: Vec<GlobEntry>,
    litestream: Litestream,
    /// The settings of a database only Litestream lists.
    litestream_template: Target,
    grace: Duration,
    /// Glob matches by name (the `db` label), in label order.
    found: BTreeMap<String, Found>,
    not_sqlite: walk::NotSqlite,
    /// Each glob's last walk, in the order of `globs`.
    walks: Vec<walk::LastWalk>,
    /// With nothing given: the settings of the databases this host's processes hold open,
    /// looked for at every scan (see [`Discovery::watch_host`]).
    host: Option<HostSource>,
}

/// The databases found open on the host, and whether the processes it could not look into
/// were said.
#[derive(Debug, Clone)]
struct HostSource {
    template: Target,
    hidden_said: bool,
    /// The databases whose Litestream replicas were logged.
    replicated_said: HashSet<String>,
}

impl HostSource {
    /// Logs, once each, what Litestream's config added: the databases only it lists (from
    /// `targets[listed_from..]`) and the replicas of those found otherwise.
    fn tell_litestream(&mut self, targets: &[Target], listed_from: usize) {
        for (i, t) in targets.iter().enumerate() {
            let Some(ls) = &t.litestream else { continue };
            if !self.replicated_said.insert(t.name.clone()) {
                continue;
            }
            let replicas: Vec<&str> = ls.replicas.iter().map(|r| r.name.as_str()).collect();
            let replicas = replicas.join(", ");
            match i >= listed_from {
                true => {
                    tracing::info!(db = %t.name, path = %t.path.display(), replicas = %replicas, found = "in Litestream's config", "found a database")
                }
                false => {
                    tracing::info!(db = %t.name, replicas = %replicas, "its Litestream replicas are read too (Litestream's config lists it)")
                }
            }
        }
    }
}

impl Discovery {
    /// `fixed` databases and `globs`; a glob match gone for `grace` is forgotten.
    pub fn new(fixed: Vec<Target>, globs: Vec<GlobEntry>, grace: Duration) -> Self {
        Discovery {
            fixed,
            globs,
            litestream: Litestream::default(),
            litestream_template: Target::new("", ""),
            grace,
            found: BTreeMap::new(),
            not_sqlite: Default::default(),
            walks: Vec::new(),
            host: None,
        }
    }

    /// Also watches, with `template`'s settings, every SQLite database a process on this host
    /// holds open, looked for again at every scan: a find stays while its file exists (its
    /// application may restart), and one whose file is gone is forgotten after the grace, as a
    /// glob match is (a deleted temporary database never pages).
    pub fn watch_host(&mut self, template: Target) {
        self.host = Some(HostSource {
            template,
            hidden_said: false,
            replicated_said: HashSet::new(),
        });
    }

    /// Also watches, with `template`'s settings, every SQLite database under `folder` at any
    /// depth (`--discover DIR`), walked again at every scan as a `glob:` is.
    pub fn discover_under(
        &mut self,
        folder: &Path,
        template: Target,
    ) -> Result<(), pattern::PatternError> {
        self.globs.push(GlobEntry {
            field: "--discover".into(),
            pattern: folder_pattern(folder)?,
            template,
            folder: Some(folder.to_path_buf()),
        });
        Ok(())
    }

    /// Only these databases, found once and for all (the demo, tests).
    pub fn fixed(targets: Vec<Target>) -> Self {
        Self::new(targets, Vec::new(), Duration::ZERO)
    }

    /// Gives each database Litestream replicates its replicas, and watches those not otherwise
    /// listed with `template`'s settings: a `path:` entry named after its file stem (numbered
    /// when taken), the databases of a `dir:` entry as a glob would name them. A `dir:` whose
    /// pattern cannot be walked is logged and left out.
    pub fn set_litestream(&mut self, listed: Litestream, template: Target) {
        for (i, d) in listed.dirs.iter().enumerate() {
            match Pattern::parse(&d.glob()) {
                Ok(pattern) => self.globs.push(GlobEntry {
                    field: format!("litestream dir {i}"),
                    pattern,
                    template: template.clone(),
                    folder: None,
                }),
                Err(e) => {
                    tracing::warn!(dir = %d.dir.display(), error = %e, "cannot follow Litestream's directory")
                }
            }
        }
        self.litestream = listed;
        self.litestream_template = template;
    }

    /// Whether anything can change between scans (there are globs to walk again).
    pub fn rescans(&self) -> bool {
        !self.globs.is_empty() || self.host.is_some()
    }

    /// Whether there is nothing at all to watch, now or later.
    pub fn is_empty(&self) -> bool {
        self.fixed.is_empty()
            && self.globs.is_empty()
            && self.litestream.dbs.is_empty()
            && self.host.is_none()
    }

    /// Walks the globs and returns every database to watch now: the fixed ones first, then
    /// the matches by label, then those only Litestream lists. Counted in [`WALKS`], `now`
    /// taken as when the walk began.
    pub fn scan(&mut self, now: Instant) -> Vec<Target> {
        // Known to be SQLite, so not read again: what an earlier walk found, and the databases
        // the config names (a glob over them would otherwise open each on every walk).
        let known: HashSet<&Path> = (self.found.values().map(|f| f.target.path.as_path()))
            .chain(self.fixed.iter().map(|t| t.path.as_path()))
            .collect();
        let mut matched = Vec::new();
        self.walks.resize_with(self.globs.len(), Default::default);
        for (g, last) in self.globs.iter().zip(&mut self.walks) {
            let (is_known, not_sqlite) = (|p: &Path| known.contains(p), &mut self.not_sqlite);
            for path in walk::expand_again(&g.pattern, is_known, not_sqlite, last) {
                let name = match &g.folder {
                    Some(folder) => {
                        let name = host::label(&path);
                        if !(self.found.contains_key(&name) || known.contains(path.as_path())) {
                            tracing::info!(db = %name, path = %path.display(), found = %format!("under {} (--discover)", folder.display()), "found a database");
                        }
                        Some(name)
                    }
                    None => g.pattern.label(&path),
                };
                if let Some(name) = name {
                    matched.push(Target {
                        name,
                        path,
                        ..g.template.clone()
                    });
                }
            }
        }
        if let Some(h) = &mut self.host {
            // A database a --discover folder just gave is logged as found there, once.
            let mut known = known.clone();
            known.extend(matched.iter().map(|t| t.path.as_path()));
            let open = host_matches(h, &self.found, &known);
            matched.extend(open);
        }
        let targets = merge(&self.fixed, matched, &mut self.found, now, self.grace);
        let by_path = self.host.is_some();
        let before = targets.len();
        let targets = attach_litestream(
            targets,
            (&self.litestream, by_path),
            &self.litestream_template,
        );
        if let Some(h) = &mut self.host {
            h.tell_litestream(&targets, before);
        }
        WALKS.record(now.elapsed(), targets.len());
        targets
    }
}

/// What the daemon's walks found, for its own series; process-wide, as one discovery at a time
/// walks (a reload hands it on).
#[derive(Debug, Default)]
pub struct Walks {
    count: std::sync::atomic::AtomicU64,
    last_micros: std::sync::atomic::AtomicU64,
    found: std::sync::atomic::AtomicU64,
}

/// The walks of this process.
pub static WALKS: Walks = Walks {
    count: std::sync::atomic::AtomicU64::new(0),
    last_micros: std::sync::atomic::AtomicU64::new(0),
    found: std::sync::atomic::AtomicU64::new(0),
};

impl Walks {
    /// One walk, which took `took` and returned `found` databases to watch.
    pub fn record(&self, took: Duration, found: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.last_micros.store(took.as_micros() as u64, Relaxed);
        self.found.store(found as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// (walks so far, the last one's seconds, what it returned); `None` before the first.
    pub fn read(&self) -> Option<(u64, f64, u64)> {
        use std::sync::atomic::Ordering::Relaxed;
        let count = self.count.load(Relaxed);
        (count > 0).then(|| {
            let secs = self.last_micros.load(Relaxed) as f64 / 1e6;
            (count, secs, self.found.load(Relaxed))
        })
    }
}

/// Every file under `folder`, at any depth: what `--discover DIR` walks.
fn folder_pattern(folder: &Path) -> Result<Pattern, pattern::PatternError> {
    Pattern::parse(&format!("{}/**/*", folder.display()))
}

/// The SQLite databases under `folder` now (`init --discover DIR`), sorted; each file read
/// as a `glob:` match is (16 bytes, read-only).
pub fn databases_under(folder: &Path) -> Result<Vec<PathBuf>, pattern::PatternError> {
    let pattern = folder_pattern(folder)?;
    Ok(walk::expand(&pattern, |_| false, &mut Default::default()))
}

/// What the host shows now, as matches: the databases its processes hold open, and those found
/// before whose files are still there; each new one logged with how it was found.
fn host_matches(
    h: &mut HostSource,
    found: &BTreeMap<String, Found>,
    known: &HashSet<&Path>,
) -> Vec<Target> {
    let open = host::open_databases(Path::new("/proc"), std::process::id());
    if let Some(summary) = open.hidden_summary() {
        if !std::mem::replace(&mut h.hidden_said, true) {
            tracing::warn!("{summary}");
        }
    }
    let before = found
        .iter()
        .filter(|(name, f)| **name == host::label(&f.target.path));
    let still = before
        .map(|(_, f)| f.target.path.clone())
        .filter(|p| !open.found.contains_key(p) && p.is_file());
    let paths: std::collections::BTreeSet<std::path::PathBuf> =
        open.found.keys().cloned().chain(still).collect();
    let mut out = Vec::new();
    for path in paths {
        let name = host::label(&path);
        if let (false, Some(holder)) = (
            found.contains_key(&name) || known.contains(path.as_path()),
            open.found.get(&path),
        ) {
            tracing::info!(db = %name, path = %path.display(), found = %format!("open by {holder}"), "found a database");
        }
        out.push(Target {
            name,
            path,
            ..h.template.clone()
        });
    }
    out
}

/// Updates `found` with this scan's glob matches (the first glob to give a label or a path
/// wins; the fixed databases win over every glob) and returns the fixed databases followed by
/// the matches, current and within their grace.
fn merge(
    fixed: &[Target],
    matched: Vec<Target>,
    found: &mut BTreeMap<String, Found>,
    now: Instant,
    grace: Duration,
) -> Vec<Target> {
    let fixed_names: HashSet<&str> = fixed.iter().map(|t| t.name.as_str()).collect();
    let fixed_paths: HashSet<&Path> = fixed.iter().map(|t| t.path.as_path()).collect();
    let mut names = HashSet::new();
    let mut paths = HashSet::new();
    for t in matched {
        if fixed_names.contains(t.name.as_str())
            || fixed_paths.contains(t.path.as_path())
            || names.contains(&t.name)
            || paths.contains(&t.path)
        {
            continue;
        }
        names.insert(t.name.clone());
        paths.insert(t.path.clone());
        found.insert(
            t.name.clone(),
            Found {
                target: t,
                missing_since: None,
            },
        );
    }
    found.retain(|name, f| {
        if names.contains(name) {
            return true;
        }
        let since = *f.missing_since.get_or_insert(now);
        now.duration_since(since) < grace
    });
    fixed
        .iter()
        .cloned()
        .chain(found.values().map(|f| f.target.clone()))
        .collect()
}

/// Gives each target the Litestream entry of its file (a `path:` entry, else the first `dir:`
/// that replicates it), and adds the `path:` databases that are not watched yet (those of a
/// `dir:` come through its glob), named by their file stem, or `by_path` as the host's finds
/// are. Paths are compared as written, then (only for files of the same name, so that
/// thousands of tenants cost no system call) as resolved on disk.
fn attach_litestream(
    mut targets: Vec<Target>,
    (listed, by_path): (&Litestream, bool),
    template: &Target,
) -> Vec<Target> {
    let dbs = &listed.dbs;
    let canonical = |p: &Path| p.canonicalize().ok();
    let mut attached = vec![false; dbs.len()];
    let by_name: HashMap<&std::ffi::OsStr, Vec<usize>> =
        dbs.iter()
            .enumerate()
            .fold(HashMap::new(), |mut m, (i, d)| {
                if let Some(n) = d.path.file_name() {
                    m.entry(n).or_insert_with(Vec::new).push(i);
                }
                m
            });
    for t in &mut targets {
        let candidates = t.path.file_name().and_then(|n| by_name.get(n));
        let same = candidates.into_iter().flatten().copied().find(|&i| {
            dbs[i].path == t.path
                || matches!((canonical(&dbs[i].path), canonical(&t.path)), (Some(a), Some(b)) if a == b)
        });
        if let Some(i) = same {
            t.litestream = Some(dbs[i].clone());
            attached[i] = true;
        } else {
            t.litestream = listed
                .dirs
                .iter()
                .find_map(|d| d.db(&t.path))
                .map(std::sync::Arc::new);
        }
    }
    let mut names: HashSet<String> = targets.iter().map(|t| t.name.clone()).collect();
    for (db, _) in dbs.iter().zip(attached).filter(|(_, a)| !a) {
        // Named as what the host shows is, when looking at the host: the same name as once a
        // process opens it; else by its file stem, numbered when taken.
        let name = match by_path {
            true => host::label(&db.path),
            false => {
                let stem = db
                    .path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "db".into());
                let mut name = stem.clone();
                let mut n = 2;
                while names.contains(&name) {
                    name = format!("{stem}{n}");
                    n += 1;
                }
                name
            }
        };
        names.insert(name.clone());
        targets.push(Target {
            name,
            path: db.path.clone(),
            litestream: Some(db.clone()),
            ..template.clone()
        });
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::litestream::config::LitestreamDb;
    use std::path::PathBuf;

    fn t(name: &str, path: &str) -> Target {
        Target::new(name, path)
    }

    fn names(targets: &[Target]) -> Vec<&str> {
        targets.iter().map(|t| t.name.as_str()).collect()
    }

    #[test]
    fn fixed_databases_win_and_the_first_glob_to_give_a_label_or_path_wins() {
        let mut found = BTreeMap::new();
        let now = Instant::now();
        let fixed = [t("app", "/data/app.db")];
        let out = merge(
            &fixed,
            vec![
                t("app", "/data/tenants/app.db"),
                t("acme", "/data/app.db"),
                t("beta", "/data/tenants/beta.db"),
                t("beta", "/data/other/beta.db"),
                t("gamma", "/data/tenants/beta.db"),
                t("alpha", "/data/tenants/alpha.db"),
            ],
            &mut found,
            now,
            Duration::from_secs(30),
        );
        assert_eq!(names(&out), ["app", "alpha", "beta"]);
        assert_eq!(out[2].path, PathBuf::from("/data/tenants/beta.db"));
    }

    #[test]
    fn a_match_that_goes_stays_for_the_grace_then_is_forgotten() {
        let mut found = BTreeMap::new();
        let grace = Duration::from_secs(30);
        let t0 = Instant::now();
        let both = || vec![t("a", "/t/a.db"), t("b", "/t/b.db")];
        assert_eq!(
            names(&merge(&[], both(), &mut found, t0, grace)),
            ["a", "b"]
        );
        let only_a = || vec![t("a", "/t/a.db")];
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(
            names(&merge(&[], only_a(), &mut found, t1, grace)),
            ["a", "b"]
        );
        // Back before the grace ran out: the clock starts again when it goes next.
        let t2 = t0 + Duration::from_secs(35);
        assert_eq!(
            names(&merge(&[], both(), &mut found, t2, grace)),
            ["a", "b"]
        );
        let t3 = t2 + Duration::from_secs(29);
        assert_eq!(
            names(&merge(&[], only_a(), &mut found, t3, grace)),
            ["a", "b"]
        );
        let t4 = t3 + Duration::from_secs(29);
        assert_eq!(
            names(&merge(&[], only_a(), &mut found, t4, grace)),
            ["a", "b"]
        );
        let t5 = t3 + Duration::from_secs(30);
        assert_eq!(names(&merge(&[], only_a(), &mut found, t5, grace)), ["a"]);
    }

    #[test]
    fn litestream_entries_attach_by_path_and_the_others_are_added() {
        let ls = |path: &str| {
            std::sync::Arc::new(LitestreamDb {
                path: path.into(),
                metrics_url: None,
                meta_path: "/meta".into(),
                replicas: Vec::new(),
                schedule: Default::default(),
                restore_from: None,
            })
        };
        let targets = vec![t("app", "/data/app.db"), t("jobs", "/data/jobs.db")];
        let listed = Litestream {
            dbs: vec![
                ls("/data/jobs.db"),
                ls("/elsewhere/app.db"),
                ls("/x/jobs.db"),
            ],
            dirs: Vec::new(),
        };
        let out = attach_litestream(targets, (&listed, false), &t("", ""));
        assert_eq!(names(&out), ["app", "jobs", "app2", "jobs2"]);
        assert!(out[0].litestream.is_none());
        assert_eq!(
            out[1].litestream.as_ref().unwrap().path,
            PathBuf::from("/data/jobs.db")
        );
        assert_eq!(out[2].path, PathBuf::from("/elsewhere/app.db"));
    }
}
