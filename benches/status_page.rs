//! What the status page costs the daemon (issue 20): recording one poll cycle of 100 databases
//! into their history, drawing the page for them over the last hour and the last day, and
//! serving /api/v1/history; and the memory the history holds. Run with
//! `cargo bench --bench status_page`; the figures are in BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, Criterion};
use sqlite_ops::history::{outlook, History, Range};
use sqlite_ops::monitor::{DbSnapshot, Declared, ReplicaSnapshot};
use sqlite_ops::poller::PerDb;
use sqlite_ops::probe::filesystem::FsStat;
use sqlite_ops::web::status_page::{self, Page};
use std::path::Path;

const DATABASES: usize = 100;
const T0: f64 = 1_800_000_000.0;

fn snapshot(i: usize, at: f64) -> DbSnapshot {
    let mut s = DbSnapshot::new(
        format!("tenant-{i:03}"),
        Path::new("/var/lib/app/t.db"),
        Declared::default(),
    );
    let day = (at - T0) / 86_400.0;
    s.up = true;
    s.polled_at = at;
    s.database_size_bytes = Some((1e9 + day * 1e8 + (i as f64) * 1e6) as u64);
    s.write_transactions_per_second = Some(50.0 + ((at as u64 + i as u64) % 37) as f64);
    s.wal = Some(Default::default());
    s.filesystem = Some(FsStat {
        mount_point: Path::new("/").into(),
        fs_type: "ext4".into(),
        free_bytes: Some((5e10 - day * 1e9) as u64),
        size_bytes: Some(1e11 as u64),
    });
    s.litestream = vec![ReplicaSnapshot {
        replica: "s3".into(),
        lag_seconds: Some(1.0),
        ..Default::default()
    }]
    .into();
    s
}

/// A week of history, one cycle every 10 s, and the last cycle's snapshots.
fn a_week() -> (History, Vec<DbSnapshot>) {
    let mut h = History::new(DATABASES);
    let mut last = Vec::new();
    for step in 0..(7 * 8640) {
        let at = T0 + f64::from(step) * 10.0;
        last = (0..DATABASES).map(|i| snapshot(i, at)).collect();
        h.record(&last);
    }
    (h, last)
}

fn benches(c: &mut Criterion) {
    let (mut history, snapshots) = a_week();
    let now = snapshots[0].polled_at;
    let per_db = PerDb {
        thresholds: vec![Default::default(); DATABASES],
        metrics: vec![Default::default(); DATABASES],
    };
    let page = |h: &History, range| {
        status_page::render(&Page {
            version: "bench",
            sqlite_version: "3",
            telemetry_path: "/metrics",
            snapshots: &snapshots,
            per_db: &per_db,
            alerts: &[],
            history: h,
            range,
            now,
            refresh_seconds: 5,
        })
    };
    let api = |h: &History| {
        let dbs: Vec<_> = snapshots
            .iter()
            .map(|s| {
                let d = h.get(&s.name).unwrap();
                serde_json::json!({
                    "db": s.name,
                    "ranges": Range::ALL.iter().map(|r| (r.as_str(), d.range_data(*r, now))).collect::<std::collections::BTreeMap<_, _>>(),
                    "forecasts": outlook::forecasts(d, s, &Default::default(), now),
                })
            })
            .collect();
        serde_json::json!({ "databases": dbs }).to_string()
    };
    println!(
        "history of {DATABASES} databases with one replica each: {} bytes ({} per database); page {} bytes (1h), {} bytes (1d); /api/v1/history {} bytes",
        history.bytes(),
        history.bytes() / DATABASES,
        page(&history, Range::Hour).len(),
        page(&history, Range::Day).len(),
        api(&history).len(),
    );
    let mut g = c.benchmark_group("status_page");
    g.sample_size(20);
    let mut at = now;
    g.bench_function("record_one_cycle_of_100_databases", |b| {
        b.iter(|| {
            at += 10.0;
            let cycle: Vec<_> = (0..DATABASES).map(|i| snapshot(i, at)).collect();
            history.record(&cycle);
        })
    });
    g.bench_function("render_the_page_for_100_databases_1h", |b| {
        b.iter(|| page(&history, Range::Hour))
    });
    g.bench_function("render_the_page_for_100_databases_1d", |b| {
        b.iter(|| page(&history, Range::Day))
    });
    g.bench_function("api_v1_history_for_100_databases", |b| {
        b.iter(|| api(&history))
    });
    g.finish();
}

criterion_group!(status, benches);
criterion_main!(status);
