//! What one scrape shows: the snapshots, their settings and alerts, and the daemon's own
//! figures. Read by the text renderer (`metrics`) and the fleet series (`fleet`), neither of
//! which owns it.

use crate::monitor::DbSnapshot;
use crate::notify::delivery::NotifierStats;
use crate::rules::{Alert, DbThresholds};

/// Facts about this exporter.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    pub version: &'static str,
    pub sqlite_version: &'static str,
}

impl BuildInfo {
    pub fn current() -> Self {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION"),
            sqlite_version: rusqlite::version(),
        }
    }
}

/// What one scrape shows.
pub struct Exposition<'a> {
    pub snapshots: &'a [DbSnapshot],
    /// Their thresholds and exported groups, in the same order.
    pub per_db: &'a crate::poller::PerDb,
    pub alerts: &'a [Alert],
    pub build: &'a BuildInfo,
    pub alertmanagers: &'a [std::sync::Arc<NotifierStats>],
    pub webhooks: &'a [std::sync::Arc<NotifierStats>],
    pub heartbeat: Option<&'a crate::notify::heartbeat::HeartbeatStats>,
    pub litestream_config: Option<&'a Result<(), crate::config::ConfigError>>,
    /// The config's global thresholds (`thresholds:`).
    pub thresholds: &'a DbThresholds,
    /// How the poll cycles keep up with the interval.
    pub cycles: PollCycles,
    /// The open-file budget's use; `None` without one.
    pub descriptors: Option<crate::probe::descriptors::Usage>,
    /// What the status page's history holds: (databases, bytes).
    pub history: (usize, usize),
    /// Discovery's walks: (so far, the last one's seconds, databases it returned).
    pub walks: Option<(u64, f64, u64)>,
    /// The drills: (waiting, one running, its folder's bytes); `None` without drills.
    pub drills: Option<(u64, bool, u64)>,
}

/// How the poll cycles keep up with `poll_interval`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PollCycles {
    pub total: u64,
    /// Those that took longer than the interval, so that the next one started late.
    pub late: u64,
    /// How long the last one took, in seconds.
    pub last_seconds: f64,
    pub interval_seconds: f64,
}
