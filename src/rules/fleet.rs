//! The recording rules for fleets of hosts: each host's view and the whole fleet's, from the
//! `sqlite_fleet_*` series every host exports whatever its `metrics:` groups, so that a central
//! store answers the fleet dashboard with one cheap query per panel.

/// One recording rule: the series it records and the query it records.
#[derive(Debug)]
pub struct Recording {
    pub record: &'static str,
    pub expr: &'static str,
}

/// Every recording rule, in the order Prometheus evaluates them (a group runs its rules in
/// order, so the fleet's read the hosts' of the same evaluation).
///
/// The hosts' rules take `max by (job, instance, …)`: a host whose series arrive twice (two
/// senders told apart by an external label) is counted once, while two hosts are two as long as
/// their `instance` differs (docs/many-hosts.md says how to name each host when every agent
/// scrapes `127.0.0.1`, and why one sender per host). The fleet's sum the hosts'.
pub const RECORDINGS: &[Recording] = &[
    Recording {
        record: "instance:sqlite_fleet_databases:max",
        expr: "max by (job, instance, state) (sqlite_fleet_databases)",
    },
    Recording {
        record: "instance:sqlite_fleet_database_size_bytes:max",
        expr: "max by (job, instance) (sqlite_fleet_database_size_bytes)",
    },
    Recording {
        record: "instance:sqlite_fleet_wal_size_bytes:max",
        expr: "max by (job, instance) (sqlite_fleet_wal_size_bytes)",
    },
    Recording {
        record: "instance:sqlite_fleet_write_transactions_per_second:max",
        expr: "max by (job, instance) (sqlite_fleet_write_transactions_per_second)",
    },
    Recording {
        record: "instance:sqlite_fleet_alerts:max",
        expr: "max by (job, instance, alert, severity) (sqlite_fleet_alerts)",
    },
    Recording {
        record: "instance:sqlite_fleet_threshold_nearest_ratio:max",
        expr: "max by (job, instance, alert, db) (sqlite_fleet_threshold_nearest_ratio)",
    },
    Recording {
        record: "job:sqlite_fleet_databases:sum",
        expr: "sum by (job, state) (instance:sqlite_fleet_databases:max)",
    },
    Recording {
        record: "job:sqlite_fleet_database_size_bytes:sum",
        expr: "sum by (job) (instance:sqlite_fleet_database_size_bytes:max)",
    },
    Recording {
        record: "job:sqlite_fleet_wal_size_bytes:sum",
        expr: "sum by (job) (instance:sqlite_fleet_wal_size_bytes:max)",
    },
    Recording {
        record: "job:sqlite_fleet_write_transactions_per_second:sum",
        expr: "sum by (job) (instance:sqlite_fleet_write_transactions_per_second:max)",
    },
    Recording {
        record: "job:sqlite_fleet_alerts:sum",
        expr: "sum by (job, alert, severity) (instance:sqlite_fleet_alerts:max)",
    },
    // Across every host: each alert's five databases nearest its threshold, with the host
    // they live on (each host exports its own five).
    Recording {
        record: "job:sqlite_fleet_threshold_nearest_ratio:top5",
        expr: "topk by (job, alert) (5, instance:sqlite_fleet_threshold_nearest_ratio:max)",
    },
    Recording {
        record: "job:sqlite_ops_hosts:count",
        expr: "count by (job) (max by (job, instance) (sqlite_ops_build_info))",
    },
];
