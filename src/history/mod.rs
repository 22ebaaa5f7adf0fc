//! The recent past of each database, kept in the daemon's memory for the status page,
//! `/api/v1/history` and the forecasts. Nothing is written to disk. Pure: the time of each
//! sample is the poll's.

pub mod forecast;
pub mod outlook;
pub mod ring;

use crate::monitor::DbSnapshot;
use crate::rules::Unit;
use ring::{Keep, Ring};
use serde::Serialize;
use std::collections::HashMap;

/// A figure kept over time.
#[derive(Debug)]
pub struct Figure {
    /// Its name in `/api/v1/history`.
    pub key: &'static str,
    /// For people, on the page.
    pub label: &'static str,
    pub unit: Unit,
    keep: Keep,
    value: fn(&DbSnapshot) -> Option<f64>,
    /// Whether its last 7 days are kept too (for the growth forecasts).
    week: bool,
}

impl Figure {
    /// What the newest bucket of `range` holds, for the figure shown beside a chart: the peak
    /// of its step for rates and lags, the last sample (now) for levels.
    pub fn newest_is(&self, range: Range) -> String {
        newest_is(self.keep, range)
    }
}

/// [`Figure::newest_is`] for a ring that keeps `keep`.
pub fn newest_is(keep: Keep, range: Range) -> String {
    match keep {
        Keep::Last => "now".to_string(),
        Keep::Max => format!("peak of the last {}s", range.shape().0),
    }
}

/// Every figure kept, in the order of the page.
pub static FIGURES: [Figure; 6] = [
    Figure {
        key: "write_transactions_per_second",
        label: "Write transactions/s (peak)",
        unit: Unit::PerSecond,
        keep: Keep::Max,
        value: |s| s.write_transactions_per_second,
        week: false,
    },
    Figure {
        key: "database_size_bytes",
        label: "Database size",
        unit: Unit::Bytes,
        keep: Keep::Last,
        value: |s| s.database_size_bytes.map(|b| b as f64),
        week: true,
    },
    Figure {
        key: "wal_size_bytes",
        label: "WAL size",
        unit: Unit::Bytes,
        keep: Keep::Max,
        value: |s| s.wal.as_ref().map(|w| w.size_bytes as f64),
        week: false,
    },
    Figure {
        key: "checkpoint_lag_bytes",
        label: "Checkpoint lag",
        unit: Unit::Bytes,
        keep: Keep::Max,
        value: |s| {
            s.wal
                .as_ref()
                .and_then(|w| w.checkpoint_lag_bytes.map(|b| b as f64))
        },
        week: false,
    },
    Figure {
        key: "writer_utilisation",
        label: "Writer utilisation",
        unit: Unit::Ratio,
        keep: Keep::Max,
        value: |s| s.sustained.write_lock_utilisation,
        week: false,
    },
    Figure {
        key: "filesystem_free_bytes",
        label: "Free disk",
        unit: Unit::Bytes,
        keep: Keep::Last,
        value: |s| {
            s.filesystem
                .as_ref()
                .and_then(|f| f.free_bytes.map(|b| b as f64))
        },
        week: true,
    },
];

/// The per-replica figure: replication lag.
pub const REPLICATION_LAG: &str = "replication_lag_seconds";

/// The spans kept, finest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Range {
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "1d")]
    Day,
    #[serde(rename = "7d")]
    Week,
}

impl Range {
    pub const ALL: [Range; 3] = [Range::Hour, Range::Day, Range::Week];

    /// (seconds per bucket, buckets).
    pub const fn shape(self) -> (u32, usize) {
        match self {
            Range::Hour => (10, 360),
            Range::Day => (300, 288),
            Range::Week => (3600, 168),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Range::Hour => "1h",
            Range::Day => "1d",
            Range::Week => "7d",
        }
    }

    pub fn parse(s: &str) -> Option<Range> {
        Range::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The whole span in seconds.
    pub fn seconds(self) -> f64 {
        let (step, len) = self.shape();
        f64::from(step) * len as f64
    }

    fn ring(self, keep: Keep) -> Ring {
        let (step, len) = self.shape();
        Ring::new(step, len, keep)
    }
}

/// Most replicas of one database with a history of their lag.
const MAX_REPLICAS: usize = 8;

/// One replica's lag over the last hour and day.
#[derive(Debug, Clone)]
pub struct ReplicaHistory {
    pub replica: String,
    hour: Ring,
    day: Ring,
}

/// One database's history: the figures people look at, the last hour every 10 s, the last day
/// every 5 min, and the size and free space of the last 7 days every hour. Its memory is fixed
/// ([`DbHistory::bytes`]).
#[derive(Debug, Clone)]
pub struct DbHistory {
    /// Per figure of [`FIGURES`]: the hour and the day.
    hour: Vec<Ring>,
    day: Vec<Ring>,
    /// Per figure with `week`, in the order of [`FIGURES`].
    week: Vec<Ring>,
    pub replicas: Vec<ReplicaHistory>,
    /// When the first snapshot was recorded: a ring's first step may begin before it, and what
    /// is said of the history is said of the time it really covers.
    pub first_at: Option<f64>,
}

impl Default for DbHistory {
    fn default() -> Self {
        let rings = |range: Range, week_only: bool| {
            FIGURES
                .iter()
                .filter(|f| !week_only || f.week)
                .map(|f| range.ring(f.keep))
                .collect()
        };
        DbHistory {
            hour: rings(Range::Hour, false),
            day: rings(Range::Day, false),
            week: rings(Range::Week, true),
            replicas: Vec::new(),
            first_at: None,
        }
    }
}

impl DbHistory {
    /// Adds one poll's figures.
    pub fn record(&mut self, s: &DbSnapshot) {
        let at = s.polled_at;
        self.first_at.get_or_insert(at);
        let mut week = self.week.iter_mut();
        for (i, f) in FIGURES.iter().enumerate() {
            let value = (f.value)(s);
            let week = if f.week { week.next() } else { None };
            if let Some(v) = value {
                self.hour[i].record(at, v);
                self.day[i].record(at, v);
                if let Some(w) = week {
                    w.record(at, v);
                }
            }
        }
        for r in s.litestream.iter() {
            let Some(lag) = r.lag_seconds else { continue };
            let kept = match self.replicas.iter().position(|h| *h.replica == *r.replica) {
                Some(i) => &mut self.replicas[i],
                None if self.replicas.len() < MAX_REPLICAS => {
                    self.replicas.push(ReplicaHistory {
                        replica: r.replica.to_string(),
                        hour: Range::Hour.ring(Keep::Max),
                        day: Range::Day.ring(Keep::Max),
                    });
                    self.replicas.last_mut().expect("just pushed")
                }
                None => continue,
            };
            kept.hour.record(at, lag);
            kept.day.record(at, lag);
        }
    }

    /// The ring of `figure` (an index into [`FIGURES`]) over `range`; `None` for a figure
    /// whose 7 days are not kept.
    pub fn ring(&self, figure: usize, range: Range) -> Option<&Ring> {
        match range {
            Range::Hour => self.hour.get(figure),
            Range::Day => self.day.get(figure),
            Range::Week => {
                let f = FIGURES.get(figure)?;
                if !f.week {
                    return None;
                }
                let nth = FIGURES[..figure].iter().filter(|f| f.week).count();
                self.week.get(nth)
            }
        }
    }

    /// A replica's lag over `range` (none is kept over 7 days).
    pub fn replica_ring<'a>(&'a self, r: &'a ReplicaHistory, range: Range) -> Option<&'a Ring> {
        match range {
            Range::Hour => Some(&r.hour),
            Range::Day => Some(&r.day),
            Range::Week => None,
        }
    }

    /// Bytes held: fixed once its replicas are known.
    pub fn bytes(&self) -> usize {
        let rings = self.hour.iter().chain(&self.day).chain(&self.week);
        std::mem::size_of::<Self>()
            + rings.map(Ring::bytes).sum::<usize>()
            + self
                .replicas
                .iter()
                .map(|r| {
                    std::mem::size_of::<ReplicaHistory>()
                        + r.replica.len()
                        + r.hour.bytes()
                        + r.day.bytes()
                })
                .sum::<usize>()
    }
}

/// The history of every database that keeps one: only the first `history.databases`
/// databases keep any, so that a fleet of ten thousand tenants costs nothing here.
#[derive(Debug, Default)]
pub struct History {
    dbs: HashMap<String, DbHistory>,
    /// How many databases keep a history: the first ones in the order they are polled.
    limit: usize,
}

/// Databases with a history unless configured otherwise (`history.databases`).
pub const DEFAULT_DATABASES: usize = 100;

impl History {
    pub fn new(limit: usize) -> Self {
        History {
            dbs: HashMap::new(),
            limit,
        }
    }

    /// Keeps the history of at most `limit` databases from the next cycle on.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Adds one cycle's snapshots: the first `limit` databases keep a history; those no longer
    /// among them lose theirs.
    pub fn record(&mut self, snapshots: &[DbSnapshot]) {
        let kept = &snapshots[..snapshots.len().min(self.limit)];
        if self.dbs.len() > kept.len() || kept.iter().any(|s| !self.dbs.contains_key(&*s.name)) {
            let names: std::collections::HashSet<&str> = kept.iter().map(|s| &*s.name).collect();
            self.dbs.retain(|name, _| names.contains(name.as_str()));
        }
        for s in kept {
            self.dbs.entry(s.name.to_string()).or_default().record(s);
        }
    }

    pub fn get(&self, db: &str) -> Option<&DbHistory> {
        self.dbs.get(db)
    }

    /// Databases with a history.
    pub fn len(&self) -> usize {
        self.dbs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dbs.is_empty()
    }

    /// Bytes held by all the histories.
    pub fn bytes(&self) -> usize {
        self.dbs
            .iter()
            .map(|(k, h)| k.len() + h.bytes())
            .sum::<usize>()
    }
}

/// One range of one database as `/api/v1/history` serves it: a value (or null) per bucket.
#[derive(Debug, Serialize)]
pub struct RangeData {
    /// Start of the first bucket, in seconds since the epoch.
    pub start: f64,
    pub step_seconds: u32,
    /// Per figure key, one value per bucket, oldest first; `null` where nothing was recorded.
    pub series: std::collections::BTreeMap<&'static str, Vec<Option<f64>>>,
    /// Per replica, its lag per bucket (not over 7 days).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub replication_lag_seconds: std::collections::BTreeMap<String, Vec<Option<f64>>>,
}

fn values(ring: &Ring, now: f64) -> Vec<Option<f64>> {
    ring.window(now)
        .map(|(_, v)| (!v.is_nan()).then_some(v))
        .collect()
}

impl DbHistory {
    /// `range` as of `now`, for the API.
    pub fn range_data(&self, range: Range, now: f64) -> RangeData {
        let (step, len) = range.shape();
        let last = (now / f64::from(step)).floor();
        let series = (0..FIGURES.len())
            .filter_map(|i| {
                self.ring(i, range)
                    .map(|r| (FIGURES[i].key, values(r, now)))
            })
            .collect();
        let replication_lag_seconds = self
            .replicas
            .iter()
            .filter_map(|r| {
                self.replica_ring(r, range)
                    .map(|ring| (r.replica.clone(), values(ring, now)))
            })
            .collect();
        RangeData {
            start: (last - len as f64 + 1.0) * f64::from(step),
            step_seconds: step,
            series,
            replication_lag_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::{Declared, ReplicaSnapshot};
    use std::path::Path;

    fn snapshot(name: &str, at: f64, size: u64) -> DbSnapshot {
        let mut s = DbSnapshot::new(name, Path::new("/x"), Declared::default());
        s.polled_at = at;
        s.up = true;
        s.database_size_bytes = Some(size);
        s.write_transactions_per_second = Some(at % 7.0);
        s.litestream = vec![ReplicaSnapshot {
            replica: "s3".into(),
            lag_seconds: Some(1.5),
            ..Default::default()
        }]
        .into();
        s
    }

    #[test]
    fn records_every_figure_and_each_replica_in_every_range() {
        let mut h = DbHistory::default();
        let t0 = 1_800_000_000.0;
        for i in 0..120 {
            h.record(&snapshot("app", t0 + f64::from(i), 4096 * (1 + i as u64)));
        }
        let now = t0 + 119.0;
        let size = FIGURES
            .iter()
            .position(|f| f.key == "database_size_bytes")
            .unwrap();
        let hour: Vec<_> = h.ring(size, Range::Hour).unwrap().points(now).collect();
        assert_eq!(hour.len(), 12, "120 s of 1 s polls in 10 s buckets");
        assert_eq!(hour.last().unwrap().1, 4096.0 * 120.0, "the last sample");
        assert_eq!(h.ring(size, Range::Week).unwrap().points(now).count(), 1);
        let wal = FIGURES
            .iter()
            .position(|f| f.key == "wal_size_bytes")
            .unwrap();
        assert!(h.ring(wal, Range::Week).is_none(), "not kept over 7 days");
        assert!(h
            .ring(wal, Range::Hour)
            .unwrap()
            .points(now)
            .next()
            .is_none());
        let data = h.range_data(Range::Hour, now);
        assert_eq!(data.series["database_size_bytes"].len(), 360);
        assert_eq!(data.replication_lag_seconds["s3"].last(), Some(&Some(1.5)));
        assert_eq!(data.start + 359.0 * 10.0, (now / 10.0).floor() * 10.0);
        assert!(h
            .range_data(Range::Week, now)
            .replication_lag_seconds
            .is_empty());
    }

    #[test]
    fn only_the_first_databases_keep_a_history_and_memory_stays_fixed() {
        let mut h = History::new(2);
        let t0 = 1_800_000_000.0;
        let cycle = |i: u32, names: &[&str]| -> Vec<DbSnapshot> {
            names
                .iter()
                .map(|n| snapshot(n, t0 + f64::from(i), 1 << 20))
                .collect()
        };
        h.record(&cycle(0, &["a", "b", "c"]));
        assert_eq!(h.len(), 2);
        assert!(h.get("c").is_none());
        let one_day = 86_400;
        h.record(&cycle(1, &["a", "b", "c"]));
        let bytes = h.bytes();
        for i in (2..one_day * 8).step_by(97) {
            h.record(&cycle(i, &["a", "b", "c"]));
        }
        assert_eq!(h.bytes(), bytes, "8 days later, the same memory");
        // "a" goes: "c" is now among the first two.
        h.record(&cycle(one_day * 8, &["b", "c"]));
        assert!(h.get("a").is_none() && h.get("c").is_some());
        h.set_limit(0);
        h.record(&cycle(one_day * 8 + 1, &["b", "c"]));
        assert!(h.is_empty());
    }

    #[test]
    fn ranges_round_trip_their_names() {
        for r in Range::ALL {
            assert_eq!(Range::parse(r.as_str()), Some(r));
        }
        assert_eq!(Range::parse("2h"), None);
        assert_eq!(Range::Day.seconds(), 86_400.0);
        assert_eq!(Range::Week.seconds(), 7.0 * 86_400.0);
    }
}

#[cfg(test)]
mod size {
    use super::*;

    /// The figures docs/operations.md and config.example.yaml state.
    #[test]
    fn a_database_and_a_replica_cost_what_the_docs_say() {
        let mut h = DbHistory::default();
        let bare = h.bytes();
        let mut s = DbSnapshot::new("app", std::path::Path::new("/x"), Default::default());
        s.litestream = vec![crate::monitor::ReplicaSnapshot {
            replica: "s3".into(),
            lag_seconds: Some(1.0),
            ..Default::default()
        }]
        .into();
        h.record(&s);
        assert_eq!((bare, h.bytes() - bare), (17_568, 2_778));
    }
}
