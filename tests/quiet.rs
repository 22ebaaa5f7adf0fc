//! Idle databases cost little (issue 19): a settled database's figures are repeated between
//! full polls, and whatever changes it is read at once: a commit (counted exactly), a writer
//! holding the lock, a reader pinning a snapshot, the file renamed away. Another process (Python's
//! sqlite3) makes each change; the daemon polls every 100 ms, and a settled database is read in
//! full every 60 s at the least. Meanwhile what moves with time alone moves.

use crate::common;

use common::{temp_db, wait_for, ConfigFile, Daemon, PyDriver, STEP};
use serde_json::json;

fn status(d: &Daemon) -> serde_json::Value {
    let body: serde_json::Value = serde_json::from_str(&d.get("/api/v1/status").1).unwrap();
    body["databases"][0].clone()
}

/// Waits until the daemon repeats the database's figures: its files were last read before
/// this poll.
fn settled(d: &Daemon) {
    wait_for(STEP, "the database settled", || {
        let s = status(d);
        (s["files_read_at"].as_f64()? < s["polled_at"].as_f64()?).then_some(())
    });
}

/// Within three polls of a change, far sooner than the 60 s between full polls of a settled
/// database, the files have been read again.
fn read_again_soon(d: &Daemon, what: &str) -> serde_json::Value {
    let before = status(d)["files_read_at"].as_f64().unwrap();
    d.wait_polls(3);
    let s = status(d);
    assert!(
        s["files_read_at"].as_f64().unwrap() > before,
        "{what}: read again at once, not at the next full poll"
    );
    s
}

#[test]
fn a_settled_database_is_read_again_at_once_when_anything_changes() {
    let (_dir, db) = temp_db("idle.db");
    let mut app = PyDriver::start();
    app.open("w", &db, "journal_mode=WAL");
    app.open("r", &db, "");
    let d = Daemon::start(&["--db", db.to_str().unwrap(), "--poll-interval", "100ms"]);
    settled(&d);
    let total = |s: &serde_json::Value| s["write_transactions_total"].as_u64().unwrap();
    let before = total(&status(&d));

    // A commit: counted exactly, at once.
    app.cmd("commit w 3");
    let s = read_again_soon(&d, "three commits");
    assert_eq!(total(&s), before + 3);
    settled(&d);

    // A write transaction left open: no file changes, but the lock is seen.
    let pid: i64 = app.cmd("pid").parse().unwrap();
    app.cmd("begin_write w");
    let s = read_again_soon(&d, "a writer holding the lock");
    assert_eq!(s["write_lock"]["holder_pid"].as_i64(), Some(pid), "{s}");
    app.cmd("end w");
    settled(&d);

    // A reader taking a snapshot.
    app.cmd("begin_read r");
    let s = read_again_soon(&d, "a reader in a transaction");
    assert_eq!(s["wal"]["readers"], 1, "{s}");
    app.cmd("end r");
    settled(&d);

    // The file renamed away: read again at once, and down (an open file renamed away still
    // has its link: its path is looked up again within 5 s).
    let away = db.with_extension("away");
    std::fs::rename(&db, &away).unwrap();
    read_again_soon(&d, "the file gone");
    wait_for(STEP, "down", || (status(&d)["up"] == false).then_some(()));
    std::fs::rename(&away, &db).unwrap();
    wait_for(STEP, "back up", || (status(&d)["up"] == true).then_some(()));
    assert_eq!(
        total(&status(&d)),
        before + 4,
        "the open write transaction's commit too"
    );
}

#[test]
fn a_settled_database_s_figures_move_with_time_without_its_files_being_read() {
    let (_dir, db) = temp_db("waiting.db");
    let mut app = PyDriver::start();
    app.open("w", &db, "journal_mode=WAL wal_autocheckpoint=0");
    app.cmd("commit w 3");
    let d = Daemon::start(&["--db", db.to_str().unwrap(), "--poll-interval", "100ms"]);
    settled(&d);
    let lag = |s: &serde_json::Value| s["wal"]["checkpoint_lag_seconds"].as_f64().unwrap();
    let first = status(&d);
    assert!(
        first["wal"]["checkpoint_lag_frames"].as_u64().unwrap() > 0,
        "{first}"
    );
    // A second later the frames have waited a second longer, and nothing was read.
    let later = wait_for(STEP, "the lag ageing", || {
        let s = status(&d);
        (s["polled_at"].as_f64()? >= first["polled_at"].as_f64()? + 1.0).then_some(s)
    });
    assert_eq!(later["files_read_at"], first["files_read_at"], "{later}");
    let aged = lag(&later) - lag(&first);
    let elapsed = later["polled_at"].as_f64().unwrap() - first["polled_at"].as_f64().unwrap();
    assert!(
        (aged - elapsed).abs() < 1e-3,
        "aged {aged} s in {elapsed} s"
    );
    assert!(
        later["filesystem"]["free_bytes"].as_u64().is_some(),
        "{later}"
    );
}

#[test]
fn a_tenant_added_does_not_make_the_settled_ones_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants");
    std::fs::create_dir(&tenants).unwrap();
    drop(common::wal_db(&tenants.join("a.db")));
    let cfg = ConfigFile::new()
        .set("poll_interval", json!("100ms"))
        .set("discover_interval", json!("1s"))
        .entry(json!({"glob": format!("{}/*.db", tenants.display())}))
        .write(&dir.path().join("sqlite-ops.yaml"));
    let d = Daemon::start(&["--config", cfg.to_str().unwrap()]);
    settled(&d);
    let read_at = status(&d)["files_read_at"].as_f64().unwrap();
    // A new tenant: the poller is given a new list, in which `a` is kept.
    drop(common::wal_db(&tenants.join("b.db")));
    wait_for(STEP, "the new tenant", || {
        (d.metrics().db("sqlite_up", "b") == Some(1.0)).then_some(())
    });
    d.wait_polls(3);
    let a = status(&d);
    assert_eq!(a["name"], "a");
    assert_eq!(a["files_read_at"].as_f64().unwrap(), read_at, "{a}");
}
