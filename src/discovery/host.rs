//! What the host itself says there is to watch, for `run` with nothing given and for `init`: the
//! SQLite files its processes hold open (from `/proc/<pid>/fd`), and Litestream's config at its
//! default path. Only a candidate's first 16 bytes are read; nothing is opened for writing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where Litestream looks for its config when given none, and the variable that overrides it.
pub const LITESTREAM_DEFAULT_CONFIG: &str = "/etc/litestream.yml";
pub const LITESTREAM_CONFIG_VAR: &str = "LITESTREAM_CONFIG";

/// A process, as `/proc` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: i32,
    /// Its command name (`/proc/<pid>/comm`).
    pub comm: String,
    pub uid: Option<u32>,
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({}", self.pid, self.comm)?;
        if let Some(uid) = self.uid {
            write!(f, ", uid {uid}")?;
        }
        write!(f, ")")
    }
}

/// What a look through `/proc` found.
#[derive(Debug, Default)]
pub struct OpenDatabases {
    /// Each database held open, with the first process (lowest pid) seen holding it.
    pub found: BTreeMap<PathBuf, Process>,
    /// Processes whose open files this user may not list, and why.
    pub hidden: Vec<(Process, String)>,
}

/// The database a descriptor's target belongs to: `app.db-wal`, `-shm` and `-journal` are
/// `app.db`'s; `None` for what is no file on disk (sockets, pipes, a deleted file). Pure.
pub fn database_of(target: &Path) -> Option<PathBuf> {
    let text = target.to_str()?;
    if !text.starts_with('/') || text.ends_with(" (deleted)") {
        return None;
    }
    for prefix in ["/proc/", "/sys/", "/dev/"] {
        if text.starts_with(prefix) {
            return None;
        }
    }
    let base = ["-wal", "-shm", "-journal"]
        .iter()
        .find_map(|s| text.strip_suffix(s))
        .unwrap_or(text);
    Some(PathBuf::from(base))
}

/// The SQLite databases that processes under `proc` (`/proc`) hold open, but `own` (this
/// process): each descriptor's target read from `fd/`, and a candidate counted when it is a
/// regular file that begins with SQLite's header.
pub fn open_databases(proc: &Path, own: u32) -> OpenDatabases {
    let mut out = OpenDatabases::default();
    let Ok(entries) = std::fs::read_dir(proc) else {
        return out;
    };
    let mut pids: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid| *pid as u32 != own)
        .collect();
    pids.sort_unstable();
    let mut rejected = std::collections::HashSet::new();
    for pid in pids {
        let dir = proc.join(pid.to_string());
        let fds = match std::fs::read_dir(dir.join("fd")) {
            Ok(fds) => fds,
            // Gone meanwhile, or a kernel thread: nothing to say.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            // A kernel thread (no command line) holds no file of anyone's.
            Err(_) if std::fs::read(dir.join("cmdline")).is_ok_and(|c| c.is_empty()) => continue,
            Err(e) => {
                out.hidden.push((process(&dir, pid), e.to_string()));
                continue;
            }
        };
        for fd in fds.flatten() {
            let Some(db) = std::fs::read_link(fd.path())
                .ok()
                .as_deref()
                .and_then(database_of)
            else {
                continue;
            };
            if out.found.contains_key(&db) || rejected.contains(&db) {
                continue;
            }
            if std::fs::metadata(&db).is_ok_and(|m| m.is_file())
                && super::walk::starts_as_sqlite(&db)
            {
                out.found.insert(db, process(&dir, pid));
            } else {
                rejected.insert(db);
            }
        }
    }
    out
}

fn process(dir: &Path, pid: i32) -> Process {
    let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
    let uid = std::fs::metadata(dir)
        .ok()
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    Process {
        pid,
        comm: comm.trim_end().to_string(),
        uid,
    }
}

/// Litestream's config where Litestream itself looks when given none: `$LITESTREAM_CONFIG`,
/// else `/etc/litestream.yml`; `None` when that file does not exist.
pub fn litestream_config(var: Option<std::ffi::OsString>) -> Option<PathBuf> {
    let path = var.map_or_else(|| PathBuf::from(LITESTREAM_DEFAULT_CONFIG), PathBuf::from);
    path.is_file().then_some(path)
}

/// A `db` label for each path: its file name without the extension, or, where two share one,
/// the path without its leading `/` and extension. Pure.
pub fn names(paths: &[&Path]) -> Vec<String> {
    let stem = |p: &Path| p.file_stem().map(|s| s.to_string_lossy().into_owned());
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for p in paths {
        *count.entry(stem(p).unwrap_or_default()).or_default() += 1;
    }
    paths
        .iter()
        .map(|p| match stem(p) {
            Some(s) if count[&s] == 1 => s,
            _ => {
                let text = p.with_extension("").to_string_lossy().into_owned();
                text.trim_start_matches('/').to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_names_its_database() {
        let db = |s: &str| database_of(Path::new(s));
        assert_eq!(db("/srv/app.db"), Some(PathBuf::from("/srv/app.db")));
        assert_eq!(db("/srv/app.db-wal"), Some(PathBuf::from("/srv/app.db")));
        assert_eq!(db("/srv/app.db-shm"), Some(PathBuf::from("/srv/app.db")));
        assert_eq!(
            db("/srv/app.db-journal"),
            Some(PathBuf::from("/srv/app.db"))
        );
        assert_eq!(db("socket:[12345]"), None);
        assert_eq!(db("pipe:[7]"), None);
        assert_eq!(db("/srv/old.db (deleted)"), None);
        assert_eq!(db("/dev/null"), None);
        assert_eq!(db("/proc/1/status"), None);
    }

    #[test]
    fn names_are_stems_unless_two_share_one() {
        let paths = [
            Path::new("/srv/a/app.db"),
            Path::new("/srv/b/app.db"),
            Path::new("/srv/jobs.sqlite"),
        ];
        assert_eq!(names(&paths), ["srv/a/app", "srv/b/app", "jobs"]);
    }

    #[test]
    fn this_process_finds_a_database_it_holds_open_and_not_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("held.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x);")
            .unwrap();
        let me = std::process::id();
        let seen = open_databases(Path::new("/proc"), 0);
        let held = seen.found.get(&path).expect("found");
        assert_eq!(held.pid as u32, me);
        let without_me = open_databases(Path::new("/proc"), me);
        assert!(!without_me.found.contains_key(&path), "not this process");
        drop(conn);
    }
}
