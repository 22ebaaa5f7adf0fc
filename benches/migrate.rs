//! How fast `sqlite-ops migrate-check` reads, and what it holds (BENCHMARKS.md): a database of
//! 100,000 users (a case-insensitive unique email) and 1,000,000 events (a foreign key to users,
//! JSON, dates, reals), scanned unthrottled and at the default rate limit, by the release binary
//! in its own process. Prints a Markdown table.
//!
//! Run: `cargo bench --bench migrate` (about a minute once built).

use rusqlite::Connection;
use std::process::Command;
use std::time::Instant;

const USERS: i64 = 100_000;
const EVENTS: i64 = 1_000_000;

fn build(path: &std::path::Path) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT COLLATE NOCASE UNIQUE NOT NULL,
             name TEXT, created_at DATETIME);
         CREATE TABLE events(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),
             kind TEXT, payload JSON, amount REAL, created_at DATETIME);
         CREATE INDEX events_user ON events(user_id);",
    )
    .unwrap();
    let tx = c.unchecked_transaction().unwrap();
    {
        let mut u = tx
            .prepare("INSERT INTO users VALUES (?1, ?2, ?3, ?4)")
            .unwrap();
        for i in 1..=USERS {
            u.execute(rusqlite::params![
                i,
                format!("user{i}@example.com"),
                format!("User {i}"),
                format!("2024-01-{:02} 10:00:00", i % 28 + 1)
            ])
            .unwrap();
        }
        let mut e = tx
            .prepare("INSERT INTO events(user_id, kind, payload, amount, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
            .unwrap();
        for i in 0..EVENTS {
            e.execute(rusqlite::params![
                i % USERS + 1,
                ["login", "purchase", "logout"][(i % 3) as usize],
                format!("{{\"n\": {i}, \"tags\": [\"a\", \"b\"]}}"),
                i as f64 * 0.01,
                format!("2024-02-{:02} 12:{:02}:00", i % 28 + 1, i % 60)
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
}

/// Peak resident memory of the children waited for so far, in MiB.
fn children_max_rss_mib() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    ru.ru_maxrss as f64 / 1024.0
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    let t = Instant::now();
    build(&db);
    let size = std::fs::metadata(&db).unwrap().len();
    eprintln!(
        "built {} MB in {:.1} s",
        size / 1_000_000,
        t.elapsed().as_secs_f64()
    );
    println!("| run | rows/s | MB/s of values | scan | longest read transaction | statements | peak RSS |");
    println!("|---|---|---|---|---|---|---|");
    for (label, limit) in [("unthrottled", "0"), ("default rate limit", "200000")] {
        let out = Command::new(env!("CARGO_BIN_EXE_sqlite-ops"))
            .args([
                "migrate-check",
                "--format",
                "json",
                "--max-rows-per-second",
                limit,
            ])
            .arg(&db)
            .output()
            .unwrap();
        assert!(out.status.code().is_some_and(|c| c <= 2), "{out:?}");
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let c = &r["cost"];
        let rows = c["rows"].as_f64().unwrap();
        let scan = c["scan_seconds"].as_f64().unwrap();
        println!(
            "| {label} ({} MB, {} rows) | {:.0} | {:.1} | {:.2} s | {:.1} ms | {} | {:.1} MiB |",
            size / 1_000_000,
            rows as u64,
            rows / scan,
            c["read_bytes_per_second"].as_f64().unwrap() / 1e6,
            scan,
            c["longest_read_transaction_seconds"].as_f64().unwrap() * 1e3,
            c["statements"],
            children_max_rss_mib(),
        );
    }
}
