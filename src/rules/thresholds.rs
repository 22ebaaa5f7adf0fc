//! Threshold settings: each rule's levels as written (globally and per database), read in the
//! rule's unit and merged over the built-in defaults. `config` reads the YAML and names the file.

use super::catalogue::{by_key, RuleDef, Scope, Severity, Unit, RULES};
use std::collections::BTreeMap;
use std::time::Duration;

/// One level as written, before it is read in its rule's unit.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    /// `off` (or `false`): the level is turned off.
    Off,
    Number(f64),
    Text(String),
    /// Anything else (a list, `true`), as written, for the error that names it.
    Other(String),
}

/// One rule's levels as written; anything left out keeps the level beneath.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Levels {
    pub info: Option<Written>,
    pub warning: Option<Written>,
    pub critical: Option<Written>,
    pub for_: Option<Duration>,
}

/// One layer of settings (the global `thresholds:`, or a database's own): rule key to levels.
pub type Layer = BTreeMap<String, Levels>;

/// A threshold setting that cannot be used: the field it is at, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ThresholdError {
    pub field: String,
    pub problem: Problem,
}

/// Why a threshold setting cannot be used, saying what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error("unknown threshold; expected one of {}", RULES.iter().map(|r| r.key).collect::<Vec<_>>().join(", "))]
    Unknown,
    #[error(
        "judged once per filesystem, for every database on it: set it under the global thresholds:"
    )]
    PerFilesystem,
    #[error("{shown} is not valid; expected {expected}, or off")]
    NotValid {
        shown: String,
        expected: &'static str,
    },
    #[error("{} must be {side} {}", .worse.as_str(), .milder.as_str())]
    OutOfOrder {
        worse: Severity,
        side: &'static str,
        milder: Severity,
    },
}

/// One rule's effective settings for one database.
#[derive(Debug, Clone)]
pub struct RuleSetting {
    pub rule: &'static RuleDef,
    pub info: Option<f64>,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    pub for_: Duration,
}

impl PartialEq for RuleSetting {
    fn eq(&self, other: &Self) -> bool {
        self.rule.key == other.rule.key
            && (self.info, self.warning, self.critical, self.for_)
                == (other.info, other.warning, other.critical, other.for_)
    }
}

impl RuleSetting {
    /// The levels that are set, most severe first.
    pub fn levels(&self) -> impl Iterator<Item = (Severity, f64)> {
        [
            self.critical.map(|t| (Severity::Critical, t)),
            self.warning.map(|t| (Severity::Warning, t)),
            self.info.map(|t| (Severity::Info, t)),
        ]
        .into_iter()
        .flatten()
    }

    /// The first level a worsening value reaches.
    pub fn mildest(&self) -> Option<f64> {
        self.levels().last().map(|(_, t)| t)
    }

    fn level_mut(&mut self, severity: Severity) -> &mut Option<f64> {
        match severity {
            Severity::Info => &mut self.info,
            Severity::Warning => &mut self.warning,
            Severity::Critical => &mut self.critical,
        }
    }

    pub fn threshold(&self, severity: Severity) -> Option<f64> {
        match severity {
            Severity::Info => self.info,
            Severity::Warning => self.warning,
            Severity::Critical => self.critical,
        }
    }
}

/// Every rule's settings for one database, in catalogue order. Shared: the ten thousand
/// matches of one `glob:` entry hold one copy.
#[derive(Debug, Clone, PartialEq)]
pub struct DbThresholds {
    pub rules: std::sync::Arc<[RuleSetting]>,
}

impl Default for DbThresholds {
    fn default() -> Self {
        DbThresholds {
            rules: RULES
                .iter()
                .map(|rule| RuleSetting {
                    rule,
                    info: rule.info,
                    warning: rule.warning,
                    critical: rule.critical,
                    for_: Duration::from_secs(rule.for_secs),
                })
                .collect(),
        }
    }
}

impl DbThresholds {
    /// The defaults, overridden by `layers` in order (global `thresholds:`, then the
    /// database's own). `fields` names each layer in errors, like `thresholds`.
    pub fn resolve(layers: &[(&str, &Layer)]) -> Result<DbThresholds, ThresholdError> {
        let error = |field: String, problem: Problem| ThresholdError { field, problem };
        let mut out = DbThresholds::default().rules.to_vec();
        for (n, (field, layer)) in layers.iter().enumerate() {
            for (key, levels) in layer.iter() {
                let rule =
                    by_key(key).ok_or_else(|| error(format!("{field}.{key}"), Problem::Unknown))?;
                if n > 0 && rule.scope == Scope::Filesystem {
                    return Err(error(format!("{field}.{key}"), Problem::PerFilesystem));
                }
                let i = out
                    .iter()
                    .position(|s| s.rule.key == rule.key)
                    .expect("every rule has a setting");
                let setting = &mut out[i];
                // The levels this layer sets; one from below (a default, or a broader layer)
                // left out of order beside them is dropped.
                let mut written = [false; 3];
                let given = [&levels.info, &levels.warning, &levels.critical];
                for (severity, value) in Severity::ALL.into_iter().zip(given) {
                    if let Some(v) = value {
                        *setting.level_mut(severity) = parse_level(rule.unit, v).map_err(|m| {
                            error(format!("{field}.{key}.{}", severity.as_str()), m)
                        })?;
                        written[severity as usize] = true;
                    }
                }
                if let Some(d) = levels.for_ {
                    setting.for_ = d;
                }
                drop_defaults_out_of_order(setting, written);
                check_order(setting).map_err(|m| error(format!("{field}.{key}"), m))?;
            }
        }
        Ok(DbThresholds { rules: out.into() })
    }

    pub fn get(&self, key: &str) -> Option<&RuleSetting> {
        self.rules.iter().find(|s| s.rule.key == key)
    }
}

/// A level this layer did not set (a default, or a broader layer's), that would fire before a
/// milder level this layer set (or after a more severe one), is turned off:
/// `database_size: {warning: 40MB}` means a 40 MB warning, not an error for the 50 GB info
/// level beneath it.
fn drop_defaults_out_of_order(setting: &mut RuleSetting, written: [bool; 3]) {
    let op = setting.rule.op;
    for default in Severity::ALL {
        let Some(d) = setting.threshold(default) else {
            continue;
        };
        let clashes = Severity::ALL.into_iter().any(|set| {
            let Some(v) = setting.threshold(set) else {
                return false;
            };
            written[set as usize]
                && v != d
                && (if set > default {
                    op.breached(d, v)
                } else {
                    op.breached(v, d)
                })
        });
        if !written[default as usize] && clashes {
            *setting.level_mut(default) = None;
        }
    }
}

/// Each level set must lie beyond the milder ones (equal is allowed: both fire).
fn check_order(setting: &RuleSetting) -> Result<(), Problem> {
    let set: Vec<(Severity, f64)> = setting.levels().collect();
    for pair in set.windows(2) {
        let ((worse, w), (milder, m)) = (pair[0], pair[1]);
        if w != m && !setting.rule.op.breached(w, m) {
            let side = match setting.rule.op {
                super::catalogue::Op::Above => "above",
                super::catalogue::Op::Below => "below",
            };
            return Err(Problem::OutOfOrder {
                worse,
                side,
                milder,
            });
        }
    }
    Ok(())
}

/// Reads one level: a value in `unit`, or `off` to disable the level.
fn parse_level(unit: Unit, v: &Written) -> Result<Option<f64>, Problem> {
    let (number, text) = match v {
        Written::Off => return Ok(None),
        Written::Number(n) => (Some(*n).filter(|n| n.is_finite() && *n >= 0.0), None),
        Written::Text(t) => (None, Some(t.trim())),
        Written::Other(_) => (None, None),
    };
    let shown = || match v {
        Written::Text(s) => format!("{s:?}"),
        Written::Number(n) => n.to_string(),
        Written::Other(s) => s.clone(),
        Written::Off => "off".into(),
    };
    let parsed = match unit {
        Unit::Bytes => number.or_else(|| {
            text.and_then(|t| t.parse::<bytesize::ByteSize>().ok())
                .map(|b| b.as_u64() as f64)
        }),
        Unit::Seconds => number.or_else(|| {
            text.and_then(|t| humantime::parse_duration(t).ok())
                .map(|d| d.as_secs_f64())
        }),
        Unit::Ratio => number
            .or_else(|| text.and_then(|t| t.strip_suffix('%')?.trim().parse::<f64>().ok()))
            .filter(|p| (0.0..=100.0).contains(p))
            .map(|p| p / 100.0),
        Unit::PerSecond | Unit::Count => number,
    };
    parsed.map(Some).ok_or_else(|| {
        let expected = match unit {
            Unit::Bytes => "a size like 50GB, 512MiB or a number of bytes",
            Unit::Seconds => "a duration like 10s or 5m",
            Unit::Ratio => "a percentage like 10%",
            Unit::PerSecond => "a rate per second like 500",
            Unit::Count => "a whole number like 3",
        };
        Problem::NotValid {
            shown: shown(),
            expected,
        }
    })
}

/// A layer written one rule a line as in config, `key: {level: value, for: 10s}`, as config
/// reads it (for tests; config reads YAML).
#[cfg(test)]
pub(crate) fn layer(text: &str) -> Layer {
    let mut out = Layer::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (key, rest) = line.split_once(": {").expect("key: {...}");
        let levels = out.entry(key.trim().to_string()).or_default();
        for pair in rest.trim_end().trim_end_matches('}').split(", ") {
            let (name, value) = pair.split_once(": ").expect("name: value");
            let value = value.trim_matches('\'');
            let written = match value.parse::<f64>() {
                _ if value == "off" => Written::Off,
                Ok(n) => Written::Number(n),
                Err(_) => Written::Text(value.to_string()),
            };
            match name {
                "info" => levels.info = Some(written),
                "warning" => levels.warning = Some(written),
                "critical" => levels.critical = Some(written),
                "for" => levels.for_ = Some(humantime::parse_duration(value).unwrap()),
                other => panic!("unknown level {other}"),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_then_global_then_database() {
        let global = layer(
            "database_size: {warning: 1GB}\nfilesystem_free: {warning: 20%, critical: 'off'}\nwrite_tx_per_sec: {for: 30s}\n",
        );
        let db = layer("database_size: {critical: 2GiB}\n");
        let ThresholdError { field, problem } = DbThresholds::resolve(&[
            ("thresholds", &global),
            (
                "databases[0].thresholds",
                &layer("filesystem_free: {warning: 5%}\n"),
            ),
        ])
        .unwrap_err();
        assert_eq!(field, "databases[0].thresholds.filesystem_free");
        assert_eq!(problem, Problem::PerFilesystem);
        assert!(problem.to_string().contains("per filesystem"), "{problem}");
        let t = DbThresholds::resolve(&[("thresholds", &global), ("databases[0].thresholds", &db)])
            .unwrap();
        let size = t.get("database_size").unwrap();
        assert_eq!(size.warning, Some(1e9));
        assert_eq!(size.critical, Some(2.0 * 1024.0 * 1024.0 * 1024.0));
        let fs = t.get("filesystem_free").unwrap();
        assert_eq!((fs.warning, fs.critical), (Some(0.2), None));
        let rate = t.get("write_tx_per_sec").unwrap();
        assert_eq!(
            (rate.warning, rate.for_),
            (Some(500.0), Duration::from_secs(30))
        );
        assert_eq!(t.get("wal_size"), DbThresholds::default().get("wal_size"));
    }

    #[test]
    fn a_level_set_below_an_untouched_default_turns_the_default_off_not_the_config_down() {
        let global = layer("database_size: {warning: 40MB}\nbackend_engineers: {info: 5}\n");
        let t = DbThresholds::resolve(&[("thresholds", &global)]).unwrap();
        let size = t.get("database_size").unwrap();
        // The 50 GB info level would fire only after the 40 MB warning: it is dropped.
        assert_eq!((size.info, size.warning), (None, Some(40e6)));
        assert_eq!(t.get("backend_engineers").unwrap().info, Some(5.0));
        // Levels config sets itself must be in order.
        let bad = layer("database_size: {info: 60GB, warning: 40GB}\n");
        let ThresholdError { field, problem } =
            DbThresholds::resolve(&[("thresholds", &bad)]).unwrap_err();
        assert_eq!(field, "thresholds.database_size");
        assert_eq!(problem.to_string(), "warning must be above info");
    }

    #[test]
    fn errors_name_the_field_and_the_expectation() {
        let bad = layer("database_size: {warning: lots}\n");
        let ThresholdError {
            field,
            problem: msg,
        } = DbThresholds::resolve(&[("thresholds", &bad)]).unwrap_err();
        assert_eq!(field, "thresholds.database_size.warning");
        let msg = msg.to_string();
        assert!(msg.contains("\"lots\"") && msg.contains("50GB"), "{msg}");
        let unknown = layer("db_size: {warning: 1GB}\n");
        let ThresholdError {
            field,
            problem: msg,
        } = DbThresholds::resolve(&[("thresholds", &unknown)]).unwrap_err();
        assert_eq!(field, "thresholds.db_size");
        assert!(msg.to_string().contains("database_size"), "{msg}");
        let inverted = layer("filesystem_free: {warning: 5%, critical: 10%}\n");
        let field = DbThresholds::resolve(&[("thresholds", &inverted)])
            .unwrap_err()
            .field;
        assert_eq!(field, "thresholds.filesystem_free");
        assert!(
            DbThresholds::resolve(&[("t", &layer("checkpoint_lag_age: {warning: 2m}\n"))])
                .is_ok_and(|t| t.get("checkpoint_lag_age").unwrap().warning == Some(120.0))
        );
    }
}
