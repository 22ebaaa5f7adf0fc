//! Checking a restored copy: `PRAGMA integrity_check`, its tables and rows, and those rows
//! against the live database when the comparison means something (the replica held every
//! commit and nothing was written during the drill).

use super::error::DrillError;
use crate::readonly;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Longest the counts of the live database's tables may take in all (each table is its own
/// statement, so no read transaction lasts longer than one short query).
const LIVE_COUNT_TIMEOUT: Duration = Duration::from_secs(2);

/// Rows per table.
pub type Counts = BTreeMap<String, u64>;

/// `PRAGMA integrity_check` of the copy, then its row counts, within `timeout`. The copy is ours
/// and read `immutable=1`.
pub fn copy(path: &Path, timeout: Duration) -> Result<Counts, DrillError> {
    let mut conn = readonly::open_immutable(path).map_err(DrillError::OpenCopy)?;
    readonly::with_deadline(&mut conn, timeout);
    let problems: Vec<String> = conn
        .prepare("PRAGMA integrity_check(20)")
        .and_then(|mut st| {
            st.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(|e| interrupted(e, "integrity_check", timeout))?;
    if problems != ["ok"] {
        return Err(DrillError::Integrity(problems.join("; ")));
    }
    counts(&conn).map_err(|e| interrupted(e, "counting the copy's rows", timeout))
}

/// The live database's row counts, each table in its own short statement; `Err` with why
/// they were not taken. The live database is read as `check` reads it, one short statement at
/// a time.
pub fn live(path: &Path) -> Result<Counts, DrillError> {
    let (mut conn, _) = readonly::open_for_reading(path).map_err(DrillError::OpenLive)?;
    readonly::with_deadline(&mut conn, LIVE_COUNT_TIMEOUT);
    readonly::retrying(|| counts(&conn)).map_err(|e| {
        interrupted(
            e,
            "counting the live database's rows (a table too large to count quickly)",
            LIVE_COUNT_TIMEOUT,
        )
    })
}

fn interrupted(e: rusqlite::Error, what: &'static str, timeout: Duration) -> DrillError {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) {
        DrillError::TooSlow { what, timeout }
    } else {
        DrillError::Sql { what, source: e }
    }
}

fn counts(conn: &rusqlite::Connection) -> rusqlite::Result<Counts> {
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Counts::new();
    for t in tables {
        let n: i64 = conn.query_row(
            &format!("SELECT count(*) FROM \"{}\"", t.replace('"', "\"\"")),
            [],
            |r| r.get(0),
        )?;
        out.insert(t, n.max(0) as u64);
    }
    Ok(out)
}

/// Where the copy's counts differ from the live database's, in words; `None` when they agree.
/// Pure.
pub fn differences(copy: &Counts, live: &Counts) -> Option<String> {
    let mut diffs = Vec::new();
    for (t, n) in live {
        match copy.get(t) {
            None => diffs.push(format!("table {t} is missing")),
            Some(c) if c != n => diffs.push(format!("{t} has {c} rows, the live database {n}")),
            Some(_) => {}
        }
    }
    for t in copy.keys().filter(|t| !live.contains_key(*t)) {
        diffs.push(format!("table {t} is not in the live database"));
    }
    (!diffs.is_empty()).then(|| diffs.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(pairs: &[(&str, u64)]) -> Counts {
        pairs.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    #[test]
    fn differences_name_each_table() {
        assert_eq!(differences(&c(&[("a", 1)]), &c(&[("a", 1)])), None);
        assert_eq!(
            differences(&c(&[("a", 1000), ("x", 0)]), &c(&[("a", 1500), ("b", 2)])).unwrap(),
            "a has 1000 rows, the live database 1500; table b is missing; table x is not in the live database"
        );
    }

    #[test]
    fn a_copy_is_checked_and_counted_and_a_damaged_one_is_not_ok() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE t(x); CREATE TABLE \"odd\"\"name\"(y);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO t SELECT randomblob(200) FROM n;",
        )
        .unwrap();
        drop(conn);
        let counts = copy(&path, Duration::from_secs(10)).unwrap();
        assert_eq!(counts, c(&[("odd\"name", 0), ("t", 3000)]));
        assert_eq!(live(&path).unwrap(), counts);
        // Overwrite a page of the table's b-tree: the integrity check finds it.
        let mut bytes = std::fs::read(&path).unwrap();
        let page = 4096 * 3;
        bytes[page..page + 100].fill(0x55);
        std::fs::write(&path, &bytes).unwrap();
        let e = copy(&path, Duration::from_secs(10))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("integrity_check") || e.contains("malformed"),
            "{e}"
        );
    }
}
