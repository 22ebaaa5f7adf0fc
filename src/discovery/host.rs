//! What the host shows there is to watch (`run` given nothing, `init`): the SQLite files its
//! processes hold open, from `/proc/<pid>/fd`, and Litestream's config where Litestream looks
//! for it. A candidate's first 16 bytes are read; nothing is opened for writing.

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

impl OpenDatabases {
    /// The processes whose open files could not be listed, in one sentence with what to do:
    /// the first few named, with the first one's reason; `None` when there were none.
    pub fn hidden_summary(&self) -> Option<String> {
        let (_, why) = self.hidden.first()?;
        let named: Vec<String> = self
            .hidden
            .iter()
            .take(5)
            .map(|(p, _)| p.to_string())
            .collect();
        let more = match self.hidden.len() - named.len() {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        Some(format!(
            "the open files of {} process(es) could not be listed ({}{more}: {why}); run as their user or as root to watch their databases, or give them with --db",
            self.hidden.len(),
            named.join(", "),
        ))
    }
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
/// process) and any other sqlite-ops: each descriptor's target read from `fd/`, and a
/// candidate counted when it is a regular file that begins with SQLite's header.
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
        // Another sqlite-ops holds what it watches open, read-only: it is no reason to watch.
        if std::fs::read_to_string(dir.join("comm")).is_ok_and(|c| c.trim_end() == "sqlite-ops") {
            continue;
        }
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

/// Litestream's config where Litestream itself looks when given none, and where that is:
/// `$LITESTREAM_CONFIG` (`var`), else `/etc/litestream.yml`; `None` when that file does not
/// exist.
pub fn litestream_config(var: Option<std::ffi::OsString>) -> Option<(PathBuf, String)> {
    let (path, how) = match var {
        Some(v) => (PathBuf::from(v), format!("${LITESTREAM_CONFIG_VAR}")),
        None => (
            PathBuf::from(LITESTREAM_DEFAULT_CONFIG),
            "Litestream's default path".to_string(),
        ),
    };
    path.is_file().then_some((path, how))
}

/// The `db` label of a database found on the host: its path without the leading `/` and the
/// extension (`/srv/pb_data/data.db` is `srv/pb_data/data`). The path alone decides it, so that
/// it stays the same whatever else is open, through restarts and reloads. Pure.
pub fn label(path: &Path) -> String {
    let text = path.with_extension("").to_string_lossy().into_owned();
    text.trim_start_matches('/').to_string()
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
    fn a_label_is_the_path_alone() {
        assert_eq!(label(Path::new("/srv/pb_data/data.db")), "srv/pb_data/data");
        assert_eq!(
            label(Path::new("/var/lib/app/jobs.sqlite")),
            "var/lib/app/jobs"
        );
        assert_eq!(label(Path::new("/data/app")), "data/app");
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
