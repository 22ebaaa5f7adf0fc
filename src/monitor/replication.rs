//! Replication lag from two clocks: the commits this monitor has seen and the time up to which a
//! replica is known to hold every commit. Pure: times are passed in, in seconds since the Unix
//! epoch.

use std::collections::VecDeque;

/// Change points kept at most; the oldest go first (a replica far behind keeps its lag).
const MAX_POINTS: usize = 100_000;

/// Replication lag from two clocks: the commits this monitor has seen (when each poll first saw
/// the write-transaction counter move) and the time up to which a replica is known to hold
/// every commit (the timestamp of its newest LTX file, or of its newest v0.3 segment). The lag
/// is how long the oldest commit the replica does not hold has waited, 0 when it holds all.
///
/// Comparing with SQLite's own commits, not with Litestream's local files, is what catches the
/// silent stall: when Litestream dies its local files stop too, and only the database shows
/// that writes go on.
#[derive(Debug, Default)]
pub struct CommitHistory {
    /// Polls that saw new commits: (this poll's time, the previous poll's time). The commits
    /// happened between the two.
    points: VecDeque<(f64, f64)>,
    last: Option<(f64, u64)>,
}

impl CommitHistory {
    /// Records the write-transaction total seen by the poll at `now`.
    pub fn observe(&mut self, now: f64, total: u64) {
        if let Some((prev_at, prev_total)) = self.last {
            if total > prev_total {
                if self.points.len() == MAX_POINTS {
                    self.points.pop_front();
                }
                self.points.push_back((now, prev_at));
            }
        }
        self.last = Some((now, total));
    }

    /// Seconds the oldest commit made after `replicated_at` has waited at `now`: commits first
    /// seen by a poll whose previous poll was already past `replicated_at` are certainly not in
    /// the replica; they are dated from the poll that saw them.
    pub fn lag(&self, replicated_at: f64, now: f64) -> f64 {
        self.points
            .iter()
            .find(|&&(_, prev)| prev >= replicated_at)
            .map_or(0.0, |&(seen, _)| (now - seen).max(0.0))
    }

    /// Forgets commits every replica holds (`oldest` is the least advanced replica's time).
    pub fn forget_before(&mut self, oldest: f64) {
        while self.points.front().is_some_and(|&(_, prev)| prev < oldest) {
            self.points.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_replication_stays_near_zero_and_a_stall_grows_with_wall_time() {
        let mut h = CommitHistory::default();
        // Commits every second; the replica holds everything up to half a second ago.
        for t in 0..10u32 {
            h.observe(1000.0 + f64::from(t), u64::from(t) * 5);
        }
        assert_eq!(h.lag(1008.5, 1009.0), 0.0);
        assert_eq!(
            h.lag(1007.5, 1009.0),
            0.0,
            "seen at 1009, previous poll 1008"
        );
        // The replica stops at 1009.2; commits go on.
        for t in 10..30u32 {
            h.observe(1000.0 + f64::from(t), u64::from(t) * 5);
        }
        let lag = h.lag(1009.2, 1029.0);
        assert_eq!(
            lag, 18.0,
            "dated from the poll at 1011, the first whose predecessor was past 1009.2"
        );
        assert_eq!(h.lag(1009.2, 1039.0), 28.0, "grows with wall time");
        // It catches up.
        assert_eq!(h.lag(1029.5, 1030.0), 0.0);
        h.forget_before(1029.5);
        assert!(h.points.is_empty());
    }

    #[test]
    fn no_commits_no_lag_however_old_the_replica() {
        let mut h = CommitHistory::default();
        for t in 0..100u32 {
            h.observe(f64::from(t), 7);
        }
        assert_eq!(h.lag(0.0, 100.0), 0.0);
    }
}
