//! Write-lock statistics from frequent samples of who holds SQLite's write lock: time held (a
//! counter, so `rate()` is the writer utilisation), the longest hold over a recent window, and
//! the distinct processes seen writing in that window. Pure: fed with (instant, holder pid).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Window for the longest hold and the writer processes.
pub const WINDOW: Duration = Duration::from_secs(60);
/// A gap between samples longer than this is not credited in full (the sampler was slow or the
/// database was idle and sampled rarely): at most this much of it counts as held.
const MAX_CREDIT: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
pub struct WriteLockStats {
    held_total: Duration,
    last_sample: Option<Instant>,
    /// The hold in progress: holder pid and when it was first seen.
    current: Option<(i32, Instant)>,
    /// Holds that ended: (ended at, how long, pid), within the window.
    ended: VecDeque<(Instant, Duration, i32)>,
    /// The last sample each recent holder was seen at, however long ago (at most
    /// [`MAX_REMEMBERED`] pids): when Litestream last took the lock for a checkpoint.
    last_seen: VecDeque<(i32, Instant)>,
}

/// Holders whose last sample is remembered.
const MAX_REMEMBERED: usize = 16;

impl WriteLockStats {
    /// Records one sample: the write lock is held by `holder` (a pid) or free, at `now`.
    pub fn sample(&mut self, now: Instant, holder: Option<i32>) {
        if let (Some(_), Some(last)) = (holder, self.last_sample) {
            self.held_total += now.saturating_duration_since(last).min(MAX_CREDIT);
        }
        self.last_sample = Some(now);
        if let Some(pid) = holder {
            self.last_seen.retain(|&(p, _)| p != pid);
            self.last_seen.push_back((pid, now));
            if self.last_seen.len() > MAX_REMEMBERED {
                self.last_seen.pop_front();
            }
        }
        match (self.current, holder) {
            (Some((pid, _)), Some(h)) if pid == h => {}
            (cur, h) => {
                if let Some((pid, since)) = cur {
                    self.ended
                        .push_back((now, now.saturating_duration_since(since), pid));
                }
                self.current = h.map(|pid| (pid, now));
            }
        }
        self.expire(now);
    }

    /// Forgets the holds that ended before the window ending at `now` (a sample does it too;
    /// a database not sampled for a while needs it before its figures are read).
    pub fn expire(&mut self, now: Instant) {
        while self
            .ended
            .front()
            .is_some_and(|&(t, _, _)| now.saturating_duration_since(t) > WINDOW)
        {
            self.ended.pop_front();
        }
    }

    /// Seconds the write lock was seen held, in total.
    pub fn held_seconds_total(&self) -> f64 {
        self.held_total.as_secs_f64()
    }

    /// The current holder and how long it has held the lock.
    pub fn holder(&self, now: Instant) -> Option<(i32, Duration)> {
        self.current
            .map(|(pid, since)| (pid, now.saturating_duration_since(since)))
    }

    /// Longest hold that ended within the window, or the current one if longer.
    pub fn longest_hold(&self, now: Instant) -> Duration {
        let ended = self
            .ended
            .iter()
            .map(|&(_, d, _)| d)
            .max()
            .unwrap_or_default();
        ended.max(self.holder(now).map_or(Duration::ZERO, |(_, d)| d))
    }

    /// Distinct processes seen holding the write lock within the window, sorted.
    pub fn writer_pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self
            .ended
            .iter()
            .map(|&(_, _, p)| p)
            .chain(self.current.map(|(p, _)| p))
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Each recent holder and the last sample it was seen holding the lock at.
    pub fn last_seen(&self) -> impl Iterator<Item = (i32, Instant)> + '_ {
        self.last_seen.iter().copied()
    }

    /// Whether the lock was held at some sample within `recent`.
    pub fn active_within(&self, now: Instant, recent: Duration) -> bool {
        self.current.is_some()
            || self
                .ended
                .back()
                .is_some_and(|&(t, _, _)| now.saturating_duration_since(t) <= recent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_utilisation_and_writers() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut s = WriteLockStats::default();
        // Every 10 ms for one second: pid 7 holds the lock half the time, in 50 ms bursts.
        for i in 0..=100u64 {
            let held = (i / 5) % 2 == 1;
            s.sample(ms(i * 10), held.then_some(7));
        }
        let util = s.held_seconds_total();
        assert!((0.45..=0.55).contains(&util), "{util}");
        assert_eq!(s.writer_pids(), vec![7]);
        assert!(s.longest_hold(ms(1000)) >= Duration::from_millis(40));
        // Another process holds it for 2 s.
        for i in 0..=200u64 {
            s.sample(ms(1010 + i * 10), Some(9));
        }
        assert_eq!(s.holder(ms(3010)).map(|(p, _)| p), Some(9));
        assert_eq!(s.longest_hold(ms(3010)), Duration::from_secs(2));
        s.sample(ms(3020), None);
        assert_eq!(s.writer_pids(), vec![7, 9]);
        assert_eq!(s.longest_hold(ms(3020)), Duration::from_millis(2010));
        // After the window, they are forgotten; the total is not.
        s.sample(ms(70_000), None);
        assert!(s.writer_pids().is_empty());
        assert_eq!(s.longest_hold(ms(70_000)), Duration::ZERO);
        assert!(s.held_seconds_total() > 2.4);
        // Who held it last, and when, outlives the window.
        let seen: Vec<_> = s.last_seen().collect();
        assert_eq!(seen, vec![(7, ms(990)), (9, ms(3010))]);
    }
}
