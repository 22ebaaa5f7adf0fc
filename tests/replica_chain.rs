//! The chain check against the real Litestream (0.5.17 and 0.3.13, file replicas and S3 on
//! moto): a file taken from the middle of a replica fires SQLiteReplicaChainBroken naming the
//! file after the gap exactly when Litestream's own restore refuses the replica (issue 31).

use crate::common;
use crate::litestream::wal_db;

use common::services::{file_replica_yml, ltx_files, s3_replica_yml};
use common::{free_port, run_cli, wait_for, ConfigFile, Daemon, Litestream, S3Server, STEP};
use rusqlite::Connection;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `yml` with level 1 compacted once a day (at midnight UTC, and at start): a test that removes
/// a level-0 file from the middle of a chain needs level 1 not to cover it meanwhile, which at
/// Litestream's default 30 s it does at any moment (found by a run of the suite).
fn without_compaction(yml: PathBuf) -> PathBuf {
    let text = std::fs::read_to_string(&yml).unwrap();
    std::fs::write(&yml, format!("levels:\n  - interval: 24h\n{text}")).unwrap();
    yml
}

/// `litestream restore` of the replica into a new file: Litestream's own verdict (0.5.17's).
fn restores(yml: &Path, db: &Path, dir: &Path) -> (bool, String) {
    restores_with("0.5.17", yml, db, dir)
}

/// `litestream restore` by Litestream `version`.
fn restores_with(version: &str, yml: &Path, db: &Path, dir: &Path) -> (bool, String) {
    let out_path = dir.join(format!(
        "restored-{}.db",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let out = std::process::Command::new(common::services::litestream_bin(version))
        // Litestream's S3 client refuses to start with a custom CA bundle in its environment.
        .env_remove("AWS_CA_BUNDLE")
        .arg("restore")
        .arg("-config")
        .arg(yml)
        .arg("-o")
        .arg(&out_path)
        .arg(db)
        .output()
        .unwrap();
    // 0.3 logs to stdout, 0.5 to stderr.
    let said = [&out.stdout[..], &out.stderr[..]].concat();
    (
        out.status.success(),
        String::from_utf8_lossy(&said).into_owned(),
    )
}

/// A level-0 LTX file removed from the middle of a v0.5 replica's chain: SQLiteReplicaChainBroken
/// fires in a real Alertmanager naming the file, exactly when Litestream's own restore refuses
/// the replica; the file put back resolves it (issue 31). Litestream is stopped first, so that
/// no compaction covers the gap meanwhile.
#[test]
fn a_file_missing_from_the_middle_of_the_chain_is_found_before_a_restore() {
    let dir = tempfile::tempdir().unwrap();
    let db = wal_db(dir.path());
    let yml = without_compaction(file_replica_yml(dir.path(), &db));
    let folder = Folder(dir.path().join("replica"));
    let broken = |d: &Daemon, next: &str| {
        drill_was_predicted(dir.path(), &yml, "0.5.17", next);
        // The status page says so on the replica's line.
        let page = d.get("/").1;
        let line = page.split("<p class=\"replica ").nth(1).unwrap_or("");
        assert!(
            line.starts_with("critical\">") && line.contains("chain broken") && line.contains(next),
            "{page}"
        );
    };
    let (_d, am, files) = chain_broken_and_mended(dir.path(), &db, &yml, &folder, &[], broken);

    // A header damaged in place (its TXIDs no longer those of its name): the same alert, naming
    // the file, read from its first 100 bytes; Litestream's restore fails on it too.
    let (_, _, last) = &files[2];
    let next = last.rsplit('/').next().unwrap();
    let intact_bytes = std::fs::read(last).unwrap();
    let mut damaged = intact_bytes.clone();
    damaged[16..24].copy_from_slice(&1u64.to_be_bytes());
    std::fs::write(last, &damaged).unwrap();
    let alert = wait_for(
        STEP,
        "SQLiteReplicaChainBroken for a damaged header",
        || am.find("SQLiteReplicaChainBroken", "app"),
    );
    let said = alert["annotations"]["description"].as_str().unwrap();
    assert!(
        said.contains(next) && said.contains("its name"),
        "names the damaged file ({next}): {said}"
    );
    assert!(
        !restores(&yml, &db, dir.path()).0,
        "Litestream's restore fails on it"
    );
    std::fs::write(last, &intact_bytes).unwrap();
    am.wait_resolved("SQLiteReplicaChainBroken", "app", STEP);
    assert!(restores(&yml, &db, dir.path()).0, "and restores again");
}

/// A drill failed on a gap in the chain is run again as soon as the chain is whole, not at its
/// next interval (a day by default: a walkthrough saw SQLiteRestoreDrillFailed page on for the
/// whole interval after the replica was mended). Drills every hour here: only the mended chain
/// can explain a second drill.
#[test]
fn a_drill_failed_on_a_broken_chain_runs_again_once_it_is_mended() {
    let dir = tempfile::tempdir().unwrap();
    let db = wal_db(dir.path());
    let yml = without_compaction(file_replica_yml(dir.path(), &db));
    let folder = Folder(dir.path().join("replica"));
    let files = three_past_snapshot(dir.path(), &db, &yml, &folder);
    let (middle, kept) = (&files[1].2, dir.path().join("kept.ltx"));
    folder.take(middle, &kept);
    let drills = json!({"interval": "1h", "first_after": "0s",
                        "scratch_dir": dir.path().join("scratch"),
                        "litestream": common::services::litestream_bin("0.5.17")});
    let (d, am) = judging_chains(dir.path(), &yml, &[], Some(drills));
    let drill = || {
        let (_, body) = d.get("/api/v1/status");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["databases"][0]["restore_drill"].clone()
    };
    let failed = wait_for(STEP, "the first drill failed", || {
        let r = drill();
        (r["runs_total"] == 1).then_some(r)
    });
    assert_eq!(failed["last"]["success"], false, "{failed:#}");
    wait_for(STEP, "SQLiteRestoreDrillFailed in Alertmanager", || {
        am.find("SQLiteRestoreDrillFailed", "app")
    });
    folder.put(middle, &kept);
    am.wait_resolved("SQLiteRestoreDrillFailed", "app", STEP);
    let r = drill();
    assert_eq!(
        (&r["runs_total"], &r["last"]["success"]),
        (&json!(2), &json!(true)),
        "{r:#}"
    );
    d.wait_log("the reason logged", |l| l.contains("chain is whole again"));
}

/// A replica the chain tests take a level-0 file from and put it back: its LTX files at a level
/// as (min TXID, max TXID, key), by min.
trait Store {
    fn files(&self, level: u32) -> Vec<(u64, u64, String)>;
    fn take(&self, key: &str, to: &Path);
    fn put(&self, key: &str, from: &Path);
    /// Every key (or path) it holds.
    fn keys(&self) -> Vec<String>;

    /// Its v0.3 WAL segments (`…/wal/<index>_<offset>.wal.lz4`), as (index, offset, key), sorted.
    fn segments(&self) -> Vec<(u32, u32, String)> {
        let mut out: Vec<(u32, u32, String)> = self
            .keys()
            .into_iter()
            .filter_map(|k| {
                let name = k.rsplit('/').next()?.strip_suffix(".wal.lz4")?;
                let (index, offset) = name.split_once('_')?;
                let index = u32::from_str_radix(index, 16).ok()?;
                Some((index, u32::from_str_radix(offset, 16).ok()?, k))
            })
            .collect();
        out.sort();
        out
    }
}

/// A file replica: keys are paths.
struct Folder(PathBuf);

impl Store for Folder {
    fn files(&self, level: u32) -> Vec<(u64, u64, String)> {
        let files = ltx_files(&self.0, level).into_iter();
        files
            .map(|(a, b, p)| (a, b, p.display().to_string()))
            .collect()
    }
    fn take(&self, key: &str, to: &Path) {
        std::fs::rename(key, to).unwrap();
    }
    fn put(&self, key: &str, from: &Path) {
        std::fs::rename(from, key).unwrap();
    }
    fn keys(&self) -> Vec<String> {
        walkdir::WalkDir::new(&self.0)
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().display().to_string())
            .collect()
    }
}

/// Litestream 0.5.17 replicating `db` (by `yml`, to `store`) until three level-0 files lie past
/// level 1 and the snapshot, then stopped: the whole replica restores; a daemon (started without
/// the variables `unset`) finds the chain whole; the middle file taken away, SQLiteReplicaChainBroken
/// fires in a real Alertmanager naming the file after the gap, exactly when Litestream's own
/// restore refuses the replica, and `broken` runs; put back, it resolves and the replica restores.
fn chain_broken_and_mended(
    dir: &Path,
    db: &Path,
    yml: &Path,
    store: &impl Store,
    unset: &[&str],
    broken: impl FnOnce(&Daemon, &str),
) -> (Daemon, common::Alertmanager, Vec<(u64, u64, String)>) {
    let files = three_past_snapshot(dir, db, yml, store);
    let (d, am) = judging_chains(dir, yml, unset, None);
    let intact = || chain_intact(&d);
    let judged = wait_for(Duration::from_secs(10), "the chain judged", &intact);
    assert_eq!(judged, 1.0, "{}", d.get("/api/v1/status").1);

    let (middle, kept) = (&files[1].2, dir.join("kept.ltx"));
    store.take(middle, &kept);
    let alert = wait_for(STEP, "SQLiteReplicaChainBroken in Alertmanager", || {
        am.find("SQLiteReplicaChainBroken", "app")
    });
    let next = files[2].2.rsplit('/').next().unwrap().to_string();
    let said = alert["annotations"]["description"].as_str().unwrap();
    assert!(
        said.contains(&next),
        "names the file after the gap ({next}): {said}"
    );
    assert_eq!(intact(), Some(0.0));
    let (ok, err) = restores(yml, db, dir);
    assert!(
        !ok && err.contains("non-contiguous"),
        "Litestream's own restore refuses it too: {err}"
    );
    broken(&d, &next);

    store.put(middle, &kept);
    am.wait_resolved("SQLiteReplicaChainBroken", "app", STEP);
    assert_eq!(intact(), Some(1.0));
    assert!(restores(yml, db, dir).0, "and restores again");
    (d, am, files)
}

/// Litestream 0.5.17 replicating `db` (by `yml`, to `store`) until three level-0 files lie
/// past level 1 and the snapshot, then stopped; the whole replica restores. Returns those files.
fn three_past_snapshot(
    dir: &Path,
    db: &Path,
    yml: &Path,
    store: &impl Store,
) -> Vec<(u64, u64, String)> {
    let litestream = Litestream::start("0.5.17", yml);
    let conn = Connection::open(db).unwrap();
    let past_snapshot = || {
        let floor = (1..=9)
            .flat_map(|l| store.files(l))
            .map(|(_, max, _)| max)
            .max();
        let floor = floor.unwrap_or(0);
        let files = store.files(0).into_iter();
        files
            .filter(|(min, _, _)| *min > floor + 1)
            .collect::<Vec<_>>()
    };
    // Commits over several syncs (one a second): several level-0 files past the snapshot.
    wait_for(
        Duration::from_secs(60),
        "three level-0 files past the snapshot",
        || {
            conn.execute("INSERT INTO events(at) VALUES (1)", [])
                .unwrap();
            std::thread::sleep(Duration::from_millis(300));
            (past_snapshot().len() >= 3).then_some(())
        },
    );
    drop(litestream);
    assert!(restores(yml, db, dir).0, "the whole replica restores");
    past_snapshot()
}

/// A daemon (started without the variables `unset`) judging the chains of the replicas `yml`
/// names, alerting a real Alertmanager at once, with the restore drills of `drill` if any.
fn judging_chains(
    dir: &Path,
    yml: &Path,
    unset: &[&str],
    drill: Option<serde_json::Value>,
) -> (Daemon, common::Alertmanager) {
    let am = common::Alertmanager::start(&dir.join("am"), free_port());
    let mut cfg = ConfigFile::new();
    if let Some(drill) = drill {
        cfg = cfg
            .set("restore_drill", drill)
            .threshold("restore_drill_failed", json!({"for": "0s"}));
    }
    let cfg = cfg
        .set("poll_interval", json!("200ms"))
        .litestream(yml, "500ms")
        .set(
            "alertmanager",
            json!({"urls": [am.url], "resend_interval": "1s"}),
        )
        .threshold("replica_chain", json!({"for": "0s"}))
        .threshold(
            "replication_lag",
            json!({"warning": "off", "critical": "off"}),
        )
        .no_disk_alert()
        .write(&dir.join("sqlite-ops.yaml"));
    let d = Daemon::start_without_env(&["--config", cfg.to_str().unwrap()], unset);
    (d, am)
}

/// `sqlite_litestream_chain_intact` of `app`'s replica, once judged.
fn chain_intact(d: &Daemon) -> Option<f64> {
    let m = d.metrics();
    let key = "sqlite_litestream_chain_intact{db=\"app\"";
    let mut chain = m.samples.iter();
    chain.find(|(k, _)| k.starts_with(key)).map(|(_, v)| *v)
}

/// `check --restore-drill` (by Litestream `version`) restores the replica `yml` names, fails,
/// and says the chain check had predicted it, naming the file after the gap (`next`).
fn drill_was_predicted(dir: &Path, yml: &Path, version: &str, next: &str) {
    let check_cfg = ConfigFile::new()
        .litestream(yml, "500ms")
        .set(
            "restore_drill",
            json!({"interval": "1h", "scratch_dir": dir.join("scratch"),
                   "litestream": common::services::litestream_bin(version)}),
        )
        .write(&dir.join("check.yaml"));
    let args = ["--config", check_cfg.to_str().unwrap(), "--restore-drill"];
    let (code, drill) = check_finding(&args, "restore_drill");
    let summary = drill["summary"].as_str().unwrap();
    assert_eq!(
        (code, drill["status"].as_str()),
        (2, Some("critical")),
        "{drill:#}"
    );
    assert!(
        summary.contains("predicted this without a restore") && summary.contains(next),
        "{summary}"
    );
}

/// The finding `id` of `check` run with `args` (a sample of 1 s, JSON), with its exit code.
fn check_finding(args: &[&str], id: &str) -> (i32, serde_json::Value) {
    let mut all = vec!["check", "--sample", "1s", "--format", "json"];
    all.extend_from_slice(args);
    let (code, out, err) = run_cli(&all);
    let report: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let findings = report["databases"][0]["findings"].as_array().unwrap();
    let finding = findings.iter().find(|f| f["id"] == id).cloned();
    (
        code,
        finding.unwrap_or_else(|| panic!("no {id}: {report:#}")),
    )
}

/// A bucket on moto's S3 server, through boto3 (which moto installs) with the test credentials
/// Litestream writes with: moto refuses unsigned reads of objects they own.
struct Bucket {
    endpoint: String,
    bucket: String,
}

impl Bucket {
    fn new(endpoint: &str, bucket: &str) -> Self {
        Bucket {
            endpoint: endpoint.to_string(),
            bucket: bucket.to_string(),
        }
    }

    /// Runs `op` on a boto3 client `s3` (bucket `b`, arguments `args`) and returns its output.
    fn boto(&self, op: &str, args: &[&str]) -> Vec<u8> {
        let script = format!(
            "import sys, boto3\n\
             s3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='test', \
             aws_secret_access_key='test', region_name='us-east-1')\n\
             b, args = '{}', sys.argv[1:]\n{op}\n",
            self.endpoint, self.bucket
        );
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(args)
            .env_remove("AWS_CA_BUNDLE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The keys under `prefix`.
    fn keys_under(&self, prefix: &str) -> Vec<String> {
        let op = "for page in s3.get_paginator('list_objects_v2').paginate(Bucket=b, Prefix=args[0]):\n    [print(o['Key']) for o in page.get('Contents', [])]";
        let out = self.boto(op, &[prefix]);
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }
}

impl Store for Bucket {
    /// The LTX objects at `level` (hex, four digits, under the test's prefix `app/db`).
    fn files(&self, level: u32) -> Vec<(u64, u64, String)> {
        let keys = self.keys_under(&format!("app/db/{level:04x}/"));
        let mut out: Vec<(u64, u64, String)> = keys
            .into_iter()
            .filter_map(|k| {
                let name = k.rsplit('/').next()?.strip_suffix(".ltx")?;
                let (a, b) = name.split_once('-')?;
                let (a, b) = (
                    u64::from_str_radix(a, 16).ok()?,
                    u64::from_str_radix(b, 16).ok()?,
                );
                Some((a, b, k))
            })
            .collect();
        out.sort();
        out
    }

    /// Moves the object at `key` to the file `to`.
    fn take(&self, key: &str, to: &Path) {
        let op = "s3.download_file(b, args[0], args[1]); s3.delete_object(Bucket=b, Key=args[0])";
        self.boto(op, &[key, to.to_str().unwrap()]);
    }

    /// Puts the file `from` back at `key`.
    fn put(&self, key: &str, from: &Path) {
        self.boto(
            "s3.upload_file(args[1], b, args[0])",
            &[key, from.to_str().unwrap()],
        );
    }

    fn keys(&self) -> Vec<String> {
        self.keys_under("")
    }
}

/// The chain check on an S3 replica (moto), as on a folder: a level-0 object removed from the
/// middle of the chain fires SQLiteReplicaChainBroken in a real Alertmanager naming the object
/// after the gap, exactly when Litestream's own restore refuses the replica; put back, it
/// resolves and the replica restores (issue 31).
#[test]
fn an_object_missing_from_the_middle_of_an_s3_chain_is_found_before_a_restore() {
    let dir = tempfile::tempdir().unwrap();
    let db = wal_db(dir.path());
    let s3 = S3Server::start("backups");
    let yml = without_compaction(s3_replica_yml(dir.path(), &db, &s3.endpoint));
    let bucket = Bucket::new(&s3.endpoint, "backups");
    let unset = ["AWS_CA_BUNDLE"];
    chain_broken_and_mended(dir.path(), &db, &yml, &bucket, &unset, |_, _| {});
}

/// `litestream.yml` for Litestream 0.3 replicating `db` to `replica` (its YAML, indented as a
/// list item's fields), checkpointing every second so that each second of writes starts a new
/// WAL index.
fn v03_yml(dir: &Path, db: &Path, replica: &str) -> PathBuf {
    let yml = dir.join("litestream.yml");
    let text = format!(
        "access-key-id: test\nsecret-access-key: test\ndbs:\n  - path: {}\n    checkpoint-interval: 1s\n    replicas:\n      - {replica}\n        sync-interval: 1s\n",
        db.display()
    );
    std::fs::write(&yml, text).unwrap();
    yml
}

/// Litestream 0.3.13 replicating `db` (by `yml`, to `store`) until its generation holds three
/// WAL indices, then stopped: the replica restores; a daemon (started without the variables
/// `unset`) finds the chain whole; every segment of the middle index taken away,
/// SQLiteReplicaChainBroken fires in a real Alertmanager naming the segment after the gap,
/// exactly when 0.3.13's own restore refuses the replica ("missing WAL index"), and `broken`
/// runs; put back, it resolves and the replica restores.
fn wal_index_lost_and_mended(
    dir: &Path,
    (db, yml): (&Path, &Path),
    store: &impl Store,
    unset: &[&str],
    broken: impl FnOnce(&Daemon, &str),
) {
    let litestream = Litestream::start("0.3.13", yml);
    let conn = Connection::open(db).unwrap();
    let indices = || {
        let mut i: Vec<u32> = store.segments().iter().map(|s| s.0).collect();
        i.dedup();
        i
    };
    wait_for(Duration::from_secs(60), "three WAL indices", || {
        conn.execute("INSERT INTO events(at) VALUES (1)", [])
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        (indices().len() >= 3).then_some(())
    });
    drop(litestream);
    let restores = || restores_with("0.3.13", yml, db, dir);
    assert!(restores().0, "the whole replica restores");

    let (d, am) = judging_chains(dir, yml, unset, None);
    let intact = || chain_intact(&d);
    let judged = wait_for(Duration::from_secs(10), "the chain judged", &intact);
    assert_eq!(judged, 1.0, "{}", d.get("/api/v1/status").1);

    // The middle index: past the snapshot (taken at the generation's first index), before
    // the newest.
    let all = indices();
    let middle = all[all.len() - 2];
    let segments = store.segments();
    let taken: Vec<&String> = segments
        .iter()
        .filter(|s| s.0 == middle)
        .map(|s| &s.2)
        .collect();
    let kept = dir.join("kept");
    std::fs::create_dir_all(&kept).unwrap();
    for (i, key) in taken.iter().enumerate() {
        store.take(key, &kept.join(i.to_string()));
    }
    // Objects go one at a time: the alert may first say the index lost its first segment,
    // and then, updated, that it has none.
    let after = segments.iter().find(|s| s.0 > middle).unwrap();
    let next = after.2.rsplit('/').next().unwrap().to_string();
    let alert = wait_for(STEP, "SQLiteReplicaChainBroken in Alertmanager", || {
        let a = am.find("SQLiteReplicaChainBroken", "app")?;
        let said = a["annotations"]["description"].as_str()?;
        said.contains("has no segment").then_some(a)
    });
    let said = alert["annotations"]["description"].as_str().unwrap();
    assert!(
        said.contains(&next) && said.contains(&format!("index {middle:08x}")),
        "names the index and the segment after the gap ({next}): {said}"
    );
    assert_eq!(intact(), Some(0.0));
    let (ok, err) = restores();
    assert!(
        !ok && err.contains("missing WAL index"),
        "Litestream 0.3.13's own restore refuses it too: {err}"
    );
    broken(&d, &next);

    for (i, key) in taken.iter().enumerate() {
        store.put(key, &kept.join(i.to_string()));
    }
    am.wait_resolved("SQLiteReplicaChainBroken", "app", STEP);
    assert_eq!(intact(), Some(1.0));
    assert!(restores().0, "and restores again");
}

/// The chain check of a Litestream 0.3.13 file replica: a WAL index lost from the middle of its
/// generation is found, named and mended as on 0.5, and `check --restore-drill` (by 0.3.13)
/// says the chain check had predicted the failed restore.
#[test]
fn a_wal_index_missing_from_a_v03_file_replica_is_found_before_a_restore() {
    let dir = tempfile::tempdir().unwrap();
    let db = wal_db(dir.path());
    let replica = dir.path().join("replica");
    let yml = v03_yml(
        dir.path(),
        &db,
        &format!("type: file\n        path: {}", replica.display()),
    );
    let broken = |_: &Daemon, next: &str| drill_was_predicted(dir.path(), &yml, "0.3.13", next);
    wal_index_lost_and_mended(dir.path(), (&db, &yml), &Folder(replica), &[], broken);
}

/// The same on an S3 replica (moto) written by Litestream 0.3.13.
#[test]
fn a_wal_index_missing_from_a_v03_s3_replica_is_found_before_a_restore() {
    let dir = tempfile::tempdir().unwrap();
    let db = wal_db(dir.path());
    let s3 = S3Server::start("backups");
    let replica = format!(
        "url: s3://backups/app\n        endpoint: {}\n        region: us-east-1\n        force-path-style: true",
        s3.endpoint
    );
    let yml = v03_yml(dir.path(), &db, &replica);
    let bucket = Bucket::new(&s3.endpoint, "backups");
    let unset = ["AWS_CA_BUNDLE"];
    wal_index_lost_and_mended(dir.path(), (&db, &yml), &bucket, &unset, |_, _| {});
}
