//! Free and total space of the filesystem holding each database, through sysinfo. One list of
//! mounts is shared by every database; each mount in use is refreshed (one `statvfs`) once per
//! poll cycle, however many databases live on it.

use crate::format::mountinfo::{self, Mount};
use std::path::Path;
use std::time::{Duration, Instant};
use sysinfo::{DiskRefreshKind, Disks};

/// How often the list of mounts is read again (mounts change rarely).
const RELIST_EVERY: Duration = Duration::from_secs(60);
/// How often a mount's free space is read again (statvfs). Disks fill over minutes; reading
/// them every poll would be a third of a poll's cost for nothing.
const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// Filesystems where SQLite's POSIX locks, and so its consistency, cannot be trusted, and
/// whose `statvfs` may hang.
pub const NETWORK_FILESYSTEMS: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb",
    "smb3",
    "smbfs",
    "9p",
    "ceph",
    "glusterfs",
    "lustre",
    "gpfs",
    "afs",
    "fuse.sshfs",
    "fuse.s3fs",
    "fuse.gcsfuse",
    "fuse.rclone",
    "virtiofs",
];

pub fn is_network(fs_type: &str) -> bool {
    NETWORK_FILESYSTEMS.contains(&fs_type)
}

/// Whether every write to a file on this filesystem raises an inotify event here: not on a
/// network share (another machine's writes raise none) nor through FUSE (writes made beside
/// the daemon, to what it serves, raise none on the mount).
pub fn local_writes_only(fs_type: &str) -> bool {
    !is_network(fs_type) && !fs_type.starts_with("fuse")
}

/// Space on one filesystem.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FsStat {
    /// Shared by every database on the filesystem and every poll (a fleet's polls copy none).
    pub mount_point: std::sync::Arc<Path>,
    pub fs_type: std::sync::Arc<str>,
    /// Bytes available to unprivileged users (`f_bavail`); `None` on a network filesystem.
    pub free_bytes: Option<u64>,
    /// `None` on a network filesystem.
    pub size_bytes: Option<u64>,
}

/// The mounts of this machine and which were refreshed in the current cycle.
pub struct Filesystems {
    /// `None` when sysinfo cannot list mounts on this platform.
    disks: Option<Disks>,
    /// Every mount, from /proc/self/mountinfo; empty when it cannot be read.
    mounts: Vec<Mount>,
    listed_at: Option<Instant>,
    refreshed_at: Option<Instant>,
    refreshed: Vec<bool>,
    /// What each folder asked about in this cycle was found on: a fleet's ten thousand
    /// databases in one folder are one search of the mounts a cycle, not ten thousand.
    /// Keyed by the path's bytes: hashing a `Path` parses its components every time.
    memo: std::collections::HashMap<std::ffi::OsString, Option<FsStat>>,
}

impl Default for Filesystems {
    fn default() -> Self {
        Self::new()
    }
}

impl Filesystems {
    pub fn new() -> Self {
        Filesystems {
            disks: Disks::new().ok(),
            mounts: Vec::new(),
            listed_at: None,
            refreshed_at: None,
            refreshed: Vec::new(),
            memo: std::collections::HashMap::new(),
        }
    }

    /// Starts a poll cycle: every few seconds, mounts are refreshed again on first use.
    pub fn begin_cycle(&mut self) {
        self.memo.clear();
        let stale = self.listed_at.is_none_or(|t| t.elapsed() >= RELIST_EVERY);
        if stale {
            self.mounts = std::fs::read_to_string("/proc/self/mountinfo")
                .map(|t| mountinfo::parse(&t))
                .unwrap_or_default();
        }
        let Some(disks) = self.disks.as_mut() else {
            return;
        };
        if stale {
            disks.refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
            self.listed_at = Some(Instant::now());
            self.refreshed_at = self.listed_at;
            self.refreshed = vec![true; disks.len()];
        } else if self
            .refreshed_at
            .is_none_or(|t| t.elapsed() >= REFRESH_EVERY)
        {
            self.refreshed_at = Some(Instant::now());
            self.refreshed.iter_mut().for_each(|r| *r = false);
        }
    }

    /// The filesystem holding `dir` (an absolute, canonical directory): the mount with the
    /// longest mount point that is a prefix of it.
    ///
    /// Network filesystems (NFS, CIFS) are never `statvfs`ed: on a hard-mounted share it can
    /// hang, and the poll path must never block. sysinfo leaves them out of its list, so which
    /// mount holds a database is decided from `/proc/self/mountinfo`, which lists them: a
    /// database on a share reports the mount and its type with no space figures (not an error;
    /// the audit flags it), and never the space of the local filesystem the share is mounted on.
    pub fn stat(&mut self, dir: &Path) -> Option<FsStat> {
        if let Some(found) = self.memo.get(dir.as_os_str()) {
            return found.clone();
        }
        let found = self.search(dir);
        self.memo
            .insert(dir.as_os_str().to_os_string(), found.clone());
        found
    }

    fn search(&mut self, dir: &Path) -> Option<FsStat> {
        if let Some(m) = mountinfo::containing(&self.mounts, dir).filter(|m| is_network(&m.fs_type))
        {
            return Some(FsStat {
                mount_point: m.mount_point.as_path().into(),
                fs_type: m.fs_type.as_str().into(),
                free_bytes: None,
                size_bytes: None,
            });
        }
        let disks = self.disks.as_mut()?;
        let (i, _) = disks
            .iter()
            .enumerate()
            .filter(|(_, d)| dir.starts_with(d.mount_point()))
            .max_by_key(|(_, d)| d.mount_point().as_os_str().len())?;
        let disk = &mut disks[i];
        if !self.refreshed.get(i).copied().unwrap_or(false) {
            disk.refresh_specifics(DiskRefreshKind::nothing().with_storage());
            if let Some(r) = self.refreshed.get_mut(i) {
                *r = true;
            }
        }
        Some(FsStat {
            mount_point: disk.mount_point().into(),
            fs_type: disk.file_system().to_string_lossy().into(),
            free_bytes: Some(disk.available_space()),
            size_bytes: Some(disk.total_space()),
        })
    }
}

/// Bytes available to unprivileged users on the filesystem holding `dir` (one `statvfs`), for
/// a folder sqlite-ops writes to itself (the restore drills' scratch folder, migrate-check's
/// backup).
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs fills the zeroed struct it is given; the path is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_bytes_of_a_folder_is_that_of_its_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn finds_the_filesystem_of_a_temporary_directory() {
        let dir = tempfile::tempdir().unwrap();
        let canonical = dir.path().canonicalize().unwrap();
        let mut fs = Filesystems::new();
        fs.begin_cycle();
        let st = fs
            .stat(&canonical)
            .expect("temp dir is on a listed filesystem");
        assert!(st.size_bytes > Some(0));
        assert!(st.free_bytes <= st.size_bytes);
        assert!(canonical.starts_with(&st.mount_point));
    }

    /// A database on a network share reports the share and its type, never the space of the
    /// local filesystem it is mounted on, and no statvfs happens.
    #[test]
    fn a_network_share_has_its_type_and_no_space_figures() {
        let dir = tempfile::tempdir().unwrap();
        let canonical = dir.path().canonicalize().unwrap();
        let mut fs = Filesystems::new();
        fs.begin_cycle();
        fs.mounts.push(Mount {
            mount_point: canonical.clone(),
            fs_type: "nfs4".into(),
        });
        let st = fs.stat(&canonical.join("sub")).unwrap();
        assert_eq!(&*st.fs_type, "nfs4");
        assert_eq!(&*st.mount_point, canonical.as_path());
        assert_eq!((st.free_bytes, st.size_bytes), (None, None));
    }
}
