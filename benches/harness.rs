//! Whole-process benchmarks of sqlite-ops (BENCHMARKS.md): poll cost against SQL-per-scrape,
//! scale to 1,000 databases, impact on a busy application, and accuracy under that load.
//!
//! Run: `cargo bench --bench harness` (about 5 minutes). Prints a Markdown table; `-- --quick`
//! runs shorter rounds; `HARNESS_ONLY_IMPACT=1` runs targets 3 and 4 alone. The daemon is the
//! `sqlite-ops run` binary of this (optimised) build in its own process; the application is this
//! process's threads, so the two never share POSIX locks.

// The benches borrow a few of the tests' helpers (a daemon, the Python application): each
// uses a part of them, and of `measure`.
#[allow(dead_code, unused_imports)]
#[path = "../tests/common/mod.rs"]
mod common;
#[allow(dead_code)]
mod measure;
use common::{Daemon, PyDriver};
use measure::{config, cpu_share, create_wal_db, round_robin, rss_mib};
use rusqlite::Connection;
use sqlite_ops::poller::Poller;
use sqlite_ops::target::Target;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const GUIDE_PRAGMAS: &str = sqlite_ops::check::RECOMMENDED_PRAGMAS;

fn cpu_self() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The daemon under measurement: the `sqlite-ops run` binary with `config`, polling every
/// `poll`, on 127.0.0.1 (tests/common's child-process helper), once it has polled twice.
fn daemon(config: &Path, poll: &str) -> Daemon {
    let d = Daemon::start(&[
        "--config",
        config.to_str().unwrap(),
        "--poll-interval",
        poll,
    ]);
    d.wait_polls(2);
    d
}

/// Target 1: CPU per poll of our fast path and of the SQL-per-scrape approach, same database.
fn poll_cost(dir: &Path, rows: &mut Vec<String>) {
    // The database is held open, and written, by another process (Python's sqlite3), as an
    // application would: neither our poller nor the SQL baseline shares its connection state.
    let db = dir.join("poll.db");
    let mut app = PyDriver::start();
    app.open("w", &db, "journal_mode=WAL");
    app.cmd("commit w 500");
    app.open("r", &db, "");
    const N: u32 = 20_000;
    let mut poller = Poller::new(&[Target::new("bench", &db)], "");
    for _ in 0..1000 {
        std::hint::black_box(poller.poll_once());
    }
    let cpu0 = cpu_self();
    let mut times = Vec::with_capacity(N as usize);
    for _ in 0..N {
        let t = Instant::now();
        std::hint::black_box(poller.poll_once());
        times.push(t.elapsed());
    }
    let ours = (cpu_self() - cpu0) / N;
    times.sort();
    let median = times[times.len() / 2];

    const M: u32 = 2_000;
    let sql = || {
        std::hint::black_box(measure::sql_per_scrape(&db));
    };
    for _ in 0..100 {
        sql();
    }
    let cpu0 = cpu_self();
    for _ in 0..M {
        sql();
    }
    let theirs = (cpu_self() - cpu0) / M;
    drop(app);
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    rows.push(format!(
        "| 1 | poll cost, one WAL database: CPU per poll (median wall) | ≤ 20 µs | {:.1} µs ({:.1} µs) |",
        us(ours),
        us(median)
    ));
    rows.push(format!(
        "| 1 | SQL-per-scrape (open read-only, page_count, freelist_count, journal_mode, close): CPU | ≥ 20× ours | {:.1} µs = {:.0}× ours |",
        us(theirs),
        theirs.as_secs_f64() / ours.as_secs_f64()
    ));
}

/// Target 2: N databases written now and then, polled every second by one daemon.
fn scale(dir: &Path, n: usize, measure: Duration, rows: &mut Vec<String>) {
    let (cpu, rss, scrape) = fleet(dir, n, measure, Duration::from_millis(10), "10ms");
    rows.push(format!(
        "| 2 | {n} WAL databases polled every 1 s, 100 commits/s across them: daemon CPU, RSS, /metrics scrape (median of 20) | 1,000: ≤ 5 % of a core, ≤ 64 MiB, ≤ 50 ms | {:.2} % of a core, {rss:.1} MiB, {:.1} ms |",
        cpu * 100.0,
        scrape * 1000.0
    ));
}

/// The write-lock sampler's own cost: the daemon's CPU with busy databases sampled every 10 ms
/// between polls, against sampling only at each poll.
fn sampler(dir: &Path, n: usize, measure: Duration, rows: &mut Vec<String>) {
    // Every database busy: each commits about 5 times a second (above the 1/s of "busy").
    let gap = Duration::from_micros(200_000 / n as u64);
    let (on, _, _) = fleet(dir, n, measure, gap, "10ms");
    let (off, _, _) = fleet(dir, n, measure, gap, "1h");
    rows.push(format!(
        "| 2 | write-lock sampler, {n} busy database(s) (5 commits/s each): daemon CPU sampling every 10 ms vs only at polls | — | {:.2} % vs {:.2} % of a core: the sampler costs {:.2} % |",
        on * 100.0,
        off * 100.0,
        (on - off) * 100.0
    ));
}

/// Runs a daemon over `n` databases written round-robin every `gap`; returns its CPU share of
/// one core, RSS in MiB and the median scrape time in seconds.
fn fleet(
    dir: &Path,
    n: usize,
    measure: Duration,
    gap: Duration,
    lock_sample_interval: &str,
) -> (f64, f64, f64) {
    let sub = dir.join(format!(
        "fleet-{n}-{lock_sample_interval}-{}",
        gap.as_micros()
    ));
    std::fs::create_dir_all(&sub).unwrap();
    let paths: Vec<PathBuf> = (0..n).map(|i| sub.join(format!("db{i}.db"))).collect();
    let conns: Vec<Connection> = paths.iter().map(|p| create_wal_db(p)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    // 100 small write transactions per second across the fleet, round-robin.
    let writer = round_robin(conns, gap, stop.clone());
    let cfg = config(
        &sub,
        &paths,
        &format!("lock_sample_interval: {lock_sample_interval}\n"),
        "",
    );
    let daemon = daemon(&cfg, "1s");
    daemon.wait_polls(1);
    let cpu = cpu_share(daemon.pid(), measure);
    let rss = rss_mib(daemon.pid());
    let mut scrapes: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            let (_, body) = daemon.get("/metrics");
            let took = t.elapsed();
            assert!(body.contains(&format!("db=\"db{}\"", n - 1)));
            took
        })
        .collect();
    scrapes.sort();
    stop.store(true, Ordering::Relaxed);
    drop(writer.join().unwrap());
    (cpu, rss, scrapes[10].as_secs_f64())
}

/// The application of targets 3 and 4: one writer as fast as it can (TRUNCATE checkpoint every
/// 2,000 commits, automatic ones in between) and four readers, each about 1,000 reads a second.
struct App {
    commits: Arc<AtomicU64>,
    reads: Arc<AtomicU64>,
    running: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl App {
    fn start(db: &Path) -> Self {
        let commits = Arc::new(AtomicU64::new(0));
        let reads = Arc::new(AtomicU64::new(0));
        let running = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        {
            let (db, commits, running, stop) = (
                db.to_path_buf(),
                commits.clone(),
                running.clone(),
                stop.clone(),
            );
            threads.push(std::thread::spawn(move || {
                let c = create_wal_db(&db);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if !running.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    c.execute("INSERT INTO t(v) VALUES ('payload of a typical row')", [])
                        .unwrap();
                    n += 1;
                    commits.store(n, Ordering::Relaxed);
                    if n.is_multiple_of(2000) {
                        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                            .unwrap();
                    }
                }
            }));
        }
        for _ in 0..4 {
            let (db, reads, running, stop) = (
                db.to_path_buf(),
                reads.clone(),
                running.clone(),
                stop.clone(),
            );
            threads.push(std::thread::spawn(move || {
                let c = Connection::open(&db).unwrap();
                c.execute_batch(GUIDE_PRAGMAS).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    if !running.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    let _: i64 = c
                        .query_row(
                            "SELECT count(*) FROM (SELECT id FROM t ORDER BY id DESC LIMIT 100)",
                            [],
                            |r| r.get(0),
                        )
                        .unwrap();
                    reads.fetch_add(1, Ordering::Relaxed);
                    // A reader serving requests, not a spinning loop: on 2 cores, four spinning
                    // readers would leave the writer's share to the scheduler's whims.
                    std::thread::sleep(Duration::from_millis(1));
                }
            }));
        }
        App {
            commits,
            reads,
            running,
            stop,
            threads,
        }
    }

    /// Runs the workload for `d`; returns commits made.
    fn round(&self, d: Duration) -> u64 {
        let c0 = self.commits.load(Ordering::Relaxed);
        self.running.store(true, Ordering::Relaxed);
        std::thread::sleep(d);
        self.running.store(false, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(20));
        self.commits.load(Ordering::Relaxed) - c0
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Targets 3 and 4.
fn impact_and_accuracy(dir: &Path, rounds: usize, round: Duration, rows: &mut Vec<String>) {
    let sub = dir.join("impact");
    std::fs::create_dir_all(&sub).unwrap();
    let db = sub.join("app.db");
    drop(create_wal_db(&db));
    let app = App::start(&db);
    app.round(Duration::from_millis(100));
    // The wal-index is read through one descriptor opened now and closed only after the app
    // stops: closing a descriptor of a file drops every POSIX lock this process holds on it,
    // SQLite's included.
    let mut shm_file = std::fs::File::open(sub.join("app.db-shm")).unwrap();
    let cfg = config(&sub, std::slice::from_ref(&db), "", "");
    app.round(Duration::from_millis(500)); // warm up
    let (mut without, mut with) = (Vec::new(), Vec::new());
    let mut exact = (0u64, 0u64);
    let mut lag_checks = (0, 0);
    for i in 0..rounds {
        // ABBA order, so that drift (checkpoints, caches, the machine) cancels out.
        if i.is_multiple_of(2) {
            without.push(app.round(round) as f64 / round.as_secs_f64());
        }
        let daemon = daemon(&cfg, "100ms");
        let total = |d: &Daemon| {
            d.metrics()
                .db("sqlite_write_transactions_total", "db0")
                .unwrap()
        };
        let before = total(&daemon);
        let made = app.round(round);
        with.push(made as f64 / round.as_secs_f64());
        daemon.wait_polls(2);
        let after = total(&daemon);
        let lag_bytes = daemon
            .metrics()
            .db("sqlite_checkpoint_lag_bytes", "db0")
            .unwrap();
        exact.0 += made;
        exact.1 += (after - before) as u64;
        // Checkpoint lag bytes against what the wal-index itself says, at rest.
        let mut shm = vec![0u8; 136];
        std::os::unix::fs::FileExt::read_exact_at(&shm_file, &mut shm, 0).unwrap();
        let idx = sqlite_ops::format::shm::parse(&shm, sqlite_ops::format::shm::ByteOrder::NATIVE)
            .unwrap();
        let implied = f64::from(idx.checkpoint_lag_frames()) * f64::from(idx.header.page_size);
        lag_checks.1 += 1;
        if implied == lag_bytes {
            lag_checks.0 += 1;
        }
        drop(daemon);
        if i % 2 == 1 {
            without.push(app.round(round) as f64 / round.as_secs_f64());
        }
    }
    let reads = app.reads.load(Ordering::Relaxed);
    drop(app);
    let _ = shm_file.flush();
    drop(shm_file);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    rows.push(format!(
        "| 3 | writer tx/s without / with the daemon polling every 100 ms ({rounds} alternated rounds of {:.0} s, 4 readers: {reads} reads) | ≥ 99 % | {:.0} / {:.0} tx/s = {:.1} % |",
        round.as_secs_f64(),
        mean(&without),
        mean(&with),
        mean(&with) / mean(&without) * 100.0
    ));
    rows.push(format!(
        "| 4 | commits made vs counted by sqlite_write_transactions_total under that load, with automatic and TRUNCATE checkpoints | equal | {} vs {}: {} |",
        exact.0,
        exact.1,
        if exact.0 == exact.1 { "exact" } else { "MISMATCH" }
    ));
    rows.push(format!(
        "| 4 | sqlite_checkpoint_lag_bytes equals (mxFrame - nBackfill) × page size read from -shm at rest | equal | {} of {} rounds |",
        lag_checks.0, lag_checks.1
    ));
}

fn main() {
    // `cargo bench` passes --bench; a quick run is shorter, for checking the harness itself.
    let quick = std::env::args().any(|a| a == "--quick");
    let dir = tempfile::tempdir().unwrap();
    let mut rows = vec![
        "| target | measure | goal | result |".to_string(),
        "|---|---|---|---|".to_string(),
    ];
    if std::env::var("HARNESS_ONLY_IMPACT").is_err() {
        poll_cost(dir.path(), &mut rows);
        let measure = Duration::from_secs(if quick { 5 } else { 20 });
        for n in [10, 100, 1000] {
            scale(dir.path(), n, measure, &mut rows);
        }
        for n in [1, 1000] {
            sampler(dir.path(), n, measure, &mut rows);
        }
    }
    let (rounds, round) = if quick {
        (2, Duration::from_secs(2))
    } else {
        (6, Duration::from_secs(5))
    };
    impact_and_accuracy(dir.path(), rounds, round, &mut rows);
    println!("{}", rows.join("\n"));
}
