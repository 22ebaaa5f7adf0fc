//! The sidecar never changes what it watches (issue 2): after the daemon and the in-process
//! monitor polled them many times, the database, -wal and -shm files are byte-identical to
//! copies taken before, and nBackfill shows that nothing was checkpointed.

use crate::common;

use common::{temp_db, Daemon, PyDriver, Watch};

fn read_all(db: &std::path::Path) -> [Vec<u8>; 3] {
    let f = |suffix: &str| std::fs::read(format!("{}{suffix}", db.display())).unwrap();
    [f(""), f("-wal"), f("-shm")]
}

#[test]
fn watched_files_stay_byte_identical_and_nothing_is_checkpointed() {
    let (_dir, db) = temp_db("untouched.db");
    let mut py = PyDriver::start();
    py.open("w", &db, "journal_mode=WAL wal_autocheckpoint=0");
    py.cmd("commit w 100");
    // A reader that started and finished leaves its read mark behind, like a real application.
    py.open("r", &db, "");
    py.cmd("begin_read r");
    py.cmd("end r");
    let before = read_all(&db);
    let (max_frame, backfill) = frames_and_backfill(&before[2]);
    assert!(max_frame >= 100, "{max_frame} frames");
    assert_eq!(backfill, 0, "nothing checkpointed before watching");

    let daemon = Daemon::start(&["--db", db.to_str().unwrap(), "--poll-interval", "20ms"]);
    // While it polls twenty times, /proc/locks never shows a lock of the daemon's (F_GETLK
    // only asks).
    let pid = daemon.pid().to_string();
    let mut looks = 0;
    let until = daemon.poll_cycles() + 20;
    let deadline = std::time::Instant::now() + common::STEP;
    while daemon.poll_cycles() < until {
        assert!(std::time::Instant::now() < deadline, "20 polls in 30 s");
        let locks = std::fs::read_to_string("/proc/locks").unwrap();
        let held: Vec<&str> = locks
            .lines()
            .filter(|l| l.split_whitespace().nth(4) == Some(pid.as_str()))
            .collect();
        assert!(held.is_empty(), "the daemon holds locks: {held:?}");
        looks += 1;
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(looks > 20, "/proc/locks read {looks} times");
    daemon.wait_polls(20);
    let m = daemon.metrics();
    assert_eq!(m.db("sqlite_up", "untouched"), Some(1.0));
    assert_eq!(
        m.db("sqlite_wal_checkpointed_frames", "untouched"),
        Some(0.0)
    );
    drop(daemon);
    let mut p = Watch::new(&db);
    for _ in 0..50 {
        assert!(p.poll().up);
    }
    drop(p);

    let after = read_all(&db);
    for (i, name) in ["database", "-wal", "-shm"].iter().enumerate() {
        assert!(before[i] == after[i], "{name} file changed while watched");
    }
    assert_eq!(
        frames_and_backfill(&after[2]),
        (max_frame, 0),
        "the daemon checkpointed nothing"
    );
}

/// (mxFrame, nBackfill) of a -shm file, read at the offsets SQLite's file-format document gives
/// (walformat.html: mxFrame at byte 16 of the first header copy, nBackfill at byte 96), in the
/// machine's byte order: an oracle that is not the product's own parser.
fn frames_and_backfill(shm: &[u8]) -> (u32, u32) {
    let u32_at = |o: usize| u32::from_ne_bytes(shm[o..o + 4].try_into().unwrap());
    (u32_at(16), u32_at(96))
}

/// Every system call of `log` (strace output) that could change a file named `db*`: an open for
/// writing or creating, a truncate, an unlink, a rename.
fn writes_to(log: &str, db: &std::path::Path) -> Vec<String> {
    let name = db.to_str().unwrap();
    log.lines()
        .filter(|l| l.contains(name))
        .filter(|l| {
            let open = l.contains("open");
            (open
                && (l.contains("O_WRONLY")
                    || l.contains("O_RDWR")
                    || l.contains("O_CREAT")
                    || l.contains("O_TRUNC")))
                || l.contains("truncate(")
                || l.contains("unlink")
                || l.contains("rename")
        })
        .map(String::from)
        .collect()
}

/// Every lock `log` (strace output with `fcntl` traced) shows taken or released: `F_SETLK`,
/// `F_SETLKW` and their OFD forms. `F_GETLK` only asks.
fn lock_calls(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("fcntl") && l.contains("_SETLK"))
        .map(String::from)
        .collect()
}

/// Proven with strace, in every journal mode while another process writes: `run`, `check`,
/// `check --integrity` and `migrate-check` open the database, -wal and -shm read-only only,
/// create, truncate, rename and delete nothing, and (WAL) checkpoint nothing; `run` takes no
/// lock at all (only `F_GETLK`), and `check` and `migrate-check` read while an application
/// commits every 50 ms.
#[test]
fn strace_shows_no_write_open_in_any_journal_mode() {
    let strace = common::program("strace", "strace");
    for mode in ["WAL", "DELETE", "TRUNCATE", "PERSIST"] {
        let (dir, db) = temp_db("traced.db");
        let mut py = PyDriver::start();
        py.open(
            "w",
            &db,
            &format!("journal_mode={mode} wal_autocheckpoint=0"),
        );
        py.cmd("commit w 50");
        let log = dir.path().join("strace.log");
        let wrapper = [
            strace.to_str().unwrap(),
            "-f",
            "-qq",
            "-e",
            "trace=open,openat,creat,truncate,ftruncate,unlink,unlinkat,rename,renameat,renameat2,fcntl",
            "-o",
            log.to_str().unwrap(),
        ];
        let mut daemon = Daemon::start_wrapped(
            &wrapper,
            &["--db", db.to_str().unwrap(), "--poll-interval", "20ms"],
            &[],
        );
        daemon.wait_polls(5);
        py.cmd("commit w 20"); // written while watched
        daemon.wait_polls(5);
        assert_eq!(
            daemon.metrics().db("sqlite_up", "traced"),
            Some(1.0),
            "{mode}"
        );
        // The daemon told to stop, strace ends with it and flushes its log; killed, strace
        // could lose the end of it, and with it a write.
        let strace_pid = daemon.pid();
        let traced_pid: i32 =
            std::fs::read_to_string(format!("/proc/{strace_pid}/task/{strace_pid}/children"))
                .unwrap()
                .split_whitespace()
                .next()
                .expect("strace's child, the daemon")
                .parse()
                .unwrap();
        // SAFETY: kill has no memory preconditions; the pid is strace's live child.
        assert_eq!(unsafe { libc::kill(traced_pid, libc::SIGTERM) }, 0);
        common::wait_for(common::STEP, "strace to stop", || daemon.try_wait());
        drop(daemon);
        let path = db.to_str().unwrap();
        let writer = common::Writer::start(&db);
        for args in [
            vec!["check", "--sample", "200ms", path],
            vec!["check", "--sample", "200ms", path, "--integrity"],
            vec!["migrate-check", path, "--chunk-rows", "10"],
        ] {
            let check_log = format!("{}.check", log.display());
            let out = std::process::Command::new(&strace)
                .args(&wrapper[1..wrapper.len() - 1])
                .arg(&check_log)
                .arg(env!("CARGO_BIN_EXE_sqlite-ops"))
                .args(&args)
                .output()
                .unwrap();
            let code = out.status.code().unwrap();
            assert!(code <= 2, "{mode}: {args:?} ran ({code})");
            let traced = std::fs::read_to_string(&check_log).unwrap();
            let writes = writes_to(&traced, &db);
            assert!(writes.is_empty(), "{mode} {args:?} wrote: {writes:#?}");
            assert!(
                traced.contains(db.to_str().unwrap()),
                "{mode}: the trace saw the database"
            );
        }
        drop(writer);
        let committed: i64 = rusqlite::Connection::open(&db)
            .unwrap()
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert!(
            committed > 0,
            "{mode}: the application wrote during the checks"
        );
        let traced = std::fs::read_to_string(&log).unwrap();
        let writes = writes_to(&traced, &db);
        assert!(writes.is_empty(), "{mode} run wrote: {writes:#?}");
        let locks = lock_calls(&traced);
        assert!(locks.is_empty(), "{mode} run took locks: {locks:#?}");
        assert!(
            traced.contains("F_GETLK"),
            "{mode}: the trace saw the lock tests"
        );
        assert!(
            traced.contains("O_RDONLY"),
            "{mode}: the trace saw read-only opens"
        );
        if mode == "WAL" {
            let shm_bytes = std::fs::read(format!("{}-shm", db.display())).unwrap();
            let (frames, backfill) = frames_and_backfill(&shm_bytes);
            assert!(frames > 0, "{frames} frames in the WAL");
            assert_eq!(backfill, 0, "nothing was checkpointed");
        }
    }
}

/// The daemon needs no write permission anywhere: as `nobody`, in a directory it cannot write,
/// it watches and counts.
#[test]
fn works_without_write_permission_to_the_directory() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, db) = temp_db("private.db");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut py = PyDriver::start();
    py.open("w", &db, "journal_mode=WAL");
    py.cmd("commit w 10");
    for suffix in ["", "-wal", "-shm"] {
        std::fs::set_permissions(
            format!("{}{suffix}", db.display()),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    let runuser = common::program("runuser", "util-linux");
    let daemon = Daemon::start_wrapped(
        &[runuser.to_str().unwrap(), "-u", "nobody", "--"],
        &["--db", db.to_str().unwrap()],
        &[],
    );
    daemon.wait_polls(2);
    let before = daemon
        .metrics()
        .db("sqlite_write_transactions_total", "private")
        .unwrap();
    py.cmd("commit w 7");
    daemon.wait_polls(3);
    let m = daemon.metrics();
    assert_eq!(m.db("sqlite_up", "private"), Some(1.0));
    assert_eq!(
        m.db("sqlite_write_transactions_total", "private"),
        Some(before + 7.0)
    );
}
