//! `sqlite-ops migrate-check` against a real Postgres 15 (Debian's, started here on 127.0.0.1):
//! the emitted DDL applies cleanly; loading every row with COPY fails on exactly the rows the
//! report flags as blockers and succeeds on the rest; a clean database exits 0 and loads
//! completely; and a scan of a database another process writes to lets that writer's
//! checkpoints complete.

use crate::common;

use common::{run_cli, wait_for, Guard, Postgres, STEP};
use rusqlite::Connection;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::SystemTime;

/// Every case the issue names, in one database written by the bundled SQLite.
fn messy_fixture(path: &Path) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(
        r#"
        PRAGMA journal_mode = WAL;
        PRAGMA foreign_keys = OFF; -- as most applications run: SQLite's default
        CREATE TABLE users(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            email TEXT COLLATE NOCASE UNIQUE NOT NULL,
            name VARCHAR(10),
            active BOOLEAN DEFAULT 1,
            created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
            prefs JSON,
            balance REAL,
            CHECK (balance >= 0));
        CREATE TABLE orders(
            id INTEGER PRIMARY KEY,
            user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
            qty INTEGER,
            price DECIMAL(8,2),
            total REAL AS (qty * price) STORED,
            year INTEGER AS (strftime('%Y', placed_on)) VIRTUAL,
            note TEXT,
            meta,
            placed_on DATE,
            weight REAL,
            updated_at INTEGER DEFAULT (strftime('%s', 'now')));
        CREATE TABLE kv(k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;
        CREATE TABLE log(msg TEXT, at INTEGER);
        CREATE TABLE tags(code TEXT PRIMARY KEY, label TEXT);
        CREATE TABLE samples(id INTEGER PRIMARY KEY, v REAL, label ANY) STRICT;
        CREATE INDEX orders_recent ON orders(placed_on) WHERE placed_on IS NOT NULL;
        CREATE INDEX users_lower_name ON users(lower(name));
        CREATE INDEX orders_by_year ON orders(strftime('%Y', placed_on));
        CREATE VIEW big_orders AS SELECT id, qty FROM orders WHERE qty > 10;
        CREATE VIEW order_days AS SELECT date(placed_on) AS d FROM orders;
        CREATE TRIGGER orders_debit AFTER INSERT ON orders BEGIN
            UPDATE users SET balance = balance - 1 WHERE id = new.user_id; END;
        CREATE VIRTUAL TABLE docs USING fts5(body);
        CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1);

        INSERT INTO users(email, name, active, created_at, prefs, balance) VALUES
            ('a@x.com', 'alice', 1, '2024-01-01 10:00:00', '{"theme": "dark"}', 10.5),
            ('Ä@x.com', 'bob the builder', 2, 1700000000, '{bad json', 5.5),
            ('ä@x.com', CAST(x'fffe41' AS TEXT), 0, '2024-01-01T10:00:00Z', NULL, 1.25),
            ('c@x.com', CAST(x'610062' AS TEXT), 1, '2024-01-02', '"\u0000"', 2.0),
            ('d@x.com', 'dora', 'yes', '2024-13-01', '[1, 2]', 0.5),
            ('e@x.com', 'eve', 1, '2024-03-01 08:00', '{}', 3.5);
        INSERT INTO orders(user_id, qty, price, note, meta, placed_on, weight) VALUES
            (1, 3, 9.99, 'fine', 5, '2024-01-01', 1.0),
            (99, 'three', 9.99, 'orphan and text qty', 'y', '2024-02-30', 2.0),
            (1, 2.5, 1234567.5, 'real qty, price too big', x'00', '2024-01-01', 3.0),
            (NULL, 4, 1.5, CAST(x'c328' AS TEXT), x'68656c6c6f', 20240105, 4.0),
            (2, 1, 2.0, 'julian day', NULL, 2460000.5, 5.0),
            (1, 7, 0.5, 'fine', 'text', '2024-05-05', 6.0);
        INSERT INTO kv VALUES ('a', x'01'), ('b', 'text is fine in bytea'), ('c', 42);
        INSERT INTO log VALUES ('hi', 1), ('blob', x'ff'), ('fine', 3);
        INSERT INTO tags VALUES ('x', 'fine'), (NULL, 'null key'), ('y', x'c3a9');
        INSERT INTO samples(v, label) VALUES (1.5, 'a'), (2.5, 3), (3.5, x'41');
        INSERT INTO docs VALUES ('hello world');
        INSERT INTO boxes VALUES (1, 0, 1);
        "#,
    )
    .unwrap();
}

fn clean_fixture(path: &Path) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT,
             created_at DATETIME, score REAL, avatar BLOB, active BOOLEAN NOT NULL DEFAULT 0);
         CREATE TABLE orders(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),
             amount DECIMAL(10,2), placed_at DATETIME, note TEXT DEFAULT 'none');
         CREATE INDEX orders_user ON orders(user_id);
         CREATE VIEW totals AS SELECT user_id, sum(amount) AS total FROM orders GROUP BY user_id;",
    )
    .unwrap();
    let tx = c.unchecked_transaction().unwrap();
    for i in 1..=300i64 {
        tx.execute(
            "INSERT INTO users VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![
                i,
                format!("user{i}@example.com"),
                format!("User ñ {i}"),
                format!("2024-01-{:02} 12:00:00", i % 28 + 1),
                i as f64 * 0.25,
                vec![0u8, 1, 2, (i % 256) as u8],
                i % 2
            ],
        )
        .unwrap();
    }
    for i in 1..=1200i64 {
        tx.execute(
            "INSERT INTO orders(user_id, amount, placed_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![i % 300 + 1, (i % 1000) as f64 + 0.99, "2024-02-01 09:30:00"],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

/// Runs `migrate-check --format json` with every example listed; the report is checked
/// against docs/migrate-check.schema.json.
fn migrate_check(args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut all = vec!["migrate-check", "--format", "json", "--examples", "100000"];
    all.extend(args);
    let (code, out, err) = run_cli(&all);
    let json = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    common::assert_matches_schema(&json, "docs/migrate-check.schema.json");
    (code, json, err)
}

/// (table, row key) of every example of every blocker finding.
fn flagged(report: &serde_json::Value) -> BTreeSet<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] == "blocker")
        .flat_map(|f| {
            let table = f["table"].as_str().expect("data findings name the table");
            let count = f["count"].as_u64().unwrap() as usize;
            let examples = f["examples"].as_array().unwrap();
            assert_eq!(examples.len(), count, "every example is listed: {f}");
            examples
                .iter()
                .map(move |e| (table.to_string(), e.to_string()))
        })
        .collect()
}

/// A value as the straightforward copy writes it in COPY's text format: numbers as SQLite
/// renders them, text and blobs as their bytes (hex for bytea).
fn copy_field(bytes: Option<Vec<u8>>, bytea: bool) -> Vec<u8> {
    let Some(b) = bytes else {
        return b"\\N".to_vec();
    };
    if bytea {
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        return format!("\\\\x{hex}").into_bytes();
    }
    let mut out = Vec::new();
    for c in b {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0 => out.extend_from_slice(b"\\000"),
            c => out.push(c),
        }
    }
    out
}

/// Loads every row of `tables` (in order) one COPY at a time; returns (table, key) of the rows
/// Postgres rejected and the number it took.
fn load(
    sqlite: &Path,
    pg: &mut postgres::Client,
    tables: &[&str],
) -> (BTreeSet<(String, String)>, u64) {
    let c = Connection::open(sqlite).unwrap();
    let mut rejected = BTreeSet::new();
    let mut loaded = 0;
    for &table in tables {
        // Columns Postgres stores (not generated), with their types.
        let cols: Vec<(String, String)> = pg
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_name = $1 AND is_generated = 'NEVER' ORDER BY ordinal_position",
                &[&table],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let without_rowid: bool = c
            .query_row(
                "SELECT wr FROM pragma_table_list WHERE name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        let key = if without_rowid { "k" } else { "rowid" };
        let values: Vec<String> = cols
            .iter()
            .map(|(n, _)| {
                format!(
                    "CASE WHEN typeof(\"{n}\") IN ('integer', 'real') \
                     THEN CAST(CAST(\"{n}\" AS TEXT) AS BLOB) ELSE CAST(\"{n}\" AS BLOB) END"
                )
            })
            .collect();
        let sql = format!(
            "SELECT {key}, {} FROM \"{table}\" ORDER BY {key}",
            values.join(", ")
        );
        let mut stmt = c.prepare(&sql).unwrap();
        let mut rows = stmt.query([]).unwrap();
        let copy = format!(
            "COPY \"{table}\" ({}) FROM STDIN",
            cols.iter()
                .map(|(n, _)| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        while let Some(row) = rows.next().unwrap() {
            let key = if without_rowid {
                serde_json::json!([row.get::<_, String>(0).unwrap()]).to_string()
            } else {
                row.get::<_, i64>(0).unwrap().to_string()
            };
            let mut line = Vec::new();
            for (i, (_, ty)) in cols.iter().enumerate() {
                if i > 0 {
                    line.push(b'\t');
                }
                let v: Option<Vec<u8>> = row.get(i + 1).unwrap();
                line.extend(copy_field(v, ty == "bytea"));
            }
            line.push(b'\n');
            let mut w = pg.copy_in(copy.as_str()).unwrap();
            let ok = w.write_all(&line).is_ok() && w.finish().is_ok();
            if ok {
                loaded += 1;
            } else {
                rejected.insert((table.to_string(), key));
            }
        }
    }
    (rejected, loaded)
}

/// The tables a report plans, in its order.
fn table_names(report: &serde_json::Value) -> Vec<String> {
    report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// Applies `ddl` to a new Postgres database `name` and loads `tables` of `db` in that order;
/// asserts that the DDL applies and that Postgres rejected only rows a blocker finding of
/// `report` named. Returns the client and the rows loaded.
fn applies_and_loads(
    pg: &Postgres,
    name: &str,
    (db, ddl): (&Path, &Path),
    report: &serde_json::Value,
    tables: &[&str],
) -> (postgres::Client, u64) {
    let mut client = pg.client(name);
    let (ok, err) = pg.psql_file(name, ddl);
    assert!(ok, "the DDL applies: {err}");
    let (rejected, loaded) = load(db, &mut client, tables);
    let flagged = flagged(report);
    // A row whose parent row a finding named fails on its foreign key: named all the same.
    let unnamed: Vec<_> = rejected
        .difference(&flagged)
        .filter(|(table, key)| !parent_rejected(db, table, key, &flagged))
        .collect();
    assert!(
        unnamed.is_empty(),
        "Postgres rejected rows no finding named: {unnamed:?}"
    );
    (client, loaded)
}

/// Whether the row `key` (a rowid) of `table` references, by one of its foreign keys, a row in
/// `named`.
fn parent_rejected(db: &Path, table: &str, key: &str, named: &BTreeSet<(String, String)>) -> bool {
    let c = Connection::open(db).unwrap();
    let fks: Vec<(String, String, String)> = c
        .prepare("SELECT \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1)")
        .unwrap()
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    fks.iter().any(|(parent, from, to)| {
        let sql = format!(
            "SELECT p.rowid FROM \"{parent}\" p JOIN \"{table}\" c ON p.\"{to}\" = c.\"{from}\" \
             WHERE c.rowid = ?1"
        );
        let parent_key: Option<i64> = c.query_row(&sql, [key], |r| r.get(0)).ok();
        parent_key.is_some_and(|k| named.contains(&(parent.clone(), k.to_string())))
    })
}

fn ids(report: &serde_json::Value, level: &str) -> BTreeSet<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] == level)
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn postgres_rejects_exactly_the_rows_flagged_and_takes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("messy.db");
    messy_fixture(&db);
    let ddl = dir.path().join("messy.sql");
    let (code, report, _) =
        migrate_check(&[db.to_str().unwrap(), "--emit-ddl", ddl.to_str().unwrap()]);
    assert_eq!(code, 2, "the data cannot load as it is: {report:#}");
    assert_eq!(report["schema"], "sqlite-ops/migrate-check/v1");
    assert_eq!(report["verdict"], "blocked");

    let blockers = ids(&report, "blocker");
    for id in [
        "text_in_numeric_column",
        "real_in_integer_column",
        "blob_in_non_blob_column",
        "nul_in_text",
        "invalid_utf8",
        "too_long",
        "not_boolean",
        "not_a_date",
        "invalid_json",
        "numeric_overflow",
        "null_in_primary_key",
        "case_collision",
        "foreign_key_violation",
    ] {
        assert!(blockers.contains(id), "{id} in {blockers:?}");
    }
    let work = ids(&report, "work");
    for id in [
        "full_text_search",
        "rtree",
        "trigger",
        "view_not_portable",
        "index_not_portable",
        "generated_not_portable",
        "default_not_portable",
        "implicit_rowid",
        "check_constraints",
        "mixed_date_formats",
        "blob_in_text_column",
    ] {
        assert!(work.contains(id), "{id} in {work:?}");
    }
    let info = ids(&report, "info");
    for id in [
        "integers_as_real",
        "without_rowid",
        "autoincrement",
        "mixed_storage_classes",
    ] {
        assert!(info.contains(id), "{id} in {info:?}");
    }
    let types: BTreeMap<String, String> = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| {
            let table = t["name"].as_str().unwrap().to_string();
            t["columns"].as_array().unwrap().iter().map(move |c| {
                (
                    format!("{table}.{}", c["name"].as_str().unwrap()),
                    c["postgres"].as_str().unwrap().to_string(),
                )
            })
        })
        .collect();
    assert_eq!(types["users.id"], "bigint GENERATED BY DEFAULT AS IDENTITY");
    assert_eq!(types["users.email"], "citext");
    assert_eq!(types["users.name"], "varchar(10)");
    assert_eq!(types["users.active"], "boolean");
    assert_eq!(types["users.created_at"], "timestamp");
    assert_eq!(types["users.prefs"], "jsonb");
    assert_eq!(types["orders.price"], "numeric(8,2)");
    assert_eq!(types["kv.v"], "bytea");
    assert_eq!(types["orders.weight"], "double precision");
    assert!(report["cost"]["rows"].as_u64().unwrap() >= 24);
    assert!(report["cost"]["longest_read_transaction_seconds"]
        .as_f64()
        .is_some());

    let pg = Postgres::start(dir.path());
    let mut client = pg.client("messy");
    let (ok, err) = pg.psql_file("messy", &ddl);
    assert!(ok, "the DDL applies cleanly: {err}");

    let (rejected, loaded) = load(
        &db,
        &mut client,
        &["users", "orders", "kv", "log", "tags", "samples"],
    );
    let flagged = flagged(&report);
    let expected: BTreeSet<(String, String)> = [
        ("users", "2"),
        ("users", "3"),
        ("users", "4"),
        ("users", "5"),
        ("orders", "2"),
        ("orders", "3"),
        ("orders", "4"),
        ("orders", "5"),
        ("log", "2"),
        ("tags", "2"),
    ]
    .iter()
    .map(|(t, k)| (t.to_string(), k.to_string()))
    .collect();
    assert_eq!(flagged, expected, "the rows the fixture breaks");
    assert_eq!(
        rejected, flagged,
        "Postgres rejected exactly the rows migrate-check flagged"
    );
    // Every other row loaded: the tables' rows in SQLite, less the rejected ones.
    let c = Connection::open(&db).unwrap();
    let rows: u64 = ["users", "orders", "kv", "log", "tags", "samples"]
        .iter()
        .map(|t| {
            c.query_row(&format!("SELECT count(*) FROM \"{t}\""), [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap() as u64
        })
        .sum();
    assert_eq!(loaded, rows - rejected.len() as u64, "the rest loaded");
    // The portable view was created and reads the loaded orders as in SQLite.
    let in_view: i64 = client
        .query_one("SELECT count(*) FROM big_orders", &[])
        .unwrap()
        .get(0);
    let by_hand: i64 = client
        .query_one("SELECT count(*) FROM orders WHERE qty > 10", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        in_view, by_hand,
        "big_orders is the view of the SQLite schema"
    );
}

#[test]
fn a_clean_database_is_ready_and_loads_completely() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("clean.db");
    clean_fixture(&db);
    let ddl = dir.path().join("clean.sql");
    let (code, report, _) =
        migrate_check(&[db.to_str().unwrap(), "--emit-ddl", ddl.to_str().unwrap()]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["verdict"], "ready");
    assert_eq!(report["cost"]["rows"], 1500);

    // The human summary says so, with the cost.
    let (code, text, _) = run_cli(&["migrate-check", db.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        text.contains("READY") && text.contains("1500 rows"),
        "{text}"
    );

    let pg = Postgres::start(dir.path());
    let mut client = pg.client("clean");
    let (ok, err) = pg.psql_file("clean", &ddl);
    assert!(ok, "{err}");
    let (rejected, loaded) = load(&db, &mut client, &["users", "orders"]);
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(loaded, 1500);
    let next: i64 = client
        .query_one("INSERT INTO orders(user_id) VALUES (1) RETURNING id", &[])
        .unwrap()
        .get(0);
    assert_eq!(next, 1201, "the identity continues after the copied ids");
    let total: f64 = client
        .query_one("SELECT sum(total)::float8 FROM totals", &[])
        .unwrap()
        .get(0);
    assert!(total > 0.0, "the view works on the loaded data");
}

#[test]
fn the_writer_keeps_checkpointing_while_the_scan_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("busy.db");
    {
        let c = Connection::open(&db).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE big(id INTEGER PRIMARY KEY, body TEXT);",
        )
        .unwrap();
        let tx = c.unchecked_transaction().unwrap();
        for i in 0..60_000 {
            tx.execute("INSERT INTO big(body) VALUES (?1)", [format!("row {i:08}")])
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let stop = dir.path().join("stop");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/checkpointing_writer.py");
    let mut writer = Guard::spawn(
        Command::new("python3")
            .arg(script)
            .arg(&db)
            .arg(&stop)
            .stdout(Stdio::piped()),
    )
    .unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let stdout = writer.child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(l);
        }
    });
    wait_for(STEP, "the writer checkpointing", || {
        (lines.lock().unwrap().len() > 3).then_some(())
    });

    let now = || {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let began = now();
    // 60,000 rows at 20,000 a second: about 3 s of scanning, in chunks of 200.
    let (code, report, err) = migrate_check(&[
        db.to_str().unwrap(),
        "--chunk-rows",
        "200",
        "--max-rows-per-second",
        "20000",
    ]);
    let ended = now();
    std::fs::write(&stop, "").unwrap();
    let _ = writer.child.wait();
    assert_eq!(code, 0, "{report:#} {err}");

    // Checkpoints the writer ran while the scan ran: (busy, frames, checkpointed, wal bytes).
    let during: Vec<(i64, i64, i64, u64)> = lines
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&"ckpt")).then_some(())?;
            let at: f64 = f[1].parse().ok()?;
            (at > began && at < ended).then(|| {
                (
                    f[2].parse().unwrap(),
                    f[3].parse().unwrap(),
                    f[4].parse().unwrap(),
                    f[5].parse().unwrap(),
                )
            })
        })
        .collect();
    assert!(
        during.len() >= 20,
        "checkpoints during the scan: {}",
        during.len()
    );
    let complete = during
        .iter()
        .filter(|(_, log, done, _)| log == done)
        .count();
    assert!(
        complete * 2 >= during.len(),
        "most checkpoints completed while the scan ran: {complete} of {}",
        during.len()
    );
    let wal_max = during.iter().map(|c| c.3).max().unwrap();
    assert!(wal_max < 4 << 20, "the WAL stayed small: {wal_max} bytes");
    let scan = report["cost"]["scan_seconds"].as_f64().unwrap();
    let longest = report["cost"]["longest_read_transaction_seconds"]
        .as_f64()
        .unwrap();
    assert!(scan >= 2.0, "the rate limit spread the scan out: {scan} s");
    // One transaction across the scan would be as long as the scan; chunks are milliseconds
    // (a loaded CI machine may stretch one, hence the margin).
    assert!(
        longest * 4.0 < scan,
        "no read transaction lasted long: {longest} s of a {scan} s scan"
    );
}

#[test]
fn from_backup_scans_a_copy_and_finds_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("messy.db");
    messy_fixture(&db);
    let (code_live, live, _) = migrate_check(&[db.to_str().unwrap()]);
    let (code_copy, copy, _) =
        migrate_check(&[db.to_str().unwrap(), "--from-backup", "--backup-pages", "1"]);
    assert_eq!(code_live, code_copy);
    assert_eq!(flagged(&live), flagged(&copy));
    assert_eq!(copy["cost"]["source"], "backup");
    assert!(copy["cost"]["backup"]["steps"].as_u64().unwrap() > 1);

    let (code, _, err) = run_cli(&[
        "migrate-check",
        db.to_str().unwrap(),
        "--from-backup",
        "--backup-dir",
        "/nonexistent-dir",
    ]);
    assert_eq!(code, 3);
    assert!(err.contains("/nonexistent-dir"), "{err}");

    let (code, _, err) = run_cli(&["migrate-check", "/nonexistent/x.db"]);
    assert_eq!(code, 3);
    assert!(err.contains("/nonexistent/x.db"), "{err}");
}

/// docs/migrate-check.md: exit 1 when there is work to do but nothing blocks the load (here, a table with no
/// primary key); and `--from-backup` refuses a backup directory without room for the copy.
#[test]
fn work_only_exits_1_and_a_backup_without_room_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keyless.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE log(at TEXT, msg TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
             INSERT INTO log SELECT '2024-01-01 00:00:00', hex(randomblob(64)) FROM n;",
        )
        .unwrap();
    let (code, report, err) = migrate_check(&[db.to_str().unwrap()]);
    assert_eq!(code, 1, "{report:#} {err}");
    assert_eq!(report["exit_code"], 1);
    let levels: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["level"].as_str().unwrap())
        .collect();
    assert!(
        levels.contains(&"work") && !levels.contains(&"blocker"),
        "{levels:?}"
    );

    // A 1 MiB filesystem for a copy of a database of about 3 MB.
    let size = std::fs::metadata(&db).unwrap().len();
    assert!(size > 2 << 20, "{size} bytes");
    let small = common::Tmpfs::mount("1m");
    let (code, _, err) = run_cli(&[
        "migrate-check",
        db.to_str().unwrap(),
        "--from-backup",
        "--backup-dir",
        small.path.to_str().unwrap(),
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("the copy needs about") && err.contains(small.path.to_str().unwrap()),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&small.path).unwrap().count(),
        0,
        "nothing was written there"
    );
}

/// A schema nobody here wrote (issue 35): PocketBase's data.db (Go, its own SQLite build, string
/// defaults written in double quotes: `DEFAULT "base"`, which Postgres would read as a column),
/// written through its API and replicated by the real Litestream 0.5.17 (which adds its
/// `_litestream_seq` and `_litestream_lock`). The DDL applies on Postgres with ON_ERROR_STOP,
/// Litestream's tables are left behind and said once, and every row loads but those a blocker
/// finding named beforehand.
#[test]
fn pocketbase_s_schema_applies_on_postgres_and_its_rows_load() {
    use common::services::file_replica_yml;
    use common::{Litestream, PocketBase};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pb");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("data.db");
    let mut app = PocketBase::start(&data);
    app.cmd("rate 200");
    wait_for(STEP, "200 records", || {
        (app.number("created") >= 200).then_some(())
    });
    app.cmd("rate 0");
    let yml = file_replica_yml(dir.path(), &db);
    let litestream = Litestream::start("0.5.17", &yml);
    wait_for(STEP, "Litestream's tables", || {
        let c =
            Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
        let n: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name LIKE '\\_litestream\\_%' ESCAPE '\\'",
                [],
                |r| r.get(0),
            )
            .ok()?;
        (n == 2).then_some(())
    });
    drop(litestream);
    drop(app);

    let ddl = dir.path().join("pb.sql");
    let (_, report, _) =
        migrate_check(&[db.to_str().unwrap(), "--emit-ddl", ddl.to_str().unwrap()]);
    let sql = std::fs::read_to_string(&ddl).unwrap();
    assert!(
        !sql.contains("_litestream"),
        "Litestream's tables stay behind"
    );
    assert!(
        sql.contains("DEFAULT 'base'"),
        "a double-quoted default is a string"
    );
    let tables = table_names(&report);
    assert!(
        !tables.iter().any(|t| t.starts_with("_litestream")),
        "{tables:?}"
    );
    assert!(tables.iter().any(|t| t == "events"), "{tables:?}");
    let left: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "left_behind")
        .collect();
    assert_eq!(left.len(), 1, "said once: {left:?}");
    assert!(left[0]["summary"]
        .as_str()
        .unwrap()
        .contains("Litestream's bookkeeping"));

    let pg = Postgres::start(dir.path());
    let names: Vec<&str> = tables.iter().map(String::as_str).collect();
    let (_, loaded) = applies_and_loads(&pg, "pb", (&db, &ddl), &report, &names);
    assert!(loaded >= 200, "{loaded} rows loaded");
}

/// A framework's own tables (issue 35): a Django project (`startproject`, `migrate`, 51 users
/// through the ORM, on Python's SQLite). The DDL applies on Postgres with ON_ERROR_STOP and every
/// row loads but those a blocker finding named.
#[test]
fn django_s_tables_apply_on_postgres_and_their_rows_load() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("python3")
            .args(args)
            .current_dir(&site)
            .env("DJANGO_SETTINGS_MODULE", "mysite.settings")
            .output()
            .expect("python3 runs (scripts/test installs Django)");
        assert!(
            out.status.success(),
            "python3 {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["-m", "django", "startproject", "mysite", "."]);
    run(&["manage.py", "migrate", "--noinput"]);
    run(&[
        "manage.py",
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n\
         for i in range(51): User.objects.create_user(f'user{i}', f'u{i}@example.com', None, first_name='Ünïcode')",
    ]);
    let db = site.join("db.sqlite3");
    let ddl = dir.path().join("django.sql");
    let (_, report, _) =
        migrate_check(&[db.to_str().unwrap(), "--emit-ddl", ddl.to_str().unwrap()]);
    let tables = table_names(&report);
    assert!(tables.iter().any(|t| t == "auth_user"), "{tables:?}");
    let pg = Postgres::start(dir.path());
    // Parents before children: the DDL's foreign keys are checked as rows arrive.
    let mut ordered: Vec<&str> = tables.iter().map(String::as_str).collect();
    ordered.sort_by_key(|t| {
        [
            "django_content_type",
            "auth_permission",
            "auth_group",
            "auth_user",
        ]
        .iter()
        .position(|p| p == t)
        .unwrap_or(9)
    });
    let (mut client, loaded) = applies_and_loads(&pg, "django", (&db, &ddl), &report, &ordered);
    let users: i64 = client
        .query_one("SELECT count(*) FROM auth_user", &[])
        .unwrap()
        .get(0);
    assert_eq!(users, 51, "{loaded} rows loaded");
}

/// A Node application's database as knex's migrations build it on better-sqlite3 (third
/// ecosystem of the corpus, beside PocketBase's Go and Django's Python): backtick identifiers,
/// `boolean default '0'`, an enum as a CHECK, knex's own migration tables, and JavaScript Dates
/// that knex binds as milliseconds since 1970 into `datetime` columns. Those must be a blocker
/// that names them before Postgres rejects the rows; everything else applies and loads.
#[test]
fn a_knex_application_s_schema_applies_on_postgres_and_its_rows_load_or_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-tools/node/node_modules");
    assert!(
        modules.join("knex").is_dir(),
        "{} is missing: scripts/test installs knex and better-sqlite3",
        modules.display()
    );
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/knex_app.js"))
        .arg(&db)
        .env("NODE_PATH", &modules)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ddl = dir.path().join("knex.sql");
    let (_, report, _) =
        migrate_check(&[db.to_str().unwrap(), "--emit-ddl", ddl.to_str().unwrap()]);
    let text = std::fs::read_to_string(&ddl).unwrap();
    assert!(
        text.contains("\"is_admin\" boolean DEFAULT false NOT NULL"),
        "knex's default '0' on a boolean is false: {text}"
    );
    // The Dates stored as milliseconds are a blocker, named before any load.
    let dates: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "not_a_date" && f["level"] == "blocker")
        .collect();
    assert!(
        dates
            .iter()
            .any(|f| f["table"] == "posts" && f["count"] == 40),
        "{dates:?}"
    );
    let pg = Postgres::start(dir.path());
    let ordered = [
        "knex_migrations",
        "knex_migrations_lock",
        "users",
        "tags",
        "posts",
        "posts_tags",
    ];
    assert_eq!(
        table_names(&report).into_iter().collect::<BTreeSet<_>>(),
        ordered.iter().map(|t| t.to_string()).collect(),
    );
    let (mut client, loaded) = applies_and_loads(&pg, "knex", (&db, &ddl), &report, &ordered);
    let count = |client: &mut postgres::Client, table: &str| -> i64 {
        client
            .query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])
            .unwrap()
            .get(0)
    };
    assert_eq!(count(&mut client, "users"), 20, "{loaded} rows loaded");
    assert_eq!(count(&mut client, "tags"), 2);
    let admins: i64 = client
        .query_one("SELECT count(*) FROM users WHERE is_admin", &[])
        .unwrap()
        .get(0);
    assert_eq!(admins, 1, "knex's booleans (0/1) load as booleans");
}
