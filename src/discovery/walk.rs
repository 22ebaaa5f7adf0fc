//! The I/O of discovery: walks a pattern's folder and keeps the files that match and are
//! SQLite databases.

use super::pattern::{is_litestream_folder, is_sidecar, is_sqlite, Pattern};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Files found not to be SQLite, by path: their size and modification time then.
#[derive(Debug, Default, Clone)]
pub struct NotSqlite(HashMap<PathBuf, (u64, Option<SystemTime>)>);

impl NotSqlite {
    /// Forgets the files not seen in the last walk (`keep` says which were).
    fn retain(&mut self, keep: impl Fn(&Path) -> bool) {
        self.0.retain(|p, _| keep(p));
    }
}

/// A folder's stamp: what changes when an entry is added to it, removed or renamed.
type Stamp = (SystemTime, u64);

/// A folder changed this close before a walk began may change again within the same tick of
/// its filesystem's clock without its stamp moving: such a walk does not stand for the next.
const RACY: std::time::Duration = std::time::Duration::from_secs(2);

/// A pattern's last walk: each folder it went through with its stamp, and what it found. It
/// stands for the next walk while no folder moved and no file passed over as not SQLite (yet)
/// changed, so an idle fleet's folder of ten thousand tenants costs a `stat` a folder.
#[derive(Debug, Default, Clone)]
pub struct LastWalk {
    /// The pattern walked (`Pattern::text`).
    pattern: String,
    dirs: Vec<(PathBuf, Stamp)>,
    found: Vec<PathBuf>,
    trusted: bool,
}

impl LastWalk {
    /// Whether the last walk's finds still hold: every folder's stamp as it was, and every
    /// file under the root found not to be SQLite unchanged.
    fn holds(&self, root: &Path, not_sqlite: &NotSqlite) -> bool {
        self.trusted
            && self
                .dirs
                .iter()
                .all(|(dir, stamp)| stamp_of(dir) == Some(*stamp))
            && not_sqlite.0.iter().all(|(path, stamp)| {
                !path.starts_with(root)
                    || std::fs::metadata(path).ok().map(|m| file_stamp(&m)) == Some(*stamp)
            })
    }
}

fn stamp_of(dir: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(dir).ok()?;
    Some((m.modified().ok()?, m.ino()))
}

fn file_stamp(meta: &std::fs::Metadata) -> (u64, Option<SystemTime>) {
    (meta.len(), meta.modified().ok())
}

/// [`expand`], or the last walk's finds again while they hold (see [`LastWalk`]).
pub fn expand_again(
    pattern: &Pattern,
    known: impl Fn(&Path) -> bool,
    not_sqlite: &mut NotSqlite,
    last: &mut LastWalk,
) -> Vec<PathBuf> {
    if last.pattern == pattern.text && last.holds(&pattern.root, not_sqlite) {
        return last.found.clone();
    }
    let began = SystemTime::now();
    let mut dirs = Vec::new();
    let found = walk(pattern, known, not_sqlite, &mut dirs);
    let settled = began.checked_sub(RACY).unwrap_or(SystemTime::UNIX_EPOCH);
    // A walk that could not stat a folder, or passed over a path it could not read, is not
    // remembered: what changes there would not move a stamp it holds.
    let trusted = dirs
        .iter()
        .all(|(_, stamp)| stamp.is_some_and(|(mtime, _)| mtime < settled));
    *last = LastWalk {
        pattern: pattern.text.clone(),
        dirs: dirs
            .into_iter()
            .filter_map(|(d, s)| Some((d, s?)))
            .collect(),
        found: found.clone(),
        trusted,
    };
    last.dirs.shrink_to_fit();
    found
}

/// The SQLite databases matching `pattern` now, sorted by path. `known` files (already
/// watched) are taken without reading them again. A folder that does not exist yet is no match
/// and no error; other walk errors are logged at debug level and skipped.
///
/// Reads the first 16 bytes of a file it does not know yet, read-only; a file that is not
/// SQLite (or not yet: an empty file a tenant is being created in) is remembered by its size
/// and modification time and read again only once they change.
pub fn expand(
    pattern: &Pattern,
    known: impl Fn(&Path) -> bool,
    not_sqlite: &mut NotSqlite,
) -> Vec<PathBuf> {
    walk(pattern, known, not_sqlite, &mut Vec::new())
}

/// [`expand`], noting in `dirs` each folder walked with its stamp (`None`: it could not be
/// read, nor a path under it, so the walk does not stand for the next).
fn walk(
    pattern: &Pattern,
    known: impl Fn(&Path) -> bool,
    not_sqlite: &mut NotSqlite,
    dirs: &mut Vec<(PathBuf, Option<Stamp>)>,
) -> Vec<PathBuf> {
    let mut walk = walkdir::WalkDir::new(&pattern.root).follow_links(false);
    if let Some(depth) = pattern.depth {
        walk = walk.max_depth(depth);
    }
    let mut found = Vec::new();
    let mut seen_other = Vec::new();
    let entries = walk.into_iter().filter_entry(|e| {
        !(e.file_type().is_dir() && is_litestream_folder(&e.file_name().to_string_lossy()))
    });
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                if e.depth() > 0
                    || e.io_error().map(|io| io.kind()) != Some(std::io::ErrorKind::NotFound)
                {
                    tracing::debug!(pattern = %pattern.text, error = %e, "skipped while discovering databases");
                }
                dirs.push((e.path().unwrap_or(&pattern.root).to_path_buf(), None));
                continue;
            }
        };
        let path = entry.path();
        if entry.file_type().is_dir() {
            dirs.push((path.to_path_buf(), stamp_of(path)));
            continue;
        }
        if is_sidecar(&entry.file_name().to_string_lossy()) || !pattern.matches(path) {
            continue;
        }
        if known(path) {
            found.push(path.to_path_buf());
            continue;
        }
        // A symlink is followed here, to what the application opens.
        let Ok(meta) = std::fs::metadata(path) else {
            dirs.push((path.to_path_buf(), None));
            continue;
        };
        if !meta.is_file() {
            dirs.push((path.to_path_buf(), None));
            continue;
        }
        let stamp = file_stamp(&meta);
        if not_sqlite.0.get(path) == Some(&stamp) {
            seen_other.push(path.to_path_buf());
            continue;
        }
        if starts_as_sqlite(path) {
            not_sqlite.0.remove(path);
            found.push(path.to_path_buf());
        } else {
            not_sqlite.0.insert(path.to_path_buf(), stamp);
            seen_other.push(path.to_path_buf());
        }
    }
    let seen: std::collections::HashSet<&Path> = seen_other.iter().map(|p| p.as_path()).collect();
    not_sqlite.retain(|p| seen.contains(p) || !p.starts_with(&pattern.root));
    found.sort();
    found
}

/// Whether the file at `path` begins with SQLite's header (opened read-only, 16 bytes read).
pub(super) fn starts_as_sqlite(path: &Path) -> bool {
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| is_sqlite(&head))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sqlite(path: &Path) {
        std::fs::write(path, b"SQLite format 3\0\x10\x00 and the rest of a page").unwrap();
    }

    /// Sets a folder's modification time to a minute before the test began.
    fn aged(path: &Path, began: SystemTime) {
        let f = std::fs::File::open(path).unwrap();
        f.set_modified(began - Duration::from_secs(60)).unwrap();
    }

    #[test]
    fn a_walk_stands_for_the_next_until_a_folder_or_a_file_passed_over_changes() {
        let began = SystemTime::now();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tenants");
        std::fs::create_dir_all(root.join("eu")).unwrap();
        sqlite(&root.join("a.db"));
        sqlite(&root.join("eu/b.db"));
        std::fs::write(root.join("c.db"), b"").unwrap(); // being created: not SQLite yet
        let pattern = Pattern::parse(&format!("{}/**/*.db", root.display())).unwrap();
        let (mut not_sqlite, mut last) = (NotSqlite::default(), LastWalk::default());
        let again = |ns: &mut NotSqlite, last: &mut LastWalk| {
            let found = expand_again(&pattern, |_| false, ns, last);
            let names: Vec<String> = found
                .iter()
                .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
                .collect();
            names
        };
        // Just changed: not trusted, walked again each time.
        assert_eq!(again(&mut not_sqlite, &mut last), ["a.db", "eu/b.db"]);
        assert!(!last.trusted);
        for d in [&root, &root.join("eu")] {
            aged(d, began);
        }
        assert_eq!(again(&mut not_sqlite, &mut last), ["a.db", "eu/b.db"]);
        assert!(last.trusted);
        // A file added behind the stamps' back (the folder's time set back) is not seen: the
        // last walk stood for this one.
        sqlite(&root.join("eu/hidden.db"));
        aged(&root.join("eu"), began);
        assert_eq!(again(&mut not_sqlite, &mut last), ["a.db", "eu/b.db"]);
        // A file added as files are, in a subfolder: its folder's stamp moved.
        sqlite(&root.join("eu/d.db"));
        assert_eq!(
            again(&mut not_sqlite, &mut last),
            ["a.db", "eu/b.db", "eu/d.db", "eu/hidden.db"]
        );
        for d in [&root, &root.join("eu")] {
            aged(d, began);
        }
        again(&mut not_sqlite, &mut last);
        assert!(last.trusted);
        // The file passed over gets its header in place: no folder moved, and it is found.
        sqlite(&root.join("c.db"));
        let found = again(&mut not_sqlite, &mut last);
        assert_eq!(
            found,
            ["a.db", "c.db", "eu/b.db", "eu/d.db", "eu/hidden.db"]
        );
        // A file removed: its folder moved.
        std::fs::remove_file(root.join("a.db")).unwrap();
        assert_eq!(
            again(&mut not_sqlite, &mut last),
            ["c.db", "eu/b.db", "eu/d.db", "eu/hidden.db"]
        );
    }
}
