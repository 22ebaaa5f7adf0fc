//! SIGHUP reloads the config: a new database is watched, a broken config is refused with a log
//! line while the running one goes on, and the listening address stays.

use crate::common;

use common::{temp_db, wait_for, ConfigFile, Daemon, STEP};
use rusqlite::Connection;
use serde_json::json;

#[test]
fn sighup_reloads_a_good_config_and_keeps_the_running_one_on_a_bad_one() {
    let (dir, a) = temp_db("a.db");
    let b = dir.path().join("b.db");
    for db in [&a, &b] {
        Connection::open(db)
            .unwrap()
            .execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x);")
            .unwrap();
    }
    let config = dir.path().join("c.yaml");
    ConfigFile::new().watch(&a).write(&config);
    let writer = Connection::open(&a).unwrap();
    writer.execute("INSERT INTO t VALUES (0)", []).unwrap();
    let daemon = Daemon::start(&["--config", config.to_str().unwrap()]);
    daemon.wait_polls(1);
    assert!(daemon.metrics().db("sqlite_up", "b").is_none());
    // Counters that count from when watching began: a reload must not reset them.
    for _ in 0..20 {
        writer.execute("INSERT INTO t VALUES (1)", []).unwrap();
    }
    daemon.wait_polls(2);
    let written = |d: &Daemon| {
        d.metrics()
            .db("sqlite_wal_written_bytes_total", "a")
            .unwrap()
    };
    let before = written(&daemon);
    assert!(before > 0.0);

    ConfigFile::new().watch(&a).watch(&b).write(&config);
    daemon.signal(libc::SIGHUP);
    wait_for(STEP, "the new database watched", || {
        (daemon.metrics().db("sqlite_up", "b") == Some(1.0)).then_some(())
    });
    assert!(written(&daemon) >= before, "counters survive the reload");

    std::fs::write(&config, "databases: [{path: /x.db, nmae: typo}]\n").unwrap();
    daemon.signal(libc::SIGHUP);
    daemon.wait_log("the refusal logged", |l| {
        l.contains("config not reloaded") && l.contains("nmae")
    });
    daemon.wait_polls(2);
    let m = daemon.metrics();
    assert_eq!(m.db("sqlite_up", "a"), Some(1.0));
    assert_eq!(
        m.db("sqlite_up", "b"),
        Some(1.0),
        "the running config goes on"
    );

    // A reload that removes a database and lowers a threshold under the other's size.
    let only_b = |threshold: &str| {
        ConfigFile::new()
            .watch(&b)
            .threshold(
                "database_size",
                json!({"warning": threshold, "critical": "off", "for": "0s"}),
            )
            .no_disk_alert()
            .write(&config);
        daemon.signal(libc::SIGHUP);
    };
    let large_b = |d: &Daemon| {
        d.alerts().iter().any(|a| {
            a["alert"] == "SQLiteDatabaseLarge" && a["db"] == "b" && a["state"] == "firing"
        })
    };
    only_b("1KB");
    wait_for(STEP, "a removed, b judged by the new threshold", || {
        let m = daemon.metrics();
        (m.db("sqlite_up", "a").is_none() && large_b(&daemon)).then_some(())
    });
    assert!(
        !daemon.metrics().text.contains("db=\"a\""),
        "nothing of the removed database is exported"
    );
    // And raised again: the alert resolves.
    only_b("1GB");
    wait_for(STEP, "b's alert resolved by the raised threshold", || {
        (!large_b(&daemon)).then_some(())
    });
}

#[test]
fn sigterm_stops_gracefully_and_logs_can_be_json() {
    let (_dir, db) = temp_db("term.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE t(x);")
        .unwrap();
    let mut daemon = Daemon::start(&["--db", db.to_str().unwrap(), "--log.format", "json"]);
    daemon.wait_log("the watching line", |l| l.contains("watching"));
    let line = daemon
        .log
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.contains("watching"))
        .cloned()
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["fields"]["db"], "term", "{v}");
    daemon.signal(libc::SIGTERM);
    let status = wait_for(STEP, "the daemon to exit", || daemon.try_wait());
    assert!(status.success(), "a clean exit: {status}");
}

#[test]
fn sigint_stops_gracefully_too() {
    let (_dir, db) = temp_db("int.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE t(x);")
        .unwrap();
    let mut daemon = Daemon::start(&["--db", db.to_str().unwrap()]);
    daemon.wait_polls(1);
    daemon.signal(libc::SIGINT);
    let status = wait_for(STEP, "the daemon to exit", || daemon.try_wait());
    assert!(status.success(), "a clean exit: {status}");
    daemon.wait_log("the log to say it stopped", |l| l.contains("stopped"));
}

/// The HTTP server carries on through reloads: a scraper hammering `/metrics` while the
/// config is reloaded five times sees no error.
#[test]
fn scrapes_carry_on_through_reloads() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let (dir, db) = temp_db("r.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE t(x);")
        .unwrap();
    let config = dir.path().join("c.yaml");
    ConfigFile::new().watch(&db).write(&config);
    let daemon = Daemon::start(&["--config", config.to_str().unwrap()]);
    daemon.wait_polls(1);

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let url = format!("http://{}/metrics", daemon.addr);
    let scraper = {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(std::time::Duration::from_secs(5)))
                .http_status_as_error(false)
                .build()
                .into();
            while !stop.load(Ordering::Relaxed) {
                let good = agent
                    .get(&url)
                    .call()
                    .is_ok_and(|mut r| r.status() == 200 && r.body_mut().read_to_string().is_ok());
                if good { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    for i in 1..=5 {
        daemon.signal(libc::SIGHUP);
        daemon.wait_log_lines("the reload", i, |l| l.contains("config reloaded"));
    }
    daemon.wait_polls(2);
    stop.store(true, Ordering::Relaxed);
    scraper.join().unwrap();
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(failed, 0, "{failed} failed scrapes of {}", ok + failed);
    assert!(ok >= 10, "the scraper kept scraping: {ok}");
}

/// `--log.level warn` leaves out the INFO lines (the start's "listening on") and keeps the
/// warnings (a database that cannot be read); `--log.level error` leaves out both.
#[test]
fn the_log_level_chooses_what_is_logged() {
    let (dir, _db) = temp_db("unused.db");
    let missing = dir.path().join("missing.db");
    let quiet = Daemon::start(&["--db", missing.to_str().unwrap(), "--log.level", "warn"]);
    quiet.wait_log("the warning", |l| l.contains("database unreadable"));
    quiet.wait_polls(3);
    assert_eq!(quiet.log_lines(|l| l.contains("INFO")), 0);
    drop(quiet);
    let silent = Daemon::start(&["--db", missing.to_str().unwrap(), "--log.level", "error"]);
    silent.wait_polls(5);
    assert_eq!(
        silent.log_lines(|l| l.contains("WARN") || l.contains("INFO")),
        0,
        "{:?}",
        silent.log.lock().unwrap()
    );
}

/// The log an operator follows (issue 29): the start names the status page and /metrics; an
/// alert going pending, firing and resolving is one line each with its value and threshold; a
/// reload is one line saying what changed, and nothing that reads as a start; no `Some(...)`.
#[test]
fn the_log_tells_alerts_and_reloads_as_they_happen() {
    let (dir, app) = temp_db("app.db");
    Connection::open(&app)
        .unwrap()
        .execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x);")
        .unwrap();
    let hooks = common::Receiver::start();
    let config = dir.path().join("c.yaml");
    let write = |size_warning: &str| {
        ConfigFile::new()
            .set("poll_interval", json!("200ms"))
            .database(&app, "app")
            .threshold("database_down", json!({"for": "1s"}))
            .threshold(
                "database_size",
                json!({"warning": size_warning, "for": "0s"}),
            )
            .no_disk_alert()
            .set(
                "notify",
                json!({"heartbeat": {"url": format!("{}/beat", hooks.url), "interval": "1s"}}),
            )
            .write(&config)
    };
    write("50GB");
    let d = Daemon::start(&["--config", config.to_str().unwrap()]);
    let lines = |needle: &str| d.log_lines(|l| l.contains(needle));
    d.wait_log("the heartbeat", |l| l.contains("heartbeat sent"));
    assert_eq!(lines("(the status page; metrics at http://"), 1);
    assert_eq!(lines("watching db=app"), 1);

    // Down for a second and more: pending, then firing; back: resolved. One line each.
    let aside = dir.path().join("aside.db");
    std::fs::rename(&app, &aside).unwrap();
    d.wait_log("firing", |l| {
        l.contains("alert firing") && l.contains("SQLiteDatabaseDown") && l.contains("db=app")
    });
    std::fs::rename(&aside, &app).unwrap();
    d.wait_log("resolved", |l| {
        l.contains("alert resolved") && l.contains("SQLiteDatabaseDown")
    });
    assert_eq!(lines("alert pending"), 1);
    assert_eq!(lines("alert firing"), 1);
    assert_eq!(lines("alert resolved"), 1);

    // A reload that changes a threshold: one line saying so, nothing like a start.
    let beats = lines("heartbeat sent");
    write("40GB");
    d.signal(libc::SIGHUP);
    d.wait_log("the reload", |l| l.contains("config reloaded"));
    // Two beats sent after the reload (1 s apart): long enough for a second "heartbeat sent".
    let sent = || {
        d.metrics()
            .get("sqlite_ops_heartbeat_sent_total")
            .unwrap_or(0.0)
    };
    let before = sent();
    wait_for(STEP, "two beats after the reload", || {
        (sent() >= before + 2.0).then_some(())
    });
    let reload = d
        .log
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.contains("config reloaded"))
        .cloned();
    assert!(
        reload.as_deref().is_some_and(
            |l| l.contains("databases added: none; removed: none; thresholds changed on: app")
        ),
        "{reload:?}"
    );
    assert_eq!(lines("listening on"), 1, "a reload is no start");
    assert_eq!(lines("watching db=app"), 1, "a reload is no start");
    let log = d.log.lock().unwrap().join("\n");
    assert!(
        !log.contains("Some("),
        "errors and values as their text: {log}"
    );
    assert_eq!(
        log.matches("heartbeat sent").count(),
        beats,
        "the heartbeat goes on, not told again: {log}"
    );
}
