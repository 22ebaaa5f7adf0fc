//! Notifications without Alertmanager (issue 20), through `sqlite-ops run` to HTTP receivers
//! in this process: webhook POSTs when a critical alert fires and when it resolves (JSON with a
//! token header, and Slack's body), and a heartbeat that stops while the alert fires and comes
//! back after. A receiver that never answers and one that is down delay nothing else, and no
//! webhook URL (a secret) reaches the log or the metrics.

use crate::common;

use common::{wait_for, wal_db, ConfigFile, Daemon, Receiver, STEP};
use serde_json::json;
use std::time::{Duration, Instant};

/// The heartbeat requests received so far.
fn beats(r: &Receiver) -> usize {
    r.at("/beat/s3cr3t").len()
}

#[test]
fn webhooks_tell_firing_and_resolved_and_the_heartbeat_stops_while_critical() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start();
    let silent = Receiver::silent();
    let dead = format!("http://127.0.0.1:{}/down", common::free_port());
    let app = dir.path().join("app.db");
    let _app = wal_db(&app);
    let gone = dir.path().join("gone.db");
    drop(wal_db(&gone));
    let config = ConfigFile::new()
        .no_disk_alert()
        .threshold("database_down", json!({"for": "0s"}))
        .database(&app, "app")
        .database(&gone, "gone")
        .set(
            "notify",
            json!({
                "webhooks": [
                    {"url": format!("{}/hook/s3cr3t", silent.url), "name": "slow", "timeout": "2s"},
                    {"url": format!("{dead}/s3cr3t"), "name": "dead", "timeout": "2s"},
                    {"url": format!("{}/hook/s3cr3t", receiver.url), "name": "ops",
                     "headers": {"Authorization": "Bearer t0ken"}},
                    {"url": format!("{}/slack/s3cr3t", receiver.url), "format": "slack"},
                ],
                "heartbeat": {"url": format!("{}/beat/s3cr3t", receiver.url),
                              "interval": "1s", "timeout": "2s"},
            }),
        )
        .write(&dir.path().join("sqlite-ops.yaml"));
    let daemon = Daemon::start(&["--config", config.to_str().unwrap()]);

    // Healthy: heartbeats come, no webhook is called.
    wait_for(STEP, "three heartbeats", || {
        (beats(&receiver) >= 3).then_some(())
    });
    let beat = &receiver.at("/beat/s3cr3t")[0];
    assert_eq!(beat.method, "GET");
    assert!(receiver.at("/hook/s3cr3t").is_empty(), "nothing fired yet");

    // A critical alert: the database goes.
    std::fs::remove_file(&gone).unwrap();
    let _ = std::fs::remove_file(dir.path().join("gone.db-wal"));
    let _ = std::fs::remove_file(dir.path().join("gone.db-shm"));
    let started = Instant::now();
    let posted = wait_for(STEP, "the firing webhook", || {
        receiver.at("/hook/s3cr3t").into_iter().next()
    });
    // The slow and the dead webhooks did not hold it up: it came within a few polls.
    assert!(
        posted.at.duration_since(started) < Duration::from_secs(5),
        "firing told after {:?}",
        posted.at.duration_since(started)
    );
    assert_eq!(posted.method, "POST");
    assert_eq!(posted.header("authorization"), Some("Bearer t0ken"));
    assert_eq!(posted.header("content-type"), Some("application/json"));
    let body = posted.json();
    let alert = &body["alerts"][0];
    assert_eq!(alert["alert"], "SQLiteDatabaseDown", "{body}");
    assert_eq!(alert["db"], "gone");
    assert_eq!(alert["state"], "firing");
    assert_eq!(alert["severity"], "critical");
    assert!(alert["runbook_url"]
        .as_str()
        .unwrap()
        .contains("#sqlitedatabasedown"));
    let slack = wait_for(STEP, "the Slack message", || {
        receiver.at("/slack/s3cr3t").into_iter().next()
    });
    let text = slack.json()["text"].as_str().unwrap().to_string();
    assert!(
        text.contains("*FIRING* critical SQLiteDatabaseDown on `gone`")
            && text.contains("|runbook>)"),
        "{text}"
    );

    // No heartbeat while it fires: two intervals and more without one.
    daemon.wait_log("heartbeat withheld", |l| {
        l.contains("heartbeat withheld: SQLiteDatabaseDown fires on gone")
    });
    // Two intervals more, counted by the daemon's own ticks rather than slept: none sent.
    let held = beats(&receiver);
    let ticks = || daemon.metrics().get("sqlite_ops_heartbeat_held_back_total");
    let t0 = ticks().unwrap();
    wait_for(STEP, "two more intervals held back", || {
        (ticks().unwrap() >= t0 + 2.0).then_some(())
    });
    assert_eq!(
        beats(&receiver),
        held,
        "no heartbeat while a critical alert fires"
    );
    assert_eq!(
        daemon.metrics().get("sqlite_ops_heartbeat_withheld"),
        Some(1.0)
    );

    // Resolved: told once, and the heartbeats come back.
    drop(wal_db(&gone));
    let resolved = wait_for(STEP, "the resolved webhook", || {
        receiver
            .at("/hook/s3cr3t")
            .into_iter()
            .find(|r| r.json()["alerts"][0]["state"] == "resolved")
    });
    assert_eq!(resolved.json()["alerts"][0]["db"], "gone");
    wait_for(STEP, "heartbeats again", || {
        (beats(&receiver) >= held + 2).then_some(())
    });
    let hooks = receiver.at("/hook/s3cr3t").len();
    assert_eq!(hooks, 2, "one POST when it fired, one when it resolved");

    // The silent and the dead webhooks failed on their own, counted under their names.
    let m = wait_for(STEP, "the dead webhook's errors", || {
        let m = daemon.metrics();
        (m.get("sqlite_ops_webhook_errors_total{webhook=\"dead\"}")? >= 1.0
            && m.get("sqlite_ops_webhook_errors_total{webhook=\"slow\"}")? >= 1.0)
            .then_some(m)
    });
    assert_eq!(
        m.get("sqlite_ops_webhook_sent_alerts_total{webhook=\"ops\"}"),
        Some(2.0)
    );
    assert_eq!(
        m.get("sqlite_ops_webhook_errors_total{webhook=\"ops\"}"),
        Some(0.0)
    );
    assert!(m
        .get("sqlite_ops_webhook_pending_alerts{webhook=\"webhooks[3]\"}")
        .is_some());
    assert!(m.get("sqlite_ops_heartbeat_sent_total").unwrap() >= 5.0);
    assert!(
        !silent.at("/hook/s3cr3t").is_empty(),
        "the slow receiver was tried"
    );

    // The secret part of the URLs is nowhere to be read, once every failure has been logged.
    for name in ["dead", "slow"] {
        daemon.wait_log(&format!("the {name} webhook's failure"), |l| {
            l.contains("cannot deliver alerts") && l.contains(name)
        });
    }
    let (_, metrics) = daemon.get("/metrics");
    assert!(!metrics.contains("s3cr3t"));
    assert_eq!(
        daemon.log_lines(|l| l.contains("s3cr3t")),
        0,
        "{:?}",
        daemon.log.lock().unwrap()
    );
}
