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
                continue;
            }
        };
        let path = entry.path();
        if entry.file_type().is_dir()
            || is_sidecar(&entry.file_name().to_string_lossy())
            || !pattern.matches(path)
        {
            continue;
        }
        if known(path) {
            found.push(path.to_path_buf());
            continue;
        }
        // A symlink is followed here, to what the application opens.
        let Ok(meta) = std::fs::metadata(path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let stamp = (meta.len(), meta.modified().ok());
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
