//! The report: data findings from the scan's counts, the cost, and its two renderings (a
//! readable summary, and JSON with schema `sqlite-ops/migrate-check/v1`).

use super::plan::{ColumnPlan, Plan, TablePlan};
use super::scan::{ColumnStats, ScanStats, TableStats, Tally};
use super::types::PgType;
use super::{BackupStats, ColumnReport, Cost, Finding, Level, Report, TableReport};
use std::fmt::Write;
use std::path::Path;

fn data_finding(
    table: &str,
    id: &str,
    level: Level,
    object: String,
    summary: String,
    t: &Tally,
) -> Finding {
    Finding {
        id: id.to_string(),
        level,
        object,
        table: Some(table.to_string()),
        summary,
        count: Some(t.count),
        examples: t.examples.clone(),
        fix: None,
    }
}

/// Turns the scan's counts into findings.
fn data_findings(plan: &Plan, stats: &ScanStats) -> Vec<Finding> {
    let mut out = Vec::new();
    for (tp, ts) in plan.tables.iter().zip(&stats.tables) {
        for (cp, cs) in tp.columns.iter().zip(&ts.columns) {
            column_findings(&mut out, tp, cp, cs);
        }
        key_findings(&mut out, tp, ts);
    }
    out
}

/// One column's values: those Postgres refuses, mixed date formats, whole REALs, mixed
/// storage classes.
fn column_findings(out: &mut Vec<Finding>, tp: &TablePlan, cp: &ColumnPlan, cs: &ColumnStats) {
    let object = format!("{}.{}", tp.name, cp.name);
    for (p, tally) in &cs.problems {
        let level = if p.blocks() {
            Level::Blocker
        } else {
            Level::Work
        };
        let summary = format!("{} value(s) for {}: {}", tally.count, cp.pg, p.explain());
        out.push(data_finding(
            &tp.name,
            p.id(),
            level,
            object.clone(),
            summary,
            tally,
        ));
    }
    if cs.date_shapes.len() > 1 {
        let shapes: Vec<String> = cs
            .date_shapes
            .iter()
            .map(|(shape, t)| format!("{} {shape}", t.count))
            .collect();
        let all = Tally {
            count: cs.date_shapes.values().map(|t| t.count).sum(),
            examples: cs
                .date_shapes
                .values()
                .filter_map(|t| t.examples.first().cloned())
                .collect(),
        };
        out.push(Finding {
            fix: Some(
                "normalise to one format (ISO-8601 UTC) before the move; the examples are one row per format".into(),
            ),
            ..data_finding(
                &tp.name,
                "mixed_date_formats",
                Level::Work,
                object.clone(),
                format!("dates in {} formats: {}", shapes.len(), shapes.join(", ")),
                &all,
            )
        });
    }
    let reals = cs.classes[2];
    if cp.pg == PgType::Double && reals > 0 && cs.integral_reals == reals {
        out.push(Finding {
            id: "integers_as_real".into(),
            level: Level::Info,
            object: object.clone(),
            table: Some(tp.name.clone()),
            summary: format!(
                "all {reals} REAL values are whole numbers: bigint (or numeric) would be exact where double precision rounds past 2^53"
            ),
            count: Some(reals),
            examples: Vec::new(),
            fix: None,
        });
    }
    let classes = cs.classes[1..].iter().filter(|n| **n > 0).count();
    if cp.declared.is_empty() && classes > 1 {
        out.push(Finding {
            id: "mixed_storage_classes".into(),
            level: Level::Info,
            object: object.clone(),
            table: Some(tp.name.clone()),
            summary: format!(
                "no declared type and {classes} storage classes (integer {}, real {}, text {}, blob {}): proposed as {}",
                cs.classes[1], cs.classes[2], cs.classes[3], cs.classes[4], cp.pg
            ),
            count: None,
            examples: Vec::new(),
            fix: Some("declare the type the application means".into()),
        });
    }
}

/// One table's keys: case collisions under a case-insensitive unique key, orphans of a
/// foreign key.
fn key_findings(out: &mut Vec<Finding>, tp: &TablePlan, ts: &TableStats) {
    for (index, t) in &ts.collisions {
        out.push(Finding {
            fix: Some(
                "SQLite's NOCASE folds ASCII only; Postgres folds every letter: merge or rename the duplicates".into(),
            ),
            ..data_finding(
                &tp.name,
                "case_collision",
                Level::Blocker,
                format!("{}.{index}", tp.name),
                format!(
                    "{} row(s) collide with an earlier row under the case-insensitive unique key",
                    t.count
                ),
                t,
            )
        });
    }
    for fk in &tp.foreign_keys {
        if let Some(t) = ts.orphans.get(&fk.name) {
            out.push(Finding {
                fix: Some(
                    "delete the orphans or restore their parents; SQLite did not enforce the key (PRAGMA foreign_keys was off)".into(),
                ),
                ..data_finding(
                    &tp.name,
                    "foreign_key_violation",
                    Level::Blocker,
                    format!("{}({})", tp.name, fk.from.join(", ")),
                    format!(
                        "{} row(s) refer to a missing {}({})",
                        t.count,
                        fk.parent,
                        fk.to.join(", ")
                    ),
                    t,
                )
            });
        }
    }
}

pub fn build(
    path: &Path,
    size: u64,
    plan: &Plan,
    stats: &ScanStats,
    backup: Option<BackupStats>,
) -> Report {
    let mut findings = plan.findings.clone();
    findings.extend(data_findings(plan, stats));
    findings.sort_by(|a, b| (a.level, &a.object, &a.id).cmp(&(b.level, &b.object, &b.id)));
    let exit_code = super::exit_code(&findings);
    let rows = stats.tables.iter().map(|t| t.rows).sum();
    let read = stats.active.as_secs_f64();
    let rate = if read > 0.0 {
        stats.bytes as f64 / read
    } else {
        0.0
    };
    let tables = plan
        .tables
        .iter()
        .zip(&stats.tables)
        .map(|(tp, ts)| TableReport {
            name: tp.name.clone(),
            rows: ts.rows,
            columns: tp
                .columns
                .iter()
                .zip(&ts.columns)
                .map(|(cp, cs)| ColumnReport {
                    name: cp.name.clone(),
                    sqlite: cp.declared.clone(),
                    postgres: match cp.pg {
                        PgType::Identity => "bigint GENERATED BY DEFAULT AS IDENTITY".into(),
                        ref t => t.to_string(),
                    },
                    note: cp.note.clone(),
                    storage_classes: ["null", "integer", "real", "text", "blob"]
                        .into_iter()
                        .zip(cs.classes)
                        .filter(|(_, n)| *n > 0)
                        .collect(),
                })
                .collect(),
        })
        .collect();
    Report {
        schema: super::SCHEMA_ID,
        database: path.display().to_string(),
        sqlite_version: rusqlite::version().to_string(),
        verdict: match exit_code {
            0 => "ready",
            1 => "work",
            _ => "blocked",
        },
        exit_code,
        cost: Cost {
            database_bytes: size,
            tables: plan.tables.len(),
            rows,
            read_bytes: stats.bytes,
            read_seconds: read,
            scan_seconds: stats.wall.as_secs_f64(),
            read_bytes_per_second: rate,
            // Every value read at the measured rate: what a copy must read, at the least.
            estimated_copy_seconds: read,
            longest_read_transaction_seconds: stats.longest_statement.as_secs_f64(),
            statements: stats.statements,
            retries: stats.retries,
            source: if backup.is_some() { "backup" } else { "live" }.into(),
            backup,
        },
        tables,
        findings,
    }
}

pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("the report serialises") + "\n"
}

fn bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn human(report: &Report) -> String {
    let mut out = String::new();
    let c = &report.cost;
    let verdict = match report.verdict {
        "ready" => "READY: nothing blocks the move",
        "work" => "WORK: the data loads, but some of the schema needs rewriting",
        _ => "BLOCKED: Postgres will reject some rows as they are",
    };
    let _ = writeln!(out, "migrate-check {}: {verdict}\n", report.database);
    let _ = writeln!(
        out,
        "Cost: {} on disk, {} tables, {} rows; read {} of values in {:.2} s ({}/s): a copy reads the same, so it takes at least {:.1} s here, plus Postgres's load and index builds.",
        bytes(c.database_bytes as f64),
        c.tables,
        c.rows,
        bytes(c.read_bytes as f64),
        c.read_seconds,
        bytes(c.read_bytes_per_second),
        c.estimated_copy_seconds
    );
    let _ = writeln!(
        out,
        "Hands off: {} statements, the longest read transaction {:.3} s; the scan took {:.2} s{}.\n",
        c.statements,
        c.longest_read_transaction_seconds,
        c.scan_seconds,
        match &c.backup {
            Some(b) => format!(
                " on a copy made with the online backup API in {:.2} s ({} steps, longest {:.3} s, {} restarts)",
                b.seconds, b.steps, b.longest_step_seconds, b.restarts
            ),
            None => String::new(),
        }
    );
    for (level, title) in [
        (Level::Blocker, "Blocks the load"),
        (Level::Work, "Work"),
        (Level::Info, "Good to know"),
    ] {
        let fs: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| f.level == level)
            .collect();
        if fs.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{title} ({}):", fs.len());
        for f in fs {
            let _ = writeln!(out, "  {:<28} {:<24} {}", f.object, f.id, f.summary);
            if !f.examples.is_empty() {
                let ex: Vec<String> = f.examples.iter().map(|e| e.to_string()).collect();
                let _ = writeln!(out, "  {:<28} {:<24} rows: {}", "", "", ex.join(", "));
            }
            if let Some(fix) = &f.fix {
                let _ = writeln!(out, "  {:<28} {:<24} fix: {fix}", "", "");
            }
        }
        out.push('\n');
    }
    let _ = writeln!(out, "Tables:");
    for t in &report.tables {
        let cols: Vec<String> = t
            .columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.postgres))
            .collect();
        let _ = writeln!(out, "  {} ({} rows): {}", t.name, t.rows, cols.join(", "));
    }
    let _ = writeln!(
        out,
        "\nExit {}: 0 ready, 1 work, 2 the data cannot load as it is.",
        report.exit_code
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::values::Problem;

    #[test]
    fn byte_sizes_read_well() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1_500_000.0), "1.5 MB");
    }

    #[test]
    fn problems_that_load_are_work_not_blockers() {
        assert!(!Problem::BlobInTextColumn.blocks());
        assert!(Problem::InvalidUtf8.blocks());
    }
}
