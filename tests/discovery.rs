//! A fleet of tenant databases found by `glob:` (issue 19): files created, removed and
//! replaced while the daemon runs, SQLite's own files, Litestream's folders and files that are
//! not SQLite left out, and the per-entry settings applied to every match.

use crate::common;

use common::{free_port, wait_for, wal_db, Alertmanager, ConfigFile, Daemon, PyDriver, STEP};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// The `db` labels of every `sqlite_up` series, sorted.
fn watched(d: &Daemon) -> Vec<String> {
    let mut dbs: Vec<String> = d
        .metrics()
        .samples
        .keys()
        .filter_map(|k| {
            k.strip_prefix("sqlite_up{db=\"")?
                .strip_suffix("\"}")
                .map(String::from)
        })
        .collect();
    dbs.sort();
    dbs
}

/// A config file of `body` as written (one the daemon should refuse).
fn config(dir: &Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("sqlite-ops.yaml");
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn tenants_come_and_go_while_the_daemon_runs() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants");
    std::fs::create_dir_all(tenants.join("eu")).unwrap();
    // Two tenants, one in a subfolder, with their -wal and -shm; a file that is not SQLite;
    // Litestream's folder beside a tenant, holding an SQLite file of its own.
    let a = wal_db(&tenants.join("acme.db"));
    a.execute("INSERT INTO t(v) VALUES ('x')", []).unwrap();
    drop(wal_db(&tenants.join("eu").join("beta.db")));
    std::fs::write(tenants.join("notes.db"), "not a database\n").unwrap();
    let litestream_folder = tenants.join(".acme.db-litestream");
    std::fs::create_dir(&litestream_folder).unwrap();
    drop(wal_db(&litestream_folder.join("inside.db")));
    // docs/fleets.md: the grace is shorter than SQLiteDatabaseDown's `for`, so deleting a tenant never
    // pages. Here 3 s against 6 s, with a real Alertmanager to see that nothing arrives.
    let am = Alertmanager::start(&dir.path().join("am"), free_port());
    let cfg = ConfigFile::new()
        .set("poll_interval", json!("100ms"))
        .set("discover_interval", json!("1s"))
        .set("discover_grace", json!("3s"))
        .threshold("database_down", json!({"for": "6s"}))
        .threshold("backend_engineers", json!({"info": "off"}))
        .no_disk_alert()
        .set(
            "alertmanager",
            json!({"urls": [am.url], "resend_interval": "1s"}),
        )
        .entry(json!({"glob": format!("{}/**/*.db", tenants.display()),
                      "team": {"backend_engineers": 7}}))
        .write(&dir.path().join("sqlite-ops.yaml"));
    let d = Daemon::start(&["--config", cfg.to_str().unwrap()]);
    wait_for(STEP, "the two tenants", || {
        (watched(&d) == ["acme", "eu/beta"]).then_some(())
    });
    // The entry's declared facts apply to every match.
    let m = d.metrics();
    assert_eq!(
        m.db("sqlite_declared_backend_engineers", "eu/beta"),
        Some(7.0)
    );
    assert_eq!(m.db("sqlite_up", "acme"), Some(1.0));

    // A tenant created while running: first an empty file (not a database yet), then the
    // application makes it one (its driver creates a table) and commits 5 times, from another
    // process.
    let gamma = tenants.join("gamma.db");
    std::fs::write(&gamma, "").unwrap();
    // Two discovery walks (1 s apart) see it and leave it out.
    d.wait_polls(25);
    assert!(!watched(&d).contains(&"gamma".to_string()));
    let mut py = PyDriver::start();
    py.open("w", &gamma, "journal_mode=WAL");
    wait_for(STEP, "the new tenant watched", || {
        watched(&d).contains(&"gamma".to_string()).then_some(())
    });
    // The walk may have found the file between the driver's first write and its table: the
    // baseline is read after a poll that began once the driver was done.
    d.wait_polls(2);
    let before = d
        .metrics()
        .db("sqlite_write_transactions_total", "gamma")
        .unwrap();
    py.cmd("commit w 5");
    wait_for(STEP, "gamma's 5 commits counted", || {
        (d.metrics().db("sqlite_write_transactions_total", "gamma") == Some(before + 5.0))
            .then_some(())
    });

    // A tenant replaced by rename (a restore): it stays watched under its name, never down
    // for long enough to be dropped, and is up again.
    let staged = dir.path().join("staged.db");
    drop(wal_db(&staged));
    std::fs::rename(&staged, tenants.join("eu").join("beta.db")).unwrap();
    d.wait_polls(3);
    assert_eq!(d.metrics().db("sqlite_up", "eu/beta"), Some(1.0));

    // A tenant deleted: down at once, then forgotten after the grace, series and all.
    drop(a);
    for f in ["acme.db", "acme.db-wal", "acme.db-shm"] {
        let _ = std::fs::remove_file(tenants.join(f));
    }
    wait_for(STEP, "acme down", || {
        (d.metrics().db("sqlite_up", "acme") == Some(0.0)).then_some(())
    });
    // Seen: SQLiteDatabaseDown pending for it (so what follows is not a vacuous pass).
    wait_for(STEP, "SQLiteDatabaseDown pending for acme", || {
        d.alerts()
            .iter()
            .any(|a| {
                a["alert"] == "SQLiteDatabaseDown" && a["db"] == "acme" && a["state"] == "pending"
            })
            .then_some(())
    });
    wait_for(STEP, "acme forgotten after the grace", || {
        (!watched(&d).contains(&"acme".to_string())).then_some(())
    });
    assert!(
        !d.metrics()
            .samples
            .keys()
            .any(|k| k.contains("db=\"acme\"")),
        "no series of a forgotten tenant"
    );
    assert_eq!(watched(&d), ["eu/beta", "gamma"]);
    // Past the alert's `for` since the deletion: it never fired, nothing was pushed.
    d.wait_polls(70);
    assert!(
        !d.alerts().iter().any(|a| a["db"] == "acme"),
        "{:?}",
        d.alerts()
    );
    assert!(am.alerts().is_empty(), "{:?}", am.alerts());
}

#[test]
fn sighup_walks_the_globs_at_once() {
    let dir = tempfile::tempdir().unwrap();
    drop(wal_db(&dir.path().join("one.sqlite")));
    let cfg = ConfigFile::new()
        .set("poll_interval", json!("100ms"))
        .set("discover_interval", json!("1h"))
        .entry(json!({"glob": format!("{}/*.sqlite", dir.path().display())}))
        .write(&dir.path().join("sqlite-ops.yaml"));
    let d = Daemon::start(&["--config", cfg.to_str().unwrap()]);
    wait_for(STEP, "the first tenant", || {
        (watched(&d) == ["one"]).then_some(())
    });
    drop(wal_db(&dir.path().join("two.sqlite")));
    d.wait_polls(20);
    assert_eq!(watched(&d), ["one"], "no walk before the hour is up");
    d.signal(libc::SIGHUP);
    wait_for(STEP, "the second tenant after SIGHUP", || {
        (watched(&d) == ["one", "two"]).then_some(())
    });
}

#[test]
fn a_glob_entry_is_checked_like_the_rest_of_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let bad = |body: &str| {
        let cfg = config(dir.path(), body);
        let (code, _, err) = common::run_cli(&["check", "--config", cfg.to_str().unwrap()]);
        assert_eq!(code, 3, "{err}");
        err
    };
    let err = bad("databases: [{glob: /data/app.db}]\n");
    assert!(
        err.contains("databases[0].glob") && err.contains("no wildcard"),
        "{err}"
    );
    let err = bad("databases: [{glob: '/data/*.db', path: /data/app.db}]\n");
    assert!(
        err.contains("databases[0]") && err.contains("exactly one of path"),
        "{err}"
    );
    let err = bad("databases: [{glob: '/data/*.db', name: x}]\n");
    assert!(err.contains("databases[0].name"), "{err}");
}

/// `run` given nothing watches what the host shows: a database an application in another
/// process (Python's SQLite) holds open, labelled by its path and said how it was found, and
/// the databases of Litestream's config where Litestream looks for it (`LITESTREAM_CONFIG`
/// here; by default /etc/litestream.yml) with their replicas; a database found open and then
/// deleted goes after the grace without paging; `init` prints the same as a config `run` takes.
#[test]
fn run_given_nothing_watches_what_processes_hold_open_and_litestream_lists() {
    let dir = tempfile::tempdir().unwrap();
    let label = |p: &Path| p.with_extension("").to_str().unwrap()[1..].to_string();
    let held = dir.path().join("held_by_an_app.db");
    wal_db(&held);
    let app = common::GuideApp::start(&held);
    let listed = dir.path().join("listed_by_litestream.db");
    drop(wal_db(&listed));
    let yml = common::services::file_replica_yml(dir.path(), &listed);
    let brief = dir.path().join("brief.db");
    let brief_conn = wal_db(&brief);
    let env = format!("LITESTREAM_CONFIG={}", yml.display());
    let d = Daemon::start_wrapped(&["env", &env], &[], &[]);
    let up = |db: &str| {
        let key = format!("sqlite_up{{db=\"{db}\"}}");
        d.metrics().samples.get(&key).copied()
    };
    // Every find named by its path, the one only Litestream lists too: the same name as once
    // a process opens it.
    let listed_label = label(&listed);
    wait_for(STEP, "the three databases watched", || {
        let replica =
            format!("sqlite_litestream_reads_total{{db=\"{listed_label}\",replica=\"file\"}}");
        (up(&label(&held)) == Some(1.0)
            && up(&listed_label) == Some(1.0)
            && up(&label(&brief)) == Some(1.0)
            && d.metrics().samples.contains_key(&replica))
        .then_some(())
    });
    assert_eq!(
        d.log_lines(|l| l.contains("found a database")
            && l.contains(&format!("db={listed_label} "))
            && l.contains("in Litestream's config")),
        1,
        "says it found the database in Litestream's config"
    );
    let how = format!("open by pid {} (python3", app.pid());
    assert_eq!(
        d.log_lines(|l| l.contains("found a database")
            && l.contains("held_by_an_app")
            && l.contains(&how)),
        1,
        "says how it found it"
    );
    assert_eq!(
        d.log_lines(
            |l| l.contains("found Litestream's config") && l.contains(yml.to_str().unwrap())
        ),
        1
    );

    // A temporary database deleted: down for the grace (30 s), then forgotten; no page.
    drop(brief_conn);
    std::fs::remove_file(&brief).unwrap();
    wait_for(
        Duration::from_secs(90),
        "the deleted database forgotten",
        || {
            assert!(
                !d.alerts()
                    .iter()
                    .any(|a| a["alert"] == "SQLiteDatabaseDown" && a["state"] == "firing"),
                "a deleted temporary database pages nobody"
            );
            up(&label(&brief)).is_none().then_some(())
        },
    );
    assert_eq!(
        up(&label(&held)),
        Some(1.0),
        "the application's database stays"
    );

    // init prints the same findings as a config that run takes as it is.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sqlite-ops"))
        .arg("init")
        .env("LITESTREAM_CONFIG", &yml)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!("# {how}")), "{text}");
    assert!(
        text.contains(held.to_str().unwrap()) && text.contains(yml.to_str().unwrap()),
        "{text}"
    );
    assert!(!text.contains("brief"), "{text}");
    let cfg = dir.path().join("init.yaml");
    std::fs::write(&cfg, &text).unwrap();
    let from_init = Daemon::start(&["--config", cfg.to_str().unwrap()]);
    wait_for(
        STEP,
        "the database init found watched, with the same label",
        || {
            let key = format!("sqlite_up{{db=\"{}\"}}", label(&held));
            (from_init.metrics().samples.get(&key) == Some(&1.0)).then_some(())
        },
    );
}

/// As a host sets it up: the application in a pid namespace of its own (a container), and
/// Litestream's config at its default path, `/etc/litestream.yml` (put there for the daemon
/// only: it runs in a mount namespace of its own whose `/etc` is an overlay). Given nothing,
/// `run` watches the application's database and the replica that config names for it.
#[test]
fn run_given_nothing_finds_an_app_in_its_own_pid_namespace_and_litestream_at_its_default_path() {
    let had = Path::new("/etc/litestream.yml").exists();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("contained.db");
    wal_db(&db);
    let unshare = ["unshare", "--pid", "--fork", "--kill-child", "--"];
    let _app = common::GuideApp::start_wrapped(&unshare, &db);
    let yml = common::services::file_replica_yml(dir.path(), &db);
    let upper = dir.path().join("etc-overlay");
    std::fs::create_dir(&upper).unwrap();
    let script = format!(
        "mount -t tmpfs none {u} && mkdir {u}/u {u}/w && \
         mount -t overlay overlay -o lowerdir=/etc,upperdir={u}/u,workdir={u}/w /etc && \
         cp {y} /etc/litestream.yml && exec \"$@\"",
        u = upper.display(),
        y = yml.display()
    );
    let wrapper = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
        "sh",
    ];
    let d = Daemon::start_wrapped(&wrapper, &[], &["LITESTREAM_CONFIG"]);
    let label = db.with_extension("").to_str().unwrap()[1..].to_string();
    wait_for(STEP, "the database and its replica watched", || {
        let up = format!("sqlite_up{{db=\"{label}\"}}");
        let reads = format!("sqlite_litestream_reads_total{{db=\"{label}\",replica=\"file\"}}");
        let m = d.metrics();
        (m.samples.get(&up) == Some(&1.0) && m.samples.get(&reads) >= Some(&1.0)).then_some(())
    });
    assert_eq!(
        d.log_lines(|l| l.contains("found a database")
            && l.contains("contained")
            && l.contains("open by pid")
            && l.contains("(python3")),
        1,
        "says which process holds it open"
    );
    assert_eq!(
        d.log_lines(
            |l| l.contains("found Litestream's config") && l.contains("/etc/litestream.yml")
        ),
        1,
        "says where Litestream's config was found"
    );
    assert_eq!(
        d.log_lines(|l| l.contains("its Litestream replicas are read too")
            && l.contains(&format!("db={label} "))
            && l.contains("replicas=file")),
        1,
        "says the replica it reads for the database it found open"
    );
    assert_eq!(
        Path::new("/etc/litestream.yml").exists(),
        had,
        "the host's /etc is left as it was"
    );
}

/// `--discover DIR`: every SQLite database under the folder, at any depth, watched and named
/// by its whole path, each said found "under DIR (--discover)"; a file that is not SQLite left
/// alone; one created later found at the next walk; `init --discover` lists them as paths.
#[test]
fn run_given_a_folder_watches_every_database_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let srv = dir.path().join("srv");
    std::fs::create_dir_all(srv.join("eu")).unwrap();
    let (a, b, c) = (srv.join("a.db"), srv.join("eu/b.sqlite3"), srv.join("c.db"));
    let conns = (wal_db(&a), wal_db(&b));
    std::fs::write(srv.join("notes.txt"), "not a database").unwrap();
    let label = |p: &Path| p.with_extension("").to_str().unwrap()[1..].to_string();
    let d = Daemon::start_without_env(
        &["--discover", srv.to_str().unwrap()],
        &["LITESTREAM_CONFIG"],
    );
    let up = |p: &Path| {
        let key = format!("sqlite_up{{db=\"{}\"}}", label(p));
        d.metrics().samples.get(&key).copied()
    };
    wait_for(STEP, "both databases under the folder watched", || {
        (up(&a) == Some(1.0) && up(&b) == Some(1.0)).then_some(())
    });
    let how = format!("under {} (--discover)", srv.display());
    for p in [&a, &b] {
        let name = label(p);
        assert_eq!(
            d.log_lines(|l| l.contains("found a database")
                && l.contains(&format!("db={name} "))
                && l.contains(&how)),
            1,
            "says how it found {name}"
        );
        assert_eq!(
            d.log_lines(|l| l.contains("found a database") && l.contains(&format!("db={name} "))),
            1,
            "{name}, open by this test too, is said found once"
        );
    }
    assert!(
        !watched(&d).iter().any(|w| w.contains("notes")),
        "{:?}",
        watched(&d)
    );
    let c_conn = wal_db(&c);
    wait_for(
        Duration::from_secs(45),
        "a database created later found",
        || (up(&c) == Some(1.0)).then_some(()),
    );
    // Its own series count the walks: the one at start and the one that found c at least.
    let m = d.metrics();
    let own = |name: &str| m.samples.get(name).copied().unwrap_or(f64::NAN);
    assert!(own("sqlite_ops_discovery_walks_total") >= 2.0);
    assert!(own("sqlite_ops_discovery_walk_duration_seconds") > 0.0);
    assert!(own("sqlite_ops_discovery_databases") >= 3.0);
    // Closed, so that init finds them under the folder rather than open by this test.
    drop((conns, c_conn));

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sqlite-ops"))
        .args(["init", "--discover", srv.to_str().unwrap()])
        .env("LITESTREAM_CONFIG", "/nonexistent/litestream.yml")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for p in [&a, &b, &c] {
        assert!(
            text.contains(&format!("  - path: {}\n", p.display())),
            "{text}"
        );
    }
    assert!(text.contains(&format!("# {how}")), "{text}");
    assert!(!text.contains("notes"), "{text}");
}

/// Run as another user, `init` cannot list the open files of processes it may not look into:
/// it says how many, names them, and says how to grant it, instead of failing.
#[test]
fn init_as_another_user_names_the_processes_it_could_not_look_into() {
    let dir = tempfile::tempdir().unwrap();
    let held = dir.path().join("held_by_root.db");
    wal_db(&held);
    let app = common::GuideApp::start(&held);
    let runuser = common::program("runuser", "util-linux");
    let out = std::process::Command::new(runuser)
        .args([
            "-u",
            "nobody",
            "--",
            env!("CARGO_BIN_EXE_sqlite-ops"),
            "init",
        ])
        .env("LITESTREAM_CONFIG", "/nonexistent/litestream.yml")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains("held_by_root"),
        "nobody cannot see root's files: {text}"
    );
    let note = text.replace("\n# ", " ");
    assert!(
        note.contains("could not be listed") && note.contains("run as their user or as root"),
        "{text}"
    );
    sqlite_ops::config::Config::parse(&text, "init").unwrap();
    drop(app);
}
