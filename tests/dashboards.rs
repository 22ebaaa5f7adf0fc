//! The Grafana dashboards and the Prometheus rules, proven on a real Prometheus (Debian's
//! package): lint of the dashboard JSON, promtool unit tests of every alert, and every panel's
//! every query evaluated against a Prometheus that scraped a running `sqlite-ops run` watching
//! a database under writes, replicated by the real Litestream, with an alert firing.

use crate::common;

use common::{free_port, wait_for, ConfigFile, Daemon, Litestream, Prometheus, Writer, STEP};
use rusqlite::Connection;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

const DASHBOARDS: [&str; 2] = [
    "dashboards/sqlite-ops-overview.json",
    "dashboards/sqlite-ops-fleet.json",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(path: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(root().join(path)).unwrap())
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A panel's expression with every variable at "All" (and a 15 s rate interval), as a query.
pub(crate) fn at_all(expr: &str) -> String {
    expr.replace("$job", ".*")
        .replace("$instance", ".*")
        .replace("$db", ".*")
        .replace("$__rate_interval", "15s")
}

/// Every (dashboard, panel title, expression, legend).
pub(crate) fn expressions() -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for d in DASHBOARDS {
        for p in load(d)["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().into_iter().flatten() {
                out.push((
                    d.to_string(),
                    p["title"].as_str().unwrap().to_string(),
                    t["expr"].as_str().unwrap().to_string(),
                    t["legendFormat"].as_str().unwrap_or("").to_string(),
                ));
            }
        }
    }
    out
}

/// The `sqlite_*` metric names an expression uses.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("sqlite_") {
        let start = i + at;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = expr[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(expr.len(), |e| start + e);
        if boundary {
            out.insert(expr[start..end].to_string());
        }
        i = end;
    }
    out
}

#[test]
fn dashboards_are_generated_and_pass_lint() {
    let out = Command::new("python3")
        .arg(root().join("scripts/dashboards.py"))
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for d in DASHBOARDS {
        let board = load(d);
        assert_eq!(
            board["__inputs"],
            serde_json::json!([]),
            "{d}: no ${{DS_...}} inputs"
        );
        let vars: Vec<&str> = board["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        for v in ["datasource", "job", "instance"] {
            assert!(vars.contains(&v), "{d}: variable {v}");
        }
        // Moving between the dashboards keeps the time range being looked at.
        for link in board["links"].as_array().unwrap() {
            assert_eq!(link["keepTime"], true, "{d}: {link}");
        }
        let text = board.to_string();
        for (i, _) in text.match_indices("\"url\":\"/d/") {
            let url = &text[i..i + text[i..].find("\",").unwrap_or(text.len() - i)];
            let panel_link = url.contains("__data.fields");
            assert!(
                !panel_link || url.contains("${__url_time_range}"),
                "{d}: a data link keeps the time range: {url}"
            );
        }
        let mut ids = BTreeSet::new();
        for p in board["panels"].as_array().unwrap() {
            // The write-rate headroom is judged over the alert's own window.
            if p["title"] == "Headroom: write rate" {
                let expr = p["targets"][0]["expr"].as_str().unwrap();
                let window = sqlite_ops::rules::catalogue::window();
                assert!(
                    expr.contains(&format!("[{window}])")),
                    "{d}: {expr} over {window}"
                );
            }
            let title = p["title"].as_str().unwrap();
            assert!(
                ids.insert(p["id"].as_u64().unwrap()),
                "{d}: duplicate id at {title}"
            );
            if p["type"] == "row" {
                continue;
            }
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{d}: {title}");
            let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or("");
            assert!(!unit.is_empty(), "{d}: {title} has a unit");
            assert!(
                p["description"].as_str().is_some_and(|s| s.len() > 20),
                "{d}: {title} has a description"
            );
            for t in p["targets"].as_array().unwrap() {
                assert_eq!(t["datasource"]["uid"], "${datasource}", "{d}: {title}");
                let expr = t["expr"].as_str().unwrap();
                assert!(
                    expr.contains("instance=~\"$instance\""),
                    "{d}: {title} filters by $instance: {expr}"
                );
                // The overview draws per-database series only for the databases $db lists (the
                // fleet's, the daemon's and the process's own have no db).
                if d.ends_with("overview.json")
                    && !expr.contains("sqlite_fleet_")
                    && !expr.contains("sqlite_ops_")
                    && !expr.contains("process_")
                {
                    assert!(
                        expr.contains("db=~\"$db\""),
                        "{d}: {title} filters by $db: {expr}"
                    );
                }
                for (i, _) in expr.match_indices("rate(") {
                    if expr[..i].ends_with("i") {
                        continue; // irate is not used; nothing else ends in rate(
                    }
                    let rest = &expr[i..];
                    let close = rest.find(')').unwrap();
                    assert!(
                        rest[..close].contains("[$__rate_interval]"),
                        "{d}: {title}: every rate() uses $__rate_interval: {expr}"
                    );
                }
                assert!(
                    !expr.contains("instance=\"") && !expr.contains(":9934"),
                    "{d}: {title}: no hard-coded instance"
                );
            }
        }
    }
}

#[test]
fn every_panel_query_returns_data_on_a_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE events(id INTEGER PRIMARY KEY, at REAL);",
        )
        .unwrap();
    let _writer = Writer::start(&db);
    // And the file itself grows, for the time-until-threshold panel: Litestream holds a reader
    // that keeps other checkpoints out and checkpoints itself past 1000 waiting pages, so
    // each insert brings it a hundred.
    let growing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let grower = {
        let (db, growing) = (db.clone(), growing.clone());
        std::thread::spawn(move || {
            let c = Connection::open(&db).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
            while growing.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = c.execute("INSERT INTO events(at) VALUES (zeroblob(400000))", []);
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })
    };
    let yml = dir.path().join("litestream.yml");
    std::fs::write(
        &yml,
        format!(
            "addr: 127.0.0.1:{}\ndbs:\n  - path: {}\n    replica: {{type: file, path: {}, sync-interval: 1s}}\n",
            free_port(),
            db.display(),
            dir.path().join("replica").display()
        ),
    )
    .unwrap();
    let _litestream = Litestream::start("0.5.17", &yml);
    let config = dir.path().join("sqlite-ops.yaml");
    // A lowered size threshold makes an alert fire; an Alertmanager, a webhook and a heartbeat
    // that are not there give the delivery metrics; declared facts give the team panel;
    // restore drills every 2 s give theirs.
    let nobody = format!("http://127.0.0.1:{}", free_port());
    ConfigFile::new()
        .set("poll_interval", json!("200ms"))
        .litestream(&yml, "500ms")
        .set("team", json!({"backend_engineers": 2, "regions": 1}))
        .threshold("database_size", json!({"warning": "1KB", "for": "0s"}))
        .set(
            "alertmanager",
            json!({"urls": [nobody], "resend_interval": "1s"}),
        )
        .set(
            "notify",
            json!({"webhooks": [{"url": format!("{nobody}/hook")}],
                   "heartbeat": {"url": format!("{nobody}/beat"), "interval": "1s"}}),
        )
        .set(
            "restore_drill",
            json!({"interval": "2s", "first_after": "0s", "scratch_dir": dir.path().join("scratch"),
                   "litestream": common::services::litestream_bin("0.5.17")}),
        )
        .write(&config);
    let daemon = Daemon::start(&["--config", config.to_str().unwrap()]);
    // With the rules `sqlite-ops rules` prints, as README says: the fleet dashboard reads the
    // fleet's recording rules.
    let prometheus = Prometheus::start_with_rules(
        dir.path(),
        &format!(
            "  - job_name: sqlite-ops\n    static_configs: [{{targets: ['{}']}}]\n",
            daemon.addr
        ),
        &[&root().join("alerts/sqlite-ops.rules.yml")],
    );
    wait_for(
        STEP,
        "Prometheus holding 8 scrapes with a firing alert and replication",
        || {
            let enough = prometheus.query("count_over_time(sqlite_up[1m]) >= 8").1 > 0;
            let alert = prometheus.query("sqlite_alert == 1").1 > 0;
            let replicated = prometheus.query("sqlite_litestream_up == 1").1 > 0;
            (enough && alert && replicated).then_some(())
        },
    );

    // Every query returns data. Some figures exist only once an event has happened (a drill
    // whose recovery point could be proven beside the writer): a query without data is asked
    // again, each second, until the deadline.
    let exprs = expressions();
    let ask = |expr: &str| {
        let q = at_all(expr);
        let (status, n, error) = prometheus.query(&q);
        (status == "success" && n > 0)
            .then_some(())
            .ok_or(format!("{status} {n} series {error}: {q}"))
    };
    let mut failures: Vec<(&str, &str, &str)> = exprs
        .iter()
        .filter(|(_, _, e, _)| ask(e).is_err())
        .map(|(d, t, e, _)| (d.as_str(), t.as_str(), e.as_str()))
        .collect();
    let deadline = std::time::Instant::now() + STEP;
    while !failures.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_secs(1));
        failures.retain(|(_, _, e)| ask(e).is_err());
    }
    let failures: Vec<String> = failures
        .iter()
        .map(|(d, t, e)| format!("{d} / {t}: {}", ask(e).unwrap_err()))
        .collect();
    // The values read the config: the fleet table's size signal divides by this host's 1 KB
    // threshold (sqlite_threshold), not a 50 GB written into the dashboard, so a database of
    // a hundred kilobytes reads far above 1; the nearest keeps the signal's name.
    let fleet = load("dashboards/sqlite-ops-fleet.json");
    let target = |legend: &str| -> String {
        at_all(
            fleet["panels"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|p| p["targets"].as_array().into_iter().flatten())
                .find(|t| t["legendFormat"] == legend)
                .unwrap_or_else(|| panic!("a fleet target {legend}"))["expr"]
                .as_str()
                .unwrap(),
        )
    };
    let size = prometheus.instant_values(&target("size"));
    assert!(
        size.first().is_some_and(|(_, v)| *v > 50.0),
        "size over its 1 KB threshold: {size:?}"
    );
    let nearest = prometheus.series(&target("nearest"));
    assert_eq!(nearest.len(), 1, "{nearest:?}");
    assert_eq!(nearest[0]["signal"], "size", "{nearest:?}");
    // The overview's $db lists the worst databases, from fleet series every `metrics:` choice
    // exports: at most 10 whatever the fleet's size, and "All" means those (Grafana joins the
    // listed names when allValue is null), so no panel asks for 10,000 databases' series.
    let overview = load("dashboards/sqlite-ops-overview.json");
    let db_var = overview["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "db")
        .unwrap()
        .clone();
    assert!(db_var["allValue"].is_null(), "{db_var}");
    let q = db_var["query"]["query"].as_str().unwrap();
    let inner = q
        .strip_prefix("query_result(")
        .and_then(|q| q.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{q}"))
        .replace("$job", ".*")
        .replace("$instance", ".*");
    assert!(inner.starts_with("topk(10,"), "{inner}");
    let worst = prometheus.series(&inner);
    assert!(
        (1..=10).contains(&worst.len()) && worst.iter().all(|s| s["db"].is_string()),
        "{worst:?}"
    );
    growing.store(false, std::sync::atomic::Ordering::Relaxed);
    grower.join().unwrap();
    assert!(
        failures.is_empty(),
        "panels without data:\n{}",
        failures.join("\n")
    );
    assert!(exprs.len() > 30, "{} expressions", exprs.len());

    // Every metric a dashboard or a rule names is exported: at this scrape, or at one Prometheus
    // holds (the recovery point exists only after a drill that could prove it, and a later
    // drill beside the writer may not).
    let mut exported = daemon.metrics().names();
    exported.extend(prometheus.names());
    let rules = std::fs::read_to_string(root().join("alerts/sqlite-ops.rules.yml")).unwrap();
    let mut used: BTreeSet<String> = exprs
        .iter()
        .flat_map(|(_, _, e, _)| metric_names(e))
        .collect();
    used.extend(
        rules
            .lines()
            .filter_map(|l| l.trim().strip_prefix("expr: "))
            .flat_map(metric_names),
    );
    let missing: Vec<_> = used.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(missing.is_empty(), "used but not exported: {missing:?}");
    assert!(used.len() > 20, "{used:?}");
}
