//! `sqlite-ops check` as cron and on-call run it: exit codes, named findings, the JSON schema,
//! and hands off the files.

use crate::common;

use common::{run_cli, ConfigFile};
use rusqlite::Connection;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A config file of `body` as written (one check should refuse).
fn config(dir: &Path, body: &str) -> String {
    let path = dir.join("check.yaml");
    std::fs::write(&path, body).unwrap();
    path.to_str().unwrap().to_string()
}

/// A config watching `db`, with no disk alert: the machine's free disk is not the database's
/// health (CI machines have been seen nearly full). Written by [`write`].
fn checking(db: &str) -> ConfigFile {
    ConfigFile::new().watch(Path::new(db)).no_disk_alert()
}

fn write(dir: &Path, config: ConfigFile) -> String {
    let path = config.write(&dir.join("check.yaml"));
    path.to_str().unwrap().to_string()
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The finding `id` of the first database.
fn finding<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["databases"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no finding {id} in {report:#}"))
}

fn validate(report: &serde_json::Value) {
    common::assert_matches_schema(report, "docs/check.schema.json");
}

fn wal_db(dir: &Path) -> (Connection, String) {
    let path = dir.join("app.db");
    let conn = Connection::open(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE posts(id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id));
         INSERT INTO users(name) VALUES ('a'); INSERT INTO posts(user_id) VALUES (1);",
    )
    .unwrap();
    (conn, path.to_str().unwrap().to_string())
}

#[test]
fn a_healthy_wal_database_is_ok_and_the_json_matches_its_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (_conn, db) = wal_db(dir.path());
    let cfg = write(
        dir.path(),
        checking(&db).set("team", json!({"backend_engineers": 2, "regions": 1})),
    );
    let (code, out, err) = run_cli(&[
        "check",
        "--config",
        &cfg,
        "--sample",
        "300ms",
        "--format",
        "json",
        "--integrity",
    ]);
    let report = json(&out);
    validate(&report);
    assert_eq!(code, 0, "{report:#}{err}");
    assert_eq!(report["status"], "ok");
    assert_eq!(report["exit_code"], 0);
    assert_eq!(finding(&report, "journal_mode")["value"], "wal");
    assert_eq!(finding(&report, "integrity")["status"], "ok");
    assert_eq!(finding(&report, "foreign_keys")["status"], "ok");
    assert_eq!(finding(&report, "backend_engineers")["measured"], 2.0);
    assert_eq!(finding(&report, "sqlite_version")["status"], "ok");
    assert!(report["recommended_pragmas"]
        .as_str()
        .unwrap()
        .contains("busy_timeout"));

    // The same in human form: a table, no colour when not on a terminal.
    let (code, out, _) = run_cli(&["check", "--config", &cfg, "--sample", "0s"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("sqlite-ops check: OK"), "{out}");
    assert!(!out.contains('\x1b'), "no colour codes in a pipe");
    assert!(out.contains("PRAGMA synchronous = NORMAL"));
}

#[test]
fn a_rollback_journal_database_is_a_warning_named_journal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("legacy.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(conn);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = write(dir.path(), checking(path.to_str().unwrap()));
    let (code, out, _) = run_cli(&[
        "check", "--config", &cfg, "--sample", "0s", "--format", "json",
    ]);
    let report = json(&out);
    validate(&report);
    assert_eq!(code, 1, "{report:#}");
    let f = finding(&report, "journal_mode");
    assert_eq!(f["status"], "warning");
    assert_eq!(f["value"], "rollback");
    assert!(f["fix"].as_str().unwrap().contains("journal_mode=WAL"));
    let warnings: Vec<_> = report["databases"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "warning")
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(warnings, ["journal_mode"]);
}

#[test]
fn a_database_over_a_lowered_size_threshold_is_critical() {
    let dir = tempfile::tempdir().unwrap();
    let (conn, db) = wal_db(dir.path());
    conn.execute("CREATE TABLE b(x BLOB)", []).unwrap();
    conn.execute("INSERT INTO b VALUES (zeroblob(300000))", [])
        .unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let cfg = write(
        dir.path(),
        checking(&db).threshold(
            "database_size",
            json!({"warning": "100KB", "critical": "200KB"}),
        ),
    );
    let (code, out, _) = run_cli(&[
        "check", "--config", &cfg, "--sample", "0s", "--format", "json",
    ]);
    let report = json(&out);
    assert_eq!(code, 2, "{report:#}");
    let f = finding(&report, "database_size");
    assert_eq!(f["status"], "critical");
    assert_eq!(f["alert"], "SQLiteDatabaseLarge");
    assert_eq!(f["limit"], 200_000.0);
    assert!(f["measured"].as_f64().unwrap() > 300_000.0);
    assert_eq!(f["threshold"], "> 200 kB");

    // The human table names it too, with its fix.
    let (code, out, _) = run_cli(&["check", "--config", &cfg, "--sample", "0s"]);
    assert_eq!(code, 2);
    assert!(
        out.contains("CRITICAL database_size")
            || out.contains("CRITICAL  database_size")
            || out
                .lines()
                .any(|l| l.contains("CRITICAL") && l.contains("database_size")),
        "{out}"
    );
    assert!(out.contains("fix: Archive or delete old rows"), "{out}");
}

#[test]
fn a_sustained_write_rate_over_a_lowered_threshold_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let (conn, db) = wal_db(dir.path());
    drop(conn);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, db) = (stop.clone(), db.clone());
        std::thread::spawn(move || {
            let conn = Connection::open(&db).unwrap();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                conn.execute("INSERT INTO users(name) VALUES ('w')", [])
                    .unwrap();
                n += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            n
        })
    };
    let cfg = write(
        dir.path(),
        checking(&db).threshold("write_tx_per_sec", json!({"warning": 20})),
    );
    let (code, out, _) = run_cli(&[
        "check", "--config", &cfg, "--sample", "1500ms", "--format", "json",
    ]);
    stop.store(true, Ordering::Relaxed);
    let committed = writer.join().unwrap();
    let report = json(&out);
    assert_eq!(code, 1, "{report:#}");
    let f = finding(&report, "write_tx_per_sec");
    assert_eq!(f["status"], "warning");
    assert_eq!(f["alert"], "SQLiteWriteRateHigh");
    let rate = f["measured"].as_f64().unwrap();
    assert!(
        rate > 20.0,
        "{rate}/s measured while {committed} commits were made"
    );
}

#[test]
fn unreadable_databases_bad_config_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone.db");
    let (code, out, _) = run_cli(&[
        "check",
        "--sample",
        "0s",
        "--format",
        "json",
        missing.to_str().unwrap(),
    ]);
    let report = json(&out);
    validate(&report);
    assert_eq!(code, 2);
    assert_eq!(finding(&report, "database_down")["status"], "critical");

    let bad = config(dir.path(), "databases: [{path: /x.db, nmae: x}]\n");
    let (code, out, err) = run_cli(&["check", "--config", &bad]);
    assert_eq!(code, 3, "{out}");
    assert!(
        err.contains("UNKNOWN") && err.contains("databases[0]") && err.contains("nmae"),
        "{err}"
    );

    let (conn, db) = wal_db(dir.path());
    conn.execute_batch("PRAGMA foreign_keys=OFF; INSERT INTO posts(user_id) VALUES (42);")
        .unwrap();
    // Disk space is not under test (CI disks run nearly full): only the foreign key decides.
    let quiet = write(dir.path(), ConfigFile::new().no_disk_alert());
    let (code, out, _) = run_cli(&[
        "check", "--config", &quiet, "--sample", "0s", "--format", "json", &db,
    ]);
    let report = json(&out);
    let f = finding(&report, "foreign_keys").clone();
    assert_eq!(code, 1, "a warning, nothing worse: {out}");
    assert_eq!(report["status"], "warning");
    assert_eq!(f["status"], "warning");
    assert!(
        f["summary"]
            .as_str()
            .unwrap()
            .contains("posts rowid 2 -> users"),
        "{f}"
    );
}

#[test]
fn a_closed_wal_database_is_audited_without_creating_or_changing_files() {
    let dir = tempfile::tempdir().unwrap();
    let (conn, db) = wal_db(dir.path());
    drop(conn); // the last connection removes -wal and -shm
    let db_path = Path::new(&db);
    let listing = || {
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let before = (listing(), std::fs::read(db_path).unwrap());
    assert_eq!(before.0, ["app.db"]);
    let (_, out, _) = run_cli(&[
        "check",
        "--sample",
        "200ms",
        "--integrity",
        "--format",
        "json",
        &db,
    ]);
    let report = json(&out);
    assert_eq!(finding(&report, "integrity")["status"], "ok");
    assert_eq!(finding(&report, "foreign_keys")["status"], "ok");
    assert_eq!(
        (listing(), std::fs::read(db_path).unwrap()),
        before,
        "no -wal or -shm created, bytes unchanged"
    );
}

/// docs/check.md's `check` findings, each from a real fault made here: a world-readable file, a small
/// page size, a freelist of 70 MB, a damaged freelist count (`--integrity`), and a
/// quick_check cut short by `--statement-timeout`.
#[test]
fn each_audit_finds_its_fault() {
    let dir = tempfile::tempdir().unwrap();
    let quiet = write(dir.path(), ConfigFile::new().no_disk_alert());
    let check = |db: &Path, extra: &[&str]| {
        let mut args = vec![
            "check", "--config", &quiet, "--sample", "0s", "--format", "json",
        ];
        args.extend(extra);
        args.push(db.to_str().unwrap());
        let (_, out, err) = run_cli(&args);
        let report = serde_json::from_str::<serde_json::Value>(&out)
            .unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        validate(&report);
        report
    };

    // Readable by every user, with 1 KiB pages.
    let small = dir.path().join("small.db");
    Connection::open(&small)
        .unwrap()
        .execute_batch("PRAGMA page_size=1024; PRAGMA journal_mode=WAL; CREATE TABLE t(x);")
        .unwrap();
    std::fs::set_permissions(&small, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = check(&small, &[]);
    let perms = finding(&r, "permissions");
    assert_eq!(perms["status"], "warning", "{perms}");
    assert!(perms["summary"]
        .as_str()
        .unwrap()
        .contains("readable by every user"));
    let page = finding(&r, "page_size");
    assert_eq!(
        (&page["status"], &page["value"]),
        (&"warning".into(), &"1024 B".into())
    );
    std::fs::set_permissions(&small, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(finding(&check(&small, &[]), "permissions")["status"], "ok");

    // 70 MB written and deleted: free pages a VACUUM would return. Before the delete, 100,000
    // indexed rows make a quick_check longer than 1 ms.
    let big = dir.path().join("big.db");
    let c = Connection::open(&big).unwrap();
    c.execute_batch(
        "CREATE TABLE b(x); INSERT INTO b VALUES (zeroblob(70000000));
         CREATE TABLE r(i INTEGER, s TEXT); CREATE INDEX r_s ON r(s);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
         INSERT INTO r SELECT i, hex(randomblob(8)) FROM n;",
    )
    .unwrap();
    let r = check(&big, &["--integrity", "--statement-timeout", "1ms"]);
    let integrity = finding(&r, "integrity");
    assert_eq!(integrity["status"], "unknown", "{integrity}");
    assert!(
        integrity["summary"]
            .as_str()
            .unwrap()
            .contains("--statement-timeout"),
        "{integrity}"
    );
    assert_eq!(finding(&r, "freelist")["status"], "ok");
    c.execute_batch("DELETE FROM b;").unwrap();
    drop(c);
    let free = finding(&check(&big, &[]), "freelist").clone();
    assert_eq!(free["status"], "warning", "{free}");

    // A damaged freelist count: quick_check says so.
    let damaged = dir.path().join("damaged.db");
    let c = Connection::open(&damaged).unwrap();
    c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(c);
    assert_eq!(
        finding(&check(&damaged, &["--integrity"]), "integrity")["status"],
        "ok"
    );
    let mut bytes = std::fs::read(&damaged).unwrap();
    bytes[36..40].copy_from_slice(&7u32.to_be_bytes());
    std::fs::write(&damaged, bytes).unwrap();
    let integrity = finding(&check(&damaged, &["--integrity"]), "integrity").clone();
    assert_eq!(integrity["status"], "critical", "{integrity}");
    assert!(
        integrity["summary"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("freelist: size is 0 but should be 7"),
        "{integrity}"
    );
}

/// docs/metrics.md: a database on a network share is reported with the share's type, never with the
/// space of the disk it is mounted on, and not as a poll error; `check` flags it as critical.
/// The share is a real FUSE mount the kernel lists as `fuse.sshfs` (see `common::Share`).
#[test]
fn a_database_on_a_network_share_is_flagged_and_its_space_never_read() {
    let share = common::Share::mount();
    let (_conn, db) = wal_db(&share.path);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let (code, out, err) = run_cli(&[
        "check", "--config", &cfg, "--sample", "0s", "--format", "json", &db,
    ]);
    let report = json(&format!("{out}{err}"));
    validate(&report);
    assert_eq!(code, 2, "a critical finding: {report:#}");
    let fs = finding(&report, "filesystem_type");
    assert_eq!(fs["status"], "critical", "{fs}");
    assert_eq!(
        fs["value"].as_str().unwrap(),
        format!("fuse.sshfs on {}", share.path.display())
    );

    let daemon = common::Daemon::start(&["--db", &db, "--poll-interval", "100ms"]);
    daemon.wait_polls(3);
    let m = daemon.metrics();
    assert_eq!(m.db("sqlite_up", "app"), Some(1.0));
    assert!(m
        .db("sqlite_database_size_bytes", "app")
        .is_some_and(|b| b > 0.0));
    for gauge in [
        "sqlite_filesystem_free_bytes",
        "sqlite_filesystem_size_bytes",
    ] {
        assert_eq!(
            m.of_db(gauge, "app"),
            None,
            "{gauge} of a share is not exported"
        );
    }
    assert_eq!(
        m.samples
            .get("sqlite_ops_poll_errors_total{db=\"app\",probe=\"filesystem\"}")
            .copied(),
        Some(0.0)
    );
    let (_, status) = daemon.get("/api/v1/status");
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(
        status["databases"][0]["filesystem"]["fs_type"], "fuse.sshfs",
        "{status:#}"
    );
}

#[test]
fn forecasts_come_from_a_running_daemon_or_else_from_the_sample() {
    let dir = tempfile::tempdir().unwrap();
    let (_conn, db) = wal_db(dir.path());
    let cfg = write(
        dir.path(),
        ConfigFile::new()
            .database(Path::new(&db), "app")
            .no_disk_alert(),
    );
    let daemon = common::Daemon::start(&["--config", &cfg]);
    let served = common::wait_for(common::STEP, "the daemon's forecasts", || {
        let (status, body) = daemon.get("/api/v1/history?db=app&range=1h");
        let v = (status == 200).then(|| json(&body))?;
        let f = v["databases"][0]["forecasts"].as_array()?.clone();
        // The write rate's once two polls have measured one.
        (f.len() == 4).then_some(f)
    });
    let url = format!("http://{}", daemon.addr);
    let (code, out, err) = run_cli(&[
        "check", "--config", &cfg, "--sample", "0s", "--format", "json", "--daemon", &url,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let report = json(&out);
    validate(&report);
    assert_eq!(report["forecasts_from"], format!("daemon {url}"));
    let signals = |f: &[serde_json::Value]| -> Vec<String> {
        f.iter()
            .map(|f| f["signal"].as_str().unwrap().to_string())
            .collect()
    };
    let printed = report["databases"][0]["forecasts"].as_array().unwrap();
    assert_eq!(
        signals(printed),
        signals(&served),
        "the daemon's forecasts: {printed:?}"
    );
    assert_eq!(
        signals(printed),
        [
            "database_size",
            "database_size",
            "disk_full",
            "write_tx_per_sec"
        ]
    );

    // No daemon there: the sample's, and a note saying why.
    let nobody = format!("http://127.0.0.1:{}", common::free_port());
    let (_, out, _) = run_cli(&[
        "check", "--config", &cfg, "--sample", "1s", "--format", "json", "--daemon", &nobody,
    ]);
    let report = json(&out);
    validate(&report);
    assert_eq!(report["forecasts_from"], "sample");
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("the daemon did not answer") && notes.contains(&nobody),
        "{notes}"
    );
    let sampled = report["databases"][0]["forecasts"].as_array().unwrap();
    assert!(
        sampled[0]["text"]
            .as_str()
            .unwrap()
            .contains("not forecast yet"),
        "a second says nothing of growth: {sampled:?}"
    );
    let (_, human, _) = run_cli(&["check", "--config", &cfg, "--sample", "0s"]);
    assert!(
        human.contains("Forecasts (from this check's 0 s sample):\n  app: Database size"),
        "{human}"
    );
}

/// A reader that pinned the WAL before the sample began, while writes go on (issue 29 and a
/// walkthrough: `check` said `OK snapshot_age 5s` while the daemon fired): the pin clock ran
/// through the whole sample, which cannot tell how long before it started, so the finding is
/// UNKNOWN with why, never OK.
#[test]
fn a_pin_older_than_the_sample_is_unknown_never_ok() {
    let dir = tempfile::tempdir().unwrap();
    let (conn, db) = wal_db(dir.path());
    drop(conn);
    let mut py = common::PyDriver::start();
    py.open("r", Path::new(&db), "");
    py.cmd("exec r BEGIN");
    py.cmd("exec r SELECT count(*) FROM users");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, db) = (stop.clone(), db.clone());
        std::thread::spawn(move || {
            let conn = Connection::open(&db).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            while !stop.load(Ordering::Relaxed) {
                conn.execute("INSERT INTO users(name) VALUES (hex(randomblob(2000)))", [])
                    .unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let cfg = write(
        dir.path(),
        checking(&db)
            .threshold("snapshot_age", json!({"warning": "20s"}))
            .threshold("checkpoint_lag_age", json!({"warning": "20s"})),
    );
    // Past the point where a checkpoint is due (1000 frames waiting), then a 3 s sample.
    common::wait_for(common::STEP, "a checkpoint due", || {
        let c = Connection::open(&db).ok()?;
        let frames: i64 = c
            .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
            .ok()?;
        (frames > 1200).then_some(())
    });
    let (_, out, _) = run_cli(&[
        "check", "--config", &cfg, "--sample", "3s", "--format", "json",
    ]);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    py.cmd("end r");
    let report = json(&out);
    let f = finding(&report, "snapshot_age");
    assert_eq!(f["status"], "unknown", "{f:#}");
    assert!(
        f["summary"].as_str().unwrap().contains("whole 3s sample"),
        "{f:#}"
    );
}
