//! Shared test helpers, by what they drive: [`config`] (a config file built from typed values), [`process`] (the guard that kills a child's whole
//! process group, the line-driven child), [`sqlite`] (the application side: Python's sqlite3, a
//! writer, the monitor in this process), [`daemon`] (a `sqlite-ops run` child), [`scrape`]
//! (HTTP and parsed scrapes), [`services`] (Prometheus, Alertmanager, Litestream, Postgres),
//! [`mounts`] (a small tmpfs, a FUSE share), [`receiver`] (an HTTP receiver for webhooks and
//! heartbeats);
//! here, waiting on conditions with deadlines and small utilities.
//!
//! The integration tests are one binary (`tests/tests.rs`), so every helper here is used by
//! some test: one that is not is dead code, and the build says so. The benches borrow a few
//! through `#[path]`.

pub mod config;
pub mod daemon;
pub mod mounts;
pub mod process;
pub mod receiver;
pub mod scrape;
pub mod services;
pub mod sqlite;

// What the tests use by its short name.
pub use config::ConfigFile;
pub use daemon::Daemon;
pub use mounts::{ReadOnly, Share, Tmpfs};
pub use process::{fd_targets, Guard};
pub use receiver::Receiver;
pub use scrape::get;
pub use services::{Alertmanager, Litestream, Postgres, Prometheus, S3Server};
pub use sqlite::{wal_db, GuideApp, PocketBase, PyDriver, Watch, Writer};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long any single step may take before the test fails.
pub const STEP: Duration = Duration::from_secs(30);

/// Polls `f` every 20 ms until it returns `Some`, or panics with `what` after `within`.
pub fn wait_for<T>(within: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_until(within, f).unwrap_or_else(|| panic!("timed out after {within:?} waiting for {what}"))
}

/// Polls `f` every 20 ms until it returns `Some`; `None` after `within`, for a caller that
/// says what it saw when it fails.
pub fn wait_until<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh temporary directory and a database path in it.
pub fn temp_db(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

/// Runs `sqlite-ops` with `args` to completion; returns exit code, stdout and stderr.
pub fn run_cli(args: &[&str]) -> (i32, String, String) {
    run_cli_without_env(args, &[])
}

/// As [`run_cli`], with the variables `unset` removed from its environment.
pub fn run_cli_without_env(args: &[&str], unset: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sqlite-ops"));
    for name in unset {
        cmd.env_remove(name);
    }
    let out = cmd.args(args).output().expect("sqlite-ops runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A port free on 127.0.0.1 at the time of the call.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The path of a program from Debian's packages, or a panic saying how to install it.
pub fn program(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin", "/usr/sbin", "/sbin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed: apt-get install {package} (scripts/test does)")
}

/// Asserts that `json` matches the JSON schema in `schema` (a path in the repository).
pub fn assert_matches_schema(json: &serde_json::Value, schema: &str) {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(schema)).unwrap();
    let schema_json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&schema_json).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(json)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "the report does not match {schema}: {errors:?}"
    );
}

/// The version of the bundled SQLite as the library itself reports it through SQL
/// (`sqlite_version()`), not as the product prints it.
pub fn bundled_sqlite_version() -> String {
    rusqlite::Connection::open_in_memory()
        .unwrap()
        .query_row("SELECT sqlite_version()", [], |r| r.get(0))
        .unwrap()
}

/// Whether, in one database's `/api/v1/status` entry, the process `pid` holds a WAL read slot
/// and not the write lock: a Litestream frozen so pins a snapshot, as a stall usually does. A
/// SIGSTOP can also land between its read transactions (0.3 ends one at each checkpoint), and
/// then nothing is pinned and no snapshot alert is due: a test that freezes it to see one
/// freezes it again until this holds.
pub fn frozen_reading(db: &serde_json::Value, pid: i32) -> bool {
    let pid = i64::from(pid);
    let roles: Vec<&str> = (db["processes"].as_array().into_iter().flatten())
        .filter(|p| p["pid"].as_i64() == Some(pid))
        .flat_map(|p| p["roles"].as_array().into_iter().flatten())
        .filter_map(|r| r.as_str())
        .collect();
    db["write_lock"]["holder_pid"].as_i64() != Some(pid)
        && !roles.contains(&"writer")
        && roles.iter().any(|r| r.starts_with("reader "))
}
