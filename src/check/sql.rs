//! The audits of `check` that need SQL: foreign key violations and, with `--integrity`,
//! `PRAGMA quick_check`. One read-only connection (see `crate::readonly`), each statement its
//! own short read transaction, interrupted at a deadline.

use super::{Finding, Status};
use crate::format::db_header::JournalKind;
use crate::monitor::DbSnapshot;
use crate::readonly::{changed_since, open_knowing, retrying, with_deadline};
use rusqlite::Connection;
use std::time::{Duration, Instant};

/// Violations named in a finding, at most.
const EXAMPLES: usize = 3;

pub fn audits(s: &DbSnapshot, integrity: bool, timeout: Duration) -> Vec<Finding> {
    let path: &std::path::Path = &s.path;
    let wal_normal_locking =
        s.journal_mode == Some(JournalKind::Wal) && s.locking_mode != Some("exclusive");
    let (mut conn, immutable) = match open_knowing(path, wal_normal_locking) {
        Ok(c) => c,
        Err(e) => {
            return vec![Finding::new(
                "foreign_keys",
                Status::Unknown,
                format!("cannot open the database read-only: {e}"),
            )]
        }
    };
    // One connection; each statement gets its own deadline and read transaction.
    let mut out = vec![foreign_keys(&mut conn, timeout)];
    if integrity {
        out.push(quick_check(&mut conn, timeout));
    }
    drop(conn);
    if immutable.is_some_and(|before| changed_since(path, before)) {
        // An application opened the database while we read it without locks.
        for f in &mut out {
            *f = Finding::new(
                f.id,
                Status::Unknown,
                "the database changed while it was read; run the check again",
            );
        }
    }
    out
}

fn interrupted(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
}

fn foreign_keys(conn: &mut Connection, timeout: Duration) -> Finding {
    with_deadline(conn, timeout);
    let started = Instant::now();
    let result = retrying(|| -> rusqlite::Result<(u64, Vec<String>)> {
        let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
        let mut rows = stmt.query([])?;
        let (mut n, mut examples) = (0u64, Vec::new());
        while let Some(row) = rows.next()? {
            n += 1;
            if examples.len() < EXAMPLES {
                let table: String = row.get(0)?;
                let rowid: Option<i64> = row.get(1)?;
                let parent: String = row.get(2)?;
                examples.push(match rowid {
                    Some(r) => format!("{table} rowid {r} -> {parent}"),
                    None => format!("{table} -> {parent}"),
                });
            }
        }
        Ok((n, examples))
    });
    let took = format!("{:.1}s", started.elapsed().as_secs_f64());
    match result {
        Ok((0, _)) => Finding::new("foreign_keys", Status::Ok, "no foreign key violations")
            .value("0 violations")
            .threshold("0"),
        Ok((n, examples)) => Finding::new(
            "foreign_keys",
            Status::Warning,
            format!("{n} row(s) violate foreign keys, e.g. {}", examples.join(", ")),
        )
        .value(format!("{n} violation(s)"))
        .threshold("0")
        .fix("Repair or delete the orphan rows, and set PRAGMA foreign_keys=ON on every connection."),
        Err(e) if interrupted(&e) => Finding::new(
            "foreign_keys",
            Status::Unknown,
            format!("foreign_key_check stopped after {took} (--statement-timeout) to keep the read short"),
        )
        .fix("Raise --statement-timeout, or run the check on a restored copy."),
        Err(e) => Finding::new("foreign_keys", Status::Unknown, format!("foreign_key_check failed: {e}")),
    }
}

fn quick_check(conn: &mut Connection, timeout: Duration) -> Finding {
    with_deadline(conn, timeout);
    let result = retrying(|| -> rusqlite::Result<Vec<String>> {
        let mut stmt = conn.prepare("PRAGMA quick_check(10)")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect()
    });
    match result {
        Ok(lines) if lines == ["ok"] => Finding::new("integrity", Status::Ok, "quick_check passed")
            .value("ok")
            .threshold("ok"),
        Ok(lines) => Finding::new(
            "integrity",
            Status::Critical,
            format!("quick_check found damage: {}", lines.join("; ")),
        )
        .value(format!("{} problems (first 10 shown)", lines.len()))
        .threshold("ok")
        .fix("Stop writers, restore from the last good Litestream replica, and compare."),
        Err(e) if interrupted(&e) => Finding::new(
            "integrity",
            Status::Unknown,
            "quick_check stopped at --statement-timeout to keep the read short",
        )
        .fix("Raise --statement-timeout, or run it on a restored copy."),
        Err(e) => Finding::new(
            "integrity",
            Status::Unknown,
            format!("quick_check failed: {e}"),
        ),
    }
}
