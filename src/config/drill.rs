//! `restore_drill:`: how often each replicated database is restored from its replica and
//! checked (global, and per database field by field). Off unless an `interval` is set.

use super::{error, ConfigError};
use crate::drill::record::{DrillSettings, DEFAULT_LITESTREAM, DEFAULT_SCRATCH, DEFAULT_TIMEOUT};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillConfig {
    /// How often: off when no interval is set.
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// Where restored copies live while they are checked (default /var/tmp/sqlite-ops).
    pub scratch_dir: Option<PathBuf>,
    /// The Litestream binary (default `litestream`, from PATH).
    pub litestream: Option<PathBuf>,
    /// Longest one drill may take (default 1h).
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// How soon after start (or after the database is found) the first drill runs, at most
    /// one interval (default 1m).
    #[serde(default, with = "humantime_serde")]
    pub first_after: Option<Duration>,
}

const DEFAULT_FIRST_AFTER: Duration = Duration::from_secs(60);

/// The settings of one database: `own` field by field over `global`; `None` when neither sets
/// an interval. `field` names `own` in errors.
pub fn resolve(
    global: Option<&DrillConfig>,
    own: Option<(&DrillConfig, &str)>,
    source: &str,
) -> Result<Option<DrillSettings>, ConfigError> {
    let pick = |f: fn(&DrillConfig) -> Option<_>| {
        own.and_then(|(o, _)| f(o)).or_else(|| global.and_then(f))
    };
    let field = |name: &str| match own {
        Some((o, at)) if o.interval.is_some() || o.timeout.is_some() => {
            format!("{at}.restore_drill.{name}")
        }
        _ => format!("restore_drill.{name}"),
    };
    let Some(interval) = pick(|c| c.interval) else {
        return Ok(None);
    };
    if interval < Duration::from_secs(1) {
        return Err(error(
            source,
            field("interval"),
            "is too short; expected at least 1s, like 24h",
        ));
    }
    let timeout = pick(|c| c.timeout).unwrap_or(DEFAULT_TIMEOUT);
    if timeout < Duration::from_secs(1) {
        return Err(error(
            source,
            field("timeout"),
            "is too short; expected at least 1s, like 1h",
        ));
    }
    let scratch_dir = own
        .and_then(|(o, _)| o.scratch_dir.clone())
        .or_else(|| global.and_then(|g| g.scratch_dir.clone()))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SCRATCH));
    if !scratch_dir.is_absolute() {
        return Err(error(
            source,
            "restore_drill.scratch_dir",
            format!(
                "{} is not an absolute path; expected one like {DEFAULT_SCRATCH}",
                scratch_dir.display()
            ),
        ));
    }
    let litestream = own
        .and_then(|(o, _)| o.litestream.clone())
        .or_else(|| global.and_then(|g| g.litestream.clone()))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_LITESTREAM));
    let first_after = pick(|c| c.first_after)
        .unwrap_or(DEFAULT_FIRST_AFTER)
        .min(interval);
    Ok(Some(DrillSettings {
        interval,
        first_after,
        scratch_dir,
        litestream,
        timeout,
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn off_unless_an_interval_is_set_and_per_database_over_global() {
        let c = Config::parse("databases: [{path: /a.db}]\n", "c.yml").unwrap();
        assert_eq!(c.targets(&[], "c.yml").unwrap()[0].restore_drill, None);
        let c = Config::parse(
            "restore_drill: {interval: 24h, scratch_dir: /scratch}\n\
             databases: [{path: /a.db}, {path: /b.db, restore_drill: {interval: 1h, timeout: 5m}}]\n",
            "c.yml",
        )
        .unwrap();
        let t = c.targets(&[], "c.yml").unwrap();
        let (a, b) = (
            t[0].restore_drill.clone().unwrap(),
            t[1].restore_drill.clone().unwrap(),
        );
        assert_eq!((a.interval.as_secs(), a.timeout.as_secs()), (86_400, 3600));
        assert_eq!(a.litestream.to_str(), Some("litestream"));
        assert_eq!((b.interval.as_secs(), b.timeout.as_secs()), (3600, 300));
        assert_eq!(
            b.scratch_dir.to_str(),
            Some("/scratch"),
            "the rest from the global"
        );
    }

    #[test]
    fn bad_settings_name_the_field() {
        let err = |y: &str| Config::parse(y, "c.yml").unwrap_err().to_string();
        assert_eq!(
            err("restore_drill: {interval: 10ms}\ndatabases: [{path: /a.db}]\n"),
            "c.yml: restore_drill.interval: is too short; expected at least 1s, like 24h"
        );
        assert!(err(
            "restore_drill: {interval: 1h, scratch_dir: tmp}\ndatabases: [{path: /a.db}]\n"
        )
        .contains("restore_drill.scratch_dir: tmp is not an absolute path"));
        assert!(err("restore_drill: {every: 1h}\n").contains("unknown field `every`"));
    }
}
