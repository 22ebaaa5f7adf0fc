//! One watched file (database, `-wal` or `-shm`): a read-only descriptor kept open for the
//! file's life and reopened only when the path names a new inode, plus `pread` helpers.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// What a refresh found at the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    Missing,
    Present {
        size: u64,
        /// The path names another file than at the previous refresh (it was replaced, or it
        /// reappeared and cannot be shown to be the file that went).
        replaced: bool,
    },
}

/// An open file: the descriptor, the identity of what it names, and its share of the budget.
#[derive(Debug)]
struct Open {
    file: File,
    dev: u64,
    ino: u64,
    _slot: super::descriptors::Slot,
}

/// What tells one file from another across a close: device, inode and birth time. An inode
/// number is given again to the next file created once it is freed; a birth time is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    /// `None` where the filesystem does not keep it: such a file is never taken for the same.
    born: Option<SystemTime>,
}

impl Identity {
    fn of(m: &std::fs::Metadata) -> Self {
        Identity {
            dev: m.dev(),
            ino: m.ino(),
            born: m.created().ok(),
        }
    }

    /// Whether `other` is surely this file.
    fn surely(&self, other: &Identity) -> bool {
        self.born.is_some() && self == other
    }
}

/// A path and, while it exists, a read-only descriptor of the inode it names.
///
/// Why keep descriptors open: closing any descriptor of a file drops every POSIX lock this
/// process holds on it. The daemon holds no SQLite connection, but the rule keeps it safe if one
/// ever shares the process. Why close on vanish: an open descriptor of a deleted WAL would keep
/// its disk space allocated.
#[derive(Debug)]
pub struct WatchedFile {
    path: PathBuf,
    open: Option<Open>,
    /// The file last opened, kept when it is closed: one that comes back (renamed away and
    /// back, unreadable for a while) is the same file, not a replacement.
    last: Option<Identity>,
    /// When the path itself was last looked up.
    path_checked_at: Option<Instant>,
    /// The descriptor was closed by [`WatchedFile::release`], not because the file went: the
    /// same device and inode are then the same file even where no birth time is kept.
    released: bool,
}

/// How long an open file with a link count above 0 is trusted to still be what the path names.
pub const PATH_RECHECK: Duration = Duration::from_secs(5);

impl WatchedFile {
    pub fn new(path: PathBuf) -> Self {
        WatchedFile {
            path,
            open: None,
            last: None,
            path_checked_at: None,
            released: false,
        }
    }

    /// Closes the descriptor, giving its share of the budget back, while remembering the file:
    /// the next [`WatchedFile::refresh`] opens it again and knows it for the same file.
    pub fn release(&mut self) {
        if self.open.take().is_some() {
            self.released = true;
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Device and inode of the open file, or of the file last open when its descriptor was
    /// released (whose locks `/proc/locks` still lists under them).
    pub fn identity(&self) -> Option<(u64, u64)> {
        match (&self.open, &self.last) {
            (Some(o), _) => Some((o.dev, o.ino)),
            (None, Some(last)) if self.released => Some((last.dev, last.ino)),
            _ => None,
        }
    }

    pub fn file(&self) -> Option<&File> {
        self.open.as_ref().map(|o| &o.file)
    }

    /// Makes the next [`Self::refresh`] look the path up again: something was renamed or
    /// written in the folder (see `poller::changes`), maybe over this file.
    pub fn recheck_path(&mut self) {
        self.path_checked_at = None;
    }

    /// Stats the path, (re)opening it when it names a new inode and closing it when it is gone.
    /// Anything but a regular file is an error, and is never opened (a FIFO could block).
    ///
    /// While the open file still has a name (`fstat` link count above 0), the path itself is
    /// looked up again only every [`PATH_RECHECK`]: a path walk costs more than the rest of a
    /// poll, and a file deleted or renamed over loses its last link at once. Only a replacement
    /// of a file that has other hard links waits for the recheck.
    pub fn refresh(&mut self) -> io::Result<FileStatus> {
        if let Some(Open { file: f, .. }) = &self.open {
            if self
                .path_checked_at
                .is_some_and(|t| t.elapsed() < PATH_RECHECK)
            {
                let m = f.metadata()?;
                if m.nlink() > 0 {
                    return Ok(FileStatus::Present {
                        size: m.len(),
                        replaced: false,
                    });
                }
            }
        }
        self.path_checked_at = Some(Instant::now());
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.open = None;
                self.released = false;
                return Ok(FileStatus::Missing);
            }
            Err(e) => {
                self.open = None;
                return Err(e);
            }
        };
        if !meta.is_file() {
            self.open = None;
            return Err(not_a_regular_file(&meta));
        }
        let same = matches!(&self.open, Some(o) if o.dev == meta.dev() && o.ino == meta.ino());
        let mut replaced = false;
        if !same {
            let now = Identity::of(&meta);
            replaced = match (&self.open, &self.last) {
                (Some(_), _) => true,
                (None, Some(last)) if self.released => *last != now,
                (None, Some(last)) => !last.surely(&now),
                (None, None) => false,
            };
            self.released = false;
            // The old descriptor (and its slot) goes first, so a replacement needs no second.
            self.open = None;
            let slot = super::descriptors::acquire()?;
            let file = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
                .open(&self.path)?;
            // The path may have been replaced between stat and open: record what we opened.
            let opened = file.metadata()?;
            self.open = Some(Open {
                file,
                dev: opened.dev(),
                ino: opened.ino(),
                _slot: slot,
            });
            self.last = Some(Identity::of(&opened));
            return Ok(FileStatus::Present {
                size: opened.len(),
                replaced,
            });
        }
        Ok(FileStatus::Present {
            size: meta.len(),
            replaced,
        })
    }

    /// Reads up to `buf.len()` bytes at `offset` with `pread`, stopping early only at end of file.
    /// Returns the number of bytes read (0 when the file is not open).
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let Some(file) = self.file() else {
            return Ok(0);
        };
        let mut done = 0;
        while done < buf.len() {
            match file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}

/// The error for a path that names something else than a regular file, saying what.
fn not_a_regular_file(meta: &std::fs::Metadata) -> io::Error {
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    };
    io::Error::new(io::ErrorKind::InvalidInput, format!("is {kind}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_renamed_away_and_back_is_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let mut w = WatchedFile::new(p.clone());
        assert!(matches!(
            w.refresh().unwrap(),
            FileStatus::Present {
                replaced: false,
                ..
            }
        ));
        let away = dir.path().join("away");
        std::fs::rename(&p, &away).unwrap();
        // As after PATH_RECHECK: the path is looked up again.
        w.path_checked_at = None;
        assert_eq!(w.refresh().unwrap(), FileStatus::Missing);
        std::fs::rename(&away, &p).unwrap();
        let back = w.refresh().unwrap();
        // Where the filesystem keeps birth times (statx), it is known to be the same file.
        let born = std::fs::metadata(&p).unwrap().created().is_ok();
        assert_eq!(
            back,
            FileStatus::Present {
                size: 3,
                replaced: !born
            }
        );
    }

    #[test]
    fn a_released_file_is_opened_again_as_the_same_file_and_a_replacement_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let mut w = WatchedFile::new(p.clone());
        w.refresh().unwrap();
        w.release();
        assert!(w.file().is_none(), "the descriptor is closed");
        std::fs::write(&p, b"abcd").unwrap();
        assert_eq!(
            w.refresh().unwrap(),
            FileStatus::Present {
                size: 4,
                replaced: false
            },
            "the same file, written meanwhile"
        );
        assert!(w.file().is_some());
        // Released, then replaced by rename while closed: a new file.
        w.release();
        let new = dir.path().join("new");
        std::fs::write(&new, b"xy").unwrap();
        std::fs::rename(&new, &p).unwrap();
        assert_eq!(
            w.refresh().unwrap(),
            FileStatus::Present {
                size: 2,
                replaced: true
            }
        );
    }

    #[test]
    fn follows_replacement_and_disappearance() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut w = WatchedFile::new(p.clone());
        assert_eq!(w.refresh().unwrap(), FileStatus::Missing);
        std::fs::write(&p, b"abc").unwrap();
        // First sight is not a replacement.
        assert_eq!(
            w.refresh().unwrap(),
            FileStatus::Present {
                size: 3,
                replaced: false
            }
        );
        assert_eq!(
            w.refresh().unwrap(),
            FileStatus::Present {
                size: 3,
                replaced: false
            }
        );
        let mut buf = [0u8; 8];
        assert_eq!(w.read_at(&mut buf, 1).unwrap(), 2);
        assert_eq!(&buf[..2], b"bc");
        let q = dir.path().join("g");
        std::fs::write(&q, b"hello").unwrap();
        std::fs::rename(&q, &p).unwrap();
        assert_eq!(
            w.refresh().unwrap(),
            FileStatus::Present {
                size: 5,
                replaced: true
            }
        );
        std::fs::remove_file(&p).unwrap();
        assert_eq!(w.refresh().unwrap(), FileStatus::Missing);
        assert!(w.file().is_none());
        // Coming back after it vanished is.
        std::fs::write(&p, b"x").unwrap();
        assert_eq!(
            w.refresh().unwrap(),
            FileStatus::Present {
                size: 1,
                replaced: true
            }
        );
    }

    #[test]
    fn refuses_directories_and_fifos_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WatchedFile::new(dir.path().to_path_buf());
        assert!(w.refresh().unwrap_err().to_string().contains("directory"));
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let mut w = WatchedFile::new(fifo);
        assert!(w.refresh().unwrap_err().to_string().contains("FIFO"));
    }
}
