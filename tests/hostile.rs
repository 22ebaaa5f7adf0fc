//! Hostile and broken files: each is a clear error for its own database while a healthy one next
//! to it is served, and nothing blocks a poll (a directory the daemon may not enter included).
//! A 100 GB sparse database fires the size alert from its size alone.

use crate::common;

use common::{temp_db, wait_for, Daemon, STEP};
use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// A real WAL-mode database file, closed (no -wal, no -shm left).
fn wal_db(path: &Path) -> Vec<u8> {
    let c = Connection::open(path).unwrap();
    c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(c);
    std::fs::read(path).unwrap()
}

fn status(d: &Daemon) -> serde_json::Value {
    serde_json::from_str(&d.get("/api/v1/status").1).unwrap()
}

fn db_status(status: &serde_json::Value, name: &str) -> serde_json::Value {
    status["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {status}"))
        .clone()
}

#[test]
fn each_broken_file_is_an_error_on_its_own_database() {
    let (dir, healthy) = temp_db("healthy.db");
    let good = wal_db(&healthy);
    let d = dir.path();
    let mut cases: Vec<(&str, PathBuf, &str)> = Vec::new();
    let mut case = |name: &'static str, expect: &'static str, make: &dyn Fn(&Path)| {
        let p = d.join(format!("{name}.db"));
        make(&p);
        cases.push((name, p, expect));
    };
    case("random", "not an SQLite database", &|p| {
        std::fs::write(
            p,
            (0..8192u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
                .collect::<Vec<_>>(),
        )
        .unwrap()
    });
    case("truncated", "header", &|p| {
        std::fs::write(p, &good[..50]).unwrap()
    });
    case("page_size", "page size", &|p| {
        let mut b = good.clone();
        b[16..18].copy_from_slice(&3000u16.to_be_bytes());
        std::fs::write(p, b).unwrap()
    });
    case("fifo", "FIFO", &|p| {
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    });
    case("loop", "symbolic links", &|p| {
        let other = p.with_extension("other");
        std::os::unix::fs::symlink(&other, p).unwrap();
        std::os::unix::fs::symlink(p, &other).unwrap();
    });
    case("directory", "directory", &|p| {
        std::fs::create_dir(p).unwrap()
    });
    let mut args = vec!["--db".to_string(), healthy.display().to_string()];
    for (_, p, _) in &cases {
        args.extend(["--db".to_string(), p.display().to_string()]);
    }
    args.extend(["--db".into(), "/dev/null".into()]);
    let daemon = Daemon::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    daemon.wait_polls(3);
    let s = status(&daemon);
    for (name, _, expect) in &cases {
        let db = db_status(&s, name);
        assert_eq!(db["up"], false, "{name}: {db}");
        let error = db["error"].as_str().unwrap();
        assert!(error.contains(expect), "{name}: {error:?} names {expect:?}");
    }
    let null = db_status(&s, "null");
    assert!(null["error"].as_str().unwrap().contains("device"), "{null}");
    assert_eq!(db_status(&s, "healthy")["up"], true);
    let m = daemon.metrics();
    assert_eq!(m.db("sqlite_up", "healthy"), Some(1.0));
    assert_eq!(m.db("sqlite_up", "random"), Some(0.0));
    assert!(
        m.samples
            .get("sqlite_ops_poll_errors_total{db=\"random\",probe=\"header\"}")
            .is_some_and(|n| *n >= 1.0),
        "errors are counted per database and probe"
    );
}

#[test]
fn a_broken_wal_index_or_wal_is_counted_and_the_database_stays_up() {
    let (dir, shm_short) = temp_db("shm_short.db");
    let d = dir.path();
    let good = wal_db(&shm_short);
    let shm_garbage = d.join("shm_garbage.db");
    let torn = d.join("torn.db");
    let bad_wal = d.join("bad_wal.db");
    for p in [&shm_garbage, &torn, &bad_wal] {
        std::fs::write(p, &good).unwrap();
    }
    let sibling = |p: &Path, s: &str| PathBuf::from(format!("{}{s}", p.display()));
    std::fs::write(sibling(&shm_short, "-shm"), [7u8; 100]).unwrap();
    std::fs::write(sibling(&shm_garbage, "-shm"), vec![0xa5u8; 32768]).unwrap();
    // A real wal-index whose second header copy differs from the first: torn.
    {
        let c = Connection::open(&torn).unwrap();
        c.execute("INSERT INTO t VALUES (2)", []).unwrap();
        let mut shm = std::fs::read(sibling(&torn, "-shm")).unwrap();
        shm[48 + 16] ^= 0xff;
        let copy = torn.with_extension("keep");
        std::fs::write(&copy, &shm).unwrap();
        drop(c); // removes -wal and -shm
        std::fs::rename(&copy, sibling(&torn, "-shm")).unwrap();
    }
    std::fs::write(
        sibling(&bad_wal, "-wal"),
        b"not a WAL header, just bytes, 32+",
    )
    .unwrap();
    let daemon = Daemon::start(&[
        "--db",
        shm_short.to_str().unwrap(),
        "--db",
        shm_garbage.to_str().unwrap(),
        "--db",
        torn.to_str().unwrap(),
        "--db",
        bad_wal.to_str().unwrap(),
    ]);
    daemon.wait_polls(3);
    let m = daemon.metrics();
    for (name, probe) in [
        ("shm_short", "wal_index"),
        ("shm_garbage", "wal_index"),
        ("torn", "wal_index"),
        ("bad_wal", "wal"),
    ] {
        assert_eq!(
            m.db("sqlite_up", name),
            Some(1.0),
            "{name} is still readable"
        );
        let errors = m
            .samples
            .get(&format!(
                "sqlite_ops_poll_errors_total{{db=\"{name}\",probe=\"{probe}\"}}"
            ))
            .copied()
            .unwrap_or(0.0);
        assert!(errors >= 1.0, "{name}: {probe} errors counted ({errors})");
    }
    let s = status(&daemon);
    let torn_error = db_status(&s, "torn")["error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(torn_error.contains("wal-index"), "{torn_error}");
}

#[test]
fn a_100_gb_sparse_database_raises_the_size_alert_from_its_size_alone() {
    let (dir, db) = temp_db("huge.db");
    let good = wal_db(&db);
    // Sparse: the first page is real, the other 100 GB are a hole no block is written for.
    let f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    f.set_len(100_000_000_001).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &good[..4096], 0).unwrap();
    drop(f);
    let daemon = Daemon::start(&["--db", db.to_str().unwrap()]);
    // At the defaults: the 100 GB level is a warning, pending for its 15 minutes.
    let alert = wait_for(STEP, "the 100 GB size alert", || {
        daemon
            .alerts()
            .iter()
            .find(|a| {
                a["alert"] == "SQLiteDatabaseLarge"
                    && a["severity"] == "warning"
                    && a["state"] == "pending"
            })
            .cloned()
    });
    assert_eq!(alert["db"], "huge");
    let m = daemon.metrics();
    assert_eq!(
        m.db("sqlite_database_size_bytes", "huge"),
        Some(100_000_000_001.0)
    );
    assert_eq!(m.db("sqlite_up", "huge"), Some(1.0));
    drop(dir);
}

/// A database in a directory the daemon may not enter is an error naming the permission, the
/// database next to it is served, and it comes up once the directory opens. Run as `nobody`:
/// the tests run as root, whom permissions do not stop.
#[test]
fn an_unreadable_directory_is_an_error_until_it_opens() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    };
    let (dir, healthy) = temp_db("healthy.db");
    wal_db(&healthy);
    mode(dir.path(), 0o755);
    mode(&healthy, 0o644);
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    let hidden = locked.join("hidden.db");
    wal_db(&hidden);
    mode(&hidden, 0o644);
    mode(&locked, 0o700); // root's; nobody may not enter

    let runuser = common::program("runuser", "util-linux");
    let daemon = Daemon::start_wrapped(
        &[runuser.to_str().unwrap(), "-u", "nobody", "--"],
        &[
            "--db",
            healthy.to_str().unwrap(),
            "--db",
            hidden.to_str().unwrap(),
        ],
        &[],
    );
    daemon.wait_polls(2);
    let s = status(&daemon);
    let h = db_status(&s, "hidden");
    assert_eq!(h["up"], false, "{h}");
    assert!(
        h["error"].as_str().unwrap().contains("Permission denied"),
        "{h}"
    );
    assert_eq!(db_status(&s, "healthy")["up"], true);

    mode(&locked, 0o755);
    wait_for(STEP, "hidden.db up once readable", || {
        (daemon.metrics().db("sqlite_up", "hidden") == Some(1.0)).then_some(())
    });
}

/// docs/metrics.md: "Counters keep counting while a database is down; gauges are exported only while
/// the database is readable." The database file is renamed away while its application goes on
/// committing, then put back: the total is exported throughout, and once back it has counted
/// exactly the commits made while away.
#[test]
fn counters_keep_counting_while_a_database_is_down() {
    let (dir, db) = temp_db("away.db");
    let app = Connection::open(&db).unwrap();
    app.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x);")
        .unwrap();
    let daemon = Daemon::start(&["--db", db.to_str().unwrap()]);
    let metric = |name: &str| daemon.metrics().db(name, "away");
    for _ in 0..10 {
        app.execute("INSERT INTO t VALUES (1)", []).unwrap();
    }
    // Read after a poll that began once the ten commits were made: a poll taken between two
    // of them would give a total that is about to move.
    daemon.wait_polls(2);
    let before = metric("sqlite_write_transactions_total").unwrap();
    assert!(before >= 10.0, "ten commits counted: {before}");

    let away = dir.path().join("elsewhere.db");
    std::fs::rename(&db, &away).unwrap();
    wait_for(STEP, "the database down", || {
        (metric("sqlite_up") == Some(0.0)).then_some(())
    });
    // The application's connection still holds the file: it goes on committing.
    for _ in 0..7 {
        app.execute("INSERT INTO t VALUES (2)", []).unwrap();
    }
    daemon.wait_polls(3);
    let m = daemon.metrics();
    assert_eq!(
        m.db("sqlite_write_transactions_total", "away"),
        Some(before)
    );
    assert_eq!(
        m.db("sqlite_database_size_bytes", "away"),
        None,
        "no gauge while down"
    );

    std::fs::rename(&away, &db).unwrap();
    wait_for(STEP, "the seven commits made while away counted", || {
        (metric("sqlite_write_transactions_total") == Some(before + 7.0)).then_some(())
    });
    assert_eq!(metric("sqlite_up"), Some(1.0));
    assert!(metric("sqlite_database_size_bytes").is_some());
}
