//! Cardinality an operator can afford (issue 19): a `metrics:` list per entry (or for the
//! whole file) chooses the groups of per-database series, and the fleet series stay a
//! handful at any count: databases by state, totals, alerts firing, and the databases nearest
//! each threshold, named from the same thresholds as the daemon's own rules.

use crate::common;

use common::{wait_for, wal_db, ConfigFile, Daemon, STEP};
use serde_json::json;

#[test]
fn groups_choose_the_series_and_the_fleet_series_name_the_nearest() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants");
    std::fs::create_dir_all(&tenants).unwrap();
    // Four tenants of growing size: tenant i holds i * 100 rows of 1 KB.
    for i in 0..4 {
        let c = wal_db(&tenants.join(format!("t{i}.db")));
        for _ in 0..i * 100 {
            c.execute("INSERT INTO t(v) VALUES (hex(randomblob(512)))", [])
                .unwrap();
        }
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    }
    // Three more, empty: eight databases, so that "the five nearest" leaves some out.
    for i in 0..3 {
        drop(wal_db(&tenants.join(format!("e{i}.db"))));
    }
    let solo = dir.path().join("solo.db");
    drop(wal_db(&solo));
    // The fleet exports health only; the named database keeps everything. Databases above
    // 150 KB warn.
    let cfg = ConfigFile::new()
        .set("poll_interval", json!("100ms"))
        .set("metrics", json!(["health"]))
        .threshold(
            "database_size",
            json!({"warning": "150KB", "critical": "off", "for": "0s"}),
        )
        .entry(json!({"glob": format!("{}/*.db", tenants.display())}))
        .entry(json!({"path": solo, "metrics": ["all"]}))
        .write(&dir.path().join("sqlite-ops.yaml"));
    let d = Daemon::start(&["--config", cfg.to_str().unwrap()]);
    let m = wait_for(STEP, "eight databases and two alerts", || {
        let m = d.metrics();
        let firing = m
            .samples
            .get("sqlite_fleet_alerts{alert=\"SQLiteDatabaseLarge\",severity=\"warning\"}")?;
        (*firing == 2.0).then_some(m)
    });
    assert_eq!(m.samples["sqlite_fleet_databases{state=\"up\"}"], 8.0);
    assert_eq!(m.samples["sqlite_fleet_databases{state=\"down\"}"], 0.0);

    // Health only for the tenants: up and size, no WAL, lock, info or poll series.
    for i in 0..4 {
        let t = format!("t{i}");
        assert_eq!(m.db("sqlite_up", &t), Some(1.0), "{t}");
        assert!(m.db("sqlite_database_size_bytes", &t).is_some(), "{t}");
        for hidden in [
            "sqlite_wal_frames",
            "sqlite_write_lock_longest_hold_seconds",
            "sqlite_page_size_bytes",
            "sqlite_ops_poll_duration_seconds",
        ] {
            assert_eq!(m.db(hidden, &t), None, "{hidden} of {t}");
        }
    }
    for shown in [
        "sqlite_wal_frames",
        "sqlite_page_size_bytes",
        "sqlite_ops_poll_duration_seconds",
    ] {
        assert!(m.db(shown, "solo").is_some(), "{shown} of solo");
    }
    // Their alerts are exported all the same.
    for t in ["t2", "t3"] {
        let key = format!(
            "sqlite_alert{{db=\"{t}\",alert=\"SQLiteDatabaseLarge\",severity=\"warning\"}}"
        );
        assert_eq!(m.samples.get(&key), Some(&1.0), "{key}");
    }

    // The total size is the sum of the eight.
    const ALL: [&str; 8] = ["t0", "t1", "t2", "t3", "e0", "e1", "e2", "solo"];
    let sizes: f64 = ALL
        .iter()
        .map(|t| m.db("sqlite_database_size_bytes", t).unwrap())
        .sum();
    assert_eq!(m.samples["sqlite_fleet_database_size_bytes"], sizes);

    // The five nearest the size threshold, largest first, as a fraction of it.
    let nearest = |db: &str| {
        m.samples
            .get(&format!(
                "sqlite_fleet_threshold_nearest_ratio{{alert=\"SQLiteDatabaseLarge\",db=\"{db}\"}}"
            ))
            .copied()
    };
    let t3 = nearest("t3").expect("the largest is listed");
    let size = m.db("sqlite_database_size_bytes", "t3").unwrap();
    assert!((t3 - size / 150e3).abs() < 1e-9, "{t3} for {size} bytes");
    assert!(t3 > nearest("t2").unwrap() && nearest("t2").unwrap() > 1.0);
    assert!(nearest("t1").unwrap() < 1.0);
    let listed = m
        .samples
        .keys()
        .filter(|k| {
            k.starts_with("sqlite_fleet_threshold_nearest_ratio{alert=\"SQLiteDatabaseLarge\"")
        })
        .count();
    assert_eq!(listed, 5, "at most five of the eight");
    // And they are the five nearest: none left out is nearer than one listed (judged from the
    // sizes the same scrape exports).
    let ratio = |db: &str| m.db("sqlite_database_size_bytes", db).unwrap() / 150e3;
    let (shown, left): (Vec<&str>, Vec<&str>) = ALL.iter().partition(|db| nearest(db).is_some());
    let least_shown = shown.iter().map(|d| ratio(d)).fold(f64::INFINITY, f64::min);
    let most_left = left.iter().map(|d| ratio(d)).fold(0.0, f64::max);
    assert!(least_shown >= most_left, "{shown:?} listed, {left:?} not");
}

#[test]
fn an_unknown_group_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    drop(wal_db(&db));
    let cfg = dir.path().join("sqlite-ops.yaml");
    std::fs::write(
        &cfg,
        format!(
            "databases:\n  - path: {}\n    metrics: [health, wall]\n",
            db.display()
        ),
    )
    .unwrap();
    // `rules` reads the databases as `run` does, and exits.
    let (code, _, err) = common::run_cli(&["rules", "--config", cfg.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        err.contains("databases[0].metrics[1]")
            && err.contains("\"wall\"")
            && err.contains("health, info, wal"),
        "{err}"
    );
}

/// docs/fleets.md's table of series per WAL database without Litestream, per `metrics:` group, which
/// operators size their Prometheus by: counted here on a real `/metrics`.
#[test]
fn each_group_exports_the_series_count_the_readme_states() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let conn = wal_db(&db);
    conn.execute("INSERT INTO t(v) VALUES ('x')", []).unwrap();
    for (groups, expected) in [
        ("[all]", 35),
        ("[health]", 7),
        ("[info]", 4),
        ("[wal]", 10),
        ("[locks]", 7),
        ("[poll]", 7),
        ("[]", 0),
    ] {
        let written: serde_json::Value = serde_yaml::from_str(groups).unwrap();
        let cfg = ConfigFile::new()
            .set("poll_interval", json!("100ms"))
            .set("metrics", written)
            .database(&db, "app")
            .write(&dir.path().join("sqlite-ops.yaml"));
        let d = Daemon::start(&["--config", cfg.to_str().unwrap()]);
        d.wait_polls(3);
        let m = d.metrics();
        let series: Vec<&String> = m
            .samples
            .keys()
            .filter(|k| k.contains("db=\"app\"") && !k.starts_with("sqlite_fleet_"))
            .filter(|k| !k.starts_with("sqlite_threshold") && !k.starts_with("sqlite_alert"))
            .collect();
        assert_eq!(series.len(), expected, "{groups}: {series:#?}");
    }
}
