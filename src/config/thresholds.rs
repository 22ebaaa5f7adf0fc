//! `thresholds:` as written in YAML (globally and per database), turned into the plain layers
//! `rules` reads in each rule's unit.

use crate::rules::{Layer, Levels, Written};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// One rule's settings as written in config; anything left out keeps the default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelsConfig {
    /// A value in the rule's unit, or `off`.
    #[serde(default)]
    pub info: Option<serde_yaml::Value>,
    #[serde(default)]
    pub warning: Option<serde_yaml::Value>,
    #[serde(default)]
    pub critical: Option<serde_yaml::Value>,
    #[serde(default, rename = "for", with = "humantime_serde")]
    pub for_: Option<Duration>,
}

/// `thresholds:` as written: rule key to settings.
pub type ThresholdsConfig = BTreeMap<String, LevelsConfig>;

/// The layer `rules` resolves from `thresholds`.
pub fn layer(thresholds: &ThresholdsConfig) -> Layer {
    thresholds
        .iter()
        .map(|(key, l)| {
            let levels = Levels {
                info: l.info.as_ref().map(written),
                warning: l.warning.as_ref().map(written),
                critical: l.critical.as_ref().map(written),
                for_: l.for_,
            };
            (key.clone(), levels)
        })
        .collect()
}

/// One level as YAML gives it: `off` and `false` turn it off.
fn written(v: &serde_yaml::Value) -> Written {
    use serde_yaml::Value;
    match v {
        Value::Bool(false) => Written::Off,
        Value::String(s) if s == "off" => Written::Off,
        Value::String(s) => Written::Text(s.clone()),
        Value::Number(n) => n
            .as_f64()
            .map_or_else(|| Written::Other(n.to_string()), Written::Number),
        other => Written::Other(
            serde_yaml::to_string(other)
                .unwrap_or_default()
                .trim()
                .to_string(),
        ),
    }
}
