//! SIGHUP reloads the config: a new database is watched, a broken config is refused with a log
//! line while the running one goes on, and the listening address stays.

mod common;

use common::{temp_db, wait_for, Daemon, STEP};
use rusqlite::Connection;

#[test]
fn sighup_reloads_a_good_config_and_keeps_the_running_one_on_a_bad_one() {
    let (dir, a) = temp_db("a.db");
    let b = dir.path().join("b.db");
    for db in [&a, &b] {
        Connection::open(db)
            .unwrap()
            .execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x);")
            .unwrap();
    }
    let config = dir.path().join("c.yaml");
    std::fs::write(&config, format!("databases: [{{path: {}}}]\n", a.display())).unwrap();
    let daemon = Daemon::start(&["--config", config.to_str().unwrap()]);
    daemon.wait_polls(1);
    assert!(daemon.metrics().db("sqlite_up", "b").is_none());

    std::fs::write(
        &config,
        format!(
            "databases: [{{path: {}}}, {{path: {}}}]\n",
            a.display(),
            b.display()
        ),
    )
    .unwrap();
    daemon.signal(libc::SIGHUP);
    wait_for(STEP, "the new database watched", || {
        (daemon.metrics().db("sqlite_up", "b") == Some(1.0)).then_some(())
    });

    std::fs::write(&config, "databases: [{path: /x.db, nmae: typo}]\n").unwrap();
    daemon.signal(libc::SIGHUP);
    wait_for(STEP, "the refusal logged", || {
        daemon
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("config not reloaded") && l.contains("nmae"))
            .then_some(())
    });
    daemon.wait_polls(2);
    let m = daemon.metrics();
    assert_eq!(m.db("sqlite_up", "a"), Some(1.0));
    assert_eq!(
        m.db("sqlite_up", "b"),
        Some(1.0),
        "the running config goes on"
    );
}
