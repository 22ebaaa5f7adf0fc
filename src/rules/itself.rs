//! The alerts about sqlite-ops itself, judged by Prometheus only: a daemon cannot say that it is
//! down, and one that falls behind would say so late. `sqlite-ops rules` prints them beside the
//! catalogue's, from the daemon's own series (`sqlite_ops_*`, and Prometheus' `up`).

use super::Severity;

/// One alert about the daemon: its rule as Prometheus evaluates it, and its texts.
#[derive(Debug)]
pub struct ItselfRule {
    pub alert: &'static str,
    pub severity: Severity,
    pub expr: &'static str,
    pub for_: &'static str,
    pub summary: &'static str,
    pub description: &'static str,
}

/// Every alert about the daemon, in the order printed. Their series carry `job` and `instance`
/// only: one alert per sqlite-ops process, never one per database.
pub const ITSELF: &[ItselfRule] = &[
    ItselfRule {
        alert: "SQLiteOpsDown",
        severity: Severity::Critical,
        // The job as the README's scrape config names it, or as the Prometheus Operator
        // names a PodMonitor's (`namespace/name`).
        expr: r#"up{job=~"(.*/)?sqlite-ops"} == 0"#,
        for_: "2m",
        summary: "sqlite-ops on {{ $labels.instance }} cannot be scraped: its databases are not watched",
        description: "Prometheus has not scraped sqlite-ops at {{ $labels.instance }} (job {{ $labels.job }}) for 2m: the process is down, restarting, or its port is unreachable. Until it answers, none of that host's databases is watched, its own alerts are neither sent nor resolved, and its sqlite_* series go stale.",
    },
    ItselfRule {
        alert: "SQLiteOpsFallingBehind",
        severity: Severity::Warning,
        expr: "increase(sqlite_ops_poll_cycles_late_total[5m]) / increase(sqlite_ops_poll_cycles_total[5m]) > 0.5",
        for_: "5m",
        summary: "sqlite-ops on {{ $labels.instance }} falls behind: most poll cycles take longer than its poll_interval",
        description: "{{ $value | humanizePercentage }} of the poll cycles of sqlite-ops on {{ $labels.instance }} over 5m took longer than its poll_interval, above half, for 5m: every database is polled less often than configured, so commits, lock holders and lags are seen late and short ones missed. sqlite_ops_poll_cycle_duration_seconds against sqlite_ops_poll_interval_seconds says by how much.",
    },
    ItselfRule {
        alert: "SQLiteOpsOutOfDescriptors",
        severity: Severity::Critical,
        expr: "increase(sqlite_ops_descriptors_refused_total[2m]) > 0",
        for_: "1m",
        summary: "sqlite-ops on {{ $labels.instance }} has no file descriptor left for some databases: they are not watched",
        description: "sqlite-ops on {{ $labels.instance }} was refused file descriptors for watched files within the last 2m, for 1m: its open-file limit leaves too few for the databases it watches, so some are down (sqlite_up 0, the error names the limit) until the limit is raised (LimitNOFILE= in systemd, ulimit -n, the container's nofile ulimit).",
    },
    ItselfRule {
        alert: "SQLiteOpsHostSilent",
        severity: Severity::Critical,
        // Where many hosts' series meet (a store fed by remote write, a federating Prometheus):
        // a host's series seen within the last day that stopped arriving. A scrape that fails
        // ends them at once (the scraper marks them stale); a host whose sender died too, after
        // the store's lookback (5m by default).
        expr: "max by (job, instance) (max_over_time(sqlite_ops_build_info[1d])) unless on (job, instance) sqlite_ops_build_info",
        for_: "1m",
        summary: "sqlite-ops on {{ $labels.instance }} has gone silent: its series stopped arriving",
        description: "The series of sqlite-ops on {{ $labels.instance }} (job {{ $labels.job }}) stopped arriving at least 1m ago, though it sent them within the last day: the daemon stopped, or its host, its scraper or the network between them is down. None of that host's databases is watched from here. The alert stays until its series arrive again, or until the host has been silent for a whole day and is no longer known.",
    },
];
