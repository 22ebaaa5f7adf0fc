//! The sidecar never changes what it watches (issue 2): after the daemon and the in-process
//! monitor polled them many times, the database, -wal and -shm files are byte-identical to
//! copies taken before, and nBackfill shows that nothing was checkpointed.

mod common;

use common::{temp_db, Daemon, PyDriver, Watch};
use sqlite_ops::format::shm;

fn read_all(db: &std::path::Path) -> [Vec<u8>; 3] {
    let f = |suffix: &str| std::fs::read(format!("{}{suffix}", db.display())).unwrap();
    [f(""), f("-wal"), f("-shm")]
}

#[test]
fn watched_files_stay_byte_identical_and_nothing_is_checkpointed() {
    let (_dir, db) = temp_db("untouched.db");
    let mut py = PyDriver::start();
    py.open("w", &db, "journal_mode=WAL wal_autocheckpoint=0");
    py.cmd("commit w 100");
    // A reader that started and finished leaves its read mark behind, like a real application.
    py.open("r", &db, "");
    py.cmd("begin_read r");
    py.cmd("end r");
    let before = read_all(&db);
    let index = shm::parse(&before[2][..shm::SHM_HEADER_SIZE], shm::ByteOrder::NATIVE).unwrap();
    assert!(index.header.max_frame >= 100);
    assert_eq!(
        index.ckpt.backfill, 0,
        "nothing checkpointed before watching"
    );

    let daemon = Daemon::start(&["--db", db.to_str().unwrap(), "--poll-interval", "20ms"]);
    daemon.wait_polls(20);
    let m = daemon.metrics();
    assert_eq!(m.db("sqlite_up", "untouched"), Some(1.0));
    assert_eq!(
        m.db("sqlite_wal_checkpointed_frames", "untouched"),
        Some(0.0)
    );
    drop(daemon);
    let mut p = Watch::new(&db);
    for _ in 0..50 {
        assert!(p.poll().up);
    }
    drop(p);

    let after = read_all(&db);
    for (i, name) in ["database", "-wal", "-shm"].iter().enumerate() {
        assert!(before[i] == after[i], "{name} file changed while watched");
    }
    let index = shm::parse(&after[2][..shm::SHM_HEADER_SIZE], shm::ByteOrder::NATIVE).unwrap();
    assert_eq!(index.ckpt.backfill, 0, "the daemon checkpointed nothing");
}
