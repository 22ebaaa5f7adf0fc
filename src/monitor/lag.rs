//! How long the oldest WAL frame not yet checkpointed has waited. Resolution is one poll
//! interval; frames already in the WAL when watching starts are dated from then.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Marks kept at most; older ones are merged, keeping the earlier time (age never understated).
const MAX_MARKS: usize = 1024;

/// How long the oldest WAL frame not yet checkpointed has waited. The WAL holds no timestamps,
/// so the clock remembers when each poll first saw `mxFrame` pass a value, and answers with the
/// age of the first mark beyond `nBackfill`.
#[derive(Debug, Default)]
pub struct LagClock {
    generation: Option<[u32; 2]>,
    /// (frame, first seen): frames up to `frame` were in the WAL at that instant.
    marks: VecDeque<(u32, Instant)>,
}

impl LagClock {
    /// Forgets everything (the database was replaced).
    pub fn reset(&mut self) {
        self.generation = None;
        self.marks.clear();
    }

    /// The age at `now` of the oldest frame not checkpointed at the last observation.
    pub fn age(&self, now: Instant) -> Duration {
        self.marks
            .front()
            .map_or(Duration::ZERO, |&(_, t)| now.saturating_duration_since(t))
    }

    /// Records the WAL as seen at `now` (salt pair, `mxFrame`, `nBackfill`) and returns the age of
    /// the oldest frame no checkpoint has copied back; zero when there is none.
    pub fn observe(
        &mut self,
        salt: [u32; 2],
        max_frame: u32,
        backfill: u32,
        now: Instant,
    ) -> Duration {
        let newest = self.marks.back().map(|&(f, _)| f);
        if self.generation != Some(salt) || newest.is_some_and(|f| max_frame < f) {
            // A WAL reset: every frame now in the log is new.
            self.generation = Some(salt);
            self.marks.clear();
        }
        if max_frame > self.marks.back().map_or(backfill, |&(f, _)| f) {
            self.marks.push_back((max_frame, now));
        }
        while self.marks.front().is_some_and(|&(f, _)| f <= backfill) {
            self.marks.pop_front();
        }
        if self.marks.len() > MAX_MARKS {
            let (_, oldest) = self.marks.pop_front().expect("non-empty");
            if let Some(next) = self.marks.front_mut() {
                next.1 = oldest;
            }
        }
        self.age(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_of_the_oldest_frame_not_checkpointed() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut c = LagClock::default();
        assert_eq!(c.observe([1, 1], 0, 0, s(0)), Duration::ZERO);
        assert_eq!(c.observe([1, 1], 10, 0, s(1)), Duration::ZERO);
        assert_eq!(c.observe([1, 1], 20, 0, s(2)), Duration::from_secs(1));
        // A checkpoint copied frames 1-10 back: the oldest waiting frame arrived at s(2).
        assert_eq!(c.observe([1, 1], 25, 10, s(5)), Duration::from_secs(3));
        // A reader pins frame 20: checkpoints stop there and the age keeps growing.
        assert_eq!(c.observe([1, 1], 40, 20, s(9)), Duration::from_secs(4));
        // Everything copied back.
        assert_eq!(c.observe([1, 1], 40, 40, s(10)), Duration::ZERO);
        // WAL reset (new salts): new frames are dated from when they are first seen.
        assert_eq!(c.observe([2, 7], 3, 0, s(11)), Duration::ZERO);
        assert_eq!(c.observe([2, 7], 3, 0, s(13)), Duration::from_secs(2));
    }

    #[test]
    fn memory_stays_bounded_and_age_is_not_understated() {
        let t0 = Instant::now();
        let mut c = LagClock::default();
        for i in 1..5000u32 {
            c.observe([1, 1], i, 0, t0 + Duration::from_millis(u64::from(i)));
        }
        assert!(c.marks.len() <= MAX_MARKS);
        let age = c.observe([1, 1], 5000, 0, t0 + Duration::from_secs(10));
        assert!(age >= Duration::from_millis(9999), "{age:?}");
    }
}
