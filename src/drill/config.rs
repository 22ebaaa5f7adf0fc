//! `restore_drill:` as configured (global, and per database field by field), resolved into
//! [`DrillSettings`]; off unless an `interval` is set. `config` reads it from the file.

use super::record::{DrillSettings, DEFAULT_LITESTREAM, DEFAULT_SCRATCH, DEFAULT_TIMEOUT};
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

/// A `restore_drill:` setting that cannot be used: the field, and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct DrillConfigError {
    pub field: String,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error("is too short; expected at least 1s, like {example}")]
    TooShort { example: &'static str },
    #[error("{} is not an absolute path; expected one like {DEFAULT_SCRATCH}", .0.display())]
    NotAbsolute(PathBuf),
}

/// The settings of one database: `own` field by field over `global`; `None` when neither sets
/// an interval. `field` names `own` in errors.
pub fn resolve(
    global: Option<&DrillConfig>,
    own: Option<(&DrillConfig, &str)>,
) -> Result<Option<DrillSettings>, DrillConfigError> {
    let error = |field: String, problem: Problem| DrillConfigError { field, problem };
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
            field("interval"),
            Problem::TooShort { example: "24h" },
        ));
    }
    let timeout = pick(|c| c.timeout).unwrap_or(DEFAULT_TIMEOUT);
    if timeout < Duration::from_secs(1) {
        return Err(error(field("timeout"), Problem::TooShort { example: "1h" }));
    }
    let scratch_dir = own
        .and_then(|(o, _)| o.scratch_dir.clone())
        .or_else(|| global.and_then(|g| g.scratch_dir.clone()))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SCRATCH));
    if !scratch_dir.is_absolute() {
        return Err(error(
            "restore_drill.scratch_dir".into(),
            Problem::NotAbsolute(scratch_dir),
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
