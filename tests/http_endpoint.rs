//! `sqlite-ops run` over HTTP (issue 2): a database written by rusqlite in this process and
//! watched by the daemon in a child process; broken databases beside it report `sqlite_up 0`
//! with a clear error while the healthy one is still served.

use crate::common;

use common::{get, temp_db, wait_for, ConfigFile, Daemon, STEP};
use rusqlite::Connection;
use serde_json::json;
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
    let fs = |name: &str| {
        m.of_db(name, "app")
            .unwrap_or_else(|| panic!("{name} for app"))
    };
    assert!(fs("sqlite_filesystem_size_bytes") >= fs("sqlite_filesystem_free_bytes"));
    assert!(
        m.text
            .contains("sqlite_filesystem_free_bytes{db=\"app\",mountpoint=\""),
        "the filesystem's series name it"
    );
    assert!(
        m.text.contains("journal_mode=\"wal\""),
        "sqlite_info names the journal mode"
    );
    assert!(m.text.contains(&format!(
        "sqlite_version=\"{}\"",
        common::bundled_sqlite_version()
    )));

    // Every documented metric is exposed for a WAL database, with HELP and TYPE, except those
    // that need config or a firing alert (tests/alerts.rs and tests/notify.rs see them).
    let names = m.names();
    let conditional = [
        "sqlite_declared_backend_engineers",
        "sqlite_declared_regions",
        "sqlite_alert",
        "sqlite_ops_alertmanager_sent_alerts_total",
        "sqlite_ops_alertmanager_errors_total",
        "sqlite_ops_alertmanager_pending_alerts",
        "sqlite_ops_webhook_sent_alerts_total",
        "sqlite_ops_webhook_errors_total",
        "sqlite_ops_webhook_pending_alerts",
        "sqlite_ops_heartbeat_sent_total",
        "sqlite_ops_heartbeat_errors_total",
        "sqlite_ops_heartbeat_withheld",
        "sqlite_ops_heartbeat_held_back_total",
        "sqlite_ops_litestream_config_up",
    ];
    let conditional: Vec<&str> = conditional
        .into_iter()
        .chain(METRICS.iter().map(|d| d.name).filter(|n| {
            n.starts_with("sqlite_litestream_") || n.starts_with("sqlite_restore_drill_")
        }))
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
            && page.contains("<section class=\"db\" id=\"db-app\"")
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
    // The file's address could not be bound here (TEST-NET-1 is not a local address): the
    // daemon starts only if the command line's wins.
    ConfigFile::new()
        .set("poll_interval", json!("50ms"))
        .set(
            "web",
            json!({"listen_address": "192.0.2.1:9", "telemetry_path": "/prom"}),
        )
        .database(&db, "orders")
        .write(&cfg);
    let daemon = Daemon::start(&["--config", cfg.to_str().unwrap()]);
    let body = wait_for(STEP, "metrics at /prom", || {
        let (status, body) = get(&format!("http://{}/prom", daemon.addr));
        (status == 200 && body.contains("sqlite_up{db=\"orders\"} 1")).then_some(body)
    });
    assert!(body.contains("sqlite_ops_build_info"));
    assert_eq!(daemon.get("/metrics").0, 404);
    assert!(daemon.addr.starts_with("127.0.0.1:"), "{}", daemon.addr);
    drop(daemon);

    // The command line wins over the file for the path and the poll interval too.
    let daemon = Daemon::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--web.telemetry-path",
        "/cli",
        "--poll-interval",
        "250ms",
    ]);
    wait_for(STEP, "metrics at /cli", || {
        (daemon.get("/cli").0 == 200).then_some(())
    });
    assert_eq!(daemon.get("/prom").0, 404);
    let status: serde_json::Value = serde_json::from_str(&daemon.get("/api/v1/status").1).unwrap();
    assert_eq!(status["poll_interval_seconds"], 0.25, "{status}");
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
/// served to all).
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

    // The limits on request heads are tested exactly below
    // (request_heads_over_16_kib_are_refused_and_slow_heads_time_out_after_10_s).
    assert_eq!(daemon.get("/metrics").0, 200);
}

/// `/healthz` says 503 while the poller is stuck (here: one `pread` of the database delayed by
/// 4 s with strace's fault injection, as a hung disk would), and 200 again once it publishes.
#[test]
fn healthz_answers_503_while_the_poller_is_stuck_and_200_after() {
    let (_dir, db) = temp_db("stuck.db");
    // A reader in a transaction keeps the database from settling: its files are read at every
    // poll, as the pread the fault is injected into needs (a settled one is not read at all).
    let reader = writer(&db);
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM sqlite_master;")
        .unwrap();
    let strace = common::program("strace", "strace");
    let daemon = Daemon::start_wrapped(
        &[
            strace.to_str().unwrap(),
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            "trace=pread64",
            "-e",
            "inject=pread64:delay_exit=4000000:when=40",
        ],
        &["--db", db.to_str().unwrap(), "--poll-interval", "100ms"],
        &[],
    );
    let health = || daemon.get("/healthz").0;
    wait_for(STEP, "healthy", || (health() == 200).then_some(()));
    wait_for(STEP, "503 while a pread hangs", || {
        (health() == 503).then_some(())
    });
    wait_for(STEP, "healthy again", || (health() == 200).then_some(()));
    assert_eq!(
        daemon.get("/metrics").0,
        200,
        "the server answered throughout"
    );
    drop(reader);
}

/// Sends `head` on a fresh connection and returns the status line of the answer, or "closed"
/// when the server closed the connection without one; and how long that took.
fn raw_exchange(addr: &str, head: &str) -> (String, std::time::Duration) {
    use std::io::{BufRead, Write};
    let started = std::time::Instant::now();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut line = String::new();
    let read = std::io::BufReader::new(&stream).read_line(&mut line);
    let answer = match read {
        Ok(0) | Err(_) => "closed".to_string(),
        Ok(_) => line.trim_end().to_string(),
    };
    (answer, started.elapsed())
}

/// docs/deployment.md: "A request head over 16 KiB is refused, a client has 10 s to send its headers".
#[test]
fn request_heads_over_16_kib_are_refused_and_slow_heads_time_out_after_10_s() {
    let (_dir, db) = temp_db("limits.db");
    drop(writer(&db));
    let daemon = Daemon::start(&["--db", db.to_str().unwrap()]);
    let head = |pad: usize| {
        format!(
            "GET /metrics HTTP/1.1\r\nHost: test\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
            "x".repeat(pad)
        )
    };
    let (under, _) = raw_exchange(&daemon.addr, &head(15 * 1024));
    assert_eq!(under, "HTTP/1.1 200 OK", "a 15 KiB head is served");
    let (over, _) = raw_exchange(&daemon.addr, &head(17 * 1024));
    assert_eq!(
        over, "HTTP/1.1 431 Request Header Fields Too Large",
        "a 17 KiB head is refused"
    );
    // Half a head, then silence: the server gives up on it at 10 s, not before.
    let (slow, waited) = raw_exchange(&daemon.addr, "GET /metrics HTTP/1.1\r\nHost: test\r\n");
    assert!(
        slow == "closed" || slow.starts_with("HTTP/1.1 408"),
        "an unfinished head is dropped: {slow}"
    );
    assert!(
        (9.5..15.0).contains(&waited.as_secs_f64()),
        "dropped after {waited:?}, the documented 10 s"
    );
    assert_eq!(daemon.get("/metrics").0, 200, "and the server goes on");
}

/// docs/deployment.md: "at most 512 connections are served at once (more wait in the listen backlog)".
/// With a limit of 4,096 descriptors the daemon keeps 1,024 for itself and serves half of
/// them: 512 silent clients hold every slot, and the next client is answered only once one
/// of them leaves.
#[test]
fn at_most_512_connections_are_served_at_once() {
    // This process needs more than 512 sockets.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct we pass.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    assert!(
        lim.rlim_cur >= 2048,
        "the test needs 2,048 descriptors: {}",
        lim.rlim_cur
    );
    let (_dir, db) = temp_db("cap.db");
    drop(writer(&db));
    let prlimit = common::program("prlimit", "util-linux");
    let daemon = Daemon::start_wrapped(
        &[prlimit.to_str().unwrap(), "--nofile=4096:4096", "--"],
        &["--db", db.to_str().unwrap()],
        &[],
    );
    let mut silent: Vec<std::net::TcpStream> = (0..512)
        .map(|_| std::net::TcpStream::connect(&daemon.addr).unwrap())
        .collect();
    // Every one of them accepted (the kernel's count of the daemon's sockets: theirs and the
    // listener), so that the next one waits for a slot, not for accept().
    let sockets = || {
        common::fd_targets(daemon.pid())
            .iter()
            .filter(|t| t.to_string_lossy().starts_with("socket:"))
            .count()
    };
    wait_for(STEP, "512 connections accepted", || {
        (sockets() > 512).then_some(())
    });
    use std::io::{Read, Write};
    let mut next = std::net::TcpStream::connect(&daemon.addr).unwrap();
    next.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .unwrap();
    next.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 64];
    let waiting = next.read(&mut buf);
    assert!(
        waiting
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "the 513th client waits while 512 are served: {waiting:?}"
    );
    // One of them leaves: the waiting client is served then, well before the silent ones are
    // dropped for their silence (10 s), which would serve it with no cap at all.
    drop(silent.pop());
    next.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let n = next.read(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert_eq!(silent.len(), 511, "the others still hold their slots");
}

/// The daemon's own process as every exporter shows it (issue 36): client_golang's names and
/// units, each checked against the kernel's own account of the process, and a scrape that
/// `promtool check metrics` accepts.
#[test]
fn the_process_series_match_what_the_kernel_says() {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let (dir, db) = temp_db("proc.db");
    drop(writer(&db));
    let prlimit = common::program("prlimit", "util-linux");
    let daemon = Daemon::start_wrapped(
        &[prlimit.to_str().unwrap(), "--nofile=2048:2048", "--"],
        &["--db", db.to_str().unwrap()],
        &[],
    );
    daemon.wait_polls(3);
    let m = daemon.metrics();
    let v = |name: &str| m.get(name).unwrap_or_else(|| panic!("{name}"));
    let pid = daemon.pid();
    assert_eq!(v("process_max_fds"), 2048.0, "the limit prlimit set");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as f64;
    assert!(
        (v("process_open_fds") - fds).abs() <= 4.0,
        "{} open descriptors said, {fds} in /proc",
        v("process_open_fds")
    );
    let start = v("process_start_time_seconds");
    assert!(
        start >= started - 2.0 && start <= started + 60.0,
        "started at {start}, the test at {started}"
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib = |key: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|r| r.split_whitespace().next())
            .unwrap()
            .parse()
            .unwrap()
    };
    let rss = v("process_resident_memory_bytes");
    assert!(
        (rss / (kib("VmRSS:") * 1024.0) - 1.0).abs() < 0.25,
        "{rss} bytes resident, /proc says {} kB",
        kib("VmRSS:")
    );
    // Read a moment apart from the scrape: a thread or a mapping may come or go in between.
    let vm = v("process_virtual_memory_bytes");
    assert!(
        (vm / (kib("VmSize:") * 1024.0) - 1.0).abs() < 0.1,
        "{vm} bytes virtual, /proc says {} kB",
        kib("VmSize:")
    );
    assert!((v("process_threads") - kib("Threads:")).abs() <= 2.0);
    // CPU seconds: at most what /proc/PID/stat says a moment later (utime + stime, in the
    // kernel's 100 ticks a second), and not much less.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(") ").next().unwrap().split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let cpu = v("process_cpu_seconds_total");
    assert!(
        cpu <= ticks / 100.0 + 1e-9 && cpu >= ticks / 100.0 - 0.5,
        "{cpu} s said, {ticks} ticks in /proc"
    );
    let file = dir.path().join("scrape.txt");
    std::fs::write(&file, &m.text).unwrap();
    let out = std::process::Command::new(common::program("promtool", "prometheus"))
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether the daemon keeps up with its databases (issue 36): one database polled every
/// second counts every cycle and none late; a thousand polled every 10 ms (the shortest
/// interval allowed) cannot open them all within one, and the late cycles are counted.
#[test]
fn poll_cycles_longer_than_the_interval_are_counted_late() {
    let cycles = |d: &Daemon| {
        let m = d.metrics();
        let v = |name: &str| m.get(name).unwrap_or_else(|| panic!("{name}"));
        (
            v("sqlite_ops_poll_cycles_total"),
            v("sqlite_ops_poll_cycles_late_total"),
            v("sqlite_ops_poll_cycle_duration_seconds"),
            v("sqlite_ops_poll_interval_seconds"),
        )
    };
    let (dir, db) = temp_db("one.db");
    drop(writer(&db));
    let one = Daemon::start(&["--db", db.to_str().unwrap(), "--poll-interval", "1s"]);
    one.wait_polls(3);
    let (total, late, took, interval) = cycles(&one);
    assert!(total >= 3.0 && late == 0.0, "{total} cycles, {late} late");
    assert!(
        took > 0.0 && took < 1.0 && interval == 1.0,
        "{took} s of {interval}"
    );
    drop(one);

    // A thousand copies of one WAL database (with its -wal and -shm), opened at the first poll.
    let fleet = dir.path().join("fleet");
    std::fs::create_dir(&fleet).unwrap();
    for i in 0..1000 {
        for suffix in ["", "-wal", "-shm"] {
            let from = format!("{}{suffix}", db.display());
            if std::path::Path::new(&from).exists() {
                std::fs::copy(&from, fleet.join(format!("t{i}.db{suffix}"))).unwrap();
            }
        }
    }
    let cfg = ConfigFile::new()
        .set("databases", json!([{"glob": fleet.join("*.db")}]))
        .no_disk_alert()
        .write(&dir.path().join("fleet.yaml"));
    let many = Daemon::start(&["--config", cfg.to_str().unwrap(), "--poll-interval", "10ms"]);
    let (total, late, _, interval) = wait_for(STEP, "a late cycle", || {
        Some(cycles(&many)).filter(|c| c.1 >= 1.0)
    });
    assert!(
        late <= total && (interval - 0.01).abs() < 1e-9,
        "{late} late of {total}, every {interval} s"
    );
}
