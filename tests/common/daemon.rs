//! A `sqlite-ops run` child process, and what the tests ask of it.

use super::process::Guard;
use super::scrape::{get, Metrics};
use super::{wait_for, STEP};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A `sqlite-ops run` child process listening on 127.0.0.1 at a port of its choosing, which it
/// reports in the file of `--web.address-file`.
pub struct Daemon {
    child: Guard,
    pub addr: String,
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Holds the address file.
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `sqlite-ops run` with `args` (plus a 127.0.0.1:0 listen address and a 100 ms
    /// poll interval unless given) and waits until it listens, reading the address it bound
    /// from its `--web.address-file`.
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
        // The daemon may run as another user (runuser): it must be able to write here.
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let address_file = dir.path().join("address");
        let mut all: Vec<String> = vec![
            "run".into(),
            "--web.address-file".into(),
            address_file.display().to_string(),
        ];
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
        let mut child = Guard::spawn(cmd.args(&all).stdout(Stdio::null()).stderr(Stdio::piped()))
            .expect("sqlite-ops starts");
        let stderr = child.child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        // The guard, dropped if this panics, kills the whole group.
        let addr = wait_for(STEP, "the daemon's address file", || {
            if let Some(status) = child.try_wait() {
                panic!(
                    "sqlite-ops exited ({status}) before listening; log: {:?}",
                    log.lock().unwrap()
                );
            }
            let text = std::fs::read_to_string(&address_file).ok()?;
            Some(text.trim().to_string())
        });
        let daemon = Daemon {
            child,
            addr,
            log,
            _dir: dir,
        };
        daemon.wait_first_poll();
        daemon
    }

    /// Waits (at most 60 s) for the first poll cycle to end: the socket is bound, and the address
    /// file written, before it, so a test's first scrape could otherwise find no database yet
    /// (seen beside a release build). A daemon serving TLS or asking for credentials is not
    /// asked: its test waits its own way.
    fn wait_first_poll(&self) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let url = format!("http://{}/api/v1/status", self.addr);
        let cycles = || -> Option<u64> {
            let body = agent
                .get(&url)
                .call()
                .ok()?
                .body_mut()
                .read_to_string()
                .ok()?;
            serde_json::from_str::<serde_json::Value>(&body).ok()?["poll_cycles"].as_u64()
        };
        if cycles().is_none() {
            return;
        }
        super::wait_until(Duration::from_secs(60), || {
            (cycles().unwrap_or(0) >= 1).then_some(())
        });
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        get(&format!("http://{}{path}", self.addr))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until a line of the daemon's log satisfies `pred`.
    pub fn wait_log(&self, what: &str, pred: impl Fn(&str) -> bool) {
        self.wait_log_lines(what, 1, pred);
    }

    /// Lines of the daemon's log so far that satisfy `pred`.
    pub fn log_lines(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.log.lock().unwrap().iter().filter(|l| pred(l)).count()
    }

    /// The first of the daemon's log lines so far that `f` finds something in.
    pub fn log_find<T>(&self, f: impl Fn(&str) -> Option<T>) -> Option<T> {
        self.log.lock().unwrap().iter().find_map(|l| f(l))
    }

    /// Waits until at least `n` lines of the daemon's log satisfy `pred`.
    pub fn wait_log_lines(&self, what: &str, n: usize, pred: impl Fn(&str) -> bool) {
        wait_for(STEP, what, || (self.log_lines(&pred) >= n).then_some(()));
    }

    /// The alerts of `/api/v1/alerts`: pending, firing and recently resolved.
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        let (status, body) = self.get("/api/v1/alerts");
        assert_eq!(status, 200, "{body}");
        let mut v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["alerts"].as_array_mut().map(std::mem::take).unwrap()
    }

    /// The alerts pending or firing, as `name on db (state)`.
    pub fn raised(&self) -> Vec<String> {
        self.alerts()
            .iter()
            .filter(|a| a["state"] != "resolved")
            .map(|a| {
                let text = |k: &str| a[k].as_str().unwrap_or("?").to_string();
                format!("{} on {} ({})", text("alert"), text("db"), text("state"))
            })
            .collect()
    }

    /// The exit status, once the daemon has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait()
    }

    /// Sends `signal` (like `libc::SIGHUP`) to the daemon.
    pub fn signal(&self, signal: i32) {
        self.child.signal(signal)
    }

    pub fn metrics(&self) -> Metrics {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200);
        Metrics::parse(&body)
    }

    /// The poll cycles the daemon has completed.
    pub fn poll_cycles(&self) -> u64 {
        let (_, body) = self.get("/api/v1/status");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["poll_cycles"]
            .as_u64()
            .unwrap()
    }

    /// Waits until the daemon has completed at least `n` more poll cycles.
    pub fn wait_polls(&self, n: u64) {
        let target = self.poll_cycles() + n;
        wait_for(STEP, "poll cycles", || {
            (self.poll_cycles() >= target).then_some(())
        });
    }
}
