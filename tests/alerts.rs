//! Alerts end to end: the generated Prometheus rules against promtool and the committed file,
//! and pushes to real Alertmanagers (Debian's prometheus-alertmanager) as a database crosses a
//! lowered size threshold and back, including an Alertmanager that is down for a while; both
//! alert paths into one Alertmanager make one alert per condition.

use crate::common;

use common::{
    free_port, program, run_cli, wait_for, Alertmanager, ConfigFile, Daemon, Prometheus, STEP,
};
use rusqlite::Connection;
use serde_json::json;
use std::path::Path;
use std::process::Command;

fn promtool_check(file: &Path) {
    let out = Command::new(program("promtool", "prometheus"))
        .args(["check", "rules", "--lint=all", "--lint-fatal"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check rules {}: {}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_unit_tests_of_every_alert_pass() {
    let out = Command::new(program("promtool", "prometheus"))
        .args(["test", "rules"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts/sqlite-ops.rules.test.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool test rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let tests = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts/sqlite-ops.rules.test.yml"),
    )
    .unwrap();
    let itself = sqlite_ops::rules::itself::ITSELF.iter().map(|r| r.alert);
    for alert in sqlite_ops::rules::RULES
        .iter()
        .map(|r| r.alert)
        .chain(itself)
    {
        assert!(
            tests.contains(&format!("name: {alert} fires"))
                && tests.contains(&format!("name: {alert} stays quiet")),
            "{alert} is tested above its threshold and at (or below) it"
        );
    }
}

#[test]
fn generated_rules_pass_promtool_and_match_the_committed_file() {
    let (code, rules, err) = run_cli(&["rules"]);
    assert_eq!(code, 0, "{err}");
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts/sqlite-ops.rules.yml"),
    )
    .unwrap();
    assert!(
        rules == committed,
        "alerts/sqlite-ops.rules.yml is stale: regenerate it with `cargo run -- rules > alerts/sqlite-ops.rules.yml`"
    );
    promtool_check(&Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts/sqlite-ops.rules.yml"));
    // The fleet's recording rules alone, for a store that takes its alerting rules elsewhere.
    let (code, recording, err) = run_cli(&["rules", "--format", "recording"]);
    assert_eq!(code, 0, "{err}");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts/sqlite-ops.recording.rules.yml");
    assert!(
        std::fs::read_to_string(&path).unwrap() == recording,
        "alerts/sqlite-ops.recording.rules.yml is stale: regenerate it with `cargo run -- rules --format recording > alerts/sqlite-ops.recording.rules.yml`"
    );
    promtool_check(&path);
    for r in sqlite_ops::rules::fleet::RECORDINGS {
        let line = format!("record: {}\n", r.record);
        assert!(
            rules.contains(&line) && recording.contains(&line),
            "{}",
            r.record
        );
    }
    let itself = sqlite_ops::rules::itself::ITSELF.iter().map(|r| r.alert);
    for alert in sqlite_ops::rules::RULES
        .iter()
        .map(|r| r.alert)
        .chain(itself)
    {
        assert!(rules.contains(&format!("alert: {alert}\n")), "{alert}");
    }

    // Configured overrides: the same one rule per alert and level (the daemon exports each
    // database's own level as sqlite_threshold), lint-clean; a global `for` changes the rule.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.yaml");
    std::fs::write(
        &config,
        "databases:\n  - {path: /data/app.db, thresholds: {database_size: {warning: 2GB}}}\n  - {path: /data/jobs.db}\n  - {glob: '/data/tenants/*.db'}\nthresholds:\n  wal_size: {warning: 256MiB, for: 2m}\n",
    )
    .unwrap();
    let (code, custom, err) = run_cli(&["rules", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        custom.matches("alert: SQLiteDatabaseLarge\n").count(),
        3,
        "one rule per level (info, warning, critical): {custom}"
    );
    // (SQLiteOpsDown's own `for: 2m` is in both.)
    assert!(
        custom.replace("for: 2m", "for: 5m") == rules.replace("for: 2m", "for: 5m"),
        "per-database levels change no rule; only a global `for:` does"
    );
    assert!(
        custom.contains(r#"sqlite_database_size_bytes > on(job, instance, db) group_left() max by (job, instance, db) (sqlite_threshold{alert="SQLiteDatabaseLarge",severity="warning",db!=""})"#),
        "{custom}"
    );
    assert!(
        !custom.contains("by (db)"),
        "no rule aggregates away the host: {custom}"
    );
    let wal = custom
        .split("- alert: ")
        .find(|r| r.starts_with("SQLiteWalLarge"))
        .unwrap();
    assert!(wal.contains("for: 2m"), "{wal}");
    let file = dir.path().join("custom.rules.yml");
    std::fs::write(&file, &custom).unwrap();
    promtool_check(&file);
}

/// Fills the database past `bytes` of file size (checkpointed, so the main file grows).
fn grow(conn: &Connection, bytes: usize) {
    conn.execute("INSERT INTO blobs(b) VALUES (zeroblob(?1))", [bytes as i64])
        .unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
}

/// Empties and shrinks it.
fn shrink(conn: &Connection) {
    conn.execute_batch("DELETE FROM blobs; VACUUM;").unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
}

#[test]
fn size_alert_reaches_both_alertmanagers_resolves_and_survives_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE blobs(b BLOB);")
        .unwrap();
    let (port1, port2) = (free_port(), free_port());
    let am1 = Alertmanager::start(&dir.path().join("am1"), port1);
    let mut am2 = Some(Alertmanager::start(&dir.path().join("am2"), port2));
    // The machine's free disk is not under test (CI disks have been seen nearly full): only the
    // size alert may fire here.
    let config = ConfigFile::new()
        .set("poll_interval", json!("100ms"))
        .database(&db, "app")
        .threshold(
            "database_size",
            json!({"warning": "200KB", "critical": "off", "for": "0s"}),
        )
        .no_disk_alert()
        .set("team", json!({"backend_engineers": 2, "regions": 1}))
        .set(
            "alertmanager",
            json!({"urls": [am1.url, am2.as_ref().unwrap().url],
                   "resend_interval": "1s", "instance": "test-instance"}),
        )
        .write(&dir.path().join("sqlite-ops.yaml"));
    let daemon = Daemon::start(&["--config", config.to_str().unwrap()]);
    daemon.wait_polls(3);
    let raised = daemon.raised();
    assert!(raised.is_empty(), "raised under 200 KB: {raised:?}");
    assert!(am1.find("SQLiteDatabaseLarge", "app").is_none());
    let m = daemon.metrics();
    assert_eq!(m.db("sqlite_declared_backend_engineers", "app"), Some(2.0));
    assert_eq!(m.db("sqlite_declared_regions", "app"), Some(1.0));
    for name in [
        "sqlite_ops_alertmanager_sent_alerts_total",
        "sqlite_ops_alertmanager_errors_total",
        "sqlite_ops_alertmanager_pending_alerts",
    ] {
        assert!(
            m.names().contains(name),
            "{name} with Alertmanager configured"
        );
    }

    grow(&conn, 400_000);
    let alert = wait_for(STEP, "the size alert in Alertmanager 1", || {
        am1.find("SQLiteDatabaseLarge", "app")
    });
    let labels = &alert["labels"];
    assert_eq!(labels["severity"], "warning");
    assert_eq!(labels["instance"], "test-instance");
    let annotations = &alert["annotations"];
    let description = annotations["description"].as_str().unwrap();
    assert!(
        description.contains("app") && description.contains("above 200 kB"),
        "{description}"
    );
    assert!(annotations["summary"].as_str().unwrap().contains("app"));
    assert!(annotations["runbook_url"]
        .as_str()
        .unwrap()
        .ends_with("runbooks.md#sqlitedatabaselarge"));
    assert!(alert["generatorURL"]
        .as_str()
        .unwrap()
        .ends_with("/api/v1/alerts"));
    wait_for(STEP, "the size alert in Alertmanager 2", || {
        am2.as_ref().unwrap().find("SQLiteDatabaseLarge", "app")
    });
    let metrics = daemon.get("/metrics").1;
    assert!(
        metrics.lines().any(|l| l.starts_with("sqlite_alert{")
            && l.contains("alert=\"SQLiteDatabaseLarge\"")
            && l.contains("severity=\"warning\"")
            && l.ends_with(" 1")),
        "sqlite_alert is exported while firing"
    );

    // Resolved by a push to both, before the endsAt each last saw (a few seconds ahead with
    // `resend_interval: 1s`) could let it expire.
    shrink(&conn);
    am1.wait_resolved("SQLiteDatabaseLarge", "app", STEP);
    am2.as_ref()
        .unwrap()
        .wait_resolved("SQLiteDatabaseLarge", "app", STEP);
    assert!(!daemon.get("/metrics").1.contains("sqlite_alert{"));

    // Alertmanager 2 goes away; the daemon keeps polling and serving, and Alertmanager 1 is
    // still told everything.
    drop(am2.take());
    grow(&conn, 400_000);
    wait_for(STEP, "the alert again in Alertmanager 1", || {
        am1.find("SQLiteDatabaseLarge", "app")
    });
    daemon.wait_polls(10);
    wait_for(STEP, "delivery errors counted", || {
        let m = daemon.metrics();
        let errors = m
            .samples
            .iter()
            .find(|(k, _)| {
                k.starts_with("sqlite_ops_alertmanager_errors_total{")
                    && k.contains(&port2.to_string())
            })
            .map(|(_, v)| *v)?;
        (errors > 0.0).then_some(())
    });
    // Back on the same address with an empty state: it gets the firing alert.
    let am2 = Alertmanager::start(&dir.path().join("am2-again"), port2);
    wait_for(STEP, "delivery once Alertmanager 2 is back", || {
        am2.find("SQLiteDatabaseLarge", "app")
    });

    // Alertmanager 1 hangs (SIGSTOP: the kernel accepts connections, nobody answers). Pushes
    // wait on their timeout, never the poller or the HTTP server: polls go on and /metrics
    // answers throughout.
    am1.signal(libc::SIGSTOP);
    daemon.wait_polls(20);
    assert_eq!(daemon.get("/metrics").0, 200);
    am1.signal(libc::SIGCONT);
    wait_for(
        STEP,
        "Alertmanager 1 still holds the alert after it hung",
        || am1.find("SQLiteDatabaseLarge", "app"),
    );
}

/// One alert path or both (issue 37): Prometheus evaluating `sqlite-ops rules` and the daemon's
/// own push, with `alertmanager.instance` set to the address Prometheus scrapes, reach one real
/// Alertmanager as one alert per condition and severity (the same labels: alertname, db,
/// severity, job, instance); the shipped inhibition (alerts/alertmanager-inhibit.yml) mutes the
/// warning and the info while the critical fires.
#[test]
fn both_alert_paths_make_one_alert_per_condition_and_critical_mutes_warning() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE blobs(b BLOB);")
        .unwrap();
    grow(&conn, 300_000);
    let inhibit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts/alertmanager-inhibit.yml"),
    )
    .unwrap();
    let am = Alertmanager::start_with(&dir.path().join("am"), free_port(), &inhibit);
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let config = ConfigFile::new()
        .set("poll_interval", json!("200ms"))
        .database(&db, "app")
        .threshold(
            "database_size",
            json!({"info": "150KB", "warning": "200KB", "critical": "250KB", "for": "0s"}),
        )
        .no_disk_alert()
        .set(
            "alertmanager",
            json!({"urls": [am.url], "resend_interval": "1s", "instance": addr,
                   "job": "sqlite-ops"}),
        )
        .write(&dir.path().join("sqlite-ops.yaml"));
    let daemon = Daemon::start(&[
        "--config",
        config.to_str().unwrap(),
        "--web.listen-address",
        &addr,
    ]);
    let am_target = am.url.trim_start_matches("http://").to_string();
    let prometheus = Prometheus::evaluating_rules(
        &dir.path().join("prometheus"),
        &config,
        &addr,
        &format!(
            "alerting:\n  alertmanagers:\n    - static_configs: [{{targets: ['{am_target}']}}]\n"
        ),
    );
    // Both paths delivered: Prometheus fires the three levels, the daemon has pushed.
    wait_for(STEP, "Prometheus fires the three levels", || {
        (prometheus
            .series("ALERTS{alertname=\"SQLiteDatabaseLarge\",alertstate=\"firing\"}")
            .len()
            == 3)
            .then_some(())
    });
    wait_for(STEP, "the daemon pushed", || {
        daemon
            .metrics()
            .samples
            .iter()
            .any(|(k, v)| k.starts_with("sqlite_ops_alertmanager_sent_alerts_total") && *v > 0.0)
            .then_some(())
    });
    // Prometheus sent its alerts to this Alertmanager, and none was dropped. (Alertmanager keeps
    // one alert per label set: which path sent it last is not kept, so it cannot be read back
    // from the alert, and Prometheus sends again only every minute.)
    wait_for(STEP, "Prometheus's alerts sent to Alertmanager", || {
        let (_, text) = common::scrape::get(&format!("{}/metrics", prometheus.url));
        let m = common::scrape::Metrics::parse(&text);
        let sent: f64 = m
            .samples
            .iter()
            .filter(|(k, _)| k.starts_with("prometheus_notifications_sent_total"))
            .map(|(_, v)| v)
            .sum();
        let dropped: f64 = m
            .samples
            .iter()
            .filter(|(k, _)| {
                k.starts_with("prometheus_notifications_dropped_total")
                    || k.starts_with("prometheus_notifications_errors_total")
            })
            .map(|(_, v)| v)
            .sum();
        (sent >= 3.0 && dropped == 0.0).then_some(())
    });
    daemon.wait_polls(10);
    let held: Vec<serde_json::Value> = am.alerts();
    let keys: Vec<String> = held
        .iter()
        .map(|a| {
            format!(
                "{} {} {} {} {}",
                a["labels"]["alertname"],
                a["labels"]["db"],
                a["labels"]["severity"],
                a["labels"]["job"],
                a["labels"]["instance"]
            )
        })
        .collect();
    assert_eq!(
        held.len(),
        3,
        "one alert per condition and severity: {keys:?}"
    );
    for milder in ["warning", "info"] {
        let a = held
            .iter()
            .find(|a| a["labels"]["severity"] == milder)
            .unwrap();
        assert_eq!(a["labels"]["instance"], addr.as_str());
        assert_eq!(a["labels"]["job"], "sqlite-ops");
        assert_eq!(
            a["status"]["state"], "suppressed",
            "the critical mutes the {milder}: {a:#}"
        );
    }
    let critical = held
        .iter()
        .find(|a| a["labels"]["severity"] == "critical")
        .unwrap();
    assert_eq!(critical["status"]["state"], "active", "{critical:#}");
}

/// The shipped inhibition, in a real Alertmanager, keeps filesystems apart: the disk alert
/// carries `mountpoint`, not `db`, and a label absent from both alerts counts as equal, so one
/// filesystem's critical must not mute another's warning (a walkthrough found it did).
#[test]
fn the_shipped_inhibition_mutes_a_milder_level_of_the_same_filesystem_only() {
    let dir = tempfile::tempdir().unwrap();
    let inhibit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts/alertmanager-inhibit.yml"),
    )
    .unwrap();
    let am = Alertmanager::start_with(&dir.path().join("am"), free_port(), &inhibit);
    let alert = |mount: &str, severity: &str| {
        serde_json::json!({"labels": {
            "alertname": "SQLiteFilesystemLowSpace", "mountpoint": mount, "severity": severity,
            "job": "sqlite-ops", "instance": "h1:9934"}})
    };
    let body = serde_json::json!([
        alert("/a", "critical"),
        alert("/a", "warning"),
        alert("/b", "warning")
    ])
    .to_string();
    let addr = am.url.trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    use std::io::{Read, Write};
    write!(
        s,
        "POST /api/v2/alerts HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let state = |mount: &str, severity: &str| -> Option<String> {
        am.alerts()
            .iter()
            .find(|a| a["labels"]["mountpoint"] == mount && a["labels"]["severity"] == severity)
            .map(|a| a["status"]["state"].as_str().unwrap().to_string())
    };
    wait_for(STEP, "the three alerts, inhibition applied", || {
        (state("/a", "warning").as_deref() == Some("suppressed")).then_some(())
    });
    assert_eq!(state("/a", "critical").as_deref(), Some("active"));
    assert_eq!(
        state("/b", "warning").as_deref(),
        Some("active"),
        "another filesystem's warning is not muted"
    );
}

/// README's `prometheus.yml` block, as written, is a configuration Prometheus accepts, with the
/// rules `sqlite-ops rules` prints at the path it names.
#[test]
fn the_readme_s_prometheus_config_is_valid() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let block = readme
        .split("<!-- prometheus.yml -->\n```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README holds the prometheus.yml block");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("sqlite-ops.yml");
    let (code, text, err) = run_cli(&["rules"]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(&rules, text).unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        block.replace(
            "/etc/prometheus/rules/sqlite-ops.yml",
            rules.to_str().unwrap(),
        ),
    )
    .unwrap();
    let out = Command::new(program("promtool", "prometheus"))
        .args(["check", "config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check config: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
