//! Checkpoint lag (issue 2): grows with writes, falls to 0 after a checkpoint, and its age grows
//! while a reader in another process pins an old snapshot.

use crate::common;

use common::{temp_db, PyDriver, Watch};
use std::time::Duration;

#[test]
fn lag_grows_with_writes_and_falls_to_zero_after_a_checkpoint() {
    let (_dir, db) = temp_db("lag.db");
    let mut py = PyDriver::start();
    // No automatic checkpoints: the test decides when they happen.
    py.open("w", &db, "journal_mode=WAL wal_autocheckpoint=0");
    let mut p = Watch::new(&db);
    py.cmd("checkpoint w TRUNCATE");
    let (_, w0) = p.wal();
    assert_eq!(w0.checkpoint_lag_frames, Some(0));

    py.cmd("commit w 40");
    let (s1, w1) = p.wal();
    let page = u64::from(s1.page_size_bytes.unwrap());
    let lag1 = w1.checkpoint_lag_frames.unwrap();
    assert!(lag1 >= 40, "one frame or more per commit: {lag1}");
    assert_eq!(w1.checkpoint_lag_bytes, Some(lag1 * page));
    assert_eq!(w1.frames, lag1);
    assert_eq!(w1.checkpointed_frames, Some(0));
    assert!(
        w1.size_bytes >= 32 + lag1 * (page + 24),
        "the WAL file holds those frames"
    );

    py.cmd("commit w 40");
    let (_, w2) = p.wal();
    assert!(
        w2.checkpoint_lag_frames.unwrap() > lag1,
        "lag grows with writes"
    );

    // SQLite's own word on the lag: a reader pins the snapshot at the WAL's end, 20 more
    // commits follow, and a PASSIVE checkpoint copies back only up to the reader's mark. Its
    // reply (busy, log, checkpointed) is what the monitor must report.
    py.open("r", &db, "");
    py.cmd("begin_read r");
    py.cmd("commit w 20");
    let reply = py.cmd("checkpoint w PASSIVE");
    let [busy, log, checkpointed] = sqlite_says(&reply);
    assert_eq!(busy, 0, "{reply}");
    assert!(
        checkpointed < log,
        "the reader held part of the WAL back: {reply}"
    );
    let (_, partial) = p.wal();
    assert_eq!(partial.frames, log, "mxFrame is wal_checkpoint's log");
    assert_eq!(partial.checkpointed_frames, Some(checkpointed));
    assert_eq!(partial.checkpoint_lag_frames, Some(log - checkpointed));

    py.cmd("end r");
    let reply = py.cmd("checkpoint w PASSIVE");
    let [busy, log, checkpointed] = sqlite_says(&reply);
    assert_eq!((busy, checkpointed), (0, log), "all copied back: {reply}");
    let (_, w3) = p.wal();
    assert_eq!(w3.frames, log);
    assert_eq!(w3.checkpoint_lag_frames, Some(0));
    assert_eq!(w3.checkpoint_lag_seconds, Some(0.0));
    assert_eq!(w3.checkpointed_frames, Some(log));
}

/// The three numbers of `PRAGMA wal_checkpoint`'s reply, as the driver prints them.
fn sqlite_says(reply: &str) -> [u64; 3] {
    let n: Vec<u64> = reply
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect();
    n.try_into()
        .unwrap_or_else(|_| panic!("busy log checkpointed: {reply}"))
}

#[test]
fn lag_age_grows_while_a_reader_pins_an_old_snapshot() {
    let (_dir, db) = temp_db("pinned.db");
    let mut py = PyDriver::start();
    py.open("w", &db, "journal_mode=WAL wal_autocheckpoint=0");
    py.open("r", &db, "");
    let mut p = Watch::new(&db);
    py.cmd("commit w 10");
    let (_, w0) = p.wal();
    assert_eq!(w0.readers, 0);

    // The reader takes its snapshot at the current end of the WAL.
    py.cmd("begin_read r");
    let (_, pinned) = p.wal();
    assert_eq!(
        pinned.readers, 1,
        "the reader's read lock is seen with F_GETLK"
    );
    let mark = u64::from(*pinned.reader_marks.first().expect("read mark"));
    assert_eq!(
        mark, pinned.frames,
        "the read mark is the snapshot's mxFrame"
    );
    assert_eq!(
        pinned.oldest_snapshot_age_seconds,
        Some(0.0),
        "at the end of the WAL it pins nothing yet"
    );
    let slot = &pinned.reader_slots[0];
    assert_eq!(u64::from(slot.mark), mark);
    let reader_pid: i32 = py.cmd("pid").trim().parse().unwrap();
    assert_eq!(slot.pid, Some(reader_pid), "F_GETLK names the reader");

    // Writes after the snapshot cannot be checkpointed past the reader's mark.
    py.cmd("commit w 20");
    py.cmd("checkpoint w PASSIVE");
    let (_, a) = p.wal();
    assert_eq!(
        a.checkpointed_frames,
        Some(mark),
        "backfill stops at the pinned snapshot"
    );
    let lag = a.checkpoint_lag_frames.unwrap();
    assert!(lag >= 20);
    let age_a = a.checkpoint_lag_seconds.unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    py.cmd("checkpoint w PASSIVE");
    let (_, b) = p.wal();
    assert_eq!(b.checkpoint_lag_frames, Some(lag), "still pinned");
    let age_b = b.checkpoint_lag_seconds.unwrap();
    assert!(
        age_b >= age_a + 1.0,
        "age grows with wall time: {age_a} -> {age_b}"
    );
    assert_eq!(b.readers, 1);
    let pinned_for = b.oldest_snapshot_age_seconds.unwrap();
    assert!(
        pinned_for >= 1.0 && pinned_for <= age_b + 0.5,
        "the snapshot has pinned the WAL since the writes after it: {pinned_for}s (lag age {age_b}s)"
    );

    // The reader lets go: the next checkpoint reaches the end of the WAL.
    py.cmd("end r");
    py.cmd("checkpoint w PASSIVE");
    let (_, c) = p.wal();
    assert_eq!(c.checkpoint_lag_frames, Some(0));
    assert_eq!(c.checkpoint_lag_seconds, Some(0.0));
    assert_eq!(c.readers, 0);
    assert_eq!(c.oldest_snapshot_age_seconds, Some(0.0));
}
