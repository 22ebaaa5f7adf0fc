//! Many more databases than descriptors (issue 19): under a hard limit of 1,024 open files,
//! 2,000 WAL databases (6,000 files) are all up, and those written by another process are
//! counted exactly, because quiet databases give their descriptors back after each poll. And
//! never dark: under a limit below the reserve, databases are down with an error that names the
//! limit and how to raise it, logged once, while `/healthz`, `/metrics` and the status page keep
//! answering many clients at once.

use crate::common;

use common::{wait_for, ConfigFile, Daemon, PyDriver, STEP};
use rusqlite::Connection;
use serde_json::json;
use std::path::Path;

/// `count` copies of one live WAL database (each with its -wal and -shm) named `db0`... in
/// `dir`, and the config watching them every `poll`.
pub(crate) fn databases(dir: &Path, count: usize, poll: &str) -> std::path::PathBuf {
    let src = dir.join("src.db");
    let conn = Connection::open(&src).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES (1);",
    )
    .unwrap();
    let mut config = ConfigFile::new()
        .set("poll_interval", json!(poll))
        .no_disk_alert();
    for i in 0..count {
        let db = dir.join(format!("db{i}.db"));
        for suffix in ["", "-wal", "-shm"] {
            std::fs::copy(
                format!("{}{suffix}", src.display()),
                format!("{}{suffix}", db.display()),
            )
            .unwrap();
        }
        config = config.database(&db, &format!("db{i}"));
    }
    drop(conn);
    config.write(&dir.join("sqlite-ops.yaml"))
}

fn under_limit(limit: u64, config: &Path) -> Daemon {
    let prlimit = common::program("prlimit", "util-linux");
    let nofile = format!("--nofile={limit}:{limit}");
    let daemon = Daemon::start_wrapped(
        &[prlimit.to_str().unwrap(), &nofile, "--"],
        &["--config", config.to_str().unwrap()],
        &[],
    );
    daemon.wait_log("the startup line on descriptors", |l| {
        l.contains("open files") && l.contains(&format!("limit={limit}"))
    });
    daemon
}

#[test]
fn two_thousand_databases_under_a_limit_of_1024_are_all_up_and_exact() {
    const DATABASES: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let config = databases(dir.path(), DATABASES, "1s");
    let daemon = under_limit(1_024, &config);
    daemon.wait_polls(2);
    let m = daemon.metrics();
    let down: Vec<usize> = (0..DATABASES)
        .filter(|i| m.db("sqlite_up", &format!("db{i}")) != Some(1.0))
        .collect();
    assert!(
        down.is_empty(),
        "{} of {DATABASES} down: {down:?}",
        down.len()
    );

    // Five databases written by another process: 20 commits each, counted exactly, while the
    // other 1,995 are polled by opening their files at each poll.
    let written = [0, 499, 1000, 1500, 1999];
    let mut app = PyDriver::start();
    for i in written {
        app.open(&format!("c{i}"), &dir.path().join(format!("db{i}.db")), "");
    }
    let total = |i: usize| {
        daemon
            .metrics()
            .db("sqlite_write_transactions_total", &format!("db{i}"))
            .unwrap()
    };
    // Read after a poll that began once the connections were open.
    daemon.wait_polls(2);
    let before: Vec<f64> = written.iter().map(|&i| total(i)).collect();
    for i in written {
        app.cmd(&format!("commit c{i} 20"));
    }
    for (k, &i) in written.iter().enumerate() {
        wait_for(STEP, &format!("db{i}'s 20 commits"), || {
            (total(i) >= before[k] + 20.0).then_some(())
        });
    }
    daemon.wait_polls(2);
    for (k, &i) in written.iter().enumerate() {
        assert_eq!(total(i), before[k] + 20.0, "db{i} counted exactly");
    }
    // The kernel's count, not the daemon's: descriptors open on the watched files, sampled
    // across several polls, never take the quarter of the limit kept for HTTP, Alertmanager,
    // Litestream and /proc (docs/operations.md: 1,024 - 256 = 768 for watched files).
    let pid = daemon.pid();
    let watched = || {
        common::fd_targets(pid)
            .iter()
            .filter(|target| target.starts_with(dir.path()))
            .count()
    };
    let mut most = 0;
    for _ in 0..3 {
        for _ in 0..10 {
            most = most.max(watched());
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
        daemon.wait_polls(1);
    }
    assert!(most > 0, "the daemon keeps some watched files open");
    eprintln!("at most {most} descriptors on watched files");
    // Their share is what the reserve leaves (1,024 - 256); past half of it, quiet databases
    // give theirs back after each poll: half the share, the five written databases' 15, and the
    // three of the one being polled.
    assert!(
        most <= (1_024 - 256) / 2 + 15 + 3,
        "{most} descriptors on watched files: more than half their share is kept"
    );
    // The daemon says the same of itself: its reserve, its share, what it holds, no refusal.
    let m = daemon.metrics();
    let own = |name: &str| m.samples.get(name).copied().unwrap_or(f64::NAN);
    assert_eq!(own("sqlite_ops_descriptors_reserved"), 256.0);
    let share = own("sqlite_ops_descriptors_watched_limit");
    assert!((700.0..768.0).contains(&share), "{share}");
    let held = own("sqlite_ops_descriptors_watched");
    assert!(held > 0.0 && held <= share / 2.0 + 18.0, "{held}");
    assert_eq!(own("sqlite_ops_descriptors_refused_total"), 0.0);
    assert!(
        own("sqlite_ops_descriptors_releases_total") >= 1_000.0,
        "quiet databases gave theirs back"
    );
    assert_eq!(
        own("sqlite_ops_history_databases"),
        100.0,
        "history.databases: 100 of the 2,000"
    );
    assert_eq!(daemon.get("/healthz").0, 200);
}

#[test]
fn a_limit_below_the_reserve_leaves_databases_down_not_the_server() {
    const DATABASES: usize = 5;
    const LIMIT: u64 = 64;
    let dir = tempfile::tempdir().unwrap();
    let config = databases(dir.path(), DATABASES, "200ms");
    let daemon = under_limit(LIMIT, &config);
    daemon.wait_log("the warning that no database fits", |l| {
        l.contains("too low for any database")
    });
    daemon.wait_polls(5);

    let (status, body) = daemon.get("/healthz");
    assert_eq!((status, body.trim()), (200, "ok"));
    let m = daemon.metrics();
    for i in 0..DATABASES {
        assert_eq!(m.db("sqlite_up", &format!("db{i}")), Some(0.0), "db{i}");
    }
    // Its own series say why: no share for watched files, and refusals counted at every poll.
    let refused = |m: &common::scrape::Metrics| m.samples["sqlite_ops_descriptors_refused_total"];
    assert_eq!(m.samples["sqlite_ops_descriptors_watched_limit"], 0.0);
    let first = refused(&m);
    assert!(first >= DATABASES as f64, "{first}");
    daemon.wait_polls(2);
    assert!(refused(&daemon.metrics()) > first, "each poll asks again");
    let s: serde_json::Value = serde_json::from_str(&daemon.get("/api/v1/status").1).unwrap();
    let error = s["databases"][0]["error"].as_str().unwrap();
    assert!(
        error.contains(&LIMIT.to_string())
            && error.contains("LimitNOFILE")
            && error.contains("ulimit -n"),
        "{error}"
    );

    // Many clients at once, each answered.
    let addr = daemon.addr.clone();
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let path = if i % 2 == 0 { "/metrics" } else { "/healthz" };
                common::get(&format!("http://{addr}{path}")).0
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), 200);
    }
    daemon.wait_polls(5);
    let log = daemon.log.lock().unwrap().clone();
    let refusals = log
        .iter()
        .filter(|l| l.contains("databases left unwatched"))
        .count();
    assert_eq!(refusals, 1, "logged once, not per poll: {log:#?}");
}

/// A limit that fits one or two files but not a database's three: the databases are down with
/// the limit's error, never polled without their `-wal` or `-shm` (whose commits would then be
/// counted in the WAL alone); at the figure the warning gives, they are up.
#[test]
fn a_database_gets_its_three_files_or_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let config = databases(dir.path(), 2, "200ms");
    let daemon = under_limit(64, &config);
    daemon.wait_log("the warning that no database fits", |l| {
        l.contains("too low for any database")
    });
    let needed: u64 = {
        let log = daemon.log.lock().unwrap();
        let line = log
            .iter()
            .find(|l| l.contains("raise it to at least"))
            .unwrap();
        let after = line.split("raise it to at least ").nth(1).unwrap();
        after.split(' ').next().unwrap().parse().unwrap()
    };
    drop(daemon);

    let short = under_limit(needed - 2, &config);
    short.wait_polls(5);
    let m = short.metrics();
    assert!(m.samples["sqlite_ops_descriptors_watched_limit"] < 3.0);
    for db in ["db0", "db1"] {
        assert_eq!(
            m.db("sqlite_up", db),
            Some(0.0),
            "{db} is down, not half polled"
        );
    }
    let s: serde_json::Value = serde_json::from_str(&short.get("/api/v1/status").1).unwrap();
    let error = s["databases"][0]["error"].as_str().unwrap();
    assert!(error.contains("LimitNOFILE"), "{error}");
    drop(short);

    let enough = under_limit(needed, &config);
    enough.wait_polls(5);
    let m = enough.metrics();
    for db in ["db0", "db1"] {
        assert_eq!(m.db("sqlite_up", db), Some(1.0), "{db} at {needed}");
    }
}
