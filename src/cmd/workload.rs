//! A small mobile-backend application (users, posts, follows, feeds) writing to an SQLite
//! database in WAL mode. The demo runs it in a child process, because POSIX locks belong to a
//! process and the monitor must not share one with the connections it watches.

use anyhow::Context;
use rusqlite::{params, Connection};
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const USERS: i64 = 500;
const FOLLOWS_PER_USER: u64 = 20;

/// The guide's per-connection settings, as `check` recommends them.
const PRAGMAS: &str = crate::check::RECOMMENDED_PRAGMAS;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users(id INTEGER PRIMARY KEY, handle TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS follows(follower_id INTEGER NOT NULL REFERENCES users(id), followee_id INTEGER NOT NULL REFERENCES users(id),
  PRIMARY KEY(follower_id, followee_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS follows_followee ON follows(followee_id);
CREATE TABLE IF NOT EXISTS posts(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), body TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS posts_user ON posts(user_id, created_at);
CREATE TABLE IF NOT EXISTS feed_items(user_id INTEGER NOT NULL REFERENCES users(id), post_id INTEGER NOT NULL REFERENCES posts(id),
  created_at INTEGER NOT NULL, PRIMARY KEY(user_id, created_at, post_id)) WITHOUT ROWID;
";

/// A tiny xorshift generator: the workload needs variety, not statistical quality.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    /// A user id from 1 to USERS.
    fn user(&mut self) -> i64 {
        1 + self.next(USERS as u64) as i64
    }
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_nanos() as u64) | 1
}

fn open(path: &Path) -> anyhow::Result<Connection> {
    let c = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    c.execute_batch(PRAGMAS)?;
    Ok(c)
}

fn setup(c: &mut Connection) -> anyhow::Result<()> {
    c.execute_batch(SCHEMA)?;
    let tx = c.transaction()?;
    let mut rng = Rng(seed());
    for id in 1..=USERS {
        tx.execute(
            "INSERT OR IGNORE INTO users(id, handle, created_at) VALUES (?1, ?2, unixepoch())",
            params![id, format!("user{id}")],
        )?;
    }
    for id in 1..=USERS {
        for _ in 0..FOLLOWS_PER_USER {
            let other = rng.user();
            if other != id {
                tx.execute(
                    "INSERT OR IGNORE INTO follows VALUES (?1, ?2)",
                    params![id, other],
                )?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// One write transaction: a post and its fan-out to every follower's feed.
fn write_post(c: &mut Connection, rng: &mut Rng, n: u64) -> rusqlite::Result<()> {
    let tx = c.transaction()?;
    let author = rng.user();
    tx.execute(
        "INSERT INTO posts(user_id, body, created_at) VALUES (?1, ?2, unixepoch())",
        params![
            author,
            format!(
                "post {n} by user{author}: {}",
                "lorem ipsum ".repeat(1 + rng.next(8) as usize)
            )
        ],
    )?;
    let post = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO feed_items(user_id, post_id, created_at) SELECT follower_id, ?1, unixepoch() FROM follows WHERE followee_id = ?2",
        params![post, author],
    )?;
    tx.commit()
}

/// A reader: one short feed query at a time, as an API server would run them.
fn reader(path: &Path, stop: &AtomicBool) -> anyhow::Result<()> {
    let c = open(path)?;
    let mut rng = Rng(seed());
    let mut q = c.prepare(
        "SELECT p.id, p.body FROM feed_items f JOIN posts p ON p.id = f.post_id WHERE f.user_id = ?1 ORDER BY f.created_at DESC LIMIT 20",
    )?;
    while !stop.load(Ordering::Relaxed) {
        let user = rng.user();
        let rows = q.query_map([user], |r| r.get::<_, i64>(0))?.count();
        std::hint::black_box(rows);
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Runs the workload with the production guide's PRAGMAs: one writer at a steady `rate` write
/// transactions per second and `readers` reader threads.
///
/// Control over stdin/stdout, one line each: it prints `ready` once the schema exists, starts
/// writing on `go`, stops writing on `stop` and prints `committed N`, and closes its connections
/// and exits at end of input (so it also ends when its parent dies).
pub fn run(path: &Path, rate: u32, readers: usize) -> anyhow::Result<()> {
    let mut writer = open(path)?;
    setup(&mut writer)?;
    let (tx, rx) = mpsc::channel::<String>();
    let thread = |name: &str| std::thread::Builder::new().name(name.to_string());
    thread("stdin")
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(line.trim().to_string()).is_err() {
                    break;
                }
            }
            // End of input: the channel closes and everything stops.
        })
        .context("cannot start the workload's input thread")?;
    let say = |s: String| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{s}");
        let _ = out.flush();
    };
    say("ready".into());
    match rx.recv() {
        Ok(cmd) if cmd == "go" => {}
        _ => return Ok(()),
    }
    let stop_readers = Arc::new(AtomicBool::new(false));
    let reader_threads = (0..readers)
        .map(|_| {
            let (p, stop) = (path.to_path_buf(), stop_readers.clone());
            thread("reader").spawn(move || reader(&p, &stop))
        })
        .collect::<Result<Vec<_>, _>>()
        .context("cannot start the workload's reader threads")?;

    let mut rng = Rng(seed());
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut next = Instant::now();
    let mut committed = 0u64;
    loop {
        match rx.try_recv() {
            Ok(cmd) if cmd == "stop" => break,
            Err(mpsc::TryRecvError::Disconnected) => break,
            _ => {}
        }
        match write_post(&mut writer, &mut rng, committed) {
            Ok(()) => committed += 1,
            Err(e) => eprintln!("workload: write failed: {e}"),
        }
        next += interval;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > Duration::from_secs(1) {
            next = now; // fell behind: do not burst to catch up
        }
    }
    say(format!("committed {committed}"));
    // Keep the connections (and so the wal-index) open until the parent has taken its last look.
    while rx.recv().is_ok() {}
    stop_readers.store(true, Ordering::Relaxed);
    for t in reader_threads {
        if let Ok(Err(e)) = t.join() {
            eprintln!("workload: reader failed: {e}");
        }
    }
    Ok(())
}
