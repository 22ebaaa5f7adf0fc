//! Alerts outlive reloads and restarts, against a real Alertmanager: SIGHUP with an unchanged
//! config keeps pending and firing alerts with their start times and the delivery counters; a
//! changed setting restarts only that rule's pending alerts; SIGTERM and a start again (with a
//! `state_file`) keeps a true alert firing in Alertmanager with the same start, never resolved
//! in between, even when its `for` is far longer than the `endsAt` margin.

use crate::common;

use common::{free_port, wait_for, Alertmanager, ConfigFile, Daemon, STEP};
use rusqlite::Connection;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// (state, active_since) of `alert` on `db` as the daemon lists it.
fn alert_state(d: &Daemon, alert: &str) -> Option<(String, String)> {
    d.alerts()
        .iter()
        .find(|a| a["alert"] == alert && a["db"] == "app")
        .map(|a| {
            (
                a["state"].as_str().unwrap().to_string(),
                a["active_since"].as_str().unwrap().to_string(),
            )
        })
}

fn config(path: &Path, db: &Path, am: &str, state: &Path, team_for: &str) {
    ConfigFile::new()
        .set("poll_interval", json!("100ms"))
        .database(db, "app")
        .set("team", json!({"backend_engineers": 5}))
        .threshold("backend_engineers", json!({"for": team_for}))
        .threshold(
            "database_size",
            json!({"warning": "1KB", "critical": "off", "for": "1h"}),
        )
        .no_disk_alert()
        .set(
            "alertmanager",
            json!({"urls": [am], "resend_interval": "2s", "instance": "test"}),
        )
        .set("state_file", json!(state))
        .write(path);
}

#[test]
fn reloads_and_restarts_keep_alerts_and_send_no_false_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    let am = Alertmanager::start(&dir.path().join("am"), free_port());
    let state = dir.path().join("state.json");
    let cfg = dir.path().join("sqlite-ops.yaml");
    config(&cfg, &db, &am.url, &state, "1s");
    let mut daemon = Daemon::start(&["--config", cfg.to_str().unwrap()]);

    // Firing (for: 1s) and pending (for: 1h), each with its start time.
    let team = wait_for(STEP, "the team alert firing", || {
        alert_state(&daemon, "SQLiteTeamOutgrown").filter(|(s, _)| s == "firing")
    });
    let large = alert_state(&daemon, "SQLiteDatabaseLarge").unwrap();
    assert_eq!(large.0, "pending");
    let in_am = wait_for(STEP, "the team alert in Alertmanager", || {
        am.find("SQLiteTeamOutgrown", "app")
    });
    let starts_at = in_am["startsAt"].clone();
    let sent = |d: &Daemon| {
        d.metrics()
            .samples
            .iter()
            .find(|(k, _)| k.starts_with("sqlite_ops_alertmanager_sent_alerts_total"))
            .map(|(_, v)| *v)
            .unwrap()
    };
    let sent_before = sent(&daemon);
    assert!(sent_before >= 1.0);

    // An unchanged config: nothing moves, counters go on.
    daemon.signal(libc::SIGHUP);
    daemon.wait_log("the reload", |l| l.contains("config reloaded"));
    daemon.wait_polls(3);
    assert_eq!(alert_state(&daemon, "SQLiteTeamOutgrown").unwrap(), team);
    assert_eq!(alert_state(&daemon, "SQLiteDatabaseLarge").unwrap(), large);
    assert!(sent(&daemon) >= sent_before, "delivery counters survive");

    // The team rule's `for` changes: its firing alert stays; the size rule is untouched.
    config(&cfg, &db, &am.url, &state, "1h");
    daemon.signal(libc::SIGHUP);
    daemon.wait_log_lines("the second reload", 2, |l| l.contains("config reloaded"));
    daemon.wait_polls(3);
    assert_eq!(alert_state(&daemon, "SQLiteTeamOutgrown").unwrap(), team);
    assert_eq!(alert_state(&daemon, "SQLiteDatabaseLarge").unwrap(), large);

    // A restart (a deploy): SIGTERM, then the same command again. With `for: 1h` the alert
    // would be pending for an hour after a fresh start, and Alertmanager would resolve it
    // when its `endsAt` (4 resend intervals: 8 s, room for a slow start on a loaded machine)
    // passed: watched for longer than that.
    daemon.signal(libc::SIGTERM);
    wait_for(STEP, "the daemon to exit", || daemon.try_wait());
    let saved = std::fs::read_to_string(&state).unwrap();
    assert!(
        saved.contains("SQLiteTeamOutgrown") && saved.contains("SQLiteDatabaseLarge"),
        "{saved}"
    );
    let daemon = Daemon::start(&["--config", cfg.to_str().unwrap()]);
    daemon.wait_log("the alerts carried over", |l| {
        l.contains("carrying over the alerts")
    });
    let watch_until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < watch_until {
        let a = am
            .find("SQLiteTeamOutgrown", "app")
            .expect("the alert stays active in Alertmanager across the restart");
        assert_eq!(a["startsAt"], starts_at, "the same alert goes on");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(alert_state(&daemon, "SQLiteTeamOutgrown").unwrap(), team);
    assert_eq!(
        alert_state(&daemon, "SQLiteDatabaseLarge").unwrap(),
        large,
        "a pending alert keeps the time it has been pending"
    );
}
