//! Listing a folder tree of Litestream's (its local state, a file replica) and remembering it:
//! a tree whose folders have not changed is not listed again, its files' sizes and times are
//! read by one `stat` each, so an idle fleet's reads cost stats, not directory reads.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A directory or file of Litestream's that could not be read, with the path and the cause
/// (`Display` carries both, as they reach the status page and the log).
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub struct ReadError {
    pub path: PathBuf,
    pub source: io::Error,
}

impl ReadError {
    pub(super) fn at(path: &Path) -> impl FnOnce(io::Error) -> ReadError + '_ {
        move |source| ReadError {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// One listed file or object, its key relative to the replica root with `/` separators
/// (`ltx/0/…ltx` on files, `0000/…ltx` on S3, `generations/<gen>/wal/…wal.lz4` for v0.3).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub modified: SystemTime,
    /// Its size in bytes.
    pub size: u64,
}

/// A folder's stamp: what changes when an entry is added to it, removed or renamed.
type Stamp = (SystemTime, u64);

/// A folder changed this close before its listing began may change again within the same tick
/// of its filesystem's clock (a second on some) without its stamp moving: such a listing is not
/// trusted, and the next read lists again.
const RACY: Duration = Duration::from_secs(2);

/// A tree's last listing, and the stamp each of its folders had just before it was read.
#[derive(Debug, Default)]
pub struct Listing {
    /// Each folder walked, by its key relative to the root ("" for the root).
    dirs: Vec<(String, Stamp)>,
    entries: Vec<Entry>,
    /// Whether the listing can stand for the tree while the stamps hold.
    trusted: bool,
}

impl Listing {
    /// The files under `root`, `depth` folders deep, keys relative to it with `/` separators:
    /// listed again when a folder's stamp moved (or the last listing was not trusted), else the
    /// last listing with each file's size and time read again. A folder that cannot be read is
    /// an error, never an empty tree; an entry that vanishes while listed is skipped
    /// (Litestream removes compacted files all the time).
    pub fn read(&mut self, root: &Path, depth: u32) -> Result<(), ReadError> {
        if !(self.trusted && self.refresh(root)) {
            self.dirs.clear();
            self.entries.clear();
            let began = SystemTime::now();
            walk(root, "", depth, self)?;
            // Kept until the tree changes, by every replica of a fleet: no spare room.
            self.dirs.shrink_to_fit();
            self.entries.shrink_to_fit();
            let settled = began.checked_sub(RACY).unwrap_or(SystemTime::UNIX_EPOCH);
            self.trusted = self.dirs.iter().all(|(_, (mtime, _))| *mtime < settled);
        }
        Ok(())
    }

    /// The files of the last read.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Whether the last read listed the folder `key` (relative to the root).
    pub fn has_dir(&self, key: &str) -> bool {
        self.dirs.iter().any(|(k, _)| k == key)
    }

    /// Reads the folders' stamps and the files' sizes and times again; `false` when a folder
    /// changed or a file is gone (the tree must be listed again).
    fn refresh(&mut self, root: &Path) -> bool {
        let same = self.dirs.iter().all(|(key, stamp)| {
            std::fs::metadata(root.join(key)).is_ok_and(|m| stamp_of(&m) == Some(*stamp))
        });
        // Not following links, as the listing's own entries did not.
        same && self.entries.iter_mut().all(|e| {
            let Ok(m) = std::fs::symlink_metadata(root.join(&e.key)) else {
                return false;
            };
            let Ok(modified) = m.modified() else {
                return false;
            };
            (e.modified, e.size) = (modified, m.len());
            true
        })
    }
}

fn stamp_of(m: &std::fs::Metadata) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    Some((m.modified().ok()?, m.ino()))
}

/// Lists `dir` (key `prefix`) into `listing`, its stamp taken before its entries are read, so
/// that a change during the read moves the stamp past the one kept.
fn walk(dir: &Path, prefix: &str, depth: u32, listing: &mut Listing) -> Result<(), ReadError> {
    let stamp = std::fs::metadata(dir).map_err(ReadError::at(dir))?;
    let stamp = stamp_of(&stamp).ok_or_else(|| {
        ReadError::at(dir)(io::Error::new(io::ErrorKind::Unsupported, "no times"))
    })?;
    listing.dirs.push((prefix.to_string(), stamp));
    let entries = std::fs::read_dir(dir).map_err(ReadError::at(dir))?;
    for e in entries {
        let e = e.map_err(ReadError::at(dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let mut key = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let path = e.path();
        // The directory listing says what each entry is: a folder costs no stat of its own (a
        // filesystem that does not say is asked by the stat).
        let listed_dir = e.file_type().is_ok_and(|t| t.is_dir());
        let m = match listed_dir {
            true => None,
            false => match e.metadata() {
                Ok(m) => Some(m),
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(ReadError::at(&path)(err)),
            },
        };
        let Some(m) = m.filter(|m| !m.is_dir()) else {
            if depth > 0 {
                match walk(&path, &key, depth - 1, listing) {
                    Err(err) if err.source.kind() == io::ErrorKind::NotFound => {
                        // Gone while listed: what is kept of it must not stand for it.
                        listing.dirs.retain(|(k, _)| !is_under(k, &key));
                        listing.entries.retain(|e| !is_under(&e.key, &key));
                    }
                    other => other?,
                }
            }
            continue;
        };
        key.shrink_to_fit();
        listing.entries.push(Entry {
            key,
            modified: m.modified().map_err(ReadError::at(&path))?,
            size: m.len(),
        });
    }
    Ok(())
}

/// Whether `key` is the folder `dir` or under it.
fn is_under(key: &str, dir: &str) -> bool {
    key.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the tree and returns its keys, sorted.
    fn listed(l: &mut Listing, root: &Path) -> Vec<String> {
        l.read(root, 3).unwrap();
        let mut k: Vec<String> = l.entries().iter().map(|e| e.key.clone()).collect();
        k.sort();
        k
    }

    /// A file added, removed, grown or renamed is seen by the next read, whether the tree was
    /// listed again or only its stamps read; an unchanged tree is not listed again.
    #[test]
    fn a_remembered_listing_sees_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("ltx/0")).unwrap();
        std::fs::write(root.join("ltx/0/a.ltx"), b"1").unwrap();
        // Folders changed long ago: the listing is trusted.
        let old = SystemTime::now() - Duration::from_secs(60);
        let age = |p: &Path| {
            let f = std::fs::File::open(p).unwrap();
            f.set_modified(old).unwrap();
        };
        let age_all = || ["", "ltx", "ltx/0"].iter().for_each(|d| age(&root.join(d)));
        age_all();
        let mut l = Listing::default();
        assert_eq!(listed(&mut l, root), ["ltx/0/a.ltx"]);
        assert!(l.trusted);

        // Grown in place: the folder's stamp holds, the file's stat says.
        std::fs::write(root.join("ltx/0/a.ltx"), b"12345").unwrap();
        age_all();
        l.read(root, 3).unwrap();
        assert_eq!(l.entries()[0].size, 5);
        assert!(l.trusted, "read by stats, not listed again");

        // Added, then removed: the folder's stamp moves.
        std::fs::write(root.join("ltx/0/b.ltx"), b"1").unwrap();
        assert_eq!(listed(&mut l, root), ["ltx/0/a.ltx", "ltx/0/b.ltx"]);
        assert!(!l.trusted, "changed just now: not trusted");
        std::fs::remove_file(root.join("ltx/0/a.ltx")).unwrap();
        assert_eq!(listed(&mut l, root), ["ltx/0/b.ltx"]);

        // Even with the folder's time put back, a removed file fails its stat.
        age_all();
        l.read(root, 3).unwrap();
        assert!(l.trusted);
        std::fs::remove_file(root.join("ltx/0/b.ltx")).unwrap();
        age_all();
        assert!(listed(&mut l, root).is_empty());

        // A new level, and the root gone.
        std::fs::create_dir_all(root.join("ltx/1")).unwrap();
        std::fs::write(root.join("ltx/1/c.ltx"), b"1").unwrap();
        assert_eq!(listed(&mut l, root), ["ltx/1/c.ltx"]);
        std::fs::remove_dir_all(root).unwrap();
        let err = l.read(root, 3).unwrap_err();
        assert_eq!(err.path, root);
    }

    #[test]
    fn under_a_folder_means_below_it_not_beside_it() {
        assert!(is_under("ltx/1", "ltx/1") && is_under("ltx/1/a.ltx", "ltx/1"));
        assert!(!is_under("ltx/10/a.ltx", "ltx/1"));
    }
}
