//! Every feature at once on an application nobody here wrote (issue 28): PocketBase from PyPI
//! (Go, its own SQLite build, two WAL databases in one folder) written through its own HTTP
//! API; the real Litestream 0.5.17 in its directory form, `data.db` to a file replica and
//! `auxiliary.db` to S3 on 127.0.0.1; sqlite-ops watching the folder through a glob, with restore
//! drills, the history and status page, a webhook, a heartbeat, a state file and a real
//! Alertmanager. Busy, then idle past the pin and starvation thresholds: nothing pending or
//! firing, every drill a success, no forecast reaching past four times its history. Then the
//! faults, each paged and resolved: Litestream frozen, replica files removed, a reader holding a
//! snapshot.

use crate::common;

use common::services::litestream_bin;
use common::{
    free_port, wait_for, wait_until, Alertmanager, ConfigFile, Daemon, Litestream, PocketBase,
    PyDriver, Receiver, S3Server, STEP,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The pin and starvation thresholds, lowered from their 5-minute defaults to fit the suite;
/// `EVERYTHING_PIN_SECONDS=300` runs it by hand at the defaults (CONTRIBUTING.md).
fn short() -> u64 {
    std::env::var("EVERYTHING_PIN_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}
/// PocketBase's write rate while busy: records created through its API per second.
const BUSY_RATE: u32 = 240;
/// Records created while busy: half a minute at the busy rate.
const BUSY_RECORDS: u64 = 30 * BUSY_RATE as u64;

/// The files of the replica at `root` (level folders of `ltx/`) whose TXID range starts at 1:
/// the snapshot and the first files a restore begins with.
fn first_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for level in std::fs::read_dir(root.join("ltx")).unwrap().flatten() {
        for f in std::fs::read_dir(level.path()).unwrap().flatten() {
            if f.file_name()
                .to_string_lossy()
                .starts_with("0000000000000001-")
            {
                out.push(f.path());
            }
        }
    }
    out
}

/// Whether the webhook was told `alert` on `db` in `state`.
fn told(r: &Receiver, alert: &str, db: &str, state: &str) -> bool {
    r.at("/hook").iter().any(|p| {
        p.json()["alerts"].as_array().is_some_and(|alerts| {
            alerts
                .iter()
                .any(|a| a["alert"] == alert && a["db"] == db && a["state"] == state)
        })
    })
}

#[test]
fn everything_at_once_on_pocketbase_pages_nobody_when_healthy_and_pages_each_fault() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pb_data");
    std::fs::create_dir_all(&data).unwrap();
    let mut app = PocketBase::start(&data);
    let s3 = S3Server::start("backups");
    let replica = dir.path().join("replica");
    let yml = dir.path().join("litestream.yml");
    std::fs::write(
        &yml,
        format!(
            "access-key-id: test\nsecret-access-key: test\ndbs:\n\
             \x20 - dir: {data}\n    pattern: data.db\n    watch: true\n    replica:\n      type: file\n      path: {replica}\n      sync-interval: 1s\n\
             \x20 - dir: {data}\n    pattern: auxiliary.db\n    watch: true\n    replica:\n      url: s3://backups/pb\n      endpoint: {endpoint}\n      region: us-east-1\n      force-path-style: true\n      sync-interval: 1s\n",
            data = data.display(),
            replica = replica.display(),
            endpoint = s3.endpoint,
        ),
    )
    .unwrap();
    let litestream = Litestream::start("0.5.17", &yml);
    let am = Alertmanager::start(&dir.path().join("am"), free_port());
    let hooks = Receiver::start();
    let config = dir.path().join("sqlite-ops.yaml");
    // Drills every 15 s: two databases drilled one at a time on a loaded 2-core machine take a
    // few seconds each, and at 5 s they fell behind their own interval and SQLiteRestoreDrillStale
    // (no success within two intervals) fired, truly, on a run beside a release build.
    let at_once = json!({"warning": format!("{}s", short()), "for": "0s"});
    ConfigFile::new()
        .set("poll_interval", json!("500ms"))
        .set("discover_interval", json!("1s"))
        .entry(json!({"glob": format!("{}/*.db", data.display())}))
        .litestream(&yml, "1s")
        .set(
            "alertmanager",
            json!({"urls": [am.url], "resend_interval": "1m"}),
        )
        .set(
            "notify",
            json!({"webhooks": [{"url": format!("{}/hook", hooks.url)}],
                   "heartbeat": {"url": format!("{}/beat", hooks.url), "interval": "1s",
                                 "timeout": "2s"}}),
        )
        .set("state_file", json!(dir.path().join("state.json")))
        .set(
            "restore_drill",
            json!({"interval": "15s", "first_after": "0s", "scratch_dir": dir.path().join("scratch"),
                   "litestream": litestream_bin("0.5.17"), "timeout": "60s"}),
        )
        .threshold("snapshot_age", at_once.clone())
        .threshold("checkpoint_lag_age", at_once)
        .threshold("restore_drill_failed", json!({"for": "0s"}))
        .no_disk_alert()
        .write(&config);
    // Litestream 0.5.17's S3 client refuses a custom CA bundle, which drills inherit.
    let d = Daemon::start_without_env(&["--config", config.to_str().unwrap()], &["AWS_CA_BUNDLE"]);
    let m = |key: &str| d.metrics().samples.get(key).copied();

    // Busy through the API, then idle past the pin and starvation thresholds.
    app.cmd(&format!("rate {BUSY_RATE}"));
    wait_for(Duration::from_secs(120), "the busy half minute", || {
        (app.number("created") >= BUSY_RECORDS).then_some(())
    });
    app.cmd("rate 0");
    let records = app.number("records");
    assert!(records >= BUSY_RECORDS, "PocketBase counts {records}");
    let idle = std::time::Instant::now();
    while idle.elapsed() < Duration::from_secs(short() + 10) {
        let now = d.raised();
        assert!(now.is_empty(), "a healthy application raised {now:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    // Every record was counted, one commit each at least (PocketBase and Litestream commit
    // their own bookkeeping too).
    let commits = m("sqlite_write_transactions_total{db=\"data\"}").unwrap();
    assert!(
        commits >= records as f64,
        "{commits} commits for {records} records"
    );
    assert!(
        am.alerts().is_empty(),
        "Alertmanager holds {:?}",
        am.alerts()
    );
    assert!(hooks.at("/hook").is_empty(), "no webhook while healthy");
    assert!(hooks.at("/beat").len() >= 3, "heartbeats while healthy");
    for (db, kind) in [("data", "file"), ("auxiliary", "s3")] {
        let l = format!("{{db=\"{db}\",replica=\"{kind}\"}}");
        wait_for(STEP, &format!("a drill of {db}"), || {
            m(&format!("sqlite_restore_drill_runs_total{l}")).filter(|n| *n >= 2.0)
        });
        assert_eq!(
            m(&format!("sqlite_restore_drill_success{l}")),
            Some(1.0),
            "{db}"
        );
        assert_eq!(
            m(&format!("sqlite_restore_drill_failures_total{l}")),
            Some(0.0)
        );
        assert_eq!(m(&format!("sqlite_litestream_up{l}")), Some(1.0), "{db}");
        // A daemon a minute old claims nothing of days: every forecast within four times
        // its history, or none.
        let (_, body) = d.get(&format!("/api/v1/history?db={db}"));
        let h: Value = serde_json::from_str(&body).unwrap();
        let forecasts = h["databases"][0]["forecasts"].as_array().unwrap();
        assert!(!forecasts.is_empty(), "{h}");
        for f in forecasts {
            let basis = f["basis_seconds"].as_f64().unwrap();
            if let Some(eta) = f["eta_seconds"].as_f64() {
                assert!(eta <= 4.0 * basis, "{f}");
            }
            let text = f["text"].as_str().unwrap();
            assert!(
                !["day", "month", "year"].iter().any(|w| text.contains(w)),
                "{text}"
            );
        }
    }
    let (_, page) = d.get("/");
    assert!(page.contains("Restore drill"), "the page shows the drills");
    assert!(
        dir.path().join("state.json").exists(),
        "the state file is kept"
    );

    // Fault 1: Litestream frozen while PocketBase writes. The lag rule keeps its default `for`
    // (1m above 10 s): the page comes about 70 s after the freeze.
    app.cmd("rate 20");
    litestream.signal(libc::SIGSTOP);
    wait_for(
        Duration::from_secs(150),
        "SQLiteReplicationLag paged",
        || am.find("SQLiteReplicationLag", "data"),
    );
    litestream.signal(libc::SIGCONT);
    am.wait_resolved("SQLiteReplicationLag", "data", Duration::from_secs(60));
    assert!(told(&hooks, "SQLiteReplicationLag", "data", "firing"));
    wait_for(STEP, "the webhook told of the resolution", || {
        told(&hooks, "SQLiteReplicationLag", "data", "resolved").then_some(())
    });

    // Fault 2: the files a restore begins with removed from the file replica.
    let aside = dir.path().join("aside");
    std::fs::create_dir_all(&aside).unwrap();
    let moved: Vec<(PathBuf, PathBuf)> = first_files(&replica.join("data.db"))
        .into_iter()
        .enumerate()
        .map(|(i, f)| (f.clone(), aside.join(i.to_string())))
        .collect();
    assert!(!moved.is_empty());
    for (from, to) in &moved {
        std::fs::rename(from, to).unwrap();
    }
    wait_for(
        Duration::from_secs(60),
        "SQLiteRestoreDrillFailed paged",
        || am.find("SQLiteRestoreDrillFailed", "data"),
    );
    for (from, to) in &moved {
        std::fs::rename(to, from).unwrap();
    }
    am.wait_resolved("SQLiteRestoreDrillFailed", "data", Duration::from_secs(60));

    // Fault 3: a reader holding a snapshot while PocketBase writes.
    app.cmd("rate 200");
    let mut reader = PyDriver::start();
    let db = data.join("data.db");
    reader.open("r", &db, "");
    reader.cmd("exec r BEGIN");
    reader.cmd("exec r SELECT count(*) FROM events");
    let within = Duration::from_secs(100 + short());
    let paged = wait_until(within, || am.find("SQLiteSnapshotPinned", "data"));
    // What the daemon saw of the database, to tell a slow application from a missed pin.
    let seen = || {
        let status: Value = serde_json::from_str(&d.get("/api/v1/status").1).unwrap();
        let data = status["databases"].as_array().unwrap().iter();
        let data = data
            .filter(|s| s["name"] == "data")
            .cloned()
            .collect::<Vec<_>>();
        json!({"wal": data.first().map(|s| s["wal"].clone()),
               "writes": data.first().map(|s| s["write_transactions_total"].clone()),
               "alerts": d.alerts()})
    };
    assert!(
        paged.is_some(),
        "SQLiteSnapshotPinned not paged within {within:?}; the daemon saw {:#}",
        seen()
    );
    reader.cmd("end r");
    am.wait_resolved("SQLiteSnapshotPinned", "data", Duration::from_secs(60));
    app.cmd("rate 0");
    drop(reader);
}
