//! What the benchmarks share: reading a process's CPU time and resident memory from `/proc`,
//! the daemon's config for a list of databases, a WAL database set up as the guide says, and
//! the SQL-per-scrape baseline.

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// CPU time (user + system) of process `pid`, from /proc/<pid>/stat.
pub fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    Duration::from_secs_f64(ticks / hz)
}

/// The share of one core process `pid` used over the next `window` (which this sleeps).
pub fn cpu_share(pid: u32, window: Duration) -> f64 {
    let cpu0 = cpu_of(pid);
    let t0 = std::time::Instant::now();
    std::thread::sleep(window);
    (cpu_of(pid) - cpu0).as_secs_f64() / t0.elapsed().as_secs_f64()
}

/// Resident memory of process `pid` in MiB, from /proc/<pid>/status.
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

/// A config watching `dbs` (named db0, db1, …) in `dir`, with `extra` top-level lines and
/// `thresholds` (lines indented by two) beside the filesystem check, which is off: the
/// machine's free disk is not under measurement.
pub fn config(dir: &Path, dbs: &[PathBuf], extra: &str, thresholds: &str) -> PathBuf {
    let mut text = format!(
        "{extra}thresholds:\n  filesystem_free: {{warning: 'off', critical: 'off'}}\n{thresholds}databases:\n"
    );
    for (i, db) in dbs.iter().enumerate() {
        text.push_str(&format!("  - {{path: {}, name: db{i}}}\n", db.display()));
    }
    let path = dir.join("sqlite-ops.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A WAL database with the guide's PRAGMAs and one table, and its open connection.
pub fn create_wal_db(path: &Path) -> Connection {
    let c = Connection::open(path).unwrap();
    c.execute_batch(sqlite_ops::check::RECOMMENDED_PRAGMAS)
        .unwrap();
    c.execute_batch("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)")
        .unwrap();
    c
}

/// What SQL-per-scrape exporters do for each scrape, the benchmarks' baseline: open a read-only
/// connection, read page_count, freelist_count and journal_mode, close.
pub fn sql_per_scrape(db: &Path) -> (i64, i64, String) {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    sql_on_open_connection(&c)
}

/// The same PRAGMAs as [`sql_per_scrape`] on a read-only connection kept open between polls:
/// the best an SQL-based poll can do.
pub fn sql_on_open_connection(c: &Connection) -> (i64, i64, String) {
    let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    let free: i64 = c
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .unwrap();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    (pages, free, mode)
}

/// The system calls a full poll of a WAL database makes (seen with strace), with no logic
/// around them: `fstat` of the database, `-wal` and `-shm`, `pread` of the database header and
/// the wal-index header, and three `F_GETLK` on the `-shm`: the "dead man switch" (is the
/// wal-index in use?), the read marks, the write lock. The floor a poll cannot go below.
pub fn syscall_floor(files: &[std::fs::File; 3]) -> u64 {
    use std::os::unix::fs::FileExt;
    use std::os::unix::io::AsRawFd;
    let [db, _, shm] = files;
    let mut sum = 0;
    for f in files {
        sum += f.metadata().unwrap().len();
    }
    let mut head = [0u8; 100];
    sum += db.read_at(&mut head, 0).unwrap() as u64;
    let mut index = [0u8; 136];
    sum += shm.read_at(&mut index, 0).unwrap() as u64;
    for (start, len) in [(128, 1), (123, 5), (120, 1)] {
        let mut lock = libc::flock {
            l_type: libc::F_WRLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: start,
            l_len: len,
            l_pid: 0,
        };
        // SAFETY: F_GETLK on an open descriptor with a valid flock.
        unsafe { libc::fcntl(shm.as_raw_fd(), libc::F_GETLK, &mut lock) };
        sum += lock.l_type as u64;
    }
    sum
}

/// An application writing one small transaction to each of `conns` in turn, one every `gap`,
/// in its own thread until `stop` is set; the thread gives the connections back.
pub fn round_robin(
    conns: Vec<Connection>,
    gap: Duration,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Connection>> {
    std::thread::spawn(move || {
        let mut i = 0usize;
        while !stop.load(Ordering::Relaxed) {
            conns[i % conns.len()]
                .execute("INSERT INTO t(v) VALUES ('x')", [])
                .unwrap();
            i += 1;
            std::thread::sleep(gap);
        }
        conns
    })
}
