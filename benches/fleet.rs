//! A fleet of tenant databases on one host (issue 19, BENCHMARKS.md): the `sqlite-ops run`
//! binary of this optimised build over N WAL databases, 1 % of them written (each about once a
//! second), polled every `POLL`, under a hard limit of `NOFILE` open files set with prlimit.
//! Prints a Markdown row per size: databases up, daemon CPU, RSS, /metrics scrape time and size.
//!
//! Run: `cargo bench --bench fleet` (10,000 databases at 1 s, about 2 minutes);
//! `-- 100000 10s` for another size and poll interval; `FLEET_NOFILE=N` for another limit;
//! `FLEET_METRICS=health` (a `metrics:` list) for fewer series per database;
//! `FLEET_LITESTREAM=1` for Litestream's directory form over them, a file replica per tenant
//! (its files laid out as 0.5.17 lays them, no Litestream running: what sqlite-ops spends on
//! reading them), measured over two idle intervals. RSS is read before the scrapes and again
//! after them: rendering is where a large `/metrics` costs.

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

/// The first 100 bytes of an LTX file holding `min`-`max`, as Litestream 0.5 writes them.
fn ltx_header(min: u64, max: u64) -> Vec<u8> {
    let mut b = vec![0u8; 100];
    b[0..4].copy_from_slice(b"LTX1");
    b[8..12].copy_from_slice(&4096u32.to_be_bytes());
    b[16..24].copy_from_slice(&min.to_be_bytes());
    b[24..32].copy_from_slice(&max.to_be_bytes());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    b[32..40].copy_from_slice(&(now.unwrap().as_millis() as u64).to_be_bytes());
    b
}

/// Litestream 0.5's files for each database of `paths` (in `dir`), as its directory form with a
/// file replica lays them out: local state beside each, a replica under `dir/replica/<name>` with
/// a snapshot, a level-1 and a level-0 file; and a litestream.yml naming the directory.
fn litestream_layout(dir: &Path, paths: &[PathBuf]) -> PathBuf {
    let put = |folder: PathBuf, min: u64, max: u64| {
        std::fs::create_dir_all(&folder).unwrap();
        let name = format!("{min:016x}-{max:016x}.ltx");
        std::fs::write(folder.join(name), ltx_header(min, max)).unwrap();
    };
    for p in paths {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        put(dir.join(format!(".{name}-litestream/ltx/0")), 2, 2);
        let replica = dir.join("replica").join(&name).join("ltx");
        put(replica.join("9"), 1, 2);
        put(replica.join("1"), 1, 2);
        put(replica.join("0"), 2, 2);
    }
    let yml = dir.join("litestream.yml");
    let text = format!(
        "dbs:\n  - dir: {}\n    pattern: \"db*.db\"\n    replica: {{type: file, path: {}}}\n",
        dir.display(),
        dir.join("replica").display()
    );
    std::fs::write(&yml, text).unwrap();
    yml
}

fn run(n: usize, poll: &str, nofile: u64, measure: Duration, metrics: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let paths = databases(dir.path(), n);
    let litestream = std::env::var("FLEET_LITESTREAM").is_ok_and(|v| v == "1");
    // No Litestream runs: the written tenants' replicas fall behind, which is not measured here.
    let (extra, thresholds, measure) = match litestream {
        true => (
            format!(
                "litestream: {{config: {}, interval: 1s}}\n",
                litestream_layout(dir.path(), &paths).display()
            ),
            "  replication_lag: {warning: 'off', critical: 'off'}\n",
            measure.max(Duration::from_secs(120)),
        ),
        false => (String::new(), "", measure),
    };
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
    let extra = format!("{extra}metrics: [{metrics}]\n");
    let cfg = config(dir.path(), &paths, &extra, thresholds);
    let prlimit = common::program("prlimit", "util-linux");
    let limit = format!("--nofile={nofile}:{nofile}");
    // FLEET_WRAP: a profiler to run the daemon under (its words split on spaces), such as
    // `heaptrack -o /tmp/fleet`; the CPU figure then includes the wrapper's.
    let wrap = std::env::var("FLEET_WRAP").unwrap_or_default();
    let mut wrapper = vec![prlimit.to_str().unwrap(), &limit, "--"];
    wrapper.extend(wrap.split_whitespace());
    let mut daemon = Daemon::start_wrapped(
        &wrapper,
        &["--config", cfg.to_str().unwrap(), "--poll-interval", poll],
        &[],
    );
    wait_cycles(&daemon, 3.0);
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
    if !wrap.is_empty() {
        // A profiler writes its data when the daemon exits: end the daemon alone, not the
        // group, and wait for the wrapper.
        let binary = format!("^{}", env!("CARGO_BIN_EXE_sqlite-ops"));
        let _ = std::process::Command::new("pkill")
            .args(["-TERM", "-f", &binary])
            .status();
        common::wait_until(Duration::from_secs(120), || daemon.try_wait());
    }
    let reads: Vec<f64> = body
        .lines()
        .filter(|l| l.starts_with("sqlite_litestream_reads_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .collect();
    // The reads counter is not in every `metrics:` group (not in `health`).
    let reads = match reads.is_empty() {
        true => "replica reads not exported at these metrics:".to_string(),
        false => format!("{} replica reads", reads.iter().sum::<f64>()),
    };
    let replicas = match litestream {
        true => format!(", Litestream's directory form with a file replica each ({reads})"),
        false => String::new(),
    };
    format!(
        "| {n} WAL databases, 1 % written, polled every {poll}, hard limit {nofile}, metrics: [{metrics}]{replicas} | {up} of {n} up, {fds} descriptors open | {:.2} % of a core, {rss:.1} MiB ({rss_scraped:.1} MiB after the scrapes) | {:.1} ms ({:.1} MB, {} lines) |",
        cpu * 100.0,
        scrapes[5].as_secs_f64() * 1000.0,
        body.len() as f64 / 1e6,
        body.lines().count()
    )
}

/// Waits for `n` more poll cycles, read from `/metrics` twice a second: the status JSON that
/// `Daemon::wait_polls` reads every 20 ms is tens of megabytes at this size, and its garbage
/// was counted in the resident figure that follows.
fn wait_cycles(daemon: &Daemon, n: f64) {
    let cycles = || {
        let body = daemon.get("/metrics").1;
        body.lines()
            .find_map(|l| l.strip_prefix("sqlite_ops_poll_cycles_total "))
            .and_then(|v| v.parse::<f64>().ok())
    };
    let target = common::wait_for(Duration::from_secs(120), "a first cycle", cycles) + n;
    common::wait_for(Duration::from_secs(600), "poll cycles", || {
        std::thread::sleep(Duration::from_millis(500));
        cycles().filter(|c| *c >= target)
    });
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
