//! What the file says, checked and resolved: the targets to watch, discovery, thresholds and
//! Litestream's config attached; errors name the file and the field.

use super::{
    error, thresholds, Config, ConfigError, DatabaseConfig, InvalidValue, MIN_POLL_INTERVAL,
};
use crate::discovery::pattern::Pattern;
use crate::discovery::{Discovery, GlobEntry};
use crate::litestream::{self, config::Litestream};
use crate::monitor::groups::Groups;
use crate::monitor::Declared;
use crate::rules::DbThresholds;
use crate::target::Target;
use std::collections::HashSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

impl Config {
    pub(super) fn validate(&self, source: &str) -> Result<(), ConfigError> {
        if self.poll_interval < MIN_POLL_INTERVAL {
            return Err(error(
                source,
                "poll_interval",
                format!(
                    "{} is too short; expected a duration of at least 10ms, like 1s",
                    humantime::format_duration(self.poll_interval)
                ),
            ));
        }
        if self.lock_sample_interval < Duration::from_millis(1) {
            return Err(error(
                source,
                "lock_sample_interval",
                "is too short; expected a duration of at least 1ms, like 10ms",
            ));
        }
        parse_listen_address(&self.web.listen_address)
            .map_err(|m| error(source, "web.listen_address", m))?;
        validate_telemetry_path(&self.web.telemetry_path)
            .map_err(|m| error(source, "web.telemetry_path", m))?;
        if let Some(am) = &self.alertmanager {
            am.validate()
                .map_err(|e| error(source, e.field, e.problem))?;
        }
        if self.discover_interval < Duration::from_secs(1) {
            return Err(error(
                source,
                "discover_interval",
                "is too short; expected a duration of at least 1s, like 10s",
            ));
        }
        if let Some(n) = &self.notify {
            n.validate()
                .map_err(|e| error(source, e.field, e.problem))?;
        }
        self.replicator_matches(source)?;
        self.discovery(&[], source).map(|_| ())
    }

    /// The `replicators:` entries with their patterns compiled.
    pub fn replicator_matches(
        &self,
        source: &str,
    ) -> Result<Vec<crate::probe::process::ReplicatorMatch>, ConfigError> {
        self.replicators
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if r.name.trim().is_empty() {
                    return Err(error(
                        source,
                        format!("replicators[{i}].name"),
                        "is empty; expected a name like nightly-backup",
                    ));
                }
                let command = regex::Regex::new(&r.command).map_err(|e| {
                    error(
                        source,
                        format!("replicators[{i}].command"),
                        format!(
                            "{:?} is not a regular expression ({e}); expected one matching the command line, like 'restic backup'",
                            r.command
                        ),
                    )
                })?;
                Ok(crate::probe::process::ReplicatorMatch {
                    name: r.name.clone(),
                    command,
                })
            })
            .collect()
    }

    /// Litestream's config: `override_path` (from the command line), else `litestream.config`.
    pub fn litestream_path(&self, override_path: Option<&Path>) -> Option<PathBuf> {
        override_path
            .map(Path::to_path_buf)
            .or_else(|| self.litestream.as_ref().and_then(|l| l.config.clone()))
    }

    /// Reads litestream.yml at `path` for `discovery`: the databases it finds get their
    /// replicas, and those it adds get the global thresholds and declared facts, as `--db`
    /// databases do.
    pub fn attach_litestream_file(
        &self,
        source: &str,
        path: &Path,
        discovery: &mut Discovery,
    ) -> Result<(), ConfigError> {
        self.attach_litestream(source, load_litestream(path)?, discovery)
    }

    /// Gives `discovery` Litestream's databases as `listed` (litestream.yml, already read).
    pub fn attach_litestream(
        &self,
        source: &str,
        listed: Litestream,
        discovery: &mut Discovery,
    ) -> Result<(), ConfigError> {
        discovery.set_litestream(listed, self.global_template(source)?);
        Ok(())
    }

    /// Watches what this host's processes hold open (`run` given nothing), with the global
    /// settings, as `--db` databases get them.
    pub fn watch_host(&self, source: &str, discovery: &mut Discovery) -> Result<(), ConfigError> {
        discovery.watch_host(self.global_template(source)?);
        Ok(())
    }

    /// Also watches, with the global settings, every SQLite database under each of `folders`
    /// (`--discover DIR`), looked for again every `discover_interval`.
    pub fn discover_under(
        &self,
        folders: &[std::path::PathBuf],
        source: &str,
        discovery: &mut Discovery,
    ) -> Result<(), ConfigError> {
        let template = self.global_template(source)?;
        for folder in folders {
            discovery
                .discover_under(folder, template.clone())
                .map_err(|e| error("command line", "--discover", e))?;
        }
        Ok(())
    }

    /// The settings of a database the file does not list itself (found on the host, or only in
    /// litestream.yml): the global ones.
    fn global_template(&self, source: &str) -> Result<Target, ConfigError> {
        Ok(Target {
            declared: self.team,
            thresholds: self.global_thresholds(source)?,
            wal_autocheckpoint: self.wal_autocheckpoint,
            metrics: self.metrics_of(None, "", source)?,
            restore_drill: crate::drill::config::resolve(self.restore_drill.as_ref(), None)
                .map_err(|e| error(source, e.field, e.problem))?,
            ..Target::new("", "")
        })
    }

    /// The global thresholds, as `--db` databases get them.
    pub fn global_thresholds(&self, source: &str) -> Result<DbThresholds, ConfigError> {
        DbThresholds::resolve(&[("thresholds", &thresholds::layer(&self.thresholds))])
            .map_err(|e| error(source, e.field, e.problem))
    }

    /// What to watch: the `path:` databases of the file and `extra` paths from the command
    /// line (see [`Config::targets`]), and the `glob:` entries, walked by the returned
    /// [`Discovery`] on each scan.
    pub fn discovery(&self, extra: &[PathBuf], source: &str) -> Result<Discovery, ConfigError> {
        let fixed = self.targets(extra, source)?;
        let globs = self.glob_entries(source)?;
        Ok(Discovery::new(fixed, globs, self.discover_grace))
    }

    /// The `glob:` entries of the file, with the settings each match gets.
    pub fn glob_entries(&self, source: &str) -> Result<Vec<GlobEntry>, ConfigError> {
        self.databases
            .iter()
            .enumerate()
            .map(|(i, d)| self.glob_entry(i, d, source))
            .filter_map(Result::transpose)
            .collect()
    }

    /// The `glob:` entry `databases[i]`, if it is one; checks it gives exactly one of `path:`
    /// and `glob:`, and no `name:` with a glob.
    fn glob_entry(
        &self,
        i: usize,
        d: &DatabaseConfig,
        source: &str,
    ) -> Result<Option<GlobEntry>, ConfigError> {
        let field = format!("databases[{i}]");
        let glob = match (&d.path, &d.glob) {
            (Some(_), None) => return Ok(None),
            (Some(_), Some(_)) | (None, None) => {
                return Err(error(source, field, "expected exactly one of path: (one database) and glob: (every database matching a pattern)"))
            }
            (None, Some(g)) => g,
        };
        if d.name.is_some() {
            return Err(error(source, format!("{field}.name"), "cannot be used with glob:; each match is named after its path below the pattern's folder"));
        }
        let pattern =
            Pattern::parse(glob).map_err(|m| error(source, format!("{field}.glob"), m))?;
        let global = self.global_thresholds(source)?;
        let (thresholds, declared) = self.settings_of(d, (&field, source), &global)?;
        Ok(Some(GlobEntry {
            template: Target {
                declared,
                thresholds,
                metrics: self.metrics_of(Some(d), &field, source)?,
                wal_autocheckpoint: d.wal_autocheckpoint.unwrap_or(self.wal_autocheckpoint),
                restore_drill: self.drill_of(Some(d), &field, source)?,
                ..Target::new("", "")
            },
            field,
            pattern,
            folder: None,
        }))
    }

    /// The fixed databases to watch: the `path:` entries of the file, then `extra` paths from
    /// the command line. Names default to the file stem and must be unique.
    pub fn targets(&self, extra: &[PathBuf], source: &str) -> Result<Vec<Target>, ConfigError> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let global = self.global_thresholds(source)?;
        let from_file = self.databases.iter().enumerate().filter_map(|(i, d)| {
            Some((
                format!("databases[{i}]"),
                source,
                d.path.clone()?,
                d.name.clone(),
                Some(d),
            ))
        });
        // A path given relative to where the command runs names the same file as the absolute
        // one litestream.yml or a glob gives: made absolute, so that they meet.
        let from_cli = extra.iter().map(|p| {
            let p = std::path::absolute(p).unwrap_or_else(|_| p.clone());
            ("--db".to_string(), "command line", p, None, None)
        });
        let mut paths = HashSet::new();
        for (field, src, path, name, db) in from_file.chain(from_cli) {
            // A database the file lists, named again on the command line, is the file's entry
            // (with its name and settings), not a second database under the same name.
            let same_file = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if !paths.insert(same_file) && db.is_none() {
                continue;
            }
            let name = target_name(&field, src, &path, name)?;
            if !seen.insert(name.clone()) {
                return Err(error(src, format!("{field}.name"), format!(
                    "the name {name:?} is already used by another database; names label the metrics and must be unique (set name:)"
                )));
            }
            let wal_autocheckpoint = db
                .and_then(|d| d.wal_autocheckpoint)
                .unwrap_or(self.wal_autocheckpoint);
            let (thresholds, declared) = match db {
                None => (global.clone(), self.team),
                Some(d) => self.settings_of(d, (&field, source), &global)?,
            };
            out.push(Target {
                metrics: self.metrics_of(db, &field, source)?,
                restore_drill: self.drill_of(db, &field, source)?,
                name,
                path,
                declared,
                thresholds,
                litestream: None,
                wal_autocheckpoint,
            });
        }
        Ok(out)
    }
}

impl Config {
    /// The restore drills of one database: its entry's `restore_drill:` over the file's.
    fn drill_of(
        &self,
        d: Option<&DatabaseConfig>,
        field: &str,
        source: &str,
    ) -> Result<Option<crate::drill::DrillSettings>, ConfigError> {
        let own = d.and_then(|d| d.restore_drill.as_ref()).map(|o| (o, field));
        crate::drill::config::resolve(self.restore_drill.as_ref(), own)
            .map_err(|e| error(source, e.field, e.problem))
    }

    /// The groups of series exported for one database: its entry's `metrics:`, else the
    /// file's, else all.
    fn metrics_of(
        &self,
        d: Option<&DatabaseConfig>,
        field: &str,
        source: &str,
    ) -> Result<Groups, ConfigError> {
        let (field, list) = match d.and_then(|d| d.metrics.as_ref()) {
            Some(list) => (format!("{field}.metrics"), list),
            None => match &self.metrics {
                Some(list) => ("metrics".to_string(), list),
                None => return Ok(Groups::ALL),
            },
        };
        Groups::parse(list).map_err(|(i, m)| error(source, format!("{field}[{i}]"), m))
    }

    /// The thresholds and declared facts of one database of the file: its own, then the file's
    /// (`global`, shared by every database without thresholds of its own: a fleet listed one
    /// by one holds one copy, not one a tenant).
    fn settings_of(
        &self,
        d: &DatabaseConfig,
        (field, source): (&str, &str),
        global: &DbThresholds,
    ) -> Result<(DbThresholds, Declared), ConfigError> {
        let thresholds = match d.thresholds.is_empty() {
            true => Ok(global.clone()),
            false => DbThresholds::resolve(&[
                ("thresholds", &thresholds::layer(&self.thresholds)),
                (
                    &format!("{field}.thresholds"),
                    &thresholds::layer(&d.thresholds),
                ),
            ]),
        }
        .map_err(|e| error(source, e.field, e.problem))?;
        let team = d.team.unwrap_or_default();
        let declared = Declared {
            backend_engineers: team.backend_engineers.or(self.team.backend_engineers),
            regions: team.regions.or(self.team.regions),
        };
        Ok((thresholds, declared))
    }
}

/// The `db` label of a database: its configured name, or the file stem of its path.
fn target_name(
    field: &str,
    src: &str,
    path: &Path,
    name: Option<String>,
) -> Result<String, ConfigError> {
    if path.as_os_str().is_empty() {
        return Err(error(
            src,
            format!("{field}.path"),
            "is empty; expected the path of an SQLite database file",
        ));
    }
    match name {
        Some(n) if n.trim().is_empty() => Err(error(
            src,
            format!("{field}.name"),
            "is empty; expected a name for the db label",
        )),
        Some(n) => Ok(n),
        None => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                error(
                    src,
                    format!("{field}.path"),
                    format!(
                        "{} has no file name; expected the path of a database file",
                        path.display()
                    ),
                )
            }),
    }
}

/// Parses `host:port`, or `:port` meaning every interface, as Prometheus exporters do.
pub fn parse_listen_address(s: &str) -> Result<SocketAddr, InvalidValue> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| InvalidValue::Address(s.into()))
}

/// Reads litestream.yml at `path`. Errors name the file and the field.
pub fn load_litestream(path: &Path) -> Result<Litestream, ConfigError> {
    load_litestream_text(path).map(|(listed, _)| listed)
}

/// Reads litestream.yml at `path`, with the text it was read from.
pub fn load_litestream_text(path: &Path) -> Result<(Litestream, String), ConfigError> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| error(&source, "", format!("cannot read Litestream's config: {e}")))?;
    let listed = litestream::config::parse(&text, |name| std::env::var(name).ok())
        .map_err(|e| error(&source, e.field, e.message))?;
    Ok((listed, text))
}

/// The metrics path must be absolute and must not shadow the other endpoints.
pub fn validate_telemetry_path(p: &str) -> Result<(), InvalidValue> {
    if !p.starts_with('/') || p == "/" || p == "/healthz" || p.starts_with("/api/") {
        return Err(InvalidValue::TelemetryPath(p.into()));
    }
    Ok(())
}
