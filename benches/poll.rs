//! Criterion benchmarks: the pure parsers, one poll of a WAL database on the file-reading fast
//! path, and beside it the SQL-per-scrape approach other exporters take (open a read-only
//! connection, PRAGMA page_count, freelist_count, journal_mode, close), on the same database,
//! held open and written by another process (Python's sqlite3) as an application would.
//!
//! Run: `cargo bench --bench poll`. CPU time per poll and the whole-process figures are in
//! `cargo bench --bench harness` (BENCHMARKS.md).

use criterion::{criterion_group, criterion_main, Criterion};
use sqlite_ops::format::{db_header, shm, wal};
use sqlite_ops::poller::Poller;
use sqlite_ops::target::Target;

// The benches borrow a few of the tests' helpers (a daemon, the Python application): each
// uses a part of them, and of `measure`.
#[allow(dead_code, unused_imports)]
#[path = "../tests/common/mod.rs"]
mod common;
#[allow(dead_code)]
mod measure;
use common::PyDriver;

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    // The application: a Python process holding the database open, with frames in its WAL.
    let mut app = PyDriver::start();
    app.open("w", &db, "journal_mode=WAL wal_autocheckpoint=0");
    app.cmd("commit w 500");
    app.open("r", &db, "");
    let header = std::fs::read(&db).unwrap()[..db_header::HEADER_SIZE].to_vec();
    let shm_bytes = std::fs::read(dir.path().join("bench.db-shm")).unwrap();
    let wal_bytes = std::fs::read(dir.path().join("bench.db-wal")).unwrap();

    let mut g = c.benchmark_group("parse");
    g.bench_function("db_header", |b| {
        b.iter(|| db_header::parse(std::hint::black_box(&header)))
    });
    g.bench_function("wal_index_header", |b| {
        b.iter(|| {
            shm::parse(
                std::hint::black_box(&shm_bytes[..shm::SHM_HEADER_SIZE]),
                shm::ByteOrder::NATIVE,
            )
        })
    });
    let wal_header = wal::parse_header(&wal_bytes).unwrap();
    let frames = (wal_bytes.len() - wal::WAL_HEADER_SIZE) as u64 / wal_header.frame_size();
    g.bench_function(format!("wal_scan_{frames}_frames"), |b| {
        b.iter(|| {
            let mut scanner = wal::FrameScanner::new(wal_header);
            scanner.scan(std::hint::black_box(&wal_bytes[wal::WAL_HEADER_SIZE..]))
        })
    });
    g.finish();

    // Side by side in one run (issue 19): the SQL-per-scrape peer, the same PRAGMAs on a
    // connection kept open, the bare system calls of a poll, our full poll, and the poll of a
    // settled database (its last figures brought up to the time, nothing read).
    let mut g = c.benchmark_group("poll_one_wal_database");
    g.bench_function("sql_per_scrape_baseline", |b| {
        b.iter(|| std::hint::black_box(measure::sql_per_scrape(&db)))
    });
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    g.bench_function("sql_on_an_open_read_only_connection", |b| {
        b.iter(|| std::hint::black_box(measure::sql_on_open_connection(&conn)))
    });
    drop(conn);
    let files =
        ["", "-wal", "-shm"].map(|s| std::fs::File::open(format!("{}{s}", db.display())).unwrap());
    g.bench_function("syscall_floor", |b| {
        b.iter(|| std::hint::black_box(measure::syscall_floor(&files)))
    });
    let mut poller = Poller::new(&[Target::new("bench", &db)], "");
    g.bench_function("sqlite-ops_full_poll", |b| {
        b.iter(|| std::hint::black_box(poller.poll_once_in_full()))
    });
    g.bench_function("sqlite-ops_settled_poll", |b| {
        b.iter(|| std::hint::black_box(poller.poll_once()))
    });
    g.finish();
}

criterion_group!(poll, benches);
criterion_main!(poll);
