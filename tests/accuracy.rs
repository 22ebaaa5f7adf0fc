//! Accuracy under load (BENCHMARKS.md target 4, as a test): an application writing as fast as
//! it can, with automatic checkpoints and a TRUNCATE checkpoint every 1,000 commits, and two
//! readers; `sqlite_write_transactions_total` moves by exactly the commits it made.

use crate::common;

use common::{temp_db, wait_for, Daemon, STEP};
use rusqlite::Connection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Commits made: three TRUNCATE checkpoints, and many automatic ones at 1,000 frames.
const COMMITS: u64 = 3_500;

#[test]
fn every_commit_is_counted_under_load_with_checkpoints() {
    let (_dir, db) = temp_db("load.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(sqlite_ops::check::RECOMMENDED_PRAGMAS)
        .unwrap();
    conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, db) = (stop.clone(), db.clone());
            std::thread::spawn(move || {
                let c = Connection::open(&db).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let _: i64 = c
                        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                        .unwrap();
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        })
        .collect();
    let daemon = Daemon::start(&["--db", db.to_str().unwrap(), "--poll-interval", "100ms"]);
    daemon.wait_polls(2);
    let total = || {
        daemon
            .metrics()
            .db("sqlite_write_transactions_total", "load")
            .unwrap()
    };
    let before = total();
    // As fast as it can, a fixed number of commits (not a fixed time: on a loaded machine the
    // rate varies), so that three TRUNCATE checkpoints and many automatic ones happen.
    let mut made = 0u64;
    let until = Instant::now() + STEP;
    while made < COMMITS && Instant::now() < until {
        conn.execute("INSERT INTO t(v) VALUES ('row')", []).unwrap();
        made += 1;
        if made.is_multiple_of(1000) {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .unwrap();
        }
    }
    assert_eq!(made, COMMITS, "commits made within {STEP:?}");
    let counted = wait_for(STEP, "the daemon to see every commit", || {
        let t = total() - before;
        (t >= made as f64).then_some(t)
    });
    daemon.wait_polls(3);
    assert_eq!(counted as u64, made, "{made} commits made");
    assert_eq!(total() - before, made as f64, "and no more later");
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
}
