//! Cardinality an operator can afford (issue 19): a `metrics:` list per entry (or for the
//! whole file) chooses the groups of per-database series, and the fleet series stay a
//! handful at any count: databases by state, totals, alerts firing, and the databases nearest
//! each threshold, named from the same thresholds as the daemon's own rules.

use crate::common;

use common::{wait_for, wal_db, Daemon, STEP};

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
    let solo = dir.path().join("solo.db");
    drop(wal_db(&solo));
    // The fleet exports health only; the named database keeps everything. Databases above
    // 150 KB warn.
    let cfg = dir.path().join("sqlite-ops.yaml");
    std::fs::write(
        &cfg,
        format!(
            "poll_interval: 100ms\nmetrics: [health]\n\
             thresholds:\n  database_size: {{warning: 150KB, critical: off, for: 0s}}\n\
             databases:\n  - glob: {}/*.db\n  - path: {}\n    metrics: [all]\n",
            tenants.display(),
            solo.display()
        ),
    )
    .unwrap();
    let d = Daemon::start(&["--config", cfg.to_str().unwrap()]);
    let m = wait_for(STEP, "five databases and two alerts", || {
        let m = d.metrics();
        let firing = m
            .samples
            .get("sqlite_fleet_alerts{alert=\"SQLiteDatabaseLarge\",severity=\"warning\"}")?;
        (*firing == 2.0).then_some(m)
    });
    assert_eq!(m.samples["sqlite_fleet_databases{state=\"up\"}"], 5.0);
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

    // The total size is the sum of the five.
    let sizes: f64 = ["t0", "t1", "t2", "t3", "solo"]
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
    assert_eq!(listed, 5);
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
