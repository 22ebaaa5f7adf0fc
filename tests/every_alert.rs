//! Every alert not seen elsewhere, fired and resolved end to end (issue 18): a real condition
//! made here (a deleted file, a declared fact, a WAL grown and truncated, a full filesystem, a
//! burst of commits, a writer holding the lock most of the time), through `sqlite-ops run`, to a
//! real Alertmanager. Firing alerts are pushed with `endsAt` four resend intervals ahead (here
//! 4 minutes): an alert that leaves Alertmanager's active list before its `endsAt` was resolved
//! by an explicit push, not by expiry.
//!
//! The replica that becomes unreachable (its directory moved away, as a mount that goes) is
//! the second test, with the real Litestream.
//!
//! The guide's own faults (SQLiteSnapshotPinned, SQLiteCheckpointStarved,
//! SQLiteReplicationLag, SQLiteLongWriteTransaction, SQLiteMultipleWriters) fire and resolve
//! in `guide_stack.rs`; SQLiteDatabaseLarge in `alerts.rs`.

use crate::common;

use common::services::ends_at;
use common::{
    free_port, temp_db, wait_for, wal_db, Alertmanager, ConfigFile, Daemon, Litestream, PyDriver,
    Tmpfs, Writer, STEP,
};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Waits until `alert` on `db` is active in Alertmanager with `severity`, pushed with an endsAt
/// minutes ahead (`resend_interval: 1m`), far from when it resolves here.
fn fires(am: &Alertmanager, alert: &str, db: &str, severity: &str) {
    let a = wait_for(STEP, &format!("{alert} on {db} in Alertmanager"), || {
        am.find(alert, db)
    });
    assert_eq!(a["labels"]["severity"], severity, "{a}");
    assert!(
        ends_at(&a) > SystemTime::now() + Duration::from_secs(120),
        "a firing alert is pushed with endsAt minutes ahead: {a}"
    );
}

#[test]
fn every_alert_fires_and_resolves_through_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let am = Alertmanager::start(&dir.path().join("am"), free_port());
    let tmpfs = Tmpfs::mount("4m");

    let (_gone_dir, gone) = temp_db("gone.db");
    drop(wal_db(&gone));
    let team = dir.path().join("team.db");
    drop(wal_db(&team));
    let wal = dir.path().join("wal.db");
    let low = tmpfs.path.join("low.db");
    drop(wal_db(&low));
    let busy = dir.path().join("busy.db");
    let busy_conn = wal_db(&busy);
    let duty = dir.path().join("duty.db");
    drop(wal_db(&duty));

    let config = dir.path().join("sqlite-ops.yaml");
    let write_config = |engineers: u32, regions: u32| {
        ConfigFile::new()
            .set("poll_interval", json!("100ms"))
            .set(
                "alertmanager",
                json!({"urls": [am.url], "resend_interval": "1m"}),
            )
            .threshold(
                "filesystem_free",
                json!({"warning": "10%", "critical": "off", "for": "0s"}),
            )
            .threshold("database_down", json!({"for": "0s"}))
            .threshold("backend_engineers", json!({"for": "0s"}))
            .threshold("regions", json!({"for": "0s"}))
            .database(&gone, "gone")
            .entry(json!({"path": team, "name": "team",
                          "team": {"backend_engineers": engineers, "regions": regions}}))
            .entry(json!({"path": wal, "name": "wal",
                          "thresholds": {"wal_size": {"warning": "64KB", "for": "0s"}}}))
            .database(&low, "low")
            .entry(json!({"path": busy, "name": "busy",
                          "thresholds": {"write_tx_per_sec": {"warning": 100, "for": "0s"}}}))
            .entry(json!({"path": duty, "name": "duty",
                          "thresholds": {"writer_utilisation": {"warning": "30%", "for": "0s"}}}))
            .write(&config);
    };
    write_config(2, 1);
    let mut py = PyDriver::start();
    py.open("w", &wal, "journal_mode=WAL wal_autocheckpoint=0");
    let daemon = Daemon::start(&["--config", config.to_str().unwrap()]);
    // Every threshold here has for: 0s, so a poll is enough to raise what is due.
    daemon.wait_polls(3);
    let raised = daemon.raised();
    assert!(raised.is_empty(), "raised on the healthy start: {raised:?}");
    assert!(
        am.alerts().is_empty(),
        "nothing fires on the healthy start: {:?}",
        am.alerts()
    );

    // First the rates, judged since watching began: a burst of 400 commits a second, and a
    // writer (another process) holding the write lock 80 % of the time, each until its alert
    // fires.
    let stop = Arc::new(AtomicBool::new(false));
    let burst = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                busy_conn
                    .execute("INSERT INTO t(v) VALUES ('x')", [])
                    .unwrap();
                n += 1;
                let due = started + Duration::from_secs_f64(n as f64 / 400.0);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        })
    };
    let stop_duty = Arc::new(AtomicBool::new(false));
    let holder = {
        let (stop, duty) = (stop_duty.clone(), duty.clone());
        std::thread::spawn(move || {
            let mut py = PyDriver::start();
            py.open("d", &duty, "journal_mode=WAL");
            while !stop.load(Ordering::Relaxed) {
                py.cmd("duty d 80 20 500");
            }
        })
    };
    fires(&am, "SQLiteWriteRateHigh", "busy", "warning");
    stop.store(true, Ordering::Relaxed);
    burst.join().unwrap();
    fires(&am, "SQLiteWriterSaturated", "duty", "warning");
    stop_duty.store(true, Ordering::Relaxed);
    holder.join().unwrap();

    // Declared facts, changed by a reload: more than three backend engineers, more than one
    // region.
    write_config(5, 2);
    daemon.signal(libc::SIGHUP);
    fires(&am, "SQLiteTeamOutgrown", "team", "info");
    fires(&am, "SQLiteMultiRegion", "team", "info");

    // The database file is deleted.
    std::fs::remove_file(&gone).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", gone.display()));
    }
    fires(&am, "SQLiteDatabaseDown", "gone", "critical");

    // The WAL grows past 64 KB with no checkpoint.
    py.cmd("commit w 100");
    fires(&am, "SQLiteWalLarge", "wal", "warning");

    // The filesystem fills up to less than 10 % free.
    let filler = tmpfs.path.join("filler");
    std::fs::write(&filler, vec![1u8; 3_900_000]).unwrap();
    // One alert about the filesystem (its mount point), not about the database on it.
    let mount = tmpfs.path.display().to_string();
    fires(&am, "SQLiteFilesystemLowSpace", &mount, "warning");

    // Every condition goes away; every alert is resolved by a push.
    write_config(2, 1);
    daemon.signal(libc::SIGHUP);
    am.wait_resolved("SQLiteTeamOutgrown", "team", STEP);
    am.wait_resolved("SQLiteMultiRegion", "team", STEP);
    drop(wal_db(&gone));
    am.wait_resolved("SQLiteDatabaseDown", "gone", STEP);
    py.cmd("checkpoint w TRUNCATE");
    am.wait_resolved("SQLiteWalLarge", "wal", STEP);
    std::fs::remove_file(&filler).unwrap();
    am.wait_resolved("SQLiteFilesystemLowSpace", &mount, STEP);
    // Rates over the 5-minute window (here, since watching began) fall as time passes.
    am.wait_resolved("SQLiteWriteRateHigh", "busy", 4 * STEP);
    am.wait_resolved("SQLiteWriterSaturated", "duty", 4 * STEP);
    // The machine's own disk is not under test (CI disks have been seen nearly full).
    let left: Vec<_> = am
        .alerts()
        .into_iter()
        .filter(|a| a["labels"]["alertname"] != "SQLiteFilesystemLowSpace")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn an_unreachable_replica_fires_and_resolves_through_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let am = Alertmanager::start(&dir.path().join("am"), free_port());
    let db = dir.path().join("app.db");
    drop(wal_db(&db));
    let replica = dir.path().join("replica");
    let yml = dir.path().join("litestream.yml");
    std::fs::write(
        &yml,
        format!(
            "dbs:\n  - path: {}\n    replica:\n      type: file\n      path: {}\n      sync-interval: 1s\n",
            db.display(),
            replica.display()
        ),
    )
    .unwrap();
    let config = dir.path().join("sqlite-ops.yaml");
    std::fs::write(
        &config,
        format!(
            "poll_interval: 200ms\n\
             litestream: {{config: {}, interval: 500ms}}\n\
             alertmanager: {{urls: ['{}'], resend_interval: 1m}}\n\
             thresholds:\n\
             \x20 replica_down: {{for: 0s}}\n\
             \x20 replication_lag: {{warning: 'off', critical: 'off'}}\n\
             \x20 filesystem_free: {{warning: 'off', critical: 'off'}}\n",
            yml.display(),
            am.url
        ),
    )
    .unwrap();
    let _writer = Writer::start(&db);
    let _litestream = Litestream::start("0.5.17", &yml);
    let daemon = Daemon::start(&["--config", config.to_str().unwrap()]);
    let up = || {
        daemon
            .metrics()
            .samples
            .get("sqlite_litestream_up{db=\"app\",replica=\"file\"}")
            .copied()
    };
    wait_for(STEP, "the replica readable", || {
        (up() == Some(1.0)).then_some(())
    });
    daemon.wait_polls(5);
    let raised = daemon.raised();
    assert!(raised.is_empty(), "raised while readable: {raised:?}");
    assert!(am.alerts().is_empty(), "{:?}", am.alerts());

    // The replica's directory goes away and a file stands in its place.
    let away = dir.path().join("replica.away");
    std::fs::rename(&replica, &away).unwrap();
    std::fs::write(&replica, "not a directory").unwrap();
    fires(&am, "SQLiteReplicaUnreachable", "app", "warning");
    assert_eq!(up(), Some(0.0));

    // It comes back.
    std::fs::remove_file(&replica).unwrap();
    std::fs::rename(&away, &replica).unwrap();
    am.wait_resolved("SQLiteReplicaUnreachable", "app", STEP);
    assert_eq!(up(), Some(1.0));
}
