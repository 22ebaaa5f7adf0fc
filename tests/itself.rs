//! The alerts about sqlite-ops itself (issue 36), from real conditions, through a real
//! Prometheus evaluating the rules `sqlite-ops rules` prints (their windows and `for:` shortened
//! to seconds) and a real Alertmanager: a descriptor limit below what the databases need, then
//! the daemon down, then started again without it; a CPU quota (a container's limit, through the
//! cgroup's CPU controller) under which a cycle over 300 databases outlasts the poll interval,
//! then lifted. Each alert fires, and resolves when its condition clears.

use crate::common;

use common::{free_port, run_cli, wait_for, Alertmanager, Daemon, Prometheus};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The rules `sqlite-ops rules` prints, with the daemon's own group's windows and `for:` in
/// seconds, so that a test sees each alert fire and resolve within a minute.
fn rules_in_seconds(dir: &Path) -> PathBuf {
    let (code, rules, err) = run_cli(&["rules"]);
    assert_eq!(code, 0, "{err}");
    let (others, itself) = rules
        .split_once("- name: sqlite-ops-itself\n")
        .expect("the daemon's own group");
    let mut itself = itself.to_string();
    // Thirty seconds for the cycles: a daemon throttled hard answers its scrapes slowly, and is
    // scraped every 5 s here.
    for (long, short) in [
        ("[5m]", "[30s]"),
        ("[2m]", "[5s]"),
        ("for: 5m", "for: 0s"),
        ("for: 2m", "for: 0s"),
        ("for: 1m", "for: 0s"),
    ] {
        itself = itself.replace(long, short);
    }
    let file = dir.join("rules.yml");
    std::fs::write(
        &file,
        format!("{others}- name: sqlite-ops-itself\n{itself}"),
    )
    .unwrap();
    file
}

/// The active alert `name` about the sqlite-ops at `instance`.
fn active(am: &Alertmanager, name: &str, instance: &str) -> Option<serde_json::Value> {
    am.alerts().into_iter().find(|a| {
        a["labels"]["alertname"] == name
            && a["labels"]["instance"] == instance
            && a["status"]["state"] == "active"
    })
}

/// A CPU quota for one process, through a cgroup of the CPU controller (v1 or v2), lifted and
/// removed when dropped.
struct CpuQuota(PathBuf);

impl CpuQuota {
    /// Puts `pid` (every thread) under `percent` % of one core.
    fn limit(pid: u32, percent: u64) -> CpuQuota {
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        let (root, v2) = if v1.join("cpu.cfs_quota_us").exists() {
            (v1.to_path_buf(), false)
        } else {
            (PathBuf::from("/sys/fs/cgroup"), true)
        };
        let group = root.join(format!("sqlite-ops-test-{pid}"));
        std::fs::create_dir_all(&group).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the test needs the cgroup CPU controller, as root)",
                group.display()
            )
        });
        let quota = CpuQuota(group);
        match v2 {
            false => {
                quota.write("cpu.cfs_period_us", "100000");
                quota.write("cpu.cfs_quota_us", &(percent * 1000).to_string());
            }
            true => quota.write("cpu.max", &format!("{} 100000", percent * 1000)),
        }
        quota.write("cgroup.procs", &pid.to_string());
        quota
    }

    fn lift(&self) {
        match self.0.join("cpu.max").exists() {
            true => self.write("cpu.max", "max 100000"),
            false => self.write("cpu.cfs_quota_us", "-1"),
        }
    }

    fn write(&self, file: &str, value: &str) {
        std::fs::write(self.0.join(file), value)
            .unwrap_or_else(|e| panic!("{}/{file}: {e}", self.0.display()));
    }
}

impl Drop for CpuQuota {
    fn drop(&mut self) {
        // Its processes back to the root group, so that it can go whatever is dropped first.
        let procs = std::fs::read_to_string(self.0.join("cgroup.procs")).unwrap_or_default();
        let root = self.0.parent().unwrap().join("cgroup.procs");
        for pid in procs.lines() {
            let _ = std::fs::write(&root, pid);
        }
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn the_alerts_about_the_daemon_fire_and_resolve_through_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let am = Alertmanager::start(&dir.path().join("am"), free_port());
    let (p1, p2) = (free_port(), free_port());
    let (short, fleet) = (dir.path().join("short"), dir.path().join("fleet"));
    std::fs::create_dir_all(&short).unwrap();
    std::fs::create_dir_all(&fleet).unwrap();
    let few = crate::descriptors::databases(&short, 5, "200ms");
    let many = crate::descriptors::databases(&fleet, 300, "50ms");
    // A fleet's scrapes stay cheap under the quota with the health series only.
    let text = std::fs::read_to_string(&many).unwrap();
    std::fs::write(&many, format!("{text}metrics: [health]\n")).unwrap();
    let rules = rules_in_seconds(dir.path());
    let address = |port: u16| format!("127.0.0.1:{port}");
    let _prometheus = Prometheus::start_with_rules(
        &dir.path().join("prometheus"),
        &format!(
            "  - job_name: sqlite-ops\n    static_configs: [{{targets: ['{}']}}]\n  - job_name: fleet/sqlite-ops\n    scrape_interval: 5s\n    scrape_timeout: 5s\n    static_configs: [{{targets: ['{}']}}]\nalerting:\n  alertmanagers: [{{static_configs: [{{targets: ['{}']}}]}}]\n",
            address(p1),
            address(p2),
            am.url.trim_start_matches("http://")
        ),
        &[&rules],
    );

    // Out of descriptors: a limit of 64 leaves no share for watched files.
    let prlimit = common::program("prlimit", "util-linux");
    let (few, a1) = (few.to_str().unwrap(), address(p1));
    let start = |wrapper: &[&str]| {
        let args = ["--config", few, "--web.listen-address", &a1];
        Daemon::start_wrapped(wrapper, &args, &[])
    };
    let limited = start(&[prlimit.to_str().unwrap(), "--nofile=64:64", "--"]);
    let within = Duration::from_secs(90);
    wait_for(within, "SQLiteOpsOutOfDescriptors fires", || {
        active(&am, "SQLiteOpsOutOfDescriptors", &a1)
    });
    // Down: Prometheus cannot scrape it.
    drop(limited);
    wait_for(within, "SQLiteOpsDown fires", || {
        active(&am, "SQLiteOpsDown", &a1)
    });
    // Started again without the limit: both resolve.
    let _unlimited = start(&[]);
    wait_for(
        within,
        "SQLiteOpsDown and SQLiteOpsOutOfDescriptors resolve",
        || {
            (active(&am, "SQLiteOpsDown", &a1).is_none()
                && active(&am, "SQLiteOpsOutOfDescriptors", &a1).is_none())
            .then_some(())
        },
    );

    // Falling behind: 300 databases every 50 ms (a few milliseconds of CPU a cycle) under 5 %
    // of a core.
    let a2 = address(p2);
    let fleet_daemon = Daemon::start(&[
        "--config",
        many.to_str().unwrap(),
        "--web.listen-address",
        &a2,
        "--poll-interval",
        "50ms",
    ]);
    fleet_daemon.wait_polls(2);
    let quota = CpuQuota::limit(fleet_daemon.pid(), 5);
    wait_for(within, "SQLiteOpsFallingBehind fires", || {
        let m = fleet_daemon.metrics();
        eprintln!(
            "cycles {:?}, late {:?}, last {:?}",
            m.samples.get("sqlite_ops_poll_cycles_total"),
            m.samples.get("sqlite_ops_poll_cycles_late_total"),
            m.samples.get("sqlite_ops_poll_cycle_duration_seconds")
        );
        active(&am, "SQLiteOpsFallingBehind", &a2)
    });
    assert!(
        active(&am, "SQLiteOpsDown", &a2).is_none(),
        "a daemon that falls behind still answers its scrapes"
    );
    quota.lift();
    wait_for(within, "SQLiteOpsFallingBehind resolves", || {
        active(&am, "SQLiteOpsFallingBehind", &a2)
            .is_none()
            .then_some(())
    });
    drop(fleet_daemon);
}
