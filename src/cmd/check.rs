//! `sqlite-ops check`: runs the audit and prints it; the exit code is the monitoring-plugin
//! status (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).

use crate::check::{self, report, CheckOptions};
use std::io::IsTerminal;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// Runs the check and prints it; returns the exit code. Configuration errors are UNKNOWN (3).
pub fn run(opts: &CheckOptions, format: Format) -> u8 {
    match check::run(opts) {
        Ok(r) => {
            let text = match format {
                Format::Json => report::json(&r),
                Format::Human => report::human(&r, std::io::stdout().is_terminal()),
            };
            print!("{text}");
            r.exit_code
        }
        Err(e) => {
            eprintln!("sqlite-ops check: UNKNOWN: {e:#}");
            3
        }
    }
}
