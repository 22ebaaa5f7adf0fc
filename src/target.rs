//! The databases to watch, resolved: what `config` and discovery build and the poller, the
//! drills and `check` consume.

use crate::drill::restore::Job;
use crate::drill::DrillSettings;
use crate::litestream::config::LitestreamDb;
use crate::monitor::Declared;
use crate::rules::DbThresholds;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A database to watch: its name (the `db` label), path, declared facts and thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    pub path: PathBuf,
    pub declared: Declared,
    pub thresholds: DbThresholds,
    /// Where Litestream replicates it, from litestream.yml (shared: the poller, the watchers
    /// and discovery each hold it, and a fleet has one a tenant).
    pub litestream: Option<Arc<LitestreamDb>>,
    /// The application's `PRAGMA wal_autocheckpoint` (pages): a checkpoint is due past it.
    pub wal_autocheckpoint: u32,
    /// The groups of its series exported (config `metrics:`).
    pub metrics: crate::monitor::groups::Groups,
    /// Its restore drills, when configured (config `restore_drill:`).
    pub restore_drill: Option<crate::drill::DrillSettings>,
}

impl Target {
    /// A database with no declared facts and the default thresholds.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Target {
            name: name.into(),
            path: path.into(),
            declared: Declared::default(),
            thresholds: DbThresholds::default(),
            litestream: None,
            wal_autocheckpoint: crate::monitor::DEFAULT_AUTOCHECKPOINT,
            metrics: Default::default(),
            restore_drill: None,
        }
    }

    /// The drill of this database with `settings`, restored with `litestream_yml` (or the
    /// config of its own a `dir:` entry gives it); `None` when it has no replica.
    pub fn drill_job(&self, litestream_yml: &Path, settings: DrillSettings) -> Option<Job> {
        Some(Job {
            db: self.name.clone(),
            path: self.path.clone(),
            litestream_yml: litestream_yml.to_path_buf(),
            restore_yml: self.litestream.as_ref()?.restore_yml(),
            replica: self.replicas().into_iter().next()?,
            settings,
        })
    }

    /// The Litestream replicas as (label, type) pairs.
    pub fn replicas(&self) -> Vec<(String, String)> {
        self.litestream
            .iter()
            .flat_map(|l| &l.replicas)
            .map(|r| (r.name.clone(), r.kind.label()))
            .collect()
    }
}

/// The replicated databases among `targets`: (name, where Litestream replicates it).
pub fn replicated(targets: &[Target]) -> impl Iterator<Item = (&str, &Arc<LitestreamDb>)> {
    targets
        .iter()
        .filter_map(|t| t.litestream.as_ref().map(|l| (t.name.as_str(), l)))
}

/// The drills `targets` call for: replicated databases with `restore_drill:` set, when
/// Litestream's config is known.
pub fn drill_jobs(targets: &[Target], litestream_yml: Option<&Path>) -> Vec<Job> {
    let Some(yml) = litestream_yml else {
        return Vec::new();
    };
    targets
        .iter()
        .filter_map(|t| t.drill_job(yml, t.restore_drill.clone()?))
        .collect()
}
