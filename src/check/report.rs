//! The two forms of a check report: a table for people (colour only on a terminal) and JSON
//! for programs (schema `sqlite-ops/check/v1`, documented in docs/check.md).

use super::{Report, Status};
use std::fmt::Write;

pub fn json(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(report).expect("the report serializes");
    s.push('\n');
    s
}

fn paint(status: Status, colour: bool) -> String {
    let word = status.as_str().to_uppercase();
    if !colour {
        return word;
    }
    let code = match status {
        Status::Ok => "32",
        Status::Info => "36",
        Status::Warning => "33",
        Status::Unknown => "35",
        Status::Critical => "1;31",
    };
    format!("\x1b[{code}m{word}\x1b[0m")
}

/// The table: one block per database, the findings that need attention with their fix.
pub fn human(report: &Report, colour: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "sqlite-ops check: {} ({} database{}, sampled {:.1}s)",
        paint(report.status, colour),
        report.databases.len(),
        if report.databases.len() == 1 { "" } else { "s" },
        report.sample_seconds
    );
    for db in &report.databases {
        let _ = writeln!(
            out,
            "\n{} {} ({})",
            paint(db.status, colour),
            db.db,
            db.path.display()
        );
        let width = db.findings.iter().map(|f| f.id.len()).max().unwrap_or(0);
        for f in &db.findings {
            // Pad the plain word, so colour codes do not break the columns.
            let pad = " ".repeat(8usize.saturating_sub(f.status.as_str().len()));
            let _ = writeln!(
                out,
                "  {}{pad} {:<width$}  {}{}",
                paint(f.status, colour),
                f.id,
                match (f.value.as_deref(), f.source) {
                    (Some(v), "daemon") if f.status > Status::Ok => format!("{v} (the daemon's)"),
                    (v, _) => v.unwrap_or("-").to_string(),
                },
                f.threshold
                    .as_deref()
                    .map(|t| format!("  ({})", condition(f, t)))
                    .unwrap_or_default(),
            );
            if f.status > Status::Ok || f.id == "processes" {
                let _ = writeln!(out, "  {:8} {:width$}  {}", "", "", f.summary);
                if let Some(fix) = &f.fix {
                    let _ = writeln!(out, "  {:8} {:width$}  fix: {fix}", "", "");
                }
            }
        }
    }
    let with_forecasts = report.databases.iter().filter(|d| !d.forecasts.is_empty());
    for (i, db) in with_forecasts.enumerate() {
        if i == 0 {
            let from = match report.forecasts_from.strip_prefix("daemon ") {
                Some(url) => format!("from the history of the daemon at {url}"),
                None => format!("from this check's {:.0} s sample", report.sample_seconds),
            };
            let _ = writeln!(out, "\nForecasts ({from}):");
        }
        for f in &db.forecasts {
            let _ = writeln!(out, "  {}: {}", db.db, f.text);
        }
    }
    for note in &report.notes {
        let _ = writeln!(out, "\nNote: {note}");
    }
    let _ = writeln!(out, "{}", report.recommended_pragmas);
    out
}

/// A finding's threshold as what it means: the condition that alerts for an alert's threshold
/// ("alerts above 50 GB"), what is expected for an audit ("expected wal"). Never the alert
/// condition written as an expectation, which reads as its opposite.
fn condition(f: &super::Finding, threshold: &str) -> String {
    if f.alert.is_none() {
        return format!("expected {threshold}");
    }
    if let Some(t) = threshold.strip_prefix("> ") {
        format!("alerts above {t}")
    } else if let Some(t) = threshold.strip_prefix("< ") {
        format!("alerts below {t}")
    } else {
        format!("alerts unless {threshold}")
    }
}
