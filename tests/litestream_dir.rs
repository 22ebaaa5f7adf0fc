//! Litestream's directory form (issue 19), with the real Litestream 0.5.17 and `watch: true`:
//! every tenant of the folder is watched with its replica read where Litestream writes it
//! (the replica's path with the tenant's relative path appended), a file replica and an S3
//! replica on moto, and a tenant created while both run is picked up by both without a
//! restart, its lag small and nothing firing. Restore drills of both tenants, by the daemon and
//! by `check --restore-drill`, succeed in both forms while the tenants are written (issue 28:
//! `litestream restore -config` does not resolve a database that only a `dir:` entry names).

use crate::common;

use common::services::litestream_bin;
use common::{wait_for, ConfigFile, Daemon, Litestream, S3Server, Writer, STEP};
use serde_json::json;
use std::path::Path;

/// (up, lag) of the replica `replica` of tenant `db`.
fn replica(d: &Daemon, db: &str, replica: &str) -> (Option<f64>, Option<f64>) {
    let m = d.metrics();
    let key = |metric: &str| format!("{metric}{{db=\"{db}\",replica=\"{replica}\"}}");
    (
        m.samples.get(&key("sqlite_litestream_up")).copied(),
        m.samples
            .get(&key("sqlite_litestream_replication_lag_seconds"))
            .copied(),
    )
}

/// A tenant database in WAL mode, written to every 50 ms until the writer is dropped.
fn tenant(path: &Path) -> Writer {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute_batch("PRAGMA journal_mode=WAL;")
        .unwrap();
    Writer::start(path)
}

/// Runs Litestream over a folder of tenants replicated by `replica_yaml`, with sqlite-ops
/// following litestream.yml alone (no `databases:`), and checks both tenants: the first one
/// there from the start, the second created while everything runs.
fn follows_a_directory(replica_yaml: &str, replica_name: &str, head: &str) {
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants");
    std::fs::create_dir_all(tenants.join("eu")).unwrap();
    let _acme = tenant(&tenants.join("acme.db"));
    let yml = dir.path().join("litestream.yml");
    std::fs::write(
        &yml,
        format!(
            "{head}dbs:\n  - dir: {}\n    pattern: \"*.db\"\n    recursive: true\n    watch: true\n    replica:\n{replica_yaml}",
            tenants.display()
        ),
    )
    .unwrap();
    let _litestream = Litestream::start("0.5.17", &yml);
    let config = ConfigFile::new()
        .set("poll_interval", json!("200ms"))
        .set("discover_interval", json!("1s"))
        .litestream(&yml, "500ms")
        .threshold(
            "replication_lag",
            json!({"warning": "5s", "critical": "off", "for": "0s"}),
        )
        .no_disk_alert()
        .set(
            "restore_drill",
            json!({"interval": "5s", "first_after": "0s", "scratch_dir": dir.path().join("scratch"),
                   "litestream": litestream_bin("0.5.17"), "timeout": "60s"}),
        )
        .write(&dir.path().join("sqlite-ops.yaml"));
    // Drills every 5 s: one at a time, an S3 drill takes up to 2.2 s on a loaded machine, so at
    // 2 s two tenants' drills could not each succeed within two intervals, and the stale alert
    // would be right to say so. Litestream 0.5.17's S3 client refuses to start with a custom CA
    // bundle in its environment, which drills inherit from the daemon (docs/restore-drills.md).
    let d = Daemon::start_without_env(&["--config", config.to_str().unwrap()], &["AWS_CA_BUNDLE"]);
    let replicated = |db: &str| {
        wait_for(
            STEP,
            &format!("{db}'s replica read, lag small"),
            || match replica(&d, db, replica_name) {
                (Some(up), Some(lag)) if up == 1.0 && lag < 5.0 => Some(lag),
                _ => None,
            },
        )
    };
    replicated("acme");

    // A tenant created while Litestream and sqlite-ops run, in a subfolder.
    let _beta = tenant(&tenants.join("eu").join("beta.db"));
    replicated("eu/beta");
    // Both stay replicated and nothing fires, looked at twice a second for longer than the
    // 5 s lag threshold (a replica that stopped would show it), then two polls after.
    let look = || {
        for db in ["acme", "eu/beta"] {
            let (up, lag) = replica(&d, db, replica_name);
            assert_eq!(up, Some(1.0), "{db}");
            assert!(lag.is_some_and(|l| l < 5.0), "{db}: lag {lag:?}");
        }
        let firing = d.raised();
        assert!(
            firing.is_empty(),
            "a healthy fleet raised {firing:?}: {:?}",
            d.log.lock().unwrap()
        );
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(7);
    while std::time::Instant::now() < until {
        look();
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    d.wait_polls(2);
    look();
    // Litestream's own folders and files are not tenants.
    let up: Vec<String> = d
        .metrics()
        .samples
        .keys()
        .filter(|k| k.starts_with("sqlite_up{"))
        .cloned()
        .collect();
    assert_eq!(up.len(), 2, "{up:?}");

    // Each tenant restores from the replica the directory form wrote, while it is written.
    let drill = |db: &str, metric: &str| {
        d.metrics()
            .samples
            .get(&format!(
                "{metric}{{db=\"{db}\",replica=\"{replica_name}\"}}"
            ))
            .copied()
    };
    for db in ["acme", "eu/beta"] {
        let runs = wait_for(STEP, &format!("two drills of {db}"), || {
            drill(db, "sqlite_restore_drill_runs_total").filter(|n| *n >= 2.0)
        });
        assert_eq!(drill(db, "sqlite_restore_drill_success"), Some(1.0), "{db}");
        assert_eq!(drill(db, "sqlite_restore_drill_skipped"), Some(0.0), "{db}");
        assert_eq!(
            drill(db, "sqlite_restore_drill_failures_total"),
            Some(0.0),
            "{db}: {runs} drills"
        );
    }
    // And check, drilling each tenant now, says OK for each.
    let (code, out, err) = common::run_cli_without_env(
        &[
            "check",
            "--sample",
            "2s",
            "--format",
            "json",
            "--restore-drill",
            "--config",
            config.to_str().unwrap(),
        ],
        &["AWS_CA_BUNDLE"],
    );
    let report: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    for db in report["databases"].as_array().unwrap() {
        let finding = db["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == "restore_drill")
            .unwrap_or_else(|| panic!("no restore_drill finding: {db:#}"));
        assert_eq!(
            finding["status"], "ok",
            "{} ({code}): {finding:#}",
            db["db"]
        );
    }
    assert_eq!(report["databases"].as_array().unwrap().len(), 2);
}

#[test]
fn v05_directory_with_a_file_replica() {
    let backup = tempfile::tempdir().unwrap();
    follows_a_directory(
        &format!(
            "      type: file\n      path: {}\n      sync-interval: 1s\n",
            backup.path().display()
        ),
        "file",
        "",
    );
    // Litestream wrote each tenant under its relative path: where sqlite-ops read it.
    for rel in ["acme.db", "eu/beta.db"] {
        assert!(backup.path().join(rel).join("ltx").is_dir(), "{rel}");
    }
}

#[test]
fn v05_directory_with_an_s3_replica_on_moto() {
    let s3 = S3Server::start("backups");
    follows_a_directory(
        &format!(
            "      url: s3://backups/tenants\n      endpoint: {}\n      region: us-east-1\n      force-path-style: true\n      sync-interval: 1s\n",
            s3.endpoint
        ),
        "s3",
        "access-key-id: test\nsecret-access-key: test\n",
    );
}
