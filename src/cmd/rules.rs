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
    /// The fleet's recording rules alone (the other formats include them).
    Recording,
}

/// The command line of `rules`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// YAML config file whose thresholds to use.
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// A rules file for Prometheus, a PrometheusRule for the Prometheus Operator, or the
    /// fleet's recording rules alone.
    #[arg(long, value_enum, default_value_t = Format::Prometheus)]
    pub format: Format,
    /// metadata.name of the PrometheusRule.
    #[arg(long, default_value = "sqlite-ops")]
    pub name: String,
}

/// Prints the rules `args` ask for.
pub fn run(args: &Args) -> anyhow::Result<()> {
    super::print_out(&render(args.config.as_deref(), args.format, &args.name)?)?;
    Ok(())
}

/// The rules for `config` (the defaults when `None`).
pub fn render(config: Option<&Path>, format: Format, name: &str) -> anyhow::Result<String> {
    let (cfg, source) = match config {
        Some(p) => (Config::load(p)?, p.display().to_string()),
        None => (Config::default(), "defaults".to_string()),
    };
    let global = cfg.global_thresholds(&source)?;
    // Every database's levels are checked as the daemon would check them (the rules themselves
    // do not depend on them: every level has its rule).
    cfg.targets(&[], &source)?;
    cfg.glob_entries(&source)?;
    Ok(match format {
        Format::Prometheus => prom_rules::render(&global, &cfg.runbook_base_url),
        Format::Kubernetes => {
            prom_rules::render_prometheus_rule(&global, &cfg.runbook_base_url, name)
        }
        Format::Recording => prom_rules::render_recording(),
    })
}
