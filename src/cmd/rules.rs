//! `sqlite-ops rules`: prints the Prometheus alerting rules for the configured thresholds.

use crate::config::Config;
use crate::export::prom_rules;
use std::path::Path;

/// The rules for `config` (the defaults when `None`).
pub fn render(config: Option<&Path>) -> anyhow::Result<String> {
    let (cfg, source) = match config {
        Some(p) => (Config::load(p)?, p.display().to_string()),
        None => (Config::default(), "defaults".to_string()),
    };
    let global = cfg.global_thresholds(&source)?;
    let databases: Vec<_> = cfg
        .targets(&[], &source)?
        .into_iter()
        .map(|t| (t.name, t.thresholds))
        .collect();
    Ok(prom_rules::render(
        &global,
        &databases,
        &cfg.runbook_base_url,
    ))
}
