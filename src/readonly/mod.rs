//! Reading a database someone else is using, without changing it, for `check`'s SQL audits and
//! `migrate-check`: one read-only connection, no checkpoint on close, each statement its own
//! short read transaction; errors a reader of a live WAL database meets in passing are retried.

pub mod vfs;

use crate::format::db_header::JournalKind;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// A file's size and modification time.
pub type Fingerprint = Option<(u64, SystemTime)>;

/// Opens a database for reading only, as the audits do: `immutable=1` when it is a WAL
/// database nobody has open. Returns the connection and, when it is immutable, the file's
/// fingerprint: pass it to [`changed_since`] after reading.
///
/// Connections go through a read-only VFS ([`vfs`]) with `readonly_shm=1`, so no file is
/// opened for writing. A WAL database that nobody has open has no `-wal`/`-shm` to read; then
/// the connection is opened `immutable=1`, which reads the database file alone and takes no
/// locks, and the result is kept only if the file did not change meanwhile.
pub fn open_for_reading(path: &Path) -> rusqlite::Result<(Connection, Option<Fingerprint>)> {
    let mut head = [0u8; 100];
    let wal = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .ok()
        .and_then(|()| crate::format::db_header::parse(&head).ok())
        .is_some_and(|h| h.journal == JournalKind::Wal);
    open_knowing(path, wal)
}

/// [`open_for_reading`] when the caller already knows whether the database is in WAL mode
/// with normal locking (the daemon's snapshot says so).
pub fn open_knowing(
    path: &Path,
    wal_normal_locking: bool,
) -> rusqlite::Result<(Connection, Option<Fingerprint>)> {
    let immutable = read_immutable(path, wal_normal_locking);
    let before = fingerprint(path);
    Ok((open(path, immutable)?, immutable.then_some(before)))
}

/// Opens a file nobody else uses (a restored copy) `immutable=1`: read-only, no locks, no
/// `-wal` or `-shm` made beside it.
pub fn open_immutable(path: &Path) -> rusqlite::Result<Connection> {
    open(path, true)
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
    vfs::register().map_err(|e| {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(e.to_string()),
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
    let conn = Connection::open_with_flags_and_vfs(uri, flags, vfs::NAME)?;
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
pub fn with_deadline(conn: &mut Connection, timeout: Duration) {
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
