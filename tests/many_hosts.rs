//! Many hosts through engines that exist (docs/many-hosts.md): three `sqlite-ops run`, each with
//! its own tenant folder, scraped by a real Prometheus in agent mode that writes into a second
//! Prometheus with its remote-write receiver on, which evaluates `sqlite-ops rules`. Every
//! recording rule and every fleet dashboard query is asked of that store; a daemon stopped
//! fires SQLiteOpsHostSilent for its host alone. The page's configs pass promtool.

use crate::common;

use common::{program, wait_for, ConfigFile, Daemon, Prometheus, STEP};
use rusqlite::Connection;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Three tenants in `dir`, WAL databases with a row each; `big` holds one of about 850 kB.
fn tenants(dir: &Path, big: bool) -> u64 {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..3 {
        let c = Connection::open(dir.join(format!("t{i}.db"))).unwrap();
        c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(v BLOB);")
            .unwrap();
        let size = if big && i == 0 { 850_000 } else { 10 };
        c.execute("INSERT INTO t(v) VALUES (zeroblob(?1))", [size])
            .unwrap();
    }
    // Closed: each checkpointed into its file, whose sizes the fleet adds up.
    (0..3)
        .map(|i| {
            std::fs::metadata(dir.join(format!("t{i}.db")))
                .unwrap()
                .len()
        })
        .sum()
}

/// The instances of a query's series.
fn instances(series: &[(serde_json::Value, f64)]) -> BTreeSet<String> {
    series
        .iter()
        .map(|(l, _)| l["instance"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn three_hosts_through_an_agent_into_a_remote_write_store_add_up_and_a_silent_one_pages() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemons = Vec::new();
    let mut bytes = 0;
    for h in 0..3 {
        let folder = dir.path().join(format!("host{h}"));
        bytes += tenants(&folder, h == 1);
        let config = ConfigFile::new()
            .set("poll_interval", json!("200ms"))
            .entry(json!({"glob": folder.join("*.db")}))
            .threshold("database_size", json!({"warning": "1MB"}))
            .write(&dir.path().join(format!("host{h}.yaml")));
        daemons.push(Daemon::start(&["--config", config.to_str().unwrap()]));
    }
    let addrs: Vec<String> = daemons.iter().map(|d| d.addr.clone()).collect();
    let store = Prometheus::receiver(
        &dir.path().join("central"),
        &[&root().join("alerts/sqlite-ops.rules.yml")],
    );
    let targets: Vec<String> = addrs.iter().map(|a| format!("'{a}'")).collect();
    let _agent = Prometheus::agent(
        &dir.path().join("agent"),
        &format!(
            "  - job_name: sqlite-ops\n    static_configs: [{{targets: [{}]}}]\n",
            targets.join(", ")
        ),
        &format!("{}/api/v1/write", store.url),
    );
    let all: BTreeSet<String> = addrs.iter().cloned().collect();
    wait_for(STEP, "the store recording all three hosts", || {
        let up = store.instant_values(r#"instance:sqlite_fleet_databases:max{state="up"}"#);
        let hosts = store.instant_values("job:sqlite_ops_hosts:count");
        (instances(&up) == all
            && up.iter().all(|(_, v)| *v == 3.0)
            && hosts.first().is_some_and(|(_, n)| *n == 3.0))
        .then_some(())
    });

    // Every recording rule answers, each host's for all three hosts.
    for r in sqlite_ops::rules::fleet::RECORDINGS {
        let got = store.instant_values(r.record);
        assert!(!got.is_empty(), "{} has no series", r.record);
        if r.record.starts_with("instance:") {
            assert_eq!(instances(&got), all, "{}: {got:?}", r.record);
        } else {
            assert!(
                got.iter().all(|(l, _)| l["job"] == "sqlite-ops"),
                "{}: {got:?}",
                r.record
            );
        }
    }
    // Sums across hosts count each once: nine databases, and exactly the bytes on disk.
    let one = |q: &str| store.instant_values(q).first().map(|(_, v)| *v);
    assert_eq!(
        one(r#"job:sqlite_fleet_databases:sum{state="up"}"#),
        Some(9.0)
    );
    assert_eq!(
        one("job:sqlite_fleet_database_size_bytes:sum"),
        Some(bytes as f64)
    );
    // The tenant nearest 1 MB, across hosts, is host1's big one, on host1.
    let nearest = store.instant_values(
        r#"topk(1, job:sqlite_fleet_threshold_nearest_ratio:top5{alert="SQLiteDatabaseLarge"})"#,
    );
    let (labels, ratio) = &nearest[0];
    assert_eq!(labels["instance"], addrs[1].as_str(), "{nearest:?}");
    assert!(
        labels["db"].as_str().unwrap().ends_with("t0") && (0.8..1.0).contains(ratio),
        "{nearest:?}"
    );

    // Every fleet dashboard query answers from the store; the hosts' table lists all three,
    // and the nearest across hosts names the same tenant.
    let mut empty = Vec::new();
    let fleet = crate::dashboards::expressions()
        .into_iter()
        .filter(|(d, ..)| d.ends_with("sqlite-ops-fleet.json"));
    // (No Litestream replicates these tenants: their replication lag has no series.)
    let queries = fleet.filter(|(.., legend)| legend != "lag");
    for (_, panel, expr, _) in queries {
        let expr = crate::dashboards::at_all(&expr);
        let got = store.instant_values(&expr);
        if got.is_empty() {
            empty.push(format!("{panel}: {expr}"));
        }
        if panel.starts_with("Hosts") {
            assert_eq!(instances(&got), all, "{panel}: {expr}");
        }
        if panel.starts_with("Nearest each threshold, across") {
            let top = got.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
            assert_eq!(top.0["instance"], addrs[1].as_str(), "{panel}: {got:?}");
        }
    }
    assert!(empty.is_empty(), "queries without data: {empty:#?}");

    // One host stops: it alone goes silent, and the fleet counts two hosts.
    let silent = addrs[2].clone();
    drop(daemons.pop());
    let firing =
        || store.instant_values(r#"ALERTS{alertname="SQLiteOpsHostSilent",alertstate="firing"}"#);
    wait_for(
        Duration::from_secs(150),
        "SQLiteOpsHostSilent for the stopped host",
        || (!firing().is_empty()).then_some(()),
    );
    let fired = firing();
    assert_eq!(
        instances(&fired),
        BTreeSet::from([silent.clone()]),
        "{fired:?}"
    );
    assert_eq!(one("job:sqlite_ops_hosts:count"), Some(2.0));
}

/// The configs docs/many-hosts.md gives to copy, as promtool reads them.
#[test]
fn the_many_hosts_page_configs_pass_promtool() {
    let page = std::fs::read_to_string(root().join("docs/many-hosts.md")).unwrap();
    let blocks: Vec<&str> = page
        .split("```yaml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks.len(), 3, "agent, store and federation: {blocks:?}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("alerts/sqlite-ops.rules.yml"),
        dir.path().join("sqlite-ops.rules.yml"),
    )
    .unwrap();
    for block in blocks {
        let file = dir.path().join("config.yml");
        std::fs::write(&file, block).unwrap();
        let mut cmd = Command::new(program("promtool", "prometheus"));
        cmd.args(["check", "config"]);
        if block.starts_with("# agent.yml") {
            cmd.arg("--agent");
        }
        let out = cmd.arg(&file).output().unwrap();
        assert!(
            out.status.success(),
            "{block}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
