//! Checkpoint starvation judged by harm: how long a due checkpoint has been starved, and pinned
//! by each reader slot, while writes go on. Pure: fed with what each poll saw, time passed in.

use crate::format::shm::READ_SLOTS;
use std::time::{Duration, Instant};

/// How recently a frame must have been appended for writes to count as going on.
pub const WRITING_WINDOW: Duration = Duration::from_secs(10);

/// What one poll saw of the WAL and its readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub salt: [u32; 2],
    /// `mxFrame`.
    pub max_frame: u32,
    /// `nBackfill`.
    pub backfill: u32,
    /// Per reader slot: its read mark, when a reader holds it.
    pub held: [Option<u32>; READ_SLOTS],
}

/// The clocks after one poll.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Harm {
    /// How long a due checkpoint has made no progress while writes went on.
    pub starved: Duration,
    /// Per held slot, how long it has stopped a due checkpoint while writes went on.
    pub pinned: [Option<Duration>; READ_SLOTS],
    /// A checkpoint made progress since the previous poll.
    pub progressed: bool,
}

impl Harm {
    /// The slot that has held checkpoints back longest, with how long; `None` when none has.
    pub fn worst_pin(&self) -> Option<(usize, Duration)> {
        self.pinned
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.filter(|d| !d.is_zero()).map(|d| (i, d)))
            .max_by_key(|&(_, d)| d)
    }
}

/// Checkpoint starvation judged by harm: frames waiting for a checkpoint, and readers holding
/// checkpoints back, matter when they make the WAL grow, not when a frame waits on an idle
/// database. Litestream, for one, keeps a read transaction open all the time and leaves its
/// last `_litestream_seq` update in the WAL indefinitely; neither harms anything.
///
/// A checkpoint is *due* once more frames wait than the application's `wal_autocheckpoint`
/// (SQLite's default is 1000 pages): below that, SQLite itself would not have checkpointed yet.
/// Two clocks run only while a checkpoint is due and writes go on (a frame was appended within
/// [`WRITING_WINDOW`]):
/// - *starved*: since a checkpoint last made progress (`nBackfill` advanced or the WAL
///   restarted);
/// - *pinned*, per reader slot: while this reader is what stops the checkpoint (slot 0: any
///   frame waits, since a checkpoint must lock slot 0 to copy anything; slots 1-4: the
///   checkpoint has reached the reader's mark and newer frames exist).
#[derive(Debug, Default)]
pub struct StarvationClock {
    last: Option<(Observation, Instant)>,
    last_growth: Option<Instant>,
    starved: Duration,
    /// Per slot: the mark it was held at, and how long it has pinned.
    pins: [Option<(u32, Duration)>; READ_SLOTS],
}

impl StarvationClock {
    /// Records one poll: `due_frames` is the application's `wal_autocheckpoint`.
    pub fn observe(&mut self, now: Instant, o: Observation, due_frames: u32) -> Harm {
        let previous = self.last.replace((o, now));
        let (restarted, advanced, grew, dt) = match previous {
            Some((p, at)) => {
                let restarted = p.salt != o.salt || o.max_frame < p.max_frame;
                (
                    restarted,
                    !restarted && o.backfill > p.backfill,
                    if restarted {
                        o.max_frame > 0
                    } else {
                        o.max_frame > p.max_frame
                    },
                    now.saturating_duration_since(at),
                )
            }
            None => (false, false, false, Duration::ZERO),
        };
        if grew {
            self.last_growth = Some(now);
        }
        let progressed = restarted || advanced;
        let writing = self
            .last_growth
            .is_some_and(|t| now.saturating_duration_since(t) <= WRITING_WINDOW);
        let due = o.max_frame.saturating_sub(o.backfill) >= due_frames.max(1);
        let counting = due && writing;

        if !due || progressed {
            self.starved = Duration::ZERO;
        } else if counting {
            self.starved += dt;
        }

        let mut pinned = [None; READ_SLOTS];
        for (i, held) in o.held.iter().enumerate() {
            let Some(mark) = *held else {
                self.pins[i] = None;
                continue;
            };
            // Slot 0 has no mark: a checkpoint that made progress got past whoever held it.
            let same_reader = match self.pins[i] {
                Some((m, _)) if i == 0 => !progressed && m == mark,
                Some((m, _)) => m == mark && !restarted,
                None => false,
            };
            let mut since = if same_reader {
                self.pins[i].map_or(Duration::ZERO, |(_, d)| d)
            } else {
                Duration::ZERO
            };
            let stops_checkpoint = if i == 0 {
                o.backfill < o.max_frame
            } else {
                mark < o.max_frame && o.backfill >= mark
            };
            if !stops_checkpoint || !due {
                since = Duration::ZERO;
            } else if counting && same_reader {
                since += dt;
            }
            self.pins[i] = Some((mark, since));
            pinned[i] = Some(since);
        }
        Harm {
            starved: self.starved,
            pinned,
            progressed,
        }
    }

    /// Forgets everything (the database or its wal-index was replaced).
    pub fn reset(&mut self) {
        *self = StarvationClock::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUE: u32 = 1000;

    fn obs(max_frame: u32, backfill: u32, held: &[(usize, u32)]) -> Observation {
        let mut h = [None; READ_SLOTS];
        for &(slot, mark) in held {
            h[slot] = Some(mark);
        }
        Observation {
            salt: [1, 1],
            max_frame,
            backfill,
            held: h,
        }
    }

    fn secs(n: u64, t0: Instant) -> Instant {
        t0 + Duration::from_secs(n)
    }

    /// Litestream's guard (slot 0) with its one `_litestream_seq` frame waiting, on a database
    /// that has gone idle: nothing is due and nothing grows, so nothing is harmed, for ever.
    #[test]
    fn an_idle_database_with_litestreams_guard_is_not_starved() {
        let t0 = Instant::now();
        let mut c = StarvationClock::default();
        for s in 0..3600 {
            let h = c.observe(secs(s, t0), obs(1, 0, &[(0, 0)]), DUE);
            assert_eq!(h.starved, Duration::ZERO);
            assert_eq!(h.worst_pin(), None);
        }
    }

    /// A low-traffic application: a commit now and then, never reaching the autocheckpoint
    /// size, so frames wait for hours as SQLite intends.
    #[test]
    fn frames_below_the_autocheckpoint_size_are_not_starvation() {
        let t0 = Instant::now();
        let mut c = StarvationClock::default();
        for s in 0..3600 {
            let h = c.observe(secs(s, t0), obs(1 + (s / 60) as u32 * 3, 0, &[]), DUE);
            assert_eq!(h.starved, Duration::ZERO);
        }
    }

    /// A reader in slot 2 keeps its transaction open while the writer goes on: the checkpoint
    /// copies up to the reader's mark once, then stops there.
    #[test]
    fn a_stuck_reader_starves_checkpoints_while_writes_go_on() {
        let t0 = Instant::now();
        let mut c = StarvationClock::default();
        c.observe(t0, obs(900, 0, &[(2, 900)]), DUE);
        // Due from here; the checkpoint copied up to the reader's mark: progress.
        let h = c.observe(secs(1, t0), obs(2000, 900, &[(2, 900)]), DUE);
        assert_eq!(h.starved, Duration::ZERO);
        assert!(h.progressed);
        let mut last = Harm::default();
        for s in 2..=30 {
            last = c.observe(
                secs(s, t0),
                obs(2000 + s as u32 * 100, 900, &[(2, 900)]),
                DUE,
            );
        }
        assert_eq!(last.starved, Duration::from_secs(29));
        // The reader was already in the way during the second the checkpoint reached it.
        assert_eq!(last.worst_pin(), Some((2, Duration::from_secs(30))));
        // Writes stop: both clocks go on while the last write is recent, then pause.
        for s in 31..=100 {
            last = c.observe(secs(s, t0), obs(5000, 900, &[(2, 900)]), DUE);
        }
        assert_eq!(last.starved, Duration::from_secs(29) + WRITING_WINDOW);
        assert_eq!(
            last.worst_pin(),
            Some((2, Duration::from_secs(30) + WRITING_WINDOW))
        );
        // The reader ends: the next checkpoint copies everything.
        let h = c.observe(secs(101, t0), obs(5000, 5000, &[]), DUE);
        assert_eq!((h.starved, h.worst_pin()), (Duration::ZERO, None));
    }

    /// Litestream frozen (SIGSTOP) while holding slot 0: no checkpoint can copy anything while
    /// the application writes.
    #[test]
    fn a_frozen_guard_in_slot_zero_pins_while_the_wal_grows() {
        let t0 = Instant::now();
        let mut c = StarvationClock::default();
        for s in 0..=40u64 {
            let h = c.observe(secs(s, t0), obs(10 + s as u32 * 300, 0, &[(0, 0)]), DUE);
            if s == 40 {
                // Due from s = 4 (1210 frames waiting): 37 polls of one second.
                assert_eq!(h.starved, Duration::from_secs(37));
                assert_eq!(h.worst_pin(), Some((0, Duration::from_secs(37))));
            }
        }
    }

    /// Litestream healthy and busy: its guard sits in slot 0 and the WAL passes the
    /// autocheckpoint size between its syncs, but each of its checkpoints makes progress.
    #[test]
    fn a_busy_healthy_guard_never_accumulates() {
        let t0 = Instant::now();
        let mut c = StarvationClock::default();
        let mut max = 0u32;
        let mut backfill = 0u32;
        for s in 0..600u64 {
            max += 600;
            let h = c.observe(secs(s, t0), obs(max, backfill, &[(0, 0)]), DUE);
            assert!(h.starved <= Duration::from_secs(1), "{s}: {h:?}");
            assert!(h
                .worst_pin()
                .is_none_or(|(_, d)| d <= Duration::from_secs(1)));
            if max - backfill >= DUE {
                backfill = max - 1; // its checkpoint, then its _litestream_seq update
            }
        }
    }

    /// A WAL restart is progress, and the new WAL starts every clock again.
    #[test]
    fn a_restart_resets_the_clocks() {
        let t0 = Instant::now();
        let mut c = StarvationClock::default();
        for s in 0..20 {
            c.observe(secs(s, t0), obs(2000 + s as u32 * 10, 0, &[(0, 0)]), DUE);
        }
        let restarted = Observation {
            salt: [2, 9],
            ..obs(5, 0, &[(0, 0)])
        };
        let h = c.observe(secs(20, t0), restarted, DUE);
        assert!(h.progressed);
        assert_eq!((h.starved, h.worst_pin()), (Duration::ZERO, None));
    }

    /// A reader that moves to a new snapshot (a new mark) is a new pin.
    #[test]
    fn a_reader_that_moves_on_starts_again() {
        let t0 = Instant::now();
        let mut c = StarvationClock::default();
        c.observe(t0, obs(1200, 1100, &[(1, 1100)]), DUE);
        c.observe(secs(1, t0), obs(2200, 1100, &[(1, 1100)]), DUE);
        let h = c.observe(secs(5, t0), obs(2600, 1100, &[(1, 1100)]), DUE);
        assert_eq!(h.worst_pin(), Some((1, Duration::from_secs(5))));
        let h = c.observe(secs(6, t0), obs(2700, 1100, &[(1, 2650)]), DUE);
        assert_eq!(h.worst_pin(), None, "not yet reached by a checkpoint");
    }
}
