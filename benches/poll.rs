//! Cost of one poll of one WAL database (the file-reading fast path), with a live wal-index
//! held open by a writer in another process (Python's sqlite3).
//!
//! Run: `cargo bench --bench poll`. Prints the median and p99 wall time per poll and the CPU
//! time per poll (getrusage of this process).

use sqlite_ops::poller::{Poller, Target};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const POLLS: usize = 20_000;

fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/sqlite_driver.py");
    let mut py = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = py.stdin.take().unwrap();
    let mut out = BufReader::new(py.stdout.take().unwrap()).lines();
    for cmd in [
        format!("open w {} journal_mode=WAL", db.display()),
        "commit w 500".into(),
        format!("open r {}", db.display()),
    ] {
        writeln!(stdin, "{cmd}").unwrap();
        assert!(out.next().unwrap().unwrap().starts_with("ok"));
    }

    let mut poller = Poller::new(&[Target::new("bench", db)], "");
    for _ in 0..1000 {
        assert!(poller.poll_once()[0].up);
    }
    let mut times = Vec::with_capacity(POLLS);
    let cpu0 = cpu_time();
    let wall0 = Instant::now();
    for _ in 0..POLLS {
        let t = Instant::now();
        std::hint::black_box(poller.poll_once());
        times.push(t.elapsed());
    }
    let wall = wall0.elapsed();
    let cpu = cpu_time() - cpu0;
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("| measure (one WAL database, {POLLS} polls) | value |");
    println!("|---|---|");
    println!(
        "| median wall time per poll | {:.1} µs |",
        us(times[POLLS / 2])
    );
    println!(
        "| p99 wall time per poll | {:.1} µs |",
        us(times[POLLS * 99 / 100])
    );
    println!(
        "| mean CPU time per poll | {:.1} µs |",
        us(cpu) / POLLS as f64
    );
    println!(
        "| mean wall time per poll | {:.1} µs |",
        us(wall) / POLLS as f64
    );
    writeln!(stdin, "quit").unwrap();
    let _ = py.wait();
}
