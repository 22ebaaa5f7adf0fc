//! Never dark when descriptors run out: with a hard limit of 512 open files and 300 WAL
//! databases (900 files), the databases past the budget are down with an error that names the
//! limit and how to raise it, logged once, while `/healthz`, `/metrics` and the status page keep
//! answering, many clients at once, and the databases that fit are watched as usual.

use crate::common;

use common::{wait_for, Daemon, STEP};
use rusqlite::Connection;

const LIMIT: u64 = 512;
const DATABASES: usize = 300;

#[test]
fn a_low_descriptor_limit_degrades_databases_not_the_server() {
    let dir = tempfile::tempdir().unwrap();
    // One live WAL database (its connection open, so -wal and -shm exist), copied: each copy
    // is a database with all three files.
    let src = dir.path().join("src.db");
    let conn = Connection::open(&src).unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    let mut yaml = String::from(
        "poll_interval: 200ms\nthresholds:\n  filesystem_free: {warning: 'off', critical: 'off'}\ndatabases:\n",
    );
    for i in 0..DATABASES {
        let db = dir.path().join(format!("db{i}.db"));
        for suffix in ["", "-wal", "-shm"] {
            std::fs::copy(
                format!("{}{suffix}", src.display()),
                format!("{}{suffix}", db.display()),
            )
            .unwrap();
        }
        yaml.push_str(&format!("  - {{path: {}, name: db{i}}}\n", db.display()));
    }
    drop(conn);
    let config = dir.path().join("sqlite-ops.yaml");
    std::fs::write(&config, yaml).unwrap();

    let prlimit = common::program("prlimit", "util-linux");
    let nofile = format!("--nofile={LIMIT}:{LIMIT}");
    let daemon = Daemon::start_wrapped(
        &[prlimit.to_str().unwrap(), &nofile, "--"],
        &[
            "--config",
            config.to_str().unwrap(),
            "--poll-interval",
            "200ms",
        ],
        &[],
    );
    daemon.wait_log("the startup line on descriptors", |l| {
        l.contains("open files") && l.contains(&format!("limit={LIMIT}"))
    });
    daemon.wait_polls(5);

    let (status, body) = daemon.get("/healthz");
    assert_eq!((status, body.trim()), (200, "ok"));
    let m = daemon.metrics();
    let up: Vec<f64> = (0..DATABASES)
        .map(|i| m.db("sqlite_up", &format!("db{i}")).unwrap())
        .collect();
    let watched = up.iter().filter(|&&u| u == 1.0).count();
    assert!(
        (100..DATABASES).contains(&watched),
        "as many as fit are watched: {watched} of {DATABASES}"
    );
    let s: serde_json::Value = serde_json::from_str(&daemon.get("/api/v1/status").1).unwrap();
    let refused = s["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["up"] == false)
        .unwrap()
        .clone();
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.contains(&LIMIT.to_string())
            && error.contains("LimitNOFILE")
            && error.contains("ulimit -n"),
        "{error}"
    );
    // A watched database is measured as usual.
    let first = (0..DATABASES).find(|&i| up[i] == 1.0).unwrap();
    assert_eq!(
        m.db("sqlite_pages", &format!("db{first}")).map(|p| p > 0.0),
        Some(true)
    );

    // Many clients at once, each answered.
    let addr = daemon.addr.clone();
    let clients: Vec<_> = (0..40)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let path = if i % 2 == 0 { "/metrics" } else { "/healthz" };
                common::get(&format!("http://{addr}{path}")).0
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), 200);
    }
    daemon.wait_polls(5);
    let log = daemon.log.lock().unwrap().clone();
    let refusals = log
        .iter()
        .filter(|l| l.contains("databases left unwatched"))
        .count();
    assert_eq!(refusals, 1, "logged once, not per poll: {log:#?}");
    wait_for(STEP, "health after many polls", || {
        (daemon.get("/healthz").0 == 200).then_some(())
    });
}
