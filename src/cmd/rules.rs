//! `sqlite-ops rules`: prints the Prometheus alerting rules for the configured thresholds.

use crate::config::Config;
use crate::export::prom_rules;
use std::path::Path;

/// Output format of `rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A Prometheus rules file (`rule_files:`).
    Prometheus,
    /// A Prometheus Operator PrometheusRule resource.
    Kubernetes,
}

/// The rules for `config` (the defaults when `None`).
pub fn render(config: Option<&Path>, format: Format, name: &str) -> anyhow::Result<String> {
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
    Ok(match format {
        Format::Prometheus => prom_rules::render(&global, &databases, &cfg.runbook_base_url),
        Format::Kubernetes => {
            prom_rules::render_prometheus_rule(&global, &databases, &cfg.runbook_base_url, name)
        }
    })
}
