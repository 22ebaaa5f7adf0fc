//! Exact write-transaction counts (issue 2): commits made by another process, with another
//! SQLite build (Python's sqlite3), against the monitor polling in this process.

use crate::common;

use common::{temp_db, PyDriver, Watch};
use std::path::Path;

#[test]
fn wal_mode_counts_every_commit_across_passive_restart_and_truncate_checkpoints() {
    let (_dir, db) = temp_db("wal.db");
    let mut py = PyDriver::start();
    py.open("w", &db, "journal_mode=WAL");
    let mut w = Watch::new(&db);
    let base = w.total();

    py.cmd("commit w 137");
    assert_eq!(w.total(), base + 137);
    let s = w.poll();
    assert_eq!(s.locking_mode, Some("normal"));
    assert!(s.wal.as_ref().unwrap().checkpoint_lag_frames.unwrap() >= 137);

    for mode in ["PASSIVE", "RESTART", "TRUNCATE"] {
        let before = w.total();
        py.cmd(&format!("checkpoint w {mode}"));
        assert_eq!(
            w.total(),
            before,
            "a {mode} checkpoint is not a write transaction"
        );
        py.cmd("commit w 25");
        assert_eq!(
            w.total(),
            before + 25,
            "25 commits after a {mode} checkpoint"
        );
    }
    // Commits and checkpoints between two polls.
    let before = w.total();
    py.cmd("commit w 10");
    py.cmd("checkpoint w TRUNCATE");
    py.cmd("commit w 7");
    py.cmd("checkpoint w RESTART");
    py.cmd("commit w 3");
    assert_eq!(w.total(), before + 20);
    assert!(
        w.poll().wal_resets_total >= 2,
        "WAL resets counted from the salts"
    );

    // One transaction of 50 inserts is one write transaction.
    let before = w.total();
    py.cmd("exec w BEGIN");
    for _ in 0..50 {
        py.cmd("exec w INSERT INTO t(v) VALUES ('x')");
    }
    py.cmd("exec w COMMIT");
    assert_eq!(w.total(), before + 1);
}

#[test]
fn rollback_mode_counts_every_commit() {
    let (_dir, db) = temp_db("rollback.db");
    let mut py = PyDriver::start();
    py.open("w", &db, "journal_mode=DELETE");
    let mut w = Watch::new(&db);
    let base = w.total();
    let s = w.poll();
    assert_eq!(s.journal_mode.map(|j| j.as_str()), Some("rollback"));
    assert!(s.wal.is_none());
    py.cmd("commit w 42");
    assert_eq!(w.total(), base + 42);
    py.cmd("commit w 1");
    assert_eq!(w.total(), base + 43);
}

#[test]
fn exclusive_locking_mode_counts_commit_frames_in_the_wal() {
    let (_dir, db) = temp_db("exclusive.db");
    let mut py = PyDriver::start();
    py.open("w", &db, "locking_mode=EXCLUSIVE journal_mode=WAL");
    assert!(
        !Path::new(&format!("{}-shm", db.display())).exists(),
        "no -shm in exclusive mode"
    );
    let mut w = Watch::new(&db);
    let base = w.total();
    py.cmd("commit w 30");
    assert_eq!(w.total(), base + 30);
    assert_eq!(w.poll().locking_mode, Some("exclusive"));
    py.cmd("commit w 12");
    assert_eq!(w.total(), base + 42);
    // A checkpoint, then the WAL restarts with new salts: only the new commits count.
    py.cmd("checkpoint w TRUNCATE");
    assert_eq!(w.total(), base + 42);
    py.cmd("commit w 5");
    assert_eq!(w.total(), base + 47);
    py.cmd("checkpoint w PASSIVE");
    py.cmd("commit w 9");
    assert_eq!(w.total(), base + 56);
}

#[test]
fn counter_stays_monotonic_when_the_wal_index_is_rebuilt() {
    let (_dir, db) = temp_db("rebuild.db");
    let mut py = PyDriver::start();
    let open = format!("open w {} journal_mode=WAL", db.display());
    py.cmd(&open);
    let mut w = Watch::new(&db);
    py.cmd("commit w 20");
    let before = w.total();

    // The last connection closes (checkpoint, -wal and -shm deleted) and a poll sees it.
    py.cmd("close w");
    assert_eq!(w.total(), before);
    // A new connection rebuilds the wal-index: iChange starts again from 0.
    py.cmd(&open);
    py.cmd("commit w 5");
    assert_eq!(
        w.total(),
        before + 5,
        "commits after the rebuild are counted exactly"
    );

    // Closed and reopened between two polls: still monotonic and nothing is lost or doubled
    // after the reopen.
    let before = w.total();
    py.cmd("close w");
    py.cmd(&open);
    py.cmd("commit w 8");
    let after = w.total();
    assert!(after >= before, "monotonic: {after} >= {before}");
    assert_eq!(after, before + 8);
    py.cmd("commit w 2");
    assert_eq!(w.total(), after + 2);
}

#[test]
fn a_replaced_database_file_keeps_the_counter_monotonic() {
    let (dir, db) = temp_db("replaced.db");
    let mut py = PyDriver::start();
    py.open("w", &db, "journal_mode=DELETE");
    py.cmd("commit w 30");
    let mut w = Watch::new(&db);
    let before = w.total();
    // Another database with a smaller change counter takes its place by rename.
    let other = dir.path().join("other.db");
    py.open("o", &other, "journal_mode=DELETE");
    py.cmd("commit o 2");
    py.cmd("close o");
    std::fs::rename(&other, &db).unwrap();
    let after = w.total();
    assert!(
        after >= before,
        "monotonic across replacement: {after} >= {before}"
    );
}

#[test]
fn a_writer_that_lost_its_locks_is_still_counted_exactly() {
    // An application that closes a descriptor of -shm drops SQLite's locks on it, the "dead man
    // switch" among them: it then looks as if nobody had the database open, yet it writes on.
    // That must not read as a wal-index rebuild (which would add the raw counter again).
    let (_dir, db) = temp_db("lost.db");
    let mut py = PyDriver::start();
    py.open("w", &db, "journal_mode=WAL");
    py.cmd("commit w 30");
    let mut p = Watch::new(&db);
    let t0 = p.total();
    let shm = format!("{}-shm", db.display());
    py.cmd(&format!("drop_locks {shm}"));
    p.poll(); // quiet, and nobody seems connected
    py.cmd("commit w 20");
    assert_eq!(p.total() - t0, 20);
    py.cmd("commit w 7");
    p.poll();
    py.cmd("commit w 5");
    assert_eq!(p.total() - t0, 32);
}
