//! The rules module's central claim (README, "One definition of every threshold"): the daemon,
//! `sqlite-ops check` and a real Prometheus evaluating `sqlite-ops rules` against the daemon's
//! metrics agree, on the same databases and the same config, on what fires and what does not
//! (issue 18). The expected set is written here, not derived from any of the three.

use crate::common;

use common::{run_cli, wait_for, wal_db, Daemon, Prometheus, PyDriver, STEP};
use std::collections::BTreeSet;

type Firing = BTreeSet<(String, String)>;

fn pairs(items: &[(&str, &str)]) -> Firing {
    items
        .iter()
        .map(|(a, d)| (a.to_string(), d.to_string()))
        .collect()
}

#[test]
fn daemon_check_and_prometheus_agree_on_what_fires() {
    let dir = tempfile::tempdir().unwrap();
    // large: 300 KB against a 200 KB threshold; small: under it.
    let large = dir.path().join("large.db");
    let c = wal_db(&large);
    c.execute("INSERT INTO t(v) VALUES (zeroblob(300000))", [])
        .unwrap();
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(c);
    let small = dir.path().join("small.db");
    drop(wal_db(&small));
    // A glob entry with a lower size threshold (100 KB): mid (150 KB) is over it, tiny is not;
    // medium (150 KB), listed by path, keeps the global 200 KB although the glob's labels
    // would take its name too.
    let sized = |path: &std::path::Path, bytes: usize| {
        let c = wal_db(path);
        c.execute(&format!("INSERT INTO t(v) VALUES (zeroblob({bytes}))"), [])
            .unwrap();
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    };
    let tenants = dir.path().join("tenants");
    std::fs::create_dir(&tenants).unwrap();
    sized(&tenants.join("mid.db"), 150_000);
    sized(&tenants.join("tiny.db"), 0);
    let medium = dir.path().join("medium.db");
    sized(&medium, 150_000);
    // walbig: a WAL over 64 KB that no checkpoint copies back, held open by another process.
    let walbig = dir.path().join("walbig.db");
    let mut py = PyDriver::start();
    py.open("w", &walbig, "journal_mode=WAL wal_autocheckpoint=0");
    py.cmd("commit w 100");
    // team: declared facts over both migration thresholds; gone: no file at all.
    let team = dir.path().join("team.db");
    drop(wal_db(&team));
    let gone = dir.path().join("gone.db");

    let config = dir.path().join("sqlite-ops.yaml");
    std::fs::write(
        &config,
        format!(
            "poll_interval: 200ms\n\
             thresholds:\n\
             \x20 database_size: {{warning: 200KB, critical: 'off', for: 0s}}\n\
             \x20 wal_size: {{warning: 64KB, for: 0s}}\n\
             \x20 backend_engineers: {{for: 0s}}\n\
             \x20 regions: {{for: 0s}}\n\
             \x20 database_down: {{for: 0s}}\n\
             \x20 filesystem_free: {{warning: 'off', critical: 'off'}}\n\
             databases:\n\
             \x20 - {{path: {}, name: large}}\n\
             \x20 - {{path: {}, name: small}}\n\
             \x20 - {{path: {}, name: walbig}}\n\
             \x20 - {{path: {}, name: team, team: {{backend_engineers: 5, regions: 2}}}}\n\
             \x20 - {{path: {}, name: gone}}\n\
             \x20 - {{path: {}, name: medium}}\n\
             \x20 - {{glob: '{}/*.db', thresholds: {{database_size: {{warning: 100KB}}}}}}\n",
            large.display(),
            small.display(),
            walbig.display(),
            team.display(),
            gone.display(),
            medium.display(),
            tenants.display()
        ),
    )
    .unwrap();
    let expected = pairs(&[
        ("SQLiteDatabaseLarge", "large"),
        ("SQLiteWalLarge", "walbig"),
        ("SQLiteTeamOutgrown", "team"),
        ("SQLiteMultiRegion", "team"),
        ("SQLiteDatabaseDown", "gone"),
        ("SQLiteDatabaseLarge", "mid"),
    ]);

    // The daemon.
    let daemon = Daemon::start(&["--config", config.to_str().unwrap()]);
    let from_daemon = || -> Firing {
        daemon
            .alerts()
            .iter()
            .filter(|a| a["state"] == "firing")
            .map(|a| {
                (
                    a["alert"].as_str().unwrap().to_string(),
                    a["db"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    wait_for(STEP, "the daemon's alerts", || {
        (from_daemon() == expected).then_some(())
    });

    // Prometheus, evaluating the rules generated for this config against the daemon's metrics.
    let prometheus =
        Prometheus::evaluating_rules(&dir.path().join("prometheus"), &config, &daemon.addr, "");
    let from_prometheus = || -> Firing {
        prometheus
            .series("ALERTS{alertstate=\"firing\"}")
            .iter()
            .map(|m| {
                (
                    m["alertname"].as_str().unwrap().to_string(),
                    m["db"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    wait_for(STEP, "Prometheus's alerts", || {
        (from_prometheus() == expected).then_some(())
    });

    // `check`, one shot over the same config.
    let (_, out, err) = run_cli(&[
        "check",
        "--config",
        config.to_str().unwrap(),
        "--sample",
        "1s",
        "--format",
        "json",
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let from_check: Firing = report["databases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| {
            let db = d["db"].as_str().unwrap().to_string();
            d["findings"]
                .as_array()
                .unwrap()
                .iter()
                // An info finding is a breach of an info level when it measured something (an
                // undeclared team size is info too, with nothing measured).
                .filter(|f| {
                    f["status"] == "warning"
                        || f["status"] == "critical"
                        || (f["status"] == "info" && !f["measured"].is_null())
                })
                .filter_map(|f| f["alert"].as_str())
                .map(move |a| (a.to_string(), db.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(from_check, expected, "check agrees");

    // And all three still agree once more polls and evaluations have passed.
    daemon.wait_polls(5);
    assert_eq!(from_daemon(), expected, "the daemon, later");
    assert_eq!(from_prometheus(), expected, "Prometheus, later");
}

/// During a fault too (issue 29): Litestream frozen while an application writes. The daemon
/// and Prometheus fire SQLiteReplicationLag; `check`, even on a sample far shorter than the
/// threshold, never says OK (the replica lacks commits and holds nothing newer than the
/// threshold: UNKNOWN, or the lag itself); `check --daemon` says what the daemon says, and says
/// so. Thawed, all three agree that nothing fires.
#[test]
fn daemon_check_and_prometheus_agree_while_litestream_is_frozen() {
    use common::services::file_replica_yml;
    use common::{GuideApp, Litestream};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let mut app = GuideApp::start(&db);
    app.cmd("rate 20");
    let yml = file_replica_yml(dir.path(), &db);
    let litestream = Litestream::start("0.5.17", &yml);
    let config = dir.path().join("sqlite-ops.yaml");
    std::fs::write(
        &config,
        format!(
            "poll_interval: 200ms\n\
             litestream: {{config: {}, interval: 500ms}}\n\
             databases: [{{path: {}, name: app}}]\n\
             thresholds:\n\
             \x20 replication_lag: {{warning: 4s, critical: 'off', for: 0s}}\n\
             \x20 filesystem_free: {{warning: 'off', critical: 'off'}}\n",
            yml.display(),
            db.display()
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&["--config", config.to_str().unwrap()]);
    let prometheus =
        Prometheus::evaluating_rules(&dir.path().join("prometheus"), &config, &daemon.addr, "");
    let daemon_fires = || {
        daemon
            .alerts()
            .iter()
            .any(|a| a["alert"] == "SQLiteReplicationLag" && a["state"] == "firing")
    };
    let prometheus_fires = || {
        !prometheus
            .series("ALERTS{alertname=\"SQLiteReplicationLag\",alertstate=\"firing\"}")
            .is_empty()
    };
    let lag_finding = |extra: &[&str]| {
        let mut args = vec![
            "check",
            "--config",
            config.to_str().unwrap(),
            "--sample",
            "1s",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let (_, out, err) = run_cli(&args);
        let report: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        report["databases"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == "replication_lag")
            .cloned()
            .unwrap()
    };
    let url = format!("http://{}", daemon.addr);
    wait_for(STEP, "the replica keeping up, nothing firing", || {
        let lag = daemon
            .metrics()
            .samples
            .get("sqlite_litestream_replication_lag_seconds{db=\"app\",replica=\"file\"}")
            .copied();
        (lag.is_some_and(|l| l < 2.0) && !daemon_fires()).then_some(())
    });

    litestream.signal(libc::SIGSTOP);
    wait_for(STEP, "the daemon fires", || daemon_fires().then_some(()));
    wait_for(STEP, "Prometheus fires", || {
        prometheus_fires().then_some(())
    });
    // A one-second sample cannot see a wait of four: it says so, never OK.
    let alone = lag_finding(&[]);
    assert!(
        alone["status"] == "unknown" || alone["status"] == "warning",
        "check alone: {alone:#}"
    );
    assert_eq!(alone["source"], "sample");
    let told = lag_finding(&["--daemon", &url]);
    assert_eq!(told["status"], "warning", "check --daemon: {told:#}");
    assert_eq!(told["source"], "daemon");
    assert!(
        told["summary"]
            .as_str()
            .unwrap()
            .starts_with("firing in the daemon"),
        "{told:#}"
    );

    litestream.signal(libc::SIGCONT);
    wait_for(STEP, "the daemon resolves", || {
        (!daemon_fires()).then_some(())
    });
    wait_for(STEP, "Prometheus resolves", || {
        (!prometheus_fires()).then_some(())
    });
    wait_for(STEP, "check agrees that nothing fires", || {
        (lag_finding(&["--daemon", &url])["status"] == "ok").then_some(())
    });
    app.cmd("rate 0");
}
