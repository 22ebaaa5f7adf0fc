//! Who a lock holder is: its name, command line and role (the application, Litestream, a
//! replicator named in config, or a process outside this pid namespace). Deciding the role is pure
//! ([`classify`]); reading `/proc` is at the edge; a [`Processes`] cache reads each process once.

use crate::format::go_buildinfo;
use serde::Serialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Litestream's Go module; its binaries (v0.3 and v0.5) name it in their build information.
const LITESTREAM_MODULE: &str = "github.com/benbjohnson/litestream";
/// The section of a Go executable holding its build information.
const BUILDINFO_SECTION: &str = ".go.buildinfo";

/// What a process is to a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Anything not recognised as below: the application the database belongs to.
    Application,
    /// Litestream, which writes its own bookkeeping and holds a read transaction on purpose.
    Litestream,
    /// A process matched by a `replicators:` entry of the config (a backup job, another
    /// replication agent): its locks are its own business, like Litestream's.
    Replicator,
    /// A lock whose holder this daemon cannot see: `F_GETLK` reports pid 0 for a process in
    /// another pid namespace (a Kubernetes pod without `shareProcessNamespace`).
    OutsideNamespace,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Application,
        Role::Litestream,
        Role::Replicator,
        Role::OutsideNamespace,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Application => "application",
            Role::Litestream => "litestream",
            Role::Replicator => "replicator",
            Role::OutsideNamespace => "outside_namespace",
        }
    }

    /// Whether this holder's writes count against single-writer discipline. A process outside
    /// the namespace may be the application, so it counts (as one: they all show as pid 0).
    pub fn is_application(self) -> bool {
        matches!(self, Role::Application | Role::OutsideNamespace)
    }
}

/// A `replicators:` entry: processes whose command line matches `command` have role
/// [`Role::Replicator`], named `name`.
#[derive(Debug, Clone)]
pub struct ReplicatorMatch {
    pub name: String,
    pub command: regex::Regex,
}

/// What is known of one process.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Identity {
    pub pid: i32,
    /// `/proc/<pid>/comm`, when readable.
    pub name: Option<String>,
    /// `/proc/<pid>/cmdline`, arguments joined by spaces.
    pub command: Option<String>,
    pub role: Role,
    /// The `replicators:` entry that matched.
    pub replicator: Option<String>,
    /// How the role was decided, for people: `go build info`, `command line`, `replicators[0]`,
    /// `pid 0`, or `default`.
    pub recognised_by: String,
}

impl Identity {
    /// A process this daemon cannot see (pid 0 from `F_GETLK`).
    pub fn outside() -> Self {
        Identity {
            pid: 0,
            name: None,
            command: None,
            role: Role::OutsideNamespace,
            replicator: None,
            recognised_by: "pid 0".into(),
        }
    }
}

/// Decides a process's role from what `/proc` showed: its name, arguments and, when readable,
/// the main package of its Go build information. Configured replicators come first, so that a
/// user can name anything; then Litestream by its build information, then by its command line
/// (an executable called `litestream*`).
///
/// Litestream is recognised by the Go build information in its executable, which names the
/// module whatever the file is called; where `/proc/<pid>/exe` cannot be read (another user's
/// process without CAP_SYS_PTRACE), by its command line.
pub fn classify(
    name: Option<&str>,
    args: &[String],
    go_package: Option<&str>,
    replicators: &[ReplicatorMatch],
) -> (Role, Option<String>, String) {
    let command = args.join(" ");
    if let Some((i, r)) = replicators
        .iter()
        .enumerate()
        .find(|(_, r)| r.command.is_match(&command))
    {
        return (
            Role::Replicator,
            Some(r.name.clone()),
            format!("replicators[{i}]"),
        );
    }
    if go_package.is_some_and(|p| {
        p == LITESTREAM_MODULE || p.starts_with("github.com/benbjohnson/litestream/")
    }) {
        return (Role::Litestream, None, "go build info".into());
    }
    let argv0 = args
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a))
        .unwrap_or("");
    if argv0.starts_with("litestream") || name.is_some_and(|n| n.starts_with("litestream")) {
        return (Role::Litestream, None, "command line".into());
    }
    (Role::Application, None, "default".into())
}

/// The main package named by the Go build information of `/proc/<pid>/exe`; `None` when the
/// executable cannot be read (permissions) or is not a Go program.
fn go_package(pid: i32) -> Option<String> {
    use object::{Object, ObjectSection};
    let file = std::fs::File::open(format!("/proc/{pid}/exe")).ok()?;
    let cache = object::ReadCache::new(file);
    let elf = object::File::parse(&cache).ok()?;
    let data = elf.section_by_name(BUILDINFO_SECTION)?.data().ok()?;
    go_buildinfo::parse(data).ok()?.path
}

/// The process's start time (`/proc/<pid>/stat` field 22): tells a reused pid apart.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name (field 2) is in parentheses and may hold spaces: count from the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// What `/proc` said of a process when it was first seen: enough to decide its role again
/// when the `replicators:` change, without reading `/proc` again.
#[derive(Debug, Clone, Default)]
struct Facts {
    name: Option<String>,
    args: Vec<String>,
    /// The main package of its Go build information, when readable.
    package: Option<String>,
}

impl Facts {
    fn read(pid: i32) -> Self {
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()
            .map(|s| s.trim().to_string());
        let args = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                b.split(|&c| c == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        Facts {
            name,
            args,
            package: go_package(pid),
        }
    }

    /// Who the process with these facts is, given the configured replicators.
    fn identity(&self, pid: i32, replicators: &[ReplicatorMatch]) -> Identity {
        if pid <= 0 {
            return Identity::outside();
        }
        let (role, replicator, mut recognised_by) = classify(
            self.name.as_deref(),
            &self.args,
            self.package.as_deref(),
            replicators,
        );
        if self.name.is_none() && self.args.is_empty() {
            // Gone before it could be read (a short-lived writer): counted as the application,
            // which is what single-writer discipline must assume.
            recognised_by = "process gone".into();
        }
        Identity {
            pid,
            name: self.name.clone(),
            command: (!self.args.is_empty()).then(|| self.args.join(" ")),
            role,
            replicator,
            recognised_by,
        }
    }
}

/// How long a process that ended is still known by what it was: its writes stay in the
/// write-lock window (a minute) after it is gone, and a dead Litestream must not turn into an
/// unknown application writer.
const REMEMBER_ENDED: Duration = Duration::from_secs(120);

/// One known process.
#[derive(Debug)]
struct Known {
    /// Start time from `/proc/<pid>/stat`, telling a reused pid apart.
    started: Option<u64>,
    facts: Facts,
    identity: Identity,
    /// When it was first seen gone.
    ended: Option<Instant>,
}

/// Every process seen holding a lock, read once and kept while it lives (and a while after).
/// Shared by all databases of a poller, so that a thousand databases opened by one application
/// read its `/proc` entries once.
#[derive(Debug, Default)]
pub struct Processes {
    replicators: Vec<ReplicatorMatch>,
    known: HashMap<i32, Known>,
}

impl Processes {
    /// Takes the `replicators:` of a reloaded config: every known process keeps what was read
    /// of it (and an ended one is still remembered) and has its role decided again.
    pub fn set_replicators(&mut self, replicators: Vec<ReplicatorMatch>) {
        self.replicators = replicators;
        for (&pid, k) in &mut self.known {
            k.identity = k.facts.identity(pid, &self.replicators);
        }
    }

    /// Who `pid` is (pid 0: a process outside this pid namespace).
    pub fn identify(&mut self, pid: i32) -> &Identity {
        let replicators = &self.replicators;
        &self
            .known
            .entry(pid)
            .or_insert_with(|| {
                let facts = if pid > 0 {
                    Facts::read(pid)
                } else {
                    Facts::default()
                };
                Known {
                    started: start_time(pid),
                    identity: facts.identity(pid, replicators),
                    facts,
                    ended: None,
                }
            })
            .identity
    }

    /// Notes processes that ended, forgets them `REMEMBER_ENDED` later, and forgets at once a
    /// pid that now names another process. Call now and then (the poller does at each read of
    /// /proc/locks).
    pub fn prune(&mut self, now: Instant) {
        self.known.retain(|&pid, k| {
            if pid <= 0 {
                return true;
            }
            match start_time(pid) {
                Some(t) => k.started == Some(t),
                None => {
                    let ended = *k.ended.get_or_insert(now);
                    now.saturating_duration_since(ended) < REMEMBER_ENDED
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn litestream_is_known_by_its_build_info_whatever_its_name() {
        let (role, _, how) = classify(
            Some("replicator-x"),
            &args("/opt/bin/replicator-x replicate -config /etc/ls.yml"),
            Some("github.com/benbjohnson/litestream/cmd/litestream"),
            &[],
        );
        assert_eq!((role, how.as_str()), (Role::Litestream, "go build info"));
    }

    #[test]
    fn litestream_is_known_by_its_command_line_when_the_executable_is_unreadable() {
        let (role, _, how) = classify(
            Some("litestream"),
            &args("/usr/local/bin/litestream replicate"),
            None,
            &[],
        );
        assert_eq!((role, how.as_str()), (Role::Litestream, "command line"));
        // An application that merely mentions it is not Litestream.
        let (role, _, _) = classify(
            Some("python3"),
            &args("python3 app.py --backup litestream"),
            None,
            &[],
        );
        assert_eq!(role, Role::Application);
        // Another Go program is not Litestream either.
        let (role, _, how) = classify(Some("app"), &args("/srv/app"), Some("example.com/app"), &[]);
        assert_eq!((role, how.as_str()), (Role::Application, "default"));
    }

    #[test]
    fn configured_replicators_come_first() {
        let r = [ReplicatorMatch {
            name: "nightly-backup".into(),
            command: regex::Regex::new(r"sqlite3 .* \.backup").unwrap(),
        }];
        let (role, name, how) = classify(
            Some("sqlite3"),
            &args("sqlite3 /data/app.db .backup /backups/app.db"),
            None,
            &r,
        );
        assert_eq!(role, Role::Replicator);
        assert_eq!(name.as_deref(), Some("nightly-backup"));
        assert_eq!(how, "replicators[0]");
    }

    #[test]
    fn this_process_is_read_from_proc_and_pid_zero_is_outside() {
        let mut p = Processes::default();
        let me = p.identify(std::process::id() as i32).clone();
        assert_eq!(me.role, Role::Application);
        assert!(me.name.is_some() && me.command.is_some(), "{me:?}");
        assert_eq!(p.identify(0).role, Role::OutsideNamespace);
        let now = Instant::now();
        p.prune(now);
        assert!(p.known.contains_key(&(std::process::id() as i32)));
    }

    #[test]
    fn an_ended_process_keeps_its_role_for_a_while() {
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // Between fork and exec the child still shows this test's command line.
        let exec = Instant::now();
        while std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()
            != b"sleep\x0060\x00"
        {
            assert!(
                exec.elapsed() < Duration::from_secs(10),
                "sleep did not start"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let r = [ReplicatorMatch {
            name: "sleeper".into(),
            command: regex::Regex::new("^sleep 60$").unwrap(),
        }];
        let mut p = Processes::default();
        p.set_replicators(r.to_vec());
        assert_eq!(p.identify(pid).role, Role::Replicator);
        child.kill().unwrap();
        child.wait().unwrap();
        let t0 = Instant::now();
        p.prune(t0);
        assert_eq!(
            p.identify(pid).role,
            Role::Replicator,
            "still known after it ended"
        );
        // A reload without that entry decides again from what was read, without /proc.
        p.set_replicators(Vec::new());
        assert_eq!(p.identify(pid).role, Role::Application);
        p.set_replicators(r.to_vec());
        assert_eq!(p.identify(pid).role, Role::Replicator);
        p.prune(t0 + REMEMBER_ENDED);
        assert!(!p.known.contains_key(&pid), "forgotten later");
    }
}
