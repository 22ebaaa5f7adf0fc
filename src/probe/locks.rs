//! Tests SQLite's POSIX advisory locks with `fcntl(F_GETLK)`, which reports a conflicting lock
//! and its owner's pid without acquiring anything, so it never changes what it watches.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// The kind of a lock that is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    Read,
    Write,
}

/// A lock held by another process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Holder {
    pub pid: i32,
    pub kind: LockKind,
}

/// Returns a lock that another process holds on `len` bytes at `start` and that would conflict
/// with taking `want` there, or `None` when the range is free of such locks. Asking as `Write`
/// finds any lock; asking as `Read` finds only write locks.
///
/// `F_GETLK` cannot see locks held by this process itself: the application's connections must
/// live in another process (they always do for a sidecar).
pub fn conflicting(
    file: &File,
    start: u64,
    len: u64,
    want: LockKind,
) -> io::Result<Option<Holder>> {
    // SAFETY: flock is plain old data; all-zero is a valid value that we then fill in.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = match want {
        LockKind::Read => libc::F_RDLCK,
        LockKind::Write => libc::F_WRLCK,
    } as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = start as libc::off_t;
    fl.l_len = len as libc::off_t;
    // SAFETY: a valid descriptor and a valid flock pointer; F_GETLK only writes into `fl`.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut fl) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(match i32::from(fl.l_type) {
        libc::F_UNLCK => None,
        libc::F_RDLCK => Some(Holder {
            pid: fl.l_pid,
            kind: LockKind::Read,
        }),
        _ => Some(Holder {
            pid: fl.l_pid,
            kind: LockKind::Write,
        }),
    })
}
