//! A read-only SQLite VFS for the connections of `check` and `migrate-check`: SQLite's unix VFS
//! with every file opened read-only. What this process opens for writing is nothing, which
//! `tests/read_only.rs` checks with strace.

use rusqlite::ffi;
use std::ffi::{c_char, c_int, CStr};
use std::sync::OnceLock;

/// The VFS name to open connections with.
pub const NAME: &CStr = c"sqlite-ops-readonly";

/// The default VFS's xOpen, which ours calls with read-only flags.
static INNER_OPEN: OnceLock<Result<OpenFn, VfsError>> = OnceLock::new();

/// Why the read-only VFS could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VfsError {
    #[error("no default SQLite VFS")]
    NoDefault,
    #[error("the default VFS has no xOpen")]
    NoOpen,
    #[error("registering the read-only VFS failed (SQLite error {0})")]
    Register(c_int),
}

type OpenFn = unsafe extern "C" fn(
    *mut ffi::sqlite3_vfs,
    ffi::sqlite3_filename,
    *mut ffi::sqlite3_file,
    c_int,
    *mut c_int,
) -> c_int;

/// The VFS's xOpen: the default VFS's, with read-only flags. Even a read-only connection asks
/// for `-wal` (and, without `readonly_shm=1`, `-shm`) read-write, creating them if missing, so
/// that it can record its read mark; through this VFS the WAL is opened `O_RDONLY` (SQLite then
/// treats it as read-only), and with `readonly_shm=1` the wal-index too, so SQLite reads it
/// without writing a read mark.
unsafe extern "C" fn open_read_only(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let flags = (flags & !(ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE))
        | ffi::SQLITE_OPEN_READONLY;
    match INNER_OPEN.get() {
        // SAFETY: the pointers come from SQLite and go to the VFS our copy was made from; the
        // copy carries the same szOsFile and pAppData, so the inner xOpen sees what it expects.
        Some(Ok(inner)) => unsafe { inner(vfs, name, file, flags, out_flags) },
        _ => ffi::SQLITE_CANTOPEN,
    }
}

/// Registers the VFS once (not as the default). Errors say why it could not be.
pub fn register() -> Result<(), VfsError> {
    INNER_OPEN
        .get_or_init(|| {
            // SAFETY: sqlite3_vfs_find returns the default VFS, which lives for the process; we
            // copy it (a plain struct of pointers) and leak the copy, as a registered VFS must
            // outlive every connection that uses it.
            unsafe {
                let default = ffi::sqlite3_vfs_find(std::ptr::null::<c_char>());
                if default.is_null() {
                    return Err(VfsError::NoDefault);
                }
                let mut ours: ffi::sqlite3_vfs = *default;
                let inner = ours.xOpen.ok_or(VfsError::NoOpen)?;
                ours.zName = NAME.as_ptr();
                ours.pNext = std::ptr::null_mut();
                ours.xOpen = Some(open_read_only);
                let rc = ffi::sqlite3_vfs_register(Box::into_raw(Box::new(ours)), 0);
                if rc != ffi::SQLITE_OK {
                    return Err(VfsError::Register(rc));
                }
                Ok(inner)
            }
        })
        .as_ref()
        .map(|_| ())
        .map_err(|e| *e)
}
