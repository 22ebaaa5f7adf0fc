//! Alerts on the production guide's own stack (issue 15): an application in another process
//! with another SQLite build (tests/helpers/guide_app.py: one write connection, four read-only
//! connections, the guide's PRAGMAs), the real Litestream 0.5.17 and 0.3.13 replicating to a
//! file replica, and `sqlite-ops run` pushing to a real Alertmanager.
//!
//! A healthy stack, busy and then idle for three times the shortened thresholds, sends no alert
//! at all; each fault is caught, and the seconds from fault to alert in Alertmanager are printed
//! (`FAULT ...` lines, `cargo test --test guide_stack -- --nocapture`) for docs/alerts.md's table.

use crate::common;

use common::{
    free_port, wait_for, Alertmanager, ConfigFile, Daemon, Guard, GuideApp, Litestream, PyDriver,
    STEP,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The thresholds a test shortens (the defaults are 5 minutes).
const SHORT: u64 = 20;
/// The guide application's write rate while busy.
const BUSY_RATE: u32 = 300;

/// The whole stack: application, Litestream, Alertmanager and the daemon.
struct Stack {
    _dir: tempfile::TempDir,
    db: PathBuf,
    app: GuideApp,
    litestream: Option<Litestream>,
    am: Alertmanager,
    daemon: Daemon,
}

/// Whether any file exists under `dir`, at any depth.
fn has_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let p = e.path();
            if p.is_dir() {
                has_files(&p)
            } else {
                true
            }
        })
    })
}

impl Stack {
    /// Starts the stack with the application busy, and waits until Litestream has replicated
    /// and the daemon has polled, so that nothing starts out pending.
    fn start(version: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        let mut app = GuideApp::start(&db);
        app.cmd(&format!("rate {BUSY_RATE}"));
        let replica = dir.path().join("replica");
        let yml = dir.path().join("litestream.yml");
        // Litestream keeps its local change files a second past level 1 covering them (level 1
        // every second), so that a file kept past its time (2 × 3 s) shows within the test: at
        // Litestream's defaults that takes 11.5 minutes; and it snapshots every 5 s, so that the
        // snapshots' and level 1's waits are judged many intervals over. 0.3 ignores these.
        std::fs::write(
            &yml,
            format!(
                "l0-retention: 1s\nl0-retention-check-interval: 1s\nlevels:\n  - interval: 1s\nsnapshot:\n  interval: 5s\n\
                 dbs:\n  - path: {}\n    replicas:\n      - type: file\n        path: {}\n",
                db.display(),
                replica.display()
            ),
        )
        .unwrap();
        let litestream = Litestream::start(version, &yml);
        wait_for(STEP, "Litestream's first replication", || {
            has_files(&replica).then_some(())
        });
        let am = Alertmanager::start(&dir.path().join("am"), free_port());
        let config = dir.path().join("sqlite-ops.yaml");
        let short = json!({"warning": format!("{SHORT}s"), "for": "0s"});
        ConfigFile::new()
            .set("poll_interval", json!("1s"))
            .litestream(&yml, "1s")
            .set(
                "alertmanager",
                json!({"urls": [am.url], "resend_interval": "1m"}),
            )
            .threshold("snapshot_age", short.clone())
            .threshold("checkpoint_lag_age", short)
            .threshold("replication_lag", json!({"for": "0s"}))
            .threshold("writer_processes", json!({"for": "0s"}))
            .threshold("write_lock_hold", json!({"for": "0s"}))
            .threshold(
                "litestream_local_state",
                json!({"warning": "1B", "for": "0s"}),
            )
            // Litestream's own work takes a second or two on a loaded machine, most of a
            // one-second interval: judged at five intervals here, three by default.
            .threshold("litestream_compaction", json!({"warning": 5, "for": "0s"}))
            .threshold("litestream_snapshot", json!({"warning": 2, "for": "0s"}))
            .no_disk_alert()
            .write(&config);
        let daemon = Daemon::start(&[
            "--config",
            config.to_str().unwrap(),
            "--poll-interval",
            "1s",
        ]);
        daemon.wait_polls(2);
        Stack {
            _dir: dir,
            db,
            app,
            litestream: Some(litestream),
            am,
            daemon,
        }
    }

    /// Names of the alerts active in Alertmanager.
    fn am_alerts(&self) -> Vec<String> {
        self.am
            .alerts()
            .iter()
            .filter(|a| a["status"]["state"] == "active")
            .map(|a| a["labels"]["alertname"].as_str().unwrap().to_string())
            .collect()
    }

    /// Waits until Alertmanager holds `alert` for the database, and returns it with the
    /// seconds since `since`.
    fn wait_for_alert(&self, alert: &str, since: Instant, within: Duration) -> (Value, f64) {
        let a = wait_for(within, &format!("{alert} in Alertmanager"), || {
            self.am.find(alert, "app")
        });
        (a, since.elapsed().as_secs_f64())
    }

    /// Waits until Alertmanager no longer holds `alert` as active, resolved by the daemon's
    /// push before it could expire; returns the seconds since `since`.
    fn wait_resolved(&self, alert: &str, since: Instant) -> f64 {
        self.am.wait_resolved(alert, "app", Duration::from_secs(60));
        since.elapsed().as_secs_f64()
    }

    fn status(&self) -> Value {
        let body: Value = serde_json::from_str(&self.daemon.get("/api/v1/status").1).unwrap();
        body["databases"][0].clone()
    }

    /// Waits until the stack has run `seconds` with no alert at all.
    fn quiet_for(&self, seconds: u64) {
        self.only_for(seconds, &[]);
    }

    /// Waits until the stack has run `seconds` with no alert pending or firing but `allowed`
    /// (`name on db (state)`), at every look and at two polls after the last (a loaded machine polls
    /// late: the window is the daemon's, not only the clock's).
    fn only_for(&self, seconds: u64, allowed: &[&str]) {
        let until = Instant::now() + Duration::from_secs(seconds);
        let look = || {
            let seen = self.daemon.raised();
            assert!(
                seen.iter().all(|a| allowed.contains(&a.as_str())),
                "raised {seen:?} beside {allowed:?}; replicas: {}",
                self.status()["litestream"]
            );
        };
        while Instant::now() < until {
            look();
            std::thread::sleep(Duration::from_millis(500));
        }
        self.daemon.wait_polls(2);
        look();
    }
}

fn fault(what: &str, alert: &str, seconds: f64) {
    println!("FAULT {what}: {alert} in Alertmanager after {seconds:.1} s");
}

/// Busy at the guide's pace, then idle for three times the shortened thresholds: no alert is
/// pending or firing at any poll, and Alertmanager receives nothing.
fn healthy(version: &str) {
    let mut s = Stack::start(version);
    s.quiet_for(SHORT);
    // The application writes, and is the only writer that counts. (Litestream's own writes are
    // short, and seen only when a 10 ms lock sample happens to fall on one.)
    let st = s.status();
    let roles: Vec<&str> = st["write_lock"]["writers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["role"].as_str().unwrap())
        .collect();
    assert!(roles.contains(&"application"), "{roles:?}");
    assert!(
        roles
            .iter()
            .all(|r| ["application", "litestream"].contains(r)),
        "{roles:?}"
    );
    assert_eq!(st["write_lock"]["application_writers"], 1);
    let m = s.daemon.metrics();
    assert_eq!(m.db("sqlite_writer_processes", "app"), Some(1.0));
    assert_eq!(
        m.samples
            .get("sqlite_lock_holder_processes{db=\"app\",role=\"litestream\"}"),
        Some(&1.0),
        "Litestream recognised by its build information"
    );
    let litestream_holder = st["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == "litestream")
        .cloned()
        .expect("Litestream holds the database open");
    assert_eq!(litestream_holder["recognised_by"], "go build info");
    assert_eq!(
        litestream_holder["pid"].as_i64(),
        s.litestream.as_ref().map(|l| i64::from(l.pid()))
    );

    s.app.cmd("rate 0");
    s.quiet_for(3 * SHORT + 5);
    // Litestream still holds its guard on the idle database, which is not a pinned snapshot.
    let st = s.status();
    assert_eq!(st["wal"]["snapshot_pinned_seconds"], 0.0);
    assert_eq!(st["wal"]["checkpoint_starved_seconds"], 0.0);
    assert!(s.am_alerts().is_empty(), "{:?}", s.am_alerts());
    let m = s.daemon.metrics();
    let sent: f64 = m
        .samples
        .iter()
        .filter(|(k, _)| k.starts_with("sqlite_ops_alertmanager_sent_alerts_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(sent, 0.0, "nothing was ever pushed");
}

#[test]
fn a_healthy_stack_with_litestream_05_pages_nobody() {
    healthy("0.5.17");
}

#[test]
fn a_healthy_stack_with_litestream_03_pages_nobody() {
    healthy("0.3.13");
}

/// An application reader keeps a transaction open while writes go on: the snapshot alert names
/// the application, checkpoints starve; ending the transaction resolves both.
#[test]
fn a_long_application_reader_is_caught_and_named() {
    let mut s = Stack::start("0.5.17");
    s.quiet_for(3);
    s.app.cmd("hold_read");
    let t0 = Instant::now();
    let within = Duration::from_secs(SHORT + 30);
    let (pinned, secs) = s.wait_for_alert("SQLiteSnapshotPinned", t0, within);
    fault(
        "an application reader holds a transaction open",
        "SQLiteSnapshotPinned",
        secs,
    );
    assert!(
        pinned["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("(application)"),
        "{pinned}"
    );
    let (_, secs) = s.wait_for_alert("SQLiteCheckpointStarved", t0, within);
    fault(
        "an application reader holds a transaction open",
        "SQLiteCheckpointStarved",
        secs,
    );
    let st = s.status();
    assert_eq!(st["wal"]["pinned_by"]["role"], "application");
    assert_eq!(
        st["wal"]["pinned_by"]["pid"].as_i64(),
        Some(i64::from(s.app.pid()))
    );
    let released = Instant::now();
    s.app.cmd("release_read");
    let a = s.wait_resolved("SQLiteSnapshotPinned", released);
    let b = s.wait_resolved("SQLiteCheckpointStarved", released);
    println!("RESOLVED reader released: in {a:.1} s and {b:.1} s");
}

/// Litestream killed: the replication lag alert, and nothing else (the application's own
/// checkpoints take over).
#[test]
fn litestream_killed_raises_replication_lag() {
    let mut s = Stack::start("0.5.17");
    s.quiet_for(3);
    drop(s.litestream.take());
    let t0 = Instant::now();
    let (_, secs) = s.wait_for_alert("SQLiteReplicationLag", t0, Duration::from_secs(40));
    fault("Litestream killed", "SQLiteReplicationLag", secs);
    // Nothing else comes of it over the shortened thresholds (a dead Litestream pins nothing).
    s.only_for(SHORT + 3, &["SQLiteReplicationLag on app (firing)"]);
    let active = s.am_alerts();
    assert_eq!(active, vec!["SQLiteReplicationLag"], "{active:?}");
    // Started again: it catches up and the alert is resolved by a push.
    s.litestream = Some(Litestream::start(
        "0.5.17",
        &s._dir.path().join("litestream.yml"),
    ));
    let back = Instant::now();
    let b = s.wait_resolved("SQLiteReplicationLag", back);
    println!("RESOLVED Litestream started again: lag in {b:.1} s");
}

/// Litestream frozen (SIGSTOP): it keeps its read lock, copies nothing and checkpoints
/// nothing. Replication lag, and a snapshot alert naming Litestream as the holder.
fn frozen(version: &str) {
    let s = Stack::start(version);
    s.quiet_for(3);
    let ls = s.litestream.as_ref().unwrap();
    // Freeze it outside its brief write-lock holds (its checkpoints) and inside a read
    // transaction, as a stall usually is.
    let t0 = wait_for(
        STEP,
        "Litestream frozen reading, without the write lock",
        || {
            ls.signal(libc::SIGSTOP);
            let stopped = Instant::now();
            // A whole poll after the stop: what it saw of the locks is the frozen process's.
            s.daemon.wait_polls(2);
            if !common::frozen_reading(&s.status(), ls.pid()) {
                ls.signal(libc::SIGCONT);
                s.daemon.wait_polls(1);
                None
            } else {
                Some(stopped)
            }
        },
    );
    let within = Duration::from_secs(SHORT + 30);
    let (_, secs) = s.wait_for_alert("SQLiteReplicationLag", t0, within);
    let what = format!("Litestream {version} frozen (SIGSTOP)");
    fault(&what, "SQLiteReplicationLag", secs);
    let (pinned, secs) = s.wait_for_alert("SQLiteSnapshotPinned", t0, within);
    fault(&what, "SQLiteSnapshotPinned", secs);
    assert!(
        pinned["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("(litestream)"),
        "{pinned}"
    );
    let (_, secs) = s.wait_for_alert("SQLiteCheckpointStarved", t0, within);
    fault(&what, "SQLiteCheckpointStarved", secs);
    assert_eq!(s.status()["wal"]["pinned_by"]["role"], "litestream");
    ls.signal(libc::SIGCONT);
    let thawed = Instant::now();
    let a = s.wait_resolved("SQLiteSnapshotPinned", thawed);
    let b = s.wait_resolved("SQLiteReplicationLag", thawed);
    println!("RESOLVED Litestream {version} thawed: snapshot alert in {a:.1} s, lag in {b:.1} s");
}

#[test]
fn litestream_05_frozen_is_caught_and_named() {
    frozen("0.5.17");
}

#[test]
fn litestream_03_frozen_is_caught_and_named() {
    frozen("0.3.13");
}

/// A second application process writes: single-writer discipline is broken.
#[test]
fn a_second_application_writer_is_caught() {
    let s = Stack::start("0.5.17");
    s.quiet_for(3);
    // A writer of its own: transactions of 20 ms every 100 ms. (Transactions much shorter than
    // the 10 ms lock sampling can slip through it; docs/metrics.md, "Limits".)
    let script = r#"
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
end = time.time() + 60
while time.time() < end:
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT INTO events(at, body) VALUES (0, 'other')")
    time.sleep(0.02)
    c.execute("COMMIT")
    time.sleep(0.08)
"#;
    let other = Guard::spawn(Command::new("python3").args(["-c", script]).arg(&s.db))
        .expect("python3 runs");
    let t0 = Instant::now();
    let (a, secs) = s.wait_for_alert("SQLiteMultipleWriters", t0, Duration::from_secs(20));
    drop(other);
    fault(
        "a second application process writes",
        "SQLiteMultipleWriters",
        secs,
    );
    assert!(
        a["annotations"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("2 application processes"),
        "{a}"
    );
    // The second writer gone: once it has left the one-minute window, resolved by a push.
    let gone = Instant::now();
    s.am.wait_resolved("SQLiteMultipleWriters", "app", Duration::from_secs(100));
    println!(
        "RESOLVED second writer gone: in {:.1} s",
        gone.elapsed().as_secs_f64()
    );
}

/// A write transaction held past the guide's busy_timeout (5 s).
#[test]
fn a_write_transaction_past_busy_timeout_is_caught() {
    let mut s = Stack::start("0.5.17");
    s.quiet_for(3);
    let t0 = Instant::now();
    s.app.cmd("hold_write 8000");
    let (_, secs) = s.wait_for_alert("SQLiteLongWriteTransaction", t0, Duration::from_secs(30));
    fault(
        "a write transaction held 8 s (busy_timeout 5 s)",
        "SQLiteLongWriteTransaction",
        secs,
    );
    let active = s.am_alerts();
    assert!(
        !active.contains(&"SQLiteMultipleWriters".to_string()),
        "{active:?}"
    );
    // The long hold has left the one-minute window: resolved by a push.
    s.am.wait_resolved(
        "SQLiteLongWriteTransaction",
        "app",
        Duration::from_secs(100),
    );
}

/// The daemon in its own pid namespace (a Kubernetes pod without shareProcessNamespace): a
/// lock held by a process it cannot see is reported as such, never as "no process".
#[test]
fn a_holder_outside_the_pid_namespace_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let mut app = PyDriver::start();
    app.open("w", &db, "journal_mode=WAL");
    app.cmd("begin_write w");
    let unshare = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"];

    let out = Command::new(unshare[0])
        .args(&unshare[1..])
        .arg(env!("CARGO_BIN_EXE_sqlite-ops"))
        .args(["check", "--sample", "1s", "--format", "json"])
        .arg(&db)
        .output()
        .expect("unshare runs");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let processes = report["databases"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "processes")
        .cloned()
        .unwrap();
    let summary = processes["summary"].as_str().unwrap();
    assert!(
        summary.contains("held by a process outside this pid namespace: writer"),
        "{summary}"
    );
    assert!(!summary.contains("no process holds"), "{summary}");

    let d = Daemon::start_wrapped(&unshare, &["--db", db.to_str().unwrap()], &[]);
    d.wait_polls(3);
    let body: Value = serde_json::from_str(&d.get("/api/v1/status").1).unwrap();
    let holders = body["databases"][0]["processes"]
        .as_array()
        .unwrap()
        .clone();
    let outside = holders
        .iter()
        .find(|p| p["role"] == "outside_namespace")
        .unwrap_or_else(|| panic!("{holders:?}"));
    assert_eq!(outside["pid"], 0);
    assert!(outside["roles"]
        .as_array()
        .unwrap()
        .contains(&Value::from("writer")));
    let m = d.metrics();
    assert_eq!(
        m.samples
            .get("sqlite_lock_holder_processes{db=\"app\",role=\"outside_namespace\"}"),
        Some(&1.0)
    );
    app.cmd("end w");
}
