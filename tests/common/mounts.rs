//! Filesystems the tests mount (they need CAP_SYS_ADMIN, as the pid-namespace tests do): a
//! small tmpfs to fill, a folder made read-only in place, and a FUSE share of the type sshfs
//! reports.

use super::process::Guard;
use super::{wait_for, STEP};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A small tmpfs, unmounted when dropped: a filesystem the test can fill.
pub struct Tmpfs {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fs");
        std::fs::create_dir(&path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a tmpfs needs CAP_SYS_ADMIN, as the pid-namespace tests do"
        );
        Tmpfs { _dir: dir, path }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// A folder made read-only in place by a read-only bind mount over it: reads go on, writes fail
/// with EROFS even for root, as a replica's folder does when its permissions or its disk refuse
/// writes. Writable again when dropped.
pub struct ReadOnly {
    path: PathBuf,
}

impl ReadOnly {
    pub fn mount(path: &Path) -> Self {
        let run = |args: &[&str]| {
            let status = Command::new("mount")
                .args(args)
                .arg(path)
                .arg(path)
                .status();
            assert!(
                status.unwrap().success(),
                "a read-only bind mount needs CAP_SYS_ADMIN, as the pid-namespace tests do"
            );
        };
        run(&["--bind"]);
        let ro = ReadOnly {
            path: path.to_path_buf(),
        };
        let status = Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(path)
            .status();
        assert!(status.unwrap().success(), "remounting {path:?} read-only");
        ro
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

/// A folder served through FUSE by bindfs with the subtype sshfs, so the kernel lists it in
/// `/proc/self/mountinfo` as `fuse.sshfs`, exactly as a real sshfs mount: what sqlite-ops sees of
/// a network share (its type decides, and a share's `statvfs` is never called). Unmounted, and
/// bindfs (run in the foreground under a [`Guard`]) stopped, when dropped.
pub struct Share {
    pub path: PathBuf,
    // Dropped in this order: bindfs stops after the unmount, the folders go last.
    _bindfs: Guard,
    _dir: tempfile::TempDir,
}

impl Share {
    pub fn mount() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (backing, path) = (dir.path().join("backing"), dir.path().join("share"));
        std::fs::create_dir(&backing).unwrap();
        std::fs::create_dir(&path).unwrap();
        let bindfs = Guard::spawn(
            Command::new("bindfs")
                .args(["-f", "-o", "subtype=sshfs,fsname=tester@127.0.0.1:/data"])
                .args([&backing, &path])
                .stdout(Stdio::null()),
        )
        .expect("bindfs runs (scripts/test installs it)");
        wait_for(STEP, "the FUSE share mounted", || {
            mounted(&path).then_some(())
        });
        Share {
            path,
            _bindfs: bindfs,
            _dir: dir,
        }
    }
}

/// Whether `path` is a mount point of type `fuse.sshfs`.
fn mounted(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let point = format!(" {} ", path.display());
    mounts
        .lines()
        .any(|l| l.contains(&point) && l.contains(" - fuse.sshfs "))
}

impl Drop for Share {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
