//! Restore time against database size (issue 21, BENCHMARKS.md): a WAL database of each size
//! is replicated by the real Litestream 0.5.17 to a file replica and to S3 (moto on
//! 127.0.0.1); once the replica holds every row, `litestream restore` is timed alone, then a
//! whole drill (restore, integrity_check, row counts, delete) through sqlite-ops's own drill
//! code. Prints a Markdown row per case and the seconds per GB the 50 and 100 GB lines of the
//! size signal extrapolate from.
//!
//! Run: `cargo bench --bench restore` (100 MB and 1 GB, about 5 minutes);
//! `-- 50` for other sizes in MB. Needs what scripts/test installs (Litestream, moto).

#[allow(dead_code, unused_imports)]
#[path = "../tests/common/mod.rs"]
mod common;
use common::services::litestream_bin;
use common::{Litestream, S3Server};
use sqlite_ops::drill::restore::{self, Job, Live, Outcome};
use sqlite_ops::drill::DrillSettings;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

const ROW: usize = 4000;

/// A WAL database of about `mb` MB of incompressible rows; returns its row count.
fn make_db(path: &Path, mb: usize) -> u64 {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);")
        .unwrap();
    let rows = (mb * 1_000_000 / ROW) as u64;
    let tx = c.unchecked_transaction().unwrap();
    {
        let mut st = tx
            .prepare("INSERT INTO t(v) VALUES (randomblob(?1))")
            .unwrap();
        for _ in 0..rows {
            st.execute([ROW as i64]).unwrap();
        }
    }
    tx.commit().unwrap();
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    rows
}

fn job(db: &Path, yml: &Path, scratch: &Path, kind: &str) -> Job {
    Job {
        db: "bench".into(),
        path: db.to_path_buf(),
        litestream_yml: yml.to_path_buf(),
        restore_yml: None,
        replica: (kind.into(), kind.into()),
        settings: DrillSettings {
            interval: Duration::from_secs(86_400),
            first_after: Duration::ZERO,
            scratch_dir: scratch.to_path_buf(),
            litestream: litestream_bin("0.5.17"),
            timeout: Duration::from_secs(3600),
        },
    }
}

/// Drills until the copy holds every row (the replica has caught up); returns the last result.
fn drill_until_whole(job: &Job, size: u64) -> sqlite_ops::drill::DrillResult {
    let live = Live {
        size: Some(size),
        lag: Some(0.0),
    };
    // A replica read and not empty, as the daemon's watcher would have it (no WAL position:
    // the copy is checked, not compared).
    let seen = || {
        Some(sqlite_ops::litestream::board::Observation {
            read_at: Some(0.0),
            replica: Some(sqlite_ops::litestream::position::Position::V5 { txid: 1 }),
            ..Default::default()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        if let Outcome::Ran(r) = restore::run(job, live, seen, &AtomicBool::new(false)) {
            if r.success {
                return r;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the replica never held every row"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// `litestream restore` alone, into a fresh file; seconds.
fn bare_restore(job: &Job, out: &Path) -> f64 {
    let _ = std::fs::remove_file(out);
    let t = Instant::now();
    let status = std::process::Command::new(&job.settings.litestream)
        .args(["restore", "-config"])
        .arg(&job.litestream_yml)
        .arg("-o")
        .arg(out)
        .arg(&job.path)
        .env_remove("AWS_CA_BUNDLE")
        .status()
        .unwrap();
    assert!(status.success());
    let secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(out);
    secs
}

fn case(mb: usize, kind: &str) -> (f64, f64, f64, u64) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let db = dir.path().join("app.db");
    let rows = make_db(&db, mb);
    let size = std::fs::metadata(&db).unwrap().len();
    let s3 = (kind == "s3").then(|| S3Server::start("backups"));
    let yml = dir.path().join("litestream.yml");
    let replica = match &s3 {
        None => format!("      - type: file\n        path: {}\n", dir.path().join("replica").display()),
        Some(s) => format!(
            "      - url: s3://backups/app\n        endpoint: {}\n        region: us-east-1\n        force-path-style: true\n",
            s.endpoint
        ),
    };
    std::fs::write(
        &yml,
        format!(
            "access-key-id: test\nsecret-access-key: test\ndbs:\n  - path: {}\n    replicas:\n{replica}",
            db.display()
        ),
    )
    .unwrap();
    std::env::remove_var("AWS_CA_BUNDLE");
    let litestream = Litestream::start("0.5.17", &yml);
    let scratch = dir.path().join("scratch");
    let job = job(&db, &yml, &scratch, kind);
    let first = drill_until_whole(&job, size);
    assert_eq!(first.rows, Some(rows));
    drop(litestream);
    let mut bare: Vec<f64> = (0..3)
        .map(|_| bare_restore(&job, &dir.path().join("bare.db")))
        .collect();
    bare.sort_by(f64::total_cmp);
    let mut whole: Vec<f64> = (0..3)
        .map(|_| drill_until_whole(&job, size).duration_seconds)
        .collect();
    whole.sort_by(f64::total_cmp);
    (size as f64 / 1e6, bare[1], whole[1], rows)
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100, 1000]
    } else {
        sizes
    };
    println!("| database | replica | rows | litestream restore (median of 3) | whole drill: restore, integrity_check, counts (median of 3) |");
    println!("|---|---|---|---|---|");
    let mut per_gb = Vec::new();
    for mb in &sizes {
        for kind in ["file", "s3"] {
            let (size_mb, bare, whole, rows) = case(*mb, kind);
            println!("| {size_mb:.0} MB | {kind} | {rows} | {bare:.2} s | {whole:.2} s |");
            per_gb.push((kind, size_mb, whole / (size_mb / 1000.0)));
        }
    }
    if let Some(&(_, biggest, _)) = per_gb.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
        for (kind, mb, s_per_gb) in per_gb.iter().filter(|p| p.1 == biggest) {
            println!(
                "{kind}: {s_per_gb:.1} s per GB at {mb:.0} MB; at that pace 50 GB takes {:.0} min and 100 GB {:.0} min",
                s_per_gb * 50.0 / 60.0,
                s_per_gb * 100.0 / 60.0
            );
        }
    }
}
