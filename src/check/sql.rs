//! The audits of `check` that need SQL: foreign key violations and, with `--integrity`,
//! `PRAGMA quick_check`. One read-only connection, no checkpoint on close, each statement its
//! own short read transaction, interrupted at a deadline.
//!
//! Connections go through a read-only VFS (`ro_vfs`) with `readonly_shm=1`, so no file is
//! opened for writing. A WAL database that nobody has open has no `-wal`/`-shm` to read; then
//! the connection is opened `immutable=1`, which reads the database file alone and takes no
//! locks, and the result is kept only if the file did not change meanwhile.

use super::{Finding, Status};
use crate::format::db_header::JournalKind;
use crate::monitor::DbSnapshot;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// Violations named in a finding, at most.
const EXAMPLES: usize = 3;

pub fn audits(s: &DbSnapshot, integrity: bool, timeout: Duration) -> Vec<Finding> {
    let path = s.path.as_path();
    let immutable = read_immutable(
        path,
        s.journal_mode == Some(JournalKind::Wal) && s.locking_mode != Some("exclusive"),
    );
    let before = fingerprint(path);
    let mut conn = match open(path, immutable) {
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
    if immutable && changed_since(path, before) {
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

/// A file's size and modification time.
pub type Fingerprint = Option<(u64, SystemTime)>;

/// Opens a database for reading only, as the audits do: `immutable=1` when it is a WAL
/// database nobody has open (see the module comment). Returns the connection and, when it is
/// immutable, the file's fingerprint: pass it to [`changed_since`] after reading.
pub fn open_for_reading(path: &Path) -> rusqlite::Result<(Connection, Option<Fingerprint>)> {
    let mut head = [0u8; 100];
    let wal = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .ok()
        .and_then(|()| crate::format::db_header::parse(&head).ok())
        .is_some_and(|h| h.journal == JournalKind::Wal);
    let immutable = read_immutable(path, wal);
    let before = fingerprint(path);
    Ok((open(path, immutable)?, immutable.then_some(before)))
}

/// Whether to read `path` with `immutable=1`: a WAL database (in normal locking mode) that
/// nobody has open, whose `-wal`/`-shm` a read-only connection would otherwise create.
fn read_immutable(path: &Path, wal_normal_locking: bool) -> bool {
    wal_normal_locking && !(sidecar_exists(path, "-wal") && sidecar_exists(path, "-shm"))
}

/// Whether an immutable read may have seen a changing file: it changed, or a WAL appeared.
pub fn changed_since(path: &Path, before: Fingerprint) -> bool {
    fingerprint(path) != before || sidecar_exists(path, "-wal")
}

fn sidecar_exists(path: &Path, suffix: &str) -> bool {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    Path::new(&p).exists()
}

fn fingerprint(path: &Path) -> Fingerprint {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

fn open(path: &Path, immutable: bool) -> rusqlite::Result<Connection> {
    super::ro_vfs::register().map_err(|e| {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(e),
        )
    })?;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    // Every file read-only (our VFS), the wal-index too (readonly_shm): the audit reads as a
    // reader that never writes a read mark.
    let params = if immutable {
        "immutable=1"
    } else {
        "readonly_shm=1"
    };
    let uri = format!("file:{}?{params}", uri_path(path));
    let conn = Connection::open_with_flags_and_vfs(uri, flags, super::ro_vfs::NAME)?;
    // Never checkpoint (or delete the WAL) when this connection closes.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    conn.busy_timeout(Duration::from_secs(1))?;
    Ok(conn)
}

/// A path as a `file:` URI path: the characters URIs reserve are percent-encoded.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for b in path.as_os_str().as_encoded_bytes() {
        match b {
            b'%' | b'?' | b'#' | b' ' | 0x80.. => out.push_str(&format!("%{b:02X}")),
            _ => out.push(*b as char),
        }
    }
    out
}

/// Interrupts any statement of `conn` that runs past `timeout` from now (replacing the
/// previous deadline).
fn with_deadline(conn: &mut Connection, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    // Checked every 1000 virtual machine instructions: microseconds.
    let _ = conn.progress_handler(1000, Some(move || Instant::now() > deadline));
}

/// Whether an error is the passing kind a read-only reader of a live WAL database meets: the
/// wal-index header caught while a writer was changing it, which a connection that may not
/// write `-shm` reports as SQLITE_READONLY_RECOVERY instead of running recovery itself; or
/// BUSY. The next attempt, a moment later, reads a settled header.
pub fn transient(e: &rusqlite::Error) -> bool {
    e.sqlite_error().is_some_and(|f| {
        f.extended_code == rusqlite::ffi::SQLITE_READONLY_RECOVERY
            || f.code == rusqlite::ErrorCode::DatabaseBusy
    })
}

/// Waits before attempt `attempt + 1` after a [`transient`] error; false when there have been
/// enough attempts (about a second in all).
pub fn pause_before_retry(attempt: &mut u32) -> bool {
    if *attempt >= 100 {
        return false;
    }
    *attempt += 1;
    std::thread::sleep(Duration::from_millis(u64::from((*attempt).min(20))));
    true
}

/// Runs `f` (which must have no effects outside itself) again while it fails transiently.
pub fn retrying<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let mut attempt = 0;
    loop {
        match f() {
            Err(e) if transient(&e) && pause_before_retry(&mut attempt) => continue,
            other => return other,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_paths_escape_reserved_characters() {
        assert_eq!(
            uri_path(Path::new("/a b/c?d#e%f.db")),
            "/a%20b/c%3Fd%23e%25f.db"
        );
    }
}
