//! A fleet of tenant databases on one host (issue 19, BENCHMARKS.md): the `sqlite-ops run`
//! binary of this optimised build over N WAL databases, 1 % of them written (each about once a
//! second), polled every `POLL`, under a hard limit of `NOFILE` open files set with prlimit.
//! Prints a Markdown row per size: databases up, daemon CPU, RSS, /metrics scrape time and size.
//!
//! Run: `cargo bench --bench fleet` (10,000 databases at 1 s, about 2 minutes);
//! `-- 100000 10s` for another size and poll interval; `FLEET_NOFILE=N` for another limit;
//! `FLEET_METRICS=health` (a `metrics:` list) for fewer series per database. RSS is read
//! before the scrapes and again after them: rendering is where a large `/metrics` costs.

#[allow(dead_code, unused_imports)]
#[path = "../tests/common/mod.rs"]
mod common;
#[allow(dead_code)]
mod measure;
use common::Daemon;
use measure::{config, cpu_share, create_wal_db, round_robin, rss_mib};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `n` WAL databases in `dir`: one made by SQLite, copied with its -wal and -shm while open, so
/// that each copy is a database with all three files. Returns their paths.
fn databases(dir: &Path, n: usize) -> Vec<PathBuf> {
    let src = dir.join("src.db");
    let conn = create_wal_db(&src);
    conn.execute("INSERT INTO t(v) VALUES ('x')", []).unwrap();
    let paths: Vec<PathBuf> = (0..n).map(|i| dir.join(format!("db{i}.db"))).collect();
    for p in &paths {
        for suffix in ["", "-wal", "-shm"] {
            std::fs::copy(
                format!("{}{suffix}", src.display()),
                format!("{}{suffix}", p.display()),
            )
            .unwrap();
        }
    }
    paths
}

fn run(n: usize, poll: &str, nofile: u64, measure: Duration, metrics: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let paths = databases(dir.path(), n);
    // 1 % written, round-robin, each about once a second.
    let written: Vec<Connection> = paths
        .iter()
        .step_by(100)
        .map(|p| {
            let c = Connection::open(p).unwrap();
            c.execute_batch("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)")
                .unwrap();
            c
        })
        .collect();
    let gap = Duration::from_secs(1) / written.len().max(1) as u32;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = round_robin(written, gap, stop.clone());
    let cfg = config(dir.path(), &paths, &format!("metrics: [{metrics}]\n"), "");
    let prlimit = common::program("prlimit", "util-linux");
    let limit = format!("--nofile={nofile}:{nofile}");
    let daemon = Daemon::start_wrapped(
        &[prlimit.to_str().unwrap(), &limit, "--"],
        &["--config", cfg.to_str().unwrap(), "--poll-interval", poll],
        &[],
    );
    daemon.wait_polls(3);
    let cpu = cpu_share(daemon.pid(), measure);
    let rss = rss_mib(daemon.pid());
    let mut scrapes = Vec::new();
    let mut body = String::new();
    for _ in 0..11 {
        let t = Instant::now();
        body = daemon.get("/metrics").1;
        scrapes.push(t.elapsed());
    }
    scrapes.sort();
    let rss_scraped = rss_mib(daemon.pid());
    // From the fleet series, present whatever the metrics: groups.
    let up: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix("sqlite_fleet_databases{state=\"up\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let fds = std::fs::read_dir(format!("/proc/{}/fd", daemon.pid()))
        .unwrap()
        .count();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    format!(
        "| {n} WAL databases, 1 % written, polled every {poll}, hard limit {nofile}, metrics: [{metrics}] | {up} of {n} up, {fds} descriptors open | {:.2} % of a core, {rss:.1} MiB ({rss_scraped:.1} MiB after the scrapes) | {:.1} ms ({:.1} MB, {} lines) |",
        cpu * 100.0,
        scrapes[5].as_secs_f64() * 1000.0,
        body.len() as f64 / 1e6,
        body.lines().count()
    )
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n: usize = args.first().map_or(10_000, |a| a.parse().unwrap());
    let poll = args.get(1).map_or("1s", String::as_str);
    let nofile: u64 = std::env::var("FLEET_NOFILE").map_or(4_096, |v| v.parse().unwrap());
    let measure = humantime::parse_duration(poll).unwrap() * 30;
    let metrics = std::env::var("FLEET_METRICS").unwrap_or_else(|_| "all".into());
    println!("| fleet | databases up | daemon CPU, RSS | /metrics (median of 11) |");
    println!("|---|---|---|---|");
    println!("{}", run(n, poll, nofile, measure, &metrics));
}
