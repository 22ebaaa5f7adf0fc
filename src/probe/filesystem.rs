//! Free and total space of the filesystem holding each database, through sysinfo. One list of
//! mounts is shared by every database; each mount in use is refreshed (one `statvfs`) once per
//! poll cycle, however many databases live on it.
//!
//! Network filesystems (NFS, CIFS) are left out of sysinfo's list on purpose: `statvfs` on a
//! hard-mounted share can hang, and the poll path must never block. Their databases report no
//! filesystem figures; the audit flags them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use sysinfo::{DiskRefreshKind, Disks};

/// How often the list of mounts is read again (mounts change rarely).
const RELIST_EVERY: Duration = Duration::from_secs(60);
/// How often a mount's free space is read again (statvfs). Disks fill over minutes; reading
/// them every poll would be a third of a poll's cost for nothing.
const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// Space on one filesystem.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FsStat {
    pub mount_point: PathBuf,
    pub fs_type: String,
    /// Bytes available to unprivileged users (`f_bavail`).
    pub free_bytes: u64,
    pub size_bytes: u64,
}

/// The mounts of this machine and which were refreshed in the current cycle.
pub struct Filesystems {
    /// `None` when sysinfo cannot list mounts on this platform.
    disks: Option<Disks>,
    listed_at: Option<Instant>,
    refreshed_at: Option<Instant>,
    refreshed: Vec<bool>,
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
            listed_at: None,
            refreshed_at: None,
            refreshed: Vec::new(),
        }
    }

    /// Starts a poll cycle: every few seconds, mounts are refreshed again on first use.
    pub fn begin_cycle(&mut self) {
        let stale = self.listed_at.is_none_or(|t| t.elapsed() >= RELIST_EVERY);
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
    pub fn stat(&mut self, dir: &Path) -> Option<FsStat> {
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
            mount_point: disk.mount_point().to_path_buf(),
            fs_type: disk.file_system().to_string_lossy().into_owned(),
            free_bytes: disk.available_space(),
            size_bytes: disk.total_space(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_filesystem_of_a_temporary_directory() {
        let dir = tempfile::tempdir().unwrap();
        let canonical = dir.path().canonicalize().unwrap();
        let mut fs = Filesystems::new();
        fs.begin_cycle();
        let st = fs
            .stat(&canonical)
            .expect("temp dir is on a listed filesystem");
        assert!(st.size_bytes > 0);
        assert!(st.free_bytes <= st.size_bytes);
        assert!(canonical.starts_with(&st.mount_point));
    }
}
