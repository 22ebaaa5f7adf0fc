//! One restore drill, as a person would do it in a disaster: the real `litestream restore` into
//! a folder of its own under the scratch folder, at idle CPU and I/O priority, then the copy
//! checked ([`super::verify`]) and deleted.

use super::error::DrillError;
use super::position::Position;
use super::record::{self as drill, DrillResult, DrillSettings};
use super::verify;
use crate::format::shm::IndexHeader;
use crate::litestream::board::Observation;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Names of the drills' folders in the scratch folder; leftovers of a killed daemon are
/// removed at start (see [`clean_leftovers`]).
pub const FOLDER_PREFIX: &str = "sqlite-ops-drill-";

/// A database to drill.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub db: String,
    pub path: PathBuf,
    /// litestream.yml, passed to `litestream restore -config`.
    pub litestream_yml: PathBuf,
    /// A config of the database's own, written into the drill's folder and passed instead,
    /// when litestream.yml names it through a `dir:` entry (see `LitestreamDb::restore_yml`).
    pub restore_yml: Option<String>,
    /// The replica the copy comes from (its name and type): the database's first.
    pub replica: (String, String),
    pub settings: DrillSettings,
}

/// What the poller last saw of the live database.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Live {
    pub size: Option<u64>,
    /// The replica's lag as the poller last measured it (0 when it held every commit).
    pub lag: Option<f64>,
}

/// How a drill ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It ran to a verdict.
    Ran(DrillResult),
    /// It did not run, or Litestream refused how it was asked, for this reason: nothing is
    /// known of the backup.
    Refused(String),
    /// Not yet: the replica has not been read, or holds nothing yet (a database Litestream
    /// has only begun to replicate). Tried again soon; an empty replica that stays empty is
    /// the replication alerts' to page, then the stale drill's.
    NotYet(String),
    /// The daemon is stopping: it was cut short and cleaned up.
    Stopped,
}

/// Why a replica is not drilled yet, judged from the watcher's last read of it; `None` when it
/// holds something to restore.
fn not_yet(seen: Option<&Observation>) -> Option<String> {
    match seen {
        None => Some("the replica has not been read yet".into()),
        Some(o) if o.read_at.is_none() => Some(match &o.error {
            Some(e) => format!("the replica has not been read yet ({e})"),
            None => "the replica has not been read yet".into(),
        }),
        Some(o) if o.replica.is_none() => {
            Some("the replica holds nothing yet: Litestream has not written to it".into())
        }
        Some(_) => None,
    }
}

/// Runs one drill of `job`; `before` is the live database as the poller saw it when the drill
/// began, `replica()` the latest read of the replica (where its newest file says the live WAL
/// stood, and the positions).
///
/// Blocking; run off the async runtime. Whatever happens (a failure, the timeout, the daemon
/// stopping), the drill's folder is removed and Litestream's process group is killed before this
/// returns.
pub fn run(
    job: &Job,
    before: Live,
    replica: impl Fn() -> Option<Observation>,
    stop: &AtomicBool,
) -> Outcome {
    if let Err(why) = preflight(job, before.size.unwrap_or(0)) {
        return Outcome::Refused(why.to_string());
    }
    if let Some(why) = not_yet(replica().as_ref()) {
        return Outcome::NotYet(why);
    }
    let folder = match Folder::create(&job.settings.scratch_dir, &job.db) {
        Ok(f) => f,
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    let started = Instant::now();
    let deadline = started + job.settings.timeout;
    let copy = folder.path.join("restored.db");
    let log = folder.path.join("litestream.log");
    let mut result = DrillResult {
        data_age_seconds: before.lag,
        ..Default::default()
    };
    // Where the live WAL stands, then where the replica said it stood: read before the restore,
    // so that the copy cannot hold less than a replica that matched.
    let wal_before = live_wal(&job.path);
    let seen = replica();
    let restored = restore(job, &folder.path, &copy, &log, deadline, stop);
    let verdict = match restored {
        Err(Ended::Stopped) => return Outcome::Stopped,
        Err(Ended::Refused(why)) => return Outcome::Refused(why),
        Err(Ended::Failed(e)) => Err(DrillError::Restore(e)),
        Ok(()) => {
            result.restored_bytes = std::fs::metadata(&copy).ok().map(|m| m.len());
            let left = deadline.saturating_duration_since(Instant::now());
            verify::copy(&copy, left).and_then(|counts| {
                result.tables = Some(counts.len() as u64);
                result.rows = Some(counts.values().sum());
                let at = Position::read(wal_before, seen.as_ref(), before.lag);
                // The recovery point: 0 when proven; else the lag the poller measured, and
                // unknown rather than 0 when that read 0 but the copy could not be shown whole.
                result.data_age_seconds = match (at.proven(), before.lag) {
                    (Some(_), _) => Some(0.0),
                    (None, Some(l)) if l > 0.0 => Some(l),
                    (None, _) => None,
                };
                compare(job, &counts, &at, &mut result.compared)
            })
        }
    };
    drop(folder);
    result.duration_seconds = started.elapsed().as_secs_f64();
    result.finished_at = now();
    result.success = verdict.is_ok();
    if !result.success {
        // No sound copy, so no recovery point: never the 0 that means "proven whole".
        result.data_age_seconds = None;
    }
    result.error = verdict.err().map(|e| e.to_string());
    Outcome::Ran(result)
}

fn now() -> f64 {
    crate::units::epoch_seconds(SystemTime::now())
}

/// What stops a drill before its copy is checked.
enum Ended {
    /// Litestream ran the restore and it failed: the backup's fault until shown otherwise.
    Failed(String),
    /// Litestream refused how sqlite-ops asked (a config form, a flag): nothing is known.
    Refused(String),
    Stopped,
}

/// The live database's wal-index header, read from `-shm` as the poller reads it (a torn
/// header is read again, a few times).
fn live_wal(db: &Path) -> Result<IndexHeader, DrillError> {
    let mut shm_path = db.as_os_str().to_owned();
    shm_path.push("-shm");
    let shm_path = PathBuf::from(shm_path);
    let file = match std::fs::File::open(&shm_path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(DrillError::NotOpen),
        Err(e) => return Err(DrillError::Shm(e)),
        Ok(f) => f,
    };
    crate::probe::read_wal_index(&shm_path, |buf| {
        std::os::unix::fs::FileExt::read_at(&file, buf, 0)
    })
    .map(|idx| idx.header)
    .map_err(DrillError::WalIndex)
}

/// Compares the copy's rows with the live database's when its position is proven to be the
/// live one ([`Position`]), saying in `compared` what was compared; `Err` when they differ.
fn compare(
    job: &Job,
    copy: &verify::Counts,
    at: &Position,
    compared: &mut String,
) -> Result<(), DrillError> {
    let Some(wal) = at.proven() else {
        *compared = format!("not compared: {}", at.why_not());
        return Ok(());
    };
    let live = match verify::live(&job.path) {
        Err(why) => {
            *compared = format!("not compared: {why}");
            return Ok(());
        }
        Ok(live) => live,
    };
    if live_wal(&job.path).ok() != Some(*wal) {
        *compared = "not compared: the database was written during the drill".into();
        return Ok(());
    }
    *compared = "every table's rows equal the live database's (the replica held the live WAL's last commit, and nothing was written during the drill)".into();
    match verify::differences(copy, &live) {
        None => Ok(()),
        Some(d) => Err(DrillError::Differs(d)),
    }
}

/// What is checked before anything is restored: the binary and its version, the replica's
/// type, the room in the scratch folder.
fn preflight(job: &Job, size: u64) -> Result<(), DrillError> {
    let bin = &job.settings.litestream;
    let printed = version_of(bin)?;
    drill::supported_version(&printed)?;
    let (name, kind) = &job.replica;
    if kind != "file" && kind != "s3" {
        return Err(DrillError::ReplicaType {
            name: name.clone(),
            kind: kind.clone(),
        });
    }
    let scratch = &job.settings.scratch_dir;
    std::fs::create_dir_all(scratch).map_err(|source| DrillError::Scratch {
        path: scratch.clone(),
        source,
    })?;
    let free =
        crate::probe::filesystem::free_bytes(scratch).map_err(|source| DrillError::FreeSpace {
            path: scratch.clone(),
            source,
        })?;
    let needed = drill::room_needed(size);
    if free < needed {
        return Err(DrillError::NoRoom {
            path: scratch.clone(),
            free,
            needed,
            size,
        });
    }
    Ok(())
}

/// What `litestream version` prints, within 10 s (a binary that hangs is killed and refused).
fn version_of(bin: &Path) -> Result<String, DrillError> {
    let cannot = |why: String| DrillError::Binary {
        path: bin.to_path_buf(),
        why,
    };
    let mut cmd = Command::new(bin);
    cmd.arg("version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0);
    // SAFETY: only async-signal-safe system calls between fork and exec.
    unsafe {
        let parent = libc::getpid();
        cmd.pre_exec(move || die_with_parent(parent));
    }
    let child = cmd.spawn().map_err(|e| cannot(e.to_string()))?;
    let mut child = Group(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match child.0.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => return Err(cannot("`version` did not answer within 10s".into())),
            Err(e) => return Err(cannot(e.to_string())),
        }
    }
    let mut out = String::new();
    if let Some(mut stdout) = child.0.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
    }
    Ok(out)
}

/// The litestream.yml to restore with: the user's, or the database's own written into the
/// drill's folder.
fn config_file(job: &Job, folder: &Path) -> Result<PathBuf, Ended> {
    let Some(text) = &job.restore_yml else {
        return Ok(job.litestream_yml.clone());
    };
    let own = folder.join("litestream.yml");
    std::fs::write(&own, text)
        .map_err(|e| Ended::Refused(format!("cannot write in the scratch folder: {e}")))?;
    Ok(own)
}

/// Runs `litestream restore` into `copy` until it exits, the deadline passes or `stop` is set.
fn restore(
    job: &Job,
    folder: &Path,
    copy: &Path,
    log: &Path,
    deadline: Instant,
    stop: &AtomicBool,
) -> Result<(), Ended> {
    let yml = config_file(job, folder)?;
    let log_file = std::fs::File::create(log)
        .map_err(|e| Ended::Refused(format!("cannot write in the scratch folder: {e}")))?;
    let mut cmd = Command::new(&job.settings.litestream);
    cmd.arg("restore")
        .arg("-config")
        .arg(&yml)
        .arg("-o")
        .arg(copy)
        .arg(&job.path)
        .stdin(Stdio::null())
        .stdout(
            log_file
                .try_clone()
                .map_err(|e| Ended::Refused(e.to_string()))?,
        )
        .stderr(log_file)
        .process_group(0);
    // SAFETY: only async-signal-safe system calls between fork and exec.
    unsafe {
        let parent = libc::getpid();
        cmd.pre_exec(move || {
            lower_priority();
            die_with_parent(parent)
        });
    }
    let child = cmd.spawn().map_err(|e| {
        Ended::Refused(format!(
            "cannot start {}: {e}",
            job.settings.litestream.display()
        ))
    })?;
    let mut child = Group(child);
    let status = loop {
        match child.0.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                return Err(Ended::Refused(format!(
                    "waiting for litestream restore: {e}"
                )))
            }
        }
        if stop.load(Ordering::Relaxed) {
            return Err(Ended::Stopped);
        }
        if Instant::now() >= deadline {
            return Err(Ended::Failed(format!(
                "timed out after {}: litestream restore was killed",
                humantime::format_duration(job.settings.timeout)
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if status.success() {
        return Ok(());
    }
    let said = std::fs::read_to_string(log).unwrap_or_default();
    let said: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = said[said.len().saturating_sub(3)..].join(" / ");
    let what = format!("litestream restore failed ({status}): {tail}");
    match drill::refused_invocation(&tail) {
        Some(why) => Err(Ended::Refused(format!(
            "{what}: {why}, which says nothing about the backup"
        ))),
        None => Err(Ended::Failed(what)),
    }
}

/// Idle CPU and I/O priority for the restore: it competes with nothing the application does.
fn lower_priority() {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    const IOPRIO_CLASS_IDLE: libc::c_long = 3;
    // SAFETY: plain system calls on this process; failures leave the priority as it was.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            IOPRIO_CLASS_IDLE << 13,
        );
    }
}

/// Makes the child die with the thread that started it: a daemon killed outright (SIGKILL, an
/// OOM kill) runs no cleanup, and a restore in a process group of its own would outlive it.
/// Called between fork and exec; `parent` is the daemon's pid, read before the fork, so that a
/// parent gone before the call is caught too.
fn die_with_parent(parent: libc::pid_t) -> std::io::Result<()> {
    // SAFETY: async-signal-safe system calls on this process only.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::getppid() != parent {
            libc::_exit(1);
        }
    }
    Ok(())
}

/// A child in a process group of its own, killed with the whole group unless it has exited.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // SAFETY: signals the group this child leads; no memory is involved.
            unsafe {
                libc::kill(-(self.0.id() as i32), libc::SIGKILL);
            }
            let _ = self.0.wait();
        }
    }
}

/// A drill's folder in the scratch folder, removed with everything in it when dropped.
struct Folder {
    path: PathBuf,
}

impl Folder {
    fn create(scratch: &Path, db: &str) -> Result<Self, DrillError> {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let safe: String = db
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let path = scratch.join(format!("{FOLDER_PREFIX}{safe}-{}-{n}", std::process::id()));
        std::fs::create_dir(&path).map_err(|source| DrillError::Folder {
            path: scratch.to_path_buf(),
            source,
        })?;
        super::ACTIVITY.running_in(Some(&path));
        Ok(Folder { path })
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        super::ACTIVITY.running_in(None);
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(folder = %self.path.display(), error = %e, "cannot remove a restore drill's folder");
        }
    }
}

/// Removes the drill folders a previous run left in `scratch` (a daemon killed mid-drill);
/// never those of a daemon still running, which may share the scratch folder.
pub fn clean_leftovers(scratch: &Path) {
    let Ok(entries) = std::fs::read_dir(scratch) else {
        return;
    };
    let alive = |pid: u32| Path::new(&format!("/proc/{pid}")).exists();
    for e in entries.flatten() {
        if is_leftover(&e.file_name().to_string_lossy(), alive) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Whether `name` is a drill folder whose daemon is gone: `{FOLDER_PREFIX}{db}-{pid}-{n}`, its
/// pid not `alive`. A drill folder whose name does not parse is not ours to judge: kept. Pure.
fn is_leftover(name: &str, alive: impl Fn(u32) -> bool) -> bool {
    let Some(rest) = name.strip_prefix(FOLDER_PREFIX) else {
        return false;
    };
    let mut fields = rest.rsplitn(3, '-');
    let (Some(n), Some(pid), Some(_db)) = (fields.next(), fields.next(), fields.next()) else {
        return false;
    };
    match (n.parse::<u64>(), pid.parse::<u32>()) {
        (Ok(_), Ok(pid)) => !alive(pid),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_left_over_only_when_its_daemon_is_gone() {
        let alive = |pid: u32| pid == 42;
        assert!(is_leftover("sqlite-ops-drill-app-7-0", alive));
        assert!(is_leftover("sqlite-ops-drill-eu_beta-x-7-12", alive));
        assert!(!is_leftover("sqlite-ops-drill-app-42-3", alive), "running");
        assert!(!is_leftover("sqlite-ops-drill-app-x-3", alive), "no pid");
        assert!(!is_leftover("sqlite-ops-drill-app", alive));
        assert!(!is_leftover("other-app-7-0", alive));
    }

    /// A WAL database of three rows held open by a writer (so its `-shm` stays), and a job
    /// naming it.
    fn live_db(dir: &Path) -> (rusqlite::Connection, Job) {
        let path = dir.join("app.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
             CREATE TABLE t(v); INSERT INTO t VALUES (1), (2), (3);",
        )
        .unwrap();
        let job = Job {
            db: "app".into(),
            path,
            litestream_yml: dir.join("litestream.yml"),
            restore_yml: None,
            replica: ("file".into(), "file".into()),
            settings: DrillSettings {
                interval: Duration::from_secs(60),
                first_after: Duration::ZERO,
                scratch_dir: dir.to_path_buf(),
                litestream: "litestream".into(),
                timeout: Duration::from_secs(10),
            },
        };
        (conn, job)
    }

    fn copy(rows: u64) -> verify::Counts {
        [("t".to_string(), rows)].into()
    }

    /// Issue 29's false failure: the copy counted, then a commit, then the live counts. The
    /// commit moves the live WAL past the position the copy was proven at, so nothing is
    /// compared (and nothing fails); without it, a copy short of a row fails.
    #[test]
    fn a_commit_between_the_copy_and_the_live_counts_is_not_a_difference() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, job) = live_db(dir.path());
        let at = Position::Proven(live_wal(&job.path).unwrap());

        let mut compared = String::new();
        assert!(compare(&job, &copy(3), &at, &mut compared).is_ok());
        assert!(
            compared.starts_with("every table's rows equal"),
            "{compared}"
        );

        // Nothing written since: a copy missing a row is a failed drill.
        let short = compare(&job, &copy(2), &at, &mut compared).unwrap_err();
        assert!(
            short
                .to_string()
                .contains("t has 2 rows, the live database 3"),
            "{short}"
        );

        // One commit lands after the copy was counted: the live database has 4 rows, the
        // copy 3, and that is the live database moving on, not the backup losing a row.
        conn.execute("INSERT INTO t VALUES (4)", []).unwrap();
        assert!(compare(&job, &copy(3), &at, &mut compared).is_ok());
        assert_eq!(
            compared,
            "not compared: the database was written during the drill"
        );
    }
}
