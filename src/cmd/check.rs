//! `sqlite-ops check`: runs the audit and prints it; the exit code is the monitoring-plugin
//! status (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).

use crate::check::{self, report, CheckOptions};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// The command line of `check`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// YAML config file: its databases, thresholds and declared team facts.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Databases to check (besides those of --config).
    #[arg(value_name = "DB")]
    pub databases: Vec<PathBuf>,
    /// How long to watch each database for write rate and lock figures, like 5s or 0s.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub sample: Duration,
    /// Also run PRAGMA quick_check (read-only, but reads the whole file).
    #[arg(long)]
    pub integrity: bool,
    /// Longest any one SQL statement of the check may run (its read transaction pins the
    /// WAL meanwhile).
    #[arg(long = "statement-timeout", default_value = "10s", value_parser = humantime::parse_duration)]
    pub statement_timeout: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Litestream's config file: judge the replication of the databases it lists.
    #[arg(long = "litestream-config", value_name = "FILE")]
    pub litestream_config: Option<PathBuf>,
    /// A running sqlite-ops (like http://127.0.0.1:9934): print its forecasts, drawn from its
    /// history, instead of those of the sample.
    #[arg(long, value_name = "URL")]
    pub daemon: Option<String>,
    /// Restore each replicated database from its Litestream replica now (into
    /// restore_drill.scratch_dir), check the copy and report it as the restore_drill finding.
    #[arg(long = "restore-drill")]
    pub restore_drill: bool,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// Runs the check and prints it; returns the exit code. Configuration errors are UNKNOWN (3).
pub fn run(args: Args) -> u8 {
    let format = args.format;
    let opts = CheckOptions {
        config: args.config,
        databases: args.databases,
        sample: args.sample,
        integrity: args.integrity,
        statement_timeout: args.statement_timeout,
        litestream_config: args.litestream_config,
        daemon: args.daemon,
        restore_drill: args.restore_drill,
    };
    match check::run(&opts) {
        Ok(r) => {
            let text = match format {
                Format::Json => report::json(&r),
                Format::Human => report::human(&r, std::io::stdout().is_terminal()),
            };
            let _ = super::print_out(&text);
            r.exit_code
        }
        Err(e) => {
            eprintln!("sqlite-ops check: UNKNOWN: {e:#}");
            3
        }
    }
}
