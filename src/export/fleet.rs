//! Fleet-level series: a handful whatever the number of databases, so that a host with ten
//! thousand tenants can export these and little or nothing per database (config `metrics:`).

use super::exposition::Exposition;
use crate::rules::catalogue::{Op, Unit, RULES};
use crate::rules::{conditions, AlertState, Severity};
use std::collections::BTreeMap;

/// How many databases the nearest-threshold series names per alert.
pub const NEAREST: usize = 5;

/// Where a series goes: `(name, labels, value)`, label values borrowed from `'e`.
pub type Sink<'s, 'e> = dyn FnMut(&'static str, &[(&'static str, &'e str)], f64) + 's;

/// Adds the fleet series of `e` with `add(name, labels, value)`. Computed at scrape time from
/// the published snapshots, thresholds and alerts: a fleet that is never scraped costs nothing
/// here.
pub fn add<'e>(add: &mut Sink<'_, 'e>, e: &Exposition<'e>) {
    let up = e.snapshots.iter().filter(|s| s.up).count();
    add("sqlite_fleet_databases", &[("state", "up")], up as f64);
    add(
        "sqlite_fleet_databases",
        &[("state", "down")],
        (e.snapshots.len() - up) as f64,
    );
    let sum = |f: &dyn Fn(&crate::monitor::DbSnapshot) -> Option<f64>| -> f64 {
        e.snapshots.iter().filter(|s| s.up).filter_map(f).sum()
    };
    add(
        "sqlite_fleet_database_size_bytes",
        &[],
        sum(&|s| s.database_size_bytes.map(|b| b as f64)),
    );
    add(
        "sqlite_fleet_wal_size_bytes",
        &[],
        sum(&|s| s.wal.as_ref().map(|w| w.size_bytes as f64)),
    );
    add(
        "sqlite_fleet_write_transactions_per_second",
        &[],
        sum(&|s| s.write_transactions_per_second),
    );
    for ((alert, severity), n) in firing(e) {
        add(
            "sqlite_fleet_alerts",
            &[("alert", alert), ("severity", severity.as_str())],
            n as f64,
        );
    }
    for (alert, dbs) in nearest(e) {
        for (ratio, i) in dbs {
            add(
                "sqlite_fleet_threshold_nearest_ratio",
                &[("alert", alert), ("db", &e.snapshots[i].name)],
                ratio,
            );
        }
    }
}

/// Databases each alert fires for, by severity: every level of the catalogue is listed, at 0
/// when none fires, so that a sum or a graph starts from a series that exists.
fn firing(e: &Exposition) -> BTreeMap<(&'static str, Severity), u64> {
    let mut out = BTreeMap::new();
    for r in RULES {
        for severity in Severity::ALL {
            if r.default_level(severity).is_some() {
                out.insert((r.alert, severity), 0);
            }
        }
    }
    for a in e.alerts.iter().filter(|a| a.state == AlertState::Firing) {
        *out.entry((a.alert, a.severity)).or_insert(0) += 1;
    }
    out
}

/// How far a value has gone towards a threshold: 1 at it, more beyond. For a rule that fires
/// below its threshold (free space), the threshold over the value. `None` for the rules that
/// are a state rather than a measure (down, replica unreachable).
fn ratio(op: Op, unit: Unit, value: f64, threshold: f64) -> Option<f64> {
    match op {
        Op::Above if threshold > 0.0 => Some(value / threshold),
        Op::Below if unit != Unit::Count && threshold > 0.0 => {
            Some(threshold / value.max(f64::MIN_POSITIVE))
        }
        _ => None,
    }
}

/// Per alert, the [`NEAREST`] databases closest to (or furthest past) its first threshold,
/// nearest first, as (ratio, index of the snapshot).
fn nearest(e: &Exposition) -> BTreeMap<&'static str, Vec<(f64, usize)>> {
    let mut out: BTreeMap<&'static str, Vec<(f64, usize)>> = BTreeMap::new();
    for (i, (s, thresholds)) in e.snapshots.iter().zip(&e.per_db.thresholds).enumerate() {
        for c in conditions(s, thresholds) {
            let rule = c.setting.rule;
            // The first level reached: the lower threshold above, the higher one below.
            let first = c
                .setting
                .levels()
                .map(|(_, t)| t)
                .reduce(|a, b| match rule.op {
                    Op::Above => a.min(b),
                    Op::Below => a.max(b),
                });
            let Some(r) = c
                .value
                .zip(first)
                .and_then(|(v, t)| ratio(rule.op, rule.unit, v, t))
            else {
                continue;
            };
            let top = out.entry(rule.alert).or_default();
            if top.len() < NEAREST || r > top[top.len() - 1].0 {
                let at = top.partition_point(|&(x, _)| x >= r);
                top.insert(at, (r, i));
                top.truncate(NEAREST);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_reach_one_at_the_threshold_from_either_side() {
        assert_eq!(ratio(Op::Above, Unit::PerSecond, 250.0, 500.0), Some(0.5));
        assert_eq!(ratio(Op::Above, Unit::Bytes, 100.0, 50.0), Some(2.0));
        // 20 % free against a 10 % threshold is half way; 5 % free is twice past it.
        assert_eq!(ratio(Op::Below, Unit::Ratio, 0.2, 0.1), Some(0.5));
        assert_eq!(ratio(Op::Below, Unit::Ratio, 0.05, 0.1), Some(2.0));
        assert!(ratio(Op::Below, Unit::Ratio, 0.0, 0.1).unwrap() > 1e300);
        // A state is not a distance.
        assert_eq!(ratio(Op::Below, Unit::Count, 1.0, 1.0), None);
        assert_eq!(ratio(Op::Above, Unit::Seconds, 1.0, 0.0), None);
    }
}
