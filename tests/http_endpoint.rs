//! `sqlite-ops run` over HTTP (issue 2): a database written by rusqlite in this process and
//! watched by the daemon in a child process; broken databases beside it report `sqlite_up 0`
//! with a clear error while the healthy one is still served.

use crate::common;

use common::{get, temp_db, wait_for, Daemon, STEP};
use rusqlite::Connection;
use sqlite_ops::export::metrics::METRICS;

fn writer(path: &std::path::Path) -> Connection {
    let c = Connection::open(path).unwrap();
    c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB);")
        .unwrap();
    c
}

#[test]
fn metrics_hold_the_right_values_and_broken_databases_are_isolated() {
    let (dir, db) = temp_db("app.db");
    let conn = writer(&db);
    let missing = dir.path().join("missing.db");
    let text = dir.path().join("notes.db");
    std::fs::write(
        &text,
        "these are not the pages you are looking for\n".repeat(10),
    )
    .unwrap();
    let subdir = dir.path().join("adir.db");
    std::fs::create_dir(&subdir).unwrap();

    // No alert may fire here (the machine's free disk is not under test): `sqlite_alert` is
    // checked to be absent below.
    let config = dir.path().join("no-disk-rule.yaml");
    std::fs::write(
        &config,
        "thresholds:\n  filesystem_free: {warning: 'off', critical: 'off'}\n",
    )
    .unwrap();
    let args: Vec<String> = [&db, &missing, &text, &subdir]
        .iter()
        .flat_map(|p| ["--db".to_string(), p.display().to_string()])
        .chain(["--config".to_string(), config.display().to_string()])
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let daemon = Daemon::start(&args);
    let base = wait_for(STEP, "a first count", || {
        daemon
            .metrics()
            .db("sqlite_write_transactions_total", "app")
    });

    for i in 0..250 {
        conn.execute("INSERT INTO t(v) VALUES (zeroblob(?1))", [i * 10])
            .unwrap();
    }
    let total = wait_for(STEP, "250 more commits counted", || {
        daemon
            .metrics()
            .db("sqlite_write_transactions_total", "app")
            .filter(|&t| t >= base + 250.0)
    });
    assert_eq!(total, base + 250.0, "exactly one per commit");

    daemon.wait_polls(2);
    let m = daemon.metrics();
    let v = |name: &str| {
        m.db(name, "app")
            .unwrap_or_else(|| panic!("{name} for app"))
    };
    assert_eq!(v("sqlite_up"), 1.0);
    assert_eq!(v("sqlite_page_size_bytes"), 4096.0);
    assert_eq!(
        v("sqlite_database_size_bytes"),
        std::fs::metadata(&db).unwrap().len() as f64
    );
    let wal_len = std::fs::metadata(format!("{}-wal", db.display()))
        .unwrap()
        .len();
    assert_eq!(v("sqlite_wal_size_bytes"), wal_len as f64);
    let page_count: f64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0))
        .unwrap() as f64;
    assert_eq!(
        v("sqlite_pages"),
        page_count,
        "current page count from the wal-index"
    );
    assert_eq!(
        v("sqlite_checkpoint_lag_frames"),
        v("sqlite_wal_frames") - v("sqlite_wal_checkpointed_frames")
    );
    assert_eq!(
        v("sqlite_checkpoint_lag_bytes"),
        v("sqlite_checkpoint_lag_frames") * 4096.0
    );
    assert!(v("sqlite_wal_written_bytes_total") > 0.0);
    assert!(v("sqlite_filesystem_size_bytes") >= v("sqlite_filesystem_free_bytes"));
    assert!(
        m.text.contains("journal_mode=\"wal\""),
        "sqlite_info names the journal mode"
    );
    assert!(m.text.contains(&format!(
        "sqlite_version=\"{}\"",
        common::bundled_sqlite_version()
    )));

    // Every documented metric is exposed for a WAL database, with HELP and TYPE, except those
    // that need config or a firing alert (tests/alerts.rs sees them).
    let names = m.names();
    let conditional = [
        "sqlite_declared_backend_engineers",
        "sqlite_declared_regions",
        "sqlite_alert",
        "sqlite_ops_alertmanager_sent_alerts_total",
        "sqlite_ops_alertmanager_errors_total",
        "sqlite_ops_alertmanager_pending_alerts",
        "sqlite_ops_litestream_config_up",
    ];
    let conditional: Vec<&str> = conditional
        .into_iter()
        .chain(
            METRICS
                .iter()
                .map(|d| d.name)
                .filter(|n| n.starts_with("sqlite_litestream_")),
        )
        .collect();
    for name in &conditional {
        assert!(!names.contains(*name), "{name} needs config or an alert");
    }
    // Exposed once something was seen (a checkpoint's progress, a write-lock holder): in this
    // test, depending on timing.
    let when_seen = [
        "sqlite_checkpoint_last_progress_timestamp_seconds",
        "sqlite_write_lock_last_held_timestamp_seconds",
    ];
    for d in METRICS
        .iter()
        .filter(|d| !conditional.contains(&d.name) && !when_seen.contains(&d.name))
    {
        assert!(names.contains(d.name), "{} is exposed", d.name);
        assert!(
            m.text.contains(&format!("# HELP {} {}", d.name, d.help)),
            "HELP of {}",
            d.name
        );
    }
    assert!(
        names.iter().all(|n| METRICS.iter().any(|d| d.name == n)),
        "nothing undocumented: {names:?}"
    );

    // Broken databases: up 0 and an error counted under the right probe.
    for (db, probe) in [
        ("missing", "database"),
        ("notes", "header"),
        ("adir", "database"),
    ] {
        assert_eq!(m.db("sqlite_up", db), Some(0.0), "{db}");
        let errors =
            m.samples[&format!("sqlite_ops_poll_errors_total{{db=\"{db}\",probe=\"{probe}\"}}")];
        assert!(errors >= 1.0, "{db}: {probe} errors counted");
        assert_eq!(
            m.db("sqlite_database_size_bytes", db),
            None,
            "no stale gauges for {db}"
        );
    }
    let (status, body) = daemon.get("/api/v1/status");
    assert_eq!(status, 200);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    let dbs = status["databases"].as_array().unwrap();
    let error_of = |name: &str| {
        dbs.iter().find(|d| d["name"] == name).unwrap()["error"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(error_of("missing"), "database: file not found");
    assert_eq!(
        error_of("notes"),
        "header: not an SQLite database (bad magic string)"
    );
    // An I/O error names the file and keeps the system's message.
    let adir = error_of("adir");
    assert!(
        adir.starts_with("database: /") && adir.ends_with("adir.db: is a directory"),
        "{adir}"
    );
    assert_eq!(dbs.iter().find(|d| d["name"] == "app").unwrap()["up"], true);

    // The landing page, health, HEAD and other methods.
    let (status, page) = daemon.get("/");
    assert_eq!(status, 200);
    assert!(
        page.contains("href=\"/metrics\"")
            && page.contains("<td>app</td>")
            && page.contains("file not found")
    );
    assert_eq!(daemon.get("/healthz"), (200, "ok\n".to_string()));
    assert_eq!(daemon.get("/nope").0, 404);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("http://{}/metrics", daemon.addr);
    let head = agent.head(&url).call().unwrap();
    assert_eq!(head.status(), 200);
    let post = agent.post(&url).send("x").unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");

    // A file that appears later is picked up without a restart.
    let late = writer(&missing);
    late.execute("INSERT INTO t(v) VALUES (x'00')", []).unwrap();
    wait_for(STEP, "the late database to come up", || {
        (daemon.metrics().db("sqlite_up", "missing") == Some(1.0)).then_some(())
    });
}

#[test]
fn a_custom_telemetry_path_and_a_config_file() {
    let (dir, db) = temp_db("cfg.db");
    let _conn = writer(&db);
    let cfg = dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        format!("poll_interval: 50ms\nweb:\n  listen_address: 127.0.0.1:0\n  telemetry_path: /prom\ndatabases:\n  - path: {}\n    name: orders\n", db.display()),
    )
    .unwrap();
    let daemon = Daemon::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--web.listen-address",
        "127.0.0.1:0",
    ]);
    let body = wait_for(STEP, "metrics at /prom", || {
        let (status, body) = get(&format!("http://{}/prom", daemon.addr));
        (status == 200 && body.contains("sqlite_up{db=\"orders\"} 1")).then_some(body)
    });
    assert!(body.contains("sqlite_ops_build_info"));
    assert_eq!(daemon.get("/metrics").0, 404);
}

#[test]
fn bad_config_is_refused_with_file_field_and_expectation() {
    let (dir, _db) = temp_db("x.db");
    let cfg = dir.path().join("bad.yaml");
    std::fs::write(&cfg, "databases:\n  - path: /data/app.db\n    nmae: app\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sqlite-ops"))
        .args(["run", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}: databases[0]: unknown field `nmae`",
            cfg.display()
        )),
        "{err}"
    );
    assert!(err.contains("expected"), "{err}");
}

/// 200 concurrent clients scraping for 10 s get no errors (every poll cycle is rendered once and
/// served to all); an oversized request head is refused without harming the others.
#[test]
fn two_hundred_concurrent_scrapers_get_no_errors() {
    let (_dir, db) = common::temp_db("busy.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x);")
        .unwrap();
    let daemon = Daemon::start(&["--db", db.to_str().unwrap()]);
    daemon.wait_polls(1);
    let url = format!("http://{}/metrics", daemon.addr);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let clients: Vec<_> = (0..200)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_global(Some(std::time::Duration::from_secs(10)))
                    .build()
                    .into();
                let (mut times, mut errors) = (Vec::new(), Vec::new());
                while std::time::Instant::now() < until {
                    let t = std::time::Instant::now();
                    match agent.get(&url).call() {
                        Ok(mut r) if r.status() == 200 => {
                            let body = r.body_mut().read_to_string().unwrap_or_default();
                            if body.contains("sqlite_up{db=\"busy\"} 1") {
                                times.push(t.elapsed());
                            } else {
                                errors.push("incomplete body".to_string());
                            }
                        }
                        Ok(r) => errors.push(format!("status {}", r.status())),
                        Err(e) => errors.push(e.to_string()),
                    }
                }
                (times, errors)
            })
        })
        .collect();
    let (mut times, mut errors) = (Vec::new(), Vec::new());
    for c in clients {
        let (t, e) = c.join().unwrap();
        times.extend(t);
        errors.extend(e);
    }
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    times.sort();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    eprintln!(
        "{} scrapes by 200 clients in 10 s: p50 {:.1} ms, p99 {:.1} ms",
        times.len(),
        ms(times[times.len() / 2]),
        ms(times[times.len() * 99 / 100])
    );
    assert!(times.len() >= 200, "every client scraped");

    // A request head over the limit is refused; the next scrape is served.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let huge = "x".repeat(64 * 1024);
    let refused = agent.get(&url).header("X-Huge", &huge).call();
    assert!(
        refused
            .as_ref()
            .map_or(true, |r| r.status().as_u16() >= 400),
        "an oversized head is refused"
    );
    assert_eq!(daemon.get("/metrics").0, 200);
}
