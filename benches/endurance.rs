//! Endurance benchmarks of the daemon (BENCHMARKS.md), each a whole `sqlite-ops run` process of
//! this (optimised) build:
//!
//! - `soak`: 1,000 WAL databases with light writes (100 commits/s across them), polled every
//!   second and scraped every 15 s, for 30 minutes: resident memory, open descriptors and CPU
//!   over minute 2, minute 6 (once the 5-minute windows are full) and the last minute.
//! - `churn`: 50 WAL databases whose three files are deleted and created again every 100 ms,
//!   for 10 minutes: descriptors and memory at the start, the most seen, and at the end.
//! - `outage`: a real Alertmanager made unreachable (SIGSTOP: connections are accepted and never
//!   answered) for 10 minutes while 100 databases go down and come back; then it is resumed:
//!   how long until it holds exactly the alerts that are firing, with their start times, and the
//!   daemon's memory before, during and after.
//!
//! Run: `cargo bench --bench endurance -- soak|churn|outage [--minutes N]` (default: the
//! durations above). Prints Markdown table rows.

// The benches borrow a few of the tests' helpers (a daemon, the Python application): each
// uses a part of them, and of `measure`.
#[allow(dead_code, unused_imports)]
#[path = "../tests/common/mod.rs"]
mod common;
#[allow(dead_code)]
mod measure;
use common::{free_port, Alertmanager, Daemon};
use measure::{config, cpu_of, create_wal_db, rss_mib};
use rusqlite::Connection;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// What one window of the run measured.
struct Window {
    rss: f64,
    fds: usize,
    cpu_pct: f64,
}

/// RSS and descriptors at the end of a `len` window, and the CPU share over it.
fn measure(pid: u32, len: Duration, mut meanwhile: impl FnMut()) -> Window {
    let (c0, t0) = (cpu_of(pid), Instant::now());
    while t0.elapsed() < len {
        meanwhile();
    }
    let cpu = (cpu_of(pid) - c0).as_secs_f64() / t0.elapsed().as_secs_f64();
    Window {
        rss: rss_mib(pid),
        fds: fds(pid),
        cpu_pct: cpu * 100.0,
    }
}

fn soak(minutes: u64) {
    const DBS: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = (0..DBS)
        .map(|i| dir.path().join(format!("db{i}.db")))
        .collect();
    let conns: Vec<Connection> = paths.iter().map(|p| create_wal_db(p)).collect();
    let cfg = config(dir.path(), &paths, "", "");
    let daemon = Daemon::start(&["--config", cfg.to_str().unwrap(), "--poll-interval", "1s"]);
    let pid = daemon.pid();
    let mut next_commit = Instant::now();
    let mut next_scrape = Instant::now();
    let mut i = 0usize;
    let mut commits = 0u64;
    // 100 commits/s round-robin, and a scrape every 15 s, as Prometheus would.
    let mut work = || {
        let now = Instant::now();
        if now >= next_scrape {
            let (status, _) = daemon.get("/metrics");
            assert_eq!(status, 200);
            next_scrape += Duration::from_secs(15);
        }
        if now >= next_commit {
            conns[i % DBS]
                .execute("INSERT INTO t(v) VALUES ('soak')", [])
                .unwrap();
            i += 1;
            commits += 1;
            next_commit += Duration::from_millis(10);
        } else {
            std::thread::sleep(next_commit - now);
        }
    };
    let minute = Duration::from_secs(60);
    measure(pid, minute, &mut work); // the first polls
    let first = measure(pid, minute, &mut work);
    // The 5-minute windows (rates, lag history) fill by minute 6: memory grows until then by
    // design, so "flat" is judged from there.
    measure(pid, 3 * minute, &mut work);
    let full = measure(pid, minute, &mut work);
    measure(
        pid,
        Duration::from_secs(60 * minutes.saturating_sub(7)),
        &mut work,
    );
    let last = measure(pid, minute, &mut work);
    let change = |a: f64, b: f64| (b - a) / a * 100.0;
    println!(
        "| soak | {DBS} WAL databases, {commits} commits (100/s), polled every 1 s, scraped every 15 s, {minutes} min | RSS, descriptors, CPU: minute 2 / minute 6 (windows full) / last minute | {:.1} / {:.1} / {:.1} MiB ({:+.1} % from minute 6), {} / {} / {} fds, {:.2} / {:.2} / {:.2} % of a core ({:+.1} %) |",
        first.rss,
        full.rss,
        last.rss,
        change(full.rss, last.rss),
        first.fds,
        full.fds,
        last.fds,
        first.cpu_pct,
        full.cpu_pct,
        last.cpu_pct,
        change(full.cpu_pct, last.cpu_pct)
    );
}

fn churn(minutes: u64) {
    const DBS: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template.db");
    let keep = create_wal_db(&template);
    keep.execute("INSERT INTO t(v) VALUES ('x')", []).unwrap();
    let paths: Vec<PathBuf> = (0..DBS)
        .map(|i| dir.path().join(format!("db{i}.db")))
        .collect();
    let copy_all = || {
        for p in &paths {
            for suffix in ["", "-wal", "-shm"] {
                let to = format!("{}{suffix}", p.display());
                let _ = std::fs::remove_file(&to);
                std::fs::copy(format!("{}{suffix}", template.display()), &to).unwrap();
            }
        }
    };
    copy_all();
    let cfg = config(dir.path(), &paths, "", "");
    let daemon = Daemon::start(&["--config", cfg.to_str().unwrap(), "--poll-interval", "1s"]);
    let pid = daemon.pid();
    let mut rounds = 0u64;
    let mut most_fds = 0usize;
    let mut most_rss = 0f64;
    // RSS at the end of every minute: a plateau or a slope.
    let mut per_minute: Vec<String> = Vec::new();
    let started = Instant::now();
    let mut work = || {
        copy_all();
        rounds += 1;
        most_fds = most_fds.max(fds(pid));
        most_rss = most_rss.max(rss_mib(pid));
        if started.elapsed() >= Duration::from_secs(60 * (per_minute.len() as u64 + 1)) {
            per_minute.push(format!("{:.1}", rss_mib(pid)));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let half = Duration::from_secs(30);
    let start = measure(pid, half, &mut work);
    measure(pid, Duration::from_secs(60 * minutes) - 2 * half, &mut work);
    let end = measure(pid, half, &mut work);
    let (status, _) = daemon.get("/healthz");
    println!(
        "| churn | {DBS} WAL databases' three files deleted and created again every 100 ms ({rounds} rounds), polled every 1 s, {minutes} min | descriptors and RSS: after 30 s, most seen, end; RSS each minute | {} / {} / {} fds, {:.1} / {:.1} / {:.1} MiB; {} MiB; /healthz {status} |",
        start.fds,
        most_fds,
        end.fds,
        start.rss,
        most_rss,
        end.rss,
        per_minute.join(", ")
    );
}

/// (firing alert keys in the daemon with their start, as Alertmanager should hold them)
fn firing(d: &Daemon) -> Vec<(String, String)> {
    let body: serde_json::Value = serde_json::from_str(&d.get("/api/v1/alerts").1).unwrap();
    let mut v: Vec<(String, String)> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["state"] == "firing")
        .map(|a| {
            (
                format!(
                    "{}/{}",
                    a["alert"].as_str().unwrap(),
                    a["db"].as_str().unwrap()
                ),
                a["active_since"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn in_alertmanager(am: &Alertmanager) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = am
        .alerts()
        .iter()
        .filter(|a| a["status"]["state"] == "active")
        .map(|a| {
            (
                format!(
                    "{}/{}",
                    a["labels"]["alertname"].as_str().unwrap(),
                    a["labels"]["db"].as_str().unwrap()
                ),
                a["startsAt"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn rfc3339_secs(s: &str) -> String {
    s.get(..19).unwrap_or(s).to_string()
}

fn outage(minutes: u64) {
    const DBS: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = (0..DBS)
        .map(|i| dir.path().join(format!("db{i}.db")))
        .collect();
    for p in &paths {
        drop(create_wal_db(p));
    }
    let am = Alertmanager::start(&dir.path().join("am"), free_port());
    // Down for 1 s before firing (the default is a minute).
    let cfg = config(
        dir.path(),
        &paths,
        &format!(
            "alertmanager: {{urls: [{}], resend_interval: 1m, timeout: 10s}}\n",
            am.url
        ),
        "  database_down: {for: 1s}\n",
    );
    let daemon = Daemon::start(&["--config", cfg.to_str().unwrap(), "--poll-interval", "1s"]);
    let pid = daemon.pid();
    let hidden = |i: usize| dir.path().join(format!("hidden{i}.db"));
    let toggle = |i: usize| {
        if paths[i].exists() {
            std::fs::rename(&paths[i], hidden(i)).unwrap();
        } else {
            std::fs::rename(hidden(i), &paths[i]).unwrap();
        }
    };
    // Before: every tenth database down, delivered.
    for i in (0..DBS).step_by(10) {
        toggle(i);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while in_alertmanager(&am).len() != DBS / 10 {
        assert!(
            Instant::now() < deadline,
            "the first alerts reach Alertmanager"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let before_rss = rss_mib(pid);
    am.signal(libc::SIGSTOP);
    let mut most_rss = before_rss;
    let mut changes = 0;
    let until = Instant::now() + Duration::from_secs(60 * minutes);
    let mut n = 0usize;
    while Instant::now() < until {
        // Every 5 s, seven databases change state (37 is prime to 100: all get their turn).
        for _ in 0..7 {
            toggle(n % DBS);
            n += 37;
            changes += 1;
        }
        let wake = Instant::now() + Duration::from_secs(5);
        while Instant::now() < wake.min(until) {
            most_rss = most_rss.max(rss_mib(pid));
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    std::thread::sleep(Duration::from_secs(3)); // the last changes polled and fired
    let expected = firing(&daemon);
    let errors = daemon
        .metrics()
        .samples
        .iter()
        .find(|(k, _)| k.starts_with("sqlite_ops_alertmanager_errors_total"))
        .map_or(0.0, |(_, v)| *v);
    am.signal(libc::SIGCONT);
    let resumed = Instant::now();
    let deadline = resumed + Duration::from_secs(300);
    let want: Vec<(String, String)> = expected
        .iter()
        .map(|(k, s)| (k.clone(), rfc3339_secs(s)))
        .collect();
    loop {
        let got: Vec<(String, String)> = in_alertmanager(&am)
            .into_iter()
            .map(|(k, s)| (k, rfc3339_secs(&s)))
            .collect();
        if got == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Alertmanager holds {} alerts, the daemon fires {}",
            got.len(),
            want.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let caught_up = resumed.elapsed();
    let after_rss = rss_mib(pid);
    println!(
        "| outage | Alertmanager unreachable (SIGSTOP) {minutes} min, {changes} database state changes meanwhile, {errors} failed POSTs | after it is back: Alertmanager holds exactly the {} firing alerts with their start times; daemon RSS before / most during / after | in {:.1} s; {:.1} / {:.1} / {:.1} MiB |",
        want.len(),
        caught_up.as_secs_f64(),
        before_rss,
        most_rss,
        after_rss
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let minutes = |default: u64| {
        args.iter()
            .position(|a| a == "--minutes")
            .and_then(|i| args.get(i + 1))
            .and_then(|m| m.parse().ok())
            .unwrap_or(default)
    };
    let which: Vec<&str> = ["soak", "churn", "outage"]
        .into_iter()
        .filter(|w| args.iter().any(|a| a == w))
        .collect();
    if which.is_empty() {
        eprintln!("usage: cargo bench --bench endurance -- soak|churn|outage [--minutes N]");
        return;
    }
    println!("| bench | what | measure | result |\n|---|---|---|---|");
    for w in which {
        match w {
            "soak" => soak(minutes(30)),
            "churn" => churn(minutes(10)),
            _ => outage(minutes(10)),
        }
    }
}
